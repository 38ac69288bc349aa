"""What every connector's calls share: the verified httpx client of the REST targets, a timeout on every
call, retries of what may pass (429 / 503 honouring Retry-After, other 5xx, timeouts, dropped
connections) with backoff and jitter, and errors whose text never holds a secret or a token.

    Api(source, spec, secrets, sleep)   .call(method, url, what, ...) -> httpx.Response (2xx or 3xx)
                                        .redact  the Redactor every message goes through
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

import httpx

from gisgate.errors import ConfigError, FetchError
from gisgate.retry import Policy
from gisgate.targets._http import make_client
from gisgate.targets.secrets import Redactor, read_secret

log = logging.getLogger("gisgate.fetch")
RETRIED = {408, 425, 429, 500, 502, 503, 504}


def secret(spec, what: str) -> str:
    """The secret behind `<what>_env` / `<what>_file` of a source (the targets' reader, a source's words)."""
    try:
        return read_secret(spec.name, spec, what)
    except ConfigError as e:
        raise ConfigError(str(e).replace("target ", "source ", 1)) from None


def retry_after(response: httpx.Response) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class Api:
    """One source's HTTP client. `sleep(seconds)` waits between retries (returns False when stopping)."""

    def __init__(self, spec, secrets: list[str], sleep: Callable[[float], bool] | None = None):
        self.spec = spec
        self.redact = Redactor(*secrets, shapes=True).install()
        self.client = make_client(spec.name, spec)
        self.sleep = sleep or (lambda s: time.sleep(s) or True)
        self.calls = 0

    def learn(self, *values: str | None) -> None:
        """Mask these (a token, a session id just handed out) in every message and log line from now on."""
        self.redact.add(*values)

    def error(self, what: str, text: str, transient: bool = True, wait: float | None = None) -> FetchError:
        return FetchError(self.redact(f"source {self.spec.name!r}: {what}: {text}"), transient, wait)

    def call(self, method: str, url: str, what: str, *, retries: int | None = None, accept: tuple[int, ...] = (),
             **kw) -> httpx.Response:
        """One request, retried up to `retries` times when it may pass; a 2xx or 3xx answer (or a status in
        `accept`) is returned, anything else raises FetchError (`transient` when a later poll may succeed)."""
        retries = self.spec.retries if retries is None else retries
        attempt = 0
        while True:
            attempt += 1
            wait = None
            try:
                response = self._send(method, url, what, **kw)
            except FetchError as e:
                if attempt > retries or not e.transient:
                    raise
                wait, failure = None, e
            else:
                if response.status_code < 400 or response.status_code in accept:
                    return response
                failure = self.status_error(what, response)
                if response.status_code not in RETRIED or attempt > retries:
                    raise failure
                wait = failure.retry_after
            pause = self._pause(attempt, wait)
            log.info("%s; try %d of %d in %.1f s", failure, attempt + 1, retries + 1, pause)
            if not self.sleep(pause):
                raise failure

    def _pause(self, attempt: int, asked: float | None) -> float:
        if asked is not None:
            return min(asked, self.spec.retry_after_max_seconds)
        return Policy(self.spec.backoff_seconds, self.spec.backoff_max_seconds).delay(attempt)

    def _send(self, method: str, url: str, what: str, **kw) -> httpx.Response:
        self.calls += 1
        try:
            return self.client.request(method, url, timeout=self.spec.timeout_s, **kw)
        except httpx.TimeoutException as e:
            raise self.error(what, f"no answer within {self.spec.timeout_s:g} s ({type(e).__name__})") from None
        except httpx.UnsupportedProtocol as e:
            raise self.error(what, f"{e}; base_url must start with https://", transient=False) from None
        except httpx.TransportError as e:
            raise self.error(what, f"{type(e).__name__}: {e}") from None

    def status_error(self, what: str, response: httpx.Response) -> FetchError:
        body = " ".join(response.text.split())[:200] if response.content else ""
        text = f"HTTP {response.status_code} {response.reason_phrase}" + (f": {body}" if body else "")
        code = response.status_code
        if code in (401, 403):
            text += " (check the credentials and the API permissions in the platform)"
        return self.error(what, text, transient=code in RETRIED, wait=retry_after(response))

    def json(self, response: httpx.Response, what: str):
        try:
            return response.json()
        except ValueError:
            raise self.error(what, f"the answer is not JSON: {response.text[:120]!r}") from None

    def close(self) -> None:
        self.client.close()
        self.redact.uninstall()
