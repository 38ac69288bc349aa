"""`--to contact` / `--to textcontact`: exact files, every row rejection, rejects mode, determinism."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gisgate import pipeline
from gisgate.config import ConvertOptions
from gisgate.errors import InputError
from gisgate.render import textcontact
from gisgate.sources import textcontacts

HEADER = "AgentId,ContactStartTimeMs,Recording1"


def upload(folder: Path, rows: str, media: dict[str, bytes] | None = None, header: str = HEADER) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "c.csv").write_text(f"{header}\n{rows}", encoding="utf-8")
    for name, data in (media if media is not None else {"a.wav": b"RIFFa", "b.opus": b"OggSb"}).items():
        (folder / name).write_bytes(data)
    return [folder / "c.csv"]


def outputs(paths: list[Path], **options) -> list:
    o = ConvertOptions(source="contacts", to="contact", **options)
    return list(pipeline.convert(paths, o).outputs())


def problems(paths: list[Path], **options) -> list[str]:
    with pytest.raises(InputError) as e:
        outputs(paths, **options)
    return [f"{p.line}: {p.column}: {p.reason}" for p in e.value.problems]


def test_csv_media_first_then_the_contact_file(tmp_path):
    paths = upload(tmp_path, "1001,1700000000000,a.wav\njo@example.com,1700000060000,b.opus\n")
    got = outputs(paths)
    assert [o.kind for o in got] == ["contact-media", "contact-media", "contact"]
    batch = got[-1].name.removeprefix("CONTACT.").removesuffix(".csv")
    assert got[-1].name.startswith("CONTACT.gisgate-contacts-20231114221320-")
    assert [o.name for o in got[:2]] == [f"{batch}-a.wav", f"{batch}-b.opus"]
    assert [o.data for o in got[:2]] == [b"RIFFa", b"OggSb"]
    assert got[-1].data.decode() == (
        f"AgentId,ContactStartTimeMs,Recording1\r\n1001,1700000000000,{batch}-a.wav\r\n"
        f"jo@example.com,1700000060000,{batch}-b.opus\r\n")


def test_same_input_same_bytes_and_different_input_different_batch(tmp_path):
    a = outputs(upload(tmp_path / "1", "1001,1700000000000,a.wav\n"))
    b = outputs(upload(tmp_path / "2", "1001,1700000000000,a.wav\n"))
    c = outputs(upload(tmp_path / "3", "1002,1700000000000,a.wav\n"))
    assert a == b
    assert a[-1].name != c[-1].name


def test_values_needing_quotes_are_quoted_and_metadata_columns_kept(tmp_path):
    paths = upload(tmp_path, '1001,1700000000000,a.wav,"Sales, East","say ""hi"""\n',
                   header=HEADER + ",metadata.Queue,metadata.Note")
    text = outputs(paths)[-1].data.decode()
    assert list(csv.reader(io.StringIO(text)))[1][3:] == ["Sales, East", 'say "hi"']
    assert text.splitlines()[1].endswith(',"Sales, East","say ""hi"""')


def test_fixed_batch_name_and_lf(tmp_path):
    got = outputs(upload(tmp_path, "1001,1700000000000,a.wav\n"), newline="lf", contacts={"batch": "nightly-7"})
    assert [o.name for o in got] == ["nightly-7-a.wav", "CONTACT.nightly-7.csv"]
    assert got[-1].data == b"AgentId,ContactStartTimeMs,Recording1\n1001,1700000000000,nightly-7-a.wav\n"


def test_media_names_are_made_safe_and_unique(tmp_path):
    paths = upload(tmp_path, "1,1700000000000,a b.wav\n2,1700000000000,a_b.wav\n", {"a b.wav": b"1", "a_b.wav": b"2"})
    names = [o.name for o in outputs(paths, contacts={"batch": "B"})]
    assert names == ["B-00002.wav", "B-a_b.wav", "CONTACT.B.csv"]  # "a b.wav" took "B-a_b.wav" first


@pytest.mark.parametrize("row, expected", [
    (",1700000000000,a.wav", "AgentId: required: a WFO person id (digits), an AD login (domain\\user) or an e-mail "
                             "address"),
    ("jsmith,1700000000000,a.wav", "AgentId: 'jsmith' is not a WFO person id (digits), an AD login "
                                   "(domain\\user) or an e-mail address"),
    ("1001,1700000000000,", "Recording1: required: the file name of the contact's audio recording"),
])
def test_agent_and_recording_required(tmp_path, row, expected):
    assert problems(upload(tmp_path, row + "\n")) == [f"2: {expected}"]


@pytest.mark.parametrize("agent", ["4711", "corp\\jdoe", "jo@example.com"])
def test_the_three_agent_id_forms_pass(tmp_path, agent):
    assert outputs(upload(tmp_path, f"{agent},1700000000000,a.wav\n"))[-1].kind == "contact"


def test_length_limits(tmp_path):
    name, value = "n" * 40, "v" * 2057
    paths = upload(tmp_path, f"1,1700000000000,a.wav,{'c' * 129},{'l' * 65},x,{value}\n",
                   header=HEADER + f",CallId,Line,metadata.{name},metadata.ok")
    assert problems(paths) == [
        "2: CallId: is 129 characters, at most 128 allowed",
        "2: Line: is 65 characters, at most 64 allowed",
        f"2: metadata.{name}: metadata name is 40 characters, it must be 1 to 39",
        "2: metadata.ok: metadata value is 2057 characters, at most 2056 allowed",
    ]


def test_limits_are_inclusive(tmp_path):
    paths = upload(tmp_path, f"1,1700000000000,a.wav,{'c' * 128},{'v' * 2056}\n",
                   header=HEADER + f",CallId,metadata.{'n' * 39}")
    assert outputs(paths)[-1].kind == "contact"


def test_direction_must_be_0_or_1(tmp_path):
    paths = upload(tmp_path, "1,1700000000000,a.wav,sideways\n2,1700000000000,a.wav,outbound\n",
                   header=HEADER + ",Direction")
    assert problems(paths) == ["2: Direction: 'sideways' must be 0 (inbound) or 1 (outbound)"]


def test_recording_extension_must_be_a_supported_media_type(tmp_path):
    paths = upload(tmp_path, "1,1700000000000,a.mp3\n2,1700000000000,a\n3,1700000000000,a.WAV\n",
                   {"a.mp3": b"x", "a": b"y", "a.WAV": b"z"})
    assert problems(paths) == [
        "2: Recording1: 'a.mp3': media type must be one of opus, spx, wav, webm, webma, webmv, wmv",
        "3: Recording1: 'a': media type must be one of opus, spx, wav, webm, webma, webmv, wmv",
    ]


def test_every_referenced_media_must_be_in_the_upload(tmp_path):
    paths = upload(tmp_path, "1,1700000000000,a.wav,gone.webmv\n2,1700000000000,missing.wav,\n",
                   header=HEADER + ",Screen.Location")
    assert problems(paths) == [
        "2: Screen.Location: 'gone.webmv' is not in the upload (no such media file)",
        "3: Recording1: 'missing.wav' is not in the upload (no such media file)",
    ]


def test_one_audio_per_contact(tmp_path):
    paths = upload(tmp_path, "1,1700000000000,a.wav,b.opus,\n2,1700000000000,a.wav,,s.webmv\n",
                   {"a.wav": b"1", "b.opus": b"2", "s.webmv": b"3"},
                   header=HEADER + ",Recording2,Recording3")
    assert problems(paths) == ["2: Recording1: only one audio file per contact, found 2: a.wav, b.opus"]


def test_all_problems_of_all_rows_are_listed_in_one_error(tmp_path):
    paths = upload(tmp_path, "x,1700000000000,a.mp3,2\n,yesterday,a.wav,0\n1,1700000000000,a.wav,0\n",
                   header=HEADER + ",Direction")
    assert problems(paths) == [
        "2: AgentId: 'x' is not a WFO person id (digits), an AD login (domain\\user) or an e-mail address",
        "2: Direction: '2' must be 0 (inbound) or 1 (outbound)",
        "2: Recording1: 'a.mp3' is not in the upload (no such media file)",
        "2: Recording1: 'a.mp3': media type must be one of opus, spx, wav, webm, webma, webmv, wmv",
        "3: ContactStartTimeMs: 'yesterday' is neither epoch milliseconds nor an ISO-8601 time",
    ]


def test_rejects_mode_keeps_good_rows_and_their_media_only(tmp_path):
    paths = upload(tmp_path, "1,1700000000000,a.wav\njsmith,1700000000000,b.opus\n")
    rejects = tmp_path / "rejects.csv"
    got = outputs(paths, rejects=str(rejects), contacts={"batch": "B"})
    assert [o.name for o in got] == ["B-a.wav", "CONTACT.B.csv"]
    assert got[-1].data.decode().splitlines()[1:] == ["1,1700000000000,B-a.wav"]


def test_pipeline_writes_nothing_when_a_row_is_bad(tmp_path):
    paths = upload(tmp_path / "in", "1,1700000000000,a.wav\n2,1700000000000,missing.wav\n")
    out = tmp_path / "out"
    with pytest.raises(InputError, match="missing.wav"):
        pipeline.write(pipeline.convert(paths, ConvertOptions(source="contacts", to="contact")), out)
    assert not out.exists() or list(out.iterdir()) == []


def test_pipeline_rejects_file_and_good_rows(tmp_path):
    paths = upload(tmp_path / "in", "1,1700000000000,a.wav\n2,1700000000000,missing.wav\n")
    rejects = tmp_path / "rejects.csv"
    options = ConvertOptions(source="contacts", to="contact", rejects=str(rejects), contacts={"batch": "B"})
    conversion = pipeline.convert(paths, options)
    written = pipeline.write(conversion, tmp_path / "out")
    assert [p.name for p in written] == ["B-a.wav", "CONTACT.B.csv"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["B-a.wav", "CONTACT.B.csv"]
    assert rejects.read_text().splitlines()[1:] == [
        f"{paths[0]},3,Recording1,'missing.wav' is not in the upload (no such media file)"]
    summary = conversion.summary()
    assert (summary["contacts"], summary["rejected"]) == (1, 1)


# --- TEXTCONTACT -----------------------------------------------------------------------------------

TEXT_HEADER = "textType,filename,time,username"


def text_upload(folder: Path, rows: str, header: str = TEXT_HEADER, bodies: dict | None = None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "t.csv").write_text(f"{header}\n{rows}", encoding="utf-8")
    for name, data in (bodies if bodies is not None else {"a.txt": "Hi é", "b.txt": "Yo"}).items():
        (folder / name).write_text(data, encoding="utf-8")
    return [folder / "t.csv"]


def text_outputs(paths: list[Path], **options) -> list:
    o = ConvertOptions(source="textcontacts", to="textcontact", **options)
    return list(pipeline.convert(paths, o).outputs())


def text_problems(paths: list[Path], **options) -> list[str]:
    with pytest.raises(InputError) as e:
        text_outputs(paths, **options)
    return [f"{p.line}: {p.column}: {p.reason}" for p in e.value.problems]


def test_textcontact_csv_and_bodies(tmp_path):
    paths = text_upload(tmp_path, "chat,a.txt,1700000000000,jo,Q=1|L=en,x@y|z@y\n",
                        header=TEXT_HEADER + ",metadata,receiver")
    got = text_outputs(paths, contacts={"batch": "T"})
    assert [(o.name, o.kind) for o in got] == [("T-a.txt", "textcontact-body"), ("TEXTCONTACT.csv", "textcontact")]
    assert got[0].data == "Hi é".encode()
    assert got[1].data.decode() == ("textType,filename,time,username,metadata,receiver\r\n"
                                    "chat,T-a.txt,1700000000000,jo,Q=1|L=en,x@y|z@y\r\n")


def test_textcontact_json_form(tmp_path):
    paths = text_upload(tmp_path, "email,a.txt,1700000000000,jo,Q=1,x@y|z@y,Form\n",
                        header=TEXT_HEADER + ",metadata,receiver,evalForm")
    got = text_outputs(paths, contacts={"batch": "T", "text_format": "json"})
    assert got[-1].name == "TEXTCONTACT.json"
    assert json.loads(got[-1].data) == [{
        "textType": "email", "filename": "T-a.txt", "time": 1700000000000, "username": "jo",
        "evalForm": {"name": "Form"}, "metadata": {"Q": "1"}, "receiver": ["x@y", "z@y"]}]


def test_importtext_bodies_group_by_text_type(tmp_path):
    paths = text_upload(tmp_path, "chat,a.txt,1,jo\nemail,b.txt,2,jo\nchat,b.txt,3,al\n")
    batch = textcontacts.read(paths, ConvertOptions())
    bodies = textcontact.importtext_bodies(batch)
    assert [(b["textType"], [(r["time"], r["username"], r["text"]) for r in b["records"]]) for b in bodies] == [
        ("chat", [(1, "jo", "Hi é"), (3, "al", "Yo")]), ("email", [(2, "jo", "Yo")])]


@pytest.mark.parametrize("row, expected", [
    ("sms,a.txt,1,jo", "2: textType: 'sms' is not one of chat, email, facebook, other, website"),
    (",a.txt,1,jo", "2: textType: required: chat, email, facebook, other, website"),
    ("chat,,1,jo", "2: filename: required: the .txt file of the text"),
    ("chat,a.txt,1,", "2: username: required: the agent's login"),
    ("chat,a.txt,,jo", "2: time: required: the start, epoch milliseconds"),
    ("chat,gone.txt,1,jo", "2: filename: 'gone.txt' is not in the upload (no such .txt file)"),
])
def test_textcontact_row_rejections(tmp_path, row, expected):
    assert text_problems(text_upload(tmp_path, row + "\n")) == [expected]


def test_textcontact_body_must_be_txt(tmp_path):
    paths = text_upload(tmp_path, "chat,a.html,1,jo\n", bodies={"a.html": "<p>"})
    assert text_problems(paths) == ["2: filename: 'a.html' must be a .txt file"]


def test_textcontact_list_syntax_and_duplicate_ids(tmp_path):
    records = [
        {"textType": "chat", "filename": "a.txt", "time": 1, "username": "jo", "id": "x",
         "receiver": ["a|b"], "metadata": {"k": "v|w"}},
        {"textType": "chat", "filename": "b.txt", "time": 2, "username": "jo", "id": "x"},
    ]
    (tmp_path / "t.json").write_text(json.dumps(records))
    text_upload(tmp_path / "unused", "")  # nothing; bodies below
    for n, t in (("a.txt", "1"), ("b.txt", "2")):
        (tmp_path / n).write_text(t)
    assert text_problems([tmp_path / "t.json"]) == [
        "1: metadata: a metadata value contains '|', the pair separator",
        "1: receiver: a recipient contains '|', the list separator",
        "2: id: 'x' is used by an earlier row: the server would not import it",
    ]
    # the JSON form has no list syntax to break, only the duplicate id remains
    assert text_problems([tmp_path / "t.json"], contacts={"text_format": "json"}) == [
        "2: id: 'x' is used by an earlier row: the server would not import it"]


def test_a_pending_textcontact_batch_is_never_replaced(tmp_path):
    from gisgate.errors import TransientDeliveryError

    paths = text_upload(tmp_path / "in", "chat,a.txt,1700000000000,jo\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "TEXTCONTACT.csv").write_text("pending")
    conversion = pipeline.convert(paths, ConvertOptions(source="textcontacts", to="textcontact"))
    with pytest.raises(TransientDeliveryError, match="still pending"):
        pipeline.write(conversion, out)
    assert [p.name for p in out.iterdir()] == ["TEXTCONTACT.csv"]
    assert (out / "TEXTCONTACT.csv").read_text() == "pending"


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
                               min_size=1, max_size=30).filter(lambda v: v.strip() == v and v not in ("None", "null",
                                                                                                      "NULL", "N/A")),
                       min_size=1, max_size=5))
def test_any_metadata_value_survives_the_csv_round_trip(values):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        records = [{"AgentId": str(n), "ContactStartTimeMs": 1700000000000, "Recording1": "a.wav",
                    "CustomMetadata": {"Note": v}} for n, v in enumerate(values)]
        (folder / "c.json").write_text(json.dumps(records), encoding="utf-8")
        (folder / "a.wav").write_bytes(b"RIFF")
        got = outputs([folder / "c.json"], contacts={"batch": "B"})
        rows = list(csv.DictReader(io.StringIO(got[-1].data.decode("utf-8"), newline="")))
        assert [r["metadata.Note"] for r in rows] == values
