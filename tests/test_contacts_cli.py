"""The contact import end to end through the CLI: golden samples, auto-detection, exit codes, --rejects."""

from __future__ import annotations

import importlib.util
import struct
import subprocess
import sys
import wave
from pathlib import Path

import pytest
from click.testing import CliRunner

from gisgate.cli import cli

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "contacts"
spec = importlib.util.spec_from_file_location("make_samples", SAMPLES / "make_samples.py")
make_samples = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_samples)


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize("case", sorted(make_samples.CASES))
def test_golden(case, tmp_path):
    inputs = sorted(p for p in (SAMPLES / case / "input").iterdir() if p.suffix in (".csv", ".json"))
    result = run("convert", *inputs, *make_samples.CASES[case], "--out", tmp_path)
    assert result.exit_code == 0, result.output
    expected = {p.name: p.read_bytes() for p in (SAMPLES / case / "expected").iterdir()}
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == expected


def test_sample_media_are_reproduced_byte_for_byte(tmp_path):
    for rel, make in make_samples.MEDIA.items():
        make(tmp_path / "x")
        assert (tmp_path / "x").read_bytes() == (SAMPLES / rel).read_bytes(), rel


def test_sample_wav_is_real_pcm():
    with wave.open(str(SAMPLES / "recordings/input/rec-1001.wav")) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 8000, 2000)


def test_sample_opus_is_a_well_formed_ogg_opus_stream():
    data = (SAMPLES / "recordings/input/rec-1002.opus").read_bytes()
    pages, pos = [], 0
    while pos < len(data):
        assert data[pos:pos + 4] == b"OggS"
        flags, granule, serial, seq, crc, segments = struct.unpack("<BqIIIB", data[pos + 5:pos + 27])
        size = 27 + segments + sum(data[pos + 27:pos + 27 + segments])
        page = data[pos:pos + size]
        assert make_samples.ogg_crc(page[:22] + bytes(4) + page[26:]) == crc
        pages.append((flags, granule, seq, page[27 + segments:]))
        pos += size
    assert [(f, s) for f, _, s, _ in pages] == [(0x02, 0), (0x00, 1), (0x04, 2)]  # BOS ... EOS
    head = pages[0][3]
    assert head[:8] == b"OpusHead" and head[8] == 1 and head[9] == 1  # version 1, mono
    assert struct.unpack("<H", head[10:12])[0] == make_samples.PRE_SKIP
    assert pages[1][3][:8] == b"OpusTags"
    assert pages[2][1] == 10 * make_samples.FRAME_SAMPLES  # 200 ms of 20 ms frames
    assert pages[2][3] == make_samples.SILENT_FRAME * 10


def test_auto_detection_with_media_given_as_inputs_then_validate(tmp_path):
    (tmp_path / "c.csv").write_text("AgentId,ContactStartTimeMs,Recording1\n1001,1700000000000,a.wav\n")
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    (tmp_path / "extra.opus").write_bytes(b"OggS")
    out = tmp_path / "out"
    result = run("convert", tmp_path / "c.csv", tmp_path / "a.wav", tmp_path / "extra.opus", "--to", "contact",
                 "--out", out)
    assert result.exit_code == 0, result.output
    assert "contacts: 1   media files: 1   rejected rows: 0" in result.output
    assert "not referenced by any contact, not imported: extra.opus" in result.output
    assert len(list(out.iterdir())) == 2
    assert run("validate", out).exit_code == 0


def test_bad_rows_exit_3_with_file_line_field_reason_and_write_nothing(tmp_path):
    data = tmp_path / "c.csv"
    data.write_text("AgentId,ContactStartTimeMs,Recording1,Direction\n1,1700000000000,a.wav,2\nx,1700000000000,a.wav,0\n")
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    out = tmp_path / "out"
    result = subprocess.run(  # the real entry point: main() maps InputError to exit 3
        [sys.executable, "-m", "gisgate", "convert", str(data), "--from", "contacts", "--to", "contact",
         "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    assert f"{data}:2: Direction: '2' must be 0 (inbound) or 1 (outbound)" in result.stderr
    assert f"{data}:3: AgentId: 'x' is not a WFO person id" in result.stderr
    assert not out.exists() or list(out.iterdir()) == []


def test_rejects_file_keeps_the_good_rows(tmp_path):
    data = tmp_path / "c.csv"
    data.write_text("AgentId,ContactStartTimeMs,Recording1\n1,1700000000000,a.wav\n2,1700000000000,b.wav\n")
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    out, rejects = tmp_path / "out", tmp_path / "rejects.csv"
    result = run("convert", data, "--to", "contact", "--out", out, "--rejects", rejects)
    assert result.exit_code == 0, result.output
    assert "contacts: 1   media files: 1   rejected rows: 1" in result.output
    assert rejects.read_text().splitlines() == [
        "file,line,column,reason", f"{data},3,Recording1,'b.wav' is not in the upload (no such media file)"]
    csv = next(p for p in out.iterdir() if p.name.startswith("CONTACT."))
    assert csv.read_text().count("\n") == 2


def test_textcontacts_through_the_cli(tmp_path):
    (tmp_path / "t.csv").write_text("textType,filename,time,username\nchat,a.txt,1700000000000,jo\n")
    (tmp_path / "a.txt").write_text("hello")
    out = tmp_path / "out"
    result = run("convert", tmp_path / "t.csv", "--to", "textcontact", "--out", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name.split("-")[-1] for p in out.iterdir()) == ["TEXTCONTACT.csv", "a.txt"]
    assert run("validate", out).exit_code == 0


def test_media_in_a_zip_through_the_cli_and_a_hostile_zip_refused(tmp_path):
    import zipfile

    (tmp_path / "c.csv").write_text("AgentId,ContactStartTimeMs,Recording1\n1001,1700000000000,a.wav\n")
    good, bad = tmp_path / "good.zip", tmp_path / "bad.zip"
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("recordings/a.wav", b"RIFF")
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr(zipfile.ZipInfo("../../a.wav"), b"RIFF")
    result = run("convert", tmp_path / "c.csv", good, "--to", "contact", "--out", tmp_path / "out",
                 "--config", _config(tmp_path, 'batch = "Z"'))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["CONTACT.Z.csv", "Z-a.wav"]
    result = run("convert", tmp_path / "c.csv", bad, "--to", "contact", "--out", tmp_path / "out2")
    assert "path climbs out of the archive" in str(result.exception)
    assert not (tmp_path / "out2").exists() and not (tmp_path.parent / "a.wav").exists()


def _config(folder: Path, contacts: str) -> Path:
    path = folder / "gisgate.toml"
    path.write_text(f"[contacts]\n{contacts}\n")
    return path
