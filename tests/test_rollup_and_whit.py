"""Roll-up 15 → 30 and WHIT in both directions."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from gisgate.model import AGENT_INTERVALS, QUEUE_INTERVALS
from gisgate.transform.intervals import roll_up_agent, roll_up_queue

T0 = datetime(2024, 11, 3, 5, 0, tzinfo=UTC)
T1 = datetime(2024, 11, 3, 5, 15, tzinfo=UTC)
WHIT_HEADER = ("serviceName,serviceNumber,date,period,receivedCalls,handledCalls,abandonedCalls,avgTalkTime,"
               "avgACWTime,ASA,serviceLevel")


def queue(rows):
    cols = list(QUEUE_INTERVALS)[:11]
    return pl.DataFrame([dict(zip(cols, r, strict=True)) for r in rows], schema={c: QUEUE_INTERVALS[c] for c in cols})


def test_service_level_is_weighted_by_offered_and_counts_sum():
    frame = queue([(T0, "1", 10.0, 9, 9, 1, 900.0, 10, 90, 50, 80.0),
                   (T1, "1", 30.0, 30, 30, 0, 2700, 0, 300, 60, 100.0),
                   (T0, "2", 0.0, 0, 0, 0, 0, 0, 0, 0, 0.0), (T1, "2", 0.0, 0, 0, 0, 0, 0, 0, 0, 0.0)])
    out = roll_up_queue(frame, "America/New_York", 30).sort("service_id")
    assert out["interval_start"].to_list() == [T0, T0]
    assert out.row(0) == (T0, "1", 40.0, 39.0, 39.0, 1.0, 3600.0, 10.0, 390.0, 110.0, 95.0)
    assert out.row(1)[-1] == 0.0


def test_agent_unprorated_values_are_summed_once_per_agent():
    cols = list(AGENT_INTERVALS)[:11]
    rows = [(T0, "a", "1", 2.0, 100.0, 0.0, 10.0, 110.0, 500.0, 90.0, 900.0),
            (T0, "a", "2", 1.0, 50.0, 0.0, 5.0, 55.0, 500.0, 90.0, 900.0),
            (T1, "a", "1", 1.0, 60.0, 0.0, 6.0, 66.0, 300.0, 0.0, 600.0)]
    frame = pl.DataFrame([dict(zip(cols, r, strict=True)) for r in rows], schema={c: AGENT_INTERVALS[c] for c in cols})
    out = roll_up_agent(frame, "America/New_York", 30).sort("service_id")
    assert out.select("service_id", "handled", "ready_s", "not_ready_s", "in_session_s").rows() == [
        ("1", 3.0, 800.0, 90.0, 1500.0), ("2", 1.0, 800.0, 90.0, 1500.0)]


def test_thirty_to_fifteen_is_refused(tmp_path, cli):
    src = tmp_path / "w.csv"
    src.write_text(WHIT_HEADER + "\nB,1,2024-01-02,10:00,5,5,0,100,10,5,90\nB,1,2024-01-02,10:30,5,5,0,100,10,5,90\n")
    r = cli("convert", src, "--out", tmp_path / "o", "--interval", "15", "--source-interval", "30")
    assert r.returncode == 2
    assert "cannot be split into 15-minute" in r.stderr
    r = cli("convert", src, "--out", tmp_path / "o", "--interval", "15")
    assert r.returncode == 0, "without --source-interval the data is taken as it comes"


def test_whit_repeated_hour_maps_to_first_then_second_occurrence(tmp_path, cli):
    src = tmp_path / "w.csv"
    src.write_text(WHIT_HEADER + "\n"
                   "Billing,9912306,2024-11-03,01:00,10,10,0,100,10,5,90\n"
                   "Support,9912307,2024/11/03,01:00,1,1,0,100,10,5,90\n"
                   "Billing,9912306,2024-11-03,01:00,20,20,0,100,10,5,90\n")
    out = tmp_path / "o"
    r = cli("convert", src, "--out", out, "--tz", "America/New_York", "--from", "whit")
    assert r.returncode == 0, r.stderr
    first = (out / "202411030100N0400_1_ServiceHistorical.SERVICE").read_bytes().decode()
    second = (out / "202411030100N0500_1_ServiceHistorical.SERVICE").read_bytes().decode()
    assert "\r\n9912306,10,10,10,0,1000,0,100,50,90\r\n9912307,1,1,1,0,100,0,10,5,90\r\n" in first
    assert second.endswith("\r\n9912306,20,20,20,0,2000,0,200,100,90\r\n")


def test_whit_local_time_in_the_gap_is_a_row_error(tmp_path, cli):
    src = tmp_path / "w.csv"
    src.write_text(WHIT_HEADER + "\nB,1,2024-03-10,01:45,1,1,0,1,1,1,1\nB,1,2024-03-10,02:30,1,1,0,1,1,1,1\n")
    r = cli("convert", src, "--out", tmp_path / "o", "--tz", "America/New_York")
    assert r.returncode == 3
    assert f"{src}:3: period: local time 2024-03-10 02:30 does not exist in America/New_York" in r.stderr


@pytest.mark.parametrize(("order", "date", "expected"), [("mdy", "11/04/2024", "202411040900"),
                                                         ("dmy", "11/04/2024", "202404110900")])
def test_whit_date_orders_need_to_be_explicit(tmp_path, cli, order, date, expected):
    src = tmp_path / "w.csv"
    src.write_text(WHIT_HEADER + f"\nB,1,{date},09:00,1,1,0,1,1,1,1\n")
    r = cli("convert", src, "--out", tmp_path / "o", "--tz", "UTC")
    assert r.returncode == 3 and "--date-order" in r.stderr
    r = cli("convert", src, "--out", tmp_path / order, "--tz", "UTC", "--date-order", order)
    assert r.returncode == 0, r.stderr
    assert [p.name[:12] for p in (tmp_path / order).iterdir()] == [expected]


def test_whit_utc_flag(tmp_path, cli):
    src = tmp_path / "w.csv"
    src.write_text(WHIT_HEADER + "\nB,1,2024-11-03,06:00,1,1,0,1,1,1,1\n")
    r = cli("convert", src, "--out", tmp_path / "o", "--tz", "America/New_York", "--whit-utc")
    assert r.returncode == 0, r.stderr
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["202411030100N0500_1_ServiceHistorical.SERVICE"]


def test_to_whit_round_trips_through_from_whit(tmp_path, cli):
    from tests.conftest import SAMPLES

    service = SAMPLES / "generic-ny-fallback" / "input" / "service.csv"
    r = cli("convert", service, "--out", tmp_path / "whit", "--to", "whit", "--tz", "America/New_York")
    assert r.returncode == 0, r.stderr
    (whit,) = (tmp_path / "whit").iterdir()
    r = cli("convert", whit, "--out", tmp_path / "gis", "--tz", "America/New_York", "--whit-utc")
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in (tmp_path / "gis").iterdir())
    assert names == sorted(p.name for p in (SAMPLES / "generic-ny-fallback" / "expected").iterdir()
                           if p.name.endswith(".SERVICE"))


def test_declared_30_minute_input_must_start_on_half_hours(tmp_path, cli):
    src = tmp_path / "w.csv"
    src.write_text(WHIT_HEADER + "\nB,1,2024-01-02,10:00,5,5,0,100,10,5,90\nB,1,2024-01-02,10:15,5,5,0,100,10,5,90\n")
    r = cli("convert", src, "--out", tmp_path / "o", "--tz", "UTC", "--interval", "30", "--source-interval", "30")
    assert r.returncode == 3
    assert "1 interval start(s) are not on a 30-minute boundary in UTC (2024-01-02 10:15)" in r.stderr
    assert not (tmp_path / "o").exists()
    r = cli("convert", src, "--out", tmp_path / "o", "--tz", "UTC", "--interval", "30")
    assert r.returncode == 0, r.stderr  # inferred as 15-minute data and rolled up
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["202401021000P0000_1_ServiceHistorical.SERVICE"]
