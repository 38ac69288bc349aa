"""A new user's first hour with the gateway: `gisgate init`, `status` before the first run, and files
dropped where no route looks (warned once in the log, listed by `status`, counted in the metrics)."""

from __future__ import annotations

import json
import shutil

from tests.conftest import SAMPLES, run_cli

NY = SAMPLES / "generic-ny-fallback"


def test_status_of_a_root_made_by_init_is_an_empty_gateway(tmp_path):
    assert run_cli("init", tmp_path / "gw").returncode == 0
    r = run_cli("status", "--root", tmp_path / "gw")
    assert r.returncode == 0, r.stderr
    assert "the gateway has not run here yet" in r.stdout and "inputs: none yet" in r.stdout
    report = json.loads(run_cli("status", "--root", tmp_path / "gw", "--json").stdout)
    assert report["not_run_yet"] and report["inputs"] == {} and report["deliveries"] == {}
    assert not (tmp_path / "gw" / "gisgate.db").exists(), "status writes nothing"


def test_status_elsewhere_still_says_there_is_no_gateway(tmp_path):
    r = run_cli("status", "--root", tmp_path)
    assert r.returncode == 2 and "no ledger here" in r.stderr


def test_init_and_the_built_in_gateway_read_the_same_inbox(tmp_path):
    """The quick start's drop folder works after `gisgate init` too."""
    root = tmp_path / "gw"
    assert run_cli("init", root).returncode == 0
    shutil.copy(NY / "input" / "service.csv", root / "inbox")
    r = run_cli("watch", "--root", root, "--once", "--settle", "0.2", "--tz", "America/New_York")
    assert r.returncode == 0, r.stderr
    assert len(list((root / "dataserver").glob("*.SERVICE"))) == 100


def test_files_where_no_route_looks_are_reported(tmp_path):
    root = tmp_path / "gw"
    (root / "inbox" / "generic").mkdir(parents=True)  # the layout `gisgate init` used to make
    shutil.copy(NY / "input" / "service.csv", root / "inbox" / "generic")
    (root / "inbox" / "generic" / "upload.csv.part").write_text("")  # still being written: not reported
    r = run_cli("status", "--root", root)
    assert r.returncode == 0, r.stderr
    assert "not watched: 1 file(s) where no route looks, ignored: inbox/generic/service.csv" in r.stdout
    assert "the routes watch inbox/" in r.stdout
    metrics = tmp_path / "metrics.prom"
    r = run_cli("watch", "--root", root, "--once", "--settle", "0.2", "--rescan", "0.2", "--drain", "1",
                "--metrics", metrics)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("inbox/generic/service.csv: no route watches inbox/generic/") == 1, r.stderr
    assert "gisgate_files_unwatched 1" in metrics.read_text()
    assert (root / "inbox" / "generic" / "service.csv").exists()  # ignored, not taken


def test_files_directly_in_inbox_are_reported_when_no_route_watches_it(tmp_path):
    root = tmp_path / "gw"
    (root / "inbox").mkdir(parents=True)
    (root / "gisgate.toml").write_text("""
[[route]]
name = "partner"
targets = ["ds"]

[target.ds]
kind = "folder"
path = "dataserver"
""")
    (root / "inbox" / "day.csv").write_text("x\n")
    (root / "inbox" / "partner").mkdir()
    (root / "inbox" / "partner" / ".hidden").write_text("")
    report = json.loads(run_cli("status", "--root", root, "--json").stdout)
    assert report["unwatched"] == ["inbox/day.csv"] and report["watched"] == ["inbox/partner/"]
