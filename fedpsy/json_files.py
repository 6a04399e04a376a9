"""Reading a JSON object a command was given (a request, a result), with errors that name
the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.errors import ErrorCode, FedpsyError


def read_object(path: Path, what: str, code: ErrorCode) -> dict[str, Any]:
    """The JSON object in ``path``; ``code`` naming the file when it is unreadable, not
    JSON or not an object (``what`` says what it should hold: "a request")."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise FedpsyError(f"{path}: {exc}", code=code) from None
    if not isinstance(data, dict):
        raise FedpsyError(f"{path}: {what} is a JSON object", code=code)
    return data
