"""Named sites of the demo city: hospitals, the administrative centre, schools, police,
fire stations and ward health stations. Each gets a building footprint placed in free
space (off the streets, on dry land) near its point; facilities sit at its centre.

Geometry in the local frame (metres). Real names come from ``data/demo/facilities.yaml``
and ``places.yaml``; everything invented says so in its English name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.affinity import rotate
from shapely.geometry import Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from twin.demo import facts
from twin.demo.geo import Geography, pt
from twin.demo.labels import ward_label
from twin.demo.roads import Network

SCHOOL_LEVELS = (("Tiểu học", "Primary School"), ("THCS", "Lower Secondary School"),
                 ("THPT", "Upper Secondary School"))


@dataclass
class Site:
    kind: str  # facility kind; 'office' for the administrative centre
    name_vi: str
    name_en: str
    target: Point
    size: tuple[float, float]
    levels: int
    capacity: int | None = None
    address: str | None = None
    height_m: float | None = None
    shelter: bool = False
    footprint: Polygon | None = None


def _int(v: object) -> int | None:
    return int(v) if isinstance(v, int | float) else None


def plan_sites(geo: Geography, schools_per_ward: int, rng: np.random.Generator,
               street_area: BaseGeometry) -> list[Site]:
    """Every named site, with its target point (not yet placed)."""
    fac = facts.load("facilities")
    sites: list[Site] = []
    for h in fac["hospitals"]["list"]:
        if not h.get("lonlat"):
            continue
        beds = _int(h.get("beds"))
        big = (beds or 250) >= 400
        sites.append(Site("hospital", h["name_vi"], h["name_en"], pt(h["lonlat"]),
                          (90.0, 60.0) if big else (70.0, 45.0), int(h.get("levels") or 7),
                          beds, h.get("address")))
    ac = facts.load("places")["admin_centre_building"]
    sites.append(Site("office", ac["name"], "Da Nang Administrative Centre", pt(ac["lonlat"]),
                      (70.0, 70.0), int(ac["levels"]), None, ac["address"],
                      float(ac["height_m"])))
    hq = fac["police"]["hq"]
    sites.append(Site("police", hq["name_vi"], hq["name_en"], pt(hq["lonlat"]), (45.0, 35.0), 6,
                      None, hq["address"]))
    addresses = fac["police"]["ward_posts"]["addresses"]
    city_fire = fac["fire"]["city"]
    sites.append(Site("fire_station", city_fire["name_vi"], city_fire["name_en"],
                      geo.districts[0].seed, (50.0, 35.0), 3))
    for d in geo.districts:
        sites.append(Site(
            "fire_station", f"Đội Cảnh sát PCCC và CNCH khu vực {d.name}",
            f"{facts.ascii_name(d.name)} fire and rescue team (synthetic location)",
            _random_point(d.geom, street_area, rng, d.seed), (40.0, 30.0), 2))
    for w in geo.wards:
        vi, en = ward_label(w)
        here = _random_point(w.geom, street_area, rng, w.seed)
        sites.append(Site("police", f"Công an {vi[0].lower()}{vi[1:]}",
                          f"{en} police (synthetic location)", here, (30.0, 20.0), 3, None,
                          addresses.get(w.name)))
        sites.append(Site("clinic", f"Trạm Y tế {vi[0].lower()}{vi[1:]}",
                          f"{en} health station (synthetic location)",
                          _random_point(w.geom, street_area, rng, w.seed), (30.0, 20.0), 2))
        for k in range(schools_per_ward):
            lvl_vi, lvl_en = SCHOOL_LEVELS[k % 3]
            no = k // 3 + 1
            sites.append(Site(
                "school", f"Trường {lvl_vi} số {no} {w.name}",
                f"{lvl_en} No. {no}, {facts.ascii_name(w.name)} (synthetic)",
                _random_point(w.geom, street_area, rng, w.seed), (60.0, 35.0), 3,
                int(rng.integers(6, 19)) * 100, shelter=k % 2 == 0))
    return sites


def _random_point(area: BaseGeometry, street_area: BaseGeometry, rng: np.random.Generator,
                  fallback: Point) -> Point:
    region = area.intersection(street_area)
    if region.is_empty:
        return fallback
    minx, miny, maxx, maxy = region.bounds
    for _ in range(200):
        p = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if region.contains(p):
            return p
    return fallback


def place_sites(sites: list[Site], net: Network, buildable: BaseGeometry) -> list[Site]:
    """Give each site a footprint near its target: clear of streets, on buildable land."""
    tree = shapely.STRtree(net.geom)
    hw = net.half_width
    placed: list[Polygon] = []
    rings = np.arange(0.0, 360.0, 12.0)
    shapely.prepare(buildable)
    taken: BaseGeometry | None = None
    out = []
    for s in sites:
        e = int(tree.query_nearest(s.target, all_matches=False)[0])
        (x0, y0), (x1, y1) = np.asarray(net.geom[e].coords)[[0, -1]]
        angle = float(np.degrees(np.arctan2(y1 - y0, x1 - x0)))
        cx, cy = _spiral(s.target, rings)
        lx, ly = s.size
        ring = np.asarray(rotate(box(-lx / 2, -ly / 2, lx / 2, ly / 2), angle,
                                 origin=(0, 0)).exterior.coords)
        fits = shapely.contains_xy(buildable, cx, cy)
        cx, cy = cx[fits], cy[fits]
        found = None
        for lo in range(0, len(cx), 64):
            cand = shapely.polygons(ring[None, :, :] + np.column_stack(
                [cx[lo:lo + 64], cy[lo:lo + 64]])[:, None, :])
            ok = shapely.contains(buildable, cand)
            if taken is not None:
                ok &= ~shapely.intersects(taken, cand)
            idx = np.flatnonzero(ok)
            if len(idx):
                near, dist = tree.query_nearest(cand[idx], return_distance=True,
                                                all_matches=False)
                idx = idx[dist > hw[near[1]] + 3.0]
            if len(idx):
                found = cand[idx[0]]
                break
        if found is None:
            continue
        s.footprint = found
        placed.append(found.buffer(5.0))
        taken = shapely.union_all(placed)
        shapely.prepare(taken)
        out.append(s)
    return out


def _spiral(p: Point, rings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate centres around ``p``, nearest first."""
    xs, ys = [p.x], [p.y]
    for r in rings[1:]:
        n = max(8, int(2 * np.pi * r / 12.0))
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        xs.extend(p.x + r * np.cos(t))
        ys.extend(p.y + r * np.sin(t))
    return np.array(xs), np.array(ys)
