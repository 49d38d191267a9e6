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
        # a connection the server dropped (restart, idle timeout) is replaced at checkout
        # instead of failing the first request on each worker; the tile service keeps
        # its own non-pinging engine for the hot tile path
        pool_pre_ping=True,
        pool_recycle=1800,
        # a request waiting this long for a connection answers 503, not a hang
        pool_timeout=10,
        future=True,
    )


def ping(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False
