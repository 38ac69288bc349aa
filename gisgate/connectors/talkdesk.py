"""Talkdesk Explore API source (domain-spec §5.2).

OAuth client credentials: a token from `token_url` (HTTP Basic with the client id and secret), kept
until shortly before it expires, fetched again once when the API answers 401. For each report type
(`contacts`, `calls`, `user_status`) and window:

    POST /data/reports/<type>/jobs          {"name", "timezone": "UTC", "format", "timespan": {"from", "to"}}
    GET  /data/reports/<type>/jobs/<id>     until done (created → processing → uploading → done);
                                            failed / canceled / deleted: the job is created again
    GET  /data/reports/<type>/files/<id>    303 to the file, fetched without our token (a signed URL)

Jobs are asked in UTC, so the report's naive datetimes are UTC (the route's naive_tz default).
Windows are at most `max_window` long (Explore takes at most a month a job).
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from urllib.parse import urljoin

import httpx

from gisgate.connectors._http import Api, secret
from gisgate.connectors.windows import Window

log = logging.getLogger("gisgate.fetch")
RUNNING = {"created", "processing", "uploading", "queued", "pending"}
REDIRECTS = {301, 302, 303, 307, 308}


class Talkdesk:
    windowed = True

    def __init__(self, spec, sleep: Callable[[float], bool] | None = None, clock: Callable[[], float] = time.monotonic):
        self.spec, self.clock = spec, clock
        self._secret = secret(spec, "client_secret")
        basic = base64.b64encode(f"{spec.client_id}:{self._secret}".encode()).decode()
        self.api = Api(spec, [self._secret, basic], sleep)
        self.whats = list(spec.reports)
        self._token: str | None = None
        self._renew_at = 0.0
        self.tokens = 0  # how many tokens were fetched (tests)

    # -- OAuth --------------------------------------------------------------------------------------------

    def _access(self) -> str:
        if self._token is None or self.clock() >= self._renew_at:
            self._login()
        return self._token

    def _login(self) -> None:
        what = "get an OAuth token (client credentials)"
        response = self.api.call("POST", self.spec.token_url, what, auth=(self.spec.client_id, self._secret),
                                 data={"grant_type": "client_credentials", "scope": self.spec.scope})
        body = self.api.json(response, what)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise self.api.error(what, "the answer holds no access_token", transient=False)
        self.api.learn(token)
        ttl = float(body.get("expires_in") or 3600)
        self._token, self._renew_at = token, self.clock() + ttl - min(60.0, ttl / 10)
        self.tokens += 1

    def _call(self, method: str, path: str, what: str, **kw) -> httpx.Response:
        """A call with the bearer token; on 401 the token is fetched again and the call made once more."""
        for last in (False, True):
            headers = {"Authorization": f"Bearer {self._access()}"}
            response = self.api.call(method, path, what, headers=headers, accept=() if last else (401,), **kw)
            if response.status_code != 401:
                return response
            log.info("source %s: %s: token refused (401); fetching a new one", self.spec.name, what)
            self._token = None
        raise AssertionError("unreachable")

    # -- report jobs ----------------------------------------------------------------------------------------

    def fetch(self, what: str, window: Window) -> list[tuple[bytes, str]]:
        """The report `what` over `window`, as Talkdesk's file holds it."""
        status = "?"
        for attempt in range(1, self.spec.job_attempts + 1):
            job = self._create(what, window)
            status, location = self._wait(what, job)
            if status == "done":
                return [(self._download(what, job, location), self.spec.format)]
            log.warning("source %s: %s report job %s for %s ended %s (attempt %d of %d)", self.spec.name, what, job,
                        window.label, status, attempt, self.spec.job_attempts)
        raise self.api.error(f"{what} report {window.label}", f"the report job ended {status} "
                             f"{self.spec.job_attempts} time(s); the next poll asks again")

    def _create(self, what: str, window: Window) -> str:
        span = {"from": window.iso(window.start), "to": window.iso(window.end)}
        body = {"name": f"gisgate {self.spec.name} {what} {window.label}", "timezone": "UTC",
                "format": self.spec.format, "timespan": span}
        doing = f"create a {what} report job"
        answer = self.api.json(self._call("POST", f"/data/reports/{what}/jobs", doing, json=body), doing)
        job = answer.get("job", answer) if isinstance(answer, dict) else {}
        if not isinstance(job, dict) or not job.get("id"):
            raise self.api.error(doing, "the answer names no job id", transient=False)
        return str(job["id"])

    def _wait(self, what: str, job: str) -> tuple[str, str | None]:
        """(status, file location when the job answered with a redirect) once the job stopped running."""
        doing = f"look at {what} report job {job}"
        deadline = self.clock() + self.spec.job_timeout_s
        while True:
            response = self._call("GET", f"/data/reports/{what}/jobs/{job}", doing)
            if response.status_code in REDIRECTS:  # done: the job's answer is the way to its file
                return "done", self._location(response)
            answer = self.api.json(response, doing)
            info = answer.get("job", answer) if isinstance(answer, dict) else {}
            status = str(info.get("status", "")).lower()
            if status not in RUNNING:
                return status or "?", None
            if self.clock() >= deadline:
                raise self.api.error(doing, f"still {status} after {self.spec.job_timeout_s:g} s (job_timeout_s)")
            if not self.api.sleep(self.spec.poll_seconds):
                raise self.api.error(doing, "stopped while the job was running")

    def _location(self, response: httpx.Response) -> str:
        location = response.headers.get("Location")
        if not location:
            raise self.api.error("download a report", f"HTTP {response.status_code} without a Location")
        return urljoin(str(response.request.url), location)

    def _download(self, what: str, job: str, location: str | None) -> bytes:
        doing = f"download {what} report {job}"
        if location is None:
            response = self._call("GET", f"/data/reports/{what}/files/{job}", doing)
            if response.status_code not in REDIRECTS:
                return response.content
            location = self._location(response)
        # the file URL is signed: our token must not travel with it (nor to another host)
        return self.api.call("GET", location, doing).content

    def users(self) -> list[dict]:
        """Every Talkdesk user (id, email, ...) from the Users API, page by page (HAL `_embedded.users`,
        `_links.next`), for mapping agents by e-mail."""
        found: list[dict] = []
        url: str | None = f"{self.spec.users_path}?per_page=100&page=1"
        for _ in range(1000):
            body = self.api.json(self._call("GET", url, "GET users"), "GET users")
            page = (body.get("_embedded") or {}).get("users", []) if isinstance(body, dict) else []
            found += [u for u in page if isinstance(u, dict)]
            url = ((body.get("_links") or {}).get("next") or {}).get("href") if isinstance(body, dict) else None
            if not url or not page:
                return found
        raise self.api.error("GET users", "more than 1000 pages of users")

    def probe(self) -> str:
        what = self.whats[0] if self.whats else "user_status"
        response = self._call("GET", f"/data/reports/{what}/jobs", f"list {what} report jobs", params={"per_page": 1})
        self.api.json(response, f"list {what} report jobs")
        return f"talkdesk source {self.spec.name!r}: token granted to client {self.spec.client_id}, " \
               f"{what} report jobs listed"

    def close(self) -> None:
        self.api.close()
