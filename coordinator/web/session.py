"""Who is logged in to the dashboard: the researcher-token cookie and one-time login codes.

The dashboard keeps the researcher's token in an HttpOnly, SameSite=Lax cookie, so page
scripts never see it and other sites cannot send it with a form post. The researcher API
accepts the same cookie in place of ``Authorization: Bearer``; a cookie-authenticated
request that changes state must come from the dashboard's own origin (its ``Origin``
header, when the browser sends one, must name this server).

A one-time login code (``/login?token=CODE``) stands for a researcher token for a few
minutes and works once, as a notebook server's startup URL does: ``fedpsy demo --serve``
prints such a URL so that opening it lands on the logged-in overview.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response

from schemas.errors import ErrorCode, FedpsyError

COOKIE = "fedpsy_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_CODE_TTL_S = 600.0


class LoginRequired(Exception):
    """A dashboard page was asked for without a valid login; the user is sent to /login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def same_origin(request: Request) -> bool:
    """Whether the request's ``Origin`` (if any) is this server (scheme, host and port)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return (parts.scheme, parts.netloc) == (request.url.scheme, request.headers.get("host", ""))


def request_token(request: Request, authorization: str | None) -> str:
    """The researcher token of a request: the bearer token, or else the dashboard cookie."""
    bearer = (authorization or "").removeprefix("Bearer ").strip()
    if bearer:
        return bearer
    cookie = request.cookies.get(COOKIE, "")
    if cookie and request.method not in SAFE_METHODS and not same_origin(request):
        raise FedpsyError(
            "a request carrying the dashboard cookie must come from the "
            "dashboard itself; send the token as a bearer token instead",
            code=ErrorCode.UNAUTHORIZED,
        )
    return cookie


def safe_next(path: str | None) -> str:
    """A local path to return to after login (never another site)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


def set_login_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        COOKIE, token, httponly=True, samesite="lax", path="/", secure=request.url.scheme == "https"
    )


def clear_login_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")


@dataclass
class LoginCodes:
    """One-time codes, each standing for a researcher token until used or expired."""

    ttl_s: float = LOGIN_CODE_TTL_S
    _codes: dict[str, tuple[str, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, token: str) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = (token, time.monotonic() + self.ttl_s)
        return code

    def redeem(self, code: str) -> str | None:
        """The token behind ``code`` (which is then spent), or None."""
        with self._lock:
            found = self._codes.pop(code, None)
            now = time.monotonic()
            self._codes = {c: v for c, v in self._codes.items() if v[1] > now}
        if found is None or found[1] <= now:
            return None
        return found[0]
