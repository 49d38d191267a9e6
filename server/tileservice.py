"""Per-process tile state: a pool for tile queries, the version listener and the tile
cache (``app.state.tiles``, created on first use, closed with the app)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import psycopg
from fastapi import FastAPI
from sqlalchemy import Connection, create_engine
from sqlalchemy.exc import OperationalError

from layers.catalog import Layer
from layers.mvt import SESSION_OPTIONS, gzip_bytes, layer_bounds, render_tile
from layers.tilecache import TileCache, TileKey
from layers.versions import Versions, VersionTracker
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

    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine(
            settings.url(), pool_size=settings.db_pool_size, max_overflow=0,
            pool_pre_ping=False, pool_recycle=3600, pool_use_lifo=True,
            isolation_level="AUTOCOMMIT",
            connect_args={"options": SESSION_OPTIONS, "application_name": APPLICATION_NAME},
        )
        self.cache = TileCache.from_mb(settings.tile_cache_mb)
        self.tracker = VersionTracker(settings.url(), redis_url=settings.redis_url)
        self.tracker.on_change(self.cache.evict_table)
        self.tracker.start()
        self.inflight: dict[TileKey, asyncio.Future[bytes]] = {}
        """Tiles being rendered (touched only on the event loop)."""
        self._bounds: dict[str, tuple[Versions, tuple[float, float, float, float] | None]] = {}

    def close(self) -> None:
        self.tracker.stop()
        self.engine.dispose()

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except OperationalError as exc:
            raise DatabaseUnavailable(f"database unavailable: {exc.orig}") from exc

    def versions(self, tables: Sequence[str]) -> Versions:
        return self.tracker.versions(tables, self.connect)

    def render(self, layers: Sequence[Layer], z: int, x: int, y: int) -> bytes:
        """The gzipped tile (``b""`` when empty). The pool does not ping, so a
        connection the server dropped fails here: it is discarded and the tile tried
        once more on a fresh one."""
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
                svc = TileService(app.state.settings)
                app.state.tiles = svc
    return svc
