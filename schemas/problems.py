"""RFC 9457 problem responses: how both APIs turn errors into HTTP answers."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from schemas.errors import ErrorCode, FedpsyError

PROBLEM = "application/problem+json"
log = logging.getLogger(__name__)


def problem_response(exc: FedpsyError, instance: str) -> JSONResponse:
    """The problem body of ``exc`` with its HTTP status."""
    return JSONResponse(exc.problem(instance), status_code=exc.http_status, media_type=PROBLEM)


def install_problem_handlers(app: FastAPI) -> None:
    """Map fedpsy errors, invalid requests (422) and unexpected errors (500, details only in
    the server log) to problem bodies."""

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
