"""Checks a WHIT CSV against domain §2: columns, dates, periods, numbers, one row per key."""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

from gisgate.errors import Problem
from gisgate.validate._text import utf8_text

REQUIRED = ["serviceName", "serviceNumber", "date", "period", "receivedCalls", "handledCalls",
            "avgTalkTime", "avgACWTime"]
OPTIONAL = ["abandonedCalls", "ASA", "serviceLevel", "contactsInQueue", "occupancyRatio", "qtyOfAgents",
            "transferredCalls"]
PERCENT_INTEGERS = {"serviceLevel", "occupancyRatio"}
DECIMALS = 3  # the most decimals of the other numbers (counts, average seconds), as in GIS files
DATE = re.compile(r"^\d{4}[-/]\d{2}[-/]\d{2}$")
PERIOD = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def check(path: Path, interval: int = 15) -> list[Problem]:
    file = str(path)
    text, out = utf8_text(path)
    if text is None:
        return out
    if not text.endswith("\n"):
        out.append(Problem(file, 0, "", "last line is not terminated by a newline"))
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return out + [Problem(file, 1, "", "empty file")]
    header = [h.strip() for h in rows[0]]
    out += [Problem(file, 1, c, "required WHIT column is missing") for c in REQUIRED if c not in header]
    out += [Problem(file, 1, c, "unknown WHIT column") for c in header if c not in REQUIRED + OPTIONAL]
    if out:
        return out
    seen: dict[tuple, int] = {}
    for number, fields in enumerate(rows[1:], start=2):
        if len(fields) != len(header):
            out.append(Problem(file, number, "", f"has {len(fields)} fields, the header has {len(header)}"))
            continue
        row = dict(zip(header, (f.strip() for f in fields), strict=True))
        if not row["serviceNumber"].isdigit():
            out.append(Problem(file, number, "serviceNumber", f"not a number: {row['serviceNumber']!r}"))
        if not DATE.match(row["date"]):
            out.append(Problem(file, number, "date", f"{row['date']!r}: write YYYY-MM-DD"))
        p = PERIOD.match(row["period"])
        if not p:
            out.append(Problem(file, number, "period", f"{row['period']!r}: write HH:MM"))
        elif int(p.group(2)) % interval:
            out.append(Problem(file, number, "period", f"{row['period']} is not on a {interval}-minute boundary"))
        for name, text in row.items():
            if name in ("serviceName", "serviceNumber", "date", "period") or (text == "" and name in OPTIONAL):
                continue
            try:
                value = float(text)
            except ValueError:
                out.append(Problem(file, number, name, f"not a number: {text!r}"))
                continue
            if not math.isfinite(value) or value < 0 or "e" in text.lower():
                out.append(Problem(file, number, name, f"not a plain non-negative number: {text!r}"))
            elif name in PERCENT_INTEGERS and (value > 100 or not text.isdigit()):
                out.append(Problem(file, number, name, f"must be an integer from 0 to 100: {text!r}"))
            elif len(text.partition(".")[2]) > DECIMALS:
                out.append(Problem(file, number, name, f"{text} has {len(text.partition('.')[2])} decimals; a WHIT "
                                                       f"file shows at most {DECIMALS}"))
        key = (row["serviceNumber"], row["date"], row["period"])
        if key in seen:
            out.append(Problem(file, number, "", f"second row for service {key[0]} at {key[1]} {key[2]} "
                                                 f"(first on line {seen[key]})"))
        else:
            seen[key] = number
    return out
