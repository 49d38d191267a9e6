"""Road closure: close segments (or everything a flood makes impassable) and find what
is cut off, which buildings lose road access to a hospital, and how drive times to the
nearest hospital and fire station change (pgRouting, before and after).

Connectivity is undirected (a one-way street still connects its ends). In each part of
the network a closed segment belonged to, the largest piece left after the closure is
the main part; nodes outside it are cut off, grouped by the piece they fall into.
Coordinates lon/lat EPSG:4326; times in seconds; lengths in metres.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from twin.analysis import routing
from twin.analysis.components import snap_sql
from twin.errors import InputError
from twin.i18n import t as t_
from twin.scenarios import store
from twin.scenarios.models import DEPTH_KINDS

MAX_CLOSED = 50_000
MAX_POINTS = 20
MAX_LISTED = 2_000
KINDS = ("hospital", "fire_station")
#: buildings farther than this (degrees, ~200 m) from every cut-off node are not checked
REACH_DEG = 0.002
CANDIDATES = 4  # facilities routed per nearest-by-drive call


def closed_from(
    conn: Connection, segment_ids: list[int] | None, scenario_id: int | None
) -> list[int]:
    """The segments to close: the given ids (all must exist) or the impassable roads of a
    stored flood scenario."""
    if (segment_ids is None) == (scenario_id is None):
        raise InputError("give segment_ids or the scenario_id of a flood")
    if scenario_id is not None:
        row = store.get_row(conn, scenario_id)
        if row["kind"] not in DEPTH_KINDS:  # a rain or river flood's roads too
            raise InputError(f"scenario {scenario_id} is a {row['kind']}, not a flood")
        return [int(i) for i in (row["result"] or {}).get("_impassable_ids", [])]
    ids = sorted({int(i) for i in segment_ids or []})
    if not ids:
        raise InputError("segment_ids is empty")
    if len(ids) > MAX_CLOSED:
        raise InputError(f"at most {MAX_CLOSED} segments can be closed")
    found = set(
        conn.execute(
            text("SELECT id FROM road_segment WHERE id = ANY(:ids)"), {"ids": ids}
        ).scalars()
    )
    missing = [i for i in ids if i not in found]
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (" …" if len(missing) > 5 else "")
        raise InputError(f"unknown road segment id(s): {shown}")
    return ids


def cut_off(conn: Connection, closed: list[int]) -> dict[int, int]:
    """Nodes cut off from the main part of their network when ``closed`` are closed,
    mapped to a group id (the piece they end up in; a node left with no open edge is
    alone)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    cols = conn.execute(text("SELECT array_agg(id), array_agg(from_node), array_agg(to_node) "
                             "FROM road_segment")).one()
    if not cols[0]:
        return {}
    arr = np.column_stack([np.asarray(c, dtype=np.int64) for c in cols])
    nodes, inv = np.unique(arr[:, 1:], return_inverse=True)
    inv = inv.reshape(-1, 2)
    n = len(nodes)

    def components(keep: np.ndarray) -> np.ndarray:
        e = inv[keep]
        g = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
        return connected_components(g, directed=False)[1]  # type: ignore[no-any-return]

    before = components(np.ones(len(arr), bool))
    is_closed = np.isin(arr[:, 0], np.asarray(closed, np.int64))
    if not is_closed.any():  # the closed segments are gone (deleted since): nothing cut
        return {}
    after = components(~is_closed)
    # the parts of the network the closed segments belonged to; in each, the largest
    # piece left is its main part and the rest is cut off
    touched = np.isin(before, np.unique(before[inv[is_closed].ravel()]))
    pairs, counts = np.unique(np.stack([before[touched], after[touched]], axis=1), axis=0,
                              return_counts=True)
    order = np.lexsort((-counts, pairs[:, 0]))
    first = np.concatenate([[True], pairs[order][1:, 0] != pairs[order][:-1, 0]])
    main_of = dict(zip(pairs[order][first, 0].tolist(), pairs[order][first, 1].tolist(),
                       strict=True))
    lost = [i for i in np.flatnonzero(touched) if after[i] != main_of[int(before[i])]]
    return {int(nodes[i]): int(after[i]) for i in lost}


def _groups(conn: Connection, lost: dict[int, int], closed: list[int]) -> list[dict[str, Any]]:
    """Cut-off groups with their open segments (GeoJSON) and the hospitals inside."""
    if not lost:
        return []
    node_ids, group_ids = list(lost), list(lost.values())
    rows = conn.execute(
        text(
            "WITH cut(node, grp) AS (SELECT * FROM unnest(CAST(:n AS bigint[]), "
            "CAST(:g AS bigint[]))) SELECT c.grp, count(DISTINCT s.id), coalesce(sum(s.length_m), "
            "0), ST_AsGeoJSON(ST_Collect(s.geom), 6) FROM cut c LEFT JOIN road_segment s ON "
            "s.from_node = c.node AND s.id <> ALL(CAST(:closed AS bigint[])) GROUP BY c.grp"
        ),
        {"n": node_ids, "g": group_ids, "closed": closed},
    ).all()
    sizes: dict[int, int] = {}
    for g in group_ids:
        sizes[g] = sizes.get(g, 0) + 1
    return [
        {"group": int(r[0]), "nodes": sizes[int(r[0])], "segments": int(r[1]),
         "length_m": round(float(r[2]), 1), "geometry": json.loads(r[3]) if r[3] else None}
        for r in sorted(rows, key=lambda r: -sizes[int(r[0])])
    ]


def _hospital_nodes(conn: Connection) -> set[int]:
    """The road nodes hospitals are reached from (snapped as routing snaps)."""
    return set(
        conn.execute(
            text(
                f"SELECT n.id FROM facility f CROSS JOIN {snap_sql('f.geom', alias='n')} "
                "WHERE f.kind = 'hospital'"
            )
        ).scalars()
    )


def _stranded_buildings(
    conn: Connection, lost: dict[int, int], hospital_groups: set[int]
) -> list[dict[str, Any]]:
    """Buildings whose road node (snapped as routing snaps) is cut off in a group with no
    hospital (looked for within ``REACH_DEG`` of the cut-off nodes)."""
    nodes = [n for n, g in lost.items() if g not in hospital_groups]
    if not nodes:
        return []
    rows = conn.execute(
        text(
            "WITH cut AS (SELECT id, geom FROM road_node WHERE id = ANY(:n)), "
            "cand AS (SELECT DISTINCT b.id, b.population, ST_PointOnSurface(b.geom) AS c "
            "FROM cut JOIN building b ON b.geom && ST_Expand(cut.geom, :r)) "
            "SELECT cand.id, cand.population, ST_X(c), ST_Y(c) FROM cand "
            f"CROSS JOIN {snap_sql('cand.c', alias='nn')} "
            "WHERE nn.id = ANY(:n) ORDER BY cand.id"
        ),
        {"n": nodes, "r": REACH_DEG},
    ).all()
    return [{"id": int(r[0]), "population": int(r[1] or 0), "lon": r[2], "lat": r[3]}
            for r in rows]


def _sample_points(conn: Connection, closed: list[int], samples: int) -> list[list[float]]:
    """Up to ``samples`` distinct end nodes of the closed segments, spread evenly."""
    rows = conn.execute(
        text(
            "SELECT DISTINCT n.id, ST_X(n.geom), ST_Y(n.geom) FROM road_segment s JOIN road_node n"
            " ON n.id IN (s.from_node, s.to_node) WHERE s.id = ANY(:ids) ORDER BY n.id"
        ),
        {"ids": closed},
    ).all()
    if not rows or samples <= 0:
        return []
    pick = np.unique(np.linspace(0, len(rows) - 1, min(samples, len(rows))).round().astype(int))
    return [[float(rows[i][1]), float(rows[i][2])] for i in pick]


def _best(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not items:
        return None
    f = items[0]
    return {"id": f["id"], "name_vi": f.get("name_vi"), "name_en": f.get("name_en"),
            "drive_s": f["drive_s"], "route_m": f["route_m"], "route": f["route"]}


def drive_times(
    conn: Connection, points: list[list[float]], closed: list[int]
) -> list[dict[str, Any]]:
    """Drive time to the nearest hospital and fire station from each point, before and
    after the closure (``after`` None: none reachable any more)."""
    out = []
    for lon, lat in points:
        for kind in KINDS:
            before = _best(routing.nearest_by_drive(conn, lon, lat, kind, k=1,
                                                    candidates=CANDIDATES))
            after = _best(routing.nearest_by_drive(conn, lon, lat, kind, k=1,
                                                   candidates=CANDIDATES, closed=closed))
            delta = None
            if before and after:
                delta = round(after["drive_s"] - before["drive_s"], 1)
            out.append({"point": [lon, lat], "kind": kind, "before": before, "after": after,
                         "delta_s": delta, "unreachable": before is not None and after is None})
    return out


def _origin(
    conn: Connection, origin: list[float] | None, closed: list[int], first: int | None
) -> dict[str, Any] | None:
    """Where the facility times are measured from: the given [lon, lat], or by default the
    midpoint of the first closed segment (the road the user clicked first)."""
    if origin is not None:
        lon, lat = float(origin[0]), float(origin[1])
        routing.check_lonlat(lon, lat)
        road = conn.execute(
            text("SELECT name FROM road_segment WHERE name IS NOT NULL AND name <> '' AND "
                 "geom && ST_Expand(ST_SetSRID(ST_MakePoint(:x, :y), 4326), 0.003) ORDER BY "
                 "geom <-> ST_SetSRID(ST_MakePoint(:x, :y), 4326) LIMIT 1"),
            {"x": lon, "y": lat},
        ).scalar()
        return {"lon": lon, "lat": lat, "source": "given", "road": road, "segment_id": None}
    if not closed:
        return None
    seg = first if first in closed else closed[0]
    row = conn.execute(
        text("SELECT ST_X(p), ST_Y(p), name FROM (SELECT ST_LineInterpolatePoint("
             "ST_LineMerge(geom), 0.5) AS p, name FROM road_segment WHERE id = :i "
             "AND GeometryType(ST_LineMerge(geom)) = 'LINESTRING' UNION ALL SELECT "
             "ST_PointOnSurface(geom), name FROM road_segment WHERE id = :i) q LIMIT 1"),
        {"i": seg},
    ).one()
    return {"lon": round(float(row[0]), 6), "lat": round(float(row[1]), 6),
            "source": "closed_midpoint", "road": row[2], "segment_id": seg}


def facility_times(
    conn: Connection, lon: float, lat: float, closed: list[int], k: int = 3
) -> list[dict[str, Any]]:
    """The ``k`` nearest hospitals and the nearest fire station by drive time from a
    point, each with its drive time before and after the closure (``after_s`` None: not
    reachable any more) and both routes. The same candidates are routed both times, so a
    facility is compared with itself."""
    out: list[dict[str, Any]] = []
    for kind, n in (("hospital", k), ("fire_station", 1)):
        m = max(CANDIDATES, n + 1)
        before = routing.nearest_by_drive(conn, lon, lat, kind, k=m, candidates=m)
        after = {f["id"]: f for f in routing.nearest_by_drive(
            conn, lon, lat, kind, k=m, candidates=m, closed=closed)}
        for f in before[:n]:
            a = after.get(f["id"])
            out.append({
                "kind": kind, "id": f["id"], "name_vi": f.get("name_vi"),
                "name_en": f.get("name_en"), "lon": f["lon"], "lat": f["lat"],
                "before_s": f["drive_s"], "after_s": a["drive_s"] if a else None,
                "delta_s": round(a["drive_s"] - f["drive_s"], 1) if a else None,
                "before_m": f["route_m"], "after_m": a["route_m"] if a else None,
                "unreachable": a is None,
                "changed": a is None or abs(a["drive_s"] - f["drive_s"]) >= 1,
                "route_before": f["route"], "route_after": a["route"] if a else None,
            })
    return out


def run_closure(
    conn: Connection,
    *,
    segment_ids: list[int] | None = None,
    scenario_id: int | None = None,
    origin: list[float] | None = None,
    points: list[list[float]] | None = None,
    samples: int = 4,
    name: str | None = None,
    created_by: str | None = None,
    save: bool = True,
) -> dict[str, Any]:
    """Close road segments and report what is cut off and what changes (see the module).

    ``origin`` ([lon, lat], default: the midpoint of the first closed segment) is where
    ``summary.facilities`` is measured from: the nearest hospitals and fire station, each
    with its drive time before → after and both routes in ``features``
    (``route_before`` / ``route_after`` with property ``origin: true``). ``points`` (or
    ``samples`` ends of the closed segments) give ``summary.drive_times`` as before.

    Returns
    -------
    dict
        The scenario view (``store.public_view``) with ``features``: a GeoJSON
        FeatureCollection of the closed and cut-off roads, stranded buildings (points),
        the origin and the before/after routes (property ``layer``).
    """
    t0 = time.perf_counter()
    if origin is not None and len(origin) != 2:
        raise InputError("origin must be a [lon, lat] pair")
    for p in points or []:
        if len(p) != 2:
            raise InputError("points must be [lon, lat] pairs")
        routing.check_lonlat(float(p[0]), float(p[1]))
    if len(points or []) > MAX_POINTS or not 0 <= samples <= MAX_POINTS:
        raise InputError(f"at most {MAX_POINTS} points and samples")
    closed = closed_from(conn, segment_ids, scenario_id)
    lost = cut_off(conn, closed)
    groups = _groups(conn, lost, closed)
    hosp = {lost[n] for n in _hospital_nodes(conn) if n in lost}
    stranded = _stranded_buildings(conn, lost, hosp)
    pts = [[float(x), float(y)] for x, y in (points or [])] or _sample_points(conn, closed,
                                                                              samples)
    times = drive_times(conn, pts, closed) if closed else []
    first = int(segment_ids[0]) if segment_ids else None
    where = _origin(conn, origin, closed, first)
    facs = facility_times(conn, where["lon"], where["lat"], closed) if where and closed else []
    closed_geo = conn.execute(
        text("SELECT ST_AsGeoJSON(ST_Collect(geom), 6), coalesce(sum(length_m), 0) "
             "FROM road_segment WHERE id = ANY(:ids)"), {"ids": closed}
    ).one()
    summary: dict[str, Any] = {
        "closed": {"count": len(closed), "length_m": round(float(closed_geo[1]), 1),
                   "ids": closed[:MAX_LISTED]},
        "cut_off": {
            "groups": len(groups), "nodes": len(lost),
            "segments": sum(g["segments"] for g in groups),
            "length_m": round(sum(g["length_m"] for g in groups), 1),
            "with_hospital": len(hosp),
        },
        "buildings": {
            "count": len(stranded), "population": sum(b["population"] for b in stranded),
            "ids": [b["id"] for b in stranded[:MAX_LISTED]],
            "ids_truncated": len(stranded) > MAX_LISTED,
        },
        "drive_times": [
            {**t, **{side: {k: v for k, v in t[side].items() if k != "route"}
                     for side in ("before", "after") if t[side]}}
            for t in times
        ],
        "origin": where,
        "facilities": [{k: v for k, v in f.items() if not k.startswith("route_")}
                       for f in facs],
        "notes_i18n": {lang: [t_("closure.method", lang)] for lang in ("vi", "en")},
        "timing_ms": {"total": round((time.perf_counter() - t0) * 1000, 1)},
        "_building_ids": [b["id"] for b in stranded],
    }
    feats = _features(closed_geo[0], groups, stranded, times)
    feats["features"] += _origin_features(where, facs)
    summary["_geojson"] = feats
    params = {"segment_ids": segment_ids, "scenario_id": scenario_id, "origin": origin,
              "points": points, "samples": samples}
    return store.record(conn, "closure", params, summary, name=name, created_by=created_by,
                        save=save)


def _features(
    closed_geojson: str | None, groups: list[dict[str, Any]], stranded: list[dict[str, Any]],
    times: list[dict[str, Any]],
) -> dict[str, Any]:
    feats: list[dict[str, Any]] = []
    if closed_geojson:
        feats.append({"type": "Feature", "geometry": json.loads(closed_geojson),
                      "properties": {"layer": "closed"}})
    for g in groups:
        if g["geometry"]:
            feats.append({"type": "Feature", "geometry": g["geometry"],
                          "properties": {"layer": "cut_off", "group": g["group"],
                                         "nodes": g["nodes"], "length_m": g["length_m"]}})
    for b in stranded[:MAX_LISTED]:
        feats.append({"type": "Feature", "id": b["id"],
                      "geometry": {"type": "Point", "coordinates": [b["lon"], b["lat"]]},
                      "properties": {"layer": "building", "id": b["id"],
                                     "population": b["population"]}})
    for t in times:
        for side in ("before", "after"):
            if t[side]:
                feats.append({"type": "Feature", "geometry": t[side]["route"],
                              "properties": {"layer": f"route_{side}", "kind": t["kind"],
                                             "drive_s": t[side]["drive_s"],
                                             "facility": t[side]["name_vi"]}})
    return {"type": "FeatureCollection", "features": feats}


def _origin_features(where: dict[str, Any] | None,
                     facs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The origin point, the facilities and the routes from the origin, before and after."""
    if not where:
        return []
    feats: list[dict[str, Any]] = [
        {"type": "Feature", "geometry": {"type": "Point",
                                         "coordinates": [where["lon"], where["lat"]]},
         "properties": {"layer": "origin", "road": where.get("road")}}]
    for f in facs:
        base = {"kind": f["kind"], "facility_id": f["id"], "facility": f["name_vi"],
                "name_vi": f["name_vi"], "name_en": f["name_en"], "origin": True}
        feats.append({"type": "Feature", "geometry": {"type": "Point",
                                                      "coordinates": [f["lon"], f["lat"]]},
                      "properties": {"layer": "facility", **base}})
        for side in ("before", "after"):
            route = f[f"route_{side}"]
            if route:
                feats.append({"type": "Feature", "geometry": route,
                              "properties": {"layer": f"route_{side}", **base,
                                             "drive_s": f[f"{side}_s"]}})
    return feats
