"""Admin areas and place labels of the demo city, as rows for :mod:`twin.demo.writer`.

Polygons and points come in the local frame (metres); areas are reported in km².
Districts are valid until 2025-07-01, wards and communes from that day on.
"""

from __future__ import annotations

import re
from typing import Any

from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from twin.demo import facts
from twin.demo.geo import Area, Geography, pt


def slug(text: str) -> str:
    """``Hải Châu`` → ``hai-chau``."""
    return re.sub(r"[^a-z0-9]+", "-", facts.ascii_name(text).lower()).strip("-")


def district_label(a: Area) -> tuple[str, str]:
    if a.facts.get("type") == "huyện":
        return f"Huyện {a.name}", f"{facts.ascii_name(a.name)} District (rural)"
    return f"Quận {a.name}", f"{facts.ascii_name(a.name)} District"


def ward_label(a: Area) -> tuple[str, str]:
    if a.level == "commune":
        return f"Xã {a.name}", f"{facts.ascii_name(a.name)} Commune"
    return f"Phường {a.name}", f"{facts.ascii_name(a.name)} Ward"


def admin_rows(geo: Geography) -> list[dict[str, Any]]:
    """The city outline, the 7 historic districts and the 15 wards/communes."""
    adm = facts.load("admin")
    city = adm["city"]
    rows: list[dict[str, Any]] = [{
        "source_id": "admin/city/da-nang", "level": "city", "code": "city-da-nang",
        "name_vi": city["name_vi"], "name_en": city["name_en"], "parent_code": None,
        "population": None, "area_km2": round(geo.land.area / 1e6, 2), "valid_from": None,
        "valid_to": None, "geom": geo.land,
    }]
    valid_to = adm["districts"]["valid_to"]
    for d in geo.districts:
        vi, en = district_label(d)
        rows.append({
            "source_id": f"admin/district/{slug(d.name)}", "level": "district",
            "code": f"district-{slug(d.name)}", "name_vi": vi, "name_en": en,
            "parent_code": "city-da-nang", "population": d.facts.get("pop_2019"),
            "area_km2": round(d.geom.area / 1e6, 2), "valid_from": None,
            "valid_to": valid_to, "geom": d.geom,
        })
    valid_from = adm["wards"]["valid_from"]
    for w in geo.wards:
        vi, en = ward_label(w)
        rows.append({
            "source_id": f"admin/{w.level}/{slug(w.name)}", "level": w.level,
            "code": f"{w.level}-{slug(w.name)}", "name_vi": vi, "name_en": en,
            "parent_code": "city-da-nang", "population": None,
            "area_km2": round(w.geom.area / 1e6, 2), "valid_from": valid_from,
            "valid_to": None, "geom": w.geom,
        })
    return rows


def place_rows(geo: Geography, bridges: list[tuple[str, BaseGeometry]]) -> list[dict[str, Any]]:
    """Labels: city (rank 1), districts (2), wards (3), landmarks and bridges (3–5)."""
    adm = facts.load("admin")
    rows: list[dict[str, Any]] = [{"kind": "city", "name_vi": adm["city"]["name_vi"],
                                   "name_en": adm["city"]["name_en"], "rank": 1,
                                   "geom": pt(adm["city"]["centre"])}]
    for d in geo.districts:
        vi, en = district_label(d)
        rows.append({"kind": "district", "name_vi": vi, "name_en": en, "rank": 2, "geom": d.seed})
    for w in geo.wards:
        vi, en = ward_label(w)
        spot = w.seed if w.geom.contains(w.seed) else w.geom.representative_point()
        rows.append({"kind": "ward", "name_vi": vi, "name_en": en, "rank": 3, "geom": spot})
    for lm in facts.load("places")["landmarks"]:
        rows.append({"kind": lm.get("kind", "landmark"), "name_vi": lm["name_vi"],
                     "name_en": lm["name_en"], "rank": int(lm.get("rank", 4)),
                     "geom": pt(lm["lonlat"])})
    names_en = {b["name_vi"]: b["name_en"] for b in facts.load("roads")["bridges"]}
    for item in facts.load("roads")["crossings"]["items"]:
        names_en[item["name_vi"]] = item["name_en"]
    seen: set[str] = set()
    for name, geom in bridges:
        if name in seen or name not in names_en:
            continue
        seen.add(name)
        rows.append({"kind": "bridge", "name_vi": name, "name_en": names_en[name], "rank": 4,
                     "geom": geom.interpolate(0.5, normalized=True)})
    for r in geo.rivers.values():
        rows.append({"kind": "landmark", "name_vi": r.name_vi, "name_en": r.name_en, "rank": 4,
                     "geom": _on_land(r.line, geo)})
    for i, row in enumerate(rows):
        row["source_id"] = f"place/{i:05d}"
    return rows


def _on_land(line: BaseGeometry, geo: Geography) -> Point:
    inside = line.intersection(geo.land)
    return inside.interpolate(0.5, normalized=True) if not inside.is_empty else \
        line.interpolate(0.5, normalized=True)
