"""Open311 GeoReport v2 for citizen reports: JSON and XML, with the spec's error format."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from server.ratelimit import RateLimiter
from server.ratelimit import limiter as named_limiter
from twin.errors import InputError, NotFound, RateLimited, TwinError
from twin.incidents import open311

router = APIRouter(prefix="/open311/v2", tags=["open311"])

FORMATS = {"json", "xml"}


def _xml(root: str, item: str, rows: list[dict[str, Any]] | dict[str, Any]) -> bytes:
    top = ET.Element(root)

    def fill(el: ET.Element, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                fill(ET.SubElement(el, k), v)
        elif isinstance(value, list):
            for v in value:
                fill(ET.SubElement(el, item_names.get(el.tag, "item")), v)
        elif value is None:
            pass
        elif isinstance(value, bool):
            el.text = "true" if value else "false"
        else:
            el.text = str(value)

    item_names = {
        "attributes": "attribute",
        "values": "value",
        "endpoints": "endpoint",
        "formats": "format",
    }
    if isinstance(rows, dict):
        fill(top, rows)
    else:
        for row in rows:
            fill(ET.SubElement(top, item), row)
    return b'<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(top, encoding="utf-8")


def _answer(fmt: str, root: str, item: str, data: Any, status: int = 200) -> Response:
    if fmt == "xml":
        return Response(
            _xml(root, item, data), status_code=status, media_type="text/xml; charset=utf-8"
        )
    return JSONResponse(data, status_code=status)


def _error(fmt: str, status: int, message: str) -> Response:
    errors = [{"code": status, "description": message}]
    return _answer(fmt if fmt in FORMATS else "json", "errors", "error", errors, status)


def _guard(fmt: str) -> Response | None:
    if fmt not in FORMATS:
        return _error("json", 400, f"format {fmt!r} not supported; use json or xml")
    return None


def _fail(fmt: str, exc: TwinError) -> Response:
    status = 404 if isinstance(exc, NotFound) else 429 if isinstance(exc, RateLimited) else 400
    return _error(fmt, status, str(exc))


@router.get("/discovery.{fmt}")
def discovery(fmt: str, request: Request) -> Response:
    if (bad := _guard(fmt)) is not None:
        return bad
    base = str(request.base_url).rstrip("/") + "/open311/v2/"
    data = {
        "changeset": "2026-11-01T00:00:00Z",
        "contact": "IOC Đà Nẵng — hotline 1022",
        "key_service": "Anonymous reports are accepted; no API key is needed.",
        "endpoints": [
            {
                "specification": "http://wiki.open311.org/GeoReport_v2",
                "url": base,
                "changeset": "2026-11-01T00:00:00Z",
                "type": "production",
                "formats": ["application/json", "text/xml"],
            }
        ],
    }
    return _answer(fmt, "discovery", "endpoint", data)


@router.get("/services.{fmt}")
def services(fmt: str, jurisdiction_id: str | None = None) -> Response:
    if (bad := _guard(fmt)) is not None:
        return bad
    if jurisdiction_id not in (None, "", open311.JURISDICTION):
        return _error(fmt, 404, f"jurisdiction_id {jurisdiction_id!r} not served here")
    return _answer(fmt, "services", "service", open311.services())


@router.get("/services/{code}.{fmt}")
def service_definition(code: str, fmt: str) -> Response:
    if (bad := _guard(fmt)) is not None:
        return bad
    try:
        return _answer(fmt, "service_definition", "attribute", open311.service_definition(code))
    except TwinError as exc:
        return _fail(fmt, exc)


@router.get("/requests.{fmt}")
def get_requests(fmt: str, request: Request) -> Response:
    if (bad := _guard(fmt)) is not None:
        return bad
    try:
        with request.app.state.engine.connect() as conn:
            rows = open311.list_requests(conn, dict(request.query_params))
    except TwinError as exc:
        return _fail(fmt, exc)
    return _answer(fmt, "service_requests", "request", rows)


@router.post("/requests.{fmt}", status_code=201)
async def post_request(fmt: str, request: Request) -> Response:
    """Create a service request (form-encoded per the spec; JSON is accepted too)."""
    if (bad := _guard(fmt)) is not None:
        return bad
    client = request.client.host if request.client else "unknown"
    limiter: RateLimiter = _limiter(request)
    if not await run_in_threadpool(limiter.allow, client):
        return _error(fmt, 429, "too many reports from this client; try again in a minute")
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            body = await request.json()
            if not isinstance(body, dict):
                raise InputError("expected a JSON object")
            form = {k: (str(v) if v is not None else None) for k, v in body.items()}
        else:
            form = {k: str(v) for k, v in (await request.form()).items()}
    except (ValueError, InputError) as exc:
        return _error(fmt, 400, f"cannot read the request body: {exc}")

    def run() -> dict[str, Any]:
        with request.app.state.engine.begin() as conn:
            return open311.submit(conn, form, client=client)

    try:
        created = await run_in_threadpool(run)
    except TwinError as exc:
        return _fail(fmt, exc)
    return _answer(fmt, "service_requests", "request", [created], status=201)


@router.get("/requests/{request_id}.{fmt}")
def get_request(request_id: str, fmt: str, request: Request) -> Response:
    if (bad := _guard(fmt)) is not None:
        return bad
    if not request_id.isdigit():
        return _error(fmt, 404, f"service request {request_id!r} not found")
    with request.app.state.engine.connect() as conn:
        rows = open311.list_requests(conn, {"service_request_id": request_id})
    if not rows:
        return _error(fmt, 404, f"service request {request_id} not found")
    return _answer(fmt, "service_requests", "request", rows)


@router.get("/tokens/{token}.{fmt}")
def get_token(token: str, fmt: str, request: Request) -> Response:
    if (bad := _guard(fmt)) is not None:
        return bad
    try:
        with request.app.state.engine.connect() as conn:
            return _answer(fmt, "service_requests", "request", [open311.by_token(conn, token)])
    except TwinError as exc:
        return _fail(fmt, exc)


def _limiter(request: Request) -> RateLimiter:
    state = request.app.state
    return named_limiter(state, "open311", state.settings.open311_posts_per_minute)
