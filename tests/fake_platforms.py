"""Real local HTTP servers speaking the contact-center platform APIs gisgate's sources call (domain-spec §5):
LinkLive here, Talkdesk and LiveVox in their own modules. Each keeps what it was asked (`requests`) and
fails on demand:

    server.inject("/userStates", status=429, retry_after=1)   # next matching request: 429 + Retry-After: 1
    server.inject("/userStates", status=503, times=2)         # the next two answer 503
    server.inject("/userStates", delay=5)                     # the next one hangs 5 s before answering
    server.inject("/userStates", delay=5, after=3)            # ... the fourth one
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

API_SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@dataclass
class Fault:
    match: str
    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    times: int = 1
    body: object = None
    after: int = 0  # matching requests let through before the fault strikes


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes


class FakePlatform:
    """`start()`, `stop()`, `url`; subclasses answer in `handle(request) -> (status, payload, headers)`."""

    def __init__(self):
        self.requests: list[Request] = []
        self._faults: list[Fault] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def inject(self, match: str, **kw) -> Fault:
        fault = Fault(match, **kw)
        with self.lock:
            self._faults.append(fault)
        return fault

    def asked(self, part: str) -> list[Request]:
        return [r for r in self.requests if part in r.path]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self):
        fake = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):  # a client hanging up is not news
                pass

        class Handler(_Handler):
            platform = fake

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for f in self._faults:
                if f.match in path and f.times > 0:
                    if f.after > 0:
                        f.after -= 1
                        continue
                    f.times -= 1
                    return f
        return None

    def handle(self, r: Request) -> tuple[int, object, dict]:
        raise NotImplementedError


class _Handler(BaseHTTPRequestHandler):
    platform: FakePlatform
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        r = Request(method, url.path, {k: v[0] for k, v in parse_qs(url.query).items()}, dict(self.headers), body)
        fake = self.platform
        with fake.lock:
            fake.requests.append(r)
        fault = fake.take_fault(url.path)
        if fault:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status:
                headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                return self._reply(fault.status, fault.body or {"error": "injected failure"}, headers)
        try:
            status, payload, headers = fake.handle(r)
        except Exception as e:  # a bug in the fake: show it to the test as a 500
            status, payload, headers = 500, {"error": f"fake failed: {type(e).__name__}: {e}"}, {}
        self._reply(status, payload, headers)

    def _reply(self, status: int, payload, headers: dict) -> None:
        if isinstance(payload, bytes):
            body = payload
        else:
            body = b"" if payload is None else json.dumps(payload, indent=1).encode()
        self.send_response(status)
        self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


def seconds(value) -> float:
    """An epoch in seconds or milliseconds (> 10^11), number or string, as seconds."""
    v = float(value)
    return v / 1000 if v > 1e11 else v


class FakeLinkLive(FakePlatform):
    """`/v2/organizations/<org>/{userStates,queueEngagementIntervals,users,queues}` with `ApiKey llapi_…`.

    Windowed endpoints answer the records whose time (startTimestamp / intervalStart) is in
    [startTime, endTime); with `page_size`, pages linked by `nextPageToken`."""

    TIME = {"userStates": "startTimestamp", "queueEngagementIntervals": "intervalStart"}

    def __init__(self, key: str = "llapi_TESTKEY0123456789abcdef", org: str = "org_123",
                 records: dict[str, list[dict]] | None = None, page_size: int | None = None):
        super().__init__()
        self.key, self.org, self.page_size = key, org, page_size
        self.records = records if records is not None else load_linklive()
        self.lists = {"users": [{"id": "u-5f2a11", "email": "ann@example.com"}],
                      "queues": [{"id": "q-billing", "name": "Billing"}, {"id": "q-support", "name": "Support"}]}

    @property
    def base_url(self) -> str:
        return f"{self.url}/v2/organizations/{self.org}"

    def handle(self, r: Request):
        prefix = f"/v2/organizations/{self.org}/"
        if not r.path.startswith(prefix):
            return 404, {"error": "no such organization"}, {}
        if r.headers.get("Authorization") != f"ApiKey {self.key}":
            return 401, {"error": "invalid API key"}, {}
        what = r.path[len(prefix):]
        if what in self.lists:
            return 200, {"organizationId": self.org, what: self.lists[what]}, {}
        if what not in self.TIME:
            return 404, {"error": f"no endpoint {what}"}, {}
        try:
            start, end = float(r.query["startTime"]), float(r.query["endTime"])
        except (KeyError, ValueError):
            return 400, {"error": "startTime and endTime (Unix time UTC) are required"}, {}
        found = [x for x in self.records[what] if start <= seconds(x[self.TIME[what]]) < end]
        offset = int(r.query.get("pageToken", "0") or 0)
        answer: dict = {"organizationId": self.org}
        if self.page_size:
            page = found[offset:offset + self.page_size]
            if offset + self.page_size < len(found):
                answer["nextPageToken"] = str(offset + self.page_size)
            found = page
        answer[what] = found
        return 200, answer, {}


def load_linklive() -> dict[str, list[dict]]:
    """The recorded LinkLive answers (samples/linklive-api/): every record of the sample day."""
    folder = API_SAMPLES / "linklive-api"
    return {what: json.loads((folder / f"{what}.json").read_text())[what]
            for what in ("userStates", "queueEngagementIntervals")}


def shifted(records: dict[str, list[dict]], delta: int) -> dict[str, list[dict]]:
    """The same records `delta` seconds later (each time kept in its unit: s or ms, number or string)."""
    def move(value):
        ms = float(value) > 1e11
        new = float(value) + (delta * 1000 if ms else delta)
        new = int(new) if new == int(new) else new
        return str(new) if isinstance(value, str) else new

    out = {}
    for what, rows in records.items():
        key = FakeLinkLive.TIME[what]
        out[what] = [{**row, key: move(row[key])} for row in rows]
    return out
