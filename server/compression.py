"""Compressed answers: brotli when the client accepts ``br``, else gzip (Starlette's).

JSON, GeoJSON, CSV, HTML and scripts from 1 KiB are compressed; answers that already
carry a ``Content-Encoding`` (tiles, precompressed vendor bundles) and excluded types
(event streams, images, vector tiles) pass untouched. A streamed answer is compressed
chunk by chunk (each chunk flushed), so nothing waits for the end.
"""

from __future__ import annotations

from typing import Any

import brotli
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BROTLI_QUALITY = 4  # answers made per request: fast, still ~15-25 % under gzip level 5


def accepted_encodings(header: str) -> set[str]:
    """The content codings an ``Accept-Encoding`` header accepts (q > 0), lower case."""
    out: set[str] = set()
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        name = name.strip().lower()
        if not name:
            continue
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if q > 0:
            out.add(name)
    return out


class Compression:
    """``br`` for clients that accept it, otherwise :class:`GZipMiddleware`."""

    def __init__(self, app: ASGIApp, minimum_size: int = 1024, compresslevel: int = 5,
                 exclude_content_types: tuple[str, ...] = (),
                 brotli_quality: int = BROTLI_QUALITY) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.excluded = exclude_content_types
        self.quality = brotli_quality
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size, compresslevel=compresslevel,
                                   exclude_content_types=exclude_content_types)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        accepted = accepted_encodings(Headers(scope=scope).get("accept-encoding", ""))
        if "br" in accepted:
            await _BrotliResponder(self, send).run(scope, receive)
        else:
            await self.gzip(scope, receive, send)


class _BrotliResponder:
    def __init__(self, mw: Compression, send: Send) -> None:
        self.mw, self.send = mw, send
        self.start: Message | None = None
        self.passthrough = False
        self.compressor: Any = None

    async def run(self, scope: Scope, receive: Receive) -> None:
        await self.mw.app(scope, receive, self.on_send)

    async def on_send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            headers = Headers(raw=message["headers"])
            self.passthrough = ("content-encoding" in headers
                                or headers.get("content-type", "").startswith(self.mw.excluded))
            if self.passthrough:
                await self.send(message)
            else:
                self.start = message
            return
        if kind != "http.response.body" or self.passthrough:
            await self.send(message)
            return
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        if self.start is not None:  # the first body message decides
            start, self.start = self.start, None
            headers = MutableHeaders(raw=start["headers"])
            if not more and len(body) < self.mw.minimum_size:
                await self.send(start)
                await self.send(message)
                return
            headers["Content-Encoding"] = "br"
            headers.add_vary_header("Accept-Encoding")
            if not more:
                packed = brotli.compress(body, quality=self.mw.quality)
                headers["Content-Length"] = str(len(packed))
                await self.send(start)
                await self.send({"type": "http.response.body", "body": packed})
                return
            if "content-length" in headers:
                del headers["Content-Length"]
            self.compressor = brotli.Compressor(quality=self.mw.quality)
            await self.send(start)
        if self.compressor is None:  # a body after a complete one: nothing to add
            await self.send(message)
            return
        chunk = self.compressor.process(body)
        chunk += self.compressor.flush() if more else self.compressor.finish()
        await self.send({"type": "http.response.body", "body": chunk, "more_body": more})
