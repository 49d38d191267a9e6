"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from server.errors import RETRY_AFTER_S
from twin.db import ping
from twin.migrate import at_head, head_revision

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """The database is reachable and its migrations are at head."""
    engine = request.app.state.engine
    reachable = await run_in_threadpool(ping, engine)
    migrated = reachable and await run_in_threadpool(at_head, engine)
    body = {
        "database": "ok" if reachable else "unreachable",
        "migrations": "head" if migrated else "behind",
        "head": head_revision(),
    }
    if migrated:
        return JSONResponse(body)
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})
