"""The command line as a user meets it: summaries, JSON, exit codes, tracebacks only on --verbose."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

from tests.conftest import ROOT, SAMPLES

NY = SAMPLES / "generic-ny-fallback" / "input"


def test_summary_names_files_intervals_services_agents_and_totals(tmp_path, cli):
    r = cli("convert", NY / "service.csv", NY / "agent.csv", "--tz", "America/New_York", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "wrote 148 file(s) (gis) from 2 input(s)"
    assert "intervals: 100" in lines[1]
    assert "services:  2   agents: 4" in lines[2]
    assert len(lines) <= 24


def test_json_summary_for_scripts(tmp_path, cli):
    r = cli("convert", NY / "service.csv", "--tz", "America/New_York", "--out", tmp_path, "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["intervals"] == 100 and len(summary["files"]) == 100
    offered = sum(int(line.split(",")[2]) for line in (NY / "service.csv").read_text().splitlines()[1:])
    assert summary["service_totals"]["offered"] == offered


def test_quiet_prints_nothing(tmp_path, cli):
    r = cli("convert", NY / "service.csv", "--tz", "America/New_York", "--out", tmp_path, "-q")
    assert r.returncode == 0 and r.stdout == ""


def test_errors_are_one_message_and_tracebacks_need_verbose(tmp_path, cli):
    r = cli("convert", NY / "service.csv", "--tz", "Mars/Olympus", "--out", tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and r.stderr.startswith("Error: --tz: ")
    bad = tmp_path / "bad.csv"
    bad.write_text((NY / "service.csv").read_text().replace(",9912306,", ",9912 306,", 1))
    r = cli("--verbose", "convert", bad, "--tz", "America/New_York", "--out", tmp_path / "o")
    assert r.returncode == 3
    assert "Traceback" in r.stderr and "InputError" in r.stderr


def test_usage_error_exit_code(tmp_path, cli):
    r = cli("convert", NY / "service.csv", "--interval", "20", "--out", tmp_path)
    assert r.returncode == 2
    r = cli("nosuchcommand")
    assert r.returncode == 2


def test_python_dash_m_and_help(cli):
    r = cli("--help")
    assert r.returncode == 0 and "convert" in r.stdout and "validate" in r.stdout


def test_the_wheel_ships_the_templates_and_works_from_them(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), "-q"], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("gisgate-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert "gisgate/templates/whit/filename.j2" in names and "gisgate/templates/gis/header.j2" in names
        z.extractall(tmp_path / "site")
    # Run the installed layout (not the checkout) on a sample.
    r = subprocess.run([sys.executable, "-m", "gisgate", "convert", str(NY / "service.csv"), "--tz", "America/New_York",
                        "--out", str(tmp_path / "out"), "-q"], cwd=tmp_path, capture_output=True, text=True,
                       env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    expected = SAMPLES / "generic-ny-fallback" / "expected" / "202411030100N0500_1_ServiceHistorical.SERVICE"
    assert (tmp_path / "out" / expected.name).read_bytes() == expected.read_bytes()


def test_an_unexpected_error_is_one_line_and_exit_1(monkeypatch, capsys):
    """A bug still gets no traceback without --verbose: one line that says it is a bug."""
    from gisgate import cli as cli_module
    from gisgate.commands import status

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(status, "status", broken)
    try:
        cli_module.main(["status"])
    except SystemExit as e:
        assert e.code == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: gisgate failed unexpectedly (RuntimeError: boom)") and "Traceback" not in err


def test_allocator_returns_idle_pages_unless_someone_chose_otherwise():
    """The command sets polars' jemalloc to give back pages idle for 0.1 s, replacing polars' own
    default a parent process leaves in the environment, but not a value someone chose."""
    import os

    from gisgate.allocator import POLARS_JEMALLOC, PROMPT

    show = ("import os, gisgate.cli, polars as pl; pl.DataFrame({'a': [1]}); "
            "print(os.environ['_RJEM_MALLOC_CONF'])")
    seen = {}
    for given in (None, POLARS_JEMALLOC, "narenas:1"):
        env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
        if given:
            env["_RJEM_MALLOC_CONF"] = given
        r = subprocess.run([sys.executable, "-c", show], cwd=ROOT, env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        seen[given] = r.stdout.strip()
    # (polars puts its default first; later values win)
    assert seen[None] == seen[POLARS_JEMALLOC] == POLARS_JEMALLOC + "," + PROMPT
    assert seen["narenas:1"] == POLARS_JEMALLOC + ",narenas:1"


def test_a_profiler_still_gets_to_write_what_it_saw(tmp_path):
    """The command ends without tearing the interpreter down, except under a tracer or profiler:
    coverage and cProfile write what they saw at exit."""
    out = tmp_path / "run.prof"
    src = tmp_path / "s.csv"
    src.write_text("periodStart,acdServiceId,contactsOffered,contactsHandled,contactsAnswered,contactsAbandoned,"
                   "totalTalkSeconds,totalHoldSeconds,totalAfterContactWorkSeconds,totalAnswerDelaySeconds,"
                   "serviceLevelPercent\n2024-11-03T05:00:00Z,9912306,12,10,11,1,2311.5,120,340,96,83.33\n")
    r = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "gisgate", "convert", str(src),
                        "--out", str(tmp_path / "o"), "-q"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and not r.stderr, r.stderr
    assert out.stat().st_size > 0 and len(list((tmp_path / "o").iterdir())) == 1
    r = subprocess.run([sys.executable, "-m", "gisgate", "convert", str(src), "--out", str(tmp_path / "o2"), "-q"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "" and len(list((tmp_path / "o2").iterdir())) == 1
