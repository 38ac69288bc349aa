"""Bulk contacts from JSON as people write it: one contact object on its own, and records that name
the called / calling numbers with the aliases or with the CONTACT names, mixed in one file."""

from __future__ import annotations

import csv
import json
import wave


def media(folder, *names):
    for name in names:
        with wave.open(str(folder / name), "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000), w.writeframes(b"\0\0" * 80)
    return [folder / n for n in names]


def contact_rows(out):
    (data,) = out.glob("CONTACT.*.csv")
    with open(data, newline="") as f:
        return list(csv.DictReader(f))


def test_one_contact_object_not_wrapped_in_an_array(tmp_path, cli):
    one = tmp_path / "contact.json"
    one.write_text(json.dumps({"AgentId": "1001", "ContactStartTimeMs": 1730597400000, "CallId": "c1",
                               "Audio": [{"Location": "a.wav"}], "CustomMetadata": {"queue": "billing"}}))
    r = cli("convert", one, *media(tmp_path, "a.wav"), "--to", "contact", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    (row,) = contact_rows(tmp_path / "o")
    assert row["AgentId"] == "1001" and row["CallId"] == "c1" and row["Recording1"].endswith("-a.wav")
    assert row["metadata.queue"] == "billing"


def test_aliases_and_names_may_differ_from_record_to_record(tmp_path, cli):
    data = tmp_path / "contacts.json"
    data.write_text(json.dumps([
        {"AgentId": "1001", "ContactStartTimeMs": 1730597400000, "Recording1": "a.wav", "Called": "100",
         "Calling": "200"},
        {"AgentId": "1002", "ContactStartTimeMs": 1730597500000, "Recording1": "b.wav", "CalledAddress": "300",
         "callingaddress": "400"},
        {"AgentId": "1003", "ContactStartTimeMs": 1730597600000, "Recording1": "c.wav", "Called": "500",
         "CalledAddress": "500"},  # the same number under both names: no conflict
    ]))
    r = cli("convert", data, *media(tmp_path, "a.wav", "b.wav", "c.wav"), "--to", "contact", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    rows = contact_rows(tmp_path / "o")
    assert [(x["CalledAddress"], x["CallingAddress"]) for x in rows] == [("100", "200"), ("300", "400"), ("500", "")]


def test_a_record_giving_one_field_two_values_is_that_records_problem(tmp_path, cli):
    data = tmp_path / "contacts.json"
    data.write_text(json.dumps([
        {"AgentId": "1001", "ContactStartTimeMs": 1730597400000, "Recording1": "a.wav", "Called": "100"},
        {"AgentId": "1002", "ContactStartTimeMs": 1730597500000, "Recording1": "b.wav", "Called": "300",
         "CalledAddress": "301"},
    ]))
    files = media(tmp_path, "a.wav", "b.wav")
    r = cli("convert", data, *files, "--to", "contact", "--out", tmp_path / "o")
    assert r.returncode == 3
    assert f"{data}:2: CalledAddress: gives CalledAddress like 'Called' but another value; keep one of them" in r.stderr
    r = cli("convert", data, *files, "--to", "contact", "--out", tmp_path / "o", "--rejects", tmp_path / "r.csv")
    assert r.returncode == 0, r.stderr
    assert [x["AgentId"] for x in contact_rows(tmp_path / "o")] == ["1001"]
