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
from gisgate.errors import InputError
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


ROWS = "text_contacts"  # written row for row: no intervals are derived
NOUN = "text contacts"
count, missing, warnings = _batch.row_output(ROWS, "no text contacts in the input (use --from textcontacts)")


def fields(batch: Batch) -> pl.DataFrame:
    """The batch's rows as the TEXTCONTACT file would hold them (strings, blanks null), for the row rules."""
    return _fields(batch.text_contacts if batch.text_contacts is not None else pl.DataFrame(schema=model.TEXT_CONTACTS))


def render(batch: Batch, options: ConvertOptions) -> Iterator[Output]:
    """The bodies and, last, the data file of every row of the batch (rows checked by validate.rows)."""
    if batch.text_contacts is None:
        raise InputError("no text contacts in the input (use --from textcontacts)")
    good = _fields(batch.text_contacts)
    keys = sorted(set(good["filename"].to_list()))
    bodies = {k: batch.media[k] for k in keys}
    first = good.select(pl.col("time").cast(pl.Int64).min()).item()
    first_at = datetime.fromtimestamp(first / 1000, tz=UTC) if first is not None else None
    name = _batch.batch_id(good.drop("_file"), bodies, first_at, options, "textcontacts")
    renamed = _batch.rename_media(keys, name)
    good = good.with_columns(pl.col("filename").replace(renamed))
    if options.contacts.text_format == "json":
        data = _json(batch.text_contacts.with_columns(pl.col("filename").replace(renamed)))
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
