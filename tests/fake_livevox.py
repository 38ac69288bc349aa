"""A real local LiveVox: the Session API and the two real-time event feeds (domain-spec §5.4).

    POST   /session/v6.0/login                  {"clientName","userName","password"} + LV-Access -> {"sessionId"}
    POST   /realtime/v6.0/agentEvent/feed       {"token"?} ?count=N -> {"agentEvent": [...], "token"}
    POST   /realtime/v6.0/event/feed            {"token"?} ?count=N -> {"events": [...], "token"}
    POST   /realtime/v6.0/service/stats         {"serviceId": [...]} -> {"stats": [...]} (now, no time)

A feed answers the events after its token, at most `count` (≤ 1000); with nothing new it waits up to
`idle_wait` s for events `push`ed meanwhile. A new feed (no token) starts at the first event kept,
or with `new_feed_from_now` after the last one. `age_tokens()` makes every token issued so far more
than 24 h old (HTTP 400, code 202); `drop_sessions()` ends every session (401).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from datetime import datetime, timedelta

from fake_platforms import API_SAMPLES, FakePlatform, Request

KEYS = {"agentEvent": "agentEvent", "event": "events"}


def load_livevox() -> dict[str, list[dict]]:
    folder = API_SAMPLES / "livevox-api"
    return {feed: json.loads((folder / f"{feed}.json").read_text())[KEYS[feed]] for feed in KEYS}


def shifted(events: dict[str, list[dict]], delta: int) -> dict[str, list[dict]]:
    """The same events `delta` seconds later: epoch ms (numbers or strings) and ISO times with offsets."""
    def move(value):
        if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
            new = int(float(value) + delta * (1000 if float(value) > 1e11 else 1))  # ms, or seconds
            return str(new) if isinstance(value, str) else new
        at = datetime.fromisoformat(value) + timedelta(seconds=delta)
        return at.isoformat(timespec="milliseconds")

    out = {}
    for feed, rows in events.items():
        out[feed] = [{k: move(v) if k in ("timestamp", "start", "end") and v not in (None, "") else v
                      for k, v in row.items()} for row in rows]
    return out


class FakeLiveVox(FakePlatform):
    def __init__(self, access: str = "LVACCESS-0123456789", password: str = "lv-PASSWORD-42",
                 events: dict[str, list[dict]] | None = None):
        super().__init__()
        self.access, self.password = access, password
        self.events = events if events is not None else {feed: [] for feed in KEYS}
        self.sessions: set[str] = set()
        self.tokens: dict[str, tuple[str, int, float]] = {}  # token -> (feed, position, issued at)
        self.issued: list[str] = []
        self.idle_wait = 0.3
        self.new_feed_from_now = False
        self.changed = threading.Condition(self.lock)
        self.answered: list[tuple[float, list[dict]]] = []  # (when, events) of every feed answer with events
        self.stats: list[dict] = []  # the service statistics now (cumulative today): the test moves them on

    def push(self, feed: str, rows: list[dict]) -> None:
        with self.changed:
            self.events[feed].extend(rows)
            self.changed.notify_all()

    def age_tokens(self) -> None:
        with self.lock:
            self.tokens = {t: (f, p, at - 25 * 3600) for t, (f, p, at) in self.tokens.items()}

    def drop_sessions(self) -> None:
        with self.lock:
            self.sessions.clear()

    def handle(self, r: Request):
        if r.headers.get("LV-Access") != self.access:
            return 403, {"code": 403, "message": "invalid access token"}, {}
        if r.path == "/session/v6.0/login" and r.method == "POST":
            body = json.loads(r.body or b"{}")
            if (body.get("userName"), body.get("password"), body.get("clientName")) != ("gisgate-svc", self.password,
                                                                                         "acme"):
                return 401, {"code": 401, "message": "bad credentials"}, {}
            session = "LVS-" + secrets.token_hex(12)
            with self.lock:
                self.sessions.add(session)
                self.issued.append(session)
            return 200, {"sessionId": session, "userId": 7, "daysUntilPasswordExpires": 80}, {}
        if r.headers.get("LV-Session") not in self.sessions:
            return 401, {"code": 401, "message": "session expired"}, {}
        if r.path == "/realtime/v6.0/service/stats" and r.method == "POST":
            wanted = set(json.loads(r.body or b"{}").get("serviceId") or [])
            with self.lock:  # cumulative for today, no time in the answer (as the API gives it)
                return 200, {"stats": [dict(s) for s in self.stats if s["serviceId"] in wanted]}, {}
        for feed in KEYS:
            if r.path == f"/realtime/v6.0/{feed}/feed" and r.method == "POST":
                return self._feed(feed, json.loads(r.body or b"{}").get("token"), int(r.query.get("count", 1000)))
        return 404, {"error": "no route"}, {}

    def _feed(self, feed: str, token: str | None, count: int):
        if not 1 <= count <= 1000:
            return 400, {"code": 100, "message": "count must be 1 to 1000"}, {}
        with self.changed:
            if token is None:
                position = len(self.events[feed]) if self.new_feed_from_now else 0
            elif token not in self.tokens or self.tokens[token][0] != feed:
                return 400, {"code": 201, "message": "unknown token"}, {}
            else:
                _, position, issued = self.tokens[token]
                if time.time() - issued > 24 * 3600:
                    return 400, {"code": 202, "message": f"Token {token} is more than 24 hours old"}, {}
            if position >= len(self.events[feed]):
                self.changed.wait(self.idle_wait)
            page = self.events[feed][position:position + count]
            new = secrets.token_hex(16)
            self.tokens[new] = (feed, position + len(page), time.time())
            self.issued.append(new)
            if page:
                self.answered.append((time.time(), page))
        return 200, {KEYS[feed]: page, "token": new}, {}
