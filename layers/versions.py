"""Current table versions in memory, kept up to date by ``LISTEN twin_table``.

Every write to a feature table bumps its row in ``table_version`` (a statement
trigger) and sends ``pg_notify('twin_table', <table>)`` at commit. A
:class:`VersionTracker` reads ``table_version`` once, then re-reads it whenever a
notification arrives, through the notify bus (``twin/bus.py``: PostgreSQL LISTEN or
Redis pub/sub, one reconnect policy) in a daemon thread. Each
process (each uvicorn worker) runs its own tracker, so a write made by any process
reaches all of them.

While the listener is down (not yet connected, connection lost), :meth:`versions`
reads ``table_version`` through the caller's connection instead, so answers stay right,
only slower. Versions held in memory may lag the database by the notification delay but
never lead it: content rendered after reading version *v* is at least as new as *v*.

Plain Python: no web framework here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager

from sqlalchemy import Connection

from twin.bus import Bus, Message, Subscription, bus_for, libpq_url

__all__ = ["CHANNEL", "VersionTracker", "Versions", "libpq_url"]

log = logging.getLogger("twin.layers.versions")

CHANNEL = "twin_table"
APPLICATION_NAME = "twin-versions"
_SELECT = "SELECT table_name, version FROM table_version"

Versions = tuple[tuple[str, int], ...]
"""(table, version) pairs, in the order asked for."""


class VersionTracker:
    """Table versions of one process, pushed by PostgreSQL notifications.

    Parameters
    ----------
    url:
        Database URL (SQLAlchemy or libpq form) for the listening connection.
    recheck_seconds:
        Re-read all versions this often even without notifications (heals a missed
        notification and detects a dead connection).
    redis_url:
        Listen on Redis instead of PostgreSQL (see ``twin.bus``).
    """

    def __init__(self, url: str, *, recheck_seconds: float = 10.0,
                 redis_url: str | None = None, bus: Bus | None = None) -> None:
        self._url = libpq_url(url)
        self._bus = bus or bus_for(url, redis_url)
        self._sub: Subscription | None = None
        self._reader: object | None = None
        self._last = 0.0
        self._recheck = recheck_seconds
        self._versions: dict[str, int] = {}
        self._lock = threading.Lock()
        self._live = threading.Event()
        self._callbacks: list[Callable[[str, int], object]] = []
        self.notifications = 0
        """Notifications received (for tests and metrics)."""

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start listening in a daemon thread (returns at once)."""
        if self._sub is not None:
            return
        self._sub = self._bus.subscribe(
            [CHANNEL], self._on_messages, name=APPLICATION_NAME,
            on_connect=self._connected, on_disconnect=self._disconnected,
            on_idle=self._on_idle)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and close the connection."""
        sub, self._sub = self._sub, None
        if sub is not None:
            sub.stop(timeout)
        self._live.clear()
        self._close_reader()

    @property
    def subscription(self) -> Subscription | None:
        """The bus subscription (for tests: its ``connects``)."""
        return self._sub

    @property
    def live(self) -> bool:
        """True while the listener is connected and its versions are current."""
        return self._live.is_set()

    def wait_live(self, timeout: float = 5.0) -> bool:
        return self._live.wait(timeout)

    def on_change(self, callback: Callable[[str, int], object]) -> None:
        """Call ``callback(table, new_version)`` after each version change."""
        self._callbacks.append(callback)

    # -- reading ---------------------------------------------------------------------

    def versions(
        self,
        tables: Iterable[str],
        connect: Callable[[], AbstractContextManager[Connection]] | None = None,
    ) -> Versions:
        """Current versions of ``tables`` (0 for a table never written).

        From memory while the listener is live; otherwise read from the database
        through ``connect()`` (a context manager giving a connection).
        """
        tables = tuple(tables)
        if self._live.is_set() or connect is None:
            with self._lock:
                return tuple((t, self._versions.get(t, 0)) for t in tables)
        with connect() as conn:
            rows = conn.exec_driver_sql(
                _SELECT + " WHERE table_name = ANY(%(t)s)", {"t": list(tables)}
            ).all()
        found = {str(r[0]): int(r[1]) for r in rows}
        return tuple((t, found.get(t, 0)) for t in tables)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._versions)

    # -- the listener ----------------------------------------------------------------

    def _apply(self, rows: Iterable[tuple[str, int]]) -> None:
        changed: list[tuple[str, int]] = []
        with self._lock:
            for table, version in rows:
                if self._versions.get(table) != version:
                    self._versions[table] = version
                    changed.append((table, version))
        for table, version in changed:
            for cb in self._callbacks:
                try:
                    cb(table, version)
                except Exception:  # noqa: BLE001 - a bad callback must not stop listening
                    log.exception("version callback failed for %s", table)

    def _reload(self) -> None:
        if self._reader is None:
            import psycopg

            self._reader = psycopg.connect(self._url, autocommit=True, connect_timeout=5,
                                           application_name=APPLICATION_NAME + "-read")
        rows = self._reader.execute(_SELECT).fetchall()  # type: ignore[attr-defined]
        self._apply((str(t), int(v)) for t, v in rows)
        self._last = time.monotonic()

    def _close_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                reader.close()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass

    # subscribed first, then read: no write can fall between the two
    def _connected(self) -> None:
        self._close_reader()
        self._reload()
        self._live.set()

    def _disconnected(self) -> None:
        self._live.clear()
        self._close_reader()

    def _on_messages(self, batch: list[Message]) -> None:
        self.notifications += len(batch)
        self._reload()  # once for the whole batch

    def _on_idle(self) -> None:
        if time.monotonic() - self._last >= self._recheck:
            self._reload()
