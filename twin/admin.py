"""Administrative units over time: the 2025 merge as data, and "which unit, on which day".

Đà Nẵng's units changed on 2025-07-01: the districts were abolished and the old wards
merged into new ones. ``admin_area`` holds the polygons with half-open validity
``[valid_from, valid_to)``; ``admin_lineage`` holds which old unit became which new one
(loaded from the facts the project carries in ``data/demo/admin.yaml``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, text

from twin.demo import facts
from twin.demo.labels import slug

SOURCE = "data/demo/admin.yaml"


def lineage_rows() -> list[dict[str, Any]]:
    """Old ward or commune → new ward or commune, from the carried facts."""
    adm = facts.load("admin")
    wards = adm["wards"]
    changed_on = wards["valid_from"]
    if isinstance(changed_on, str):
        changed_on = dt.date.fromisoformat(changed_on)
    rows = []
    for unit in wards["units"]:
        new_level = unit["level"]
        new_prefix = "Xã" if new_level == "commune" else "Phường"
        district = f"district-{slug(unit['district'])}" if unit.get("district") else None
        for old in unit.get("from") or []:
            name = str(old)
            commune = name.lower().startswith("xã ") or new_level == "commune"
            bare = name[3:].strip() if name.lower().startswith("xã ") else name
            level = "commune" if commune else "ward"
            rows.append({
                "old_code": f"old-{level}-{slug(bare)}",
                "old_name_vi": f"{'Xã' if commune else 'Phường'} {bare}",
                "old_level": level, "old_parent_code": district,
                "new_code": f"{new_level}-{slug(unit['name'])}",
                "new_name_vi": f"{new_prefix} {unit['name']}", "new_level": new_level,
                "changed_on": changed_on, "share": 1.0, "source": SOURCE,
                "verified": bool(unit.get("verified", wards.get("verified", True))),
            })
    return rows


def load_lineage(conn: Connection) -> int:
    """Write the merge facts, and each district's area share in the new units whose
    polygons are in ``admin_area``. Idempotent; returns the rows written."""
    rows = lineage_rows()
    conn.execute(text("DELETE FROM admin_lineage WHERE source IN (:s, :d)"),
                 {"s": SOURCE, "d": "admin_area overlap"})
    if rows:
        conn.execute(text(
            "INSERT INTO admin_lineage (old_code, old_name_vi, old_level, old_parent_code, "
            "new_code, new_name_vi, new_level, changed_on, share, source, verified) VALUES "
            "(:old_code, :old_name_vi, :old_level, :old_parent_code, :new_code, :new_name_vi, "
            ":new_level, :changed_on, :share, :source, :verified)"), rows)
    # districts → new units, by the share of the district's area each new unit covers
    n = conn.execute(text("""
        INSERT INTO admin_lineage (old_code, old_name_vi, old_level, old_parent_code, new_code,
                                   new_name_vi, new_level, changed_on, share, source)
        SELECT d.code, d.name_vi, d.level, d.parent_code, w.code, w.name_vi, w.level,
               d.valid_to,
               ST_Area(ST_Intersection(d.geom, w.geom)::geography)
                 / nullif(ST_Area(d.geom::geography), 0),
               'admin_area overlap'
        FROM admin_area d JOIN admin_area w
          ON w.valid_from = d.valid_to AND ST_Intersects(d.geom, w.geom)
         AND w.level IN ('ward', 'commune')
        WHERE d.level = 'district' AND d.valid_to IS NOT NULL
          AND d.code IS NOT NULL AND w.code IS NOT NULL
          AND ST_Area(ST_Intersection(d.geom, w.geom)::geography)
              > 0.005 * ST_Area(d.geom::geography)
        ON CONFLICT (old_code, new_code, changed_on) DO NOTHING""")).rowcount
    return len(rows) + int(n or 0)


_COLS = ("code", "name_vi", "level", "parent_code", "changed_on", "share", "verified")


def lineage(conn: Connection, code: str) -> dict[str, Any] | None:
    """An old or new unit's successors and predecessors; None when the code is unknown."""
    succ = conn.execute(text(
        "SELECT new_code AS code, new_name_vi AS name_vi, new_level AS level, "
        "NULL::text AS parent_code, changed_on, share, verified, old_name_vi, old_level "
        "FROM admin_lineage WHERE old_code = :c ORDER BY share DESC NULLS LAST, new_code"),
        {"c": code}).mappings().all()
    pred = conn.execute(text(
        "SELECT old_code AS code, old_name_vi AS name_vi, old_level AS level, "
        "old_parent_code AS parent_code, changed_on, share, verified, new_name_vi, new_level "
        "FROM admin_lineage WHERE new_code = :c ORDER BY old_level, old_code"),
        {"c": code}).mappings().all()
    unit = conn.execute(text(
        "SELECT code, name_vi, name_en, level, valid_from, valid_to FROM admin_area "
        "WHERE code = :c ORDER BY valid_from NULLS FIRST LIMIT 1"), {"c": code}).mappings().first()
    if unit is None and not succ and not pred:
        return None
    if unit is not None:
        head: dict[str, Any] = dict(unit)
    elif succ:
        head = {"code": code, "name_vi": succ[0]["old_name_vi"], "name_en": None,
                "level": succ[0]["old_level"], "valid_from": None,
                "valid_to": succ[0]["changed_on"]}
    else:
        head = {"code": code, "name_vi": pred[0]["new_name_vi"], "name_en": None,
                "level": pred[0]["new_level"], "valid_from": pred[0]["changed_on"],
                "valid_to": None}
    return {**head, "became": [{k: r[k] for k in _COLS} for r in succ],
            "formed_from": [{k: r[k] for k in _COLS} for r in pred]}


def find_codes(conn: Connection, name: str) -> list[str]:
    """Codes of units (old or new) whose name matches ``name`` without diacritics."""
    rows = conn.execute(text("""
        SELECT code FROM (
          SELECT old_code AS code, old_name_vi AS n FROM admin_lineage
          UNION SELECT new_code, new_name_vi FROM admin_lineage
          UNION SELECT code, name_vi FROM admin_area WHERE code IS NOT NULL) u
        WHERE lower(unaccent(n)) = lower(unaccent(:q))
           OR regexp_replace(lower(unaccent(n)), '^(phuong|xa|quan|huyen) ', '')
              = lower(unaccent(:q))
        ORDER BY code"""), {"q": name.strip()}).scalars().all()
    return list(dict.fromkeys(rows))


def units_at(conn: Connection, lon: float, lat: float, on: dt.date) -> list[dict[str, Any]]:
    """The units containing the point that were valid on ``on`` (finest level first)."""
    rows = conn.execute(text("""
        SELECT code, name_vi, name_en, level, parent_code, valid_from, valid_to
        FROM admin_area
        WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326))
          AND coalesce(valid_from, '-infinity'::date) <= :d
          AND coalesce(valid_to, 'infinity'::date) > :d
        ORDER BY CASE level WHEN 'ward' THEN 0 WHEN 'commune' THEN 0 WHEN 'district' THEN 1
                 WHEN 'city' THEN 2 ELSE 3 END, code"""),
        {"x": lon, "y": lat, "d": on}).mappings().all()
    return [dict(r) for r in rows]
