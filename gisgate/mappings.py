"""Mapping files: the `[mapping]` tables of a real center, kept in CSV files that are read again
whenever they change (2,000 agents who join and leave every week do not fit inline tables).

    agents_file     platform ID → ACD agent ID, and/or e-mail → ACD agent ID
    services_file   platform queue ID → acdServiceId (and optionally the service's name)
    users_file      the platform's users: platform ID and e-mail (matched to agents_file by e-mail)

Columns are found by name, in any order, case and punctuation ignored:

    platform ID   platform_id, platformId, id, user_id, userId, queue_id, queueId
    ACD ID        acd_id, acdId, acdServiceId, serviceNumber
    e-mail        email, e-mail, mail
    name          name, serviceName (services_file)

So a Webex WFO persons export (`email`, `acdId`, `acdServerId`, ...) is an agents file as it is;
with `acdServerId`, only its rows for the gateway's ACD number count. A platform's user export, CSV,
or its users API's JSON answer as it came (Talkdesk `_embedded.users`, LinkLive `users`: the first
list of records with an `email`), is a users file.

An agent is mapped by its platform ID when the agents file names it; else by its e-mail: the users
file gives the platform ID of each e-mail (case ignored). Its e-mail maps too, for exports that name
agents by e-mail. Inline `[mapping.agents]` / `[mapping.services]` entries win over the files.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from gisgate.errors import ConfigError

log = logging.getLogger("gisgate.mapping")

COLUMNS = {
    "platform": ("platformid", "id", "userid", "queueid", "serviceid"),
    "acd": ("acdid", "acdserviceid", "servicenumber", "acdagentid"),
    "email": ("email", "mail"),
    "name": ("name", "servicename"),
    "server": ("acdserverid",),
}


@dataclass(frozen=True)
class Table:
    """One mapping file read: its rows as (line, platform ID, ACD ID, e-mail, name)."""

    path: Path
    rows: tuple[tuple[int, str, str, str, str], ...]


def agents(agents_file: Path | None, users_files: list[Path], acd: int) -> dict[str, str]:
    """Platform ID (and e-mail) → ACD agent ID from the agents file, matched through the users files."""
    if agents_file is None:
        return {}
    table = read(agents_file, acd, need=("acd",))
    out: dict[str, str] = {}
    by_mail: dict[str, str] = {}
    for line, platform, acd_id, email, _ in table.rows:
        if platform:
            _put(out, platform, acd_id, table.path, line)
        if email:
            _put(by_mail, email.lower(), acd_id, table.path, line)
    for users_file in users_files:
        users = read(users_file, acd, need=("platform", "email"))
        for _, platform, _, email, _ in users.rows:
            if platform and email and email.lower() in by_mail:
                out.setdefault(platform, by_mail[email.lower()])
    for email, acd_id in by_mail.items():
        out.setdefault(email, acd_id)
    return out


def services(services_file: Path | None, acd: int) -> tuple[dict[str, str], dict[str, str]]:
    """Platform queue ID → acdServiceId, and acdServiceId → name, from the services file."""
    if services_file is None:
        return {}, {}
    table = read(services_file, acd, need=("platform", "acd"))
    ids: dict[str, str] = {}
    names: dict[str, str] = {}
    for line, platform, acd_id, _, name in table.rows:
        _put(ids, platform, acd_id, table.path, line)
        if name:
            names.setdefault(acd_id, name)
    return ids, names


def _put(table: dict[str, str], key: str, value: str, path: Path, line: int) -> None:
    old = table.setdefault(key, value)
    if old != value:
        raise ConfigError(f"{path}:{line}: {key!r} is mapped to {old!r} on an earlier line and to {value!r} here")


# -- reading, once per change -----------------------------------------------------------------------

_cache: dict[tuple[Path, int], tuple[tuple[int, int], Table]] = {}
_lock = threading.Lock()


def read(path: Path, acd: int, need: tuple[str, ...]) -> Table:
    """The file's rows, read again only when its size or mtime changed. A file that turns bad while
    a good version was read keeps that version (said once in the log); a first read that fails is a
    ConfigError naming the file, line and reason."""
    try:
        st = path.stat()
    except OSError as e:
        raise ConfigError(f"{path}: mapping file not readable: {e.strerror or e}") from None
    stamp = (st.st_mtime_ns, st.st_size)
    with _lock:
        hit = _cache.get((path, acd))
        if hit is not None and hit[0] == stamp:
            return hit[1]
        try:
            table = _parse(path, acd, need)
        except ConfigError as e:
            if hit is None:
                raise
            log.error("%s; the mapping read before stays in use", e)
            _cache[(path, acd)] = (stamp, hit[1])
            return hit[1]
        _cache[(path, acd)] = (stamp, table)
        if hit is not None:
            log.info("%s: mapping file changed, %d row(s) read again", path, len(table.rows))
        return table


def _parse(path: Path, acd: int, need: tuple[str, ...]) -> Table:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = _json_rows(path, f.read()) if path.suffix.lower() == ".json" else list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: mapping file not readable as UTF-8 CSV: {e}") from None
    if not rows:
        raise ConfigError(f"{path}: mapping file is empty (a header line is needed)")
    where = _columns(path, rows[0], need)
    out = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        cell = {k: (row[i].strip() if i is not None and i < len(row) else "") for k, i in where.items()}
        if cell["server"] and cell["server"] != str(acd):
            continue  # another ACD's row (a WFO export lists every ACD)
        for k in need:
            if not cell[k]:
                raise ConfigError(f"{path}:{line}: column {rows[0][where[k]]!r} is empty")
        if not (cell["platform"] or cell["email"]):
            raise ConfigError(f"{path}:{line}: neither a platform ID nor an e-mail to map from")
        if cell["acd"] and re.search(r"[,\"'\s]", cell["acd"]):
            raise ConfigError(f"{path}:{line}: ACD ID {cell['acd']!r} holds a comma, quote or space")
        out.append((line, cell["platform"], cell["acd"], cell["email"], cell["name"]))
    return Table(path, tuple(out))


def _json_rows(path: Path, text: str) -> list[list[str]]:
    """A platform's users as its API returns them (`{"users": [...]}`, `{"_embedded": {"users": [...]}}`,
    a bare list, ...): the first list of objects with an e-mail, as CSV rows under a header."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"{path}: not valid JSON: {e}") from None
    todo, records = [data], None
    while todo and records is None:
        node = todo.pop(0)
        if isinstance(node, list) and node and all(isinstance(r, dict) for r in node) and any(
                "email" in r for r in node):
            records = node
        elif isinstance(node, dict):
            todo += list(node.values())
        elif isinstance(node, list):
            todo += node
    if records is None:
        raise ConfigError(f"{path}: no list of records with an `email` field in this JSON")
    header = sorted({k for r in records for k, v in r.items() if not isinstance(v, dict | list)})
    return [header] + [["" if r.get(k) is None else str(r.get(k)) for k in header] for r in records]


def _columns(path: Path, header: list[str], need: tuple[str, ...]) -> dict[str, int | None]:
    plain = [re.sub(r"[^a-z]", "", h.lower()) for h in header]
    where = {k: next((plain.index(n) for n in names if n in plain), None) for k, names in COLUMNS.items()}
    missing = [k for k in need if where[k] is None]
    if missing:
        wanted = " / ".join(f"{k}: {', '.join(COLUMNS[k][:3])}" for k in missing)
        raise ConfigError(f"{path}:1: no column for {wanted} (the header has {header})")
    return where
