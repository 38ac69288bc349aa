"""`--from contacts`: recorded contacts to import in bulk (domain §3.1), with their media.

Accepted data files (several may be given; media beside them, as inputs, or inside ZIPs):

* CSV with the CONTACT field names (`AgentId,ContactStartTimeMs,Recording1,…,metadata.<name>`),
  any order, names matched case-insensitively, plus the documented aliases `TimeZone`
  (= `ClientTimeZone`) and `Called`/`Calling` (= `CalledAddress`/`CallingAddress`);
* the JSON variant (an array of records, or one record on its own, with `CustomMetadata` objects
  and `Audio`/`Screen` as an object or a one-element array; each record may use the aliases or the
  CONTACT names, and only a record giving one field under two names with different values is refused);
* any other export, through `[contacts] columns` (export column -> CONTACT field);
* the Talkdesk `calls` report (CSV or JSON `{"entries": […]}`): connected calls whose recording
  is in the upload (a `recording*` column, or a media file named `<call_id>.<ext>` /
  `<callsid>.<ext>`); agents by `[mapping.agents]` of `handling_user_id`, else their e-mail.

Values that cannot be parsed (times, offsets) are row problems (`batch.row_problems`) and the
row is left out; the §3.1 rules themselves are checked by the renderer, before anything is written.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from gisgate import model
from gisgate.config import ConvertOptions
from gisgate.errors import Problem
from gisgate.sources import _io, _upload
from gisgate.sources._io import Head

ALIASES = {"TimeZone": "ClientTimeZone", "Called": "CalledAddress", "Calling": "CallingAddress"}
MEDIA_SUFFIXES = tuple(f".{e}" for e in model.RECORDING_EXTENSIONS) + (".mp3", ".m4a", ".ogg", ".mp4", ".aac")
TALKDESK_KEYS = {"call_id", "start_at", "type"}
TALKDESK_CONNECTED = {"inbound": "0", "outbound": "1"}
RECORDING_COLUMNS = ("recording", "recording_file", "recording_name", "recording_url")


def detect(head: Head) -> bool:
    """A data file that names CONTACT fields (AgentId and a recording or start time); for a single JSON
    object, its own keys (the keys of its first list, e.g. `Audio`, say nothing)."""
    keys = {k.casefold() for k in head.keys | head.wrapper}
    return "agentid" in keys and bool(keys & {"recording1", "audio", "audio.location", "contactstarttimems"})


def read(paths: list[Path], options: ConvertOptions) -> model.Batch:
    """Read the contact data files and find their media; see the module docstring."""
    data, zips, files = _upload.split_inputs([Path(p) for p in paths], options)
    media = _upload.collect_media(data, zips, files, options, MEDIA_SUFFIXES)
    frames, problems, warnings, referenced = [], [], [], set()
    for path in data:
        strings, w, p = _strings(path, options, media)
        warnings += [f"{path}: {x}" for x in w]
        problems += p
        referenced |= _keys(strings)
        frame, p, w = _canonical(strings, str(path), options)
        frames.append(frame)
        problems += p
        warnings += [f"{path}: {x}" for x in w]
    if not (zips or files):
        media |= _upload.beside(data, referenced - {p.name for p in data}, media)
    unreferenced = sorted(set(media) - referenced)
    if unreferenced:
        warnings.append(f"{len(unreferenced)} media file(s) not referenced by any contact, not imported: "
                        + ", ".join(unreferenced[:10]) + (" …" if len(unreferenced) > 10 else ""))
    recordings = model.check(pl.concat(frames, how="vertical"), "RECORDINGS", "contacts")
    used = {k: m for k, m in media.items() if k in referenced}
    return model.Batch(recordings=recordings, media=used, row_problems=sorted(problems), warnings=warnings)


def _keys(strings: pl.DataFrame) -> set[str]:
    cols = [c for c in model.KEY_FIELDS if c in strings.columns]
    if not cols:
        return set()
    return set(strings.select(pl.concat_list(cols).explode().drop_nulls().unique()).to_series().to_list())


def _strings(path: Path, options: ConvertOptions, media: dict[str, model.Media]
             ) -> tuple[pl.DataFrame, list[str], list[Problem]]:
    """The data file as strings named like CONTACT columns, with `_line`; and the records that give
    a field twice (JSON: an alias and the CONTACT name with different values)."""
    problems: list[Problem] = []
    if path.suffix.lower() == ".csv":
        frame, warnings = _io.read_csv(path)
        keys = set(frame.columns)
    else:
        records = _records(path, options)
        keys = set().union(*(r.keys() for r in records)) if records else set()
        if not TALKDESK_KEYS <= keys:
            records, problems = _one_name_per_field([_flatten(r) for r in records], options, str(path))
        frame = _io.json_frame(records)
        warnings = []
    frame = _upload.strip(frame)
    if TALKDESK_KEYS <= keys and not options.contacts.columns:
        frame, w = _talkdesk(frame, options, media)
        return frame, warnings + w, problems
    frame, w = _upload.rename(frame, model.CONTACT_FIELDS, ALIASES, options.contacts.columns, str(path),
                              keep_prefix=model.METADATA_PREFIX)
    return frame, warnings + w, problems


def _records(path: Path, options: ConvertOptions) -> list[dict]:
    """The JSON records: an array, NDJSON, `{"entries": [...]}`, or one contact object on its own (the
    API guide's short example; its `Audio` array must not be taken for the list of records)."""
    data = _io.load_json(path)
    names = ({f.casefold() for f in model.CONTACT_FIELDS} | {a.casefold() for a in ALIASES}
             | {"audio", "screen", "custommetadata"} | {c.casefold() for c in options.contacts.columns})
    if isinstance(data, dict) and (TALKDESK_KEYS <= data.keys() or any(k.casefold() in names for k in data)):
        return [data]
    return _io.json_records(path, "entries")


def _one_name_per_field(records: list[dict], options: ConvertOptions, file: str
                        ) -> tuple[list[dict], list[Problem]]:
    """Each record's keys under their CONTACT names (`Called` -> `CalledAddress`, any case), record by
    record, so that records using the aliases and records using the names can share a file. A record
    giving one field twice with different values is a problem of that record."""
    lookup = {f.casefold(): f for f in model.CONTACT_FIELDS} | {a.casefold(): f for a, f in ALIASES.items()}
    mapped = options.contacts.columns  # an explicit mapping decides for the columns it names
    out, problems = [], []
    for line, record in enumerate(records, start=1):  # `_line` of a JSON record is its number
        named: dict = {}
        first: dict[str, str] = {}
        for key, value in record.items():
            field = key if key in mapped else lookup.get(key.casefold(), key)
            if field in named and value is not None and named[field] is not None and str(value) != str(named[field]):
                problems.append(Problem(file, line, key, f"gives {field} like {first[field]!r} but another value; "
                                                         "keep one of them"))
                continue
            if named.get(field) is None:
                named[field], first[field] = value, key
        out.append(named)
    return out, problems


def _flatten(record: dict) -> dict:
    """JSON variant -> CONTACT columns: CustomMetadata -> metadata.<name>, Audio/Screen -> *.Location."""
    out: dict = {}
    for k, v in record.items():
        low = k.casefold()
        if low == "custommetadata" and isinstance(v, dict):
            out.update({f"{model.METADATA_PREFIX}{n}": val for n, val in v.items()})
        elif low in ("audio", "screen") and isinstance(v, (dict, list)):
            items = [i for i in (v if isinstance(v, list) else [v]) if isinstance(i, dict)]
            kind = "Audio" if low == "audio" else "Screen"
            for n, item in enumerate(items):
                # A second Audio entry would be a second audio file: keep it visible so the
                # one-audio-per-contact rule reports it instead of dropping it silently.
                loc = f"{kind}.Location" if n == 0 else f"Recording{min(n + 1, 3)}"
                out[loc] = item.get("Location")
                if n == 0:
                    out[f"{kind}.StartTimeMs"] = item.get("StartTimeMs")
        else:
            out[k] = v
    if not out.get("Recording1") and out.get("Audio.Location") and not out.get("Audio.StartTimeMs"):
        out["Recording1"] = out.pop("Audio.Location")  # the CSV needs the audio as Recording1 (§3.6)
        out.pop("Audio.StartTimeMs", None)
    return out


def _talkdesk(frame: pl.DataFrame, options: ConvertOptions, media: dict[str, model.Media]
              ) -> tuple[pl.DataFrame, list[str]]:
    """Talkdesk `calls` report rows -> CONTACT columns; only connected calls with a recording."""
    def col(name: str) -> pl.Expr:
        return pl.col(name) if name in frame.columns else pl.lit(None, pl.String)

    kind = col("type").str.to_lowercase()
    agents = options.mapping.agents
    agent_key = pl.coalesce(col("handling_user_id"), col("user_id"))
    mapped = agent_key.replace_strict(list(agents), list(agents.values()), default=None) if agents else None
    agent = pl.coalesce([e for e in (mapped, col("handling_user_email"), col("user_email")) if e is not None])
    named = [c for c in RECORDING_COLUMNS if c in frame.columns]
    if named:
        recording = pl.coalesce([col(c) for c in named]).str.extract(r"([^/\\?#]+)(?:[?#].*)?$")
    else:  # media named after the call: prefer an audio file when a call has several
        order = {e: n for n, e in enumerate(model.AUDIO_EXTENSIONS + model.RECORDING_EXTENSIONS)}
        stems: dict[str, str] = {}
        for key in sorted(media, key=lambda k: order.get(Path(k).suffix.lower()[1:], 99)):
            stems.setdefault(Path(key).stem, key)
        by_stem = lambda c: col(c).replace_strict(list(stems), list(stems.values()), default=None)  # noqa: E731
        recording = pl.coalesce(by_stem("call_id"), by_stem("callsid")) if stems else pl.lit(None, pl.String)
    inbound = kind == "inbound"
    out = frame.select(
        pl.col("_line"),
        kind.alias("_kind"),
        agent.alias("AgentId"),
        col("start_at").alias("ContactStartTimeMs"),
        recording.alias("Recording1"),
        col("call_id").alias("CallId"),
        pl.when(inbound).then(col("talkdesk_phone_number")).otherwise(col("contact_phone_number")).alias("CalledAddress"),
        pl.when(inbound).then(col("contact_phone_number")).otherwise(col("talkdesk_phone_number")).alias("CallingAddress"),
        kind.replace_strict(TALKDESK_CONNECTED, default=None).alias("Direction"),
        *[col(c).alias(f"{model.METADATA_PREFIX}{c}")
          for c in options.contacts.talkdesk_metadata if c in frame.columns],
    )
    connected = pl.col("_kind").is_in(list(TALKDESK_CONNECTED))
    skipped = out.filter(~connected).height
    unrecorded = out.filter(connected & pl.col("Recording1").is_null()).height
    warnings = []
    if skipped:
        warnings.append(f"{skipped} call(s) not connected to an agent (missed, abandoned, voicemail…): no contact")
    if unrecorded:
        warnings.append(f"{unrecorded} connected call(s) have no recording in the upload: not imported")
    return out.filter(connected & pl.col("Recording1").is_not_null()).drop("_kind"), warnings


def _canonical(strings: pl.DataFrame, file: str, options: ConvertOptions
               ) -> tuple[pl.DataFrame, list[Problem], list[str]]:
    """CONTACT strings -> RECORDINGS rows; rows with unparseable values become problems."""
    f = strings

    def col(name: str) -> pl.Expr:
        return pl.col(name) if name in f.columns else pl.lit(None, pl.String)

    warnings = []
    rules: dict[str, pl.Expr] = {}
    times = {}
    for field, target in (("ContactStartTimeMs", "start_at"), ("Audio.StartTimeMs", "audio_start_at"),
                          ("Screen.StartTimeMs", "screen_start_at")):
        if field in f.columns:
            times[target], rules[field] = _upload.instant(field, options.naive_tz)
        else:
            times[target] = pl.lit(None, model.UTC_TIME)
    offset = col("Recording2Offset").cast(pl.Int64, strict=False)
    if "Recording2Offset" in f.columns:
        rules["Recording2Offset"] = pl.when(col("Recording2Offset").is_not_null() & offset.is_null()).then(
            pl.lit("'") + col("Recording2Offset") + pl.lit("' is not a whole number of milliseconds"))
    for field in ("AgentId", "CallId", "AssocCallId"):  # 18-digit ids Excel rounded to 15 digits (lost)
        if field in f.columns:
            rules[field] = pl.when(pl.col(field).str.contains(r"^\d+(\.\d+)?[eE]\+?\d+$")).then(
                pl.lit("'") + pl.col(field) + pl.lit("' is Excel scientific notation: digits are lost; "
                                                     "export the column as text"))
    bad = _upload.checks(f, rules)
    problems = _upload.file_problems(bad, file)

    agent = col("AgentId")
    if options.mapping.agents:
        agent = agent.replace(options.mapping.agents)
    slash = agent.str.contains("/") & ~agent.str.contains(r"\\|@")
    if f.select(slash.any()).item():
        warnings.append("AgentId with '/' read as an AD login domain\\user (AD logins use a backslash)")
    agent = pl.when(slash).then(agent.str.replace_all("/", "\\", literal=True)).otherwise(agent)
    d = col("Direction").str.to_lowercase()
    direction = (pl.when(d.is_in(["0", "in", "inbound"])).then(pl.lit("0"))
                 .when(d.is_in(["1", "out", "outbound"])).then(pl.lit("1")).otherwise(col("Direction")))
    meta = [c for c in f.columns if c.startswith(model.METADATA_PREFIX)]
    if meta:
        pairs = pl.concat_list([
            pl.struct(pl.lit(c[len(model.METADATA_PREFIX):]).alias("name"), pl.col(c).alias("value")) for c in meta
        ])
        metadata = pairs.list.eval(pl.element().filter(pl.element().struct.field("value").is_not_null()))
    else:
        metadata = pl.lit([], model.METADATA)
    out = f.filter(~pl.col("_line").is_in(bad["_line"].implode())).select(
        pl.lit(file).alias("origin_file"),
        pl.col("_line").alias("origin_line"),
        agent.alias("agent_id"),
        times["start_at"].alias("start_at"),
        col("Recording1").alias("recording1"),
        col("Recording2").alias("recording2"),
        col("Recording3").alias("recording3"),
        offset.alias("recording2_offset_ms"),
        col("AssocCallId").alias("assoc_call_id"),
        col("CallId").alias("call_id"),
        col("CalledAddress").alias("called"),
        col("CallingAddress").alias("calling"),
        col("ClientTimeZone").alias("client_time_zone"),
        direction.alias("direction"),
        col("Line").alias("line"),
        metadata.cast(model.METADATA).alias("metadata"),
        col("Audio.Location").alias("audio_location"),
        times["audio_start_at"].alias("audio_start_at"),
        col("Screen.Location").alias("screen_location"),
        times["screen_start_at"].alias("screen_start_at"),
    )
    # a start before 2000 (epoch seconds given as milliseconds) is a row problem of the CONTACT rules
    return out, problems, warnings
