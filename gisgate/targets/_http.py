"""What the REST targets (webex, cwfm) share: a verified httpx client, reading a delivered JSON body, and
the one place where httpx errors and HTTP statuses become Transient/PermanentDeliveryError (their
secrets and log redaction are in `targets.secrets`).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path

import httpx

from gisgate.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from gisgate.targets.secrets import Redactor


def make_client(target: str, spec) -> httpx.Client:
    """An httpx client for `spec.base_url`: TLS always verified (`ca_file` adds a trust anchor to the
    usual ones), a timeout on every phase, no redirects followed, no cookie jar (the session cookie is
    sent explicitly, so a server's Set-Cookie cannot linger or leak between targets)."""
    context = ssl.create_default_context()
    try:
        import certifi

        context.load_verify_locations(certifi.where())
    except ImportError:  # system store only
        pass
    if spec.ca_file:
        try:
            context.load_verify_locations(cafile=str(Path(spec.ca_file).expanduser()))
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(f"target {target!r}: ca_file {spec.ca_file} is not a readable PEM file: {e}") from None
    no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    return httpx.Client(
        base_url=spec.base_url.rstrip("/"),
        verify=context,
        timeout=httpx.Timeout(spec.timeout_s),
        follow_redirects=False,
        cookies=no_cookies,
        headers={"User-Agent": "gisgate"},
    )


def request_timeout(target: str, timeout_s: float, time_left: Callable[[], float] | None, what: str) -> float:
    """The timeout of one request: `timeout_s`, cut to the seconds a caller's deadline leaves
    (`time_left`, set by `gisgate deliver`); none left: the request is not sent (a transient failure)."""
    if time_left is None:
        return timeout_s
    left = time_left()
    if left <= 0:
        raise TransientDeliveryError(f"target {target!r}: {what}: not sent: the deadline was reached")
    return min(timeout_s, left)


def _is_cert_error(exc: BaseException) -> bool:
    seen = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def load_json(target: str, path: Path):
    """A delivered file's JSON; an unreadable or malformed file is a permanent failure."""
    try:
        return json.loads(path.read_bytes())
    except OSError as e:
        raise PermanentDeliveryError(f"target {target!r}: cannot read {path}: {e.strerror}") from e
    except ValueError as e:
        raise PermanentDeliveryError(f"target {target!r}: {path.name}: not valid JSON: {e}") from e


@contextmanager
def translated(target: str, what: str, redact: Redactor) -> Iterator[None]:
    """Turn httpx's exceptions raised inside the block into delivery errors, once, `from` the cause."""
    try:
        yield
    except OSError as e:  # opening a file to upload; httpx wraps its own socket errors
        raise PermanentDeliveryError(f"target {target!r}: {what}: cannot read {e.filename}: {e.strerror}") from e
    except httpx.TimeoutException as e:
        raise TransientDeliveryError(f"target {target!r}: {what}: timed out ({type(e).__name__})") from e
    except httpx.UnsupportedProtocol as e:
        raise PermanentDeliveryError(f"target {target!r}: {what}: {e}; base_url must start with https://") from e
    except httpx.TransportError as e:
        if _is_cert_error(e):
            raise PermanentDeliveryError(
                f"target {target!r}: {what}: the server's TLS certificate is not trusted "
                f"({redact(str(e))}); install its CA with ca_file"
            ) from e
        message = f"target {target!r}: {what}: {type(e).__name__}: {redact(str(e))}"
        raise TransientDeliveryError(message) from e
    except httpx.RequestError as e:  # e.g. a garbled answer (DecodingError): may well pass next time
        message = f"target {target!r}: {what}: {type(e).__name__}: {redact(str(e))}"
        raise TransientDeliveryError(message) from e


def status_error(target: str, what: str, response: httpx.Response, redact: Redactor):
    """The delivery error for a non-2xx answer: 5xx, 408, 429 may pass, other 4xx will not."""
    body = redact(" ".join(response.text.split())[:200]) if response.content else ""
    message = f"target {target!r}: {what}: HTTP {response.status_code} {response.reason_phrase}"
    if body:
        message += f": {body}"
    cause = httpx.HTTPStatusError(message, request=response.request, response=response)
    if response.status_code >= 500 or response.status_code in (408, 429):
        return TransientDeliveryError(message), cause
    return PermanentDeliveryError(message + " (retrying will not help; check the target's config)"), cause


def raise_for_status(target: str, what: str, response: httpx.Response, redact: Redactor) -> None:
    if response.is_success:
        return
    error, cause = status_error(target, what, response, redact)
    raise error from cause
