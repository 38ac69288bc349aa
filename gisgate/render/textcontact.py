"""`--to textcontact`: `TEXTCONTACT.csv` (or `.json`) and the `.txt` bodies it names (domain §3.5).

Outputs come in sending order: every body (kind `textcontact-body`, UTF-8, renamed
`<batch>-<original name>`), then the data file (kind `textcontact`). The Data Server only knows
the literal name `TEXTCONTACT.csv`, so a folder or SFTP target must hold **at most one TEXTCONTACT
batch pending** in the folder: drop the next one only once the previous data file was consumed,
and make the data file visible last through a temporary name that does not contain `TEXTCONTACT`.
Over REST (`POST /api/upload/textcontacts/`) one multipart request carries the batch; the JSON form
(`[contacts] text_format = "json"`) is for REST only. `importtext_bodies` gives the bodies of the
older single-JSON API (`/api/rest/cas/importtext`), one per textType and evalForm.

CSV lists are `a|b`, metadata `name=value|name=value`; a value that would break that syntax
(a `|` anywhere, a `=` in a metadata name) is a row problem. Every row is checked before anything
is produced, as for `--to contact`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import polars as pl

from gisgate import model
from gisgate.config import ConvertOptions
from gisgate.errors import InputError, Problem
from gisgate.model import Batch, Output
from gisgate.produced import TEXTCONTACT_NAMES
from gisgate.render import _batch

REQUIRED = ["textType", "filename", "time", "username"]
JSON_NAME = "TEXTCONTACT.json"


def _fields(frame: pl.DataFrame) -> pl.DataFrame:
    """TEXT_CONTACTS -> TEXTCONTACT CSV columns as strings, with `_file` and `_line`."""
    pairs = pl.col("metadata").list.eval(
        pl.element().struct.field("name") + pl.lit("=") + pl.element().struct.field("value").fill_null(""))
    joined = lambda e: pl.when(e.list.len() > 0).then(e.list.join("|"))  # noqa: E731
    out = frame.select(
        pl.col("origin_file").alias("_file"),
        pl.col("origin_line").alias("_line"),
        pl.col("text_type").alias("textType"),
        pl.col("filename"),
        pl.col("time").dt.epoch("ms").cast(pl.String).alias("time"),
        pl.col("username"),
        pl.col("eval_form").alias("evalForm"),
        pl.col("id"),
        joined(pairs).alias("metadata"),
        joined(pl.col("receiver")).alias("receiver"),
        joined(pl.col("references")).alias("references"),
        pl.col("sender"),
        pl.col("subject"),
    )
    return model.blank_to_null(out)


def _syntax(frame: pl.DataFrame, csv: bool) -> list[Problem]:
    """Ids used twice (the server drops the second) and, for CSV, values its `|`/`=` syntax cannot carry."""
    def has_pipe(c: str) -> pl.Expr:
        return pl.col(c).list.eval(pl.element().str.contains("|", literal=True)).list.any()

    names = pl.col("metadata").list.eval(pl.element().struct.field("name").str.contains(r"[=|]")).list.any()
    values = pl.col("metadata").list.eval(
        pl.element().struct.field("value").fill_null("").str.contains("|", literal=True)).list.any()
    rules = {
        "receiver": pl.when(has_pipe("receiver")).then(pl.lit("a recipient contains '|', the list separator")),
        "references": pl.when(has_pipe("references")).then(pl.lit("a reference contains '|', the list separator")),
        "metadata": pl.when(names).then(pl.lit("a metadata name contains '=' or '|'"))
        .when(values).then(pl.lit("a metadata value contains '|', the pair separator")),
    }
    if not csv:
        rules = {}
    rules["id"] = (pl.when(pl.col("id").is_not_null() & (pl.int_range(pl.len()).over("id") > 0))
                   .then(pl.lit("'") + pl.col("id")
                         + pl.lit("' is used by an earlier row: the server would not import it")))
    structs = [pl.struct(pl.lit(c).alias("column"), r.alias("reason")) for c, r in rules.items()]
    found = (frame.select(pl.col("origin_file").alias("_file"), pl.col("origin_line").alias("_line"),
                          pl.concat_list(structs).alias("p"))
             .explode("p").unnest("p").filter(pl.col("reason").is_not_null()))
    return model.problems(found)


def rejected(batch: Batch, options: ConvertOptions) -> list[Problem]:
    """Every problem of the batch's rows (read-time, §3.5 rules, list syntax, missing bodies), sorted."""
    frame = batch.text_contacts if batch.text_contacts is not None else pl.DataFrame(schema=model.TEXT_CONTACTS)
    strings = _fields(frame)
    missing = strings.filter(pl.col("filename").is_not_null() & ~pl.col("filename").is_in(sorted(batch.media)))
    # metadata pairs are parsed already; `_syntax` checks what the CSV's `|`/`=` syntax cannot carry
    found = model.problems(model.text_row_problems(strings.drop("metadata"))) + [
        Problem(f, line, "filename", f"'{name}' is not in the upload (no such .txt file)")
        for f, line, name in missing.select("_file", "_line", "filename").iter_rows()
    ]
    found += _syntax(frame, options.contacts.text_format == "csv")
    return sorted(set(batch.row_problems) | set(found))


def render(batch: Batch, options: ConvertOptions) -> Iterator[Output]:
    """Check every row now (raising InputError), then yield the bodies and, last, the data file."""
    if batch.text_contacts is None:
        raise InputError("no text contacts in the input (use --from textcontacts)")
    strings = _fields(batch.text_contacts)
    good, _ = _batch.split(strings, rejected(batch, options), options, "text contacts")
    keys = sorted(set(good["filename"].to_list()))
    bodies = {k: batch.media[k] for k in keys}
    first = good.select(pl.col("time").cast(pl.Int64).min()).item()
    first_at = datetime.fromtimestamp(first / 1000, tz=UTC) if first is not None else None
    name = _batch.batch_id(good.drop("_file"), bodies, first_at, options, "textcontacts")
    renamed = _batch.rename_media(keys, name)
    good = good.with_columns(pl.col("filename").replace(renamed))
    if options.contacts.text_format == "json":
        keys_ = good.select(pl.col("_file").alias("origin_file"), pl.col("_line").alias("origin_line"))
        kept = batch.text_contacts.join(keys_, on=["origin_file", "origin_line"], how="semi", maintain_order="left")
        data = _json(kept.with_columns(pl.col("filename").replace(renamed)))
        return _outputs(bodies, renamed, JSON_NAME, data)
    table = _batch.drop_empty(good, REQUIRED).drop("_file", "_line")
    newline = "\r\n" if options.newline == "crlf" else "\n"
    csv = table.write_csv(quote_style="necessary", line_terminator=newline).encode("utf-8")
    return _outputs(bodies, renamed, TEXTCONTACT_NAMES[0], csv)


def _record(row: dict) -> dict:
    """One TEXTCONTACT JSON record (multiple-files API): only the fields that have a value."""
    rec = {"textType": row["text_type"], "filename": row["filename"],
           "time": int(row["time"].timestamp() * 1000), "username": row["username"]}
    if row["eval_form"] is not None:
        rec["evalForm"] = {"name": row["eval_form"]}  # §3.6: the CSV column holds a form name
    for key, field in (("id", "id"), ("sender", "sender"), ("subject", "subject")):
        if row[field] is not None:
            rec[key] = row[field]
    if row["metadata"]:
        rec["metadata"] = {m["name"]: m["value"] for m in row["metadata"]}
    for key in ("receiver", "references"):
        if row[key]:
            rec[key] = row[key]
    return rec


def _json(frame: pl.DataFrame) -> bytes:
    records = [_record(r) for r in frame.iter_rows(named=True)]
    return (json.dumps(records, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def importtext_bodies(batch: Batch) -> list[dict]:
    """Bodies for `POST /api/rest/cas/importtext` (text inline), one per (textType, evalForm).

    Assumes the batch passed `rejected()` (every body present); order follows the input rows.
    """
    groups: dict[tuple, list[dict]] = {}
    for row in batch.text_contacts.iter_rows(named=True):
        rec = _record(row)
        rec.pop("filename")
        rec.pop("textType")
        rec.pop("evalForm", None)
        rec["text"] = batch.media[row["filename"]].load().decode("utf-8")
        groups.setdefault((row["text_type"], row["eval_form"]), []).append(rec)
    return [{"textType": t, **({"evalForm": {"name": f}} if f else {}), "records": recs}
            for (t, f), recs in groups.items()]


def _outputs(bodies: dict[str, model.Media], renamed: dict[str, str], name: str, data: bytes) -> Iterator[Output]:
    for key in sorted(bodies, key=lambda k: renamed[k]):
        yield Output(renamed[key], bodies[key].load(), "textcontact-body")
    yield Output(name, data, "textcontact")
