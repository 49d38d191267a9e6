"""Rate limits shared by every server worker: sliding-window counters in PostgreSQL
(the UNLOGGED ``rate_limit`` table, one upsert per hit), and the middleware that
holds every POST / PUT / PATCH / DELETE to one.

A caller is who it proved to be — the subject of a token we signed, or a gateway whose
key verified — else its address: an unchecked header never opens a fresh budget."""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import jwt
from sqlalchemy import Connection, Engine, text

from server.auth import ALGORITHM
from server.errors import DB_DOWN

# paths with their own, tighter limits (Open311 reports, failed sign-ins)
OWN_LIMITS = ("/open311/", "/auth/token")
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SWEEP_S = 60.0

_HIT = text("""
    INSERT INTO rate_limit AS r (bucket, window_s, win, hits, prev)
    VALUES (:b, :w, floor(extract(epoch FROM clock_timestamp()) / :w)::bigint, 1, 0)
    ON CONFLICT (bucket) DO UPDATE SET
        prev = CASE WHEN EXCLUDED.win <= r.win THEN r.prev
                    WHEN EXCLUDED.win = r.win + 1 THEN r.hits ELSE 0 END,
        hits = CASE WHEN EXCLUDED.win <= r.win THEN r.hits + 1 ELSE 1 END,
        win = GREATEST(r.win, EXCLUDED.win), window_s = EXCLUDED.window_s
    RETURNING win, hits, prev, extract(epoch FROM clock_timestamp()) / :w AS pos""")
_UNCOUNT = text("UPDATE rate_limit SET hits = hits - 1 WHERE bucket = :b AND win = :win")
_PEEK = text("""
    SELECT win, hits, prev, extract(epoch FROM clock_timestamp()) / :w AS pos
    FROM rate_limit WHERE bucket = :b""")
_SWEEP = text("DELETE FROM rate_limit "
              "WHERE (win + 2) * window_s < extract(epoch FROM clock_timestamp())")
_last_sweep = [0.0]
_sweep_lock = threading.Lock()


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int  # seconds until one more hit would be allowed (when refused)


class RateLimiter:
    """At most ``limit`` hits per key in any ``window_s`` seconds (a sliding-window
    estimate: this window's hits plus the last window's, weighted by how much of it
    still overlaps), counted in the database all workers share. ``name`` and the limit
    keep limiters apart. Refused hits are not counted."""

    def __init__(self, engine: Engine, name: str, limit: int, window_s: int = 60) -> None:
        self.engine = engine
        self.name = name
        self.limit = limit
        self.window = window_s

    def hit(self, key: str, conn: Connection | None = None) -> Verdict:
        """Count a hit for ``key``; refused (and not counted) over the limit."""
        if conn is None:
            with self.engine.begin() as own:
                return self.hit(key, own)
        bucket = self._bucket(key)
        row = conn.execute(_HIT, {"b": bucket, "w": self.window}).one()
        _maybe_sweep(conn)
        frac = min(max(float(row.pos) - row.win, 0.0), 1.0)
        if row.prev * (1 - frac) + row.hits <= self.limit:
            return Verdict(True, 0)
        conn.execute(_UNCOUNT, {"b": bucket, "win": row.win})
        return Verdict(False, self._retry_after(row.hits - 1, row.prev, frac))

    def allow(self, key: str) -> bool:
        return self.hit(key).allowed

    def blocked(self, key: str) -> Verdict | None:
        """The refusal when one more hit for ``key`` would be over the limit, without
        counting (with :meth:`note` to count only failures), else None."""
        with self.engine.connect() as conn:
            row = conn.execute(_PEEK, {"b": self._bucket(key), "w": self.window}).first()
        if row is None:
            return None
        now_win = int(float(row.pos))
        frac = float(row.pos) - now_win
        if row.win == now_win:
            hits, prev = row.hits, row.prev
        elif row.win == now_win - 1:
            hits, prev = 0, row.hits
        else:
            return None
        if prev * (1 - frac) + hits + 1 <= self.limit:
            return None
        return Verdict(False, self._retry_after(hits, prev, frac))

    def note(self, key: str) -> None:
        self.hit(key)

    def _bucket(self, key: str) -> str:
        return f"{self.name}/{self.limit}:{key}"

    def _retry_after(self, hits: int, prev: int, frac: float) -> int:
        """Seconds until a next hit fits, given ``hits`` counted in this window, ``prev``
        in the last, and ``frac`` of this window gone."""
        room = self.limit - hits - 1
        if room >= 0 and prev > 0:  # wait for the last window to slide out far enough
            wait = (1 - room / prev) - frac
        else:  # this window is full: next window, once enough of this one slid out
            wait = (1 - frac) + max(0.0, 1 - (self.limit - 1) / max(hits, 1))
        # the sliding estimate can ask for more than a window; a client never waits longer
        return min(self.window, max(1, math.ceil(wait * self.window)))


def _maybe_sweep(conn: Connection) -> None:
    """Forget callers idle for two windows, at most once a minute per worker."""
    now = time.monotonic()
    with _sweep_lock:
        if now - _last_sweep[0] < SWEEP_S:
            return
        _last_sweep[0] = now
    conn.execute(_SWEEP)


def limiter(state: Any, name: str, limit: int) -> RateLimiter:
    """The app's limiter called ``name`` (made on first use, after the lifespan made the
    engine)."""
    limiters: dict[str, RateLimiter] = state.__dict__.setdefault("rate_limiters", {})
    if name not in limiters:
        limiters[name] = RateLimiter(state.engine, name, limit)
    return limiters[name]


class WriteLimit:
    """ASGI middleware: at most ``per_minute`` writes per caller (:func:`caller`); over
    it, 429 with Retry-After. Reads pass untouched."""

    def __init__(self, app: Any, per_minute: int) -> None:
        self.app = app
        self.per_minute = per_minute

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (scope["type"] != "http" or scope["method"] not in WRITES
                or scope["path"].startswith(OWN_LIMITS)):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        limit = limiter(state, "writes", self.per_minute)

        def count() -> Verdict:
            with state.engine.begin() as conn:
                return limit.hit(caller(scope, state.settings, conn), conn)

        try:
            verdict = await anyio.to_thread.run_sync(count)
        except DB_DOWN:
            # the write cannot happen either: let the route answer its 503
            verdict = Verdict(True, 0)
        if verdict.allowed:
            await self.app(scope, receive, send)
            return
        rid = str(scope.get("state", {}).get("request_id") or "")
        body = json.dumps({"code": "TooManyRequests", "description":
                           f"more than {self.per_minute} writes a minute from this "
                           f"client; retry in {verdict.retry_after} s",
                           "request_id": rid}).encode()
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", b"application/json"),
            (b"retry-after", str(verdict.retry_after).encode()),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def caller(scope: dict[str, Any], settings: Any, conn: Connection) -> str:
    """Who is writing: ``u:<name>`` for a token we signed (the route still checks the
    user), ``g:<id>`` for a gateway whose key verified, else ``a:<address>``."""
    from twin.sensors import gateways

    headers = dict(scope.get("headers") or ())
    auth = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token:
        try:
            claims = jwt.decode(token.strip(), settings.signing_key(), algorithms=[ALGORITHM],
                                options={"require": ["exp", "sub"]})
            return f"u:{claims['sub']}"
        except jwt.InvalidTokenError:
            pass
    key = headers.get(b"x-api-key")
    if key:
        gid = gateways.verify(conn, key.decode("latin-1"))
        if gid is not None:
            return f"g:{gid}"
    client = scope.get("client")
    return "a:" + (client[0] if client else "?")
