"""MVT built in PostGIS: content, declared properties, zooms, caps, versions, cache."""

from __future__ import annotations

import time
import uuid

import mapbox_vector_tile
import morecantile
import pytest
from sqlalchemy import Connection, Engine, text

from layers.catalog import load_catalog
from layers.errors import TileOutOfRange
from layers.mvt import check_tile, gunzip_bytes, gzip_bytes, render_tile, tile_query
from layers.tilecache import TileCache, TileKey
from layers.versions import VersionTracker

SOURCE = "test-tiles"
TMS = morecantile.tms.get("WebMercatorQuad")
# far from the demo city and the shared Đà Nẵng extracts, so other tests' data stay out
HERE = (108.62, 15.41)


def tile_at(lon: float, lat: float, z: int) -> morecantile.Tile:
    return TMS.tile(lon, lat, z)


def _square(lon: float, lat: float, d: float = 0.0001) -> str:
    return (f"SRID=4326;MULTIPOLYGON((({lon} {lat},{lon + d} {lat},{lon + d} {lat + d},"
            f"{lon} {lat + d},{lon} {lat})))")


def add_building(conn: Connection, lon: float, lat: float, **props: object) -> int:
    values = {"name": None, "use": "residential", "levels": 3, "height_m": 10.5,
              "address": "1 Test St", "ward": "Test", "population": 7, "area_m2": 100.0}
    values.update(props)
    return int(conn.execute(
        text("INSERT INTO building (source, source_id, name, use, levels, height_m, address, "
             "ward, population, area_m2, geom) VALUES (:src, :sid, :name, :use, :levels, "
             ":height_m, :address, :ward, :population, :area_m2, ST_GeomFromEWKT(:g)) "
             "RETURNING id"),
        {"src": SOURCE, "sid": uuid.uuid4().hex, "g": _square(lon, lat), **values},
    ).scalar_one())


def add_road(conn: Connection, a: tuple[float, float], b: tuple[float, float],
             road_class: str) -> int:
    nodes = []
    for lon, lat in (a, b):
        nodes.append(conn.execute(
            text("INSERT INTO road_node (source, source_id, geom) VALUES "
                 "(:s, :sid, ST_SetSRID(ST_Point(:x, :y), 4326)) RETURNING id"),
            {"s": SOURCE, "sid": uuid.uuid4().hex, "x": lon, "y": lat},
        ).scalar_one())
    return int(conn.execute(
        text("INSERT INTO road_segment (source, source_id, from_node, to_node, road_class, "
             "name, oneway, maxspeed_kmh, bridge, length_m, cost, reverse_cost, geom) VALUES "
             "(:s, :sid, :f, :t, :c, 'Test road', false, 50, false, 100, 7, 7, "
             "ST_SetSRID(ST_MakeLine(ST_Point(:x1, :y1), ST_Point(:x2, :y2)), 4326)) "
             "RETURNING id"),
        {"s": SOURCE, "sid": uuid.uuid4().hex, "f": nodes[0], "t": nodes[1], "c": road_class,
         "x1": a[0], "y1": a[1], "x2": b[0], "y2": b[1]},
    ).scalar_one())


def build_area(engine: Engine, lon: float, lat: float, n: int = 12) -> dict[str, list[int]]:
    """n buildings, a motorway and a residential street inside the z14 tile at lon/lat."""
    b = TMS.bounds(tile_at(lon, lat, 14))
    cx, cy = (b.left + b.right) / 2, (b.bottom + b.top) / 2
    with engine.begin() as conn:
        buildings = [add_building(conn, cx + (i % 4) * 0.0004, cy + (i // 4) * 0.0004,
                                  name=f"B{i}", height_m=5.0 + i)
                     for i in range(n)]
        motorway = add_road(conn, (b.left + 0.001, cy - 0.001), (b.right - 0.001, cy - 0.001),
                            "motorway")
        street = add_road(conn, (cx, b.bottom + 0.001), (cx, b.top - 0.001), "residential")
    return {"buildings": buildings, "roads": [motorway, street], "motorway": [motorway]}


def drop_area(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in ("road_segment", "road_node", "building"):
            conn.execute(text(f"DELETE FROM {table} WHERE source = :s"), {"s": SOURCE})


def decode(data: bytes) -> dict:  # type: ignore[type-arg]
    return mapbox_vector_tile.decode(data) if data else {}


@pytest.fixture(scope="module")
def catalog(settings):
    return load_catalog(settings.layers_file)


@pytest.fixture(scope="module")
def area(engine):
    ids = build_area(engine, *HERE)
    yield ids
    drop_area(engine)


def test_building_tile_has_the_buildings_and_only_declared_properties(engine, catalog, area):
    t = tile_at(*HERE, 14)
    layer = catalog.get("buildings")
    with engine.connect() as conn:
        tile = decode(render_tile(conn, [layer], t.z, t.x, t.y))
    assert list(tile) == ["buildings"]
    feats = tile["buildings"]["features"]
    assert sorted(f["id"] for f in feats) == sorted(area["buildings"])
    declared = {p.name for p in layer.properties}
    for f in feats:
        assert set(f["properties"]) <= declared
        assert "population" not in f["properties"] and "source" not in f["properties"]
        assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")
    heights = sorted(f["properties"]["height_m"] for f in feats)
    assert heights[0] == 5.0 and heights[-1] == 5.0 + len(area["buildings"]) - 1


def test_composite_tile_has_one_named_layer_per_id(engine, catalog, area):
    t = tile_at(*HERE, 14)
    layers = [catalog.get(i) for i in ("water", "roads", "buildings", "places")]
    with engine.connect() as conn:
        tile = decode(render_tile(conn, layers, t.z, t.x, t.y))
    assert {"roads", "buildings"} <= set(tile)
    assert sorted(f["id"] for f in tile["roads"]["features"]) == sorted(area["roads"])


def test_zoom_filters_and_ranges(engine, catalog, area):
    roads, buildings = catalog.get("roads"), catalog.get("buildings")
    t = tile_at(*HERE, 10)
    with engine.connect() as conn:
        tile = decode(render_tile(conn, [roads, buildings], t.z, t.x, t.y))
    # buildings start at z13: left out; at z10 roads carry only the main classes
    assert "buildings" not in tile
    assert [f["id"] for f in tile["roads"]["features"]] == area["motorway"]
    assert tile_query([buildings], 12) is None


def test_feature_cap(engine, catalog, area):
    capped = catalog.get("buildings").model_copy(update={"max_features_per_tile": 3})
    t = tile_at(*HERE, 14)
    with engine.connect() as conn:
        tile = decode(render_tile(conn, [capped], t.z, t.x, t.y))
    assert len(tile["buildings"]["features"]) == 3


def test_sql_is_stable_per_zoom_and_simplifies_per_zoom(catalog):
    b = catalog.get("buildings")
    q14, q14b, q15, q16 = (tile_query([b], z) for z in (14, 14, 15, 16))
    assert q14 is not None and q14b is not None and q15 is not None and q16 is not None
    assert q14.sql == q14b.sql and "%(x)s" in q14.sql and "%(y)s" in q14.sql
    assert "ST_Simplify" in q14.sql and "ST_Simplify" not in q16.sql
    # 0.5 px at z15 is what ST_AsMVTGeom does by itself: no second pass
    assert "ST_Simplify" not in q15.sql
    # 1 px at z14 (the catalogue's band from z13): tile width in metres / 4096
    assert q14.params["tol0"] == pytest.approx(40075016.686 / 2**14 / 4096, rel=1e-6)
    assert "ST_Transform" not in q14.sql and "geom_3857" in q14.sql


def test_empty_area_and_bad_tiles(engine, catalog):
    layer = catalog.get("buildings")
    with engine.connect() as conn:
        assert render_tile(conn, [layer], 16, 0, 0) == b""
    for z, x, y in [(-1, 0, 0), (25, 0, 0), (3, 8, 0), (3, 0, -1)]:
        with pytest.raises(TileOutOfRange):
            check_tile(z, x, y)


def test_gzip_round_trip():
    import gzip
    import random
    import zlib

    rnd = random.Random(7)
    small = b"\x1a\x05hello" * 100
    big = bytes(rnd.randrange(40) for _ in range(400_000))  # compressed in two halves
    for data in (small, big):
        gz = gzip_bytes(data)
        assert gz[:2] == b"\x1f\x8b" and gunzip_bytes(gz) == data
        assert gzip.decompress(gz) == data
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)  # as an HTTP client inflates
        assert d.decompress(gz) == data and d.eof and not d.unused_data


def test_cache_lru_budget_and_table_eviction():
    cache = TileCache(10_000)
    k = [TileKey(("buildings",), 14, i, 0, (("building", 1),)) for i in range(5)]
    r = TileKey(("roads",), 14, 0, 0, (("road_segment", 1),))
    cache.put(r, b"r" * 1500)
    for key in k[:4]:
        cache.put(key, b"b" * 1500)
    assert cache.get(r) == b"r" * 1500  # r is now the most recently used
    cache.put(k[4], b"c" * 1500)  # over budget: the least recently used (k[0]) goes
    assert cache.get(k[0]) is None and cache.get(r) is not None
    assert cache.size <= cache.max_bytes and len(cache) == 5
    assert cache.evict_table("building", 2) == 4
    assert cache.get(k[1]) is None and cache.get(r) == b"r" * 1500
    cache.put(k[0], b"x" * 5000)  # more than a quarter of the budget: not kept
    assert cache.get(k[0]) is None
    off = TileCache(0)
    off.put(k[0], b"x")
    assert not off.enabled and off.get(k[0]) is None


def test_tracker_follows_writes_from_other_connections(settings, engine, area):
    tracker = VersionTracker(settings.url())
    cache = TileCache(1 << 20)
    tracker.on_change(cache.evict_table)
    tracker.start()
    try:
        assert tracker.wait_live(10)
        (before,) = tracker.versions(["building"])
        key = TileKey(("buildings",), 14, 1, 1, (before,))
        cache.put(key, b"tile")
        with engine.begin() as conn:
            add_building(conn, HERE[0] + 0.01, HERE[1] + 0.01)
        deadline = time.monotonic() + 10
        while tracker.versions(["building"])[0][1] == before[1] and time.monotonic() < deadline:
            time.sleep(0.02)
        (after,) = tracker.versions(["building"])
        assert after[1] > before[1]
        assert cache.get(key) is None  # evicted by the change callback
        # with the listener down the versions are read from the database
        tracker.stop()
        assert not tracker.live
        assert tracker.versions(["building"], engine.connect)[0][1] >= after[1]
    finally:
        tracker.stop()


def test_tracker_reconnects_after_losing_its_connection(settings, engine, area):
    tracker = VersionTracker(settings.url())
    tracker.start()
    try:
        assert tracker.wait_live(10)
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE application_name = 'twin-versions' "
                              "AND datname = current_database()"))
        deadline = time.monotonic() + 10
        while tracker.live and time.monotonic() < deadline:  # notices the loss …
            time.sleep(0.02)
        assert tracker.wait_live(10)  # … and comes back
        (before,) = tracker.versions(["building"])
        with engine.begin() as conn:
            add_building(conn, HERE[0] + 0.02, HERE[1] + 0.02)
        deadline = time.monotonic() + 10
        while tracker.versions(["building"])[0][1] == before[1] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert tracker.versions(["building"])[0][1] > before[1]
    finally:
        tracker.stop()


# -- generalised low-zoom buildings (layers/generalise.py, migration 0012) ---------------

ROW = (108.66, 15.33)  # a z14 cell of its own


def _row_of_houses(conn: Connection, n: int, gap_deg: float) -> list[int]:
    """``n`` 11 m square houses in a row, ``gap_deg`` apart (1e-5° ≈ 1.1 m)."""
    return [add_building(conn, ROW[0] + i * (0.0001 + gap_deg), ROW[1], levels=1 + i % 4,
                         height_m=3.0 * (1 + i % 4), name=f"Nhà {i}", area_m2=100.0 + i)
            for i in range(n)]


def test_low_zoom_tiles_draw_merged_blocks_and_follow_writes(engine, catalog):
    from layers.generalise import refresh

    layer = catalog.get("buildings")
    t14, t15 = tile_at(*ROW, 14), tile_at(*ROW, 15)
    with engine.begin() as conn:
        houses = _row_of_houses(conn, 12, 0.00001)  # 1 m gaps: one block
        lone = add_building(conn, ROW[0], ROW[1] + 0.001, name="Trường")  # 110 m away
    try:
        with engine.connect() as conn:  # not rebuilt yet: the dirty cell draws raw rows
            raw = decode(render_tile(conn, [layer], t14.z, t14.x, t14.y))["buildings"]
        assert len(raw["features"]) == 13
        with engine.begin() as conn:
            before = conn.execute(text(
                "SELECT version FROM table_version WHERE table_name = 'building'")).scalar_one()
            cells, blocks, _ = refresh(conn)
            after = conn.execute(text(
                "SELECT version FROM table_version WHERE table_name = 'building'")).scalar_one()
        assert cells >= 1 and blocks >= 2 and after > before  # cached tiles follow
        with engine.connect() as conn:
            low = decode(render_tile(conn, [layer], t14.z, t14.x, t14.y))["buildings"]
            high = decode(render_tile(conn, [layer], t15.z, t15.x, t15.y))["buildings"]
        mine = [f for f in low["features"] if f["id"] in {*houses, lone}]
        assert len(mine) == 2  # the row merged into one block, the school alone
        block = next(f for f in mine if f["id"] != lone)
        assert block["id"] == houses[-1]  # the largest member answers items/{id}
        assert block["properties"]["levels"] == 4 and "name" not in block["properties"]
        assert block["properties"]["area_m2"] == pytest.approx(sum(100.0 + i for i in range(12)))
        school = next(f for f in mine if f["id"] == lone)
        assert school["properties"]["name"] == "Trường"
        assert len([f for f in high["features"] if f["id"] in houses]) == 12  # z15: footprints
        with engine.begin() as conn:  # a write makes the cell draw its raw rows again
            conn.execute(text("UPDATE building SET levels = 9 WHERE id = :i"), {"i": houses[0]})
        with engine.connect() as conn:
            again = decode(render_tile(conn, [layer], t14.z, t14.x, t14.y))["buildings"]
        assert len([f for f in again["features"] if f["id"] in houses]) == 12
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM building WHERE id = ANY(:ids)"),
                         {"ids": [*houses, lone]})
            refresh(conn)
            assert not conn.execute(text(
                "SELECT count(*) FROM building_generalised WHERE fid = ANY(:ids)"),
                {"ids": [*houses, lone]}).scalar_one()


def test_separate_houses_stay_separate(engine, catalog):
    from layers.generalise import refresh

    layer = catalog.get("buildings")
    t14 = tile_at(*ROW, 14)
    with engine.begin() as conn:
        houses = _row_of_houses(conn, 5, 0.0002)  # 22 m gaps (a street between)
        refresh(conn)
    try:
        with engine.connect() as conn:
            low = decode(render_tile(conn, [layer], t14.z, t14.x, t14.y))["buildings"]
        assert len([f for f in low["features"] if f["id"] in houses]) == 5
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM building WHERE id = ANY(:ids)"), {"ids": houses})
            refresh(conn)


def _features(tile: bytes) -> list[tuple[object, str, str]]:
    got = decode(tile).get("buildings", {"features": []})["features"]
    return sorted((f["id"], str(f["geometry"]), str(sorted(f["properties"].items())))
                  for f in got)


def test_z14_tiles_read_the_stored_tile_geometry_and_match_the_computed(engine, catalog):
    """Migration 0017: a z14 tile reads each block's ``ST_AsMVTGeom`` stored when its
    cell was rebuilt. The tile is the one the computation gives, on both sides of a tile
    edge that a block crosses, and a dirty cell still draws its raw footprints."""
    from layers.generalise import refresh
    from layers.mvt import uses_z14_table

    layer = catalog.get("buildings")
    computed = layer.model_copy(update={"generalised_z14_table": None})
    assert uses_z14_table(layer, 14) and not uses_z14_table(computed, 14)
    assert "building_generalised_z14" in tile_query([layer], 14).sql  # type: ignore[union-attr]
    left = tile_at(*ROW, 14)
    edge = (left.x + 1) / 16384 * 360 - 180  # the tile's east edge, in degrees
    # a row of houses 1 m apart across the edge: a block on each side (a house belongs to
    # the cell of its box centre), each reaching into the other tile's buffer
    with engine.begin() as conn:
        houses = [add_building(conn, edge - 0.0006 + i * 0.00011, ROW[1] + 0.002,
                               levels=2, area_m2=100.0 + i) for i in range(11)]
        refresh(conn)
        stored = conn.execute(text(
            "SELECT tile FROM building_generalised_z14 WHERE fid = ANY(:ids)"),
            {"ids": houses}).scalars().all()
    tiles = [(14, left.x, left.y), (14, left.x + 1, left.y)]
    try:
        assert sorted(stored) == sorted(2 * [x * 16384 + y for _, x, y in tiles])
        with engine.connect() as conn:
            for t in tiles:
                fast = _features(render_tile(conn, [layer], *t))
                assert fast == _features(render_tile(conn, [computed], *t))
                assert len([f for f in fast if f[0] in houses]) == 2  # both, clipped
        with engine.begin() as conn:  # written since the rebuild: raw footprints again
            conn.execute(text("UPDATE building SET levels = 5 WHERE id = ANY(:ids)"),
                         {"ids": houses})
        with engine.connect() as conn:
            for t in tiles:
                fast = _features(render_tile(conn, [layer], *t))
                assert fast == _features(render_tile(conn, [computed], *t))
                mine = [f for f in fast if f[0] in houses]
                assert len(mine) > 1 and all("'levels', 5" in f[2] for f in mine)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM building WHERE id = ANY(:ids)"), {"ids": houses})
            refresh(conn)
            assert not conn.execute(text(
                "SELECT count(*) FROM building_generalised_z14 WHERE fid = ANY(:ids)"),
                {"ids": houses}).scalar_one()
