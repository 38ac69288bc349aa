"""A real local Talkdesk: the OAuth token endpoint and the Explore API's report jobs (domain-spec §5.2).

    POST /oauth/token                       client credentials (HTTP Basic) -> a bearer token, `token_ttl` s
    POST /data/reports/<type>/jobs          a job for a timespan; it runs `polls_to_done` looks, then is done
    GET  /data/reports/<type>/jobs/<id>     {"job": {"id", "status", ...}}
    GET  /data/reports/<type>/files/<id>    303 to /signed/<id>?signature=...
    GET  /signed/<id>                       the report (JSON {"type","version","total","entries"} or CSV);
                                            refuses a request that carries an Authorization header
    GET  /users?page=&per_page=             the Users API: HAL pages of `users`

`fail_jobs = n` makes the next n jobs end `failed`; `expire_tokens()` revokes every token. Reports hold
the recorded entries (samples/talkdesk-api/) whose end (finished_at / status_end_at) is in the timespan.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import secrets
import time
from datetime import UTC, datetime, timedelta

from fake_platforms import API_SAMPLES, FakePlatform, Request

END = {"contacts": "finished_at", "user_status": "status_end_at"}


def load_talkdesk() -> dict[str, list[dict]]:
    folder = API_SAMPLES / "talkdesk-api"
    return {what: json.loads((folder / f"{what}.json").read_text())["entries"] for what in END}


def naive(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def shifted(records: dict[str, list[dict]], delta: int) -> dict[str, list[dict]]:
    """The same entries `delta` seconds later (every naive datetime moved)."""
    fields = ("started_at", "answered_at", "finished_at", "status_start_at", "status_end_at")

    def move(row):
        out = dict(row)
        for f in fields:
            if out.get(f) not in (None, "", "None"):
                out[f] = (naive(out[f]) + timedelta(seconds=delta)).strftime("%Y-%m-%d %H:%M:%S")
        return out

    return {what: [move(r) for r in rows] for what, rows in records.items()}


class FakeTalkdesk(FakePlatform):
    def __init__(self, client_id: str = "gisgate-client", secret: str = "td-SECRET-0123456789",
                 records: dict[str, list[dict]] | None = None):
        super().__init__()
        self.client_id, self.secret = client_id, secret
        self.records = records if records is not None else load_talkdesk()
        self.token_ttl = 3600.0
        self.tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self.issued: list[str] = []
        self.jobs: dict[str, dict] = {}
        self.polls_to_done = 1
        self.fail_jobs = 0
        self.users = [{"id": f"5f2a{10 + n}", "email": f"agent{n}@example.com", "name": f"Agent {n}",
                       "active": True} for n in range(1, 5)]

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def handle(self, r: Request):
        if r.path == "/oauth/token" and r.method == "POST":
            return self._token(r)
        if r.path.startswith("/signed/"):
            if "Authorization" in r.headers:
                return 400, {"error": "only one auth mechanism allowed"}, {}
            return self._file(r.path.rsplit("/", 1)[1])
        if not r.path.startswith(("/data/reports/", "/users")):
            return 404, {"error": "no route"}, {}
        token = (r.headers.get("Authorization") or "").removeprefix("Bearer ")
        with self.lock:
            if self.tokens.get(token, 0) < time.monotonic():
                return 401, {"code": "1001", "message": "Unauthorized"}, {}
        if r.path == "/users":
            return self._users(int(r.query.get("page", "1")), int(r.query.get("per_page", "50")))
        parts = r.path.split("/")[3:]  # <type>, jobs|files, [id]
        what = parts[0]
        if what not in END:
            return 404, {"error": f"no report type {what}"}, {}
        if parts[1:] == ["jobs"] and r.method == "POST":
            return self._create(what, json.loads(r.body))
        if parts[1:] == ["jobs"] and r.method == "GET":
            return 200, {"total": len(self.jobs), "_embedded": {"jobs": list(self.jobs.values())[:1]}}, {}
        job = self.jobs.get(parts[2]) if len(parts) > 2 else None
        if job is None:
            return 404, {"error": "no such job"}, {}
        if parts[1] == "jobs":
            return 200, {"job": self._look(job)}, {}
        if job["status"] != "done":
            return 409, {"error": "job not done"}, {}
        return 303, None, {"Location": f"/signed/{job['id']}?signature={secrets.token_hex(8)}"}

    def _users(self, page: int, per_page: int):
        """The Users API: HAL pages (`_embedded.users`, `_links.next` while more follow)."""
        rows = self.users[(page - 1) * per_page:page * per_page]
        links = {"self": {"href": f"{self.url}/users?page={page}&per_page={per_page}"}}
        if page * per_page < len(self.users):
            links["next"] = {"href": f"{self.url}/users?page={page + 1}&per_page={per_page}"}
        return 200, {"total": len(self.users), "page": page, "per_page": per_page, "_embedded": {"users": rows},
                     "_links": links}, {}

    def _token(self, r: Request):
        basic = (r.headers.get("Authorization") or "").removeprefix("Basic ")
        try:
            user, _, password = base64.b64decode(basic).decode().partition(":")
        except ValueError:
            user = password = ""
        if (user, password) != (self.client_id, self.secret) or b"grant_type=client_credentials" not in r.body:
            return 401, {"error": "invalid_client"}, {}
        token = "tdtok_" + secrets.token_hex(16)
        with self.lock:
            self.tokens[token] = time.monotonic() + self.token_ttl
            self.issued.append(token)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl}, {}

    def _create(self, what: str, body: dict):
        span = body.get("timespan") or {}
        if body.get("timezone") != "UTC" or not span.get("from") or not span.get("to"):
            return 400, {"error": "timezone and timespan from/to are required"}, {}
        start = datetime.fromisoformat(span["from"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(span["to"].replace("Z", "+00:00"))
        if end - start > timedelta(days=31):
            return 400, {"error": "timespan longer than a month"}, {}
        job = {"id": secrets.token_hex(6), "type": what, "status": "created", "format": body.get("format", "json"),
               "timezone": "UTC", "timespan": span, "_looks": 0, "_failed": False}
        with self.lock:
            if self.fail_jobs > 0:
                self.fail_jobs -= 1
                job["_failed"] = True
            self.jobs[job["id"]] = job
        return 202, {"job": _public(job)}, {}

    def _look(self, job: dict) -> dict:
        with self.lock:
            job["_looks"] += 1
            if job["_looks"] >= self.polls_to_done:
                job["status"] = "failed" if job["_failed"] else "done"
            elif job["status"] == "created":
                job["status"] = "processing"
        return _public(job)

    def _file(self, job_id: str):
        job = self.jobs.get(job_id)
        if job is None or job["status"] != "done":
            return 404, {"error": "no such file"}, {}
        start = datetime.fromisoformat(job["timespan"]["from"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(job["timespan"]["to"].replace("Z", "+00:00"))
        what = job["type"]
        rows = [e for e in self.records[what] if start <= naive(e[END[what]]) < end]
        if job["format"] == "csv":
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=list(self.records[what][0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            return 200, out.getvalue().encode(), {"Content-Type": "text/csv"}
        return 200, {"type": what, "version": "v1", "total": len(rows), "entries": rows}, {}


def _public(job: dict) -> dict:
    return {k: v for k, v in job.items() if not k.startswith("_")}
