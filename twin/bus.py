"""The notify bus: one way for every process to hear what was committed.

Writers announce changes with ``pg_notify`` inside their own transaction (incidents on
``twin_live``, sensor readings on ``twin_sensor``, table versions on ``twin_table``), so
a notification goes out exactly when, and only if, its change is committed. Listeners
subscribe here, through one of two backends:

- **PostgreSQL** (the default): each subscription holds a ``LISTEN`` connection.
- **Redis** (``TWIN_REDIS_URL``): each subscription is a Redis pub/sub subscriber. One
  :class:`Relay` per database (whoever holds the advisory lock
  :data:`RELAY_LOCK`, any process that has a subscription competes) listens on
  PostgreSQL and publishes every notification to Redis as ``<database>:<channel>`` (Redis
  pub/sub channels are server-wide, so two databases can share one Redis). A
  relay that dies frees its lock with its connection; another process takes over within
  a second. Notifications sent while no relay held the lock are lost: listeners heal
  from the database (table versions are re-read every few seconds, live clients replay
  with ``Last-Event-ID``).

Every subscription and the relay share one reconnect policy (:class:`Backoff`): on any
failure the connection is dropped, ``on_disconnect`` runs, and it reconnects after 0.2 s,
doubling up to 5 s, back to 0.2 s once connected. After each (re)connect, once it is
subscribed, ``on_connect`` runs, so a listener re-reads what it may have missed.

Plain Python, threads only: no web framework here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("twin.bus")

CHANNELS = ("twin_table", "twin_live", "twin_sensor")
"""Every channel the project's writers notify on (what the relay forwards)."""

RELAY_LOCK = 7_345_001
"""The advisory lock key held by the one relay of a database."""

NOT_LEADER_RETRY = 1.0
"""Seconds between a standby relay's tries for the lock."""

Message = tuple[str, str]
"""(channel, payload)."""


def libpq_url(url: str) -> str:
    """A libpq/psycopg connection URL from a SQLAlchemy (``postgresql+psycopg://``) or
    libpq URL: the one such conversion in the project."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def sqlalchemy_url(url: str) -> str:
    """The SQLAlchemy ``postgresql+psycopg`` form of a libpq or SQLAlchemy URL."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


class Backoff:
    """The reconnect policy: 0.2 s after a failure, doubling to 5 s, reset on success."""

    FIRST, FACTOR, MAX = 0.2, 2.0, 5.0

    def __init__(self) -> None:
        self.delay = self.FIRST

    def reset(self) -> None:
        self.delay = self.FIRST

    def wait(self, stop: threading.Event) -> bool:
        """Sleep for the current delay (True when stopped meanwhile), then lengthen it."""
        stopped = stop.wait(self.delay)
        self.delay = min(self.delay * self.FACTOR, self.MAX)
        return stopped


class _Listener(Protocol):
    def receive(self, timeout: float) -> list[Message]: ...

    def close(self) -> None: ...


class NotLeader(Exception):
    """Another process's relay holds the lock."""


class PgListener:
    """``LISTEN`` on a dedicated autocommit psycopg connection."""

    def __init__(self, url: str, channels: Sequence[str], application_name: str,
                 lock: int | None = None) -> None:
        import psycopg

        self.conn = psycopg.connect(libpq_url(url), autocommit=True, connect_timeout=5,
                                    application_name=application_name)
        try:
            if lock is not None:
                got = self.conn.execute("SELECT pg_try_advisory_lock(%s)", (lock,)).fetchone()
                if not (got and got[0]):
                    raise NotLeader
            for ch in channels:
                self.conn.execute(f'LISTEN "{ch}"')
        except BaseException:
            self.conn.close()
            raise

    def receive(self, timeout: float) -> list[Message]:
        out = [(n.channel, n.payload)
               for n in self.conn.notifies(timeout=timeout, stop_after=1)]
        if out:  # drain whatever else has arrived
            out += [(n.channel, n.payload)
                    for n in self.conn.notifies(timeout=0.0, stop_after=1000)]
        return out

    def close(self) -> None:
        self.conn.close()


class RedisListener:
    """A Redis pub/sub subscriber, subscribed (confirmed by the server) on return."""

    def __init__(self, url: str, channels: Sequence[str], database_url: str) -> None:
        self.names = {redis_channel(database_url, ch): ch for ch in channels}
        self.client = redis_client(url)
        self.pubsub = self.client.pubsub()
        try:
            self.pubsub.subscribe(*self.names)
            confirmed = 0
            while confirmed < len(set(channels)):
                m = self.pubsub.get_message(timeout=5.0)
                if m is None:
                    raise ConnectionError("Redis did not confirm the subscription")
                if m["type"] == "subscribe":
                    confirmed += 1
        except BaseException:
            self.close()
            raise

    def receive(self, timeout: float) -> list[Message]:
        out: list[Message] = []
        m = self.pubsub.get_message(timeout=timeout)
        while m is not None:
            if m["type"] == "message":
                ch = _text(m["channel"])
                out.append((self.names.get(ch, ch), _text(m["data"])))
            if len(out) >= 1000:
                break
            m = self.pubsub.get_message(timeout=0.0)
        return out

    def close(self) -> None:
        try:
            self.pubsub.close()
        finally:
            self.client.close()


def redis_channel(database_url: str, channel: str) -> str:
    """The Redis pub/sub channel of a PostgreSQL channel of this database."""
    from sqlalchemy.engine import make_url

    return f"{make_url(database_url).database}:{channel}"


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def redis_client(url: str) -> Any:
    """A Redis client that never retries on its own: :class:`Backoff` is the policy."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=5,
                                socket_keepalive=True)


@dataclass
class Subscription:
    """One listening thread: ``on_messages(batch)`` for what arrives, ``on_idle()`` after
    each quiet ``idle_seconds``, ``on_connect()`` once subscribed (after every reconnect),
    ``on_disconnect()`` when the connection is lost. An exception from any of them counts
    as a lost connection (reconnect by the policy)."""

    connect: Callable[[], _Listener]
    on_messages: Callable[[list[Message]], object]
    name: str
    on_connect: Callable[[], object] | None = None
    on_disconnect: Callable[[], object] | None = None
    on_idle: Callable[[], object] | None = None
    idle_seconds: float = 0.5
    on_stop: Callable[[Subscription], object] | None = None

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._live = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: _Listener | None = None
        self.connects = 0
        """Successful (re)connections (for tests and metrics)."""

    def start(self) -> Subscription:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._live.clear()
        if self.on_stop is not None:
            self.on_stop(self)

    @property
    def live(self) -> bool:
        """True while connected and subscribed (and ``on_connect`` has run)."""
        return self._live.is_set()

    def wait_live(self, timeout: float = 5.0) -> bool:
        return self._live.wait(timeout)

    def _run(self) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            listener: _Listener | None = None
            try:
                listener = self.connect()
                self._listener = listener
                if self.on_connect is not None:
                    self.on_connect()
                self.connects += 1
                self._live.set()
                backoff.reset()
                while not self._stop.is_set():
                    batch = listener.receive(self.idle_seconds)
                    if batch:
                        self.on_messages(batch)
                    elif self.on_idle is not None:
                        self.on_idle()
            except NotLeader:
                if self._stop.wait(NOT_LEADER_RETRY):
                    break
                continue
            except Exception as exc:  # noqa: BLE001 - reconnect on any failure
                if self._live.is_set() and not self._stop.is_set():
                    log.warning("%s lost its connection (%s); reconnecting", self.name, exc)
            finally:
                was_live = self._live.is_set()
                self._live.clear()
                self._listener = None
                if listener is not None:
                    try:
                        listener.close()
                    except Exception:  # noqa: BLE001 - it is gone either way
                        pass
                if was_live and self.on_disconnect is not None:
                    try:
                        self.on_disconnect()
                    except Exception:  # noqa: BLE001
                        log.exception("%s: on_disconnect failed", self.name)
            if self._stop.is_set() or backoff.wait(self._stop):
                break


class Relay:
    """PostgreSQL notifications → Redis, by the one process that holds :data:`RELAY_LOCK`."""

    def __init__(self, database_url: str, redis_url: str,
                 channels: Sequence[str] = CHANNELS) -> None:
        self.redis_url = redis_url
        self.names = {ch: redis_channel(database_url, ch) for ch in channels}
        self.forwarded = 0
        self._redis: Any = None
        self.leader = threading.Event()
        self.sub = Subscription(
            connect=lambda: PgListener(database_url, channels, "twin-relay", lock=RELAY_LOCK),
            on_messages=self._forward, on_connect=self._connected,
            on_disconnect=self.leader.clear, name="twin-relay")

    def _connected(self) -> None:
        if self._redis is None:
            self._redis = redis_client(self.redis_url)
        self._redis.ping()
        self.leader.set()

    def _forward(self, batch: list[Message]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for channel, payload in batch:
            pipe.publish(self.names.get(channel, channel), payload)
        try:
            pipe.execute()
        except Exception:
            self._redis.close()
            self._redis = None  # a fresh client at the next connect
            raise
        self.forwarded += len(batch)

    def start(self) -> None:
        self.sub.start()

    def stop(self) -> None:
        self.sub.stop()
        if self._redis is not None:
            self._redis.close()
            self._redis = None


class Bus:
    """Subscriptions of one process to one database's notifications.

    With ``redis_url`` the subscriptions listen on Redis and this process also runs a
    :class:`Relay` (it forwards only while it holds the lock) for as long as it has any
    subscription.
    """

    def __init__(self, database_url: str, redis_url: str | None = None) -> None:
        self.database_url = database_url
        self.redis_url = redis_url or None
        self._lock = threading.Lock()
        self._subs: set[int] = set()
        self.relay: Relay | None = None

    @property
    def kind(self) -> str:
        return "redis" if self.redis_url else "postgresql"

    def subscribe(self, channels: Sequence[str], on_messages: Callable[[list[Message]], object],
                  *, name: str, on_connect: Callable[[], object] | None = None,
                  on_disconnect: Callable[[], object] | None = None,
                  on_idle: Callable[[], object] | None = None,
                  idle_seconds: float = 0.5, start: bool = True) -> Subscription:
        """Listen on ``channels`` in a daemon thread (started unless ``start=False``)."""
        channels = tuple(channels)
        redis_url = self.redis_url
        connect: Callable[[], _Listener]
        if redis_url is None:
            db = self.database_url
            connect = lambda: PgListener(db, channels, name)  # noqa: E731
        else:
            db = self.database_url
            connect = lambda: RedisListener(redis_url, channels, db)  # noqa: E731
        sub = Subscription(connect=connect, on_messages=on_messages, name=name,
                           on_connect=on_connect, on_disconnect=on_disconnect,
                           on_idle=on_idle, idle_seconds=idle_seconds, on_stop=self._stopped)
        with self._lock:
            self._subs.add(id(sub))
            if redis_url is not None and self.relay is None:
                self.relay = Relay(self.database_url, redis_url)
                self.relay.start()
        return sub.start() if start else sub

    def _stopped(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(id(sub))
            relay = self.relay if not self._subs else None
            if relay is not None:
                self.relay = None
        if relay is not None:
            relay.stop()


_BUSES: dict[tuple[str, str | None], Bus] = {}
_BUSES_LOCK = threading.Lock()


def bus_for(database_url: str, redis_url: str | None = None) -> Bus:
    """The process's bus for this database (and Redis): one relay per process at most."""
    key = (libpq_url(database_url), redis_url or None)
    with _BUSES_LOCK:
        bus = _BUSES.get(key)
        if bus is None:
            bus = _BUSES[key] = Bus(database_url, redis_url)
        return bus
