"""Logging in and out of the dashboard.

``GET /login`` shows a form for the researcher token (``fedpsy coordinator add-user``
prints it); ``POST /login`` checks it and stores it in the HttpOnly cookie;
``GET /login?token=CODE`` redeems a one-time login code (see
:mod:`coordinator.web.session`) the same way; ``POST /logout`` clears the cookie.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from coordinator.store import registry
from coordinator.web.rendering import coordinator, dashboard, render, secure
from coordinator.web.session import (
    clear_login_cookie,
    safe_next,
    same_origin,
    set_login_cookie,
)
from schemas.errors import FedpsyError

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
MAX_FORM_BYTES = 4096


async def form_fields(request: Request) -> dict[str, str]:
    """A small ``application/x-www-form-urlencoded`` body as a dict (first value per key)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def _logged_in(request: Request, token: str, next_path: str) -> Response:
    response = secure(RedirectResponse(safe_next(next_path), status_code=303))
    set_login_cookie(request, response, token)
    return response


@router.get("/login")
def login_page(request: Request, token: str | None = None, next: str = "/") -> Response:
    if token:
        redeemed = dashboard(request).login_codes.redeem(token)
        if redeemed is not None:
            return _logged_in(request, redeemed, next)
        return render(
            request,
            "login.html",
            status_code=401,
            next=safe_next(next),
            error="This login link was already used or has expired. "
            "Log in with your researcher token.",
        )
    return render(request, "login.html", next=safe_next(next), error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    fields = await form_fields(request)
    token, next_path = fields.get("token", "").strip(), safe_next(fields.get("next"))
    if not same_origin(request):
        return render(
            request,
            "login.html",
            status_code=403,
            next=next_path,
            error="Log in from this dashboard's own login page.",
        )
    try:
        user = registry.user_for_token(coordinator(request).engine, token)
    except FedpsyError:
        return render(
            request,
            "login.html",
            status_code=401,
            next=next_path,
            error="That token is not valid. Ask the coordinator for yours "
            "(fedpsy coordinator add-user).",
        )
    log.info("dashboard login", extra={"user": user})
    return _logged_in(request, token, next_path)


@router.post("/logout")
def logout(request: Request) -> Response:
    response = secure(RedirectResponse("/login", status_code=303))
    if same_origin(request):
        clear_login_cookie(response)
    return response
