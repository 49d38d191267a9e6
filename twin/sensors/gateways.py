"""Sensor gateways and their API keys. A key is shown once when created; only its
SHA-256 is stored (keys are long random tokens, so a fast hash is enough)."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time

from sqlalchemy import Connection, text

from twin.errors import Conflict, InputError

PREFIX = "twk_"
_CACHE_S = 60.0
_cache: dict[str, tuple[int | None, float]] = {}
_lock = threading.Lock()


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def add(conn: Connection, name: str) -> tuple[int, str]:
    """Create a gateway; returns (id, key). The key cannot be read back later."""
    name = (name or "").strip()
    if not name:
        raise InputError("a gateway needs a name")
    if conn.execute(text("SELECT 1 FROM gateway WHERE name = :n"), {"n": name}).first():
        raise Conflict(f"gateway {name!r} exists")
    key = PREFIX + secrets.token_urlsafe(32)
    gid = int(conn.execute(
        text("INSERT INTO gateway (name, key_hash, key_prefix) VALUES (:n, :h, :p) "
             "RETURNING id"),
        {"n": name, "h": _hash(key), "p": key[:10]}).scalar_one())
    return gid, key


def verify(conn: Connection, key: str) -> int | None:
    """The enabled gateway holding ``key`` (cached for a minute per process), or None."""
    if not key or not key.startswith(PREFIX) or len(key) > 200:
        return None
    h = _hash(key)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(h)
        if hit and now - hit[1] < _CACHE_S:
            return hit[0]
    row = conn.execute(
        text("UPDATE gateway SET last_seen_at = now() WHERE key_hash = :h AND enabled "
             "RETURNING id"), {"h": h}).first()
    gid = int(row[0]) if row else None
    with _lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[h] = (gid, now)
    return gid


def forget() -> None:
    """Drop the cache (after a key is revoked)."""
    with _lock:
        _cache.clear()


def revoke(conn: Connection, name: str) -> bool:
    row = conn.execute(text("UPDATE gateway SET enabled = false WHERE name = :n RETURNING id"),
                       {"n": name}).first()
    forget()
    return row is not None
