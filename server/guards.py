"""Bounded inputs at the door: a request body limit per route family (from
Content-Length and while the body streams in) and no NUL characters in the path, the
query string or a text body (PostgreSQL text cannot hold them)."""

from __future__ import annotations

import re
from typing import Any

from server.errors import error_response

MiB = 1024 * 1024
BODY_LIMITS: tuple[tuple[str, int], ...] = (
    # Open311 reports may carry photos: 3 × 5 MiB and the form
    ("/open311/", 16 * MiB),
    # a gateway's batch: up to 50,000 observations (twin.sensors.payloads.MAX_BATCH)
    ("/sta/v1.1/CreateObservations", 8 * MiB),
)
DEFAULT_BODY_LIMIT = 1 * MiB
"""JSON writes everywhere else (incidents, scenarios, SensorThings, sign-in …)."""
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# a JSON \u0000 escape not itself escaped (an even run of backslashes before it)
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000", re.IGNORECASE)
_BOUNDARY = re.compile(rb'boundary="?([^";]+)"?', re.IGNORECASE)


def body_limit(path: str) -> int:
    for prefix, limit in BODY_LIMITS:
        if path.startswith(prefix):
            return limit
    return DEFAULT_BODY_LIMIT


def has_nul(body: bytes, content_type: bytes) -> bool:
    """Whether a text body carries a NUL character (in its raw or encoded form)."""
    ctype = content_type.lower()
    if ctype.startswith(b"multipart/"):
        return _multipart_has_nul(body, ctype, content_type)
    if b"\x00" in body:
        return True
    if b"json" in ctype:
        return _JSON_NUL.search(body) is not None
    if ctype.startswith(b"application/x-www-form-urlencoded"):
        return b"%00" in body
    return False


def _multipart_has_nul(body: bytes, ctype: bytes, raw_ctype: bytes) -> bool:
    """A NUL in a form field of a multipart body (files may hold any bytes)."""
    m = _BOUNDARY.search(raw_ctype)
    if not m:
        return False
    for part in body.split(b"--" + m.group(1)):
        head, sep, content = part.partition(b"\r\n\r\n")
        if sep and b"filename=" not in head.lower() and b"\x00" in content:
            return True
    return False


def query_has_nul(scope: dict[str, Any]) -> bool:
    qs: bytes = scope.get("query_string") or b""
    return "\x00" in scope.get("path", "") or b"\x00" in qs or b"%00" in qs


class InputGuard:
    """ASGI middleware: 413 past the body limit of the route family, 400 for a NUL
    character anywhere text could reach SQL. Bodies of writes are read here (they are
    bounded) and replayed to the app."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        rid = str(scope.get("state", {}).get("request_id") or "")

        async def refuse(status: int, code: str, description: str) -> None:
            response = error_response(None, status, code, description, path=path, rid=rid)
            await response(scope, receive, send)

        if query_has_nul(scope):
            await refuse(400, "InvalidInput", "NUL characters are not allowed in a URL")
            return
        headers = dict(scope.get("headers") or ())
        limit = body_limit(path)
        length = headers.get(b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                await refuse(400, "InvalidInput", "Content-Length must be a number")
                return
            if int(length) > limit:
                await refuse(413, "ContentTooLarge",
                             f"request body larger than {limit // MiB} MiB")
                return
        if scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await refuse(413, "ContentTooLarge",
                             f"request body larger than {limit // MiB} MiB")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if has_nul(body, headers.get(b"content-type", b"")):
            await refuse(400, "InvalidInput", "NUL characters are not allowed in text")
            return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # type: ignore[no-any-return]

        await self.app(scope, replay, send)
