"""Per-client sliding-window limits on write paths (per worker process): a limiter, and
the middleware that holds every POST / PUT / PATCH / DELETE to it."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from typing import Any

# paths with their own, tighter limits (Open311 reports, failed sign-ins)
OWN_LIMITS = ("/open311/", "/auth/token")
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RateLimiter:
    def __init__(self, limit: int, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window = window_s
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count a hit for ``key``; False (and not counted) when it is over the limit."""
        with self._lock:
            q = self._window(key)
            if len(q) >= self.limit:
                return False
            q.append(time.monotonic())
            return True

    def blocked(self, key: str) -> bool:
        """Over the limit, without counting (with :meth:`note` to count only failures)."""
        with self._lock:
            return len(self._window(key)) >= self.limit

    def note(self, key: str) -> None:
        with self._lock:
            self._window(key).append(time.monotonic())

    def _window(self, key: str) -> deque[float]:
        now = time.monotonic()
        q = self._hits.setdefault(key, deque())
        while q and now - q[0] > self.window:
            q.popleft()
        if len(self._hits) > 10_000:  # forget idle clients
            for k in [k for k, v in self._hits.items() if not v and k != key]:
                del self._hits[k]
        return q


class WriteLimit:
    """ASGI middleware: at most ``per_minute`` writes per client (its token or gateway
    key, else its address); over it, 429 with Retry-After. Reads pass untouched."""

    def __init__(self, app: Any, per_minute: int) -> None:
        self.app = app
        self.limiter = RateLimiter(per_minute)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (scope["type"] != "http" or scope["method"] not in WRITES
                or scope["path"].startswith(OWN_LIMITS)):
            await self.app(scope, receive, send)
            return
        if self.limiter.allow(client_key(scope)):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"code": "TooManyRequests", "description":
                           f"more than {self.limiter.limit} writes a minute from this "
                           "client; retry in a minute"}).encode()
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", b"application/json"), (b"retry-after", b"60"),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def client_key(scope: dict[str, Any]) -> str:
    """Who is writing: a hash of the bearer token or gateway key, else the address."""
    headers = dict(scope.get("headers") or ())
    cred = headers.get(b"authorization") or headers.get(b"x-api-key")
    if cred:
        return "c:" + hashlib.blake2b(cred, digest_size=12).hexdigest()
    client = scope.get("client")
    return "a:" + (client[0] if client else "?")
