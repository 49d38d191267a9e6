"""A tiny hand-made piece of Hải Châu for the viewer, search and area tests.

Coordinates are WGS 84 lon/lat around ``ORIGIN``; every row has ``source = SOURCE`` so
it can be removed again. Shapes are boxes: what matters is that they are where the tests
look, with names in Vietnamese (diacritics) and English.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, text

SOURCE = "test-web"
ORIGIN = (108.21, 16.06)
#: the named building the tests click on (centre of its footprint)
LANDMARK = (108.2125, 16.0625)
HAI_CHAU_WARD = (108.215, 16.065)


def box(lon: float, lat: float, dx: float, dy: float | None = None) -> str:
    dy = dx if dy is None else dy
    w, e, s, n = lon - dx, lon + dx, lat - dy, lat + dy
    return f"MULTIPOLYGON((({w} {s},{e} {s},{e} {n},{w} {n},{w} {s})))"


def _ins(conn: Connection, table: str, row: dict[str, object], geom: str,
         multi: bool = False) -> int:
    cols = [*row, "geom", "source", "source_id"]
    g = "ST_Multi(ST_GeomFromText(:wkt, 4326))" if multi else "ST_GeomFromText(:wkt, 4326)"
    vals = [f":{c}" for c in row] + [g, ":source", ":sid"]
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(vals)}) RETURNING id"
    n = conn.execute(text(f"SELECT count(*) FROM {table} WHERE source = :s"), {"s": SOURCE})
    sid = f"{table}-{n.scalar_one()}"
    return int(conn.execute(text(sql), {**row, "wkt": geom, "source": SOURCE, "sid": sid})
               .scalar_one())


def _road(conn: Connection, coords: list[tuple[float, float]], road_class: str,
          name: str | None, name_en: str | None = None) -> None:
    nodes = [_ins(conn, "road_node", {}, f"POINT({x} {y})") for x, y in (coords[0], coords[-1])]
    line = "LINESTRING(" + ",".join(f"{x} {y}" for x, y in coords) + ")"
    length = conn.execute(text("SELECT ST_Length(ST_GeomFromText(:w, 4326)::geography)"),
                          {"w": line}).scalar_one()
    _ins(conn, "road_segment", {
        "from_node": nodes[0], "to_node": nodes[1], "road_class": road_class, "name": name,
        "name_en": name_en, "oneway": False, "maxspeed_kmh": 40.0, "lanes": 2, "bridge": False,
        "length_m": length, "cost": length, "reverse_cost": length}, line)


def insert_city(conn: Connection) -> dict[str, int]:
    """Insert the test city; returns ids of the features the tests look for."""
    x0, y0 = ORIGIN
    ids: dict[str, int] = {}
    # administrative units: the district before 2025-07-01, the wards after
    ids["district"] = _ins(conn, "admin_area", {
        "level": "district", "code": "T-HC", "name_vi": "Hải Châu", "name_en": "Hai Chau District",
        "population": 200000, "valid_from": dt.date(1997, 1, 1), "valid_to": dt.date(2025, 7, 1),
    }, box(x0 + 0.005, y0 + 0.005, 0.03), multi=True)
    ids["ward"] = _ins(conn, "admin_area", {
        "level": "ward", "code": "T-W1", "name_vi": "Hải Châu", "name_en": "Hai Chau Ward",
        "population": 90000, "valid_from": dt.date(2025, 7, 1), "valid_to": None,
    }, box(*HAI_CHAU_WARD, 0.012), multi=True)
    _ins(conn, "admin_area", {
        "level": "ward", "code": "T-W2", "name_vi": "Thạch Thang", "name_en": "Thach Thang Ward",
        "population": 40000, "valid_from": dt.date(2025, 7, 1), "valid_to": None,
    }, box(x0 - 0.02, y0 + 0.02, 0.008), multi=True)
    # land cover: a residential block, a park, the river strip
    _ins(conn, "land_cover", {"kind": "residential", "name": None}, box(x0, y0, 0.03), multi=True)
    _ins(conn, "land_cover", {"kind": "park", "name": "Công viên Thử"},
         box(x0 - 0.006, y0 - 0.006, 0.002), multi=True)
    _ins(conn, "land_cover", {"kind": "water", "name": "Sông Hàn"},
         box(x0 + 0.02, y0, 0.003, 0.04), multi=True)
    # roads: two main streets and a grid of minor ones
    _road(conn, [(x0 + 0.0165, y0 - 0.03), (x0 + 0.0165, y0 + 0.03)], "primary",
          "Bạch Đằng", "Bach Dang Street")
    _road(conn, [(x0 - 0.03, y0 + 0.0105), (x0 + 0.0165, y0 + 0.0105)], "secondary",
          "Lê Duẩn", "Le Duan Street")
    for i in range(-4, 5):
        d = i * 0.005 + 0.0005
        _road(conn, [(x0 - 0.03, y0 + d), (x0 + 0.015, y0 + d)], "residential", None)
        _road(conn, [(x0 + d, y0 - 0.03), (x0 + d, y0 + 0.03)], "residential", None)
    # buildings: a 12 × 12 grid, heights from 6 m to 72 m, plus the named landmark
    for i in range(12):
        for j in range(12):
            lon, lat = x0 - 0.006 + i * 0.001, y0 - 0.006 + j * 0.001
            if abs(lon - LANDMARK[0]) < 0.0008 and abs(lat - LANDMARK[1]) < 0.0008:
                continue
            h = 6.0 + ((i * 7 + j * 5) % 12) * 6
            _ins(conn, "building", {
                "name": None, "use": "residential", "levels": int(h // 3.3), "height_m": h,
                "address": f"{i + 1}{j} Lê Lợi", "ward": "Hải Châu", "area_m2": 1300.0,
            }, box(lon, lat, 0.00035), multi=True)
    ids["landmark"] = _ins(conn, "building", {
        "name": "Tòa nhà Thử nghiệm", "use": "office", "levels": 18, "height_m": 60.0,
        "address": "1 Bạch Đằng", "ward": "Hải Châu", "area_m2": 3200.0,
    }, box(*LANDMARK, 0.0005), multi=True)
    # places and facilities
    _ins(conn, "place", {"kind": "suburb", "name_vi": "Hải Châu", "name_en": "Hai Chau", "rank": 2},
         f"POINT({HAI_CHAU_WARD[0]} {HAI_CHAU_WARD[1]})")
    _ins(conn, "place", {"kind": "landmark", "name_vi": "Cầu Rồng", "name_en": "Dragon Bridge",
                         "rank": 3}, f"POINT({x0 + 0.02} {y0 + 0.001})")
    ids["hospital"] = _ins(conn, "facility", {
        "kind": "hospital", "name_vi": "Bệnh viện Đà Nẵng", "name_en": "Da Nang Hospital",
        "capacity": 1500, "address": "124 Hải Phòng", "phone": "0236 3821 118",
    }, f"POINT({x0 - 0.008} {y0 + 0.012})")
    _ins(conn, "facility", {
        "kind": "fire_station", "name_vi": "Đội chữa cháy Hải Châu",
        "name_en": "Hai Chau fire team",
        "capacity": None, "address": None, "phone": "114",
    }, f"POINT({x0 + 0.01} {y0 - 0.01})")
    # the staff-only water network
    v1 = _ins(conn, "utility_node", {"network": "water", "kind": "valve", "name": "Van 1",
                                     "status": "in_service"}, f"POINT({x0 - 0.01} {y0 - 0.0025})")
    v2 = _ins(conn, "utility_node", {"network": "water", "kind": "hydrant", "name": "Trụ 1",
                                     "status": "in_service"}, f"POINT({x0 + 0.01} {y0 - 0.0025})")
    ids["pipe"] = _ins(conn, "utility_edge", {
        "network": "water", "kind": "main", "from_node": v1, "to_node": v2, "diameter_mm": 300.0,
        "voltage_kv": None, "length_m": 2140.0, "name": "Ống chính thử"},
        f"LINESTRING({x0 - 0.01} {y0 - 0.0025},{x0 + 0.01} {y0 - 0.0025})")
    return ids


def remove_city(conn: Connection) -> None:
    for table in ("utility_edge", "utility_node", "road_segment", "road_node", "building",
                  "facility", "place", "land_cover", "admin_area"):
        conn.execute(text(f"DELETE FROM {table} WHERE source = :s"), {"s": SOURCE})
