"""Errors as HTTP answers, in one place: ``{"error": {"code", "message"}}`` with a status.

The API raises ``ApiError`` for its own refusals (401, 403, 404, 409, 413) and lets fleet's
errors through: ``FleetError`` classes map to a status here (``STATUS``, first match in the
class's method resolution order), exactly as the CLI maps them to exit codes in
``fleet.cli.app``. Request bodies that fail pydantic's validation get 422 with each problem's
location; an unknown route 404, a wrong method 405. Anything else is a bug: it is logged with
its traceback and answered with a bare 500 that says nothing about the internals.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fleet.core import errors as fe

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A refusal of the API itself: status, a stable code, a message for people."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers


def unauthorized(message: str) -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        message,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not-found", message)


def conflict(message: str) -> ApiError:
    return ApiError(409, "conflict", message)


#: fleet's errors by class, most specific first (the first class in the MRO found wins).
STATUS: dict[type[fe.FleetError], int] = {
    fe.ApprovalRefused: 403,
    fe.JobNotFound: 404,
    fe.SweepNotFound: 404,
    fe.KillSwitchEngaged: 409,
    fe.CannotResume: 409,
    fe.StalePlan: 409,
    fe.DuplicateSweep: 409,
    fe.JobFailed: 500,
    fe.PrepareError: 422,
    fe.SecretsUnavailable: 422,
    fe.SecretUnavailable: 422,
    fe.PolicyError: 422,
    fe.JobError: 409,
    fe.AzureError: 502,
    fe.HistoryUnavailable: 503,
    fe.SchemaOutOfDate: 503,
    fe.SchemaTooNew: 503,
    fe.JobStateLost: 503,
    fe.StoreError: 500,
}


def status_of(exc: fe.FleetError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def code_of(exc: BaseException) -> str:
    """``JobNotFound`` -> ``job-not-found``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", type(exc).__name__).lower()


def body(code: str, message: str, **more: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **more}}


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the JSON error shape."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(body(exc.code, exc.message), exc.status, headers=exc.headers)

    @app.exception_handler(fe.FleetError)
    async def _fleet(request: Request, exc: fe.FleetError) -> JSONResponse:
        status = status_of(exc)
        if status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        details = exc.details()
        more = {"details": details} if details else {}
        return JSONResponse(body(code_of(exc), str(exc), **more), status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"location": [str(p) for p in e.get("loc", ())], "message": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        return JSONResponse(
            body("invalid-request", "the request is invalid", details=problems), 422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not-found", 405: "method-not-allowed", 413: "too-large"}.get(
            exc.status_code, "http-error"
        )
        return JSONResponse(
            body(code, str(exc.detail)), exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse(body("internal-error", "internal error"), 500)
