"""`--from textcontacts`: chats and e-mails to import in bulk (domain §3.5), with their `.txt` bodies.

Data files: CSV with the TEXTCONTACT field names (`textType,filename,time,username,…`;
`metadata` as `name=value|name=value`, `receiver` and `references` as `a|b`), or JSON records
(`metadata` an object, `receiver`/`references` arrays, `evalForm` a string or `{id, name}`).
Other exports map their columns with `[contacts] text_columns`. A record may carry its text
inline (`text`, as in the single-JSON import API) instead of a `filename`: the body is then made
from it as `<id>.txt` (or `text-<line>.txt`).

Bodies are `.txt` files beside the data file, given as inputs, or inside ZIPs. They are read now
(they are small) and re-encoded as UTF-8 without BOM; non-UTF-8 bodies are read as cp1252 with a
warning. `textType` is matched case-insensitively; `twitter` (accepted by the older API) becomes
`other`.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from gisgate import model
from gisgate.config import ConvertOptions
from gisgate.errors import ConfigError, Problem
from gisgate.sources import _io, _upload
from gisgate.sources._io import Head

TEXT_TYPE_ALIASES = {"twitter": "other", "e-mail": "email", "mail": "email", "web": "website"}
LIST_FIELDS = ("receiver", "references")
STRING_FIELDS = ("textType", "filename", "time", "username", "evalForm", "id", "sender", "subject")


def detect(head: Head) -> bool:
    """A data file naming the TEXTCONTACT fields textType and username (and filename or text)."""
    keys = {k.casefold() for k in head.keys}
    return {"texttype", "username"} <= keys and bool(keys & {"filename", "text"})


def read(paths: list[Path], options: ConvertOptions) -> model.Batch:
    """Read the text-contact data files and their bodies; see the module docstring."""
    data, zips, files = _upload.split_inputs([Path(p) for p in paths], options)
    found = _upload.collect_media(data, zips, files, options, (".txt",))
    bodies: dict[str, model.Media] = {}
    warnings: list[str] = []
    frames, problems = [], []
    for path in data:
        pre, inline, w = _pre(path, options)
        warnings += [f"{path}: {x}" for x in w]
        for key, text in inline.items():
            if key in found or key in bodies:
                problems.append(Problem(str(path), 0, "filename", f"{key!r} is both inline text and a file"))
            raw = text.encode("utf-8")
            bodies[key] = model.Media(key, len(raw), f"{path} (inline text)", lambda raw=raw: raw)
        frame, p = _canonical(pre, str(path), options)
        frames.append(frame)
        problems += p
    texts = model.check(pl.concat(frames, how="vertical"), "TEXT_CONTACTS", "textcontacts")
    referenced = set(texts["filename"].drop_nulls().to_list())
    if not (zips or files):
        found |= _upload.beside(data, referenced - set(bodies) - {p.name for p in data}, found)
    for key in sorted(referenced & set(found)):
        bodies[key], w = _utf8(found[key])
        warnings += w
    unreferenced = sorted(set(found) - referenced)
    if unreferenced:
        warnings.append(f"{len(unreferenced)} .txt file(s) not referenced by any text contact, not imported: "
                        + ", ".join(unreferenced[:10]) + (" …" if len(unreferenced) > 10 else ""))
    return model.Batch(text_contacts=texts, media=bodies, row_problems=sorted(problems), warnings=warnings)


def _utf8(m: model.Media) -> tuple[model.Media, list[str]]:
    """The body re-encoded as UTF-8 without BOM (read now: a bad body must reject before writing)."""
    raw = m.load()
    warnings = []
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16")
    else:
        raw = raw.removeprefix(b"\xef\xbb\xbf")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")
            warnings.append(f"{m.origin}: not valid UTF-8, read as cp1252 and re-encoded as UTF-8")
    data = text.encode("utf-8")
    return model.Media(m.name, len(data), m.origin, lambda: data), warnings


def _pre(path: Path, options: ConvertOptions) -> tuple[pl.DataFrame, dict[str, str], list[str]]:
    """Strings + parsed lists, named like TEXTCONTACT fields; and inline bodies by file name."""
    mapping = options.contacts.text_columns
    fields = [*model.TEXT_CONTACT_FIELDS, "text"]
    if path.suffix.lower() == ".csv":
        frame, warnings = _io.read_csv(path)
        frame, w = _upload.rename(_upload.strip(frame), fields, {}, mapping, str(path))
        warnings += w
        frame = frame.with_columns(_split(c) for c in LIST_FIELDS if c in frame.columns)
        if "metadata" in frame.columns:
            pairs = pl.col("metadata").str.split("|").list.eval(
                pl.element().str.splitn("=", 2).struct.rename_fields(["name", "value"]))
            frame = frame.with_columns(pairs.alias("metadata"))
    else:
        records = _io.json_records(path, "records")
        frame, warnings = _json_frame(records, mapping, fields)
    inline: dict[str, str] = {}
    if "text" in frame.columns:
        name = pl.coalesce(pl.col("filename") if "filename" in frame.columns else pl.lit(None, pl.String),
                           pl.coalesce(pl.col("id") if "id" in frame.columns else pl.lit(None, pl.String),
                                       pl.lit("text-") + pl.col("_line").cast(pl.String)) + pl.lit(".txt"))
        frame = frame.with_columns(pl.when(pl.col("text").is_not_null()).then(name)
                                   .otherwise(pl.col("filename") if "filename" in frame.columns else None)
                                   .alias("filename"))
        for key, text in frame.filter(pl.col("text").is_not_null()).select("filename", "text").iter_rows():
            inline[key] = text
        frame = frame.drop("text")
    return frame, inline, warnings


def _split(c: str) -> pl.Expr:
    return pl.col(c).str.split("|").list.eval(pl.element().str.strip_chars()).alias(c)


def _json_frame(records: list[dict], mapping: dict[str, str], fields: list[str]
                ) -> tuple[pl.DataFrame, list[str]]:
    """JSON records -> the same shape as a parsed CSV (records are Python objects already)."""
    lookup = {f.casefold(): f for f in fields}
    wrong = sorted(t for t in mapping.values() if t not in fields)
    if wrong:
        raise ConfigError(f"[contacts] text_columns names unknown field(s) {wrong}; fields: {', '.join(fields)}")
    cols: dict[str, list] = {f: [] for f in fields}
    ignored: set[str] = set()
    for r in records:
        row: dict = {}
        for k, v in r.items():
            f = mapping.get(k) or lookup.get(k.casefold())
            if f is None:
                ignored.add(k)
            else:
                row[f] = v
        for f in fields:
            v = row.get(f)
            if f == "metadata":
                v = [{"name": str(k), "value": None if x is None else str(x)} for k, x in v.items()] \
                    if isinstance(v, dict) else None
            elif f in LIST_FIELDS:
                v = [str(x) for x in v] if isinstance(v, list) else (None if v is None else str(v).split("|"))
            elif f == "evalForm" and isinstance(v, dict):
                v = v.get("name") or v.get("id")
                v = None if v is None else str(v)
            elif f == "text":
                v = None if v is None else str(v)  # a body is kept exactly as written
            elif v is not None:
                v = str(v).strip() or None
            cols[f].append(v)
    schema = dict.fromkeys(fields, pl.String) | {"metadata": model.METADATA}
    schema |= dict.fromkeys(LIST_FIELDS, pl.List(pl.String))
    frame = pl.DataFrame(cols, schema=schema).with_row_index("_line", offset=1)
    frame = frame.with_columns(pl.col("_line").cast(pl.Int64))
    warnings = [f"field {k!r} is not a TEXTCONTACT field; ignored (map it in [contacts] text_columns)"
                for k in sorted(ignored)]
    return frame, warnings


def _canonical(pre: pl.DataFrame, file: str, options: ConvertOptions) -> tuple[pl.DataFrame, list[Problem]]:
    def col(name: str, dtype: pl.DataType = pl.String) -> pl.Expr:
        return pl.col(name) if name in pre.columns else pl.lit(None, dtype)

    rules: dict[str, pl.Expr] = {}
    if "time" in pre.columns:
        time, rules["time"] = _upload.instant("time", options.naive_tz)
    else:
        time = pl.lit(None, model.UTC_TIME)
    if "metadata" in pre.columns:
        unpaired = col("metadata", model.METADATA).list.eval(
            pl.element().filter(pl.element().struct.field("value").is_null()).struct.field("name"))
        rules["metadata"] = pl.when(unpaired.list.len() > 0).then(
            pl.lit("'") + unpaired.list.first() + pl.lit("' is not name=value (metadata is name=value|name=value)"))
    bad = _upload.checks(pre, rules)
    t = col("textType").str.to_lowercase()
    text_type = t.replace(TEXT_TYPE_ALIASES)
    out = pre.filter(~pl.col("_line").is_in(bad["_line"].implode())).select(
        pl.lit(file).alias("origin_file"),
        pl.col("_line").alias("origin_line"),
        text_type.alias("text_type"),
        col("filename").alias("filename"),
        time.alias("time"),
        col("username").alias("username"),
        col("evalForm").alias("eval_form"),
        col("id").alias("id"),
        col("metadata", model.METADATA).cast(model.METADATA).alias("metadata"),
        col("receiver", pl.List(pl.String)).alias("receiver"),
        col("references", pl.List(pl.String)).alias("references"),
        col("sender").alias("sender"),
        col("subject").alias("subject"),
    )
    return out, _upload.file_problems(bad, file)
