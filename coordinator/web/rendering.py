"""Rendering dashboard pages: the template environment, the logged-in user, page headers.

Pages are server-rendered Jinja2 templates with autoescaping. Every page is sent with a
Content-Security-Policy that allows scripts, styles, images and requests from this server
only (plots run Vega's expression interpreter, so no ``eval`` is needed), is not cached,
and sends a referrer only to this server (so a form post's ``Origin`` names it).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from coordinator.service import Coordinator
from coordinator.store import registry
from coordinator.web.session import COOKIE, LoginCodes, LoginRequired
from schemas.errors import FedpsyError

HERE = Path(__file__).parent
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


def number(value: Any) -> str:
    """A number for a table cell: integers as they are, floats to 4 significant digits."""
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and abs(value) < 1e-4:
            return f"{value:.3e}"
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.6g}"
    return str(value)


def script_json(value: Any) -> Markup:
    """JSON safe to place inside ``<script type="application/json">``."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


@dataclass
class Dashboard:
    """What the dashboard keeps on ``app.state.dashboard``."""

    templates: Jinja2Templates
    login_codes: LoginCodes


def make_dashboard() -> Dashboard:
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["num"] = number
    templates.env.filters["script_json"] = script_json
    templates.env.filters["pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=False)
    return Dashboard(templates, LoginCodes())


def dashboard(request: Request) -> Dashboard:
    found: Dashboard = request.app.state.dashboard
    return found


def coordinator(request: Request) -> Coordinator:
    found: Coordinator = request.app.state.coordinator
    return found


def web_user(request: Request) -> str:
    """The logged-in researcher (a page without a valid login cookie goes to /login)."""
    token = request.cookies.get(COOKIE, "")
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if not token:
        raise LoginRequired(path)
    try:
        return registry.user_for_token(coordinator(request).engine, token)
    except FedpsyError:
        raise LoginRequired(path) from None


def secure(response: Response) -> Response:
    response.headers.update(HEADERS)
    return response


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The page ``template`` with ``context`` (and the security headers)."""
    response = dashboard(request).templates.TemplateResponse(
        request, template, context, status_code=status_code
    )
    secure(response)
    return response
