"""What a stream has sent to CommunityWFM Cloud Connect, kept in the stream's meta, so that the
records the importer ends up with equal one conversion of all of the route's data.

Cloud Connect refuses a second insert of a key: a record sent before can only go again as an update
(`UpdateExisting = "true"`), and People and CollectionPoints are inserted once. So:
- a call-volume record (collection point × interval) goes as an insert the first time, as an update
  when its numbers change, and not at all when they do not (a digest per record says);
- collection points and people go once each (their IDs are kept);
- agent activity goes as it arrives, each change once (`Stream.unsent` / `mark_sent`).

`pick` decides and returns what to remember; `remember` is applied only once the files are staged,
in the same meta write that clears the intervals, so a crash in between renders the same bytes again.
"""

from __future__ import annotations

import hashlib
import json

from gisgate.gateway.stream.store import us
from gisgate.model import Output
from gisgate.render import cwfm

SENT_KIND = "cloudconnect.sent"  # the stream's record kind of the activity sent


def state(meta: dict) -> dict:
    return meta.setdefault("cwfm", {"volume": {}, "points": [], "people": []})


def pick(meta: dict, outputs: list[Output], corrections: bool = True) -> tuple[list[Output], dict, int]:
    """Of one rendering's outputs: the call-volume records that are new (inserts) or changed (updates;
    without `corrections` they are counted and left out), the collection points and people not
    inserted before, everything else as it is; what to `remember` once they are staged; and how many
    records were corrections."""
    if not any(o.kind == "cwfm" for o in outputs):
        return outputs, {}, 0
    sent = state(meta)
    known = {"points": set(sent["points"]), "people": set(sent["people"])}
    keep, pending, corrected = [], {"volume": {}, "points": set(), "people": set()}, 0
    for out in outputs:
        part = _part(out)
        if part == "callvolume":
            key = str(us(out.interval_start))
            out, pending["volume"][key], n = _volume(out, sent["volume"].get(key, {}), corrections)
            corrected += n
        elif part in ("collectionpoints", "people"):
            group, field = ("points", "CollectionPointId") if part == "collectionpoints" else ("people", "AgentId")
            body = cwfm.read_body(out)
            rows = [r for r in body.records if r[field] not in known[group] | pending[group]]
            pending[group] |= {r[field] for r in rows}
            out = _named_by_content(cwfm.with_records(out, body, rows)) if rows else None
        if out is not None:
            keep.append(out)
    return keep, pending, corrected


def _volume(out: Output, before: dict, corrections: bool) -> tuple[Output | None, dict, int]:
    """An interval's call-volume body cut to its records that are new (inserts) or whose numbers
    changed since they were sent (updates, UpdateExisting = "true"), named by how many bodies of the
    interval went before (a crash renders the same name again); what the interval's records are now
    known as; how many were corrections. Cloud Connect's "true" is not known to insert a missing row,
    so a record goes as an insert first, always."""
    digests, withheld = dict(before.get("d", {})), dict(before.get("w", {}))
    rows, corrected = [], 0
    body = cwfm.read_body(out)
    for r in body.records:
        point = r["CollectionPoint"]
        digest = hashlib.sha256(json.dumps(r, sort_keys=True).encode()).hexdigest()[:16]  # kept in the meta
        if digests.get(point) == digest or withheld.get(point) == digest:  # (a withheld one is counted once)
            continue
        if point in digests:
            corrected += 1
            if not corrections:
                withheld[point] = digest
                continue
            r = {**r, "UpdateExisting": "true"}
        rows.append(r)
        digests[point] = digest
    n = before.get("n", 0)
    now = {"n": n + (1 if rows else 0), "d": digests, **({"w": withheld} if withheld else {})}
    if not rows:
        return None, now, corrected
    named = Output(out.name.replace(".json", f"-v{n + 1}.json") if n else out.name, out.data, out.kind,
                   out.interval_start)
    return cwfm.with_records(named, body, rows), now, corrected


def _named_by_content(out: Output) -> Output:
    """An insert body under a name its records fix: the next one (other records) never replaces it,
    the same one rendered again after a crash is the same file."""
    digest = hashlib.sha256(out.data).hexdigest()[:12]
    return Output(out.name.replace(".json", f"-{digest}.json"), out.data, out.kind, out.interval_start)


def remember(meta: dict, pending: dict) -> None:
    """What `pick` chose went out."""
    if not pending:
        return
    sent = state(meta)
    sent["volume"].update(pending["volume"])
    for group in ("points", "people"):
        sent[group] = sorted(set(sent[group]) | pending[group])


def forget_before(meta: dict, edge: int) -> None:
    """Intervals that left the window are final: their digests go."""
    if "cwfm" not in meta:
        return
    sent = state(meta)
    sent["volume"] = {k: v for k, v in sent["volume"].items() if int(k) >= edge}


def _part(out: Output) -> str | None:
    """`callvolume`, `collectionpoints`, `agentactivity` or `people` for a Cloud Connect body."""
    if out.kind != "cwfm":
        return None
    return out.name.removeprefix("cwfm-").split("-")[0]
