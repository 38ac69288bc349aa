"""Produced files: what gisgate writes, named and recognised in one place.

Renderers name files here, and sources, validators, targets, the gateway and `gisgate deliver` tell
them apart here:

    OUTPUTS                 the output kinds a conversion can make (`--to`, `outputs = [...]`)
    gis_name / GisName      the GIS file name, formatted and parsed by one grammar (domain §1.3)
    kind_of(path)           gis · whit · contact · textcontact · rtstate · cwfm · unknown
    referenced_files(path)  the media / `.txt` bodies a CONTACT / TEXTCONTACT file names
    travel_key(name, kind)  which files travel together, and in which order
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

OUTPUTS = ("gis", "whit", "contact", "textcontact", "cwfm", "rtstate")

# ---- GIS names: <yyyyMMddHHmm><N|P><HHMM>_<ACD>_AgentProductivity.AGENT | ..._ServiceHistorical.SERVICE

GIS_SUFFIX = {"agent": "AgentProductivity.AGENT", "service": "ServiceHistorical.SERVICE"}
GIS_HEADER_WORD = {"agent": "AGENT", "service": "SERVICE"}
GIS_NAME = re.compile(
    r"^(?P<stamp>\d{12})(?P<sign>[NP])(?P<hh>\d{2})(?P<mm>\d{2})_(?P<acd>\d+)_"
    r"(?P<suffix>AgentProductivity\.AGENT|ServiceHistorical\.SERVICE)$"
)
_KIND_OF_SUFFIX = {v: k for k, v in GIS_SUFFIX.items()}


def gis_offset(offset: timedelta, utc_token: str = "P0000") -> str:
    """`N0400` for UTC−04:00, `P0530` for UTC+05:30, `utc_token` for UTC (domain §1.3, §7 Q1–Q2)."""
    minutes = int(offset.total_seconds()) // 60
    if minutes == 0:
        return utc_token
    return f"{'N' if minutes < 0 else 'P'}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


def gis_name(local_start: datetime, offset: timedelta, acd: int | str, kind: str, utc_token: str = "P0000") -> str:
    """The file name of interval `local_start` (local clock, `offset` in force) of `kind` agent | service."""
    return f"{local_start.strftime('%Y%m%d%H%M')}{gis_offset(offset, utc_token)}_{acd}_{GIS_SUFFIX[kind]}"


@dataclass(frozen=True)
class GisName:
    """A parsed GIS file name."""

    stamp: str  # yyyyMMddHHmm, the local interval start
    sign: str  # N | P
    hh: str
    mm: str
    acd: str
    kind: str  # agent | service

    @property
    def suffix(self) -> str:
        return GIS_SUFFIX[self.kind]

    @property
    def offset(self) -> timedelta:
        minutes = int(self.hh) * 60 + int(self.mm)
        return timedelta(minutes=-minutes if self.sign == "N" else minutes)

    @property
    def offset_token(self) -> str:
        return f"{self.sign}{self.hh}{self.mm}"

    @property
    def date(self) -> str:
        return self.stamp[:8]

    @property
    def interval(self) -> tuple[str, str]:
        """(stamp with its offset, ACD): an interval's AGENT and SERVICE files share it."""
        return self.stamp + self.offset_token, self.acd

    def start_utc(self) -> datetime | None:
        """The interval's UTC start (local stamp minus the offset), None when the stamp is no date."""
        try:
            local = datetime.strptime(self.stamp, "%Y%m%d%H%M")
        except ValueError:
            return None
        return (local - self.offset).replace(tzinfo=UTC)


def parse_gis_name(name: str) -> GisName | None:
    m = GIS_NAME.match(name)
    if m is None:
        return None
    g = m.groupdict()
    return GisName(g["stamp"], g["sign"], g["hh"], g["mm"], g["acd"], _KIND_OF_SUFFIX[g["suffix"]])


# ---- other produced names --------------------------------------------------------------------------

CONTACT_PREFIX = "CONTACT."  # the Data Server matches this prefix, case-sensitively (domain §3.4)
TEXTCONTACT_NAMES = ("TEXTCONTACT.csv", "TEXTCONTACT.json")
WHIT_NAME = re.compile(r"^WHIT_\d+_\d{12}Z_\d{12}Z\.csv$")
WHIT_COLUMNS = {"serviceNumber", "period"}  # the two a WHIT CSV cannot be without
# Cloud Connect bulk bodies by their list key (domain §4.2.2).
CWFM_LISTS = {
    "AgentInserts": "people",
    "CollectionPointInserts": "collection_points",
    "AgentUpdates": "agent_activity",
    "CallVolumeUpdates": "call_volume",
}
JSON_PREFIXES = {"rtstate-": "rtstate", "cwfm-": "cwfm"}  # the names gisgate gives its JSON bodies
# Columns of CONTACT / TEXTCONTACT files that name a file of the same upload (domain §3.1, §3.5).
MEDIA_COLUMNS = ("Recording1", "Recording2", "Recording3", "Audio.Location", "Screen.Location")
BODY_COLUMN = "filename"


def is_contact_name(name: str) -> bool:
    return name.startswith(CONTACT_PREFIX) and name.endswith(".csv")


def json_shape(data) -> str | None:
    """`rtstate` for a JSON array of real-time states, `cwfm` for a Cloud Connect bulk body."""
    if isinstance(data, list) and data and all(isinstance(e, dict) and "gisStateIdentifier" in e for e in data):
        return "rtstate"
    if isinstance(data, dict) and any(k in data for k in CWFM_LISTS):
        return "cwfm"
    return None


def _head(path: Path, size: int = 4096) -> str:
    with open(path, "rb") as f:
        return f.read(size).decode("utf-8-sig", errors="replace")


def kind_of(path: Path) -> str:
    """What a produced file is: by its name (GIS, CONTACT, TEXTCONTACT), a JSON body by its shape (or,
    when it does not parse, by the name gisgate gives such bodies), a WHIT CSV by its column line (or
    gisgate's WHIT name); else `unknown`."""
    name = path.name
    if GIS_NAME.match(name):
        return "gis"
    if name in TEXTCONTACT_NAMES:
        return "textcontact"
    if is_contact_name(name):
        return "contact"
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            shape = json_shape(json.loads(path.read_bytes()))
        except (ValueError, OSError):
            shape = None
        return shape or next((k for p, k in JSON_PREFIXES.items() if name.startswith(p)), "unknown")
    if suffix == ".csv":
        if WHIT_NAME.match(name):
            return "whit"
        try:
            first = _head(path).splitlines()[:1]
        except OSError:
            return "unknown"
        columns = {c.strip() for c in next(csv.reader(first), [])} if first else set()
        if WHIT_COLUMNS <= columns:
            return "whit"
    return "unknown"


def referenced_files(path: Path) -> list[str]:
    """File names a CONTACT / TEXTCONTACT file (CSV or JSON) references: its media or `.txt` bodies,
    in first-seen order. Unreadable files reference nothing (their checks say why)."""
    columns = (BODY_COLUMN,) if path.name.startswith("TEXTCONTACT") else MEDIA_COLUMNS
    try:
        text = path.read_bytes().removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    if path.suffix.lower() == ".json":
        try:
            rows = [r for r in json.loads(text) if isinstance(r, dict)]
        except (ValueError, TypeError):
            return []
    else:
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    names: dict[str, None] = {}
    for row in rows:
        for column in columns:
            value = str(row.get(column) or "").strip()
            if value:
                names[value] = None
    return list(names)


def travel_key(name: str, kind: str) -> tuple[str, int]:
    """Which files travel together, and their order within: an interval's AGENT then SERVICE file;
    a contact batch's media or bodies first and its data file last; any other file alone.

    `kind` is an output kind (`gis-agent`, `contact-media`, …) or a file kind (`gis`, `contact`, …).
    """
    gis = parse_gis_name(name)
    if gis is not None:
        stamp, acd = gis.interval
        return f"gis:{stamp}_{acd}", 0 if gis.kind == "agent" else 1
    family = kind.split("-")[0]
    if family in ("contact", "textcontact"):
        return family, 0 if kind.endswith(("-media", "-body")) or kind == "media" else 1
    return f"file:{name}", 0
