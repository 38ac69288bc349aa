"""Report pages beside archived inputs are built off the delivery path (when the gateway has nothing
else to do) and still all written before `watch --once` exits: stream and file-by-file routes, with
converter processes and in-process."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.conftest import SAMPLES, run_cli

NY = SAMPLES / "generic-ny-fallback"
CONFIG = """
[watch]
converters = {converters}

[acd]
timezone = "America/New_York"

[[route]]
name = "generic"
inbox = "inbox"
targets = ["dataserver"]
stream = {stream}

[target.dataserver]
kind = "folder"
path = "dataserver"
"""


@pytest.mark.parametrize("stream, converters", [("true", 2), ("false", 2), ("true", 0), ("false", 0)])
def test_every_archived_input_gets_its_page_before_once_exits(tmp_path, stream, converters):
    (tmp_path / "inbox").mkdir()
    (tmp_path / "gisgate.toml").write_text(CONFIG.format(stream=stream, converters=converters))
    shutil.copy(NY / "input" / "service.csv", tmp_path / "inbox" / "fall.csv")
    shutil.copy(NY / "input" / "agent.csv", tmp_path / "inbox")
    other = (NY / "input" / "service.csv").read_text().replace("9912306", "9912399")  # another queue
    (tmp_path / "inbox" / "other.csv").write_text(other)
    r = run_cli("watch", "--root", tmp_path, "--once", "--settle", "0.2")
    assert r.returncode == 0, r.stderr
    archived = sorted((tmp_path / "archive" / "generic").glob("*/*.csv"))
    pages = sorted((tmp_path / "archive" / "generic").glob("*/*.report.html"))
    assert [p.name for p in pages] == [a.name + ".report.html" for a in archived]
    assert "not written" not in r.stderr
    assert len(pages) == 3
    html = next(p for p in pages if p.name.startswith("fall")).read_text()
    assert "<svg" in html and "9912306" in html
    if stream == "true":
        counts = [int(re.search(r'id="changed" data-count="(\d+)"', p.read_text()).group(1)) for p in pages]
        assert max(counts) == 100  # the first service file could change every interval of the day
