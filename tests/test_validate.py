"""`gisgate validate` accepts the golden files and rejects each kind of defect."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import SAMPLES

GOOD_AGENT = SAMPLES / "generic-ny-fallback" / "expected" / "202411031000N0500_1_AgentProductivity.AGENT"
GOOD_SERVICE = SAMPLES / "generic-ny-fallback" / "expected" / "202411031000N0500_1_ServiceHistorical.SERVICE"
GOOD_WHIT = next((SAMPLES / "generic-to-whit" / "expected").iterdir())


def mutate(tmp_path, source, edit, name=None):
    data = source.read_bytes()
    path = tmp_path / (name or source.name)
    path.write_bytes(edit(data))
    return path


DEFECTS = [
    ("bom", GOOD_SERVICE, lambda d: b"\xef\xbb\xbf" + d, None, "byte-order mark"),
    ("not utf-8", GOOD_SERVICE, lambda d: d + b"x\xff\r\n", None, ":5: not valid UTF-8"),
    ("no final newline", GOOD_SERVICE, lambda d: d.rstrip(b"\r\n"), None, "last line is not terminated"),
    ("mixed endings", GOOD_SERVICE, lambda d: d.replace(b"\r\n", b"\n", 1), None, "mixes CRLF and LF"),
    ("header offset", GOOD_SERVICE, lambda d: d.replace(b"TZOFFSET: -0500", b"TZOFFSET: -0400"), None,
     "differs from the name's N0500"),
    ("header acd", GOOD_SERVICE, lambda d: d.replace(b"ACD: 1", b"ACD: 2"), None, "header ACD 2 differs"),
    ("header type", GOOD_SERVICE, lambda d: d.replace(b"SERVICE DATE", b"AGENT DATE"), None, "header says AGENT"),
    ("header time", GOOD_SERVICE, lambda d: d.replace(b"INTERVAL: 10:00", b"INTERVAL: 10:15"), None,
     "differ from the name's"),
    ("bad name", GOOD_SERVICE, lambda d: d, "202411031000-0500_1_ServiceHistorical.SERVICE",
     "file name does not match"),
    ("wrong zone offset", GOOD_SERVICE, lambda d: d.replace(b"-0500", b"-0400"),
     "202411031000N0400_1_ServiceHistorical.SERVICE", "not the offset in force in America/New_York"),
    ("unaligned", GOOD_SERVICE, lambda d: d.replace(b"10:00", b"10:05"),
     "202411031005N0500_1_ServiceHistorical.SERVICE", "not on a 15-minute boundary"),
    ("missing column", GOOD_SERVICE, lambda d: d.replace(b",serviceLevelPercent", b""), None,
     "serviceLevelPercent: required column is missing"),
    ("unknown column", GOOD_SERVICE, lambda d: d.replace(b"serviceLevelPercent", b"serviceLevel"), None,
     "serviceLevel: unknown column"),
    ("field count", GOOD_SERVICE, lambda d: d.replace(b"\r\n9912306,", b"\r\n9912306,1,", 1), None,
     "fields, the column line has"),
    ("negative", GOOD_SERVICE, lambda d: d.replace(b"\r\n9912306,", b"\r\n9912306,-", 1), None,
     "not a plain non-negative number"),
    ("exponent", GOOD_SERVICE, lambda d: d.replace(b"\r\n9912306,", b"\r\n9912306,1e3", 1).replace(b",1e3", b",1e3"),
     None, "not a plain non-negative number"),
    ("percent", GOOD_SERVICE, lambda d: d[: d.rindex(b",", 0, len(d) - 2)] + b",100.01\r\n", None, "greater than 100"),
    ("four decimals", GOOD_SERVICE, lambda d: d.replace(b",165.2,", b",12.3457,"), None,
     "totalHoldSeconds: 12.3457 has 4 decimals; a GIS file shows at most 3 for seconds values"),
    ("count decimals", GOOD_SERVICE, lambda d: d.replace(b"9912306,28,", b"9912306,28.0001,"), None,
     "contactsOffered: 28.0001 has 4 decimals; a GIS file shows at most 3 for count values"),
    ("percent decimals", GOOD_SERVICE, lambda d: d.replace(b",85.71\r\n", b",85.714\r\n"), None,
     "serviceLevelPercent: 85.714 has 3 decimals; a GIS file shows at most 2 for percent values"),
    ("duplicate key", GOOD_SERVICE, lambda d: d + d.split(b"\r\n")[2] + b"\r\n", None, "second row for"),
    ("unprorated differ", GOOD_AGENT, lambda d: d + b"A-17,999,0,0,0,0,0,0,0,1,0\r\n", None,
     "(unprorated values repeat per agent)"),
]


def test_golden_examples_are_valid(cli):
    r = cli("validate", GOOD_AGENT, GOOD_SERVICE, GOOD_WHIT, "--tz", "America/New_York")
    assert r.returncode == 0, r.stderr
    assert "3 file(s) valid" in r.stdout


@pytest.mark.parametrize(("label", "source", "edit", "name", "message"), DEFECTS, ids=[d[0] for d in DEFECTS])
def test_defect_is_rejected(tmp_path, cli, label, source, edit, name, message):
    path = mutate(tmp_path, source, edit, name)
    r = cli("validate", path, "--tz", "America/New_York")
    assert r.returncode == 3, label
    assert message in r.stderr
    assert str(path) in r.stderr


def test_prorated_values_must_sum_to_unprorated(tmp_path, cli):
    path = tmp_path / "202411031000N0500_1_AgentProductivity.AGENT"
    path.write_bytes(b"AGENT DATE: 2024-11-03 INTERVAL: 10:00 TZOFFSET: -0500 ACD: 1\r\n"
                     b"acdAgentId,acdServiceId,contactsHandled,totalTalkSeconds,totalHoldSeconds,"
                     b"totalAfterContactWorkSeconds,totalPeriodHandleTimeSeconds,totalUnproratedReadyWaitingSeconds,"
                     b"totalUnproratedNotReadyBusySeconds,totalUnproratedInSessionSeconds,"
                     b"totalProratedReadyWaitingSeconds\r\n"
                     b"a,1,0,0,0,0,0,100,0,900,60\r\na,2,0,0,0,0,0,100,0,900,30\r\n")
    r = cli("validate", path)
    assert r.returncode == 3
    assert "prorated values sum to 90, not 100" in r.stderr


WHIT_DEFECTS = [
    ("date", lambda d: d.replace(b"2024-11-03", b"11/03/2024", 1), "date: '11/03/2024': write YYYY-MM-DD"),
    ("period", lambda d: d.replace(b",04:00,", b",4:00,", 1), "period: '4:00': write HH:MM"),
    ("service level", lambda d: d.replace(b",0\r\n", b",71.5\r\n", 1),
     "integer from 0 to 100"),
    ("column", lambda d: d.replace(b"handledCalls", b"handled"), "handledCalls: required WHIT column is missing"),
    ("decimals", lambda d: d.replace(b",1,0,1,0,0,0,0", b",1,0,1,0.0005,0,0,0", 1),
     "avgTalkTime: 0.0005 has 4 decimals; a WHIT file shows at most 3"),
]


@pytest.mark.parametrize(("label", "edit", "message"), WHIT_DEFECTS, ids=[d[0] for d in WHIT_DEFECTS])
def test_whit_defect_is_rejected(tmp_path, cli, label, edit, message):
    path = mutate(tmp_path, GOOD_WHIT, edit)
    assert path.read_bytes() != GOOD_WHIT.read_bytes(), "the edit must change the file"
    r = cli("validate", path)
    assert r.returncode == 3, label
    assert message in r.stderr


def test_validate_refuses_unknown_files(tmp_path, cli):
    shutil.copy(GOOD_SERVICE, tmp_path / "notes.txt")
    r = cli("validate", tmp_path / "notes.txt")
    assert r.returncode == 3 and "not a GIS file name" in r.stderr


RT = SAMPLES / "livevox-rtstate" / "expected" / "rtstate-0001.json"
CV = SAMPLES / "talkdesk-cwfm" / "expected" / "cwfm-callvolume-0001.json"
AA = SAMPLES / "talkdesk-cwfm" / "expected" / "cwfm-agentactivity-0001.json"
BODY_DEFECTS = [
    ("state as number", RT, lambda d: d.replace(b'"gisStateIdentifier":"3"', b'"gisStateIdentifier":3', 1),
     "gisStateIdentifier: must be one of"),
    ("state code", RT, lambda d: d.replace(b'"gisStateIdentifier":"3"', b'"gisStateIdentifier":"7"', 1),
     "gisStateIdentifier: must be one of"),
    ("seconds timestamp", RT, lambda d: d.replace(b'"timestamp":1730608222000', b'"timestamp":1730608222', 1),
     "timestamp: must be an integer of epoch milliseconds"),
    ("interval not aligned", CV, lambda d: d.replace(b'"Interval":"2024-11-03 04:30:00"',
                                                     b'"Interval":"2024-11-03 04:31:00"', 1), "Interval: must be"),
    ("activity too long", AA, lambda d: d.replace(b'"Activity":"Ready"', b'"Activity":"ReadyForCalls"', 1),
     "Activity: longer than 10 characters"),
    ("local event time", AA, lambda d: d.replace(b'"EventTime":"2024-11-03 04:30:22"',
                                                 b'"EventTime":"11/3/2024 4:30:22"', 1), "EventTime: must be UTC"),
]


@pytest.mark.parametrize(("label", "source", "edit", "message"), BODY_DEFECTS, ids=[d[0] for d in BODY_DEFECTS])
def test_json_body_defect_is_rejected(tmp_path, cli, label, source, edit, message):
    path = mutate(tmp_path, source, edit)
    assert path.read_bytes() != source.read_bytes(), "the edit must change the file"
    r = cli("validate", path)
    assert r.returncode == 3, label
    assert message in r.stderr


def test_what_convert_writes_from_values_with_many_decimals_is_valid(tmp_path, cli):
    """Exports carry more decimals than GIS and WHIT files show: the outputs round them away (a
    renderer printing one decimal too many fails here, and in tests/test_gis_numbers.py)."""
    lines = (SAMPLES / "generic-ny-fallback" / "input" / "service.csv").read_text().splitlines()
    fine = [lines[0]] + [",".join(f if i < 2 else f"{float(f) * 0.987654321:.9f}"
                                  for i, f in enumerate(line.split(","))) for line in lines[1:]]
    src = tmp_path / "service.csv"
    src.write_text("\n".join(fine) + "\n")
    for to in ("gis", "whit"):
        out = tmp_path / to
        r = cli("convert", src, "--tz", "America/New_York", "--to", to, "--out", out)
        assert r.returncode == 0, r.stderr
        r = cli("validate", out, "--tz", "America/New_York")
        assert r.returncode == 0, r.stderr
