"""Interval naming across DST changes and in zones with :30 / :45 offsets."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from gisgate.config import ConvertOptions
from gisgate.render.gis import file_name
from gisgate.transform.clock import floor_local
from tests.conftest import SAMPLES


def names(case: str, suffix: str) -> list[str]:
    return sorted(p.name for p in (SAMPLES / case / "expected").iterdir() if p.name.endswith(suffix))


def test_fall_back_day_has_100_service_files_and_two_one_oclocks():
    service = names("generic-ny-fallback", ".SERVICE")
    assert len(service) == 100
    assert [n for n in service if n.startswith("202411030100")] == [
        "202411030100N0400_1_ServiceHistorical.SERVICE",
        "202411030100N0500_1_ServiceHistorical.SERVICE",
    ]


def test_spring_forward_day_has_92_files_and_no_2am():
    service = names("generic-ny-spring", ".SERVICE")
    assert len(service) == 92
    assert not [n for n in service if n[8:10] == "02"]
    assert "202403100145N0500_1_ServiceHistorical.SERVICE" in service
    assert "202403100300N0400_1_ServiceHistorical.SERVICE" in service


def test_agent_and_service_files_of_an_interval_share_their_prefix():
    agent = {n.split("_")[0] for n in names("generic-ny-fallback", ".AGENT")}
    service = {n.split("_")[0] for n in names("generic-ny-fallback", ".SERVICE")}
    assert agent and agent <= service


def test_header_matches_the_name_on_the_second_one_oclock():
    path = SAMPLES / "generic-ny-fallback" / "expected" / "202411030100N0500_1_ServiceHistorical.SERVICE"
    assert path.read_bytes().split(b"\r\n")[0] == b"SERVICE DATE: 2024-11-03 INTERVAL: 01:00 TZOFFSET: -0500 ACD: 1"


def test_domain_examples_for_file_name_prefixes():
    cases = [
        (datetime(2024, 11, 3, 5, 0), "America/New_York", "202411030100N0400_1_"),
        (datetime(2024, 11, 3, 5, 45), "America/New_York", "202411030145N0400_1_"),
        (datetime(2024, 11, 3, 6, 0), "America/New_York", "202411030100N0500_1_"),
        (datetime(2024, 3, 10, 6, 45), "America/New_York", "202403100145N0500_1_"),
        (datetime(2024, 3, 10, 7, 0), "America/New_York", "202403100300N0400_1_"),
        (datetime(2024, 7, 1, 8, 0), "Europe/Berlin", "202407011000P0200_1_"),
        (datetime(2024, 1, 1, 4, 15), "Asia/Kathmandu", "202401011000P0545_1_"),
        (datetime(2024, 1, 1, 4, 30), "Asia/Kolkata", "202401011000P0530_1_"),
        (datetime(2024, 1, 1, 10, 0), "UTC", "202401011000P0000_1_"),
    ]
    for utc, tz, prefix in cases:
        name, _, _ = file_name(utc.replace(tzinfo=UTC), "service", ConvertOptions(tz=tz))
        assert name == prefix + "ServiceHistorical.SERVICE", (utc, tz)


def test_utc_token_is_configurable():
    start = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
    name, _, _ = file_name(start, "agent", ConvertOptions(tz="UTC", utc_offset_token="N0000", acd=4))
    assert name == "202401011000N0000_4_AgentProductivity.AGENT"


def test_buckets_follow_the_local_clock_in_kathmandu():
    # 04:20 UTC is 10:05 in Kathmandu: its 15-minute interval starts at 10:00 local = 04:15 UTC.
    frame = pl.DataFrame({"t": [datetime(2024, 1, 1, 4, 20, tzinfo=UTC)]})
    floored = frame.select(floor_local(pl.col("t"), "Asia/Kathmandu", 15)).item()
    assert floored == datetime(2024, 1, 1, 4, 15, tzinfo=UTC)


def test_repeated_hour_stays_apart_when_bucketing():
    frame = pl.DataFrame({"t": [datetime(2024, 11, 3, 5, 40, tzinfo=UTC),
                                datetime(2024, 11, 3, 6, 40, tzinfo=UTC)]})
    floored = frame.select(floor_local(pl.col("t"), "America/New_York", 30))["t"].to_list()
    assert floored == [datetime(2024, 11, 3, 5, 30, tzinfo=UTC),
                       datetime(2024, 11, 3, 6, 30, tzinfo=UTC)]
