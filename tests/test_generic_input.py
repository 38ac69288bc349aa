"""Generic CSV/JSON input: format tolerance, and every kind of bad row rejecting the whole input."""

from __future__ import annotations

import csv
import json
import random

import pytest

HEADER = ("periodStart,acdServiceId,contactsOffered,contactsHandled,contactsAnswered,contactsAbandoned,"
          "totalTalkSeconds,totalHoldSeconds,totalAfterContactWorkSeconds,totalAnswerDelaySeconds,serviceLevelPercent")
GOOD = "2024-11-03T01:00:00-04:00,9912306,12,10,11,1,2311.5,120,340,96,83.33"
AGENT_HEADER = ("periodStart,acdAgentId,acdServiceId,contactsHandled,totalTalkSeconds,totalHoldSeconds,"
                "totalAfterContactWorkSeconds,totalPeriodHandleTimeSeconds,totalUnproratedReadyWaitingSeconds,"
                "totalUnproratedNotReadyBusySeconds,totalUnproratedInSessionSeconds")


def write(tmp_path, name, lines, encoding="utf-8", bom=False):
    path = tmp_path / name
    data = "\n".join(lines) + "\n"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode(encoding))
    return path


def test_appendix_b_example_comes_out_byte_exact(tmp_path, cli):
    src = write(tmp_path, "s.csv", [HEADER, GOOD, "2024-11-03T05:00:00Z,9912307,0,0,0,0,0,0,0,0,0"])
    out = tmp_path / "out"
    r = cli("convert", src, "--out", out, "--tz", "America/New_York", "--acd", "1")
    assert r.returncode == 0, r.stderr
    assert (out / "202411030100N0400_1_ServiceHistorical.SERVICE").read_bytes() == (
        b"SERVICE DATE: 2024-11-03 INTERVAL: 01:00 TZOFFSET: -0400 ACD: 1\r\n" + HEADER.split(",", 1)[1].encode()
        + b"\r\n9912306,12,10,11,1,2311.5,120,340,96,83.33\r\n9912307,0,0,0,0,0,0,0,0,0\r\n"
    )


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_delimiter_is_sniffed(tmp_path, cli, delimiter):
    src = write(tmp_path, "s.csv", [HEADER.replace(",", delimiter), GOOD.replace(",", delimiter)], bom=True)
    r = cli("convert", src, "--out", tmp_path / "o", "--tz", "America/New_York")
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "o").iterdir())) == 1


def test_cp1252_is_read_with_a_warning_and_ids_keep_leading_zeros(tmp_path, cli):
    header = AGENT_HEADER + ",contactsTransferredOut"
    row = "2024-11-03T01:00:00-04:00,00123,Q\xe9,1,100,0,10,110,700,90,900,0"
    src = write(tmp_path, "a.csv", [header, row], encoding="cp1252")
    r = cli("convert", src, "--out", tmp_path / "o", "--tz", "America/New_York")
    assert r.returncode == 0, r.stderr
    assert "cp1252" in r.stdout
    body = (tmp_path / "o" / "202411030100N0400_1_AgentProductivity.AGENT").read_bytes().decode()
    assert "\n00123,Qé,1,100,0,10,110,700,90,900,0\r\n" in body


def test_json_array_and_epoch_seconds(tmp_path, cli):
    (tmp_path / "s.json").write_text(
        '[{"periodStart": 1730610000, "acdServiceId": "A1", "contactsOffered": 3, "contactsHandled": 3,'
        ' "contactsAnswered": 3, "contactsAbandoned": 0, "totalTalkSeconds": 300.25, "totalHoldSeconds": 0,'
        ' "totalAfterContactWorkSeconds": 30, "totalAnswerDelaySeconds": 12, "serviceLevelPercent": 100}]')
    r = cli("convert", tmp_path / "s.json", "--out", tmp_path / "o", "--tz", "America/New_York")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "o" / "202411030100N0400_1_ServiceHistorical.SERVICE").read_bytes().decode()
    assert text.endswith("A1,3,3,3,0,300.25,0,30,12,100\r\n")


BAD_ROWS = [
    (GOOD.replace(",12,10,", ",twelve,10,"), "contactsOffered: not a number: twelve"),
    (GOOD.replace(",12,10,", ",-1,10,"), "contactsOffered: negative value -1"),
    (GOOD.replace(",12,10,", ",1730610000000,10,"), "contactsOffered: too large: 1730610000000 (an epoch"),
    (GOOD.replace(",12,10,", ",NaN,10,"), "contactsOffered: not a finite number"),
    (GOOD.replace(",12,10,", ",inf,10,"), "contactsOffered: not a finite number"),
    (GOOD.replace(",83.33", ",100.5"), "serviceLevelPercent: greater than 100"),
    (GOOD.replace("01:00:00-04:00", "01:07:00-04:00"), "periodStart: interval start 2024-11-03 01:07:00 is not on"),
    (GOOD.replace("-04:00", ""), "periodStart: no UTC offset"),
    (GOOD.replace("2024-11-03T01:00:00-04:00", "yesterday+01:00"), "periodStart: not a timestamp"),
    (GOOD.replace(",9912306,", ",99 12,"), "acdServiceId: ID contains a comma, quote or whitespace"),
    (GOOD.replace(",12,10,", ",,10,"), "contactsOffered: value is empty"),
]


@pytest.mark.parametrize(("row", "message"), BAD_ROWS, ids=[m.split(":")[0] + str(i) for i, (_, m) in
                                                            enumerate(BAD_ROWS)])
def test_bad_row_rejects_the_input_with_file_line_column_reason(tmp_path, cli, row, message):
    src = write(tmp_path, "s.csv", [HEADER, GOOD.replace("01:00:00", "01:15:00"), row])
    out = tmp_path / "out"
    r = cli("convert", src, "--out", out, "--tz", "America/New_York")
    assert r.returncode == 3
    assert f"{src}:3: {message}" in r.stderr
    assert not out.exists() or not list(out.iterdir())


def test_conflicting_duplicate_and_identical_duplicate(tmp_path, cli):
    src = write(tmp_path, "s.csv", [HEADER, GOOD, GOOD, GOOD.replace(",83.33", ",80")])
    r = cli("convert", src, "--out", tmp_path / "o", "--tz", "America/New_York")
    assert r.returncode == 3
    assert f"{src}:4: duplicate key (interval 2024-11-03T05:00:00Z acdServiceId=9912306)" in r.stderr
    assert f"{src}:4: duplicate key" in r.stderr and "different values than line 2" in r.stderr
    src = write(tmp_path, "s2.csv", [HEADER, GOOD, GOOD])
    r = cli("convert", src, "--out", tmp_path / "o2", "--tz", "America/New_York")
    assert r.returncode == 0, r.stderr
    assert "dropped 1 identical duplicate row" in r.stdout


def test_agent_unprorated_values_must_repeat(tmp_path, cli):
    rows = [AGENT_HEADER,
            "2024-11-03T01:00:00-04:00,12345,9912306,6,1402.5,60,200,655,120,45,900",
            "2024-11-03T01:00:00-04:00,12345,9912307,0,0,0,0,80,120,45,899"]
    src = write(tmp_path, "a.csv", rows)
    r = cli("convert", src, "--out", tmp_path / "o", "--tz", "America/New_York")
    assert r.returncode == 3
    assert f"{src}:2: totalUnproratedInSessionSeconds: differs between this agent's rows" in r.stderr
    assert f"{src}:3: totalUnproratedInSessionSeconds: differs" in r.stderr


def test_missing_and_unknown_columns(tmp_path, cli):
    src = write(tmp_path, "s.csv", [HEADER.replace(",contactsAbandoned", ",contactsAbandonned"),
                                    GOOD])
    r = cli("convert", src, "--out", tmp_path / "o", "--from", "generic", "--tz", "America/New_York")
    assert r.returncode == 3
    assert f"{src}:1: contactsAbandonned: unknown column" in r.stderr
    assert f"{src}:1: contactsAbandoned: required column is missing" in r.stderr


def test_many_problems_are_counted_and_all_go_to_rejects(tmp_path, cli):
    rows = [HEADER] + [GOOD.replace("01:00:00", f"{h:02d}:00:00").replace(",12,", ",x,") for h in range(0, 24)]
    src = write(tmp_path, "s.csv", rows)
    rejects = tmp_path / "rejects.csv"
    r = cli("convert", src, "--out", tmp_path / "o", "--tz", "America/New_York", "--rejects", rejects)
    assert r.returncode == 3
    assert "... and 4 more problem(s)" in r.stderr
    with open(rejects, newline="") as f:
        got = list(csv.DictReader(f))
    assert len(got) == 24 and got[0]["column"] == "contactsOffered" and got[0]["line"] == "2"


def test_bad_input_among_good_writes_nothing(tmp_path, cli):
    good = write(tmp_path, "good.csv", [HEADER, GOOD])
    bad = write(tmp_path, "bad.csv", [HEADER, GOOD.replace(",12,", ",-5,")])
    out = tmp_path / "out"
    r = cli("convert", good, bad, "--out", out, "--tz", "America/New_York")
    assert r.returncode == 3
    assert not out.exists() or not list(out.iterdir())


def test_unknown_format_and_unknown_zone_are_usage_errors(tmp_path, cli):
    src = write(tmp_path, "s.csv", [HEADER, GOOD])
    r = cli("convert", src, "--out", tmp_path / "o", "--from", "nosuch")
    assert r.returncode == 2 and "known formats" in r.stderr
    r = cli("convert", src, "--out", tmp_path / "o", "--tz", "-0500")
    assert r.returncode == 2 and "fixed UTC offset" in r.stderr


def test_undetectable_input(tmp_path, cli):
    src = write(tmp_path, "x.csv", ["a,b,c", "1,2,3"])
    r = cli("convert", src, "--out", tmp_path / "o")
    assert r.returncode == 3 and "pass --from" in r.stderr


def test_line_ends_match_what_the_csv_writer_prints():
    """The renderer sizes its buffer from the values' lengths; the bytes must agree exactly."""
    import polars as pl

    from gisgate.model import AGENT_COLUMNS
    from gisgate.render.gis import _lines, _text_columns

    # Whole numbers go out as integers (width counted from powers of ten), others as text.
    whole = [0, 7, 9, 10, 99, 100, 12345, 999999999999999]
    fractions = [1.5, 0.001, 0.0, 10.25, 3.0, 99.999, 1e15, 12.5]
    rows = pl.DataFrame({"agent_id": [f"a{i}" for i in range(len(whole))], "ready_s": [float(v) for v in whole],
                         "talk_s": fractions})
    by_name = {c.name: c for c in AGENT_COLUMNS}
    columns = [by_name[name] for name in rows.columns]
    data, ends = _lines(rows, _text_columns(rows, columns), "\r\n")
    shown = ["1.5", "0.001", "0", "10.25", "3", "99.999", "1000000000000000", "12.5"]
    lines = [f"a{i},{w},{f}\r\n" for i, (w, f) in enumerate(zip(whole, shown, strict=True))]
    assert bytes(data) == "".join(lines).encode()
    assert ends.to_list() == [len("".join(lines[: k + 1])) for k in range(len(lines))]


def test_json_behind_a_byte_order_mark_is_read_as_json(tmp_path, cli):
    rows = [{"periodStart": "2024-11-03T05:00:00Z", "acdServiceId": "9912306", "contactsOffered": 12,
             "contactsHandled": 10, "contactsAnswered": 11, "contactsAbandoned": 1, "totalTalkSeconds": 2311.5,
             "totalHoldSeconds": 120, "totalAfterContactWorkSeconds": 340, "totalAnswerDelaySeconds": 96,
             "serviceLevelPercent": 83.33}]
    src = tmp_path / "export.txt"  # no .json suffix: the content decides
    src.write_bytes(b"\xef\xbb\xbf" + json.dumps(rows).encode())
    r = cli("convert", src, "--out", tmp_path / "o", "--tz", "America/New_York")
    assert r.returncode == 0, r.stderr
    (out,) = (tmp_path / "o").iterdir()
    assert out.read_bytes().splitlines()[2] == b"9912306,12,10,11,1,2311.5,120,340,96,83.33"


def test_row_order_and_file_split_do_not_change_the_output(tmp_path, cli):
    """Rows shuffled, or spread over two files, give the same files, lines sorted by agent then service."""
    rows = [f"2024-11-03T0{h}:{m:02d}:00Z,{agent},{service},1,10.5,0,2,12.5,300,60,900"
            for h in (5, 6) for m in (0, 15) for agent in ("10002", "00007", "A12") for service in ("9912307", "42")]
    shuffled = list(rows)
    random.Random(7).shuffle(shuffled)
    outs = {}
    for label, inputs in {
        "sorted": [write(tmp_path, "sorted.csv", [AGENT_HEADER, *rows])],
        "shuffled": [write(tmp_path, "shuffled.csv", [AGENT_HEADER, *shuffled])],
        "split": [write(tmp_path, "a.csv", [AGENT_HEADER, *shuffled[::2]]),
                  write(tmp_path, "b.csv", [AGENT_HEADER, *shuffled[1::2]])],
    }.items():
        out = tmp_path / label
        r = cli("convert", *inputs, "--out", out, "--tz", "America/New_York")
        assert r.returncode == 0, r.stderr
        outs[label] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert outs["sorted"] == outs["shuffled"] == outs["split"]
    assert len(outs["sorted"]) == 4
    for data in outs["sorted"].values():
        keys = [tuple(line.split(",")[:2]) for line in data.decode().splitlines()[2:]]
        assert keys == sorted(keys) and len(keys) == 6
