"""Help for responders: nearest facilities by straight line (KNN) and by drive time over
the road network (pgRouting), service areas and what lies within a radius.

Coordinates are lon/lat in EPSG:4326; distances in metres, times in seconds. pgRouting
reads ``road_segment`` as ``id, from_node AS source, to_node AS target, cost,
reverse_cost`` (cost = seconds at the segment's speed; reverse −1 when one-way).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, text

from twin.analysis.components import FOOT_ONLY_SQL, snap_sql
from twin.errors import InputError, NotFound

_BOX = "geom && ST_MakeEnvelope({:.6f}, {:.6f}, {:.6f}, {:.6f}, 4326)"
#: walking: 5 km/h (3 km/h on steps) both ways on every road but motorways and trunks
WALK_COST = "CASE road_class WHEN 'steps' THEN 1.2 ELSE 0.72 END * length_m"
EDGES_BY_MODE = {
    # driving: the costed graph (one-way reverse −1) without footways, steps, paths…
    "drive": ("SELECT id, from_node AS source, to_node AS target, cost, reverse_cost "
              f"FROM road_segment WHERE road_class <> ALL({FOOT_ONLY_SQL}) AND {_BOX}"),
    "walk": (f"SELECT id, from_node AS source, to_node AS target, {WALK_COST} AS cost, "
             f"{WALK_COST} AS reverse_cost FROM road_segment WHERE road_class <> ALL("
             f"ARRAY['motorway', 'motorway_link', 'trunk', 'trunk_link']) AND {_BOX}"),
}
EDGES = EDGES_BY_MODE["drive"]
MODES = tuple(EDGES_BY_MODE)
CLOSED_EDGES = " AND id <> ALL('{{{}}}'::bigint[])"
POINT = "ST_SetSRID(ST_MakePoint(:x, :y), 4326)"


def check_lonlat(lon: float, lat: float) -> None:
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InputError("lon must be within −180…180 and lat within −90…90")


def edges_sql(bbox: tuple[float, float, float, float], closed: list[int] | None = None,
              mode: str = "drive") -> str:
    """The edge query pgRouting runs for a mode, limited to a box (numbers we computed,
    not input)."""
    if mode not in EDGES_BY_MODE:
        raise InputError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    sql = EDGES_BY_MODE[mode].format(*bbox)
    if closed:
        sql += CLOSED_EDGES.format(",".join(str(int(i)) for i in closed))
    return sql


#: seconds added by pgr_trsp for taking a forbidden turn: no real route costs this much
TURN_PENALTY = 1e7
_RESTRICTIONS = ("SELECT id, {penalty}::float8 AS cost, path FROM road_restriction "
                 "WHERE geom && ST_MakeEnvelope({:.6f}, {:.6f}, {:.6f}, {:.6f}, 4326)")


def restrictions_sql(bbox: tuple[float, float, float, float]) -> str:
    """The turn restrictions pgr_trsp reads, limited to a box (numbers we computed)."""
    return _RESTRICTIONS.format(*bbox, penalty=TURN_PENALTY)


def has_restrictions(conn: Connection, bbox: tuple[float, float, float, float]) -> bool:
    return bool(conn.execute(text(
        "SELECT EXISTS (SELECT 1 FROM road_restriction "
        "WHERE geom && ST_MakeEnvelope(:w, :s, :e, :n, 4326))"),
        dict(zip(("w", "s", "e", "n"), bbox, strict=True))).scalar_one())


def nearest_node(
    conn: Connection, lon: float, lat: float, prefer: int | None = None, car: bool = True
) -> tuple[int, float]:
    """The road node to route from for a point, and its distance in metres: the nearest
    node, unless a node of a larger connected component (or of component ``prefer``) is
    within ~150 m more (:func:`twin.analysis.components.snap_sql`)."""
    node, dist, _ = snap(conn, lon, lat, prefer, car)
    return node, dist


def snap(
    conn: Connection, lon: float, lat: float, prefer: int | None = None, car: bool = True
) -> tuple[int, float, int | None]:
    """:func:`nearest_node` with the snapped node's component (None if not computed);
    ``car``: only nodes on roads a car may use."""
    row = conn.execute(
        text(
            "SELECT snap.id, snap.distance_m, snap.component FROM "
            + snap_sql(POINT, prefer="CAST(:prefer AS bigint)" if prefer is not None else None,
                       car=car)
        ),
        {"x": lon, "y": lat, "prefer": prefer},
    ).first()
    if row is None:
        raise NotFound("the road network is empty")
    return int(row[0]), float(row[1]), None if row[2] is None else int(row[2])


def nearest_straight(
    conn: Connection, lon: float, lat: float, kind: str, k: int = 3
) -> list[dict[str, Any]]:
    """The ``k`` nearest facilities of a kind by straight-line distance (KNN on GiST)."""
    check_lonlat(lon, lat)
    rows = conn.execute(
        text(
            "SELECT id, kind, name_vi, name_en, capacity, ST_X(geom) AS lon, ST_Y(geom) AS lat, "
            "ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:x, :y), 4326)::geography) "
            "AS distance_m FROM facility WHERE kind = :kind "
            "ORDER BY geom <-> ST_SetSRID(ST_MakePoint(:x, :y), 4326) LIMIT :k"
        ),
        {"x": lon, "y": lat, "kind": kind, "k": k},
    ).mappings()
    return [dict(r) for r in rows]


def nearest_by_drive(
    conn: Connection,
    lon: float,
    lat: float,
    kind: str,
    k: int = 3,
    candidates: int = 8,
    closed: list[int] | None = None,
    mode: str = "drive",
) -> list[dict[str, Any]]:
    """The ``k`` facilities of a kind with the shortest drive time from a point, each with
    its route (GeoJSON LineString), ``drive_s`` (seconds) and ``route_m`` (metres).

    The nearest ``candidates`` by straight line are routed (one many-to-many Dijkstra on
    the network inside their bounding box plus a margin). The start and the facilities
    snap to large connected components (:func:`nearest_node`), the facilities to the
    start's own component when it is close enough.

    ``mode="drive"`` uses only roads a car may use (no footways, steps or paths) with
    their one-way rules; ``mode="walk"`` every road but motorways and trunks, both ways,
    at 5 km/h (``drive_s`` then holds the walking time)."""
    check_lonlat(lon, lat)
    edges_sql((0, 0, 0, 0), mode=mode)  # an unknown mode fails before any query
    cands = nearest_straight(conn, lon, lat, kind, max(k, candidates))
    if not cands:
        return []
    car = mode == "drive"
    start, _, part = snap(conn, lon, lat, car=car)
    for c in cands:
        # a facility snaps into the start's component when that is within reach
        c["node"], c["access_m"] = nearest_node(conn, c["lon"], c["lat"], prefer=part, car=car)
    xs = [lon, *(c["lon"] for c in cands)]
    ys = [lat, *(c["lat"] for c in cands)]
    margin = 0.02  # ~2 km: room for detours around rivers
    bbox = (min(xs) - margin, min(ys) - margin, max(xs) + margin, max(ys) + margin)
    targets = sorted({c["node"] for c in cands})
    restricted = mode == "drive" and has_restrictions(conn, bbox)
    solver = ("pgr_trsp(:edges, :restrictions, :start, CAST(:targets AS bigint[]), "
              "directed => true)" if restricted else
              "pgr_dijkstra(:edges, :start, CAST(:targets AS bigint[]), directed => true)")
    rows = conn.execute(
        text(
            "SELECT p.end_vid, p.path_seq, p.edge, p.agg_cost, s.length_m, "
            "ST_AsGeoJSON(CASE WHEN p.node = s.from_node THEN s.geom ELSE ST_Reverse(s.geom) "
            f"END, 6) AS g FROM {solver} p LEFT JOIN road_segment s ON s.id = p.edge "
            "ORDER BY p.end_vid, p.path_seq"
        ),
        {"edges": edges_sql(bbox, closed, mode), "start": start, "targets": targets,
         "restrictions": restrictions_sql(bbox)},
    )
    paths: dict[int, dict[str, Any]] = {}
    banned: set[int] = set()
    for end_vid, _seq, edge, agg, length_m, g in rows:
        if int(end_vid) in banned:
            continue
        if agg is not None and float(agg) >= TURN_PENALTY:
            banned.add(int(end_vid))  # only reachable through a forbidden turn
            paths.pop(int(end_vid), None)
            continue
        p = paths.setdefault(int(end_vid), {"drive_s": 0.0, "route_m": 0.0, "coords": [],
                                            "segments": []})
        p["drive_s"] = float(agg)
        if edge != -1 and g:
            p["segments"].append(int(edge))
            p["route_m"] += float(length_m or 0)
            coords = json.loads(g)["coordinates"]
            p["coords"].extend(coords if not p["coords"] else coords[1:])
    out = []
    for c in cands:
        if c["node"] == start:
            path: dict[str, Any] | None = {"drive_s": 0.0, "route_m": 0.0, "coords": [],
                                           "segments": []}
        else:
            path = paths.get(c["node"])
        if path is None:
            continue  # not reachable
        coords = path["coords"] or [[lon, lat], [c["lon"], c["lat"]]]
        out.append(
            {
                **{k_: v for k_, v in c.items() if k_ != "node"},
                "drive_s": round(path["drive_s"], 1),
                "eta_min": round(path["drive_s"] / 60, 1),
                "route_m": round(path["route_m"], 1),
                "route": {"type": "LineString", "coordinates": coords},
                "segments": path["segments"],  # road_segment ids, start to end
                "mode": mode,
            }
        )
    out.sort(key=lambda r: r["drive_s"])
    return out[:k]


def service_area(conn: Connection, lon: float, lat: float, minutes: float) -> dict[str, Any]:
    """The area reachable from a point within ``minutes`` of driving (concave hull of the
    reached nodes, buffered 50 m), with the count of reached nodes."""
    check_lonlat(lon, lat)
    if not 0 < minutes <= 60:
        raise InputError("minutes must be between 0 and 60")
    start, _ = nearest_node(conn, lon, lat)
    reach = minutes / 60 * 100 / 111.0  # degrees at ≤ 100 km/h
    bbox = (lon - reach, lat - reach, lon + reach, lat + reach)
    row = conn.execute(
        text(
            "WITH d AS (SELECT node, agg_cost FROM pgr_drivingDistance(:edges, :start, :limit, "
            "directed => true)), pts AS (SELECT n.geom FROM d JOIN road_node n ON n.id = d.node) "
            "SELECT count(*), ST_AsGeoJSON(ST_Buffer(ST_ConcaveHull(ST_Collect(geom), 0.6)"
            "::geography, 50)::geometry, 6) FROM pts"
        ),
        {"edges": edges_sql(bbox), "start": start, "limit": minutes * 60},
    ).first()
    assert row is not None
    return {
        "minutes": minutes,
        "reached_nodes": int(row[0]),
        "area": json.loads(row[1]) if row[1] else None,
    }


def within_radius(
    conn: Connection, lon: float, lat: float, radius_m: float, *, staff: bool
) -> dict[str, Any]:
    """Buildings, facilities (and, for staff, utility nodes) within ``radius_m``."""
    check_lonlat(lon, lat)
    if not 0 < radius_m <= 5000:
        raise InputError("radius must be between 0 and 5000 metres")
    p = {"x": lon, "y": lat, "r": radius_m}
    near = (
        "ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint(:x, :y), 4326)::geography, :r)"
        " AND geom && ST_Expand(ST_SetSRID(ST_MakePoint(:x, :y), 4326), :r / 100000.0)"
    )
    b = conn.execute(
        text(
            f"SELECT count(*), coalesce(sum(population), 0), coalesce(sum(area_m2 * "
            f"coalesce(levels, 1)), 0) FROM building WHERE {near}"
        ),
        p,
    ).one()
    facilities = [
        dict(r)
        for r in conn.execute(
            text(
                f"SELECT id, kind, name_vi, name_en, ST_X(geom) AS lon, ST_Y(geom) AS lat, "
                f"round(ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:x, :y), 4326)"
                f"::geography)::numeric, 1) AS distance_m FROM facility WHERE {near} "
                f"ORDER BY distance_m LIMIT 100"
            ),
            p,
        ).mappings()
    ]
    by_kind: dict[str, int] = {}
    for f in facilities:
        f["distance_m"] = float(f["distance_m"])
        by_kind[f["kind"]] = by_kind.get(f["kind"], 0) + 1
    out: dict[str, Any] = {
        "radius_m": radius_m,
        "buildings": {"count": int(b[0]), "population": int(b[1]), "floor_area_m2": float(b[2])},
        "facilities": {"count": len(facilities), "by_kind": by_kind, "items": facilities},
    }
    if staff:
        nodes = conn.execute(
            text(
                f"SELECT network, kind, count(*) FROM utility_node WHERE {near} "
                f"GROUP BY network, kind ORDER BY network, kind"
            ),
            p,
        ).all()
        out["utility_nodes"] = {
            "count": sum(int(n[2]) for n in nodes),
            "by_kind": [{"network": n[0], "kind": n[1], "count": int(n[2])} for n in nodes],
        }
    return out
