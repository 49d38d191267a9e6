"""Current table versions in memory, kept up to date by ``LISTEN twin_table``.

Every write to a feature table bumps its row in ``table_version`` (a statement
trigger) and sends ``pg_notify('twin_table', <table>)`` at commit. A
:class:`VersionTracker` reads ``table_version`` once, then re-reads it whenever a
notification arrives, on a dedicated psycopg connection in a daemon thread. Each
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

log = logging.getLogger("twin.layers.versions")

CHANNEL = "twin_table"
APPLICATION_NAME = "twin-versions"
_SELECT = "SELECT table_name, version FROM table_version"

Versions = tuple[tuple[str, int], ...]
"""(table, version) pairs, in the order asked for."""


def libpq_url(sqlalchemy_url: str) -> str:
    """A libpq/psycopg connection URL from a SQLAlchemy ``postgresql+psycopg`` URL."""
    from sqlalchemy.engine import make_url

    u = make_url(sqlalchemy_url).set(drivername="postgresql")
    return u.render_as_string(hide_password=False)


class VersionTracker:
    """Table versions of one process, pushed by PostgreSQL notifications.

    Parameters
    ----------
    url:
        Database URL (SQLAlchemy or libpq form) for the listening connection.
    recheck_seconds:
        Re-read all versions this often even without notifications (heals a missed
        notification and detects a dead connection).
    """

    def __init__(self, url: str, *, recheck_seconds: float = 10.0) -> None:
        self._url = libpq_url(url) if "+" in url.split("://", 1)[0] else url
        self._recheck = recheck_seconds
        self._versions: dict[str, int] = {}
        self._lock = threading.Lock()
        self._live = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._callbacks: list[Callable[[str, int], object]] = []
        self.notifications = 0
        """Notifications received (for tests and metrics)."""

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start listening in a daemon thread (returns at once)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="twin-versions", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and close the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._live.clear()

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

    def _reload(self, conn: object) -> None:
        rows = conn.execute(_SELECT).fetchall()  # type: ignore[attr-defined]
        self._apply((str(t), int(v)) for t, v in rows)

    def _run(self) -> None:
        import psycopg

        backoff = 0.2
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=5,
                                     application_name=APPLICATION_NAME) as conn:
                    # LISTEN first, then read: no write can fall between the two
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._reload(conn)
                    self._live.set()
                    backoff = 0.2
                    self._listen(conn)
            except Exception as exc:  # noqa: BLE001 - reconnect on any failure
                if self._live.is_set():
                    log.warning("version listener lost its connection: %s", exc)
                self._live.clear()
            finally:
                self._live.clear()
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, 5.0)

    def _listen(self, conn: object) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            got = False
            # wakes on the first notification or after 0.5 s (to check the stop flag)
            for _ in conn.notifies(timeout=0.5, stop_after=1):  # type: ignore[attr-defined]
                got = True
                self.notifications += 1
            if got:
                # drain whatever else arrived, then re-read once
                for _ in conn.notifies(timeout=0.0):  # type: ignore[attr-defined]
                    self.notifications += 1
                self._reload(conn)
                last = time.monotonic()
            elif time.monotonic() - last >= self._recheck:
                self._reload(conn)
                last = time.monotonic()
