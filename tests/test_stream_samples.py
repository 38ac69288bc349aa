"""Every samples/stream-<case>/: its drops fed through a real gateway in arrival order (each run of
`stream.toml` a `gisgate watch --once` finding those drops in the inbox) leave in the folder target
exactly expected/, byte for byte; and expected/ is one `gisgate convert` of the case's whole data."""

from __future__ import annotations

import shutil
import tomllib

import pytest
from stream_check import assert_same, folder, put, watch_once

from tests.conftest import SAMPLES, run_cli

CASES = sorted(p.parent for p in SAMPLES.glob("stream-*/stream.toml"))


def test_there_are_stream_samples():
    assert {c.name for c in CASES} >= {"stream-cwfm", "stream-talkdesk", "stream-generic-corrections"}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_drops_through_the_gateway_end_as_expected(case, tmp_path):
    spec = tomllib.loads((case / "stream.toml").read_text())
    drops = sorted(p.name for p in (case / "drops").iterdir())
    assert [d for run in spec["runs"] for d in run] == drops, "stream.toml runs must name every drop, in order"
    root = tmp_path / "gw"
    root.mkdir()
    cfg = root / "gisgate.toml"
    shutil.copy(case / "gisgate.toml", cfg)
    for i, run in enumerate(spec["runs"]):
        put(root / "inbox" / "partner", [(name, (case / "drops" / name).read_bytes()) for name in run])
        r = watch_once(root, cfg)
        assert r.returncode == 0, f"run {i}: {r.stderr[-4000:]}"
    assert not (root / "rejected").exists() or not any((root / "rejected").rglob("*.*"))
    assert_same(folder(root / "dataserver"), folder(case / "expected"), f"{case.name}: gateway vs expected/")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_expected_is_one_convert_of_the_whole(case, tmp_path):
    spec = tomllib.loads((case / "stream.toml").read_text())
    assert "--until" not in spec["convert"]
    r = run_cli("convert", *spec["whole"], *spec["convert"], "--out", tmp_path, "-q", cwd=case)
    assert r.returncode == 0, r.stderr
    assert_same(folder(tmp_path), folder(case / "expected"), f"{case.name}: one convert vs expected/")
    assert all(len((case / sub / p.name).read_bytes()) < 200_000 for sub in ("drops", "expected")
               for p in (case / sub).iterdir())
