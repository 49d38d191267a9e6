"""Vector tile API over real HTTP: OGC API – Tiles, composite tiles, ETag/304, cache
invalidation on write, access control, TileJSON."""

from __future__ import annotations

import time

import mapbox_vector_tile
import morecantile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from server.app import create_app
from tests.layers.test_mvt import add_building, build_area, drop_area, tile_at
from tests.server.helpers import token_for

HERE = (108.66, 15.45)
MVT = "application/vnd.mapbox-vector-tile"


@pytest.fixture(scope="module")
def area(engine):
    ids = build_area(engine, *HERE)
    yield ids
    drop_area(engine)


@pytest.fixture(scope="module")
def client(settings, area):
    with TestClient(create_app(settings)) as c:
        yield c


def url(layer: str, z: int, x: int, y: int) -> str:
    return f"/collections/{layer}/tiles/WebMercatorQuad/{z}/{x}/{y}"


def decode(r) -> dict:  # type: ignore[no-untyped-def]
    # httpx undoes Content-Encoding: r.content is the plain MVT
    return mapbox_vector_tile.decode(r.content)


def test_building_tile(client, area):
    t = tile_at(*HERE, 14)
    r = client.get(url("buildings", t.z, t.x, t.y), headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == MVT
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["etag"].startswith('W/"')
    assert r.headers["cache-control"].startswith("public, max-age=")
    assert "Authorization" in r.headers["vary"] and "Accept-Encoding" in r.headers["vary"]
    tile = decode(r)
    assert sorted(f["id"] for f in tile["buildings"]["features"]) == sorted(area["buildings"])
    props = set().union(*(f["properties"] for f in tile["buildings"]["features"]))
    assert props <= {"name", "use", "levels", "height_m", "address", "ward", "area_m2"}
    # without gzip the same tile comes plain
    plain = client.get(url("buildings", t.z, t.x, t.y), headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    assert mapbox_vector_tile.decode(plain.content).keys() == tile.keys()


def test_composite_tile_has_several_layers(client, area):
    t = tile_at(*HERE, 14)
    r = client.get(f"/tiles/water,landuse,roads,buildings,places/{t.z}/{t.x}/{t.y}.mvt")
    assert r.status_code == 200, r.text
    tile = decode(r)
    assert {"roads", "buildings"} <= set(tile)
    # at z10 buildings are out of range and simply left out
    t10 = tile_at(*HERE, 10)
    r10 = client.get(f"/tiles/roads,buildings/{t10.z}/{t10.x}/{t10.y}.mvt")
    assert r10.status_code == 200 and set(decode(r10)) == {"roads"}


def test_etag_304_and_invalidation_on_write(client, engine, area):
    t = tile_at(*HERE, 14)
    u = url("buildings", t.z, t.x, t.y)
    first = client.get(u)
    etag = first.headers["etag"]
    again = client.get(u, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag and not again.content
    svc = client.app.state.tiles
    hits = svc.cache.hits
    assert client.get(u).status_code == 200 and svc.cache.hits == hits + 1
    # a write from another connection: trigger → NOTIFY → listener → new versions
    box = morecantile.tms.get("WebMercatorQuad").bounds(t)
    with engine.begin() as conn:
        new_id = add_building(conn, box.left + 0.002, box.bottom + 0.002, name="New")
    deadline = time.monotonic() + 10
    r = client.get(u)
    while r.headers["etag"] == etag and time.monotonic() < deadline:
        time.sleep(0.05)
        r = client.get(u)
    assert r.headers["etag"] != etag
    assert new_id in {f["id"] for f in decode(r)["buildings"]["features"]}
    assert client.get(u, headers={"If-None-Match": etag}).status_code == 200
    assert client.get(u, headers={"If-None-Match": r.headers["etag"]}).status_code == 304


def test_concurrent_misses_render_once(client, area):
    """Requests for a tile being rendered wait for that render (cache on)."""
    from concurrent.futures import ThreadPoolExecutor

    svc = client.app.state.tiles
    real, calls = svc.render, []

    def slow_render(*args):  # type: ignore[no-untyped-def]
        calls.append(args)
        time.sleep(0.3)  # a slow render (work, not a wait): the others must queue on it
        return real(*args)

    t = tile_at(*HERE, 13)
    svc.cache.clear()
    svc.render = slow_render
    try:
        with ThreadPoolExecutor(6) as pool:
            rs = list(pool.map(lambda _: client.get(url("buildings", t.z, t.x, t.y)), range(6)))
    finally:
        del svc.render  # back to the method
    assert {r.status_code for r in rs} == {200}
    assert len({r.content for r in rs}) == 1
    assert len(calls) == 1


def test_versions_fall_back_to_the_database_without_listener(client, engine, area):
    t = tile_at(*HERE, 15)
    u = url("buildings", t.z, t.x, t.y)
    svc = client.app.state.tiles
    svc.tracker.stop()
    try:
        etag = client.get(u).headers["etag"]
        with engine.begin() as conn:
            conn.execute(text("UPDATE building SET height_m = height_m + 1 WHERE source = "
                              "'test-tiles'"))
        assert client.get(u).headers["etag"] != etag  # read per request, no waiting
    finally:
        svc.tracker.start()
        assert svc.tracker.wait_live(10)


def test_dropped_pool_connections_are_retried(client, engine, area):
    """The tile pool does not ping: a connection the server killed is replaced."""
    t = tile_at(*HERE, 14)
    client.app.state.tiles.cache.clear()
    assert client.get(url("buildings", t.z, t.x, t.y)).status_code == 200
    with engine.connect() as conn:
        killed = conn.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'twin-tiles' AND datname = current_database()"
        )).scalar_one()
    assert killed >= 1
    client.app.state.tiles.cache.clear()
    r = client.get(url("buildings", t.z, t.x, t.y))
    assert r.status_code == 200, r.text
    assert len(decode(r)["buildings"]["features"]) >= len(area["buildings"])


def test_bad_tiles_are_4xx_never_500(client):
    for path in [url("buildings", 25, 0, 0), url("buildings", 14, 1 << 14, 0),
                 url("buildings", 14, 0, -1), url("buildings", 12, 0, 0),
                 url("nope", 14, 0, 0), "/collections/buildings/tiles/WorldCRS84Quad/14/0/0",
                 "/tiles/roads,nope/14/0/0.mvt", "/tiles/roads/-1/0/0.mvt"]:
        r = client.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert r.json()["description"]
    for path in [url("buildings", "x", 0, 0), url("buildings", 14, 1.5, 0),
                 "/tiles/roads/14/0/abc.mvt"]:
        r = client.get(path)
        assert r.status_code in (400, 422), (path, r.status_code)


def test_empty_tiles_204_inside_the_limits_404_outside(client, area):
    """OGC API - Tiles core: outside the tileset's tileMatrixSetLimits a tile is 404;
    inside them an empty tile is 204. The basemap declares no limits: 204."""
    r = client.get(url("buildings", 16, 0, 0))
    assert r.status_code == 404 and "tileMatrixSetLimits" in r.json()["description"]
    r = client.get("/tiles/buildings/16/0/0.mvt")
    assert r.status_code == 204 and not r.content and r.headers["etag"]
    ts = client.get("/collections/buildings/tiles/WebMercatorQuad").json()
    lim = ts["tileMatrixSetLimits"][-1]
    z, x, y = int(lim["tileMatrix"]), lim["minTileCol"], lim["minTileRow"]
    assert client.get(url("buildings", z, x, y)).status_code in (200, 204)
    assert client.get(url("buildings", z, x - 1, y)).status_code == 404


def test_tiles_have_an_mvt_alias_and_the_basemap_a_tileset(client, area):
    t = tile_at(*HERE, 15)
    plain, alias = client.get(url("buildings", t.z, t.x, t.y)), \
        client.get(url("buildings", t.z, t.x, t.y) + ".mvt")
    assert plain.status_code == alias.status_code == 200 and plain.content == alias.content
    links = client.get("/collections/buildings/tiles/WebMercatorQuad").json()["links"]
    assert any(lk["href"].endswith("{tileRow}.mvt") for lk in links)
    basemap = next(ts for ts in client.get("/tiles").json()["tilesets"]
                   if ts["title"] == "Basemap")
    self_href = next(lk["href"] for lk in basemap["links"] if lk["rel"] == "self")
    r = client.get(self_href.replace("http://testserver", ""))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["dataType"] == "vector" and {lyr["id"] for lyr in body["layers"]} >= {"roads"}
    assert any(lk["rel"] == "item" for lk in body["links"])


def test_staff_layer_needs_a_staff_token(client, engine):
    t = tile_at(*HERE, 14)
    assert client.get(url("water_network", t.z, t.x, t.y)).status_code == 404
    assert client.get(f"/tiles/roads,water_network/{t.z}/{t.x}/{t.y}.mvt").status_code == 404
    assert client.get("/collections/water_network/tiles/WebMercatorQuad").status_code == 404
    auth = token_for(client, engine, "responder")
    # a tile inside the staff layer's tileset limits (outside them any tile is 404)
    ts = client.get("/collections/water_network/tiles/WebMercatorQuad", headers=auth)
    assert ts.status_code == 200
    lim = next(x for x in ts.json()["tileMatrixSetLimits"] if x["tileMatrix"] == str(t.z))
    inside = (t.z, lim["minTileCol"], lim["minTileRow"])
    assert client.get(url("water_network", *inside)).status_code == 404  # still hidden
    r = client.get(url("water_network", *inside), headers=auth)
    assert r.status_code in (200, 204)
    assert r.headers["cache-control"].startswith("private")
    r = client.get(f"/tiles/roads,water_network/{t.z}/{t.x}/{t.y}.mvt", headers=auth)
    assert r.status_code == 200 and r.headers["cache-control"].startswith("private")
    citizen = token_for(client, engine, "citizen")
    assert client.get(url("water_network", t.z, t.x, t.y), headers=citizen).status_code == 404
    assert client.get(url("buildings", t.z, t.x, t.y),
                      headers={"Authorization": "Bearer bad"}).status_code == 401


def test_tilejson(client, area):
    tj = client.get("/collections/buildings/tiles/WebMercatorQuad/tilejson.json").json()
    assert tj["tilejson"] == "3.0.0"
    assert tj["tiles"][0].startswith("http") and tj["tiles"][0].endswith("/{z}/{x}/{y}")
    assert tj["minzoom"] == 13 and tj["maxzoom"] == 22
    w, s, e, n = tj["bounds"]  # holds the test buildings (near the z14 tile's centre)
    box = morecantile.tms.get("WebMercatorQuad").bounds(tile_at(*HERE, 14))
    cx, cy = (box.left + box.right) / 2, (box.bottom + box.top) / 2
    assert w <= cx <= e and s <= cy <= n
    assert len(tj["center"]) == 3
    (vl,) = tj["vector_layers"]
    assert vl["id"] == "buildings" and vl["fields"]["height_m"] == "Number"
    comp = client.get("/tiles/water,roads,buildings/tilejson.json").json()
    assert comp["tilejson"] == "3.0.0" and comp["minzoom"] == 0
    assert [v["id"] for v in comp["vector_layers"]] == ["water", "roads", "buildings"]
    assert comp["tiles"][0].endswith("/tiles/water,roads,buildings/{z}/{x}/{y}.mvt")
    assert client.get("/tiles/roads,water_network/tilejson.json").status_code == 404
    listed = client.get("/tiles").json()["tilesets"]
    basemap = next(ts for ts in listed if ts["title"] == "Basemap")
    item = next(lk for lk in basemap["links"] if lk["rel"] == "item")["href"]
    assert "buildings" in item and "water_network" not in item and item.endswith(".mvt")
    assert len(listed) == 1 + len(client.app.state.catalog.visible(None))


def test_ogc_tiles_metadata(client, area):
    sets = client.get("/tileMatrixSets").json()["tileMatrixSets"]
    assert [s["id"] for s in sets] == ["WebMercatorQuad"]
    tms = client.get("/tileMatrixSets/WebMercatorQuad").json()
    assert tms["id"] == "WebMercatorQuad" and len(tms["tileMatrices"]) >= 24
    assert client.get("/tileMatrixSets/Nope").status_code == 404
    tilesets = client.get("/collections/buildings/tiles").json()["tilesets"]
    assert tilesets[0]["dataType"] == "vector"
    ts = client.get("/collections/buildings/tiles/WebMercatorQuad").json()
    item = next(lk for lk in ts["links"] if lk["rel"] == "item")
    assert item["templated"] and "{tileMatrix}" in item["href"] and item["type"] == MVT
    assert ts["layers"][0]["propertiesSchema"]["properties"]["height_m"]["type"] == "number"
    z14 = next(lim for lim in ts["tileMatrixSetLimits"] if lim["tileMatrix"] == "14")
    t = tile_at(*HERE, 14)
    assert z14["minTileCol"] <= t.x <= z14["maxTileCol"]
    assert z14["minTileRow"] <= t.y <= z14["maxTileRow"]


def test_invalidation_reaches_every_worker(settings, engine, area):
    """Two uvicorn workers, each with its own listener and cache: after a write no
    worker keeps serving the old tile."""
    import httpx

    from tests.server.livesrv import serve

    b14 = morecantile.tms.get("WebMercatorQuad").bounds(tile_at(*HERE, 14))
    cx, cy = (b14.left + b14.right) / 2, (b14.bottom + b14.top) / 2  # the test buildings
    t = tile_at(cx + 0.0001, cy + 0.0001, 16)
    with serve(settings, workers=2) as base:
        u = base + url("buildings", t.z, t.x, t.y)
        with httpx.Client() as http:
            deadline = time.monotonic() + 20
            old = None
            # warm both workers' caches (new connections land on either process)
            for _ in range(20):
                with httpx.Client() as fresh:
                    r = fresh.get(u)
                assert r.status_code == 200
                old = old or r.headers["etag"]
                assert r.headers["etag"] == old
            assert time.monotonic() < deadline
            with engine.begin() as conn:
                new_id = add_building(conn, cx + 0.002, cy + 0.002, name="Late")
            # Each worker learns of the write through its own listener: poll until 20
            # fresh connections in a row (landing on either worker) see the new tile.
            deadline, fresh_in_a_row = time.monotonic() + 15, 0
            while fresh_in_a_row < 20:
                assert time.monotonic() < deadline, "a worker kept serving the old tile"
                with httpx.Client() as fresh:
                    r = fresh.get(u)
                if r.headers["etag"] == old:
                    fresh_in_a_row = 0
                    continue
                assert new_id in {f["id"] for f in decode(r)["buildings"]["features"]}
                fresh_in_a_row += 1
            assert http.get(u, headers={"If-None-Match": old}).status_code == 200
