"""No tracebacks, ever: every command, given bad inputs, says what is wrong and exits 2 or 3.

A corpus of what new users feed gisgate by mistake (a binary, a UTF-16 text of no known format, an
empty file, truncated JSON, a wrong zone, broken TOML, folders that are not there) goes through every
command as a user runs it; and a deterministic fuzz of damaged copies of the shipped samples goes
through `convert`. Exit 1 or a `Traceback` on either stream is a bug.
"""

from __future__ import annotations

import random
import re
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, run_cli


def make_corpus(base: Path) -> Path:
    c = base / "corpus"
    c.mkdir()
    (c / "program.csv").write_bytes(Path(sys.executable).resolve().read_bytes()[:4000])  # an ELF/Mach-O binary
    (c / "unicode.csv").write_bytes("hello\tworld\r\n1\t2\r\n".encode("utf-16"))  # Excel "Unicode text", no format
    (c / "empty.csv").write_bytes(b"")
    (c / "cut.json").write_bytes(b'{"entries": [{"contact_id": "c1", "started_at": ')
    (c / "202411030100N0400_1_ServiceHistorical.SERVICE").write_bytes(b"\x7fELF\x00\x01\x02")
    (c / "rtstate-0001.json").write_bytes(b'[{"acdAgentId": "1", ')
    (c / "broken.toml").write_text('[acd]\ntimezone = "America/New_York\n')
    (c / "legacy-zone.toml").write_text('[acd]\ntimezone = "EST"\n')
    (c / "typo.toml").write_text("[watch]\nrescan_secnds = 5\n")
    (c / "folder.toml").write_text('[target.ds]\nkind = "folder"\npath = "ds"\n')
    inbox = base / "root" / "inbox"
    inbox.mkdir(parents=True)
    for name in ("program.csv", "unicode.csv", "empty.csv", "cut.json"):
        (inbox / name).write_bytes((c / name).read_bytes())
    return c


BAD_FILES = ["program.csv", "unicode.csv", "empty.csv", "cut.json", "202411030100N0400_1_ServiceHistorical.SERVICE",
             "rtstate-0001.json"]
FORMATS = ["generic", "whit", "contacts", "textcontacts", "gis", "talkdesk", "linklive", "livevox", "cwfm"]
CASES = [
    *[pytest.param(3, "convert", "{c}/" + f, "--out", "{t}/out", id=f"convert-{f}") for f in BAD_FILES],
    *[pytest.param(3, "convert", "{c}/program.csv", "--from", f, "--out", "{t}/out", id=f"convert-binary-as-{f}")
      for f in FORMATS],
    *[pytest.param(3, "convert", "{c}/unicode.csv", "--from", f, "--out", "{t}/out", id=f"convert-utf16-as-{f}")
      for f in FORMATS],
    *[pytest.param(3, "convert", "{c}/cut.json", "--from", f, "--out", "{t}/out", id=f"convert-cut-json-as-{f}")
      for f in FORMATS],
    pytest.param(2, "convert", "{c}/unicode.csv", "--tz", "Nowhere/Nope", "--out", "{t}/out", id="convert-bad-tz"),
    pytest.param(2, "convert", "{c}/unicode.csv", "--tz", "EST", "--out", "{t}/out", id="convert-legacy-tz"),
    pytest.param(2, "convert", "{c}/unicode.csv", "--config", "{c}/broken.toml", "--out", "{t}/out",
                 id="convert-bad-toml"),
    pytest.param(2, "convert", "{c}/unicode.csv", "--config", "{c}/typo.toml", "--out", "{t}/out",
                 id="convert-unknown-key"),
    pytest.param(2, "convert", "{c}/unicode.csv", "--config", "{t}/missing.toml", "--out", "{t}/out",
                 id="convert-missing-config"),
    *[pytest.param(3, "validate", "{c}/" + f, id=f"validate-{f}") for f in BAD_FILES],
    pytest.param(2, "validate", "{c}", "--tz", "Nowhere/Nope", id="validate-bad-tz"),
    pytest.param(2, "validate", "{c}", "--tz", "EST5EDT", id="validate-legacy-tz"),
    *[pytest.param(3, "report", "{c}/" + f, "--out", "{t}/r.html", id=f"report-{f}") for f in BAD_FILES[:4]],
    pytest.param(2, "report", "{c}/unicode.csv", "--tz", "Nowhere/Nope", "--out", "{t}/r.html", id="report-bad-tz"),
    pytest.param(3, "watch", "--once", "--root", "{t}/root", "--drain", "1", id="watch-bad-inputs"),
    pytest.param(2, "watch", "--once", "--root", "{t}/root", "--tz", "Nowhere/Nope", id="watch-bad-tz"),
    pytest.param(2, "watch", "--once", "--config", "{c}/broken.toml", id="watch-bad-toml"),
    pytest.param(2, "watch", "--once", "--config", "{c}/typo.toml", "--root", "{t}/root", id="watch-unknown-key"),
    pytest.param(2, "watch", "--once", "--config", "{c}/legacy-zone.toml", "--root", "{t}/root",
                 id="watch-legacy-zone"),
    pytest.param(2, "status", "--root", "{t}/nowhere", id="status-missing-root"),
    pytest.param(2, "status", "--config", "{c}/broken.toml", id="status-bad-toml"),
    pytest.param(2, "retry", "--root", "{t}/nowhere", "x.csv", id="retry-missing-root"),
    pytest.param(2, "retry", "--config", "{c}/broken.toml", "--all-rejected", id="retry-bad-toml"),
    pytest.param(2, "init", "{c}/empty.csv/gateway", id="init-under-a-file"),
    pytest.param(2, "doctor", "--config", "{c}/broken.toml", id="doctor-bad-toml"),
    pytest.param(2, "doctor", "--config", "{c}/typo.toml", id="doctor-unknown-key"),
    pytest.param(2, "doctor", "--root", "{c}/empty.csv/gateway", id="doctor-root-under-a-file"),
    pytest.param(2, "deliver", "{c}/program.csv", "--target", "ds", "--config", "{c}/broken.toml",
                 id="deliver-bad-toml"),
    pytest.param(2, "deliver", "{c}/program.csv", "--target", "nope", "--config", "{c}/folder.toml",
                 id="deliver-unknown-target"),
    pytest.param(2, "deliver", "{c}/program.csv", "--target", "ds", "--config", "{t}/missing.toml",
                 id="deliver-missing-config"),
    pytest.param(2, "hostkey", "ds", "--config", "{c}/broken.toml", id="hostkey-bad-toml"),
    pytest.param(2, "hostkey", "ds", "--config", "{t}/missing.toml", id="hostkey-missing-config"),
    pytest.param(2, "hostkey", "ds", "--config", "{c}/folder.toml", id="hostkey-not-sftp"),
]


@pytest.mark.parametrize(("code", "args"), [pytest.param(p.values[0], p.values[1:], id=p.id, marks=p.marks)
                                            for p in CASES])
def test_bad_input_gives_a_message_and_exit_2_or_3(tmp_path, code, args):
    corpus = make_corpus(tmp_path)
    r = run_cli(*[a.format(c=corpus, t=tmp_path) for a in args], cwd=tmp_path)
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Error: " in r.stderr and len(r.stderr.strip()) > len("Error: ") + 10, r.stderr


# --- fuzz: damaged copies of the shipped samples through `convert` ----------------------------------

CASES_DIRS = sorted(p.parent for p in SAMPLES.glob("*/job.toml"))
DAMAGE = ["flip", "truncate", "cr", "drop", "double", "huge"]


def damage(data: bytes, how: str, rng: random.Random) -> bytes:
    """`data` damaged as files are on their way: bytes flipped, cut off, CR-only line ends (classic
    Mac), lines dropped or doubled, a number replaced by a huge one."""
    if how == "flip":
        out = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] = rng.randrange(256)
        return bytes(out)
    if how == "truncate":
        return data[: rng.randrange(1, len(data))]
    if how == "cr":
        return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r")
    lines = data.split(b"\n")
    if how == "drop":
        for _ in range(rng.randint(1, 3)):
            del lines[rng.randrange(len(lines))]
        return b"\n".join(lines)
    if how == "double":
        i = rng.randrange(len(lines))
        return b"\n".join(lines[:i + 1] + lines[i:])
    numbers = list(re.finditer(rb"\d+", data))
    m = rng.choice(numbers)
    return data[: m.start()] + rng.choice([b"1e308", b"1e400", b"9" * 40, b"-5", b"NaN"]) + data[m.end():]


def fuzz_cases(n: int = 36, seed: int = 20241103) -> list:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        case, how = rng.choice(CASES_DIRS), DAMAGE[i % len(DAMAGE)]
        spec = tomllib.loads((case / "job.toml").read_text())
        victim = rng.randrange(len(spec["inputs"]))
        out.append(pytest.param(case, victim, how, rng.randrange(2**32), id=f"{i:02d}-{case.name}-{how}"))
    return out


@pytest.mark.parametrize(("case", "victim", "how", "seed"), fuzz_cases())
def test_convert_of_a_damaged_sample_never_crashes(tmp_path, case, victim, how, seed):
    spec = tomllib.loads((case / "job.toml").read_text())
    inputs = []
    for i, name in enumerate(spec["inputs"]):
        data = (case / name).read_bytes()
        target = tmp_path / Path(name).name
        target.write_bytes(damage(data, how, random.Random(seed)) if i == victim else data)
        inputs.append(target)
    r = run_cli("convert", *inputs, "--out", tmp_path / "out", *spec.get("args", []), cwd=case)
    assert "Traceback" not in r.stdout + r.stderr, r.stderr
    assert r.returncode in (0, 3), (r.returncode, r.stderr)
