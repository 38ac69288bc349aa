"""The gateway's log: one line per event on stderr, plain or JSON, with every secret masked."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from gisgate.gateway.setup import Setup


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
               "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class Redact(logging.Filter):
    """Masks every secret value the config refers to, wherever it appears in a log line."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            msg = record.getMessage()
            for s in self.secrets:
                msg = msg.replace(s, "***")
            record.msg, record.args = msg, None
        return True


def secrets_of(s: Setup) -> list[str]:
    """The values behind every `*_env` / `*_file` reference of the targets."""
    found = []
    for spec in s.config.target.values():
        for key, value in spec.model_dump().items():
            if not value:
                continue
            if key.endswith("_env"):
                found.append(os.environ.get(value, ""))
            elif key.endswith("_file") and key not in ("key_file", "ca_file"):
                try:
                    found.append(Path(os.path.expanduser(value)).read_text().strip())
                except OSError:
                    pass
    return found


def setup_logging(json_lines: bool, verbose: bool, secrets: list[str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else
                         logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(Redact(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("watchdog", "paramiko", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
