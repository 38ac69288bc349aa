"""CommunityWFM Cloud Connect REST uploads (spec §4.2, with the robust-client rules of §4.3).

A delivered file is a bulk body as documented, told apart by its list key:

    {"AccountId": "1", "AgentInserts": [...]}            → People/BulkInsertPeople
    {"AccountId": "1", "CollectionPointInserts": [...]}  → CollectionPoint/BulkInsertCollectionPoints
    {"AccountId": "1", "AgentUpdates": [...]}            → AgentActivity/BulkInsertAgentActivity
    {"AccountId": "1", "CallVolumeUpdates": [...]}       → CallVolume/BulkInsertCallVolume

Records go in requests of at most `batch_size`. Every answer is checked for `"Success": true`, not
only for HTTP 200. Call volume is sent with `UpdateExisting` "false"; a duplicate-key answer sends the
same records again with "true" (a correction). People, collection points and agent activity have no
upsert: after a duplicate-key answer the records are resent one by one, and those already present
count as delivered.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from gisgate.errors import PermanentDeliveryError
from gisgate.produced import CWFM_LISTS
from gisgate.targets import Receipt, identity
from gisgate.targets._http import load_json, make_client, raise_for_status, request_timeout, translated
from gisgate.targets.secrets import Redactor, read_secret

log = logging.getLogger(__name__)
DUPLICATE = re.compile(r"duplicate|primary key|already exists", re.IGNORECASE)


class CwfmTarget:
    """Delivers Cloud Connect bulk bodies with a Bearer token that is refreshed before it expires."""

    name: str

    def __init__(self, name: str, spec, *, clock: Callable[[], float] = time.monotonic):
        self.name, self.spec, self._clock = name, spec, clock
        self._password = read_secret(name, spec)
        self._redact = Redactor(self._password, shapes=True).install()  # masks it in every HTTP log line
        self._client = make_client(name, spec)
        self._token: str | None = None
        self._refresh_token: str | None = None
        self._token_at = 0.0
        self._login_path = spec.login_path
        self._grant_type = spec.grant_type
        self.logins = self.refreshes = 0  # for tests and `doctor`
        self._progress: dict[tuple, int] = {}  # file identity -> requests already accepted
        self.time_left: Callable[[], float] | None = None  # a caller's deadline (see targets.Target)

    def _timeout(self, what: str) -> float:
        return request_timeout(self.name, self.spec.timeout_s, self.time_left, what)

    # -- tokens --------------------------------------------------------------------------------------

    def _answer(self, what: str, response: httpx.Response) -> dict:
        """The JSON of a 2xx answer whose `Success` is true; anything else is a delivery error."""
        raise_for_status(self.name, what, response, self._redact)
        try:
            answer = response.json()
        except ValueError as e:
            raise PermanentDeliveryError(f"target {self.name!r}: {what}: the answer is not JSON") from e
        if not isinstance(answer, dict) or answer.get("Success") is not True:
            detail = answer.get("Message") or answer.get("ExceptionResult") if isinstance(answer, dict) else None
            detail = detail or repr(answer)[:200]
            message = self._redact(f"target {self.name!r}: {what}: the server answered Success=false: {detail}")
            raise PermanentDeliveryError(message) from httpx.HTTPStatusError(
                message, request=response.request, response=response
            )
        return answer

    def _take_tokens(self, what: str, answer: dict) -> None:
        # Login puts the tokens at the top level, refresh under Data with empty top-level ones (§4.3 #7).
        data = answer.get("Data") if isinstance(answer.get("Data"), dict) else {}
        token = (data.get("Token") or answer.get("Token") or "").strip()
        refresh = (data.get("RefreshToken") or answer.get("RefreshToken") or "").strip()
        if not token:
            raise PermanentDeliveryError(f"target {self.name!r}: {what}: the answer holds no token")
        self._redact.add(token, refresh)
        self._token, self._refresh_token, self._token_at = token, refresh or None, self._clock()

    def _login(self) -> None:
        body = {"userName": self.spec.username, "password": self._password, "setCookie": False}
        what = f"login as {self.spec.username}"
        with translated(self.name, what, self._redact):
            response = self._client.post(self._login_path, json=body, timeout=self._timeout(what))
            if response.status_code == 404 and self._login_path != self.spec.login_fallback_path:
                # The documented /api/ccs/ path may be a typo for /api/ccc/ (§4.3 #1); remember what works.
                log.info(
                    "target %s: %s answered 404; trying %s",
                    self.name,
                    self._login_path,
                    self.spec.login_fallback_path,
                )
                self._login_path = self.spec.login_fallback_path
                response = self._client.post(self._login_path, json=body, timeout=self._timeout(what))
        try:
            self._take_tokens(what, self._answer(what, response))
        except PermanentDeliveryError as e:
            raise PermanentDeliveryError(f"{e} (check the user name and password_env/password_file)") from e
        self.logins += 1
        log.info("target %s: Cloud Connect login as %s", self.name, self.spec.username)

    def _refresh(self) -> bool:
        """Swap the refresh token for new tokens; False when the server will not (then log in again)."""
        if not self._refresh_token:
            return False
        what = "token refresh"
        for grant_type in dict.fromkeys((self._grant_type, "refresh_token")):
            body = {"refresh_token": self._refresh_token, "grant_type": grant_type}
            with translated(self.name, what, self._redact):
                response = self._client.post(self.spec.refresh_path, json=body, timeout=self._timeout(what))
            if response.status_code == 400:  # the documented "string" may be a placeholder (§4.3 #6)
                continue
            if response.status_code in (401, 403) or (response.is_success and not _succeeded(response)):
                return False
            self._take_tokens(what, self._answer(what, response))
            self._grant_type = grant_type
            self.refreshes += 1
            log.info("target %s: token refreshed", self.name)
            return True
        return False

    def _bearer(self) -> str:
        if self._token is None:
            self._login()
        elif self._clock() - self._token_at >= self.spec.refresh_after_s:
            if not self._refresh():
                self._login()
        return f"Bearer {self._token}"

    def _post(self, what: str, path: str, body: dict) -> dict:
        """POST a JSON body with the token; on 401 refresh once, then log in again, then fail (§4.2.5)."""
        recover = [self._refresh, lambda: self._login() or True]
        while True:
            headers = {"Authorization": self._bearer()}
            with translated(self.name, what, self._redact):
                response = self._client.post(path, json=body, headers=headers, timeout=self._timeout(what))
            if response.status_code != 401 or not recover:
                return self._answer(what, response)
            log.info("target %s: token refused (HTTP 401); renewing", self.name)
            while recover and not recover.pop(0)():
                pass

    # -- uploads -------------------------------------------------------------------------------------

    def _chunks(self, list_key: str, records: list[dict]) -> list[list[dict]]:
        """Split at `batch_size`, keeping one interval's call volume together where it fits."""
        size = self.spec.batch_size
        if list_key != "CallVolumeUpdates":
            return [records[i : i + size] for i in range(0, len(records), size)]
        groups: dict[object, list[dict]] = {}
        for r in records:
            groups.setdefault(r.get("Interval"), []).append(r)
        chunks: list[list[dict]] = [[]]
        for group in groups.values():
            if chunks[-1] and len(chunks[-1]) + len(group) > size:
                chunks.append([])
            for i in range(0, len(group), size):
                if len(chunks[-1]) + len(group[i : i + size]) > size:
                    chunks.append([])
                chunks[-1].extend(group[i : i + size])
        return [c for c in chunks if c]

    def _send_file(self, file: Path) -> str:
        body = load_json(self.name, file)
        list_key = next((k for k in CWFM_LISTS if isinstance(body, dict) and k in body), None)
        if list_key is None:
            raise PermanentDeliveryError(
                f"target {self.name!r}: {file.name} is not a Cloud Connect bulk body "
                f"(expected one of {', '.join(CWFM_LISTS)})"
            )
        path = getattr(self.spec, f"{CWFM_LISTS[list_key]}_path")
        account = str(body.get("AccountId", self.spec.account_id))
        sent = corrected = duplicates = 0
        key = identity(file)
        chunks = self._chunks(list_key, body[list_key])
        # A retry of the same file resumes after the requests the server already accepted.
        for n, chunk in enumerate(chunks[self._progress.get(key, 0) :], start=self._progress.get(key, 0)):
            what = f"{CWFM_LISTS[list_key]} {file.name} ({len(chunk)} record(s))"
            if list_key == "CallVolumeUpdates":
                chunk = [{**r, "UpdateExisting": str(r.get("UpdateExisting", "false")).lower()} for r in chunk]
            try:
                self._post(what, path, {"AccountId": account, list_key: chunk})
            except PermanentDeliveryError as e:
                if not DUPLICATE.search(str(e)):
                    raise
                if list_key == "CallVolumeUpdates":  # second phase: a correction overwrites (§4.2.5)
                    chunk = [{**r, "UpdateExisting": "true"} for r in chunk]
                    self._post(what + " as corrections", path, {"AccountId": account, list_key: chunk})
                    corrected += len(chunk)
                else:
                    # No upsert for people, collection points, activity: a duplicate is already there.
                    # One duplicate may have sunk the whole request, so resend record by record.
                    new = self._one_by_one(what, path, account, list_key, chunk)
                    duplicates += len(chunk) - new
                    sent += new
                    self._progress[key] = n + 1
                    continue
            sent += len(chunk)
            self._progress[key] = n + 1
        self._progress.pop(key, None)
        detail = f"{file.name}: {sent} {list_key} record(s)"
        if corrected:
            detail += f", {corrected} as corrections"
        if duplicates:
            detail += f", {duplicates} already present"
        return detail

    def _one_by_one(self, what: str, path: str, account: str, list_key: str, chunk: list[dict]) -> int:
        """Send each record alone; count the ones accepted, skip the ones already present."""
        accepted = 0
        for record in chunk:
            try:
                self._post(what, path, {"AccountId": account, list_key: [record]})
                accepted += 1
            except PermanentDeliveryError as e:
                if not DUPLICATE.search(str(e)):
                    raise
                log.info("target %s: %s: a record is already present; counted as delivered", self.name, what)
        return accepted

    def deliver(self, batch: list[Path], kind: str | None = None) -> Receipt:
        """Send each Cloud Connect bulk body of the batch, in order."""
        if kind not in (None, "cwfm"):
            raise PermanentDeliveryError(f"target {self.name!r}: a cwfm target cannot deliver {kind} files")
        details = [self._send_file(f) for f in batch]
        return Receipt(self.name, [f.name for f in batch], "; ".join(details))

    def probe(self) -> str:
        """For `gisgate doctor`: log in (reachability, TLS, credentials)."""
        self._login()
        return f"cwfm target {self.name!r}: {self.spec.base_url} reachable, logged in as {self.spec.username}"

    def outcomes(self, sent: list[tuple[str, float]]) -> dict[str, str]:
        """Nothing to report: the answer to each upload is its verdict, given when it is delivered."""
        return {}

    def close(self) -> None:
        """Forget the tokens (Cloud Connect has no logout) and release the connection pool."""
        self._token = self._refresh_token = None
        self._client.close()
        self._redact.uninstall()


def _succeeded(response: httpx.Response) -> bool:
    try:
        return response.json().get("Success") is True
    except (ValueError, AttributeError):
        return False
