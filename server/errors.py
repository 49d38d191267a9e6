"""One error contract: every error answers ``{"code", "description", "request_id"}``
(validation errors add ``"fields"``), Open311 keeps its spec's list shape.

This module owns the mapping from error type to HTTP status (domain errors, FastAPI
validation, Starlette's HTTP errors, the database being unreachable), logs every 5xx
with its traceback and request id, and holds the ASGI middleware that gives each
request an id (``X-Request-ID`` on every response) and turns an unexpected exception
into a 500 in the same shape.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import MutableMapping
from http import HTTPStatus
from typing import Any
from xml.etree import ElementTree as ET

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from server import errors_vi
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

# Vietnamese for the English error descriptions (Open311 has its own texts in twin/i18n.py):
# a regular expression over the whole English text → the Vietnamese with its groups.
# The what-if, analysis, rule and user texts are in :mod:`server.errors_vi`. A description
# with no entry stays English.
VI_ERRORS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(en + r"\Z", re.S), vi) for en, vi in (
        (r"incident (\d+) not found", r"không tìm thấy sự cố \1"),
        (r"unknown status (.+?); one of (.+)", r"không có trạng thái \1; chọn một trong: \2"),
        (r"unknown category (.+?); one of (.+)", r"không có loại sự cố \1; chọn một trong: \2"),
        (r"unknown category (.+)", r"không có loại sự cố \1"),
        (r"severity must be an integer from 1 to 5", "mức độ phải là số nguyên từ 1 đến 5"),
        (r"severity must be a comma list of integers from 1 to 5",
         "mức độ phải là danh sách số nguyên từ 1 đến 5, cách nhau bằng dấu phẩy"),
        (r"severity_min must not be above severity_max",
         "severity_min không được lớn hơn severity_max"),
        (r"since must not be after until", "thời điểm bắt đầu (since) không được sau until"),
        (r"(since|until|sla_due) must be between the years 2000 and 2200",
         r"\1 phải nằm trong khoảng năm 2000 đến 2200"),
        (r"title must not be empty", "tiêu đề không được để trống"),
        (r"(\w+) must be a string", r"\1 phải là chuỗi ký tự"),
        (r"(\w+) is longer than (\d+) characters", r"\1 dài quá \2 ký tự"),
        (r"public must be true or false", "public phải là true hoặc false"),
        (r"sla_due must be an RFC 3339 date-time", "sla_due phải là thời điểm RFC 3339"),
        (r"nothing to change", "không có gì để thay đổi"),
        (r"cannot edit (.+?); editable: (.+)", r"không sửa được \1; sửa được: \2"),
        (r"cannot go from (\w+) to (.+?); allowed: none \(closed is final\)",
         r"không chuyển được từ \1 sang \2; sự cố đã đóng thì không chuyển tiếp được"),
        (r"cannot go from (\w+) to (.+?); allowed: (.+)",
         r"không chuyển được từ \1 sang \2; được phép: \3"),
        (r"closing needs a reason: one of (.+)", r"cần lý do đóng sự cố: một trong \1"),
        (r"a reason is given only when closing", "chỉ ghi lý do khi đóng sự cố"),
        (r"units must be a list of unit names", "đơn vị phải là danh sách tên đơn vị"),
        (r"at most 50 units, each name at most 100 characters",
         "tối đa 50 đơn vị, mỗi tên tối đa 100 ký tự"),
        (r"comment text must not be empty", "nội dung bình luận không được để trống"),
        (r"comment longer than (\d+) characters", r"bình luận dài quá \1 ký tự"),
        (r"incident (\d+) is at version (\d+), not (\d+): reload and retry",
         r"sự cố \1 đã ở phiên bản \2, không phải \3: hãy tải lại rồi thử lại"),
        (r"(\w+) must be a GeoJSON geometry object", r"\1 phải là một hình học GeoJSON"),
        (r"(\w+): geometry type (.+?) not accepted \((.+)\)",
         r"\1: không nhận kiểu hình học \2 (chỉ nhận \3)"),
        (r"(\w+): malformed GeoJSON geometry \((.*)\)", r"\1: hình học GeoJSON sai định dạng (\2)"),
        (r"(\w+) is empty", r"\1 rỗng"),
        (r"(\w+) is invalid: (.*)", r"\1 không hợp lệ: \2"),
        (r"(\w+) is outside the city \((.+)\)", r"\1 nằm ngoài thành phố (\2)"),
        (r"(.+?) \((.+)\) is outside the city (.*)", r"\1 (\2) nằm ngoài thành phố \3"),
        (r"(.+?): coordinates must be finite numbers", r"\1: tọa độ phải là số hữu hạn"),
        (r"(.+?): coordinates must be arrays of positions(.*)",
         r"\1: tọa độ phải là các mảng vị trí\2"),
        (r"(.+?): positions must be 2-D \[lon, lat\], got (\d+) numbers",
         r"\1: mỗi vị trí phải có 2 số [lon, lat], nhận được \2 số"),
        (r"(.+?): coordinates outside lon −180…180 / lat −90…90",
         r"\1: tọa độ nằm ngoài kinh độ −180…180 / vĩ độ −90…90"),
        (r"bbox: expected 4 comma-separated numbers \(minlon,minlat,maxlon,maxlat\), got (.*)",
         r"bbox phải gồm bốn số cách nhau bằng dấu phẩy (minlon,minlat,maxlon,maxlat), "
         r"nhận được \1"),
        (r"bbox: min must not exceed max \(minlon,minlat,maxlon,maxlat\), got (.*)",
         r"bbox: giá trị nhỏ nhất không được lớn hơn giá trị lớn nhất, nhận được \1"),
        (r"bbox: longitudes must lie within -180..180 and latitudes within -90..90, got (.*)",
         r"bbox: kinh độ phải trong -180..180 và vĩ độ trong -90..90, nhận được \1"),
        (r"expires_hours must be between 0 and 336", "expires_hours phải từ 0 đến 336"),
        (r"only a verified, open incident can be published \(it is (\w+)\)",
         r"chỉ phát cảnh báo cho sự cố đã xác minh và đang mở (sự cố đang ở trạng thái \1)"),
        (r"incident (\d+) has no current warning", r"sự cố \1 không có cảnh báo hiện hành"),
        (r"no current warning for incident (\d+)", r"sự cố \1 không có cảnh báo hiện hành"),
        (r"invalid input: (.*)", r"dữ liệu không hợp lệ: \1"),
        (r"sign in required", "cần đăng nhập"),
        (r"staff only", "chỉ dành cho cán bộ"),
        (r"token expired", "phiên đăng nhập đã hết hạn"),
        (r"invalid token", "mã đăng nhập không hợp lệ"),
        (r"expected 'Authorization: Bearer <token>'",
         "cần tiêu đề 'Authorization: Bearer <token>'"),
        (r"the gauge \((.+?)\) is outside the DEM", r"trạm đo (\1) nằm ngoài DEM"),
        (r"no river within (\d+) cells of the gauge \((.+?)\)",
         r"không có sông trong vòng \1 ô quanh trạm đo (\2)"),
        (r"stage_m (.+?) m is not above the river bed at the gauge \((.+?) m\)",
         r"mực nước \1 m không cao hơn đáy sông tại trạm (\2 m)"),
        (r"stage_m (.+?) m is above the DEM's highest ground \((.+?) m\)",
         r"mực nước \1 m cao hơn điểm cao nhất của DEM (\2 m)"),
        (r"unknown gauge (.+?); known: (.+?) \(or give at: \[lon, lat\] on a river\)",
         r"không có trạm đo \1; các trạm: \2 (hoặc cho at: [kinh độ, vĩ độ] trên sông)"),
        (r"no river on this terrain: HAND needs the rivers of the land cover "
         r"\(land_cover kind 'water'\)",
         "địa hình này không có sông: HAND cần các sông của lớp phủ (land_cover loại 'water')"),
        (r"Not Found", "không tìm thấy"),
        (r"Method Not Allowed", "phương thức không được hỗ trợ"),
        (r"the database is unavailable; retry shortly",
         "cơ sở dữ liệu tạm thời không truy cập được; hãy thử lại sau ít phút"),
        (r"a value is out of range or malformed: (.*)",
         r"một giá trị nằm ngoài phạm vi hoặc sai định dạng: \1"),
        (r"the change conflicts with stored data: (.*)",
         r"thay đổi xung đột với dữ liệu đã lưu: \1"),
        (r"internal error; quote the request id when reporting it",
         "lỗi nội bộ; hãy báo mã yêu cầu (request id) khi phản ánh"),
    ) + errors_vi.PAIRS
)


def translate(description: str, lang: str) -> str:
    """``description`` in ``lang``: the Vietnamese of :data:`VI_ERRORS` for ``vi`` (the
    English when it has no entry)."""
    if lang != "vi":
        return description
    for pattern, vi in VI_ERRORS:
        m = pattern.match(description)
        if m:
            return m.expand(vi)
    return description


def error_lang(request: Request | None) -> str:
    """The language of an error description: ``lang`` or ``Accept-Language`` as
    :func:`twin.i18n.pick` reads them; English when the request names neither (API
    clients and scripts read the English texts)."""
    if request is None:
        return "en"
    lang = request.query_params.get("lang")
    accept = request.headers.get("accept-language")
    if not lang and not accept:
        return "en"
    from twin.i18n import pick

    return pick(lang, accept)

STATUS: dict[type[Exception], int] = {
    InputError: 400,
    NotFound: 404,
    Conflict: 409,
    PreconditionFailed: 412,
    RateLimited: 429,
    DatabaseUnavailable: 503,
}
RETRY_AFTER_S = 5
"""Retry-After of a 503 while the database is unreachable (seconds)."""
OPEN311_PREFIX = "/open311/"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# errors from the driver or the pool meaning "the database cannot be reached now"
DB_DOWN: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.TimeoutError,  # pool checkout timed out
    sa_exc.InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


def status_for(exc: Exception) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def code_for(status: int) -> str:
    """``404`` → ``"NotFound"``: the status phrase without spaces."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "Error"
    return re.sub(r"[^A-Za-z]", "", phrase.title())


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id") or "")


def error_response(request: Request | None, status: int, code: str, description: str,
                   headers: dict[str, str] | None = None,
                   fields: list[dict[str, str]] | None = None,
                   path: str | None = None, rid: str | None = None) -> Response:
    """The one error body (Open311's own list shape under ``/open311/``)."""
    path = path if path is not None else (request.url.path if request is not None else "")
    rid = rid if rid is not None else (request_id(request) if request is not None else "")
    headers = dict(headers or {})
    if rid:
        headers["X-Request-ID"] = rid
    if path.startswith(OPEN311_PREFIX):
        errors = [{"code": status, "description": description}]
        if path.endswith(".xml"):
            top = ET.Element("errors")
            el = ET.SubElement(top, "error")
            ET.SubElement(el, "code").text = str(status)
            ET.SubElement(el, "description").text = description
            body = b'<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(top, encoding="utf-8")
            return Response(body, status_code=status, headers=headers,
                            media_type="text/xml; charset=utf-8")
        return JSONResponse(errors, status_code=status, headers=headers)
    description = translate(description, error_lang(request))
    content: dict[str, Any] = {"code": code, "description": description, "request_id": rid}
    if fields is not None:
        content["fields"] = fields
    return JSONResponse(content, status_code=status, headers=headers)


def _db_unavailable(request: Request, exc: Exception) -> Response:
    log.error("database unavailable on %s %s [request %s]", request.method, request.url.path,
              request_id(request), exc_info=exc)
    return error_response(request, 503, "DatabaseUnavailable",
                          "the database is unavailable; retry shortly",
                          headers={"Retry-After": str(RETRY_AFTER_S)})


def _fields(exc: RequestValidationError) -> list[dict[str, str]]:
    """Which inputs were wrong and why, never their values (a body may be huge)."""
    out = []
    for err in exc.errors()[:50]:
        loc = [str(p) for p in err.get("loc", ())]
        names = [p for p in loc[1:] if not p.isdigit()] or loc
        out.append({"name": names[-1] if names else "", "loc": ".".join(loc),
                    "message": str(err.get("msg", "invalid"))[:300]})
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TwinError)
    async def _twin_error(request: Request, exc: TwinError) -> Response:
        code = status_for(exc)
        if isinstance(exc, DatabaseUnavailable):
            return _db_unavailable(request, exc)
        if code >= 500:
            log.error("%s on %s [request %s]", type(exc).__name__, request.url.path,
                      request_id(request), exc_info=exc)
        return error_response(request, code, type(exc).__name__, str(exc)[:2000])

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code >= 500:
            log.error("HTTP %s on %s [request %s]", exc.status_code, request.url.path,
                      request_id(request), exc_info=exc)
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return error_response(request, exc.status_code, code_for(exc.status_code),
                              detail[:2000], headers=dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        fields = _fields(exc)
        names = ", ".join(dict.fromkeys(f["loc"] for f in fields))
        return error_response(request, 422, "InvalidInput",
                              f"invalid input: {names}"[:500], fields=fields)

    @app.exception_handler(sa_exc.DataError)
    async def _data_error(request: Request, exc: sa_exc.DataError) -> Response:
        # a value the database refused (out of range, malformed): the caller's input;
        # the transaction rolled back, so nothing was half-written
        first = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
        log.warning("database refused a value on %s [request %s]: %s", request.url.path,
                    request_id(request), first)
        return error_response(request, 400, "InvalidValue",
                              f"a value is out of range or malformed: {first}")

    @app.exception_handler(sa_exc.IntegrityError)
    async def _integrity(request: Request, exc: sa_exc.IntegrityError) -> Response:
        # a unique or foreign key the request collided with: rolled back, nothing written
        first = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
        log.warning("integrity error on %s [request %s]: %s", request.url.path,
                    request_id(request), first)
        return error_response(request, 409, "Conflict",
                              f"the change conflicts with stored data: {first}")

    for cls in DB_DOWN:
        app.add_exception_handler(cls, _db_unavailable)  # type: ignore[arg-type]

    @app.exception_handler(sa_exc.DBAPIError)
    async def _dbapi(request: Request, exc: sa_exc.DBAPIError) -> Response:
        if exc.connection_invalidated or isinstance(exc.orig, DB_DOWN):
            return _db_unavailable(request, exc)
        return _server_error(request, exc)


def _server_error(request: Request, exc: BaseException) -> Response:
    log.error("unhandled %s on %s %s [request %s]", type(exc).__name__, request.method,
              request.url.path, request_id(request), exc_info=exc)
    return error_response(request, 500, "InternalServerError",
                          "internal error; quote the request id when reporting it")


class RequestContext:
    """ASGI middleware (outermost): a request id for each request (a sane incoming
    ``X-Request-ID`` is kept), sent back on every response; an exception no handler
    took becomes a 500 in the error shape, logged with its traceback."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or ()).get(b"x-request-id", b"").decode(
            "latin-1").strip()
        rid = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        started = False

        async def send_with_id(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", ())
                           if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            request = Request(scope)
            if isinstance(exc, DB_DOWN):
                response = _db_unavailable(request, exc)
            else:
                response = _server_error(request, exc)
            if started:  # too late for an answer: the client sees a cut response
                return
            await response(scope, receive, send_with_id)
