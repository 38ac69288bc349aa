"""Webex WFO (Calabrio ONE Classic WFM) REST uploads (spec §4.1).

    POST   /api/rest/authorize                              → sessionId, sent as cookie hazelcast.sessionId
    POST   /api/rest/scheduling/agentStateHistorical/polling?acdServerId=   an interval's AGENT + SERVICE
    POST   /api/upload/historicalData?acdServerId=&timeZone=UTC             WHIT CSV
    POST   /api/upload/contacts                             media first, CONTACT.*.csv last, one request
    POST   /api/upload/textcontacts/                        .txt bodies, then TEXTCONTACT.csv
    POST   /api/rest/scheduling/gis/realTimeAgentState?acdServerId=         JSON arrays of ≤ 500 states
    DELETE /api/rest/authorize                              on close()

The session is opened lazily, re-opened once when a call answers 401/403 (or redirects to a login
page) and proactively after `session_idle_s` without calls.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import httpx

from gisgate.errors import ConfigError, DeliveryError, PermanentDeliveryError
from gisgate.produced import kind_of, parse_gis_name
from gisgate.targets import Receipt, identity
from gisgate.targets._http import load_json, make_client, raise_for_status, request_timeout, translated
from gisgate.targets.secrets import Redactor, read_secret

log = logging.getLogger(__name__)
COOKIE = "hazelcast.sessionId"
IDLE_MARGIN_S = 60.0  # re-open a session this long before the server would drop it


class WebexTarget:
    """Delivers batches of produced files to a WFO tenant over its REST API."""

    name: str

    def __init__(self, name: str, spec, *, clock: Callable[[], float] = time.monotonic):
        self.name, self.spec, self._clock = name, spec, clock
        self._password = read_secret(name, spec)
        self._redact = Redactor(self._password, shapes=True).install()  # masks it in every HTTP log line
        self._client = make_client(name, spec)
        self._session: str | None = None
        self._last_used = 0.0
        self.authorizations = 0  # how many sessions were opened (for tests and `doctor`)
        self._progress: dict[tuple, int] = {}  # file identity -> states already accepted
        self.time_left: Callable[[], float] | None = None  # a caller's deadline (see targets.Target)

    def probe(self) -> str:
        """For `gisgate doctor`: open a session (reachability, TLS, credentials), then end it."""
        self._authorize()
        self.close()
        return f"webex target {self.name!r}: {self.spec.base_url} reachable, logged in as {self.spec.username}"

    # -- session -------------------------------------------------------------------------------------

    def _authorize(self) -> None:
        body = {"userId": self.spec.username, "password": self._password, "language": self.spec.language}
        if self.spec.locale:
            body["locale"] = self.spec.locale
        tenant = self.spec.tenant_id
        if tenant is not None:
            # Documented as String, shown as a number: number first, string on 400 (spec §4.1.7).
            body["tenantId"] = int(tenant) if str(tenant).isdigit() else tenant
        what = f"authorize as {self.spec.username}"
        with translated(self.name, what, self._redact):
            response = self._client.post(self.spec.authorize_path, json=body, timeout=self._timeout(what))
            if response.status_code == 400 and isinstance(body.get("tenantId"), int):
                body["tenantId"] = str(body["tenantId"])
                response = self._client.post(self.spec.authorize_path, json=body, timeout=self._timeout(what))
        session = response.cookies.get(COOKIE) if response.is_success else None
        if response.is_success:
            try:
                session = response.json().get("sessionId") or session
            except (ValueError, AttributeError):
                pass
        if session:
            self._redact.add(session)
        if response.status_code in (401, 403):
            message = (
                f"target {self.name!r}: WFO refused the login of {self.spec.username} "
                f"(HTTP {response.status_code}); check the password in password_env/password_file"
            )
            raise PermanentDeliveryError(message) from _status(message, response)
        raise_for_status(self.name, what, response, self._redact)
        if not session:
            raise PermanentDeliveryError(f"target {self.name!r}: {what}: the answer holds no sessionId")
        self._session, self._last_used = session, self._clock()
        self.authorizations += 1
        log.info("target %s: WFO session opened for %s", self.name, self.spec.username)

    def _timeout(self, what: str) -> float:
        return request_timeout(self.name, self.spec.timeout_s, self.time_left, what)

    def _session_cookie(self) -> str:
        idle = self._clock() - self._last_used
        margin = min(IDLE_MARGIN_S, self.spec.session_idle_s / 10)
        if self._session is None or idle > self.spec.session_idle_s - margin:
            self._session = None
            self._authorize()
        return f"{COOKIE}={self._session}"

    def _call(self, what: str, path: str, params: dict | None, build: Callable[[ExitStack], dict]) -> httpx.Response:
        """POST with the session cookie; on 401/403 or a redirect, open a new session once and resend."""
        for attempt in (1, 2):
            cookie = self._session_cookie()
            with ExitStack() as files, translated(self.name, what, self._redact):
                kwargs = build(files)
                headers = {"Cookie": cookie, **kwargs.pop("headers", {})}
                response = self._client.post(path, params=params, headers=headers, timeout=self._timeout(what),
                                             **kwargs)
            if response.status_code in (401, 403) or 300 <= response.status_code < 400:  # 3xx: login page
                if attempt == 1:
                    log.info(
                        "target %s: session no longer valid (HTTP %s); re-authorising",
                        self.name,
                        response.status_code,
                    )
                    self._session = None
                    continue
                message = (
                    f"target {self.name!r}: {what}: refused (HTTP {response.status_code}) even after "
                    f"re-authorising; check the API user's permissions"
                )
                raise PermanentDeliveryError(message) from _status(message, response)
            raise_for_status(self.name, what, response, self._redact)
            self._last_used = self._clock()
            return response
        raise AssertionError("unreachable")

    # -- uploads -------------------------------------------------------------------------------------

    def _acd(self, batch: list[Path]) -> int:
        from_names = {int(g.acd) for p in batch if (g := parse_gis_name(p.name))}
        configured = self.spec.acd_server_id
        if configured is not None and from_names - {configured}:
            raise PermanentDeliveryError(
                f"target {self.name!r}: files of ACD {sorted(from_names)} cannot go to "
                f"acdServerId={configured}; check acd_server_id"
            )
        if configured is not None:
            return configured
        if len(from_names) == 1:
            return from_names.pop()
        raise ConfigError(f"target {self.name!r}: set acd_server_id (the WFO ACD server id)")

    def _multipart(self, what: str, path: str, params: dict | None, files: list[Path]) -> httpx.Response:
        """One multipart request with a part per file (exact file names), in the given order."""

        def build(stack: ExitStack) -> dict:
            parts = [
                (self.spec.part_name, (p.name, stack.enter_context(open(p, "rb")), _content_type(p))) for p in files
            ]
            return {"files": parts}

        log.debug("target %s: %s: %s", self.name, what, ", ".join(p.name for p in files))
        return self._call(what, path, params, build)

    def _rtstates(self, file: Path, acd: int) -> int:
        states = load_json(self.name, file)
        if not isinstance(states, list):
            raise PermanentDeliveryError(f"target {self.name!r}: {file.name}: not a JSON array of states")
        size = self.spec.rtstate_batch_size
        key = identity(file)
        # A retry of the same file resumes after the requests the server already accepted.
        for start in range(self._progress.get(key, 0), len(states), size):
            chunk = json.dumps(states[start : start + size], separators=(",", ":")).encode()
            if self.spec.rtstate_content == "json":

                def build(_stack, chunk=chunk):
                    return {"content": chunk, "headers": {"Content-Type": "application/json"}}
            else:

                def build(_stack, chunk=chunk):
                    return {"files": [(self.spec.part_name, (file.name, chunk, "application/json"))]}

            self._call(
                f"real-time states {file.name} [{start}:{start + size}]",
                self.spec.rtstate_path,
                {"acdServerId": acd},
                build,
            )
            self._progress[key] = start + size
        self._progress.pop(key, None)
        return len(states)

    def deliver(self, batch: list[Path], kind: str | None = None) -> Receipt:
        """Send one batch: GIS files in one request; a contact CSV with its media (media first) in one
        request; each WHIT CSV and each real-time JSON file on its own. `kind` overrides detection."""
        groups: dict[str, list[Path]] = {}
        for p in batch:
            k = kind or kind_of(p)
            if kind in ("contact", "textcontact") and p.suffix.lower() != ".csv":
                k = "media"
            groups.setdefault(k if k != "unknown" else "media", []).append(p)
        media = groups.pop("media", [])
        if media and not ({"contact", "textcontact"} & groups.keys()):
            raise PermanentDeliveryError(
                f"target {self.name!r}: cannot tell what {', '.join(p.name for p in media)} is; "
                f"pass --kind (gis, whit, contact, textcontact, rtstate)"
            )
        delivered, details, answers = [], [], []
        for k, files in groups.items():
            if k == "gis":
                params = {"acdServerId": self._acd(files)}
                answers.append(self._multipart(f"GIS upload {files[0].name}", self.spec.gis_path, params, files))
            elif k == "whit":
                params = {"acdServerId": self._acd(files), "timeZone": self.spec.whit_time_zone}
                for f in files:
                    answers.append(self._multipart(f"WHIT upload {f.name}", self.spec.whit_path, params, [f]))
            elif k in ("contact", "textcontact"):
                path = self.spec.contacts_path if k == "contact" else self.spec.textcontacts_path
                # Media first, the data file last (spec §3.4), in one request.
                files = media + files
                answers.append(self._multipart(f"{k} upload {files[-1].name}", path, None, files))
                media = []
            elif k == "rtstate":
                acd = self._acd(files)
                n = sum(self._rtstates(f, acd) for f in files)
                details.append(f"{n} real-time state(s)")
            else:
                raise PermanentDeliveryError(
                    f"target {self.name!r}: a webex target cannot deliver {k} files ({files[0].name})"
                )
            delivered += [p.name for p in files]
        details += [f"HTTP {r.status_code}: {self._redact(' '.join(r.text.split())[:120])}" for r in answers]
        return Receipt(self.name, delivered, "; ".join(details))

    def outcomes(self, sent: list[tuple[str, float]]) -> dict[str, str]:
        """Nothing to report: the answer to each upload is its verdict, given when it is delivered."""
        return {}

    def close(self) -> None:
        """End the WFO session (DELETE /api/rest/authorize) and release the connection pool."""
        try:
            if self._session:
                try:
                    with translated(self.name, "logout", self._redact):
                        cookie = {"Cookie": f"{COOKIE}={self._session}"}
                        self._client.delete(self.spec.authorize_path, headers=cookie, timeout=self._timeout("logout"))
                except DeliveryError as e:  # best effort: the server drops idle sessions anyway
                    log.warning("%s (logout)", e)
                self._session = None
            self._client.close()
        finally:
            self._redact.uninstall()


def _status(message: str, response: httpx.Response) -> httpx.HTTPStatusError:
    return httpx.HTTPStatusError(message, request=response.request, response=response)


def _content_type(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"
