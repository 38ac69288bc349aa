"""Feeding drops through a real `gisgate watch --once` stream route and comparing its folder target
with one real `gisgate convert` of all of the route's data (the stream contract, README `gisgate watch`).

    cfg = config(tmp, "cwfm", tz="America/New_York", mapping={"default_service": "101"})
    ref = reference(tmp, [whole_input], cfg)              # starts `gisgate convert` (runs alongside)
    got = feed(tmp / "gw", cfg, [("01-a.csv", data), ...], runs=[2, 1])   # drops in arrival order
    assert_same(got, ref.result(), "what this example was")
"""

from __future__ import annotations

import csv
import difflib
import io
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from gateway_harness import REPO, env

ROUTE = "r"


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_value(str(k))} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def config(folder: Path, fmt: str, *, tz: str, mapping: dict | None = None, outputs=("gis",), interval: int = 15,
           route: dict | None = None, name: str = "gisgate.toml", targets=("ds",), more: str = "") -> Path:
    """A gateway config (one stream route `r` of format `fmt` into the folder target `dataserver/`,
    in-process conversions, no report pages, settle 0.05 s) that `gisgate convert --config` reads too.
    Other `targets` are defined in the TOML text `more`."""
    lines = ["[acd]", f"timezone = {_toml_value(tz)}", f"interval_minutes = {interval}", ""]
    if mapping:
        lines += ["[mapping]", *[f"{k} = {_toml_value(v)}" for k, v in mapping.items()], ""]
    lines += ["[watch]", "converters = 0", "reports = false", "rescan_seconds = 0.5", "",
              "[[route]]", f'name = "{ROUTE}"', f"format = {_toml_value(fmt)}", f"outputs = {_toml_value(outputs)}",
              f"targets = {_toml_value(targets)}", "settle_seconds = 0.05",
              *[f"{k} = {_toml_value(v)}" for k, v in (route or {}).items()], "",
              "[target.ds]", 'kind = "folder"', 'path = "dataserver"', "", more]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("\n".join(lines))
    return path


class Reference:
    """A `gisgate convert` of every input at once, running in the background while the gateway works."""

    def __init__(self, out: Path, inputs: list[Path], cfg: Path, fmt: str, to: str = "gis", args=()):
        self.out = out
        cmd = [sys.executable, "-m", "gisgate", "convert", *map(str, inputs), "--from", fmt, "--to", to,
               "--config", str(cfg), "--out", str(out), "--quiet", *args]
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)

    def result(self) -> dict[str, bytes]:
        out, err = self.proc.communicate(timeout=300)
        assert self.proc.returncode == 0, f"reference convert failed ({self.proc.returncode}): {err}{out}"
        return folder(self.out)


def reference(tmp: Path, inputs: list[Path], cfg: Path, fmt: str, **kw) -> Reference:
    return Reference(tmp / "reference", inputs, cfg, fmt, **kw)


def folder(path: Path) -> dict[str, bytes]:
    """Every file directly in `path` (hidden temp files excluded), name → bytes."""
    if not path.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".")}


def watch_once(root: Path, cfg: Path, crash: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """One real `gisgate watch --once` run on `root` (killed with SIGKILL at `crash`, when given)."""
    cmd = [sys.executable, "-m", "gisgate", "watch", "--root", str(root), "--config", str(cfg), "--once",
           "--settle", "0.05", "--drain", "30"]
    extra = {"GISGATE_CRASH_AT": crash} if crash else {}
    return subprocess.run(cmd, cwd=REPO, env=env(**extra), capture_output=True, text=True, timeout=timeout)


def put(inbox: Path, drops: list[tuple[str, bytes]]) -> None:
    """Put `drops` into `inbox` at once, their mtimes in list order (the gateway takes older mtimes first:
    files first seen together are taken by mtime)."""
    inbox.mkdir(parents=True, exist_ok=True)
    base = time.time() - 1000
    for i, (name, data) in enumerate(drops):
        tmp = inbox / f".{name}.part"
        tmp.write_bytes(data)
        os.utime(tmp, (base + i, base + i))
        os.replace(tmp, inbox / name)


def feed(root: Path, cfg: Path, drops: list[tuple[str, bytes]], runs: list[int] | None = None,
         crash: str | None = None) -> dict[str, bytes]:
    """Drop `drops` in arrival order into the route's inbox, `runs[i]` of them before the i-th `--once` run
    (default: all before one run), and return the folder target. With `crash`, the first run is killed
    there (`point:N`), and one more run finishes the job."""
    runs = runs or [len(drops)]
    assert sum(runs) == len(drops)
    inbox = root / "inbox" / ROUTE
    at = 0
    logs = []
    for i, n in enumerate(runs):
        put(inbox, drops[at:at + n])
        at += n
        r = watch_once(root, cfg, crash if i == 0 else None)
        logs.append(r.stderr)
        if i == 0 and crash:
            if r.returncode == -signal.SIGKILL:
                logs.append("(killed)")
                r = watch_once(root, cfg)
                logs.append(r.stderr)
        assert r.returncode == 0, f"gateway run {i} exited {r.returncode}:\n" + "\n".join(logs)[-6000:]
    rejected = sorted(p.name for p in (root / "rejected").rglob("*") if p.is_file()) if (root / "rejected").exists() \
        else []
    assert not rejected, f"the gateway rejected drops: {rejected}\n" + "\n".join(
        p.read_text() for p in (root / "rejected").rglob("*.error.txt"))
    assert not list(inbox.iterdir()), "drops left in the inbox"
    return folder(root / "dataserver")


def assert_same(got: dict[str, bytes], want: dict[str, bytes], what: str = "") -> None:
    """The stream's folder holds exactly the reference's files, byte for byte (a readable diff when not)."""
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    differ = sorted(n for n in set(got) & set(want) if got[n] != want[n])
    if not (missing or extra or differ):
        return
    lines = [f"stream folder != one-shot convert ({what})",
             f"  {len(want)} reference file(s), {len(got)} in the target folder",
             f"  missing: {missing[:10]}{' ...' if len(missing) > 10 else ''}",
             f"  extra:   {extra[:10]}{' ...' if len(extra) > 10 else ''}",
             f"  differ:  {differ[:10]}{' ...' if len(differ) > 10 else ''}"]
    for n in differ[:2]:
        lines += difflib.unified_diff(want[n].decode(errors="replace").splitlines(),
                                      got[n].decode(errors="replace").splitlines(),
                                      f"convert/{n}", f"stream/{n}", lineterm="", n=1)
    raise AssertionError("\n".join(lines))


# -- reading and writing the pieces of a cut input (tests and samples/make_stream_samples.py) ------------


def csv_rows(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        r = csv.DictReader(f)
        return list(r.fieldnames), list(r)


def csv_text(header: list[str], rows: list[dict]) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, header, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return out.getvalue()


def naive_utc(text: str) -> datetime:
    for f in ("%Y-%m-%d %H:%M:%S", "%m/%d/%Y %H:%M:%S"):
        try:
            return datetime.strptime(text, f).replace(tzinfo=UTC)
        except ValueError:
            pass
    raise ValueError(text)
