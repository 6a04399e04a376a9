"""RFC 9457 problem responses: how both APIs turn errors into HTTP answers."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from schemas.errors import ErrorCode, FedpsyError

PROBLEM = "application/problem+json"
log = logging.getLogger(__name__)


def problem_response(exc: FedpsyError, instance: str) -> JSONResponse:
    """The problem body of ``exc`` with its HTTP status."""
    return JSONResponse(exc.problem(instance), status_code=exc.http_status, media_type=PROBLEM)


HTTP_CODES = {401: ErrorCode.UNAUTHORIZED, 404: ErrorCode.NOT_FOUND}


def http_problem(exc: HTTPException, instance: str) -> JSONResponse:
    """The problem body of an HTTP error the framework raised (an unknown route is
    ``not_found``; a wrong method keeps its status, 405, under ``request_invalid``)."""
    code = HTTP_CODES.get(exc.status_code, ErrorCode.REQUEST_INVALID)
    detail = exc.detail if isinstance(exc.detail, str) else ""
    if exc.status_code == 404:
        detail = f"no such resource: {instance}"
    body = FedpsyError(detail, code=code).problem(instance)
    body["status"] = exc.status_code
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers, media_type=PROBLEM)


def install_problem_handlers(app: FastAPI) -> None:
    """Map fedpsy errors, HTTP errors of the framework (unknown routes, wrong methods),
    invalid requests (422) and unexpected errors (500, details only in the server log) to
    problem bodies."""

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return http_problem(exc, request.url.path)

    @app.exception_handler(FedpsyError)
    async def _fedpsy_error(request: Request, exc: FedpsyError) -> JSONResponse:
        return problem_response(exc, request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception(
            "unexpected error", extra={"path": request.url.path, "error": type(exc).__name__}
        )
        return problem_response(
            FedpsyError("see the server log", code=ErrorCode.INTERNAL), request.url.path
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        err = FedpsyError(f"{where}: {first.get('msg')}", code=ErrorCode.REQUEST_INVALID)
        return problem_response(err, request.url.path)
