"""Mounting the dashboard on the coordinator's FastAPI application."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from coordinator.web import builder, login, pages, quality, results
from coordinator.web.rendering import HERE, Dashboard, make_dashboard, secure
from coordinator.web.session import LoginRequired


async def _to_login(request: Request, exc: Exception) -> Response:
    target = exc.next_path if isinstance(exc, LoginRequired) else "/"
    url = "/login" if target == "/" else f"/login?next={quote(target, safe='/')}"
    return secure(RedirectResponse(url, status_code=303))


def mount_dashboard(app: FastAPI) -> None:
    """Add the dashboard's pages and static files (``app.state.coordinator`` must be set)."""
    app.state.dashboard = make_dashboard()
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (login, pages, builder, results, quality):
        app.include_router(module.router)
    app.add_exception_handler(LoginRequired, _to_login)


def issue_login_code(app: FastAPI, token: str) -> str:
    """A one-time code: opening ``/login?token=CODE`` logs in as ``token``'s researcher.

    Valid once, for :data:`~coordinator.web.session.LOGIN_CODE_TTL_S` seconds, in the
    process serving ``app`` (``fedpsy demo --serve`` prints the URL).
    """
    state: Dashboard = app.state.dashboard
    return state.login_codes.issue(token)
