"""Stored scenarios: save, read back (with the flooded polygon as GeoJSON), list,
delete and compare two of them. Geometry in EPSG:4326; areas in km²."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from twin.errors import InputError, NotFound
from twin.scenarios import metrics
from twin.scenarios.models import DEPTH_KINDS, KINDS

COLUMNS = (
    "id, kind, name, description, params, result, created_at, created_by, public, "
    "raster_path, incident_id"
)


def insert(
    conn: Connection,
    kind: str,
    params: dict[str, Any],
    *,
    name: str | None = None,
    created_by: str | None = None,
    result: dict[str, Any] | None = None,
    geom_wkb: bytes | None = None,
    public: bool = False,
    incident_id: int | None = None,
) -> int:
    """Insert a scenario row; ``geom_wkb`` is a (Multi)Polygon in EPSG:4326."""
    return int(
        conn.execute(
            text(
                "INSERT INTO scenario (kind, name, params, result, created_by, public, "
                "incident_id, geom) VALUES (:kind, :name, CAST(:params AS jsonb), "
                "CAST(:result AS jsonb), :by, :public, :incident, CASE WHEN CAST(:wkb AS bytea) "
                "IS NULL THEN NULL ELSE ST_Multi(ST_GeomFromWKB(CAST(:wkb AS bytea), 4326)) END) "
                "RETURNING id"
            ),
            {"kind": kind, "name": name, "params": json.dumps(params),
             "result": None if result is None else json.dumps(result), "by": created_by,
             "public": public, "incident": incident_id, "wkb": geom_wkb},
        ).scalar_one()
    )


def record(
    conn: Connection,
    kind: str,
    params: dict[str, Any],
    result: dict[str, Any],
    *,
    name: str | None = None,
    created_by: str | None = None,
    save: bool = True,
) -> dict[str, Any]:
    """Store a computed closure or outage (unless ``save`` is false) and answer its view,
    with ``features`` (its GeoJSON FeatureCollection)."""
    if save:
        row = get_row(conn, insert(conn, kind, params, name=name, created_by=created_by,
                                   result=result))
    else:
        row = {"id": None, "kind": kind, "name": name, "description": None, "params": params,
               "result": result,
               "created_at": None, "created_by": created_by, "public": False,
               "raster_path": None, "incident_id": None}
    out = public_view(row)
    out["features"] = result.get("_geojson")
    return out


def finish(
    conn: Connection, scenario_id: int, result: dict[str, Any], raster_path: str | None = None,
    *, geom_wkb: bytes | None = None,
) -> None:
    """Store a scenario's result, depth raster path and (Multi)Polygon (EPSG:4326)."""
    conn.execute(
        text("UPDATE scenario SET result = CAST(:r AS jsonb), raster_path = :p, "
             "geom = CASE WHEN CAST(:wkb AS bytea) IS NULL THEN geom ELSE "
             "ST_Multi(ST_GeomFromWKB(CAST(:wkb AS bytea), 4326)) END WHERE id = :i"),
        {"r": json.dumps(result), "p": raster_path, "i": scenario_id, "wkb": geom_wkb},
    )


def get_row(conn: Connection, scenario_id: int) -> dict[str, Any]:
    row = conn.execute(
        text(f"SELECT {COLUMNS} FROM scenario WHERE id = :i"), {"i": scenario_id}
    ).mappings().first()
    if row is None:
        raise NotFound(f"scenario {scenario_id} not found")
    return dict(row)


def public_view(row: dict[str, Any]) -> dict[str, Any]:
    """The answer for a scenario row: internal keys (``_…``) and the file path dropped."""
    result = {k: v for k, v in (row.get("result") or {}).items() if not k.startswith("_")}
    if isinstance(result.get("roads"), dict):
        result["roads"] = {k: v for k, v in result["roads"].items() if not k.startswith("_")}
    out = {
        "id": row["id"],
        "kind": row["kind"],
        "name": row["name"],
        "description": row.get("description"),
        "kind_label": metrics.kind_label(row["kind"]),
        "headline": metrics.headline(row["kind"], row["params"] or {}, result),
        "params": row["params"],
        "created_at": row["created_at"].isoformat() if row.get("created_at") else None,
        "created_by": row["created_by"],
        "public": row.get("public", False),
        "incident_id": row.get("incident_id"),
        "summary": result,
        "links": links(row["id"], row["kind"], row.get("raster_path")),
    }
    return out


def links(scenario_id: int | None, kind: str, raster_path: str | None) -> dict[str, str]:
    if scenario_id is None:
        return {}
    out = {"self": f"/scenarios/{scenario_id}"}
    if kind in DEPTH_KINDS and raster_path:  # rain and river floods draw as floods
        out["tiles"] = f"/raster/flood/{scenario_id}/{{z}}/{{x}}/{{y}}.png"
        out["tilejson"] = f"/raster/flood/{scenario_id}/tilejson.json"
    return out


def get(conn: Connection, scenario_id: int, *, geometry: bool = True) -> dict[str, Any]:
    """A stored scenario with its summary and, for a flood, the flooded area as GeoJSON
    (simplified to ~5 m, 6 decimals)."""
    row = get_row(conn, scenario_id)
    out = public_view(row)
    if "_geojson" in (row.get("result") or {}):
        out["features"] = row["result"]["_geojson"]
    if geometry:
        g = conn.execute(
            text("SELECT ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, 0.00005), 6) "
                 "FROM scenario WHERE id = :i"),
            {"i": scenario_id},
        ).scalar()
        out["geometry"] = json.loads(g) if g else None
    return out


def list_(
    conn: Connection, kind: str | None = None, limit: int = 50, offset: int = 0,
    incident_id: int | None = None, *, author: str | None = None, q: str | None = None,
) -> dict[str, Any]:
    """Scenarios, newest first, without geometry; optionally of one kind or a comma list
    of kinds, those run for one incident (:class:`NotFound` when there is no such
    incident), by one author, or whose name contains ``q`` (case and accents as typed,
    case-insensitive)."""
    kinds = [k.strip() for k in (kind or "").split(",") if k.strip()]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise InputError(f"kind must be one of {', '.join(KINDS)}")
    if incident_id is not None and not conn.execute(
            text("SELECT 1 FROM incident WHERE id = :i"), {"i": incident_id}).first():
        raise NotFound(f"incident {incident_id} not found")
    like = None
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    conds = (["kind = ANY(:kind)"] if kinds else []) + (
        ["incident_id = :iid"] if incident_id is not None else []) + (
        ["created_by = :author"] if author else []) + (
        ["name ILIKE :q"] if like else [])
    where = f"WHERE {' AND '.join(conds)}" if conds else ""
    binds = {"kind": kinds, "iid": incident_id, "author": author, "q": like}
    light = COLUMNS.replace(
        "result", "result - '_building_ids' - '_impassable_ids' - '_geojson' AS result"
    )
    rows = conn.execute(
        text(f"SELECT {light} FROM scenario {where} ORDER BY created_at DESC, id DESC "
             f"LIMIT :limit OFFSET :offset"),
        {**binds, "limit": limit, "offset": offset},
    ).mappings().all()
    total = conn.execute(text(f"SELECT count(*) FROM scenario {where}"), binds).scalar_one()
    return {"total": int(total), "limit": limit, "offset": offset,
            "items": [public_view(dict(r)) for r in rows]}


def update(
    conn: Connection, scenario_id: int, *, name: str | None = None,
    description: str | None = None, clear_description: bool = False,
) -> dict[str, Any]:
    """Rename a scenario and/or set its description (``clear_description`` empties it);
    answers its view without geometry."""
    get_row(conn, scenario_id)
    if name is not None and not name.strip():
        raise InputError("name must not be empty")
    conn.execute(
        text("UPDATE scenario SET name = coalesce(:n, name), description = CASE WHEN :clear "
             "THEN NULL ELSE coalesce(:d, description) END WHERE id = :i"),
        {"n": name.strip() if name is not None else None, "d": description,
         "clear": clear_description, "i": scenario_id},
    )
    return get(conn, scenario_id, geometry=False)


def delete(conn: Connection, scenario_id: int) -> None:
    """Delete a scenario and its depth raster."""
    row = get_row(conn, scenario_id)
    conn.execute(text("DELETE FROM scenario WHERE id = :i"), {"i": scenario_id})
    if row.get("raster_path"):
        Path(row["raster_path"]).unlink(missing_ok=True)


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a summary, keyed by dotted path (lists and ids skipped)."""
    out: dict[str, float] = {}
    for k, v in d.items():
        if k.startswith("_") or k in ("timing_ms", "ids"):
            continue
        key = f"{prefix}{k}"
        if isinstance(v, bool):
            continue
        if isinstance(v, int | float):
            out[key] = float(v)
        elif isinstance(v, dict):
            out.update(_flat(v, key + "."))
    return out


def compare(conn: Connection, a: int, b: int) -> dict[str, Any]:
    """Two scenarios side by side: the difference table (:func:`metrics.table`; two
    scenarios of different families are an :class:`InputError`), every numeric figure
    with its change (b − a); for two floods also the area flooded in only one of them
    (km², GeoJSON) and the buildings affected in only one."""
    ra, rb = get_row(conn, a), get_row(conn, b)
    table = metrics.table(ra["kind"], ra.get("result") or {}, rb["kind"], rb.get("result") or {})
    fa, fb = _flat(ra.get("result") or {}), _flat(rb.get("result") or {})
    delta = {k: round(fb.get(k, 0.0) - fa.get(k, 0.0), 3) for k in sorted(fa.keys() | fb.keys())}
    ids_a = set((ra.get("result") or {}).get("_building_ids", []))
    ids_b = set((rb.get("result") or {}).get("_building_ids", []))
    out: dict[str, Any] = {
        "a": public_view(ra),
        "b": public_view(rb),
        "delta": delta,
        # the difference table of the viewer: per metric a, b and b − a, unit, labels
        "table": table,
        "buildings": {
            "only_a": len(ids_a - ids_b), "only_b": len(ids_b - ids_a), "both": len(ids_a & ids_b),
            "only_a_ids": sorted(ids_a - ids_b)[:500], "only_b_ids": sorted(ids_b - ids_a)[:500],
        },
    }
    if ra["kind"] in DEPTH_KINDS and rb["kind"] in DEPTH_KINDS:
        out["area"] = _compare_areas(conn, a, b)
    return out


def _compare_areas(conn: Connection, a: int, b: int) -> dict[str, Any]:
    """Area flooded in only one of two floods: km² and GeoJSON (simplified ~5 m)."""
    row = conn.execute(
        text(
            "WITH s AS (SELECT (SELECT geom FROM scenario WHERE id = :a) AS ga, "
            "(SELECT geom FROM scenario WHERE id = :b) AS gb), "
            "d AS (SELECT CASE WHEN ga IS NULL THEN NULL WHEN gb IS NULL THEN ga "
            "ELSE ST_Difference(ga, gb) END AS only_a, CASE WHEN gb IS NULL THEN NULL "
            "WHEN ga IS NULL THEN gb ELSE ST_Difference(gb, ga) END AS only_b FROM s) "
            "SELECT coalesce(ST_Area(only_a::geography), 0) / 1e6, "
            "coalesce(ST_Area(only_b::geography), 0) / 1e6, "
            "ST_AsGeoJSON(ST_SimplifyPreserveTopology(only_a, 0.00005), 6), "
            "ST_AsGeoJSON(ST_SimplifyPreserveTopology(only_b, 0.00005), 6) FROM d"
        ),
        {"a": a, "b": b},
    ).one()
    return {
        "only_a_km2": round(float(row[0]), 4),
        "only_b_km2": round(float(row[1]), 4),
        "only_a": json.loads(row[2]) if row[2] else None,
        "only_b": json.loads(row[3]) if row[3] else None,
    }
