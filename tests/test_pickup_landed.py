"""A file the gateway itself lands whole in an inbox (a fetched platform answer) is taken at once; a
file a partner drops still settles."""

from __future__ import annotations

import threading
import time

from gisgate.config import Route
from gisgate.gateway.pickup import Hints, Inbox


def test_a_landed_file_is_taken_without_settling_and_a_dropped_one_is_not(tmp_path):
    inbox = Inbox(Route(name="r"), tmp_path, settle=60.0)
    wake = threading.Event()
    hints = Hints(wake, [inbox])
    (tmp_path / "dropped.json").write_text("{}")
    (tmp_path / "fetched.json").write_text("{}")
    hints.landed(tmp_path / "fetched.json")
    assert wake.is_set()
    inbox.scan(100, hints.take()[0], hints.take_whole(0))
    inbox.scan(100, {}, hints.take_whole(0))  # the full listing finds the dropped one
    assert [name for _, _, name in inbox.look(time.monotonic())] == ["fetched.json"]
    assert [name for _, _, name in inbox.look(time.monotonic() + 61)] == ["dropped.json", "fetched.json"]


def test_a_landed_file_that_changes_afterwards_settles_like_any_other(tmp_path):
    inbox = Inbox(Route(name="r"), tmp_path, settle=60.0)
    hints = Hints(threading.Event(), [inbox])
    path = tmp_path / "fetched.json"
    path.write_text("{}")
    hints.landed(path)
    inbox.scan(100, hints.take()[0], hints.take_whole(0))
    path.write_text('{"more": 1}')
    assert inbox.look(time.monotonic()) == []


def test_a_landed_file_listed_before_it_was_announced_is_taken_at_once_too(tmp_path):
    """The rename's file event can wake the loop before the source says the file is whole."""
    inbox = Inbox(Route(name="r"), tmp_path, settle=60.0)
    hints = Hints(threading.Event(), [inbox])
    (tmp_path / "fetched.json").write_text("{}")
    inbox.scan(100, {}, hints.take_whole(0))
    assert inbox.look(time.monotonic()) == []
    hints.landed(tmp_path / "fetched.json")
    inbox.scan(100, hints.take().get(0, {}), hints.take_whole(0))
    assert [name for _, _, name in inbox.look(time.monotonic())] == ["fetched.json"]
