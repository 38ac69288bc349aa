"""What a produced file is, told from its name and first bytes, and which files travel with it.

Kinds: gis · whit · contact · textcontact · rtstate · cwfm · media (a file some contact CSV
references) · unknown.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

KINDS = ("gis", "whit", "contact", "textcontact", "rtstate", "cwfm")

GIS_NAME = re.compile(r"^(\d{12}[NP]\d{4})_(\d+)_(AgentProductivity\.AGENT|ServiceHistorical\.SERVICE)$")
CONTACT_NAME = re.compile(r"^CONTACT\..+\.csv$")  # prefix is case-sensitive (spec §3.4)
TEXTCONTACT_NAME = re.compile(r"^TEXTCONTACT\.(csv|json)$")
WHIT_COLUMNS = {"serviceName", "serviceNumber", "date", "period"}
# Cloud Connect bulk bodies by their list key (spec §4.2.2).
CWFM_LISTS = {
    "AgentInserts": "people",
    "CollectionPointInserts": "collection_points",
    "AgentUpdates": "agent_activity",
    "CallVolumeUpdates": "call_volume",
}
# Columns of CONTACT / TEXTCONTACT CSVs that name a file of the same upload (spec §3.1, §3.5).
MEDIA_COLUMNS = ("Recording1", "Recording2", "Recording3", "Audio.Location", "Screen.Location", "filename")


def gis_key(path: Path) -> tuple[str, str] | None:
    """(interval stamp with offset, ACD) of a GIS file name: AGENT and SERVICE with the same key pair up."""
    m = GIS_NAME.match(path.name)
    return (m.group(1), m.group(2)) if m else None


def identity(path: Path) -> tuple[str, int, int]:
    """Same path, size and modification time: the same file (to resume a partly sent one on retry)."""
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns


def _head(path: Path, size: int = 4096) -> str:
    with open(path, "rb") as f:
        return f.read(size).decode("utf-8-sig", errors="replace")


def json_shape(data) -> str | None:
    """`rtstate` for a JSON array of real-time states, `cwfm` for a Cloud Connect bulk body."""
    if isinstance(data, list) and data and all(isinstance(e, dict) and "gisStateIdentifier" in e for e in data):
        return "rtstate"
    if isinstance(data, dict) and any(k in data for k in CWFM_LISTS):
        return "cwfm"
    return None


def classify(path: Path) -> str:
    """The kind of one file (see module doc)."""
    name = path.name
    if GIS_NAME.match(name):
        return "gis"
    if TEXTCONTACT_NAME.match(name):
        return "textcontact"
    if CONTACT_NAME.match(name):
        return "contact"
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            shape = json_shape(json.loads(path.read_bytes()))
        except (ValueError, OSError):
            shape = None
        return shape or "unknown"
    if suffix == ".csv":
        first = _head(path).splitlines()[:1]
        columns = {c.strip() for c in next(csv.reader(first), [])} if first else set()
        if WHIT_COLUMNS <= columns:
            return "whit"
    return "unknown"


def referenced_files(csv_path: Path) -> list[str]:
    """File names a CONTACT / TEXTCONTACT CSV references (its media or `.txt` bodies), in first-seen order."""
    text = csv_path.read_bytes().decode("utf-8-sig", errors="replace")
    names: dict[str, None] = {}
    for row in csv.DictReader(io.StringIO(text)):
        for column in MEDIA_COLUMNS:
            value = (row.get(column) or "").strip()
            if value:
                names[value] = None
    return list(names)
