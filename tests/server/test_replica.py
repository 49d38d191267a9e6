"""A real streaming replica of the managed cluster (pg_basebackup + hot standby): feature
and search reads go to it, writes stay on the primary, and a replica that lags or is
down is skipped."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

from server.app import create_app
from tests.server.livesrv import free_port
from twin import localdb
from twin.settings import Settings


@pytest.fixture(scope="module")
def replica(settings: Settings) -> Iterator[tuple[int, str]]:
    base = Settings()
    if not base.managed:
        pytest.fail("the replica test needs the managed cluster (TWIN_DATABASE_URL is set)")
    port = free_port()
    steps = localdb.replica_up(base, port)
    assert steps == {"copied": True, "started": True}
    assert localdb.replica_up(base, port) == {"copied": False, "started": False}  # idempotent
    url = localdb.replica_url(base, port, make_url(settings.url()).database)
    try:
        yield port, url
    finally:
        localdb.replica_down(base, port, remove=True)
        assert not localdb.replica_dir(base, port).exists()


def _until(cond, seconds: float = 15.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_reads_go_to_the_replica_and_writes_to_the_primary(settings, engine, replica) -> None:  # noqa: ANN001
    _, url = replica
    s = settings.model_copy(update={"database_replica_urls": url})
    rep = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO place (kind, name_vi, name_en, rank, geom, source, "
                          "source_id) VALUES ('landmark', 'Chợ Bản Sao', 'Replica Market', 3, "
                          "ST_SetSRID(ST_MakePoint(108.22, 16.06), 4326), 'test-rep', 'p1')"))
    try:
        def on_replica() -> bool:
            with rep.connect() as c:
                return bool(c.execute(text(
                    "SELECT count(*) FROM place WHERE source = 'test-rep'")).scalar_one())
        _until(on_replica)
        with rep.connect() as c:
            assert c.execute(text("SELECT pg_is_in_recovery()")).scalar_one() is True
        with TestClient(create_app(s)) as client:
            rs = client.app.state.replicas
            _until(lambda: rs.healthy[0])
            for _ in range(3):
                items = client.get("/search", params={"q": "cho ban sao"}).json()["items"]
                assert items and items[0]["name_vi"] == "Chợ Bản Sao"
            assert client.get("/collections/places/items").status_code == 200
            assert rs.reads[0] >= 4 and rs.reads[-1] == 0
            metrics = client.get("/metrics", headers={"Authorization": "Bearer x"})
            assert metrics.status_code in (401, 404)  # staff only, as before
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM place WHERE source = 'test-rep'"))
        rep.dispose()


def test_a_lagging_or_stopped_replica_is_skipped(settings, replica) -> None:  # noqa: ANN001
    port, url = replica
    s = settings.model_copy(update={"database_replica_urls": url, "replica_max_lag_bytes": 0})
    rep = create_engine(url, isolation_level="AUTOCOMMIT")
    with TestClient(create_app(s)) as client:
        rs = client.app.state.replicas
        _until(lambda: rs.healthy[0])
        with rep.connect() as c:
            c.execute(text("SELECT pg_wal_replay_pause()"))
        try:
            with client.app.state.engine.begin() as conn:  # WAL the paused replica lacks
                conn.execute(text("SELECT pg_switch_wal()"))
                conn.execute(text("CREATE TEMP TABLE lag_probe AS SELECT 1"))
            _until(lambda: not rs.healthy[0])
            before = rs.reads[-1]
            assert client.get("/search", params={"q": "hai chau"}).status_code == 200
            assert rs.reads[-1] == before + 1  # the primary answered
        finally:
            with rep.connect() as c:
                c.execute(text("SELECT pg_wal_replay_resume()"))
        _until(lambda: rs.healthy[0])
        base = Settings()
        localdb.replica_down(base, port)
        _until(lambda: not rs.healthy[0])
        assert client.get("/search", params={"q": "hai chau"}).status_code == 200
        localdb.replica_up(base, port)
        _until(lambda: rs.healthy[0], 30)
    rep.dispose()
