"""`gisgate validate` on CONTACT.*.csv and TEXTCONTACT files and the media they reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from gisgate import validate
from gisgate.produced import referenced_files
from gisgate.validate import contact

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "contacts"


def folder(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    for name, data in files.items():
        (tmp_path / name).write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return tmp_path


def found(path: Path) -> list[str]:
    return [f"{p.line}: {p.column}: {p.reason}" for p in contact.check(path)]


@pytest.mark.parametrize("case", ["recordings", "talkdesk", "textcontacts"])
def test_golden_outputs_are_valid_with_their_media(case):
    files = validate.expand([SAMPLES / case / "expected"])
    assert validate.validate(files) == []


def test_matches_by_name():
    kinds = [validate._meant(Path(n)) for n in ("CONTACT.x.csv", "contact.x.csv", "TEXTCONTACT.csv",
                                                "TEXTCONTACT.json", "CONTACTS.csv", "x.csv")]
    assert [k in ("contact", "textcontact") for k in kinds] == [True, True, True, True, False, False]


def test_a_good_contact_file(tmp_path):
    d = folder(tmp_path, {"CONTACT.b.csv": "AgentId,ContactStartTimeMs,Recording1,metadata.Q\r\n"
                                           '1,1700000000000,a.wav,"x, y"\r\n', "a.wav": b"RIFF"})
    assert found(d / "CONTACT.b.csv") == []
    assert referenced_files(d / "CONTACT.b.csv") == ["a.wav"]


def test_lower_case_prefix_is_not_picked_up_by_the_data_server(tmp_path):
    d = folder(tmp_path, {"contact.b.csv": "AgentId,ContactStartTimeMs,Recording1\n1,1700000000000,a.wav\n",
                          "a.wav": b"x"})
    assert found(d / "contact.b.csv") == [
        "0: : the name must start with upper-case 'CONTACT.' and end in '.csv' (the Data Server matches it "
        "case-sensitively)"]


def test_header_field_count_bom_and_media(tmp_path):
    d = folder(tmp_path, {"CONTACT.b.csv": "\ufeffAgentId,TimeZone,Recording1,Recording1\n1,x,a.wav,a.wav\n"
                                           "jsmith,x,gone.wav\n2,x,b.mp3,b.mp3\n"})
    assert found(d / "CONTACT.b.csv") == [
        "1: : starts with a UTF-8 byte-order mark; write UTF-8 without BOM",
        "1: Recording1: column appears more than once",
        "1: TimeZone: not a field of this file (write ClientTimeZone)",
        "2: Recording1: 'a.wav' is not in the upload (no such media file)",
        "3: : 3 fields, the header has 4",
        "4: Recording1: 'b.mp3' is not in the upload (no such media file)",
        "4: Recording1: 'b.mp3': media type must be one of opus, spx, wav, webm, webma, webmv, wmv",
    ]


def test_required_columns_and_empty_files(tmp_path):
    d = folder(tmp_path, {"CONTACT.a.csv": "CallId\nx\n", "CONTACT.b.csv": "", "CONTACT.c.csv": "AgentId,Recording1\n"})
    assert found(d / "CONTACT.a.csv") == [
        "1: AgentId: required column is missing", "1: Recording1: required column is missing",
        "2: AgentId: required: a WFO person id (digits), an AD login (domain\\user) or an e-mail address",
        "2: Recording1: required: the file name of the contact's audio recording"]
    assert found(d / "CONTACT.b.csv") == ["0: : file is empty"]
    assert found(d / "CONTACT.c.csv") == ["0: : no contacts: the file has a header only"]


def test_textcontact_file_and_bodies(tmp_path):
    d = folder(tmp_path, {
        "TEXTCONTACT.csv": "textType,filename,time,username,metadata\r\nchat,a.txt,1,jo,k=v\r\n"
                           "sms,b.txt,x,jo,oops\r\nemail,c.txt,2,jo,\r\n",
        "a.txt": "fine é", "b.txt": b"caf\xe9",
    })
    assert found(d / "TEXTCONTACT.csv") == [
        "3: filename: 'b.txt' is not valid UTF-8",
        "3: metadata: 'oops' is not name=value (metadata is name=value|name=value)",
        "3: textType: 'sms' is not one of chat, email, facebook, other, website",
        "3: time: 'x' is not epoch milliseconds (digits only)",
        "4: filename: 'c.txt' is not beside the data file",
    ]


def test_textcontact_json(tmp_path):
    d = folder(tmp_path, {
        "TEXTCONTACT.json": '[{"textType": "chat", "filename": "a.txt", "time": 1, "username": "jo", '
                            '"receiver": "x@y"}, {"textType": "chat", "filename": "a.txt", "time": "2"}]',
        "a.txt": "hi",
    })
    assert found(d / "TEXTCONTACT.json") == [
        "1: receiver: must be an array of strings",
        "2: time: must be a number (epoch milliseconds)",
        "2: username: required: the agent's login",
    ]


def test_the_dispatcher_checks_media_with_their_contact_file_and_flags_strays(tmp_path):
    d = folder(tmp_path, {"CONTACT.b.csv": "AgentId,ContactStartTimeMs,Recording1\n1,1700000000000,a.wav\n",
                          "a.wav": b"x", "stray.wav": b"y"})
    problems = validate.validate(validate.expand([d]))
    assert [(Path(p.file).name, p.reason.split(",")[0]) for p in problems] == [
        ("stray.wav", "not a GIS file name")]


def test_a_start_in_epoch_seconds_is_flagged(tmp_path, cli):
    d = folder(tmp_path, {"CONTACT.b.csv": "AgentId,ContactStartTimeMs,Recording1,Audio.StartTimeMs\r\n"
                                           "1,1730597400,a.wav,1730597400000\r\n2,1730597400000,a.wav,0\r\n",
                          "a.wav": b"RIFF"})
    r = cli("validate", d / "CONTACT.b.csv")
    assert r.returncode == 3
    assert ("CONTACT.b.csv:2: ContactStartTimeMs: '1730597400' as epoch milliseconds is 1970-01-21, before 2000: "
            "it looks like epoch seconds; give milliseconds (seconds × 1000)") in r.stderr
    assert "CONTACT.b.csv:3: Audio.StartTimeMs: '0' as epoch milliseconds is 1970-01-01" in r.stderr


def test_convert_refuses_what_validate_would_flag(tmp_path, cli):
    d = folder(tmp_path, {"c.csv": "AgentId,ContactStartTimeMs,Recording1\n1,1730597400,a.wav\n", "a.wav": b"RIFF"})
    r = cli("convert", d / "c.csv", "--to", "contact", "--out", tmp_path / "o")
    assert r.returncode == 3
    assert "c.csv:2: ContactStartTimeMs: '1730597400' as epoch milliseconds is 1970-01-21" in r.stderr
