"""Platform adapters: detection, units, times, mapping tables, duplicates, and row errors."""

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from gisgate import model
from gisgate.config import ConvertOptions, Mapping
from gisgate.errors import ConfigError, InputError
from gisgate.sources import _platform as P
from gisgate.sources import cwfm, linklive, livevox, talkdesk
from gisgate.sources._io import LINE, head, scan_csv


def put(tmp_path, name, content):
    p = tmp_path / name
    p.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return p


STATUS_HEADER = "user_id,user_name,status_label,status_start_at,status_end_at,team_name\n"


def test_talkdesk_user_status_dedupe_merge_gap_and_unknown(tmp_path):
    p = put(
        tmp_path,
        "us.csv",
        STATUS_HEADER
        + (
            "u1,Ann,Available,2024-11-03 05:00:00,2024-11-03 05:10:00,A\n"
            "u1,Ann,Available,2024-11-03 05:00:00,2024-11-03 05:10:00,A\n"  # exact duplicate
            "u1,Ann,Lunch,2024-11-03 05:10:00,2024-11-03 05:20:00,A\n"
            "u1,Ann,Lunch,2024-11-03 05:20:00,2024-11-03 05:25:00,B\n"  # team change: same status continues
            "u1,Ann,Gardening,2024-11-03 05:30:00,2024-11-03 05:40:00,B\n"  # gap before it; unknown label
        ),
    )
    b = talkdesk.read([p], ConvertOptions(mapping=Mapping(agents={"u1": "7"})))
    ev = b.state_events
    assert ev["state"].to_list() == ["READY", "NOT_READY", "LOGOUT", "NOT_READY", "LOGOUT"]
    assert ev["reason"].to_list() == [None, "Lunch", None, "Gardening", None]
    assert set(ev["agent_id"]) == {"7"}
    assert any("duplicated" in w for w in b.warnings) and any("'Gardening' ×1" in w for w in b.warnings)


def test_talkdesk_naive_times_in_configured_zone(tmp_path):
    p = put(tmp_path, "us.csv", STATUS_HEADER + "u1,Ann,Available,2024-11-03 00:30:00,2024-11-03 00:40:00,A\n")
    b = talkdesk.read([p], ConvertOptions(naive_tz="America/New_York"))
    assert b.state_events["at"][0] == datetime(2024, 11, 3, 4, 30, tzinfo=UTC)


def test_talkdesk_row_errors_name_file_line_and_column(tmp_path):
    p = put(
        tmp_path,
        "us.csv",
        STATUS_HEADER
        + (
            "u1,Ann,Available,2024-11-03 05:00:00,2024-11-03 05:10:00,A\n"
            "u 2,Bob,Available,yesterday,2024-11-03 05:10:00,A\n"
        ),
    )
    with pytest.raises(InputError) as e:
        talkdesk.read([p], ConvertOptions())
    text = str(e.value)
    assert f"{p}:3: status_start_at: not a date and time: yesterday" in text
    assert f"{p}:3: agent_id: ID contains a comma, quote or space: u 2" in text


def test_talkdesk_contacts_json_yes_no_none_and_ring_group_mapping(tmp_path):
    entry = {
        "interaction_id": "i1",
        "contact_id": "c1",
        "direction": "IN",
        "contact_type": "Answered",
        "started_at": "2024-06-03 09:00:00",
        "answered_at": "2024-06-03 09:00:12",
        "finished_at": "2024-06-03 09:05:00",
        "wait_time": 12,
        "talk_time": 270,
        "hold_time": 18,
        "after_call_work_time": 30,
        "transfer_out": "Yes",
        "ring_groups": '["Billing Team", "x"]',
        "handling_ring_groups": "None",
        "user_id": "u1",
    }
    abandoned = entry | {
        "contact_id": "c2",
        "contact_type": "Abandoned",
        "answered_at": "None",
        "user_id": "None",
        "transfer_out": "None",
        "talk_time": 0,
    }
    p = put(tmp_path, "c.json", {"type": "contacts", "version": "v1", "total": 2, "entries": [entry, abandoned]})
    assert talkdesk.detect(head(p))
    b = talkdesk.read([p], ConvertOptions(mapping=Mapping(services={"Billing Team": "101"})))
    c = b.contacts.sort("contact_id")
    assert c["service_id"].to_list() == ["101", "101"]
    assert c["outcome"].to_list() == ["answered", "abandoned"]
    assert c["transferred"].to_list() == [True, False]
    assert c["agent_id"].to_list() == ["u1", None] and c["answered_at"][1] is None
    assert c.schema == pl.Schema(model.CONTACTS)


def test_linklive_units_epochs_and_composite_states(tmp_path):
    q = put(
        tmp_path,
        "q.json",
        {
            "organizationId": "o",
            "queueEngagementIntervals": [
                {
                    "queueId": "q-1",
                    "intervalStart": 1730610000,
                    "enqueuedCount": 42,
                    "abandonedCount": 4,
                    "totalHandleTimeMs": 9423500,
                }
            ],
        },
    )
    s = put(
        tmp_path,
        "s.json",
        {
            "organizationId": "o",
            "userStates": [
                {
                    "userId": "u-1",
                    "presenceStatus": "online",
                    "activity": "available",
                    "allocationStatus": "not_allocated",
                    "startTimestamp": 1730610012,
                },
                {"userId": "u-1", "status": "online_available_partially_allocated", "startTimestamp": 1730610312250},
                {
                    "userId": "u-1",
                    "status": "offline_unavailable_partially_allocatedAvailable",
                    "startTimestamp": 1730611212,
                },
                {"userId": "u-1", "status": "busy_unavailable_not_allocated", "startTimestamp": 1730611812},
            ],
        },
    )
    assert linklive.detect(head(q)) and linklive.detect(head(s))
    b = linklive.read([q, s], ConvertOptions())
    row = b.queue_intervals.row(0, named=True)
    assert row["talk_s"] == 9423.5 and row["handled"] == 38 and b.source_interval == 15
    ev = b.state_events
    assert ev["state"].to_list() == ["READY", "TALKING", "LOGOUT", "NOT_READY"]
    assert ev["at"][1] == datetime(2024, 11, 3, 5, 5, 12, 250000, tzinfo=UTC)
    assert ev["reason"][3] == "busy" and not b.warnings


def test_livevox_pages_merge_out_of_order_and_mixed_epochs(tmp_path):
    events = [
        {"timestamp": 1730610300000, "agentId": 5, "agentLoginId": "AG1", "eventType": "READY", "seqNum": 2},
        {"timestamp": "1730610000000", "agentId": 5, "agentLoginId": "AG1", "eventType": "LOGON", "seqNum": 1},
        {"timestamp": "1730610600", "agentId": 6, "eventType": "NOT_READY", "notReadyReasonCode": "LUNCH", "seqNum": 3},
    ]
    p1 = put(tmp_path, "p1.json", {"agentEvent": events[:2], "token": "a"})
    p2 = put(tmp_path, "p2.json", {"agentEvent": events[1:], "token": "b"})  # overlaps page 1
    b = livevox.read([p1, p2], ConvertOptions())
    ev = b.state_events.unique().sort("agent_id", "at")  # the span builder and renderers do this once
    assert ev.height == 3
    assert ev["agent_id"].to_list() == ["6", "AG1", "AG1"]
    assert ev["reason"].to_list() == ["LUNCH", "LOGON", None]


def test_livevox_snapshots_difference_and_counter_reset(tmp_path):
    def snap(t, offered, handled, talk_avg):
        return {
            "timestamp": t,
            "serviceId": "9",
            "totalOffered": offered,
            "totalHandled": handled,
            "totalAbandoned": offered - handled,
            "averageTalkDuration": talk_avg,
            "averageWrapupDuration": 0,
            "averageSpeedOfAnswer": 0,
            "totalCallsAnsweredWithinSLA": handled,
        }

    p = put(
        tmp_path,
        "s.json",
        [
            snap("2024-11-04T04:30:00Z", 50, 40, 100),
            snap("2024-11-04T04:45:00Z", 60, 48, 100),
            snap("2024-11-04T05:00:00Z", 3, 3, 80),
        ],
    )  # reset: a new LiveVox day
    q = livevox.read([p], ConvertOptions()).queue_intervals
    assert q["offered"].to_list() == [10, 3] and q["handled"].to_list() == [8, 3]
    assert q["talk_s"].to_list() == [800, 240]


def test_cwfm_bodies_strings_and_dates(tmp_path):
    p = put(
        tmp_path,
        "cv.json",
        {
            "AccountId": "1",
            "CallVolumeUpdates": [
                {
                    "CollectionPoint": "7",
                    "Interval": "11/3/2024 5:00:00",
                    "ContactsOffered": "12",
                    "ContactsNotHandled": "2",
                    "TalkTime": "1800.5",
                    "HoldTime": "30",
                    "ServiceLevelPct": "120",
                }
            ],
        },
    )
    a = put(
        tmp_path,
        "au.csv",
        "AgentId,EventTime,Activity,ReasonCode\n2,2024-11-03 05:00:00,ONCALL,\n2,11/3/2024 5:10:00,After Call Work,\n",
    )
    assert cwfm.detect(head(p)) and cwfm.detect(head(a))
    b = cwfm.read([p, a], ConvertOptions())
    r = b.queue_intervals.row(0, named=True)
    assert (r["offered"], r["handled"], r["abandoned"], r["service_level_pct"]) == (12, 10, 2, 100)
    assert b.state_events["state"].to_list() == ["TALKING", "WORK_READY"]


def test_platform_formats_do_not_claim_each_others_files(tmp_path):
    files = {
        "talkdesk": put(tmp_path, "us.csv", STATUS_HEADER + "u1,A,Available,2024-11-03 05:00:00,,A\n"),
        "linklive": put(tmp_path, "ll.json", {"userStates": [{"userId": "u", "startTimestamp": 1, "status": "x"}]}),
        "livevox": put(tmp_path, "lv.json", {"agentEvent": [{"timestamp": 1, "agentId": 1, "eventType": "READY"}]}),
        "cwfm": put(
            tmp_path,
            "cw.json",
            {
                "AccountId": "1",
                "AgentUpdates": [{"AgentId": "1", "EventTime": "2024-11-03 05:00:00", "Activity": "Ready"}],
            },
        ),
    }
    modules = {"talkdesk": talkdesk, "linklive": linklive, "livevox": livevox, "cwfm": cwfm}
    for name, path in files.items():
        assert [n for n, m in modules.items() if m.detect(head(path))] == [name]


def test_state_mapping_table_is_checked_and_overrides_defaults(tmp_path):
    p = put(tmp_path, "us.csv", STATUS_HEADER + "u1,A,After Call Work,2024-11-03 05:00:00,2024-11-03 05:01:00,A\n")
    with pytest.raises(ConfigError, match="mapping.states.Break: 'SLEEPING' is not one of"):
        talkdesk.read([p], ConvertOptions(mapping=Mapping(states={"Break": "SLEEPING"})))
    b = talkdesk.read([p], ConvertOptions(mapping=Mapping(states={"after_call_work": "WORK_NOT_READY"})))
    assert b.state_events["state"][0] == "WORK_NOT_READY"


def test_talkdesk_calls_report_and_day_fraction_durations(tmp_path):
    p = put(
        tmp_path,
        "calls.csv",
        (
            "call_id,callsid,type,start_at,end_at,user_id,talk_time,wait_time,hold_time,ring_groups,is_transfer\n"
            "k1,CA1,inbound,2024-06-03T09:00:00Z,2024-06-03T09:05:00Z,u1,270,12,18,support,true\n"
            "k2,CA2,abandoned,2024-06-03T09:01:00Z,2024-06-03T09:02:00Z,,0,60,0,support,false\n"
            "k3,CA3,outbound,2024-06-03T09:03:00Z,2024-06-03T09:04:00Z,u1,0d 0h 0m 42s,0,0:00:05,,false\n"
        ),
    )
    c = talkdesk.read([p], ConvertOptions()).contacts.sort("contact_id")
    assert c["outcome"].to_list() == ["answered", "abandoned", "outbound"]
    assert c["direction"].to_list() == ["in", "in", "out"]
    assert c["talk_s"].to_list() == [270.0, 0.0, 42.0] and c["hold_s"].to_list() == [18.0, 0.0, 5.0]
    assert c["answered_at"][0] == datetime(2024, 6, 3, 9, 0, 12, tzinfo=UTC)
    assert c["agent_id"].to_list() == ["u1", None, "u1"] and c["transferred"].to_list() == [True, False, False]
    bad = put(
        tmp_path,
        "bad.csv",
        (
            "call_id,callsid,type,start_at,end_at,user_id,talk_time\n"
            "k1,CA1,inbound,2024-06-03T09:00:00Z,2024-06-03T09:05:00Z,u1,lots\n"
        ),
    )
    with pytest.raises(InputError, match=r"bad.csv:2: talk_time: not a number of seconds: lots"):
        talkdesk.read([bad], ConvertOptions())


def test_livevox_agent_stats_snapshots_become_agent_rows(tmp_path):
    def snap(t, service, ready, nr, talk, wrap, calls):
        return {
            "timestamp": t,
            "agentLoginId": "AG1",
            "agentId": 5,
            "serviceId": service,
            "readyDuration": ready,
            "totalNotReadyDuration": nr,
            "talkDuration": talk,
            "wrapupDuration": wrap,
            "inboundCalls": calls,
            "outboundCalls": 0,
        }

    p = put(
        tmp_path,
        "as.json",
        {
            "agentStats": [
                snap("2024-11-04T04:30:02Z", "9", 100, 0, 50, 10, 1),
                snap("2024-11-04T04:45:01Z", "9", 400, 100, 350, 60, 3),
                snap("2024-11-04T04:30:02Z", "8", 0, 0, 0, 0, 0),
                snap("2024-11-04T04:45:01Z", "8", 200, 0, 0, 0, 0),
            ]
        },
    )
    assert livevox.detect(head(p))
    a = livevox.read([p], ConvertOptions()).agent_intervals
    assert a["interval_start"].to_list() == [datetime(2024, 11, 4, 4, 30, tzinfo=UTC)] * 2
    assert a["service_id"].to_list() == ["8", "9"]
    assert a["ready_s"].to_list() == [500.0, 500.0] and a["in_session_s"].to_list() == [950.0, 950.0]
    assert a["prorated_ready_s"].to_list() == [200.0, 300.0]
    assert a["handled"].to_list() == [0.0, 2.0] and a["period_handle_s"].to_list() == [0.0, 350.0]


AGENT_UPDATES = (
    "AgentId,EventTime,Activity,ReasonCode\n"
    "7,2024-11-03 05:00:00.250,Ready,\n"
    "7,11/3/2024 5:10:00,Not Ready, Lunch \n"  # a time for the slow path; blanks around a reason
    "8,1730610000,on_call,None\n"  # epoch seconds; a null marker
    "8,2024-11-03T05:20:00Z,Gardening,12\n"  # ISO with Z; an unknown state
    "9,2024-11-03 05:30:00,LoggedOut,N/A\n"
)


def _updates(tmp_path, name, text, encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def _problems(path, options):
    with pytest.raises(InputError) as e:
        cwfm.read([path], options)
    return [(p.file, p.line, p.column, p.reason) for p in e.value.problems]


def test_cwfm_agent_updates_csv_is_read_compactly_as_text_is(tmp_path):
    """A plain AgentUpdates CSV is streamed into compact columns (categorical texts); the events are
    those the text read gives (a UTF-16 copy of the file is read as text)."""
    options = ConvertOptions(mapping=Mapping(agents={"8": "A8"}))
    lean = cwfm.read([_updates(tmp_path, "au.csv", AGENT_UPDATES)], options)
    text = cwfm.read([_updates(tmp_path, "au16.csv", AGENT_UPDATES, "utf-16")], options)
    ev = lean.state_events
    assert ev.schema["agent_id"] == pl.Categorical and ev.schema["raw_state"] == pl.Categorical
    assert text.state_events.schema["agent_id"] == pl.String
    assert model.strings(ev).equals(text.state_events)
    assert ev["agent_id"].to_list() == ["7", "7", "A8", "A8", "9"]
    assert ev["at"].to_list()[:3] == [datetime(2024, 11, 3, 5, 0, 0, 250000, tzinfo=UTC),
                                     datetime(2024, 11, 3, 5, 10, tzinfo=UTC), datetime(2024, 11, 3, 5, 0, tzinfo=UTC)]
    assert ev["reason"].to_list() == [None, "Lunch", None, "12", None]  # (an unknown state is Not Ready)
    assert ev["state"].to_list() == ["READY", "NOT_READY", "TALKING", "NOT_READY", "LOGOUT"]
    assert any("'Gardening' ×1" in w for w in lean.warnings)


def test_cwfm_agent_updates_csv_read_compactly_strips_blanks_around_times(tmp_path):
    """Times with blanks or tabs around them are left by the streamed fast path and read once
    cleaned, as the text read reads them: epoch numbers, plain and slow-path spellings alike."""
    padded = (
        "AgentId,EventTime,Activity\n"
        "7, 2024-11-03 05:00:00.250 ,Ready\n"
        "7,\t1730610600,Not Ready\n"
        "8,2024-11-03 05:20:00,Ready\n"
        "8,11/3/2024 5:30:00 ,LoggedOut\n"
        "9,  null ,Ready\n"  # a null marker with blanks: empty
    )
    path = _updates(tmp_path, "padded.csv", padded)
    assert _problems(path, ConvertOptions()) == [(str(path), 6, "EventTime", "value is empty")]
    path = _updates(tmp_path, "padded.csv", padded.replace("9,  null ,Ready\n", ""))
    lean = cwfm.read([path], ConvertOptions()).state_events
    text = cwfm.read([_updates(tmp_path, "padded16.csv", padded.replace("9,  null ,Ready\n", ""), "utf-16")],
                     ConvertOptions()).state_events
    assert lean.schema["agent_id"] == pl.Categorical and model.strings(lean).equals(text)
    # read in the scan once stripped: only the time the fast path cannot read is kept as text (a
    # file of padded times must not keep millions of texts)
    scanned = P.scanned_time(scan_csv(path)[0].select(LINE, "EventTime"), "at", "EventTime", "UTC").collect()
    assert scanned["EventTime"].drop_nulls().cast(pl.String).to_list() == ["11/3/2024 5:30:00"]
    assert lean["at"].to_list() == [datetime(2024, 11, 3, 5, 0, 0, 250000, tzinfo=UTC),
                                    datetime(2024, 11, 3, 5, 10, tzinfo=UTC), datetime(2024, 11, 3, 5, 20, tzinfo=UTC),
                                    datetime(2024, 11, 3, 5, 30, tzinfo=UTC)]


@pytest.mark.parametrize("spell", [
    lambda t: f"{t.month}/{t.day}/{t.year} {t.hour}:{t.minute:02d}:{t.second:02d}",  # Cloud Connect's M/D/YYYY
    lambda t: t.strftime("%Y-%m-%dT%H:%M:%S") + "Z",
    lambda t: t.strftime("%Y-%m-%dT%H:%M:%S-05:00"),
])
def test_cwfm_agent_updates_csv_in_another_spelling_is_read_in_the_scan(tmp_path, spell):
    """A file whose times are spelled as its first value is (M/D/YYYY, ISO-8601 with an offset) is
    read in the scan in that spelling, not kept as millions of texts for the slow path; values in
    other spellings further down still read as the text read reads them."""
    t0 = datetime(2024, 11, 3, 4, 0, 0)
    rows = "".join(f"{i % 7},{spell(t0 + timedelta(seconds=37 * i))},Ready\n" for i in range(3000))
    others = "3,2024-11-03 06:00:00.5,Not Ready\n4,1730613600,LoggedOut\n5,11/3/2024 6:01,Ready\n"
    text = "AgentId,EventTime,Activity\n" + rows + others
    path = _updates(tmp_path, "spelled.csv", text)
    lean = cwfm.read([path], ConvertOptions(naive_tz="America/New_York")).state_events
    as_text = cwfm.read([_updates(tmp_path, "spelled16.csv", text, "utf-16")],
                        ConvertOptions(naive_tz="America/New_York")).state_events
    assert lean.schema["agent_id"] == pl.Categorical and model.strings(lean).equals(as_text)
    lf, first = scan_csv(path)
    scanned = P.scanned_time(lf.select(LINE, "EventTime"), "at", "EventTime", "America/New_York",
                             first["EventTime"]).collect()
    assert scanned["EventTime"].drop_nulls().len() <= 1  # (only a spelling the first value does not have)
    assert scanned["at"].null_count() == scanned["EventTime"].drop_nulls().len()


def test_cwfm_agent_updates_csv_read_compactly_names_every_bad_value(tmp_path):
    """Null markers, unreadable times, times before 1970 and IDs that cannot travel are reported by
    file, line and column, as the text read reports them."""
    bad = (
        "AgentId,EventTime,Activity,ReasonCode\n"
        "7,2024-11-03 05:00:00,Ready,\n"
        "None,2024-11-03 05:01:00,Ready,\n"  # line 3: a null marker for the ID
        "7,N/A,Ready,\n"  # line 4: a null marker for the time
        "7,yesterday,Ready,\n"  # line 5: no time
        "7,1969-12-31 23:59:59,Ready,\n"  # line 6: before 1970
        "a b,2024-11-03 05:02:00,  ,\n"  # line 7: a blank in the ID, a blank Activity
        "7,2024-13-03 05:03:00,Ready,\n"  # line 8: month 13
    )
    path = _updates(tmp_path, "bad.csv", bad)
    found = _problems(path, ConvertOptions())
    assert found == [
        (str(path), 3, "AgentId", "value is empty"),
        (str(path), 4, "EventTime", "value is empty"),
        (str(path), 5, "EventTime", "not a date and time: yesterday"),
        (str(path), 6, "EventTime", "not a date and time: 1969-12-31 23:59:59"),
        (str(path), 7, "Activity", "value is empty"),
        (str(path), 7, "agent_id", "ID contains a comma, quote or space: a b"),
        (str(path), 8, "EventTime", "not a date and time: 2024-13-03 05:03:00"),
    ]
    as_text = _updates(tmp_path, "bad16.csv", bad, "utf-16")
    assert [p[1:] for p in _problems(as_text, ConvertOptions())] == [p[1:] for p in found]


def test_cwfm_agent_updates_csv_that_is_not_plain_is_read_as_text(tmp_path):
    """A byte that is not UTF-8 past the first 64 KB (the streamed read fails), or white space other
    than blanks around a time (which `nulls` keeps): the file is read as text, as before."""
    rows = "".join(f"{i % 50},2024-11-03 05:{i % 60:02d}:00,Ready,\n" for i in range(4000))
    path = _updates(tmp_path, "late.csv", AGENT_UPDATES + rows + "7,2024-11-03 06:00:00,Not Ready,Café\n", "cp1252")
    b = cwfm.read([path], ConvertOptions())
    assert b.state_events.schema["agent_id"] == pl.String
    assert b.state_events["reason"].to_list()[-1] == "Café"
    assert any("cp1252" in w for w in b.warnings)
    nbsp = _updates(tmp_path, "nbsp.csv", "AgentId,EventTime,Activity\n7,None\u00a0,Ready\n")
    assert _problems(nbsp, ConvertOptions()) == [(str(nbsp), 2, "EventTime", "not a date and time: None\u00a0")]


def test_cwfm_agent_updates_csv_read_compactly_beside_a_json_body_or_alone_without_records(tmp_path):
    """A streamed CSV's compact events and a JSON body's text ones make one frame; a CSV with a
    header alone gives no events, as the text read gives none."""
    body = put(tmp_path, "au.json", {"AccountId": "1", "AgentUpdates": [
        {"AgentId": "5", "EventTime": "2024-11-03 04:00:00", "Activity": "Ready"}]})
    csv = _updates(tmp_path, "au.csv", AGENT_UPDATES)
    both = cwfm.read([body, csv], ConvertOptions()).state_events
    assert model.strings(both)["agent_id"].to_list() == ["5", "7", "7", "8", "8", "9"]
    assert both["state"].to_list()[:2] == ["READY", "READY"]
    empty = _updates(tmp_path, "empty.csv", "AgentId,EventTime,Activity,ReasonCode\n")
    assert cwfm.read([empty], ConvertOptions()).state_events is None
