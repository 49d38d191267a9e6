"""The notify bus (twin/bus.py) against a real PostgreSQL and a real redis-server:
one reconnect policy for both backends, the relay PostgreSQL → Redis and its takeover."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from layers.versions import VersionTracker
from tests.redissrv import RedisServer, redis_server
from twin.bus import RELAY_LOCK, Backoff, Bus, Message
from twin.settings import Settings


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis")) as srv:
        yield srv


def bump(engine: Engine, table: str = "g_bus_probe") -> int:
    """A table version change and its notification, in one transaction (as the triggers do)."""
    with engine.begin() as conn:
        v = conn.execute(text(
            "INSERT INTO table_version (table_name, version) VALUES (:t, 1) "
            "ON CONFLICT (table_name) DO UPDATE SET version = table_version.version + 1 "
            "RETURNING version"), {"t": table}).scalar_one()
        conn.execute(text("SELECT pg_notify('twin_table', :t)"), {"t": table})
    return int(v)


def wait_for(pred, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return bool(pred())


def into(q: queue.Queue[Message]):  # type: ignore[no-untyped-def]
    def put(batch: list[Message]) -> None:
        for m in batch:
            q.put(m)
    return put


def terminate(engine: Engine, where: str) -> int:
    with engine.connect() as conn:
        return len(conn.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = current_database() AND {where}")).all())


def test_backoff_doubles_to_five_seconds_and_resets() -> None:
    b = Backoff()
    seen = []
    for _ in range(8):
        seen.append(b.delay)
        b.delay = min(b.delay * b.FACTOR, b.MAX)
    assert seen[:3] == [0.2, 0.4, 0.8] and seen[-1] == 5.0
    b.reset()
    assert b.delay == 0.2


def test_postgres_subscription_reconnects_and_resumes(settings: Settings, engine: Engine) -> None:
    got: queue.Queue[Message] = queue.Queue()
    connects: list[float] = []
    bus = Bus(settings.url())
    sub = bus.subscribe(["twin_live"], into(got),
                        name="g-bus-test", on_connect=lambda: connects.append(time.monotonic()))
    try:
        assert sub.wait_live(10)
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_notify('twin_live', 'one')"))
        assert got.get(timeout=5) == ("twin_live", "one")
        assert terminate(engine, "application_name = 'g-bus-test'") == 1
        assert wait_for(lambda: sub.connects == 2)  # the policy brings it back …
        assert len(connects) == 2 and sub.live
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_notify('twin_live', 'two')"))
        assert got.get(timeout=5) == ("twin_live", "two")  # … and it hears again
    finally:
        sub.stop()
    assert not sub.live


def test_redis_tracker_survives_a_redis_restart(settings: Settings, engine: Engine,
                                                redis: RedisServer) -> None:
    bus = Bus(settings.url(), redis.url)
    tracker = VersionTracker(settings.url(), bus=bus)
    tracker.start()
    try:
        assert tracker.wait_live(10)
        assert bus.relay is not None and bus.relay.leader.wait(10)
        v = bump(engine)
        assert wait_for(lambda: tracker.versions(["g_bus_probe"]) == (("g_bus_probe", v),), 5)
        assert tracker.notifications >= 1 and bus.relay.forwarded >= 1
        sub = tracker.subscription
        assert sub is not None and sub.connects == 1
        redis.restart()
        # the subscriber and the relay both notice, wait by the policy and come back
        assert wait_for(lambda: sub.connects >= 2 and tracker.live, 15)
        assert wait_for(lambda: bus.relay is not None and bus.relay.leader.is_set(), 15)
        before = tracker.notifications
        v = bump(engine)
        assert wait_for(lambda: tracker.versions(["g_bus_probe"]) == (("g_bus_probe", v),), 5)
        assert tracker.notifications > before  # by a notification, not by the recheck
    finally:
        tracker.stop()
    assert bus.relay is None  # the last subscription gone: the relay stops


def test_one_relay_per_database_and_takeover(settings: Settings, engine: Engine,
                                             redis: RedisServer) -> None:
    a, b = Bus(settings.url(), redis.url), Bus(settings.url(), redis.url)
    got: queue.Queue[Message] = queue.Queue()
    sub_a = a.subscribe(["twin_live"], into(got), name="g-a")
    sub_b = b.subscribe(["twin_live"], lambda batch: None, name="g-b")
    try:
        assert sub_a.wait_live(10) and sub_b.wait_live(10)
        assert a.relay is not None and b.relay is not None
        assert wait_for(lambda: a.relay.leader.is_set() or b.relay.leader.is_set())  # type: ignore[union-attr]
        time.sleep(1.0)
        assert a.relay.leader.is_set() != b.relay.leader.is_set()  # exactly one forwards
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_notify('twin_live', 'once')"))
        assert got.get(timeout=5) == ("twin_live", "once")
        time.sleep(0.5)
        assert got.empty()  # not twice
        leads = a.relay.sub.connects + b.relay.sub.connects
        n = terminate(engine, "pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' "
                      f"AND objid = {RELAY_LOCK} AND granted)")
        assert n == 1  # the leader's connection is killed: some relay leads again
        assert wait_for(lambda: a.relay.sub.connects + b.relay.sub.connects > leads)  # type: ignore[union-attr]
        assert a.relay.leader.is_set() != b.relay.leader.is_set()
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_notify('twin_live', 'again')"))
        assert got.get(timeout=5) == ("twin_live", "again")
        # the leading process goes away: the standby takes the lock within its retry
        leader, other = (a.relay, b.relay) if a.relay.leader.is_set() else (b.relay, a.relay)
        leader.stop()
        assert wait_for(lambda: other.leader.is_set(), 5)
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_notify('twin_live', 'after')"))
        assert got.get(timeout=5) == ("twin_live", "after")
        assert wait_for(lambda: other.forwarded >= 1, 2)  # counted just after the publish
    finally:
        sub_a.stop()
        sub_b.stop()
