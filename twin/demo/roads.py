"""The demo city's routable street network (local metres; see :mod:`twin.demo.geo`).

Main roads and the Hàn bridges come from ``data/demo/roads.yaml``; every district gets a
slightly irregular street grid at its own density (densest in Thanh Khê and Hải Châu),
district boundaries become collector streets, and everything is noded into one graph.
Streets never enter the sea or a river except on bridges; small disconnected pieces are
joined to the main graph (or dropped), so one component holds all nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry

from twin.demo import facts
from twin.demo.geo import Geography, locate, polygonal, pt, to_local_xy
from twin.demo.landcover import Zones

# Street spacing (m, at scale factor 1) and grid bearing (degrees) per district: a design
# choice of the demo, denser where the 2019 census density is higher.
GRID = {
    "Hải Châu": (105.0, 3.0), "Thanh Khê": (95.0, 18.0), "Sơn Trà": (135.0, 8.0),
    "Ngũ Hành Sơn": (165.0, 24.0), "Liên Chiểu": (160.0, 38.0), "Cẩm Lệ": (140.0, 30.0),
    "Hòa Vang": (380.0, 12.0),
}
ONEWAY_DISTRICTS = ("Hải Châu", "Thanh Khê")
HALF_WIDTH_M = {"trunk": 14.0, "primary": 12.0, "secondary": 9.0, "tertiary": 7.0,
                "residential": 5.0, "unclassified": 4.0}
MAIN = ("trunk", "primary", "secondary")
# Urban speed limits (km/h) by class, as Vietnamese urban defaults.
SPEED_KMH = {"trunk": 60.0, "primary": 50.0, "secondary": 45.0, "tertiary": 40.0,
             "residential": 30.0, "unclassified": 30.0}


@dataclass
class Line:
    """A road line before noding (its coordinates run in the allowed direction if one-way)."""

    geom: LineString
    road_class: str
    name: str | None = None
    ref: str | None = None
    lanes: int | None = None
    oneway: bool = False
    bridge: bool = False


@dataclass
class Network:
    """The noded graph. Edge arrays are aligned; ``street`` indexes ``lines`` (−1: link)."""

    node_xy: np.ndarray
    a: np.ndarray
    b: np.ndarray
    geom: np.ndarray
    road_class: np.ndarray
    name: list[str | None]
    ref: list[str | None]
    lanes: list[int | None]
    oneway: np.ndarray
    bridge: np.ndarray
    speed: np.ndarray
    length: np.ndarray
    street: np.ndarray
    chain0: np.ndarray
    chain1: np.ndarray
    lines: list[Line] = field(default_factory=list)

    @property
    def half_width(self) -> np.ndarray:
        return np.array([HALF_WIDTH_M.get(c, 5.0) for c in self.road_class])


class NameBag:
    """Street names without repeats: real names for collector streets while they last,
    then numbered local names after the old ward a street lies in ("Thạc Gián 3")."""

    def __init__(self, rng: np.random.Generator, geo: Geography) -> None:
        spec = facts.load("roads")["street_names"]
        self._pool = list(rng.permutation(spec["pool"]))
        self._fallback = list(spec["numbered_bases"])
        self._geo = geo
        self._count: dict[str, int] = {}

    def _numbered(self, bases: list[str]) -> str:
        base = min(bases, key=lambda b: (self._count.get(b, 0), bases.index(b)))
        self._count[base] = self._count.get(base, 0) + 1
        return f"{base} {self._count[base]}"

    def collector(self) -> str:
        return str(self._pool.pop()) if self._pool else self._numbered(self._fallback)

    def local(self, x: np.ndarray, y: np.ndarray) -> list[str]:
        """Numbered names for streets whose middles are at ``x``/``y`` (local metres)."""
        ward = locate(self._geo.wards, x, y)
        out = []
        for w in ward.tolist():
            old = self._geo.wards[w].facts.get("from") or [self._geo.wards[w].name]
            out.append(self._numbered([str(b).removeprefix("xã ") for b in old]))
        return out


def _bridges(geo: Geography) -> tuple[list[Line], dict[str, Point]]:
    """The Hàn bridges: perpendicular to the river at the facts' points, bank to bank."""
    dry = polygonal(geo.land.difference(geo.water.buffer(8.0)))
    shapely.prepare(dry)
    lines: list[Line] = []
    ends: dict[str, Point] = {}
    for b in facts.load("roads")["bridges"]:
        river = geo.rivers[b["river"]].line
        c = river.interpolate(river.project(pt(b["lonlat"])))
        d = river.project(c)
        p0, p1 = river.interpolate(max(d - 20, 0)), river.interpolate(d + 20)
        tx, ty = p1.x - p0.x, p1.y - p0.y
        norm = float(np.hypot(tx, ty))
        nx, ny = -ty / norm, tx / norm  # left of the downstream→upstream line = east
        out = []
        for sign in (1.0, -1.0):
            reach = float(b["length_m"]) / 2
            for r in np.arange(60.0, reach + 400.0, 10.0):
                q = Point(c.x + sign * nx * r, c.y + sign * ny * r)
                if dry.contains(q):
                    reach = r + 25.0
                    break
            out.append(Point(c.x + sign * nx * reach, c.y + sign * ny * reach))
        east, west = (out[0], out[1]) if out[0].x > out[1].x else (out[1], out[0])
        ends[f"{b['key']}/west"], ends[f"{b['key']}/east"] = west, east
        lines.append(Line(LineString([west, east]), "primary", b["name_vi"], None,
                          b.get("lanes"), bridge=True))
    return lines, ends


def _follow(spec: dict[str, Any], geo: Geography) -> BaseGeometry:
    from shapely.ops import substring

    if spec["guide"] == "coast":
        inner = polygonal(geo.land.buffer(-float(spec["offset_m"])))
        ring = max(shapely.get_parts(inner), key=lambda p: p.area).exterior
        a, b = pt(spec["from"]), pt(spec["to"])
        d0, d1 = sorted((ring.project(a), ring.project(b)))
        if d1 - d0 <= ring.length / 2:
            arc = substring(ring, d0, d1)
        else:
            arc = shapely.line_merge(shapely.union(substring(ring, d1, ring.length),
                                                   substring(ring, 0, d0)))
        if arc.length > 4 * a.distance(b) + 1000:
            raise ValueError(f"coast road {spec}: 'from'/'to' lie on different coasts")
        return arc
    line = geo.rivers[spec["guide"]].line
    d = float(spec["offset_m"])
    sides = [line.offset_curve(d), line.offset_curve(-d)]
    west = min(sides, key=lambda s: s.centroid.x)
    side = west if spec["side"] == "west" else max(sides, key=lambda s: s.centroid.x)
    _, y0 = to_local_xy(108.22, float(spec["to_lat"]))
    _, y1 = to_local_xy(108.22, float(spec["from_lat"]))
    band = shapely.box(-1e6, float(y0), 1e6, float(y1))
    parts = shapely.get_parts(side.intersection(band))
    return max(parts, key=lambda p: p.length)


def _main_roads(geo: Geography, anchors: dict[str, Point]) -> list[Line]:
    lines = []
    offshore = geo.sea.buffer(5.0)  # keeps roads off the shore line itself
    for r in facts.load("roads")["main_roads"]:
        if "follow" in r:
            geom = _follow(r["follow"], geo)
        else:
            geom = LineString([anchors[p[1:]] if isinstance(p, str) else pt(p)
                               for p in r["points"]])
        geom = geom.difference(offshore)
        # split at the river banks, so a crossing is its own (bridge) piece
        dry = [p for p in shapely.get_parts(geom.difference(geo.water)) if p.length > 20]
        wet = [p for p in shapely.get_parts(geom.intersection(geo.water))
               if p.geom_type == "LineString" and p.length > 0.5]
        for part in dry + wet:
            lines.append(Line(part, r["class"], r["name"], r.get("ref"), r.get("lanes")))
    return lines


def _grid(zone: BaseGeometry, spacing: float, bearing: float, names: NameBag,
          rng: np.random.Generator, oneway: bool, rural: bool) -> list[Line]:
    """Two families of near-parallel streets over ``zone``, clipped to it."""
    if zone.is_empty:
        return []
    c = zone.centroid
    minx, miny, maxx, maxy = zone.bounds
    half = float(np.hypot(maxx - minx, maxy - miny)) / 2 + spacing
    out: list[Line] = []
    for fam in (0, 1):
        ang = np.radians(bearing + 90.0 * fam)
        k = np.arange(-int(half / spacing), int(half / spacing) + 1)
        offs = k * spacing + rng.uniform(-0.18, 0.18, len(k)) * spacing
        tilt = ang + np.radians(rng.uniform(-2.5, 2.5, len(k)))
        dx, dy = np.sin(tilt), np.cos(tilt)  # along the street (bearing from north)
        nx, ny = np.cos(ang), -np.sin(ang)
        x0, y0 = c.x + offs * nx - half * dx, c.y + offs * ny - half * dy
        x1, y1 = c.x + offs * nx + half * dx, c.y + offs * ny + half * dy
        segs = shapely.linestrings(np.stack([np.column_stack([x0, y0]),
                                             np.column_stack([x1, y1])], axis=1))
        clipped = shapely.intersection(segs, zone)
        kept: list[tuple[int, list[LineString]]] = []
        for i, g in enumerate(clipped):
            parts = [p for p in shapely.get_parts(g)
                     if p.geom_type == "LineString" and p.length > 0.5 * spacing]
            if parts:
                kept.append((i, parts))
        collector = [k[i] % 5 == 0 for i, _ in kept]
        mids = [parts[0].interpolate(0.5, normalized=True)
                for (_, parts), coll in zip(kept, collector, strict=True) if not coll]
        local = iter(names.local(np.array([m.x for m in mids]), np.array([m.y for m in mids])))
        for (i, parts), coll in zip(kept, collector, strict=True):
            name = names.collector() if coll else next(local)
            cls = "tertiary" if coll else "unclassified" if rural else "residential"
            one = oneway and cls == "residential" and k[i] % 4 == 2
            for p in parts:
                if one and (k[i] // 4) % 2:
                    p = p.reverse()
                out.append(Line(p, cls, name, oneway=one))
    return out


def _boundaries(geo: Geography, street_area: BaseGeometry, names: NameBag) -> list[Line]:
    edges = shapely.union_all([d.geom.boundary for d in geo.districts])
    inner = shapely.line_merge(edges.intersection(street_area.buffer(-3.0)))
    return [Line(p, "tertiary", names.collector()) for p in shapely.get_parts(inner)
            if p.length > 80]


def draw_lines(geo: Geography, zones: Zones, factor: float, seed: int
               ) -> tuple[list[Line], BaseGeometry]:
    """Every road line of the demo, before noding, and the street area they fill."""
    rng = np.random.default_rng([seed, 303])
    names = NameBag(rng, geo)
    street_area = geo.land.difference(geo.water.buffer(8.0)).difference(zones.no_streets())
    street_area = polygonal(street_area)
    shapely.prepare(street_area)
    bridges, anchors = _bridges(geo)
    lines = bridges + _main_roads(geo, anchors)
    industry = shapely.union_all([g for _, g in zones.industrial])
    for d in geo.districts:
        spacing, bearing = GRID[d.name]
        zone = d.geom.buffer(8.0).intersection(street_area).difference(industry)
        lines += _grid(polygonal(zone), spacing * factor, bearing, names, rng,
                       d.name in ONEWAY_DISTRICTS, d.facts.get("type") == "huyện")
    for _, z in zones.industrial:
        area = polygonal(z.buffer(8.0).intersection(street_area))
        lines += _grid(area, 240.0 * max(factor, 0.8), 40.0, names, rng, False, False)
    lines += _boundaries(geo, street_area, names)
    return lines, street_area
