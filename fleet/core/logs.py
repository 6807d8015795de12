"""Logging set-up shared by the CLI, the workers and the emulator: stderr, plain or JSON.

Every record passes through ``RedactingFilter`` before it is formatted, so a secret value that
reached a log call by accident (inside an exception message, a URL, a body) is masked. The
values to mask are registered with ``redact.register`` at the moment fleet reads them.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from fleet.core import redact

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))


class RedactingFilter(logging.Filter):
    """Mask registered secret values in the message and arguments of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if redact.active():
            record.msg = redact.text(record.getMessage())
            record.args = None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = redact.text(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any ``extra=`` fields
    (job, cluster, task ids) so that logs of thousands of clusters can be searched."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_text:
            data["exception"] = record.exc_text
        elif record.exc_info:
            data["exception"] = redact.text(self.formatException(record.exc_info))
        return json.dumps(data, default=str)


def configure(
    *,
    level: int = logging.WARNING,
    json_logs: bool = False,
    quiet: tuple[str, ...] = ("azure", "urllib3", "celery", "kombu"),
) -> None:
    """Send fleet's (and libraries') logs to stderr, through the redacting filter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        JsonFormatter()
        if json_logs
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries stay quiet unless asked: azure-core logs headers at INFO.
    for noisy in quiet:
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
