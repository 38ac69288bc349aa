"""A new user's first hour: every problem of an input at once, zones that do not fit the data,
and messages in the user's words (no library jargon, formats named, the local clock shown)."""

from __future__ import annotations

import csv
import json
import re

import pytest

from gisgate import config
from gisgate.errors import ConfigError
from gisgate.sources import SOURCES
from tests.conftest import SAMPLES

NY = SAMPLES / "generic-ny-fallback" / "input"
WHIT = SAMPLES / "whit-ny-fallback" / "input" / "whit.csv"


def with_defects(src, tmp_path, name, edits: dict[int, dict[str, str]]):
    """A copy of the CSV `src` with the fields `edits` names replaced: {row index: {column: text}}."""
    lines = src.read_text().splitlines()
    header = lines[0].split(",")
    rows = [line.split(",") for line in lines[1:]]
    for i, fields in edits.items():
        for column, text in fields.items():
            rows[i][header.index(column)] = text
    path = tmp_path / name
    path.write_text("\n".join([lines[0], *(",".join(r) for r in rows)]) + "\n")
    return path


# --- every problem at once ----------------------------------------------------------------------

FIVE_GENERIC = {2: {"contactsOffered": "abc"}, 5: {"totalTalkSeconds": "-4"},
                8: {"periodStart": "2024-11-03T02:07:00-05:00"}, 11: {"periodStart": "2024-11-03 02:00"},
                14: {"serviceLevelPercent": "101"}}


def test_five_bad_generic_rows_are_reported_together_in_the_message_and_the_rejects(tmp_path, cli):
    src = with_defects(NY / "service.csv", tmp_path, "service.csv", FIVE_GENERIC)
    rejects = tmp_path / "rejects.csv"
    r = cli("convert", src, "--tz", "America/New_York", "--out", tmp_path / "out", "--rejects", rejects)
    assert r.returncode == 3, r.stderr
    expected = [(4, "contactsOffered", "not a number: abc"), (7, "totalTalkSeconds", "negative value -4"),
                (10, "periodStart", "not on a 15-minute boundary"), (13, "periodStart", "no UTC offset"),
                (16, "serviceLevelPercent", "greater than 100")]
    for line, column, reason in expected:
        assert re.search(rf"{re.escape(str(src))}:{line}: {column}: .*{reason}", r.stderr), (line, r.stderr)
    with open(rejects, newline="") as f:
        got = [(int(row["line"]), row["column"]) for row in csv.DictReader(f)]
    assert got == [(line, column) for line, column, _ in expected]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_bad_value_hides_no_duplicate_key_and_is_not_reported_twice(tmp_path, cli):
    lines = (NY / "service.csv").read_text().splitlines()
    clash = lines[3].rsplit(",", 1)[0] + ",99.5"  # the key of line 4 again, other values
    bad = lines[5].replace(",0,", ",x,", 1)  # line 6: a value that is not a number
    src = tmp_path / "s.csv"
    src.write_text("\n".join([*lines[:5], bad, *lines[6:], clash, bad]) + "\n")
    r = cli("convert", src, "--tz", "America/New_York", "--out", tmp_path / "out")
    assert r.returncode == 3
    problems = r.stderr.removeprefix("Error: ").splitlines()
    assert any("duplicate key" in p and "with different values than line 4" in p for p in problems), r.stderr
    assert sum("not a number: x" in p for p in problems) == 2, r.stderr  # each bad row once, as itself


def test_five_bad_whit_rows_are_reported_together(tmp_path, cli):
    src = with_defects(WHIT, tmp_path, "whit.csv", {
        1: {"receivedCalls": "many"}, 3: {"avgTalkTime": "-1"}, 5: {"period": "00:07"}, 7: {"date": "3.11.2024"},
        9: {"serviceLevel": "120"}})
    rejects = tmp_path / "rejects.csv"
    r = cli("convert", src, "--from", "whit", "--tz", "America/New_York", "--out", tmp_path / "out",
            "--rejects", rejects)
    assert r.returncode == 3, r.stderr
    with open(rejects, newline="") as f:
        got = [(int(row["line"]), row["column"]) for row in csv.DictReader(f)]
    assert got == [(3, "receivedCalls"), (5, "avgTalkTime"), (7, "period"), (9, "date"), (11, "serviceLevel")]


def test_a_broken_file_does_not_hide_the_row_problems_of_another(tmp_path, cli):
    broken = tmp_path / "agent.csv"
    broken.write_text((NY / "agent.csv").read_text().replace("acdServiceId", "queue", 1))
    src = with_defects(NY / "service.csv", tmp_path, "service.csv", {0: {"contactsHandled": "?"}})
    r = cli("convert", src, broken, "--from", "generic", "--tz", "America/New_York", "--out", tmp_path / "out")
    assert r.returncode == 3
    assert f"{src}:2: contactsHandled: not a number: ?" in r.stderr
    assert f"{broken}:1: queue: unknown column" in r.stderr


# --- a wrong or missing zone ----------------------------------------------------------------------

def test_offsets_of_the_input_that_the_zone_does_not_have_are_a_warning(tmp_path, cli):
    r = cli("convert", NY / "service.csv", "--out", tmp_path / "utc", "--json")
    assert r.returncode == 0, r.stderr
    warnings = json.loads(r.stdout)["warnings"]
    assert any("periodStart: 100 of 100 timestamps carry UTC offsets (-05:00, -04:00) that UTC does not have" in w
               and "pass --tz" in w for w in warnings), warnings
    r = cli("convert", NY / "service.csv", NY / "agent.csv", "--tz", "America/Chicago", "--out", tmp_path / "chi")
    assert r.returncode == 0, r.stderr
    warned = [line for line in r.stdout.splitlines() if "warning: periodStart" in line]
    assert len(warned) == 1 and "that America/Chicago does not have" in warned[0]
    assert "2024-11-03T00:00:00-04:00 is 2024-11-02 23:00 -05:00 in America/Chicago" in warned[0]
    r = cli("convert", NY / "service.csv", NY / "agent.csv", "--tz", "America/New_York", "--out", tmp_path / "ny")
    assert r.returncode == 0 and "warning" not in r.stdout, r.stdout


def test_utc_written_as_z_or_zero_offset_says_nothing_of_a_zone(tmp_path, cli):
    src = tmp_path / "s.csv"
    src.write_text((NY / "service.csv").read_text().replace("2024-11-03T00:00:00-04:00", "2024-11-03T04:00:00Z")
                   .replace("2024-11-03T00:15:00-04:00", "2024-11-03T04:15:00+00:00"))
    r = cli("convert", src, "--tz", "America/New_York", "--out", tmp_path / "out")
    assert r.returncode == 0 and "warning" not in r.stdout, r.stdout


@pytest.mark.parametrize(("zone", "use"), [("EST", "America/New_York"), ("MST", "America/Phoenix"),
                                           ("HST", "Pacific/Honolulu"), ("EST5EDT", "America/New_York"),
                                           ("PST8PDT", "America/Los_Angeles"), ("-0500", "America/New_York"),
                                           ("Etc/GMT+5", "America/New_York")])
def test_legacy_and_fixed_zones_are_refused_with_the_name_to_use(zone, use):
    with pytest.raises(ValueError, match=re.escape(use)):
        config.check_zone(zone)
    with pytest.raises(ConfigError, match=re.escape(use)):
        config.parse({"acd": {"timezone": zone}})
    for fine in ("UTC", "Etc/UTC", "GMT", "America/New_York", "US/Eastern", "Asia/Kathmandu"):
        assert config.check_zone(fine) == fine


def test_legacy_zone_on_the_command_line(tmp_path, cli):
    r = cli("convert", NY / "service.csv", "--tz", "EST", "--out", tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("Error: --tz: 'EST' is a legacy zone name") and "America/New_York" in r.stderr


# --- messages in the user's words ---------------------------------------------------------------

def test_a_binary_file_is_said_to_be_no_text_file(tmp_path, cli):
    program = tmp_path / "export.csv"
    program.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00" * 20)
    for extra in ([], ["--from", "generic"], ["--from", "talkdesk"]):
        r = cli("convert", program, *extra, "--out", tmp_path / "out")
        assert r.returncode == 3
        assert r.stderr == f"Error: {program}:1: not a text file: binary data (a NUL byte); export the data as CSV " \
                           "or JSON\n"


def test_excel_unicode_text_is_read(tmp_path, cli):
    lines = (NY / "service.csv").read_text().splitlines()
    src = tmp_path / "service.txt"
    src.write_bytes("\r\n".join(line.replace(",", "\t") for line in lines).encode("utf-16") + b"\r\x00\n\x00")
    out = tmp_path / "out"
    r = cli("convert", src, "--tz", "America/New_York", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "read as UTF-16" in r.stdout
    expected = SAMPLES / "generic-ny-fallback" / "expected"
    for p in out.iterdir():
        assert p.read_bytes() == (expected / p.name).read_bytes()


def test_a_csv_with_cr_only_line_ends_is_read(tmp_path, cli):
    src = tmp_path / "service.csv"
    src.write_bytes((NY / "service.csv").read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r"))
    r = cli("convert", src, "--tz", "America/New_York", "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "out").iterdir())) == 100


def test_a_row_with_more_fields_than_the_header_is_named(tmp_path, cli):
    lines = (NY / "service.csv").read_text().splitlines()
    lines[6] += ",7,8"
    src = tmp_path / "service.csv"
    src.write_text("\n".join(lines) + "\n")
    r = cli("convert", src, "--tz", "America/New_York", "--out", tmp_path / "out")
    assert r.returncode == 3 and "Traceback" not in r.stderr
    assert f"{src}:7: has 13 fields, the header (line 1) has 11 (comma-separated)" in r.stderr


def test_config_errors_name_the_key_and_the_key_meant(tmp_path):
    with pytest.raises(ConfigError) as e:
        config.parse({"watch": {"rescan_secnds": 5}, "target": {"ds": {"kind": "sftp", "host": "h", "user": "u",
                                                                        "known_host": "k"}}}, "gisgate.toml")
    lines = str(e.value).splitlines()
    assert "gisgate.toml: unknown key `rescan_secnds` in [watch] (did you mean `rescan_seconds`?)" in lines
    assert "gisgate.toml: unknown key `known_host` in [target.ds] (did you mean `known_hosts`?)" in lines
    with pytest.raises(ConfigError, match=r"unknown key `zzz` at the top level; known keys: acd, archive"):
        config.parse({"zzz": 1})
    with pytest.raises(ConfigError) as e:
        config.parse({"acd": {"timezone": "Nowhere/Nope"}})
    assert "Value error" not in str(e.value) and "acd.timezone: unknown time zone 'Nowhere/Nope'" in str(e.value)


def test_option_errors_carry_no_library_jargon(tmp_path, cli):
    r = cli("convert", NY / "service.csv", "--tz", "Nowhere/Nope", "--out", tmp_path)
    assert r.returncode == 2
    assert r.stderr == ("Error: --tz: unknown time zone 'Nowhere/Nope': use an IANA name such as America/New_York "
                        "or UTC\n")
    config_file = tmp_path / "gisgate.toml"
    config_file.write_text("[watch]\nrescan_secnds = 5\n")
    r = cli("convert", NY / "service.csv", "--config", config_file, "--out", tmp_path)
    assert r.returncode == 2 and "did you mean `rescan_seconds`?" in r.stderr and "Extra inputs" not in r.stderr


def test_help_of_from_lists_every_format(cli):
    for command in ("convert", "report"):
        r = cli(command, "--help")
        text = " ".join(r.stdout.split())
        assert "--from FORMAT" in text
        for name in SOURCES:
            assert re.search(rf"\b{name}\b", text.split("--from FORMAT", 1)[1].split("--", 1)[0]), (command, name)


def test_summary_shows_the_acd_clock_and_ids_no_mapping_knew(tmp_path, cli):
    r = cli("convert", NY / "service.csv", "--tz", "America/New_York", "--out", tmp_path / "o1")
    assert r.returncode == 0, r.stderr
    assert "intervals: 100  (2024-11-03 00:00 -04:00 .. 2024-11-03 23:45 -05:00, America/New_York)" in r.stdout
    config_file = tmp_path / "gisgate.toml"
    config_file.write_text('[mapping.service_names]\n"9912306" = "Billing"\n')
    r = cli("convert", NY / "service.csv", "--tz", "America/New_York", "--config", config_file,
            "--out", tmp_path / "o2")
    assert r.returncode == 0, r.stderr
    assert "  unknown queues (not in [mapping] services): 9912307" in r.stdout.splitlines()
    r = cli("convert", NY / "service.csv", "--tz", "America/New_York", "--config", config_file,
            "--out", tmp_path / "o3", "--json")
    summary = json.loads(r.stdout)
    assert summary["unknown"] == {"queues": ["9912307"]}
    assert (summary["first_local"], summary["last_local"]) == ("2024-11-03T00:00-04:00", "2024-11-03T23:45-05:00")
