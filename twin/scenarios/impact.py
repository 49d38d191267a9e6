"""What a flood touches: buildings, road segments, facilities — one SQL query per table
against the flooded area, sent as small pieces (``flood.pieces``: the polygon cut along
a grid of cells) so each GiST probe meets a small polygon. The queries take no state
from the connection, so they can run side by side on two connections.

Roads are sampled along their length on the depth grid (every ~half cell) in NumPy: a
segment is impassable where the water anywhere on it is deeper than the threshold.
Lengths in metres, areas in m², depths in metres.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from twin.scenarios.flood import FloodGrid

MAX_IDS = 500  # ids listed in a summary; counts are always complete
PIECES = (
    "WITH p AS MATERIALIZED (SELECT ST_GeomFromWKB(w, 4326) AS g "
    "FROM unnest(CAST(:pieces AS bytea[])) w), "
    "hit AS (SELECT DISTINCT t.id FROM p JOIN {table} t "
    "ON t.geom && p.g AND ST_Intersects(t.geom, p.g)) "
).format


def as_wkb(pieces: np.ndarray) -> list[bytes]:
    """The pieces (shapely polygons, EPSG:4326) as the ``pieces`` query parameter."""
    import shapely

    return list(shapely.to_wkb(pieces)) if len(pieces) else []


def buildings(conn: Connection, pieces: list[bytes], *, features: bool = False) -> dict[str, Any]:
    """Buildings touching the flooded area: count, floor area (area × levels, levels
    default 1), population where known, ids (capped), and optionally GeoJSON."""
    if features:
        return _building_features(conn, pieces)
    cols = conn.execute(text(PIECES(table="building") + (
        "SELECT array_agg(b.id ORDER BY b.id), coalesce(sum(b.area_m2 * coalesce(b.levels, 1)),"
        " 0), coalesce(sum(b.population), 0), array_agg(b.use) FROM hit "
        "JOIN building b ON b.id = hit.id")), {"pieces": pieces}).one()
    ids = list(cols[0] or [])
    by_use = Counter(cols[3] or [])
    return {
        "count": len(ids),
        "floor_area_m2": round(float(cols[1]), 1),
        "population": int(cols[2]),
        "by_use": dict(by_use.most_common()),
        "ids": ids[:MAX_IDS],
        "ids_truncated": len(ids) > MAX_IDS,
        "_ids": ids,
    }


def _building_features(conn: Connection, pieces: list[bytes]) -> dict[str, Any]:
    rows = conn.execute(text(PIECES(table="building") + (
        "SELECT b.id, b.area_m2 * coalesce(b.levels, 1) AS floor, b.population, b.use, "
        "b.name, ST_AsGeoJSON(b.geom, 6) AS g FROM hit JOIN building b ON b.id = hit.id "
        "ORDER BY b.id")), {"pieces": pieces}).all()
    ids = [int(r.id) for r in rows]
    return {
        "count": len(rows),
        "floor_area_m2": round(sum(float(r.floor or 0) for r in rows), 1),
        "population": sum(int(r.population or 0) for r in rows),
        "by_use": dict(Counter(r.use for r in rows).most_common()),
        "ids": ids[:MAX_IDS],
        "ids_truncated": len(ids) > MAX_IDS,
        "_ids": ids,
        "features": [
            {"type": "Feature", "id": int(r.id), "geometry": json.loads(r.g),
             "properties": {"id": int(r.id), "use": r.use, "name": r.name,
                            "population": r.population}}
            for r in rows
        ],
    }


def roads(
    conn: Connection, pieces: list[bytes], grid: FloodGrid, impassable_depth_m: float,
    *, features: bool = False,
) -> dict[str, Any]:
    """Road segments touching the flooded area, with length by class, and those where
    the water is deeper than ``impassable_depth_m`` somewhere along them."""
    import shapely

    cols = conn.execute(text(PIECES(table="road_segment") + (
        "SELECT array_agg(s.id ORDER BY s.id), array_agg(s.road_class ORDER BY s.id), "
        "array_agg(s.length_m ORDER BY s.id), array_agg(ST_AsBinary(s.geom) ORDER BY s.id), "
        "array_agg(s.name ORDER BY s.id) FROM hit JOIN road_segment s ON s.id = hit.id"
    )), {"pieces": pieces}).one()
    ids = np.asarray(cols[0] or [], np.int64)
    classes = np.asarray(cols[1] or [], object)
    length = np.asarray(cols[2] or [], float)
    lines = shapely.from_wkb([bytes(w) for w in cols[3] or []])
    depth = _max_depth_along(grid, lines) if len(ids) else np.zeros(0)
    deep = depth > impassable_depth_m
    out: dict[str, Any] = {
        "count": len(ids),
        "length_m": round(float(length.sum()), 1),
        "by_class": _by_class(classes, length),
        "impassable": {
            "depth_m": impassable_depth_m,
            "count": int(deep.sum()),
            "length_m": round(float(length[deep].sum()), 1),
            "by_class": _by_class(classes[deep], length[deep]),
            "ids": ids[deep][:MAX_IDS].tolist(),
            "ids_truncated": int(deep.sum()) > MAX_IDS,
            "streets": _streets(np.asarray(cols[4] or [], object)[deep], depth[deep],
                                length[deep]),
        },
        "ids": ids[:MAX_IDS].tolist(),
        "ids_truncated": len(ids) > MAX_IDS,
        # every impassable id, kept in the stored result for closures (not answered)
        "_impassable_ids": ids[deep].tolist(),
    }
    if features:
        names = cols[4] or []
        out["features"] = [
            {"type": "Feature", "id": int(i),
             "geometry": json.loads(shapely.to_geojson(lines[k])),
             "properties": {"id": int(i), "road_class": classes[k], "name": names[k],
                            "max_depth_m": round(float(depth[k]), 2),
                            "impassable": bool(deep[k])}}
            for k, i in enumerate(ids.tolist())
        ]
    return out


MAX_STREETS = 50  # named streets listed under "impassable", deepest first


def _streets(names: np.ndarray, depth: np.ndarray, length: np.ndarray) -> list[dict[str, Any]]:
    """The named streets among some segments, deepest first: a street's deepest water
    and the length of it under water past the limit (the list a dispatcher reads)."""
    by: dict[str, list[float]] = {}
    for n, d, m in zip(names.tolist(), depth.tolist(), length.tolist(), strict=True):
        if not n:
            continue
        cur = by.setdefault(str(n), [0.0, 0.0])
        cur[0] = max(cur[0], float(d))
        cur[1] += float(m)
    order = sorted(by.items(), key=lambda kv: (-kv[1][0], kv[0]))[:MAX_STREETS]
    return [{"name": n, "max_depth_m": round(d, 2), "length_m": round(m, 1)}
            for n, (d, m) in order]


def _by_class(classes: np.ndarray, length: np.ndarray) -> dict[str, dict[str, float]]:
    if not len(classes):
        return {}
    names, inv = np.unique(classes.astype(str), return_inverse=True)
    count = np.bincount(inv, minlength=len(names))
    total = np.bincount(inv, weights=length, minlength=len(names))
    order = np.argsort(-total, kind="stable")
    return {str(names[i]): {"count": int(count[i]), "length_m": round(float(total[i]), 1)}
            for i in order}


def _max_depth_along(grid: FloodGrid, lines: np.ndarray) -> np.ndarray:
    """Deepest water (m) on each line, sampled at its vertices after densifying it to
    ~half a DEM cell (EPSG:4326 lines; 0 where dry)."""
    import shapely

    cell = abs(grid.dem.transform.a)
    step = cell * 0.5 if grid.dem.geographic else cell * 0.5 / 111_320  # degrees
    dense = shapely.segmentize(lines, step)
    xy, owner = shapely.get_coordinates(dense, return_index=True)
    depth = np.nan_to_num(grid.dem.sample(grid.depth, xy[:, 0], xy[:, 1]), nan=0.0)
    out = np.zeros(len(lines))
    np.maximum.at(out, owner, depth)
    return out


def facilities(conn: Connection, pieces: list[bytes], grid: FloodGrid) -> dict[str, Any]:
    """Facilities (hospitals, shelters, schools, …) inside the flooded area, with the
    water depth at each."""
    sql = PIECES(table="facility") + (
        "SELECT f.id, f.kind, f.name_vi, f.name_en, f.capacity, ST_X(f.geom) AS lon, "
        "ST_Y(f.geom) AS lat FROM hit JOIN facility f ON f.id = hit.id ORDER BY f.kind, f.id"
    )
    rows = [dict(r) for r in conn.execute(text(sql), {"pieces": pieces}).mappings()]
    if rows:
        d = grid.dem.sample(grid.depth, np.array([r["lon"] for r in rows]),
                            np.array([r["lat"] for r in rows]))
        for r, v in zip(rows, d, strict=True):
            r["depth_m"] = None if np.isnan(v) else round(float(v), 2)
    by_kind: dict[str, int] = {}
    for r in rows:
        by_kind[r["kind"]] = by_kind.get(r["kind"], 0) + 1
    return {"count": len(rows), "by_kind": by_kind, "items": rows[:MAX_IDS]}
