"""Fixture rows for the OGC API Features tests, in a region nobody else uses.

Everything lies in REGION (open sea east of Đà Nẵng, lon 108.5–108.6, lat 16.5–16.6)
and carries ``source = 'test-features'``, so tests can scope their assertions with a
bbox and re-inserting is idempotent. The session test database is shared with other
tests: never assert on whole-table counts.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

SOURCE = "test-features"
REGION = (108.49, 16.49, 108.61, 16.61)
BBOX = ",".join(str(v) for v in REGION)
N_BUILDINGS = 25
USES = ("school", "office", "residential")
TABLES = ("utility_edge", "road_segment", "road_node", "building", "admin_area")


def building_rows() -> list[dict[str, object]]:
    rows = []
    for i in range(N_BUILDINGS):
        x, y = 108.5 + (i % 5) * 0.02, 16.5 + (i // 5) * 0.02
        rows.append({
            "name": None if i % 4 == 3 else f"Tòa nhà {i}",
            "use": USES[i % 3],
            "levels": i + 1,
            "height_m": 3.0 * (i + 1),
            "address": f"{i} Võ Nguyên Giáp",
            "ward": "Sơn Trà" if i < 10 else "Ngũ Hành Sơn",
            "area_m2": 100.0 + i,
            "wkt": f"MULTIPOLYGON((({x} {y},{x + 0.002} {y},{x + 0.002} {y + 0.002},"
                   f"{x} {y + 0.002},{x} {y})))",
            "sid": f"b{i}",
        })
    return rows


def delete(engine: Engine) -> None:
    with engine.begin() as conn:
        for t in TABLES:
            conn.execute(text(f"DELETE FROM {t} WHERE source = :s"), {"s": SOURCE})


def insert(engine: Engine) -> dict[str, list[int]]:
    """(Re)insert the fixture rows; returns the new ids per table (in insert order)."""
    delete(engine)
    ids: dict[str, list[int]] = {}
    with engine.begin() as conn:
        ids["building"] = [
            conn.execute(text(
                "INSERT INTO building (name, use, levels, height_m, address, ward, area_m2, "
                "geom, source, source_id) VALUES (:name, :use, :levels, :height_m, :address, "
                ":ward, :area_m2, ST_GeomFromText(:wkt, 4326), :src, :sid) RETURNING id"),
                {**r, "src": SOURCE}).scalar_one()
            for r in building_rows()
        ]
        nodes = [
            conn.execute(text(
                "INSERT INTO road_node (geom, source, source_id) VALUES "
                "(ST_SetSRID(ST_MakePoint(:x, :y), 4326), :src, :sid) RETURNING id"),
                {"x": 108.5 + i * 0.02, "y": 16.59, "src": SOURCE, "sid": f"n{i}"}).scalar_one()
            for i in range(5)
        ]
        ids["road_segment"] = [
            conn.execute(text(
                "INSERT INTO road_segment (from_node, to_node, road_class, name, oneway, "
                "maxspeed_kmh, lanes, bridge, length_m, cost, reverse_cost, geom, source, "
                "source_id) SELECT a.id, b.id, :cls, :name, :oneway, 50, 2, :bridge, 2100, 1, 1, "
                "ST_MakeLine(a.geom, b.geom), :src, :sid FROM road_node a, road_node b "
                "WHERE a.id = :a AND b.id = :b RETURNING id"),
                {"a": nodes[i], "b": nodes[i + 1], "cls": ("primary", "residential")[i % 2],
                 "name": f"Đường {i}", "oneway": i == 0, "bridge": i == 3,
                 "src": SOURCE, "sid": f"r{i}"}).scalar_one()
            for i in range(4)
        ]
        areas = [  # (name, valid_from, valid_to)
            ("Quận Cũ", "1997-01-01", "2025-06-30"),
            ("Phường Mới", "2025-07-01", None),
            ("Xã Tạm", "2010-01-01", "2019-12-31"),
        ]
        ids["admin_area"] = [
            conn.execute(text(
                "INSERT INTO admin_area (level, code, name_vi, name_en, population, valid_from, "
                "valid_to, geom, source, source_id) VALUES ('ward', :code, :name, :name, 1000, "
                ":vf, :vt, ST_Multi(ST_MakeEnvelope(:x, 16.55, :x + 0.01, 16.56, 4326)), :src, "
                ":sid) RETURNING id"),
                {"code": f"T{i}", "name": n, "vf": vf, "vt": vt, "x": 108.5 + i * 0.02,
                 "src": SOURCE, "sid": f"a{i}"}).scalar_one()
            for i, (n, vf, vt) in enumerate(areas)
        ]
        ids["utility_edge"] = [
            conn.execute(text(
                "INSERT INTO utility_edge (network, kind, diameter_mm, length_m, name, geom, "
                "source, source_id) VALUES (:net, 'main', 300, 1000, :name, "
                "ST_GeomFromText(:wkt, 4326), :src, :sid) RETURNING id"),
                {"net": net, "name": f"{net} {i}", "src": SOURCE, "sid": f"u{i}",
                 "wkt": f"LINESTRING(108.5 {16.51 + i * 0.01}, 108.58 {16.51 + i * 0.01})"},
            ).scalar_one()
            for i, net in enumerate(("water", "water", "power"))
        ]
    return ids
