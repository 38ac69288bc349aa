"""`--to contact`: `CONTACT.<batch>.csv` and the media it references (domain §3.1–3.4).

Outputs come in sending order, and order matters:

1. every media file, kind `contact-media`, renamed `<batch>-<original key>` so names never clash
   with another pending batch in the same Data Server folder;
2. then the CSV, kind `contact`. A folder or SFTP target must make it visible last and through a
   temporary name that does not start with `CONTACT.` (the Data Server's watcher matches that
   prefix and would read a half-written file, or a CSV whose media are not there yet). Over REST
   the whole batch is one multipart request (or one ZIP).

Before anything is produced every row is checked (§3.1 rules, media present, one audio per
contact): any problem rejects the batch with an InputError listing them all, unless
`options.rejects` is set, in which case bad rows are left out (`rejected()` lists them).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import polars as pl

from gisgate import model
from gisgate.config import ConvertOptions
from gisgate.errors import InputError
from gisgate.model import Batch, Output
from gisgate.produced import CONTACT_PREFIX
from gisgate.render import _batch

REQUIRED = ["AgentId", "ContactStartTimeMs", "Recording1"]  # the minimal CSV (§3.2)


def _fields(frame: pl.DataFrame) -> pl.DataFrame:
    """RECORDINGS -> CONTACT columns as strings (original media keys), with `_file` and `_line`."""
    ms = lambda c: pl.col(c).dt.epoch("ms").cast(pl.String)  # noqa: E731
    names = frame.select(pl.col("metadata").explode().struct.field("name").drop_nulls().unique(maintain_order=True))
    meta = [
        pl.col("metadata").list.eval(pl.element().filter(pl.element().struct.field("name") == n)
                                     .struct.field("value")).list.first().alias(f"{model.METADATA_PREFIX}{n}")
        for n in names.to_series().to_list()
    ]
    out = frame.select(
        pl.col("origin_file").alias("_file"),
        pl.col("origin_line").alias("_line"),
        pl.col("agent_id").alias("AgentId"),
        ms("start_at").alias("ContactStartTimeMs"),
        pl.col("recording1").alias("Recording1"),
        pl.col("recording2").alias("Recording2"),
        pl.col("recording3").alias("Recording3"),
        pl.col("recording2_offset_ms").cast(pl.String).alias("Recording2Offset"),
        pl.col("assoc_call_id").alias("AssocCallId"),
        pl.col("call_id").alias("CallId"),
        pl.col("called").alias("CalledAddress"),
        pl.col("calling").alias("CallingAddress"),
        pl.col("client_time_zone").alias("ClientTimeZone"),
        pl.col("direction").alias("Direction"),
        pl.col("line").alias("Line"),
        *meta,
        pl.col("audio_location").alias("Audio.Location"),
        ms("audio_start_at").alias("Audio.StartTimeMs"),
        pl.col("screen_location").alias("Screen.Location"),
        ms("screen_start_at").alias("Screen.StartTimeMs"),
    )
    return model.blank_to_null(out)


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=model.RECORDINGS)


ROWS = "recordings"  # written row for row: no intervals are derived
NOUN = "recorded contacts"
count, missing, warnings = _batch.row_output(ROWS, "no recorded contacts in the input (use --from contacts)")


def fields(batch: Batch) -> pl.DataFrame:
    """The batch's rows as the CONTACT file would hold them (strings, blanks null), for the row rules."""
    return _fields(batch.recordings if batch.recordings is not None else _empty())


def render(batch: Batch, options: ConvertOptions) -> Iterator[Output]:
    """The media and, last, the CONTACT CSV of every row of the batch (rows checked by validate.rows)."""
    if batch.recordings is None:
        raise InputError("no recorded contacts in the input (use --from contacts)")
    good = _fields(batch.recordings)
    keys = sorted(set(good.select(pl.concat_list(
        [c for c in model.KEY_FIELDS if c in good.columns]).explode().drop_nulls()).to_series().to_list()))
    media = {k: batch.media[k] for k in keys}
    first = good.select(pl.col("ContactStartTimeMs").cast(pl.Int64).min()).item()
    first_at = datetime.fromtimestamp(first / 1000, tz=UTC) if first is not None else None
    name = _batch.batch_id(good.drop("_file"), media, first_at, options, "contacts")
    renamed = _batch.rename_media(keys, name)
    table = _batch.drop_empty(
        good.with_columns(pl.col(c).replace(renamed) for c in model.KEY_FIELDS if c in good.columns), REQUIRED
    ).drop("_file", "_line")
    newline = "\r\n" if options.newline == "crlf" else "\n"
    csv = table.write_csv(quote_style="necessary", line_terminator=newline).encode("utf-8")
    return _outputs(media, renamed, f"{CONTACT_PREFIX}{name}.csv", csv)


def _outputs(media: dict[str, model.Media], renamed: dict[str, str], csv_name: str, csv: bytes) -> Iterator[Output]:
    for key in sorted(media, key=lambda k: renamed[k]):
        yield Output(renamed[key], media[key].load(), "contact-media")
    yield Output(csv_name, csv, "contact")
