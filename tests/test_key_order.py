"""Out-of-order interval rows: checked from their key order alone, rendered without a sorted copy."""

from __future__ import annotations

import random

import polars as pl
import pytest

from gisgate.config import ConvertOptions
from gisgate.errors import InputError
from gisgate.render import gis
from gisgate.sources import _checks as chk
from gisgate.sources import generic

HEADER = ("periodStart,acdAgentId,acdServiceId,contactsHandled,totalTalkSeconds,totalHoldSeconds,"
          "totalAfterContactWorkSeconds,totalPeriodHandleTimeSeconds,totalUnproratedReadyWaitingSeconds,"
          "totalUnproratedNotReadyBusySeconds,totalUnproratedInSessionSeconds")
OPTIONS = ConvertOptions(tz="America/New_York")


def rows() -> list[str]:
    """Per agent, then queue, then interval (as exports written per agent come), over the
    fall-back night: the two 01:xx hours are different intervals."""
    out = []
    for agent in ("10002", "00007", "A12", "9"):
        for service in ("9912307", "42"):
            for hour in (4, 5, 6, 7):
                for minute in (0, 15, 30, 45):
                    ready = (hour * 7 + minute + len(agent)) % 300
                    out.append(f"2024-11-03T0{hour}:{minute:02d}:00Z,{agent},{service},{hour % 3},{minute}.5,0,2,"
                               f"{minute + 2}.5,{ready},60,900")
    return out


def write(path, lines):
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


def outputs(batch, monkeypatch, chunk_rows):
    monkeypatch.setattr(gis, "CHUNK_ROWS", chunk_rows)  # several chunks, each gathered on its own
    return [(o.name, o.data) for o in gis.render(batch, OPTIONS)]


@pytest.mark.parametrize("chunk_rows", [1, 7, 250_000])
def test_agent_ordered_rows_are_not_moved_and_render_as_sorted_ones_do(tmp_path, monkeypatch, chunk_rows):
    lines = rows()
    by_agent = generic.read([write(tmp_path / "agent.csv", lines)], OPTIONS)
    shuffled = list(lines)
    random.Random(3).shuffle(shuffled)
    by_chance = generic.read([write(tmp_path / "shuffled.csv", shuffled)], OPTIONS)
    by_time = generic.read([write(tmp_path / "time.csv", sorted(lines))], OPTIONS)

    for batch in (by_agent, by_chance):  # left in input order, with the order that sorts them
        frame = batch.agent_intervals
        assert batch.order_of(frame) is not None and not batch.key_ordered(frame)
        assert not frame["interval_start"].is_sorted()
    assert by_time.key_ordered(by_time.agent_intervals) and by_time.order_of(by_time.agent_intervals) is None

    want = outputs(by_time, monkeypatch, chunk_rows)
    assert len(want) == 16  # 16 intervals, the repeated 01:xx hour twice
    assert outputs(by_agent, monkeypatch, chunk_rows) == want
    assert outputs(by_chance, monkeypatch, chunk_rows) == want


def test_out_of_order_totals_that_differ_are_reported_by_line(tmp_path):
    lines = rows()
    lines[5] = lines[5].rsplit(",", 1)[0] + ",899"  # one row of 10002's 05:15 on queue 9912307
    path = write(tmp_path / "agent.csv", lines)
    with pytest.raises(InputError) as e:
        generic.read([path], OPTIONS)
    found = {(p.line, p.column) for p in e.value.problems}
    # line 7 and the same agent's row of the same interval on queue 42 (16 rows further down)
    assert found == {(7, "totalUnproratedInSessionSeconds"), (23, "totalUnproratedInSessionSeconds")}


def test_out_of_order_duplicates_are_still_found(tmp_path):
    lines = rows()
    path = write(tmp_path / "agent.csv", [*lines, lines[3], lines[4].replace(",900", ",901").replace(",2,", ",3,", 1)])
    with pytest.raises(InputError) as e:
        generic.read([path], OPTIONS)
    reasons = [p.reason for p in e.value.problems]
    assert any("duplicate key" in r and "line 6" in r for r in reasons), reasons


def test_key_order_says_which_rows_share_the_leading_keys():
    frame = pl.DataFrame({"i": [3, 1, 1, 2, 1], "a": ["x", "y", "x", "x", "x"], "s": ["2", "1", "1", "1", "2"]})
    order = chk.key_order(frame, ["i", "a", "s"])
    assert order.rows.to_list() == [2, 4, 1, 3, 0]
    assert not order.repeated
    assert order.same_as_previous("a").to_list() == [False, True, False, False, False]
    assert order.same_as_previous("i").to_list() == [False, True, True, False, False]


def test_key_order_works_across_slices(monkeypatch):
    monkeypatch.setattr(chk, "SLICE", 3)  # (a million rows a slice, in real runs)
    rng = random.Random(5)
    frame = pl.DataFrame({"i": [rng.randint(0, 3) for _ in range(50)], "a": [rng.choice("xyz") for _ in range(50)]})
    order = chk.key_order(frame, ["i", "a"])
    want = frame.with_row_index("r").sort("i", "a", maintain_order=True)
    assert order.rows.to_list() == want["r"].to_list()
    same = want.select((pl.col("i") == pl.col("i").shift(1)) & (pl.col("a") == pl.col("a").shift(1)))[:, 0]
    assert order.same_as_previous("a").to_list() == same.fill_null(False).to_list()
    assert order.repeated == same.any()
