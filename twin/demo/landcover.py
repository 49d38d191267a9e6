"""Land cover of the demo city and the areas kept free of streets and buildings.

Geometry is built in the local frame (metres, see :mod:`twin.demo.geo`). Kinds written to
``land_cover``: ``water`` (rivers), ``sea``, ``forest``, ``park``, ``beach``,
``aerodrome``, ``industrial``, ``residential``, ``farmland``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.affinity import rotate
from shapely.geometry import Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from twin.demo import facts
from twin.demo.geo import Geography, polygonal, pt, to_local, to_local_xy


@dataclass
class Zones:
    """Special areas (local metres)."""

    airport: BaseGeometry
    marble: BaseGeometry
    beach: BaseGeometry
    industrial: list[tuple[str, BaseGeometry]]
    parks: list[tuple[str | None, BaseGeometry]]
    forest: BaseGeometry = field(default_factory=Polygon)  # from the DEM
    reserve: BaseGeometry = field(default_factory=Polygon)  # Sơn Trà, from the facts

    def no_streets(self) -> BaseGeometry:
        """Where the street grid is not drawn (main roads may still pass)."""
        parks = [g for _, g in self.parks]
        return shapely.union_all([self.airport, self.marble, self.beach, self.forest,
                                  self.reserve, *parks])


def rectangle(centre: Point, length_m: float, width_m: float, heading_deg: float) -> Polygon:
    """A ``length × width`` rectangle whose long side points to ``heading`` (° from north)."""
    r = box(centre.x - width_m / 2, centre.y - length_m / 2,
            centre.x + width_m / 2, centre.y + length_m / 2)
    return rotate(r, -heading_deg, origin=centre)


def _beach(geo: Geography, spec: dict[str, Any]) -> BaseGeometry:
    _, y0 = to_local_xy(108.2, float(spec["from_lat"]))
    _, y1 = to_local_xy(108.2, float(spec["to_lat"]))
    x0, _ = to_local_xy(float(spec["east_of_lon"]), 16.05)
    band = box(float(x0), float(y0), geo.extent.bounds[2], float(y1))
    strip = geo.land.difference(geo.land.buffer(-float(spec["width_m"])))
    return polygonal(strip.intersection(band).difference(geo.water))


def build_zones(geo: Geography, seed: int) -> Zones:
    """Airport, Marble Mountains, Mỹ Khê beach, industrial estates and parks."""
    g = facts.load("geography")
    ap = g["airport"]
    airport = rectangle(pt(ap["arp"]), ap["area"]["length_m"], ap["area"]["width_m"],
                        ap["area"]["heading_deg"])
    marble = shapely.union_all([
        pt(p["lonlat"]).buffer(1.25 * float(p["radius_m"])) for p in g["marble_mountains"]["peaks"]
    ])
    beach = _beach(geo, g["beach"])
    industrial: list[tuple[str, BaseGeometry]] = []
    parks: list[tuple[str | None, BaseGeometry]] = []
    reserve: list[BaseGeometry] = []
    for z in g["zones"]:
        if "box" in z:
            poly = to_local(box(*z["box"]))
        else:
            poly = rectangle(pt(z["centre"]), z["length_m"], z["width_m"], z["heading_deg"])
        poly = polygonal(poly.intersection(geo.land).difference(geo.water))
        if z["kind"] == "forest":
            reserve.append(poly)
        else:
            (industrial if z["kind"] == "industrial" else parks).append((z["name"], poly))
    port = shapely.union_all([p for _, p in industrial])
    reserve_area = polygonal(shapely.union_all(reserve).difference(port.buffer(50)))
    parks.extend(_small_parks(geo, airport, seed))
    return Zones(airport, marble, beach, industrial, parks, reserve=reserve_area)


def _small_parks(geo: Geography, airport: BaseGeometry, seed: int) -> list[tuple[None, Polygon]]:
    """Two unnamed neighbourhood parks per urban ward, at random spots on land."""
    rng = np.random.default_rng([seed, 202])
    out: list[tuple[None, Polygon]] = []
    avoid = shapely.union_all([geo.water.buffer(30), airport.buffer(30)])
    for ward in geo.wards:
        if ward.level != "ward":
            continue
        minx, miny, maxx, maxy = ward.geom.bounds
        placed = 0
        for _ in range(40):
            if placed == 2:
                break
            c = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
            size = rng.uniform(90, 220)
            poly = rectangle(c, size, size * rng.uniform(0.6, 1.0), rng.uniform(0, 90))
            if ward.geom.contains(poly) and not poly.intersects(avoid):
                out.append((None, poly))
                placed += 1
    return out


def land_cover_rows(geo: Geography, zones: Zones, street_area: BaseGeometry
                    ) -> list[tuple[str, str | None, BaseGeometry]]:
    """(kind, name, polygon in local metres) for every land-cover feature of the demo."""
    rows: list[tuple[str, str | None, BaseGeometry]] = []
    for r in geo.rivers.values():
        poly = polygonal(r.polygon.intersection(geo.land))
        if not poly.is_empty:
            rows.append(("water", r.name_vi, poly))
    rows.append(("sea", "Biển Đông – Vịnh Đà Nẵng", geo.sea))
    for part in shapely.get_parts(polygonal(shapely.union(zones.forest, zones.reserve))):
        if part.area < 40_000:
            continue
        name = "Bán đảo Sơn Trà" if part.intersects(geo.east_bank) else None
        rows.append(("forest", name, part))
    g = facts.load("geography")
    rows.append(("park", g["marble_mountains"]["name_vi"], zones.marble))
    rows.append(("beach", g["beach"]["name_vi"], zones.beach))
    rows.append(("aerodrome", g["airport"]["name_vi"], zones.airport))
    rows.extend(("industrial", n, p) for n, p in zones.industrial)
    rows.extend(("park", n, p) for n, p in zones.parks)
    taken = shapely.union_all([p for k, _, p in rows if k not in ("sea", "water")])
    for d in geo.districts:
        kind = "farmland" if d.facts.get("type") == "huyện" else "residential"
        area = polygonal(d.geom.intersection(street_area).difference(taken))
        if not area.is_empty:
            rows.append((kind, None, area))
    return [(k, n, p) for k, n, p in rows if not p.is_empty and p.area > 1.0]
