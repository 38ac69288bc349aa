"""produced.py: one grammar for GIS names, one classifier of produced files, one travel rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gisgate.produced import gis_name, parse_gis_name, travel_key


@pytest.mark.parametrize(
    ("local", "offset", "acd", "kind", "token", "name"),
    [
        (datetime(2024, 11, 3, 1, 0), timedelta(hours=-4), 1, "agent", "P0000",
         "202411030100N0400_1_AgentProductivity.AGENT"),
        (datetime(2024, 11, 3, 1, 0), timedelta(hours=-5), 1, "service", "P0000",
         "202411030100N0500_1_ServiceHistorical.SERVICE"),
        (datetime(2024, 6, 15, 13, 45), timedelta(hours=5, minutes=45), 12, "agent", "P0000",
         "202406151345P0545_12_AgentProductivity.AGENT"),
        (datetime(2024, 6, 15, 13, 0), timedelta(0), 4, "service", "N0000",
         "202406151300N0000_4_ServiceHistorical.SERVICE"),
    ],
)
def test_gis_names_format_and_parse_by_one_grammar(local, offset, acd, kind, token, name):
    assert gis_name(local, offset, acd, kind, token) == name
    parsed = parse_gis_name(name)
    assert (parsed.kind, int(parsed.acd), parsed.offset) == (kind, acd, offset)
    assert parsed.stamp == local.strftime("%Y%m%d%H%M")
    assert parsed.start_utc() == (local - offset).replace(tzinfo=UTC)


@pytest.mark.parametrize("name", ["20241103010N0400_1_ServiceHistorical.SERVICE",
                                  "202411030100X0400_1_AgentProductivity.AGENT",
                                  "202411030100N0400_1_AgentProductivity.agent",
                                  "202411030100N0400__AgentProductivity.AGENT"])
def test_what_is_not_a_gis_name(name):
    assert parse_gis_name(name) is None


def test_an_impossible_stamp_has_no_start():
    assert parse_gis_name("202402300100P0000_1_AgentProductivity.AGENT").start_utc() is None


def test_what_travels_together():
    agent, service = "202411030100N0400_1_AgentProductivity.AGENT", "202411030100N0400_1_ServiceHistorical.SERVICE"
    other_hour = "202411030100N0500_1_ServiceHistorical.SERVICE"
    assert travel_key(agent, "gis-agent") == (travel_key(service, "gis-service")[0], 0)
    assert travel_key(service, "gis")[1] == 1
    assert travel_key(other_hour, "gis")[0] != travel_key(service, "gis")[0]  # the repeated hour is another interval
    assert travel_key("a.wav", "contact-media") == ("contact", 0)
    assert travel_key("CONTACT.b.csv", "contact") == ("contact", 1)
    assert travel_key("TEXTCONTACT.json", "textcontact") == ("textcontact", 1)
    assert travel_key("x.txt", "textcontact-body") == ("textcontact", 0)
    whit = travel_key("WHIT_1_202411030000Z_202411040000Z.csv", "whit")
    assert whit[0] != travel_key("rtstate-0001.json", "rtstate")[0]
