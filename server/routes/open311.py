"""Open311 GeoReport v2 for citizen reports: JSON and XML, with the spec's error format."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from layers.access import is_staff
from server.deps import get_principal
from server.ratelimit import RateLimiter
from server.ratelimit import limiter as named_limiter
from twin import i18n
from twin.errors import Conflict, InputError, NotFound, RateLimited, TwinError
from twin.i18n import t
from twin.incidents import media, open311

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


def _guard(fmt: str, lang: str = "vi") -> Response | None:
    if fmt not in FORMATS:
        return _error("json", 400, t("err.format", lang, fmt=fmt))
    return None


def _fail(fmt: str, exc: TwinError) -> Response:
    status = (
        404 if isinstance(exc, NotFound)
        else 429 if isinstance(exc, RateLimited)
        else 409 if isinstance(exc, Conflict)
        else 415 if isinstance(exc, media.UnsupportedMedia)
        else 413 if isinstance(exc, media.MediaTooLarge)
        else 400
    )
    return _error(fmt, status, str(exc))


def _lang(request: Request) -> str:
    """The answer's language: ``?lang=`` or Accept-Language, Vietnamese by default."""
    return i18n.pick(request.query_params.get("lang"), request.headers.get("accept-language"))


def _staff(request: Request) -> bool:
    return is_staff(get_principal(request).role)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


FORM_BYTES = 64 * 1024  # a form or JSON report without photos
MULTIPART_BYTES = media.MAX_FILES * media.MAX_BYTES + 256 * 1024


class TooLarge(Exception):
    pass


async def _read_capped(request: Request, cap: int) -> bytes:
    """The body, refusing (TooLarge) as soon as it passes ``cap`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


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
def services(fmt: str, request: Request, jurisdiction_id: str | None = None) -> Response:
    lang = _lang(request)
    if (bad := _guard(fmt, lang)) is not None:
        return bad
    if jurisdiction_id not in (None, "", open311.JURISDICTION):
        return _error(fmt, 404, t("err.jurisdiction", lang, id=jurisdiction_id))
    return _answer(fmt, "services", "service", open311.services(lang))


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
    """Publicly listed requests (verified, shown, not merged); staff see every report."""
    lang = _lang(request)
    if (bad := _guard(fmt, lang)) is not None:
        return bad
    try:
        with request.app.state.engine.connect() as conn:
            rows = open311.list_requests(conn, dict(request.query_params), staff=_staff(request),
                                         base=_base(request), lang=lang)
    except TwinError as exc:
        return _fail(fmt, exc)
    return _answer(fmt, "service_requests", "request", rows)


async def _read_report(request: Request, lang: str) -> tuple[dict[str, Any], list[Any]]:
    """The report's fields and uploaded files, whichever way it came (form, JSON or
    multipart with up to three ``media`` files)."""
    ctype = request.headers.get("content-type", "")
    multipart = ctype.startswith("multipart/form-data")
    raw = await _read_capped(request, MULTIPART_BYTES if multipart else FORM_BYTES)

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    if ctype.startswith("application/json"):
        import json

        body = json.loads(raw or b"null")
        if not isinstance(body, dict):
            raise InputError("expected a JSON object")
        form = {str(k): (str(v) if v is not None else None) for k, v in body.items()}
        return form, []
    if not multipart:
        # x-www-form-urlencoded is UTF-8 (WHATWG URL): raw UTF-8 (curl -d) and
        # percent-encoded UTF-8 both read right (Starlette decodes raw bytes as Latin-1)
        from urllib.parse import parse_qsl

        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True,
                              max_num_fields=open311.MAX_FIELDS, errors="strict")
        except UnicodeDecodeError as exc:
            detail = "biểu mẫu không ở mã UTF-8" if lang == "vi" else "the form is not UTF-8"
            raise InputError(t("err.body", lang, detail=detail)) from exc
        except ValueError as exc:  # more fields than MAX_FIELDS
            raise InputError(t("err.body", lang, detail=str(exc)[:200])) from exc
        return dict(pairs), []
    again = Request(request.scope, replay)
    parsed = await again.form(max_files=media.MAX_FILES + 1, max_fields=open311.MAX_FIELDS,
                              max_part_size=open311.FIELD_LIMITS["description"] * 4 + 1024)
    form, files = {}, []
    for key, value in parsed.multi_items():
        if isinstance(value, UploadFile):
            if key == "media":
                files.append(value)
        else:
            form[key] = str(value)
    if len(files) > media.MAX_FILES:
        raise InputError(t("err.media_count", lang, limit=media.MAX_FILES))
    return form, files


@router.post("/requests.{fmt}", status_code=201)
async def post_request(fmt: str, request: Request) -> Response:
    """Create a service request: form-encoded per the spec, JSON, or multipart with up to
    three photos in ``media`` (JPEG, PNG, WebP; ≤ 5 MiB each; re-encoded without EXIF)."""
    lang = _lang(request)
    if (bad := _guard(fmt, lang)) is not None:
        return bad
    client = request.client.host if request.client else "unknown"
    limiter: RateLimiter = _limiter(request)
    if not await run_in_threadpool(limiter.allow, client):
        return _error(fmt, 429, t("err.rate", lang))
    try:
        form, files = await _read_report(request, lang)
    except TooLarge:
        return _error(fmt, 413, t("err.too_large", lang, limit="3 × 5 MiB"))
    except InputError as exc:
        return _error(fmt, 400, str(exc))
    except Exception as exc:  # noqa: BLE001 - JSON / multipart parsers raise many kinds
        return _error(fmt, 400, t("err.body", lang, detail=str(exc)[:200]))
    try:
        open311.check_form(form, lang)
        uploads = [(f.filename or "photo", await f.read()) for f in files]
        photos = await run_in_threadpool(
            lambda: [media.process(data, name[:100], lang) for name, data in uploads])
    except TwinError as exc:
        return _fail(fmt, exc)

    def run() -> dict[str, Any]:
        with request.app.state.engine.begin() as conn:
            return open311.submit(conn, form, client=client, photos=photos, lang=lang)

    try:
        created = await run_in_threadpool(run)
    except TwinError as exc:
        return _fail(fmt, exc)
    return _answer(fmt, "service_requests", "request", [created], status=201)


@router.get("/requests/nearby.{fmt}")
def nearby(fmt: str, request: Request, service_code: str = "", lat: str = "", long: str = "",
           radius: str = "50") -> Response:
    """Open, publicly listed reports of one category near a point, nearest first."""
    lang = _lang(request)
    if (bad := _guard(fmt, lang)) is not None:
        return bad
    try:
        try:
            flat, flon, frad = float(lat), float(long), float(radius)
        except ValueError:
            raise InputError(t("err.latlong", lang)) from None
        with request.app.state.engine.connect() as conn:
            rows = open311.nearby(conn, service_code, flat, flon, frad, lang=lang)
    except TwinError as exc:
        return _fail(fmt, exc)
    return _answer(fmt, "service_requests", "request", rows)


@router.post("/requests/{request_id}/support.{fmt}")
async def support(request_id: str, fmt: str, request: Request) -> Response:
    """"Me too" on an open public report (optional ``token`` of the citizen's own report,
    which is then linked to it); rate-limited like reports."""
    lang = _lang(request)
    if (bad := _guard(fmt, lang)) is not None:
        return bad
    if not request_id.isdigit() or len(request_id) > 18:
        return _error(fmt, 404, t("err.request_not_found", lang, id=request_id[:40]))
    client = request.client.host if request.client else "unknown"
    if not await run_in_threadpool(_limiter(request, "open311-support").allow, client):
        return _error(fmt, 429, t("err.rate", lang))
    try:
        form, _ = await _read_report(request, lang) if await _has_body(request) else ({}, [])
    except TooLarge:
        return _error(fmt, 413, t("err.too_large", lang, limit="64 KiB"))
    except Exception as exc:  # noqa: BLE001 - JSON / form parsers raise many kinds
        return _error(fmt, 400, t("err.body", lang, detail=str(exc)[:200]))
    token = (form.get("token") or "").strip() or None

    def run() -> dict[str, Any]:
        with request.app.state.engine.begin() as conn:
            return open311.support(conn, int(request_id), token=token, client=client,
                                   lang=lang)

    try:
        return _answer(fmt, "service_request", "request", await run_in_threadpool(run))
    except TwinError as exc:
        return _fail(fmt, exc)


async def _has_body(request: Request) -> bool:
    return bool(request.headers.get("content-length", "0") != "0"
                or request.headers.get("transfer-encoding"))


@router.get("/requests/{request_id}.{fmt}")
def get_request(request_id: str, fmt: str, request: Request, token: str | None = None) -> Response:
    """One request: publicly listed ones for everyone, the reporter's own with
    ``?token=``, any for staff."""
    lang = _lang(request)
    if (bad := _guard(fmt, lang)) is not None:
        return bad
    if not request_id.isdigit() or len(request_id) > 18:
        return _error(fmt, 404, t("err.request_not_found", lang, id=request_id[:40]))
    with request.app.state.engine.connect() as conn:
        rows = open311.list_requests(conn, {"service_request_id": request_id},
                                     staff=_staff(request), token=token, base=_base(request),
                                     lang=lang)
    if not rows:
        return _error(fmt, 404, t("err.request_not_found", lang, id=request_id))
    return _answer(fmt, "service_requests", "request", rows)


@router.get("/tokens/{token}.{fmt}")
def get_token(token: str, fmt: str, request: Request) -> Response:
    """The reporter's tracking answer: status, public timeline, answer due date (Đà Nẵng
    time), supporters and photos."""
    lang = _lang(request)
    if (bad := _guard(fmt, lang)) is not None:
        return bad
    try:
        with request.app.state.engine.connect() as conn:
            data = open311.tracking(conn, token, base=_base(request), lang=lang)
    except TwinError as exc:
        return _fail(fmt, exc)
    return _answer(fmt, "service_requests", "request", [data])


@router.get("/media/{name}")
def get_media(name: str, request: Request, size: str | None = None,
              token: str | None = None) -> Response:
    """A report's photo (``?size=thumb``: 320 px). Photos of a report not publicly listed
    only for staff or with the report's ``?token=``."""
    lang = _lang(request)
    if size not in (None, "", "full", "thumb"):
        return _error("json", 400, "size must be thumb or full")
    try:
        with request.app.state.engine.connect() as conn:
            ctype, data = open311.media_for(conn, name, thumb=size == "thumb",
                                            staff=_staff(request), token=token, lang=lang)
    except TwinError as exc:
        return _fail("json", exc)
    return Response(data, media_type=ctype, headers={
        "Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"})


def _limiter(request: Request, name: str = "open311") -> RateLimiter:
    state = request.app.state
    return named_limiter(state, name, state.settings.open311_posts_per_minute)
