"""Per-process tile state: a pool for tile queries (and one per streaming replica), the
version listener and the tile cache (``app.state.tiles``, created on first use, closed
with the app).

With replicas configured a missed tile is rendered on a healthy replica (judged by the
app's ``ReplicaSet``) when that replica has caught up with the table versions the tile
is keyed by (read on the same connection, one more round trip per render); otherwise,
or when the replica fails, on the primary. So a tile cached under version *v* never
holds content older than *v*, and a write is visible in the next tile asked for."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import psycopg
from fastapi import FastAPI
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.exc import OperationalError

from layers.catalog import Layer
from layers.mvt import SESSION_OPTIONS, gzip_bytes, layer_bounds, render_tile
from layers.tilecache import TileCache, TileKey
from layers.versions import Versions, VersionTracker
from twin.bus import sqlalchemy_url
from twin.db import ReplicaSet
from twin.errors import DatabaseUnavailable
from twin.settings import Settings

WORLD = (-180.0, -85.0511287798, 180.0, 85.0511287798)
APPLICATION_NAME = "twin-tiles"


class TileService:
    """Per-process tile state: a pool, the version listener and the tile cache.

    The pool is autocommit and does not ping, so a tile costs exactly one round-trip
    (no BEGIN, no ping, no ROLLBACK on return); a connection the server dropped is
    retried once. Its sessions run without JIT and without parallel workers (see
    ``layers.mvt.SESSION_OPTIONS``).
    """

    def __init__(self, settings: Settings,
                 replicas: Callable[[], ReplicaSet | None] | None = None) -> None:
        self.engine = self._pool(settings.url(), settings.db_pool_size)
        self.replica_engines = [self._pool(sqlalchemy_url(u), settings.db_pool_size,
                                           connect_timeout=2)
                                for u in settings.replica_urls]
        self._replicas = replicas or (lambda: None)
        self.replica_renders = [0] * len(self.replica_engines)
        """Tiles rendered on each replica (the rest on the primary)."""
        self.replica_behind = 0
        """Renders sent back to the primary: the replica had not caught up yet."""
        self.cache = TileCache.from_mb(settings.tile_cache_mb)
        self.tracker = VersionTracker(settings.url(), redis_url=settings.redis_url)
        self.tracker.on_change(self.cache.evict_table)
        self.tracker.start()
        self.inflight: dict[TileKey, asyncio.Future[bytes]] = {}
        """Tiles being rendered (touched only on the event loop)."""
        self._bounds: dict[str, tuple[Versions, tuple[float, float, float, float] | None]] = {}

    @staticmethod
    def _pool(url: str, size: int, **connect: object) -> Engine:
        return create_engine(
            url, pool_size=size, max_overflow=0,
            pool_pre_ping=False, pool_recycle=3600, pool_use_lifo=True,
            isolation_level="AUTOCOMMIT",
            connect_args={"options": SESSION_OPTIONS, "application_name": APPLICATION_NAME,
                          **connect},
        )

    def close(self) -> None:
        self.tracker.stop()
        self.engine.dispose()
        for eng in self.replica_engines:
            eng.dispose()

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except OperationalError as exc:
            raise DatabaseUnavailable(f"database unavailable: {exc.orig}") from exc

    def versions(self, tables: Sequence[str]) -> Versions:
        return self.tracker.versions(tables, self.connect)

    def render(self, layers: Sequence[Layer], z: int, x: int, y: int,
               versions: Versions | None = None) -> bytes:
        """The gzipped tile (``b""`` when empty). The pool does not ping, so a
        connection the server dropped fails here: it is discarded and the tile tried
        once more on a fresh one. With ``versions`` (what the tile is keyed by) it may
        be rendered on a replica that has caught up with them."""
        if versions is not None and self.replica_engines:
            body = self._render_on_replica(layers, z, x, y, versions)
            if body is not None:
                return body
        for attempt in (1, 2):
            try:
                with self.engine.connect() as conn:
                    try:
                        raw = render_tile(conn, layers, z, x, y)
                    except psycopg.OperationalError:
                        conn.invalidate()
                        raise
                return gzip_bytes(raw) if raw else b""
            except (psycopg.OperationalError, OperationalError) as exc:
                if attempt == 2:
                    raise DatabaseUnavailable(f"database unavailable: {exc}") from exc
        raise AssertionError("unreachable")

    def _render_on_replica(self, layers: Sequence[Layer], z: int, x: int, y: int,
                           versions: Versions) -> bytes | None:
        rs = self._replicas()
        i = rs.pick() if rs is not None else None
        if i is None or i >= len(self.replica_engines):
            return None
        try:
            with self.replica_engines[i].connect() as conn:
                try:
                    rows = conn.exec_driver_sql(
                        "SELECT table_name, version FROM table_version "
                        "WHERE table_name = ANY(%(t)s)", {"t": [t for t, _ in versions]}).all()
                    have = {str(r[0]): int(r[1]) for r in rows}
                    if any(have.get(t, 0) < v for t, v in versions):
                        self.replica_behind += 1
                        return None
                    raw = render_tile(conn, layers, z, x, y)
                except psycopg.OperationalError:
                    conn.invalidate()
                    raise
        except (psycopg.OperationalError, OperationalError):
            return None  # the primary answers; the health check will skip this replica
        self.replica_renders[i] += 1
        return gzip_bytes(raw) if raw else b""

    def bounds(self, layer: Layer) -> tuple[float, float, float, float]:
        """The layer's extent (EPSG:4326), recomputed after writes to its tables."""
        versions = self.versions(layer.tables)
        known = self._bounds.get(layer.id)
        if known is None or known[0] != versions:
            with self.connect() as conn:
                known = (versions, layer_bounds(conn, layer))
            self._bounds[layer.id] = known
        return known[1] or WORLD


_service_lock = threading.Lock()


def service(app: FastAPI) -> TileService:
    """The app's tile service, created on first use."""
    svc: TileService | None = getattr(app.state, "tiles", None)
    if svc is None:
        with _service_lock:
            svc = getattr(app.state, "tiles", None)
            if svc is None:
                svc = TileService(app.state.settings,
                                  lambda: getattr(app.state, "replicas", None))
                app.state.tiles = svc
    return svc
