"""Checks the JSON bodies gisgate produces for REST: Webex real-time agent states (`rtstate-*.json`,
domain §4.1.6) and CommunityWFM Cloud Connect bulk bodies (`cwfm-*.json`, §4.2.3–4.2.4).

Problems name the record (1-based) as the line and the field as the column.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from gisgate.errors import Problem

BATCH_LIMIT = 500
STATE_CODES = {"1", "2", "3", "4", "5", "6", "10"}
UTC_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} ([01]\d|2[0-3]):[0-5]\d:[0-5]\d$")
QUARTER = re.compile(r"^\d{4}-\d{2}-\d{2} ([01]\d|2[0-3]):(00|15|30|45):00$")
NUMBER = re.compile(r"^\d+(\.\d+)?$")

# list key → (required text fields with their maximum length, numeric text fields)
CWFM_LISTS = {
    "CallVolumeUpdates": ({"CollectionPoint": 50, "Interval": 19, "UpdateExisting": 5},
                          ["ContactsOffered", "ContactsNotHandled", "TalkTime", "HoldTime", "ServiceLevelPct"]),
    "AgentUpdates": ({"AgentId": 50, "EventTime": 19, "Activity": 10}, []),
    "AgentInserts": ({"AgentId": 50}, []),
    "CollectionPointInserts": ({"CollectionPointId": 50}, []),
}
OPTIONAL_LENGTHS = {"ReasonCode": 10, "FirstName": 20, "LastName": 20, "Description": 255}


def check(path: Path, kind: str) -> list[Problem]:
    """Every problem of one `rtstate` or `cwfm` JSON body."""
    file = str(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return [Problem(file, 0, "", f"not valid UTF-8 JSON: {e}")]
    if kind == "rtstate":
        return _rtstate(file, data)
    return _cwfm(file, data)


def _rtstate(file: str, data) -> list[Problem]:
    if not isinstance(data, list):
        return [Problem(file, 0, "", "a real-time state batch is a JSON array")]
    out = [Problem(file, 0, "", f"{len(data)} records; at most {BATCH_LIMIT} per batch")] if len(data) > BATCH_LIMIT \
        else []
    for n, rec in enumerate(data, start=1):
        if not isinstance(rec, dict):
            out.append(Problem(file, n, "", "record is not an object"))
            continue
        extra = set(rec) - {"acdAgentId", "gisStateIdentifier", "timestamp", "reasonCode"}
        out += [Problem(file, n, k, "unknown field") for k in sorted(extra)]
        agent = rec.get("acdAgentId")
        if not isinstance(agent, str) or not agent:
            out.append(Problem(file, n, "acdAgentId", "must be a non-empty string"))
        if rec.get("gisStateIdentifier") not in STATE_CODES:
            out.append(Problem(file, n, "gisStateIdentifier",
                               f"must be one of {sorted(STATE_CODES, key=int)} as a string"))
        ts = rec.get("timestamp")
        if isinstance(ts, bool) or not isinstance(ts, int) or ts < 10**11:
            out.append(Problem(file, n, "timestamp", "must be an integer of epoch milliseconds"))
        reason = rec.get("reasonCode")
        if "reasonCode" in rec and not (isinstance(reason, str) and reason or
                                        isinstance(reason, int) and not isinstance(reason, bool)
                                        and 1 <= reason <= 65535):
            out.append(Problem(file, n, "reasonCode", "must be 1–65535 or a non-empty text (omit it when absent)"))
    return out


def _cwfm(file: str, data) -> list[Problem]:
    if not isinstance(data, dict):
        return [Problem(file, 0, "", "a Cloud Connect body is a JSON object")]
    lists = [k for k in CWFM_LISTS if k in data]
    out = []
    if not isinstance(data.get("AccountId"), str) or not data.get("AccountId"):
        out.append(Problem(file, 0, "AccountId", "missing"))
    if len(lists) != 1:
        return out + [Problem(file, 0, "", f"needs exactly one of {', '.join(CWFM_LISTS)}")]
    key = lists[0]
    records = data[key]
    if not isinstance(records, list) or not records:
        return out + [Problem(file, 0, key, "must be a non-empty list")]
    if len(records) > BATCH_LIMIT:
        out.append(Problem(file, 0, key, f"{len(records)} records; at most {BATCH_LIMIT} per request"))
    texts, numbers = CWFM_LISTS[key]
    for n, rec in enumerate(records, start=1):
        for field, limit in {**texts, **{k: v for k, v in OPTIONAL_LENGTHS.items() if k in rec}}.items():
            value = rec.get(field)
            if not isinstance(value, str) or (field in texts and not value):
                out.append(Problem(file, n, field, "missing or not a string"))
            elif len(value) > limit:
                out.append(Problem(file, n, field, f"longer than {limit} characters"))
        for field in numbers:
            value = rec.get(field)
            if not isinstance(value, str) or not NUMBER.match(value):
                out.append(Problem(file, n, field, f"not a plain non-negative number: {value!r}"))
        if key == "CallVolumeUpdates":
            if rec.get("UpdateExisting") not in ("true", "false"):
                out.append(Problem(file, n, "UpdateExisting", "must be \"true\" or \"false\""))
            if isinstance(rec.get("Interval"), str) and not QUARTER.match(rec["Interval"]):
                out.append(Problem(file, n, "Interval", "must be a UTC yyyy-MM-dd HH:mm:00 on a 15-minute boundary"))
            pct = rec.get("ServiceLevelPct")
            if isinstance(pct, str) and NUMBER.match(pct) and float(pct) > 100:
                out.append(Problem(file, n, "ServiceLevelPct", "greater than 100"))
        if key == "AgentUpdates" and isinstance(rec.get("EventTime"), str) and not UTC_TIME.match(rec["EventTime"]):
            out.append(Problem(file, n, "EventTime", "must be UTC yyyy-MM-dd HH:mm:ss"))
    return out
