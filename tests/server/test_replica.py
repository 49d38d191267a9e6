"""A real streaming replica of the managed cluster (pg_basebackup + hot standby): feature,
search, tile and SensorThings reads go to it, writes stay on the primary, a tile is
rendered on the primary while the replica has not caught up with its versions, and a
replica that lags or is down is skipped."""

from __future__ import annotations

import time
from collections.abc import Iterator

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

from server.app import create_app
from tests.layers.test_mvt import add_building, tile_at
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


def test_tiles_and_sensorthings_read_from_the_replica(settings, engine, replica) -> None:  # noqa: ANN001
    _, url = replica
    s = settings.model_copy(update={"database_replica_urls": url})
    rep = create_engine(url, isolation_level="AUTOCOMMIT")
    spot = (108.6352, 15.4251)
    with engine.begin() as conn:
        bids = [add_building(conn, *spot, name="Replica tile")]
        tid = conn.execute(text("INSERT INTO thing (name, description, public) VALUES "
                                "('Trạm bản sao', 'replica probe', true) RETURNING id")
                           ).scalar_one()
    try:
        def on_replica() -> bool:
            with rep.connect() as c:
                return bool(c.execute(text("SELECT count(*) FROM thing WHERE id = :i"),
                                      {"i": tid}).scalar_one())
        _until(on_replica)
        with TestClient(create_app(s)) as client:
            rs, svc = client.app.state.replicas, client.app.state.tiles
            _until(lambda: rs.healthy[0])
            t = tile_at(*spot, 16)
            u = f"/collections/buildings/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}"

            def ids(r) -> set[int]:  # noqa: ANN001
                assert r.status_code == 200, r.text
                return {f["id"] for f in mapbox_vector_tile.decode(r.content)["buildings"][
                    "features"]}

            assert bids[0] in ids(client.get(u))
            assert svc.replica_renders == [1] and svc.replica_behind == 0
            before = rs.reads[0]
            r = client.get(f"/sta/v1.1/Things({tid})")
            assert r.status_code == 200 and r.json()["name"] == "Trạm bản sao"
            r = client.get("/sta/v1.1/Things", params={"$filter": "description eq 'replica probe'"})
            assert [v["@iot.id"] for v in r.json()["value"]] == [tid]
            assert rs.reads[0] == before + 2 and rs.reads[-1] == 0
            # read after write: the replica stops replaying, a building is added on the
            # primary; the tile's versions move on, so the primary renders it
            etag = client.get(u).headers["etag"]
            with rep.connect() as c:
                c.execute(text("SELECT pg_wal_replay_pause()"))
            try:
                with engine.begin() as conn:
                    bids.append(add_building(conn, spot[0] + 0.0004, spot[1] + 0.0004))
                _until(lambda: client.get(u).headers["etag"] != etag)
                assert bids[1] in ids(client.get(u))
                assert svc.replica_behind >= 1 and svc.replica_renders == [1]
            finally:
                with rep.connect() as c:
                    c.execute(text("SELECT pg_wal_replay_resume()"))
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM building WHERE id = ANY(:i)"), {"i": bids})
            conn.execute(text("DELETE FROM thing WHERE id = :i"), {"i": tid})
        rep.dispose()
