"""The site admin pages under ``/ui``: login, data summary, policy, approval queue, audit.

Logging in takes the node's admin token (``DIR/admin_token``) and keeps it in an HttpOnly,
SameSite=Strict cookie scoped to ``/ui``, then redirects (303) to the admin page that was
asked for. Approve and reject are form posts that must come
from this page (same ``Origin``) and carry a form token derived from the admin token, so
another site cannot make an administrator's browser release an answer. The pages use no
JavaScript; ``fedpsy node serve`` binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from node.service import NodeService
from node.web.projects import decide_project, projects_view
from node.web.views import audit_view, pending_tasks, store_summary
from schemas.errors import FedpsyError

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
COOKIE = "fedpsy_admin"
PREFIX = "/ui"
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' "
    "data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


class AdminLoginRequired(Exception):
    """An admin page was asked for without the admin cookie."""


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return (parts.scheme, parts.netloc) == (request.url.scheme, request.headers.get("host", ""))


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    parsed = parse_qs(body[:4096].decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def _after_login(target: str) -> str:
    """Where a login goes on: the admin page that was asked for (a path under ``/ui/``
    on this server, never another site or the login page itself), else the data page."""
    parts = urlsplit(target)
    local = not (parts.scheme or parts.netloc) and "\\" not in target
    if local and parts.path.startswith(PREFIX + "/") and parts.path != PREFIX + "/login":
        return parts.path.removeprefix(PREFIX) + (f"?{parts.query}" if parts.query else "")
    return "/"


def mount_admin_pages(app: FastAPI, service: NodeService, admin_token: str) -> None:
    """Add the admin pages and their stylesheet to the node's application."""
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["pretty"] = lambda v: json.dumps(v, indent=2)
    form_token = hmac.new(admin_token.encode(), b"fedpsy-admin-form", hashlib.sha256).hexdigest()
    router = APIRouter(prefix=PREFIX, include_in_schema=False)

    def logged_in(request: Request) -> None:
        if not hmac.compare_digest(request.cookies.get(COOKIE, ""), admin_token):
            raise AdminLoginRequired()

    def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        response = templates.TemplateResponse(
            request,
            name,
            {"site": service.site, "form_token": form_token, **context},
            status_code=status_code,
        )
        response.headers.update(HEADERS)
        return response

    def redirect(path: str) -> Response:
        response = RedirectResponse(PREFIX + path, status_code=303)
        response.headers.update(HEADERS)
        return response

    @router.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "") -> Response:
        return render(request, "login.html", page="login", error=None, next=next)

    @router.post("/login")
    async def login(request: Request) -> Response:
        fields = await _form(request)
        supplied = fields.get("token", "").strip()
        if not _same_origin(request) or not hmac.compare_digest(supplied, admin_token):
            return render(
                request,
                "login.html",
                status_code=401,
                page="login",
                error="That is not this node's admin token (it is in DIR/admin_token).",
                next=fields.get("next", ""),
            )
        response = redirect(_after_login(fields.get("next", "")))  # 303: the page, by GET
        response.set_cookie(
            COOKIE,
            admin_token,
            httponly=True,
            samesite="strict",
            path=PREFIX,
            secure=request.url.scheme == "https",
        )
        return response

    @router.post("/logout")
    def logout(request: Request) -> Response:
        response = redirect("/login")
        response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return response

    @router.get("/", response_class=HTMLResponse)
    def summary(request: Request) -> Response:
        logged_in(request)
        return render(request, "summary.html", page="summary", status=store_summary(service))

    @router.get("/policy", response_class=HTMLResponse)
    def policy(request: Request) -> Response:
        logged_in(request)
        text = service.node.dir.policy.read_text(encoding="utf-8")
        return render(
            request,
            "policy.html",
            page="policy",
            policy=service.policy,
            policy_text=text,
            path=str(service.node.dir.policy),
        )

    @router.get("/queue", response_class=HTMLResponse)
    def queue(request: Request, done: str = "", task: str = "") -> Response:
        logged_in(request)
        return render(
            request,
            "queue.html",
            page="queue",
            tasks=pending_tasks(service),
            done=done,
            done_task=task,
        )

    @router.post("/queue/{task_id}/{decision}")
    async def decide(request: Request, task_id: str, decision: str) -> Response:
        logged_in(request)
        fields = await _form(request)
        if (
            decision not in ("approve", "reject")
            or not _same_origin(request)
            or not hmac.compare_digest(fields.get("form_token", ""), form_token)
        ):
            return render(
                request,
                "queue.html",
                status_code=403,
                page="queue",
                tasks=pending_tasks(service),
                done="",
                done_task="",
                error="The decision was not accepted: send it from this page.",
            )
        try:
            service.decide(task_id, approve=decision == "approve")
        except FedpsyError as exc:
            return render(
                request,
                "queue.html",
                status_code=exc.http_status,
                page="queue",
                tasks=pending_tasks(service),
                done="",
                done_task="",
                error=exc.detail or exc.message,
            )
        log.info("admin decision", extra={"task_id": task_id, "decision": decision})
        outcome = "released" if decision == "approve" else "rejected"
        return redirect(f"/queue?done={outcome}&task={quote(task_id)}")

    @router.get("/audit", response_class=HTMLResponse)
    def audit(request: Request, limit: int = 200) -> Response:
        logged_in(request)
        return render(
            request, "audit.html", page="audit", **audit_view(service, max(1, min(limit, 5000)))
        )

    @router.get("/projects", response_class=HTMLResponse)
    def projects(request: Request) -> Response:
        logged_in(request)
        return render(
            request, "projects.html", page="projects", error=None, **projects_view(service)
        )

    @router.post("/projects/{name}/{decision}")
    async def project_decision(request: Request, name: str, decision: str) -> Response:
        logged_in(request)
        fields = await _form(request)
        error = None
        if (
            decision not in ("approve", "revoke")
            or not _same_origin(request)
            or not hmac.compare_digest(fields.get("form_token", ""), form_token)
        ):
            error, status = "The decision was not accepted: send it from this page.", 403
        else:
            try:
                decide_project(service, name, approve=decision == "approve")
            except FedpsyError as exc:
                error, status = exc.detail or exc.message, exc.http_status
        if error is not None:
            context = projects_view(service)
            return render(request, "projects.html", status, page="projects", error=error, **context)
        log.info("admin project decision", extra={"project": name, "decision": decision})
        return redirect("/projects")

    async def to_login(request: Request, exc: Exception) -> Response:
        asked = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return redirect(f"/login?next={quote(asked, safe='')}")

    @app.get(PREFIX, include_in_schema=False)
    def ui_root() -> Response:
        return redirect("/")

    app.include_router(router)
    app.mount(PREFIX + "/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    app.add_exception_handler(AdminLoginRequired, to_login)
