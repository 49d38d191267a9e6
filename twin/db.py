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


class ReplicaSet:
    """Read engines on streaming replicas, each checked about once a second: a replica
    that is down, not in recovery, or behind the primary by more than ``max_lag_bytes``
    of WAL is skipped, and reads fall back to the primary. ``read_engine()`` picks the
    next healthy replica in turn."""

    def __init__(self, settings: Settings, primary: Engine) -> None:
        import threading

        self.primary = primary
        self.max_lag_bytes = settings.replica_max_lag_bytes
        self.engines = [create_engine(_psycopg(u), pool_size=settings.db_pool_size,
                                      max_overflow=settings.db_pool_size, pool_pre_ping=True,
                                      pool_timeout=5, connect_args={"connect_timeout": 2})
                        for u in settings.replica_urls]
        self.healthy: list[bool] = [False] * len(self.engines)
        self.lag_bytes: list[float | None] = [None] * len(self.engines)
        self.reads = [0] * (len(self.engines) + 1)  # the last one: the primary
        self._next = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.engines:
            self.check()
            self._thread = threading.Thread(target=self._loop, name="replica-check",
                                            daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            self.check()

    def check(self) -> None:
        """Measure each replica's lag behind the primary's current WAL position."""
        try:
            with self.primary.connect() as conn:
                lsn = conn.execute(text("SELECT pg_current_wal_lsn()::text")).scalar_one()
        except Exception:  # noqa: BLE001 - primary away: replicas are judged alone
            lsn = None
        for i, eng in enumerate(self.engines):
            try:
                with eng.connect() as conn:
                    standby, lag = conn.execute(text(
                        "SELECT pg_is_in_recovery(), CASE WHEN CAST(:lsn AS pg_lsn) IS NULL "
                        "THEN 0 ELSE greatest(pg_wal_lsn_diff(CAST(:lsn AS pg_lsn), "
                        "pg_last_wal_replay_lsn()), 0) END"), {"lsn": lsn}).one()
                self.lag_bytes[i] = float(lag)
                self.healthy[i] = bool(standby) and float(lag) <= self.max_lag_bytes
            except Exception:  # noqa: BLE001 - down or unreachable: skipped
                self.healthy[i], self.lag_bytes[i] = False, None

    def pick(self) -> int | None:
        """The index of the next healthy replica in turn (None: none is healthy)."""
        n = len(self.engines)
        for k in range(n):
            i = (self._next + k) % n
            if self.healthy[i]:
                self._next = i + 1
                return i
        return None

    def read_engine(self) -> Engine:
        i = self.pick()
        self.reads[-1 if i is None else i] += 1
        return self.primary if i is None else self.engines[i]

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for eng in self.engines:
            eng.dispose()


def _psycopg(url: str) -> str:
    from twin.bus import sqlalchemy_url

    return sqlalchemy_url(url)
