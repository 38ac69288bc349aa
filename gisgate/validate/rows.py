"""The row rules of bulk contact imports (domain §3.1, §3.5), written once.

A conversion checks the rows it is about to write (`recordings`, `text_contacts`: every problem, so a
batch is rejected whole or, with --rejects, left without its bad rows), and `gisgate validate`
checks a finished CONTACT / TEXTCONTACT file with the same rules (`contact_rows`, `text_rows`).
Rules run on a frame of strings named like the import file's columns (blanks null) plus `_line`
(and optionally `_file`).
"""

from __future__ import annotations

import polars as pl

from gisgate.errors import Problem
from gisgate.model import (
    AGENT_FORMS,
    AUDIO_EXTENSIONS,
    EPOCH_FIELDS,
    KEY_FIELDS,
    MAX_LENGTH,
    MAX_METADATA_NAME,
    MAX_METADATA_VALUE,
    METADATA_PREFIX,
    RECORDING_EXTENSIONS,
    TEXT_TYPES,
    Batch,
)

S = pl.String


def _rule(column: str, reason: pl.Expr) -> pl.Expr:
    return pl.struct(pl.lit(column).alias("column"), reason.cast(S).alias("reason"))


def _quoted(c: str) -> pl.Expr:
    return pl.lit("'") + pl.col(c) + pl.lit("'")


def _too_long(c: str, limit: int, what: str = "") -> pl.Expr:
    n = pl.col(c).str.len_chars()
    return pl.when(n > limit).then(pl.lit(what) + n.cast(S) + pl.lit(f" characters, at most {limit} allowed"))


def _run_rules(frame: pl.DataFrame, rules: list[pl.Expr]) -> pl.DataFrame:
    """Evaluate rules row-wise; one (`_file`, `_line`, column, reason) row per broken rule."""
    empty = pl.DataFrame(schema={"_file": S, "_line": pl.Int64, "column": S, "reason": S})
    if not rules or frame.is_empty():
        return empty
    file = pl.col("_file") if "_file" in frame.columns else pl.lit("", S)
    out = (
        frame.select(file.alias("_file"), pl.col("_line"), pl.concat_list(rules).alias("p"))
        .explode("p").unnest("p").filter(pl.col("reason").is_not_null())
    )
    return out.select(empty.columns)


def contact_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Every §3.1 rule a CONTACT row breaks. `frame`: CONTACT columns as strings, blanks null."""
    has = set(frame.columns)
    rules: list[pl.Expr] = []
    agent = pl.col("AgentId") if "AgentId" in has else pl.lit(None, S)
    rules.append(_rule("AgentId", pl.when(agent.is_null()).then(pl.lit(f"required: {AGENT_FORMS}"))
                       .when(~agent.str.contains(r"^\d+$|\\|@")).then(
                           pl.lit("'") + agent + pl.lit(f"' is not {AGENT_FORMS}"))))
    rec1 = pl.col("Recording1") if "Recording1" in has else pl.lit(None, S)
    rules.append(_rule("Recording1", pl.when(rec1.is_null()).then(
        pl.lit("required: the file name of the contact's audio recording"))))
    for c, limit in MAX_LENGTH.items():
        if c in has:
            rules.append(_rule(c, _too_long(c, limit, "is ")))
    for c in KEY_FIELDS:
        if c in has:
            ext = pl.col(c).str.extract(r"\.([^.\\/]+)$").str.to_lowercase()
            rules.append(_rule(c, pl.when(pl.col(c).is_not_null() & ~ext.is_in(RECORDING_EXTENSIONS).fill_null(False))
                               .then(_quoted(c) + pl.lit(": media type must be one of "
                                                         + ", ".join(RECORDING_EXTENSIONS)))))
    for c in EPOCH_FIELDS:
        if c in has:
            rules.append(_rule(c, _epoch_ms(c)))
    if "Recording2Offset" in has:
        rules.append(_rule("Recording2Offset", pl.when(~pl.col("Recording2Offset").str.contains(r"^-?\d{1,18}$"))
                           .then(_quoted("Recording2Offset") + pl.lit(" is not a whole number of milliseconds"))))
    if "Direction" in has:
        rules.append(_rule("Direction", pl.when(~pl.col("Direction").is_in(["0", "1"]))
                           .then(_quoted("Direction") + pl.lit(" must be 0 (inbound) or 1 (outbound)"))))
    for c in sorted(has):
        if c.startswith(METADATA_PREFIX):
            name = c[len(METADATA_PREFIX):]
            if not name or len(name) > MAX_METADATA_NAME:
                rules.append(_rule(c, pl.when(pl.col(c).is_not_null()).then(pl.lit(
                    f"metadata name is {len(name)} characters, it must be 1 to {MAX_METADATA_NAME}"))))
            rules.append(_rule(c, _too_long(c, MAX_METADATA_VALUE, "metadata value is ")))
    audio = [c for c in KEY_FIELDS[:4] if c in has]
    if audio:
        keys = pl.concat_list([pl.col(c) for c in audio]).list.drop_nulls().list.unique(maintain_order=True)
        audios = keys.list.eval(pl.element().filter(
            pl.element().str.extract(r"\.([^.]+)$").str.to_lowercase().is_in(AUDIO_EXTENSIONS)))
        rules.append(_rule(audio[0], pl.when(audios.list.len() > 1).then(
            pl.lit("only one audio file per contact, found ") + audios.list.len().cast(S)
            + pl.lit(": ") + audios.list.join(", "))))
    return _run_rules(frame, rules)


# 2000-01-01T00:00:00Z in epoch milliseconds: no recording is older. A start before it is almost
# always epoch *seconds* (1730597400 read as milliseconds is 21 January 1970).
MIN_EPOCH_MS = 946_684_800_000


def _epoch_ms(c: str) -> pl.Expr:
    digits = pl.col(c).str.contains(r"^\d{1,18}$")
    value = pl.col(c).cast(pl.Int64, strict=False)
    as_date = pl.from_epoch(value, time_unit="ms").dt.strftime("%Y-%m-%d")
    return (pl.when(~digits).then(_quoted(c) + pl.lit(" is not epoch milliseconds (digits only)"))
            .when(value < MIN_EPOCH_MS).then(
                _quoted(c) + pl.lit(" as epoch milliseconds is ") + as_date
                + pl.lit(", before 2000: it looks like epoch seconds; give milliseconds (seconds × 1000)")))


def missing_media(frame: pl.DataFrame, available: set[str] | frozenset[str]) -> pl.DataFrame:
    """A problem for every media key the rows reference that is not among `available`."""
    rules = [
        _rule(c, pl.when(pl.col(c).is_not_null() & ~pl.col(c).is_in(sorted(available)))
              .then(_quoted(c) + pl.lit(" is not in the upload (no such media file)")))
        for c in KEY_FIELDS if c in frame.columns
    ]
    return _run_rules(frame, rules)


def text_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Every §3.5 rule a TEXTCONTACT row breaks. `frame`: TEXTCONTACT columns as strings, blanks null."""
    has = set(frame.columns)
    col = {c: (pl.col(c) if c in has else pl.lit(None, S)) for c in ("textType", "filename", "time", "username")}
    rules = [
        _rule("textType", pl.when(col["textType"].is_null()).then(pl.lit("required: " + ", ".join(TEXT_TYPES)))
              .when(~col["textType"].is_in(TEXT_TYPES)).then(
                  pl.lit("'") + col["textType"] + pl.lit("' is not one of " + ", ".join(TEXT_TYPES)))),
        _rule("filename", pl.when(col["filename"].is_null()).then(pl.lit("required: the .txt file of the text"))
              .when(~col["filename"].str.to_lowercase().str.ends_with(".txt")).then(
                  pl.lit("'") + col["filename"] + pl.lit("' must be a .txt file"))),
        _rule("time", pl.when(col["time"].is_null()).then(pl.lit("required: the start, epoch milliseconds"))
              .when(~col["time"].str.contains(r"^\d{1,18}$")).then(
                  pl.lit("'") + col["time"] + pl.lit("' is not epoch milliseconds (digits only)"))),
        _rule("username", pl.when(col["username"].is_null()).then(pl.lit("required: the agent's login"))),
    ]
    if "metadata" in has:
        bad = pl.col("metadata").str.split("|").list.eval(pl.element().filter(~pl.element().str.contains("=")))
        rules.append(_rule("metadata", pl.when(bad.list.len() > 0).then(
            pl.lit("'") + bad.list.first() + pl.lit("' is not name=value (metadata is name=value|name=value)"))))
    return _run_rules(frame, rules)


def problems(frame: pl.DataFrame, file: str = "") -> list[Problem]:
    """Rows of (`_file`, `_line`, column, reason) as sorted Problems (`file` when `_file` is empty)."""
    return sorted(Problem(f or file, line, column, reason) for f, line, column, reason in frame.iter_rows())


# ---- the checks of a conversion ------------------------------------------------------------------


def recordings(strings: pl.DataFrame, batch: Batch) -> list[Problem]:
    """Every problem of the CONTACT rows a conversion would write (read-time problems, §3.1 rules,
    media missing from the upload), sorted."""
    found = contact_rows(strings).vstack(missing_media(strings, set(batch.media)))
    return sorted(set(batch.row_problems) | set(problems(found)))


def text_contacts(strings: pl.DataFrame, batch: Batch, csv: bool) -> list[Problem]:
    """Every problem of the TEXTCONTACT rows a conversion would write (read-time, §3.5 rules, list
    syntax, bodies missing from the upload), sorted."""
    missing = strings.filter(pl.col("filename").is_not_null() & ~pl.col("filename").is_in(sorted(batch.media)))
    # metadata pairs are parsed already; `_syntax` checks what the CSV's `|`/`=` syntax cannot carry
    found = problems(text_rows(strings.drop("metadata"))) + [
        Problem(f, line, "filename", f"'{name}' is not in the upload (no such .txt file)")
        for f, line, name in missing.select("_file", "_line", "filename").iter_rows()
    ]
    found += _syntax(batch.text_contacts, csv)
    return sorted(set(batch.row_problems) | set(found))


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
    return problems(found)
