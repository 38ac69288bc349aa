"""`--from contacts` / `--from textcontacts`: field names, aliases, mappings, Talkdesk calls, media finding."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from gisgate import model
from gisgate.config import ConvertOptions
from gisgate.errors import InputError
from gisgate.sources import contacts, head, textcontacts

OPTIONS = ConvertOptions(source="contacts")


def write(folder: Path, files: dict[str, str | bytes]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in files.items():
        p = folder / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        paths.append(p)
    return paths


def test_detect_claims_contact_field_names_only(tmp_path):
    c, t, g = write(tmp_path, {
        "c.csv": "AgentId,ContactStartTimeMs,Recording1\n1,2,a.wav\n",
        "t.csv": "textType,filename,time,username\nchat,a.txt,1,jo\n",
        "g.csv": "call_id,start_at,type\nx,y,inbound\n",
    })
    assert (contacts.detect(head(c)), textcontacts.detect(head(c))) == (True, False)
    assert (contacts.detect(head(t)), textcontacts.detect(head(t))) == (False, True)
    assert (contacts.detect(head(g)), textcontacts.detect(head(g))) == (False, False)  # needs --from


def test_csv_with_field_names_aliases_and_metadata(tmp_path):
    (csv, *_) = write(tmp_path, {
        "c.csv": "agentid,ContactStartTimeMs,Recording1,TimeZone,Called,Calling,Direction,metadata.Queue,Noise\n"
                 "1001,1700000000123,a.wav,America/Chicago,+1555,+1666,inbound,Sales,x\n",
        "a.wav": b"RIFF",
    })
    batch = contacts.read([csv], OPTIONS)
    row = batch.recordings.row(0, named=True)
    assert row["agent_id"] == "1001"
    assert row["start_at"] == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    assert (row["client_time_zone"], row["called"], row["calling"], row["direction"]) == (
        "America/Chicago", "+1555", "+1666", "0")
    assert row["metadata"] == [{"name": "Queue", "value": "Sales"}]
    assert batch.recordings.schema == pl.Schema(model.RECORDINGS)
    assert list(batch.media) == ["a.wav"]
    assert any("'Noise' is not a known field" in w for w in batch.warnings)


def test_ad_login_with_slash_becomes_backslash_with_a_warning(tmp_path):
    (csv, *_) = write(tmp_path, {"c.csv": "AgentId,ContactStartTimeMs,Recording1\nabc/bunkowm,1,a.wav\n",
                                 "a.wav": b"x"})
    batch = contacts.read([csv], OPTIONS)
    assert batch.recordings["agent_id"].to_list() == ["abc\\bunkowm"]
    assert any("backslash" in w for w in batch.warnings)


def test_agent_mapping_applies(tmp_path):
    (csv, *_) = write(tmp_path, {"c.csv": "AgentId,ContactStartTimeMs,Recording1\nu-1,1,a.wav\n", "a.wav": b"x"})
    options = ConvertOptions(mapping={"agents": {"u-1": "4711"}})
    assert contacts.read([csv], options).recordings["agent_id"].to_list() == ["4711"]


def test_unparseable_times_are_row_problems_and_the_row_is_left_out(tmp_path):
    (csv, *_) = write(tmp_path, {
        "c.csv": "AgentId,ContactStartTimeMs,Recording1,Recording2Offset\n"
                 "1,1.70000E+12,a.wav,\n2,yesterday,a.wav,\n3,2024-11-26 10:00:00,a.wav,5s\n"
                 "4,2024-11-26T10:00:00+01:00,a.wav,5000\n",
        "a.wav": b"x",
    })
    batch = contacts.read([csv], OPTIONS)
    assert [(p.line, p.column) for p in batch.row_problems] == [
        (2, "ContactStartTimeMs"), (3, "ContactStartTimeMs"), (4, "Recording2Offset")]
    assert "Excel scientific notation" in batch.row_problems[0].reason
    assert batch.recordings.select("origin_line", "start_at", "recording2_offset_ms").rows() == [
        (5, datetime(2024, 11, 26, 9, 0, tzinfo=UTC), 5000)]


def test_naive_times_use_the_naive_zone(tmp_path):
    (csv, *_) = write(tmp_path, {"c.csv": "AgentId,ContactStartTimeMs,Recording1\n1,2024-07-01 10:00:00,a.wav\n",
                                 "a.wav": b"x"})
    batch = contacts.read([csv], ConvertOptions(naive_tz="America/New_York"))
    assert batch.recordings["start_at"].to_list() == [datetime(2024, 7, 1, 14, 0, tzinfo=UTC)]


def test_json_variant(tmp_path):
    records = [
        {"AgentId": "jo@example.com", "ContactStartTimeMs": 1700000000000, "CalledAddress": "+1",
         "Calling": "+2", "TimeZone": "-06:00", "CustomMetadata": {"Queue": "Sales", "Score": 5},
         "Audio": [{"Location": "a.wav"}], "Screen": {"Location": "s.webmv", "StartTimeMs": 1700000001000}},
        {"AgentId": "1002", "Recording1": "b.opus", "Direction": 1},
    ]
    (js, *_) = write(tmp_path, {"c.json": json.dumps(records), "a.wav": b"x", "b.opus": b"y", "s.webmv": b"z"})
    r1, r2 = contacts.read([js], OPTIONS).recordings.iter_rows(named=True)
    assert (r1["recording1"], r1["audio_location"], r1["screen_location"]) == ("a.wav", None, "s.webmv")
    assert r1["screen_start_at"] == datetime(2023, 11, 14, 22, 13, 21, tzinfo=UTC)
    assert (r1["called"], r1["calling"], r1["client_time_zone"]) == ("+1", "+2", "-06:00")
    assert r1["metadata"] == [{"name": "Queue", "value": "Sales"}, {"name": "Score", "value": "5"}]
    assert (r2["recording1"], r2["direction"], r2["start_at"]) == ("b.opus", "1", None)


def test_config_column_mapping_for_other_exports(tmp_path):
    (csv, *_) = write(tmp_path, {
        "export.csv": "Agent Login,Started,File,Queue Name\njo@example.com,2024-11-26T10:00:00Z,a.wav,Sales\n",
        "a.wav": b"x",
    })
    options = ConvertOptions(contacts={"columns": {"Agent Login": "AgentId", "Started": "ContactStartTimeMs",
                                                   "File": "Recording1", "Queue Name": "metadata.Queue"}})
    row = contacts.read([csv], options).recordings.row(0, named=True)
    assert (row["agent_id"], row["recording1"], row["metadata"]) == (
        "jo@example.com", "a.wav", [{"name": "Queue", "value": "Sales"}])
    assert row["start_at"] == datetime(2024, 11, 26, 10, 0, tzinfo=UTC)


def test_talkdesk_calls_report(tmp_path):
    entries = [
        {"call_id": "c1", "callsid": "s1", "type": "inbound", "start_at": "2024-11-26T14:00:00Z",
         "user_id": "u1", "user_email": "ann@example.com", "handling_user_id": "u1",
         "handling_user_email": "ann@example.com", "talkdesk_phone_number": "+100", "contact_phone_number": "+200",
         "disposition_code": "Done", "ring_groups": "sales"},
        {"call_id": "c2", "callsid": "s2", "type": "outbound", "start_at": "2024-11-26T15:00:00Z",
         "user_id": "u2", "user_email": "bob@example.com", "talkdesk_phone_number": "+100",
         "contact_phone_number": "+300"},
        {"call_id": "c3", "callsid": "s3", "type": "abandoned", "start_at": "2024-11-26T16:00:00Z"},
        {"call_id": "c4", "callsid": "s4", "type": "inbound", "start_at": "2024-11-26T17:00:00Z",
         "user_email": "ann@example.com"},
    ]
    (js, *_) = write(tmp_path, {"calls.json": json.dumps({"type": "calls", "total": 4, "entries": entries}),
                                "c1.wav": b"x", "s2.opus": b"y"})
    batch = contacts.read([js], ConvertOptions(mapping={"agents": {"u1": "4711"}}))
    rows = batch.recordings.select("call_id", "agent_id", "recording1", "direction", "called", "calling").rows()
    assert rows == [("c1", "4711", "c1.wav", "0", "+100", "+200"),
                    ("c2", "bob@example.com", "s2.opus", "1", "+300", "+100")]
    assert batch.recordings["metadata"][0].to_list() == [{"name": "disposition_code", "value": "Done"},
                                                         {"name": "ring_groups", "value": "sales"}]
    assert any("1 call(s) not connected" in w for w in batch.warnings)
    assert any("1 connected call(s) have no recording" in w for w in batch.warnings)


def test_media_in_a_zip_are_found_and_read_lazily(tmp_path):
    (csv,) = write(tmp_path / "data", {"c.csv": "AgentId,ContactStartTimeMs,Recording1\n1,1,a.wav\n"})
    z = tmp_path / "media.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("rec/a.wav", b"AUDIO")
        zf.writestr("rec/b.wav", b"OTHER")
    batch = contacts.read([csv, z], OPTIONS)
    assert list(batch.media) == ["a.wav"]
    assert batch.media["a.wav"].load() == b"AUDIO"
    assert batch.media["a.wav"].origin.endswith("media.zip!rec/a.wav")
    assert any("not referenced by any contact, not imported: b.wav" in w for w in batch.warnings)


def test_a_hostile_zip_rejects_the_upload(tmp_path):
    (csv,) = write(tmp_path, {"c.csv": "AgentId,ContactStartTimeMs,Recording1\n1,1,a.wav\n"})
    z = tmp_path / "media.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(zipfile.ZipInfo("../a.wav"), b"x")
    with pytest.raises(InputError, match=r"\.\./a\.wav: path climbs out"):
        contacts.read([csv, z], OPTIONS)


def test_the_same_media_name_twice_in_an_upload_is_refused(tmp_path):
    (csv, wav) = write(tmp_path, {"c.csv": "AgentId,ContactStartTimeMs,Recording1\n1,1,a.wav\n", "A.WAV": b"x"})
    z = tmp_path / "media.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("a.wav", b"y")
    with pytest.raises(InputError, match="same media file name as"):
        contacts.read([csv, z, wav], OPTIONS)


def test_media_beside_the_data_file_and_unreferenced_ones_reported(tmp_path):
    (csv, *_) = write(tmp_path, {"c.csv": "AgentId,ContactStartTimeMs,Recording1\n1,1700000000000,a.wav\n",
                                 "a.wav": b"x", "old.opus": b"y", "notes.doc": b"z"})
    batch = contacts.read([csv], OPTIONS)
    assert list(batch.media) == ["a.wav"]
    assert batch.warnings == ["1 media file(s) not referenced by any contact, not imported: old.opus"]


def test_no_data_file_among_the_inputs(tmp_path):
    (wav,) = write(tmp_path, {"a.wav": b"x"})
    with pytest.raises(InputError, match="no contact data file"):
        contacts.read([wav], OPTIONS)


def test_text_contacts_csv(tmp_path):
    (csv, *_) = write(tmp_path, {
        "t.csv": "textType,filename,time,username,evalForm,id,metadata,receiver,references,sender,subject\n"
                 "Twitter,a.txt,1700000000000,jo,Form A,t1,Queue=Chat|Lang=en,x@y.z|w@y.z,<r1>,cust,Hi\n",
        "a.txt": "hello".encode("utf-16"),
    })
    batch = textcontacts.read([csv], ConvertOptions())
    row = batch.text_contacts.row(0, named=True)
    assert (row["text_type"], row["eval_form"], row["receiver"], row["references"]) == (
        "other", "Form A", ["x@y.z", "w@y.z"], ["<r1>"])
    assert row["metadata"] == [{"name": "Queue", "value": "Chat"}, {"name": "Lang", "value": "en"}]
    assert batch.media["a.txt"].load() == b"hello"  # UTF-16 body re-encoded as UTF-8
    assert batch.text_contacts.schema == pl.Schema(model.TEXT_CONTACTS)


def test_text_contacts_json_with_inline_text(tmp_path):
    records = {"records": [
        {"textType": "email", "time": 1700000000000, "username": "jo", "id": "m1", "text": "Dear Sir,\nthanks",
         "metadata": {"Queue": "Mail"}, "receiver": ["a@b.c"], "evalForm": {"id": 3, "name": "QA"}},
    ]}
    (js,) = write(tmp_path, {"t.json": json.dumps(records)})
    batch = textcontacts.read([js], ConvertOptions())
    row = batch.text_contacts.row(0, named=True)
    assert (row["filename"], row["eval_form"], row["receiver"]) == ("m1.txt", "QA", ["a@b.c"])
    assert batch.media["m1.txt"].load() == b"Dear Sir,\nthanks"


def test_cp1252_body_is_read_with_a_warning(tmp_path):
    (csv, *_) = write(tmp_path, {"t.csv": "textType,filename,time,username\nchat,a.txt,1,jo\n",
                                 "a.txt": "café".encode("cp1252")})
    batch = textcontacts.read([csv], ConvertOptions())
    assert batch.media["a.txt"].load() == "café".encode()
    assert any("read as cp1252" in w for w in batch.warnings)


def test_text_metadata_without_equals_is_a_row_problem(tmp_path):
    (csv, *_) = write(tmp_path, {"t.csv": "textType,filename,time,username,metadata\nchat,a.txt,1,jo,Queue\n",
                                 "a.txt": b"x"})
    batch = textcontacts.read([csv], ConvertOptions())
    assert [str(p) for p in batch.row_problems] == [
        f"{csv}:2: metadata: 'Queue' is not name=value (metadata is name=value|name=value)"]


def test_a_single_zip_holding_the_data_file_and_the_media(tmp_path):
    z = tmp_path / "upload.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("batch/contacts.csv", "AgentId,ContactStartTimeMs,Recording1\n1,1,a.wav\n")
        zf.writestr("batch/media/a.wav", b"AUDIO")
    batch = contacts.read([z], OPTIONS)
    assert batch.recordings.select("origin_file", "origin_line", "recording1").rows() == [
        (f"{z}!batch/contacts.csv", 2, "a.wav")]
    assert batch.media["a.wav"].load() == b"AUDIO"


def test_a_data_file_inside_a_zip_is_refused_when_one_is_given(tmp_path):
    (csv,) = write(tmp_path, {"c.csv": "AgentId,ContactStartTimeMs,Recording1\n1,1,a.wav\n"})
    z = tmp_path / "upload.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("other.csv", "AgentId\n1\n")
        zf.writestr("a.wav", b"x")
    with pytest.raises(InputError, match="other.csv: a data file inside a ZIP is read only when no data file"):
        contacts.read([csv, z], OPTIONS)


def test_ids_mangled_by_excel_are_row_problems(tmp_path):
    (csv, *_) = write(tmp_path, {"c.csv": "AgentId,ContactStartTimeMs,Recording1,AssocCallId\n"
                                          "1,1,a.wav,1.23457E+17\n2,1,a.wav,123456789012345678\n", "a.wav": b"x"})
    batch = contacts.read([csv], OPTIONS)
    assert [(p.line, p.column) for p in batch.row_problems] == [(2, "AssocCallId")]
    assert batch.recordings["assoc_call_id"].to_list() == ["123456789012345678"]


def test_a_media_file_removed_before_rendering_is_an_input_error(tmp_path):
    from gisgate.render import contact

    (csv, wav) = write(tmp_path, {"c.csv": "AgentId,ContactStartTimeMs,Recording1\n1,1,a.wav\n", "a.wav": b"x"})
    batch = contacts.read([csv], OPTIONS)
    wav.unlink()
    with pytest.raises(InputError, match="cannot read media file"):
        list(contact.render(batch, OPTIONS))


def test_epoch_seconds_given_as_milliseconds_are_a_row_problem(tmp_path):
    from gisgate import pipeline

    (csv, *_) = write(tmp_path, {"c.csv": "AgentId,ContactStartTimeMs,Recording1\n1,1700000000,a.wav\n", "a.wav": b"x"})
    with pytest.raises(InputError, match="c.csv:2: ContactStartTimeMs: '1700000000' as epoch milliseconds is "
                                         "1970-01-20, before 2000: it looks like epoch seconds"):
        pipeline.convert([csv], OPTIONS.model_copy(update={"to": "contact"}))


def test_two_columns_for_one_field_are_refused(tmp_path):
    (csv, *_) = write(tmp_path, {"c.csv": "AgentId,ContactStartTimeMs,Recording1,TimeZone,ClientTimeZone\n"
                                          "1,1,a.wav,UTC,UTC\n", "a.wav": b"x"})
    with pytest.raises(InputError, match="ClientTimeZone: gives ClientTimeZone like column 'TimeZone'"):
        contacts.read([csv], OPTIONS)


def test_a_mapping_to_an_unknown_field_is_a_config_error(tmp_path):
    from gisgate.errors import ConfigError

    (csv, *_) = write(tmp_path, {"c.csv": "Agent,ContactStartTimeMs,Recording1\n1,1,a.wav\n", "a.wav": b"x"})
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['AgentID'\]"):
        contacts.read([csv], ConvertOptions(contacts={"columns": {"Agent": "AgentID"}}))
    (js,) = write(tmp_path, {"t.json": '[{"type": "chat"}]'})
    with pytest.raises(ConfigError, match="text_columns names unknown"):
        textcontacts.read([js], ConvertOptions(contacts={"text_columns": {"type": "kind"}}))
