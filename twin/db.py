"""Engines and connections. Functions in ``twin`` and ``layers`` take a connection."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, text

from twin.settings import Settings


def make_engine(settings: Settings, pool_size: int | None = None) -> Engine:
    """A pooled engine on the configured database (psycopg 3)."""
    size = pool_size or settings.db_pool_size
    return create_engine(
        settings.url(),
        pool_size=size,
        max_overflow=size,
        # no pre-ping: it costs a round trip per checkout on the hot tile/feature paths;
        # recycled connections and the pool's invalidation on error cover restarts
        pool_recycle=1800,
        future=True,
    )


def ping(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False
