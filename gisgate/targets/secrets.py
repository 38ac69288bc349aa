"""Secrets of every target: where they are read from, and how they are kept out of logs.

A target's config never holds a secret, only where to find it: `<what>_env` names an environment
variable, `<what>_file` a file (its line ending is not part of the secret; other whitespace is).

    read_secret(target, spec)   the value for a target; a missing one is a ConfigError
    secret_values(specs)        every value the targets' `*_env` / `*_file` keys refer to, for the
                                gateway's log redaction (never raises)
    Redactor(*values)           a logging.Filter masking those values in records and in any text;
                                `shapes=True` also masks secret-bearing shapes (a session cookie,
                                a bearer token) whose value is not known yet, and `install()` hooks
                                it onto the HTTP libraries' loggers
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

from gisgate.errors import ConfigError

# Loggers that may print header values (httpcore logs response headers, Set-Cookie included, at DEBUG).
# A filter on a logger only sees records created on that exact logger, hence the full list.
HTTP_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "hpack",
)
REDACTED = "***"
# Secret-bearing shapes masked even before their value is known (httpcore logs a login's Set-Cookie
# header before the client has read the session id out of the answer).
SECRET_SHAPES = re.compile(
    r"(?i)(hazelcast\.sessionId=|bearer\s+|[\"']?(?:password|token|refresh_?token|sessionId)[\"']?\s*[:=]\s*[\"']?)"
    r"[^\s;,'\"()\]}]+"
)
# `*_file` keys that name a key or a certificate, not a secret value that could appear in a log line
NOT_SECRET_VALUES = ("key_file", "ca_file")
log = logging.getLogger(__name__)


def _from_file(file: str) -> str:
    return Path(file).expanduser().read_text(encoding="utf-8").rstrip("\r\n")


def read_secret(target: str, spec, what: str = "password") -> str:
    """The secret named by `<what>_env` or `<what>_file` of a target's config; never a literal.

    Missing, empty or unreadable is a ConfigError naming the setting to fix.
    """
    env, file = getattr(spec, f"{what}_env", None), getattr(spec, f"{what}_file", None)
    if env and file:
        raise ConfigError(f"target {target!r}: set {what}_env or {what}_file, not both")
    if env:
        value = os.environ.get(env)
        if not value:
            raise ConfigError(f"target {target!r}: environment variable {env} ({what}_env) is not set")
        return value
    if not file:
        raise ConfigError(f"target {target!r}: no {what}; set {what}_env or {what}_file")
    try:
        if Path(file).expanduser().stat().st_mode & 0o077:
            log.warning("target %s: %s_file %s is readable by others; chmod 600 it", target, what, file)
        value = _from_file(file)
    except OSError as e:
        raise ConfigError(f"target {target!r}: cannot read {what}_file {file}: {e.strerror or e}") from None
    if not value:
        raise ConfigError(f"target {target!r}: {what}_file {file} is empty")
    return value


def secret_values(specs: Iterable) -> list[str]:
    """Every secret value the given target specs refer to with `*_env` / `*_file` (not `key_file`,
    `ca_file`); what cannot be read is skipped (the target itself reports it when it needs it)."""
    found = []
    for spec in specs:
        settings = spec.model_dump() if hasattr(spec, "model_dump") else vars(spec)
        for key, ref in settings.items():
            if not ref or key in NOT_SECRET_VALUES:
                continue
            if key.endswith("_env"):
                found.append(os.environ.get(ref, ""))
            elif key.endswith("_file"):
                try:
                    found.append(_from_file(ref))
                except (OSError, UnicodeDecodeError):
                    continue
    return [v for v in found if v]


class Redactor(logging.Filter):
    """Masks known secret values (password, tokens, session ids) in log records and in text.

    As a handler filter (`handler.addFilter(Redactor(*secret_values(specs)))`) it replaces only the
    given values, so ordinary log lines are untouched. A REST target makes one with `shapes=True`
    and `install()`s it on the HTTP libraries' loggers, adding session values as it learns them;
    `uninstall()` removes it.
    """

    def __init__(self, *secrets: str | None, shapes: bool = False) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._shapes = shapes
        self._loggers: tuple[str, ...] = ()
        self.add(*secrets)

    def add(self, *values: str | None) -> None:
        self._secrets.update(v for v in values if v and len(v) >= 4)

    def __call__(self, text: str) -> str:
        for s in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(s, REDACTED)
        if self._shapes:
            text = SECRET_SHAPES.sub(lambda m: m.group(1) + REDACTED, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True

    def install(self, loggers: Iterable[str] = HTTP_LOGGERS) -> Redactor:
        """Filter every record created on these loggers (a logger's filter does not see its children's)."""
        self.uninstall()
        self._loggers = tuple(loggers)
        for name in self._loggers:
            logging.getLogger(name).addFilter(self)
        return self

    def uninstall(self) -> None:
        for name in self._loggers:
            logging.getLogger(name).removeFilter(self)
        self._loggers = ()
