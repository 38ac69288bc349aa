"""Checks a GIS file against domain §1.3–1.11: name, header, columns, numbers, keys, agent totals.

Independent of the renderer on purpose: it parses the bytes as the Data Server would, so a
renderer bug cannot hide behind a shared helper.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from gisgate.errors import Problem
from gisgate.model import AGENT_COLUMNS, QUEUE_COLUMNS
from gisgate.produced import GisName, gis_offset, parse_gis_name
from gisgate.validate._text import utf8_text

HEADER = re.compile(
    r"^(AGENT|SERVICE) DATE: (\d{4}-\d{2}-\d{2}) INTERVAL: (\d{2}:\d{2}) TZOFFSET: ([+-])(\d{2})(\d{2}) ACD: (\d+)$"
)
LAYOUTS = {
    "agent": ("AGENT", AGENT_COLUMNS, ["acdAgentId", "acdServiceId"]),
    "service": ("SERVICE", QUEUE_COLUMNS, ["acdServiceId"]),
}
UNPRORATED = {
    "totalUnproratedReadyWaitingSeconds": "totalProratedReadyWaitingSeconds",
    "totalUnproratedNotReadyBusySeconds": "totalProratedNotReadyBusySeconds",
    "totalUnproratedInSessionSeconds": None,
}


def check(path: Path, tz: str | None = None, interval: int = 15) -> list[Problem]:
    """Every problem of one GIS file (empty list: valid)."""
    file = str(path)
    name = parse_gis_name(path.name)
    if name is None:
        return [Problem(file, 0, "", "file name does not match <yyyyMMddHHmm><N|P><HHMM>_<ACD>_"
                                     "AgentProductivity.AGENT or ..._ServiceHistorical.SERVICE")]
    word, columns, keys = LAYOUTS[name.kind]
    text, problems = utf8_text(path)
    if text is None:
        return problems
    if not text.endswith("\n"):
        problems.append(Problem(file, text.count("\n") + 1, "", "last line is not terminated by a newline"))
    lines = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
    endings = {line.endswith("\r") for line in lines}
    if len(endings) > 1:
        problems.append(Problem(file, 0, "", "mixes CRLF and LF line endings"))
    lines = [line.removesuffix("\r") for line in lines]
    if len(lines) < 2:
        return problems + [Problem(file, 1, "", "needs a header line and a column line")]

    problems += _check_header(file, lines[0], word, name, tz, interval)
    by_gis = {c.gis: c for c in columns if c.gis}
    by_gis["periodStart"] = None
    names = [n.strip() for n in lines[1].split(",")]
    for n in sorted({n for n in names if names.count(n) > 1}):
        problems.append(Problem(file, 2, n, "column appears more than once"))
    problems += [Problem(file, 2, n, "unknown column") for n in names if n not in by_gis]
    problems += [Problem(file, 2, c.gis, "required column is missing") for c in columns
                 if c.required and c.gis and c.gis not in names]
    if problems and any(p.line == 2 for p in problems):
        return problems
    rows = []
    for number, line in enumerate(lines[2:], start=3):
        if not line.strip():
            problems.append(Problem(file, number, "", "blank line"))
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != len(names):
            problems.append(Problem(file, number, "", f"has {len(fields)} fields, the column line has {len(names)}"))
            continue
        rows.append((number, dict(zip(names, fields, strict=True))))
    if not rows:
        problems.append(Problem(file, 2, "", "no data lines"))
    problems += _check_rows(file, rows, by_gis, keys, word, name.start_utc())
    return problems


def _check_header(file, header: str, word: str, name: GisName, tz: str | None, interval: int) -> list[Problem]:
    h = HEADER.match(header)
    if not h:
        return [Problem(file, 1, "", "header does not match '<TYPE> DATE: YYYY-MM-DD INTERVAL: HH:MM "
                                     "TZOFFSET: ±HHMM ACD: n'")]
    out = []
    stamp, token = name.stamp, name.offset_token
    h_word, h_date, h_time, h_sign, h_oh, h_om, h_acd = h.groups()
    if h_word != word:
        out.append(Problem(file, 1, "", f"header says {h_word}, the file name says {word}"))
    if h_date.replace("-", "") + h_time.replace(":", "") != stamp:
        out.append(Problem(file, 1, "", f"header DATE/INTERVAL {h_date} {h_time} differ from the name's {stamp}"))
    minutes = int(h_oh) * 60 + int(h_om)
    if timedelta(minutes=-minutes if h_sign == "-" else minutes) != name.offset:
        out.append(Problem(file, 1, "", f"header TZOFFSET {h_sign}{h_oh}{h_om} differs from the name's {token}"))
    if int(h_acd) != int(name.acd):
        out.append(Problem(file, 1, "", f"header ACD {h_acd} differs from the name's ACD {name.acd}"))
    start = name.start_utc()
    if start is None:
        return out + [Problem(file, 0, "", f"{stamp} is not a valid date and time")]
    if int(stamp[-2:]) % interval:
        out.append(Problem(file, 0, "", f"interval start {stamp[-4:-2]}:{stamp[-2:]} is not on a {interval}-minute "
                                        "boundary"))
    if tz:
        local = start.astimezone(ZoneInfo(tz))
        if local.utcoffset() != name.offset:
            out.append(Problem(file, 0, "", f"offset {token} is not the offset in force in {tz} at that "
                                            f"instant ({gis_offset(local.utcoffset())})"))
        elif local.strftime("%Y%m%d%H%M") != stamp:
            out.append(Problem(file, 0, "", f"local time {stamp} does not exist in {tz}"))
    return out


# The most decimals a GIS number may show, by the kind of its column (domain §1.8). Written here, not
# taken from the renderer: a renderer printing a fourth decimal must not pass.
DECIMALS = {"count": 3, "seconds": 3, "percent": 2}


def _number(text: str) -> float | None:
    if not re.fullmatch(r"\d+(\.\d+)?", text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def decimals(text: str) -> int:
    """How many decimals a plain number shows."""
    return len(text.partition(".")[2])


def _check_rows(file, rows, by_gis, keys, word, start) -> list[Problem]:
    out: list[Problem] = []
    seen: dict[tuple, int] = {}
    agents: dict[str, list[tuple[int, dict]]] = {}
    for number, row in rows:
        values: dict[str, float] = {}
        for name, text in row.items():
            column = by_gis[name]
            if name == "periodStart":
                if start is not None and _period_start(text) != start:
                    out.append(Problem(file, number, name, f"{text!r} is not the file's interval start"))
                continue
            if column.kind == "id":
                if not text:
                    out.append(Problem(file, number, name, "ID is empty"))
                elif '"' in text or re.search(r"\s", text):
                    out.append(Problem(file, number, name, "ID contains a quote or whitespace"))
                elif name == "acdServiceId" and text.isdigit() and int(text) == 0:
                    out.append(Problem(file, number, name, "must be positive"))
                continue
            value = _number(text)
            if value is None:
                out.append(Problem(file, number, name, f"not a plain non-negative number: {text!r}"))
                continue
            if decimals(text) > DECIMALS[column.kind]:
                out.append(Problem(file, number, name, f"{text} has {decimals(text)} decimals; a GIS file shows at "
                                                       f"most {DECIMALS[column.kind]} for {column.kind} values"))
            if column.kind == "percent" and value > 100:
                out.append(Problem(file, number, name, "greater than 100"))
            values[name] = value
        key = tuple(row.get(k, "") for k in keys)
        if key in seen:
            out.append(Problem(file, number, "", f"second row for {'/'.join(key)} (first on line {seen[key]})"))
        else:
            seen[key] = number
        if word == "AGENT":
            agents.setdefault(row.get("acdAgentId", ""), []).append((number, values))
    for agent, agent_rows in agents.items():
        out += _check_agent(file, agent, agent_rows)
    return out


def _period_start(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.astimezone(UTC) if value.tzinfo else None


def _check_agent(file, agent, rows) -> list[Problem]:
    out = []
    first_line, first = rows[0]
    for unprorated, prorated in UNPRORATED.items():
        if unprorated not in first:
            continue
        for number, values in rows[1:]:
            if values.get(unprorated) != first[unprorated]:
                out.append(Problem(file, number, unprorated,
                                   f"agent {agent}: differs from line {first_line} "
                                   "(unprorated values repeat per agent)"))
        if prorated and all(prorated in v for _, v in rows):
            total = sum(v[prorated] for _, v in rows)
            if total and abs(total - first[unprorated]) > 0.01:
                out.append(Problem(file, first_line, prorated,
                                   f"agent {agent}: prorated values sum to {total:g}, not {first[unprorated]:g}"))
    return out
