"""Map domain errors to HTTP statuses with a JSON body that says what was wrong."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from twin.errors import (
    Conflict,
    DatabaseUnavailable,
    InputError,
    NotFound,
    PreconditionFailed,
    RateLimited,
    TwinError,
)

log = logging.getLogger("twin.server")

STATUS: dict[type[Exception], int] = {
    InputError: 400,
    NotFound: 404,
    Conflict: 409,
    PreconditionFailed: 412,
    RateLimited: 429,
    DatabaseUnavailable: 503,
}


def status_for(exc: Exception) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TwinError)
    async def _twin_error(request: Request, exc: TwinError) -> JSONResponse:
        code = status_for(exc)
        if code >= 500:
            log.error("%s on %s: %s", type(exc).__name__, request.url.path, exc)
        return JSONResponse(
            {"code": type(exc).__name__, "description": str(exc)}, status_code=code
        )
