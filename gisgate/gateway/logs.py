"""The gateway's log: one line per event on stderr, plain or JSON, with every secret masked."""

from __future__ import annotations

import json
import logging
import sys
import time

from gisgate.gateway.setup import Setup
from gisgate.targets.secrets import Redactor, secret_values


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
               "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(json_lines: bool, verbose: bool, s: Setup) -> None:
    """Log lines to stderr, plain or JSON; every secret behind the targets' `*_env` / `*_file` masked."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else
                         logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(Redactor(*secret_values([*s.config.target.values(), *s.config.source])))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("watchdog", "paramiko", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
