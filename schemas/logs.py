"""Structured JSON logs (one object per line on stderr). Never log row values: log codes,
ids and counts only. The audit log is separate (``node.audit``)."""

from __future__ import annotations

import json
import logging
import re
import sys
import time

RESERVED = set(vars(logging.makeLogRecord({})))
DROPPED = {"color_message"}  # uvicorn's copy of the message with ANSI colors
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


def plain(value: object) -> object:
    """``value`` without ANSI escape sequences when it is text."""
    return ANSI.sub("", value) if isinstance(value, str) else value


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and the record's extras,
    with no terminal colors (uvicorn's ``color_message`` is dropped, escapes stripped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(time.time(), 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(
            {k: v for k, v in vars(record).items() if k not in RESERVED and k not in DROPPED}
        )
        entry = {k: plain(v) for k, v in entry.items()}
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str)


def configure_json_logs(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
