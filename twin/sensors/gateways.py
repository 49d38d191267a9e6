"""Sensor gateways and their API keys. A key is shown once when created; only its
SHA-256 is stored (keys are long random tokens, so a fast hash is enough).

A gateway owns the Things whose ``properties.gateway`` is its name (set when it creates
them; staff may set it), and so their Datastreams and Observations: it may write only
those, over HTTP and over MQTT (see ``twin.sensors.broker``)."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time

from sqlalchemy import Connection, text

from twin.errors import Conflict, InputError

PREFIX = "twk_"
OWNER = "gateway"  # the Thing property naming the owning gateway
DEMO = "demo-gateway"
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
    if len(name) > 100 or ":" in name or not name.isprintable() or name == "twin-internal":
        raise InputError("a gateway name has at most 100 printable characters, no colon, "
                         "and is not 'twin-internal'")
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


def remove(conn: Connection, name: str) -> bool:
    """Delete a gateway (its Things stay, owned by no one)."""
    row = conn.execute(text("DELETE FROM gateway WHERE name = :n RETURNING id"),
                       {"n": name}).first()
    forget()
    return row is not None


def rotate(conn: Connection, name: str) -> str:
    """A new key for an enabled gateway (the old one stops working); returns it."""
    key = PREFIX + secrets.token_urlsafe(32)
    row = conn.execute(text("UPDATE gateway SET key_hash = :h, key_prefix = :p WHERE name = :n "
                            "AND enabled RETURNING id"),
                       {"n": name, "h": _hash(key), "p": key[:10]}).first()
    if row is None:
        raise InputError(f"no enabled gateway {name!r}")
    forget()
    return key


def name_of(conn: Connection, gateway_id: int) -> str | None:
    return conn.execute(text("SELECT name FROM gateway WHERE id = :i"),
                        {"i": gateway_id}).scalar()


_OWNER_OF = {
    "Things": "SELECT t.properties ->> 'gateway' FROM thing t WHERE t.id = :i",
    "Datastreams": "SELECT t.properties ->> 'gateway' FROM datastream d JOIN thing t ON "
                   "t.id = d.thing_id WHERE d.id = :i",
    "Observations": "SELECT t.properties ->> 'gateway' FROM observation o JOIN datastream d "
                    "ON d.id = o.datastream_id JOIN thing t ON t.id = d.thing_id WHERE o.id = :i",
}


def owner(conn: Connection, set_name: str, ident: int) -> tuple[bool, str | None]:
    """(exists, owning gateway's name) of a Thing, Datastream or Observation; other
    entities (Sensors, Locations, …) are shared and owned by no gateway."""
    sql = _OWNER_OF.get(set_name)
    if sql is None:
        return True, None
    row = conn.execute(text(sql), {"i": ident}).first()
    return (False, None) if row is None else (True, row[0])


def foreign_datastreams(conn: Connection, name: str, ids: list[int]) -> list[int]:
    """Those of ``ids`` that exist and are not the gateway's own."""
    rows = conn.execute(text(
        "SELECT d.id FROM datastream d JOIN thing t ON t.id = d.thing_id WHERE d.id = ANY(:i) "
        "AND (t.properties ->> 'gateway') IS DISTINCT FROM :n ORDER BY d.id"),
        {"i": ids, "n": name})
    return [r[0] for r in rows]


def adopt(conn: Connection, name: str, thing_ids: list[int]) -> int:
    """Make ``name`` the owner of these Things; returns how many changed."""
    return conn.execute(text(
        "UPDATE thing SET properties = coalesce(properties, '{}'::jsonb) || "
        "jsonb_build_object('gateway', CAST(:n AS text)) WHERE id = ANY(:i) AND "
        "(properties ->> 'gateway') IS DISTINCT FROM :n"), {"n": name, "i": thing_ids}).rowcount
