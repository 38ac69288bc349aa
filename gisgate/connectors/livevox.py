"""LiveVox source: the Agent Event Feed and the Interaction Event Feed (domain-spec §5.4).

A session comes from the Session API (`POST login_path` with the client name, user and password,
and the access token of the Configuration API subscription in `LV-Access`); every call then sends
`LV-Session` and `LV-Access`, and a session the server dropped (401) is opened again once.

Each feed is a long poll: `POST <feed path>?count=N` with `{"token": ...}` (none on the first call)
answers at most 1000 events after the token and a new token (it waits up to 10 s when there is
nothing new). The token is the source's cursor in the ledger. A token older than the 24 h the feed
keeps is refused with HTTP 400 (`{"code": 202, "message": "... more than 24 hours old ..."}`): the
feed starts again without a token, and the gap is recorded for `status` and the metrics.

With `service_stats` (service IDs), `POST stats_path` takes a snapshot of their statistics
(cumulative for today) once each quarter hour, at the first poll after the boundary (feeds answer
within their 10 s idle wait); the answer carries no time, so the snapshot's time is in its file name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from gisgate.connectors._http import Api, secret

FEEDS = {"agentEvent": ("agent_feed_path", "agentEvent"), "event": ("event_feed_path", "events")}


@dataclass(frozen=True)
class FeedPage:
    data: bytes  # the answer, as returned
    count: int  # events in it
    token: str | None  # where the next call continues
    more: bool  # a full page: more events are waiting
    reset: bool = False  # the old token was too old: this page starts a new feed


def too_old(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return "24 hours" in response.text
    return isinstance(body, dict) and (str(body.get("code")) == "202" or "24 hours" in str(body.get("message")))


class LiveVox:
    windowed = False

    def __init__(self, spec, sleep: Callable[[float], bool] | None = None):
        self.spec = spec
        self._password = secret(spec, "password")
        self._access = secret(spec, "access_token")
        self.api = Api(spec, [self._password, self._access], sleep)
        self.whats = list(spec.feeds) + (["serviceStats"] if spec.service_stats else [])
        self.snapshots = {"serviceStats"}  # taken once a quarter hour, not followed like a feed
        self._session: str | None = None
        self.logins = 0

    def _login(self) -> None:
        what = f"log in as {self.spec.username}"
        body = {"clientName": self.spec.client_name, "userName": self.spec.username, "password": self._password}
        answer = self.api.json(self.api.call("POST", self.spec.login_path, what, json=body,
                                             headers={"LV-Access": self._access}), what)
        session = answer.get("sessionId") if isinstance(answer, dict) else None
        if not session:
            raise self.api.error(what, "the answer holds no sessionId", transient=False)
        self.api.learn(session)
        self._session = session
        self.logins += 1

    def _call(self, path: str, what: str, **kw) -> httpx.Response:
        """A call in the session; a session the server dropped (401) is opened again, once."""
        for last in (False, True):
            if self._session is None:
                self._login()
            headers = {"LV-Session": self._session, "LV-Access": self._access}
            response = self.api.call("POST", path, what, headers=headers, accept=(400,) + (() if last else (401,)),
                                     **kw)
            if response.status_code != 401:
                return response
            self._session = None
        raise AssertionError("unreachable")

    def feed(self, what: str, token: str | None) -> FeedPage:
        """One long poll of feed `what` after `token` (None: a new feed)."""
        path, key = getattr(self.spec, FEEDS[what][0]), FEEDS[what][1]
        doing = f"poll the {what} feed"
        reset = False
        while True:
            body = {"token": token} if token else {}
            response = self._call(path, doing, params={"count": self.spec.count}, json=body)
            if response.status_code != 400:
                break
            if not token or not too_old(response):
                raise self.api.status_error(doing, response)
            token, reset = None, True  # too old: start a new feed (a gap may exist)
        answer = self.api.json(response, doing)
        if not isinstance(answer, dict):
            raise self.api.error(doing, "the answer is not a JSON object", transient=False)
        events = answer.get(key) or []
        new = answer.get("token")
        if new:
            self.api.learn(str(new))
        return FeedPage(response.content, len(events), new, len(events) >= self.spec.count, reset)

    def snapshot(self, what: str) -> bytes:
        """Service statistics now (cumulative for today) of the configured services, as returned."""
        doing = "take the service statistics"
        response = self._call(self.spec.stats_path, doing, json={"serviceId": list(self.spec.service_stats)})
        if response.status_code == 400:
            raise self.api.status_error(doing, response)
        self.api.json(response, doing)  # (a JSON answer, or FetchError)
        return response.content

    def probe(self) -> str:
        self._login()
        return f"livevox source {self.spec.name!r}: {self.spec.base_url} answered, session opened as " \
               f"{self.spec.username} ({self.spec.client_name})"

    def close(self) -> None:
        self.api.close()
