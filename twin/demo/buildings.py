"""Building footprints of the demo city, lot by lot along the streets (vectorised).

Footprints are slightly rotated rectangles (local frame, metres; areas in m²) set back
from the street by its half width: narrow tube houses in Hải Châu and Thanh Khê, wider
lots elsewhere, hotels on the beach front, sheds in the industrial estates, a second row
off alleys (kiệt) at the ``large`` scale. Use, levels, height, address, ward and a
population estimate (the 2019 census of each district shared by residential floor area)
are set per building.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from twin.demo import facts
from twin.demo.geo import Geography, locate, to_local_xy
from twin.demo.landcover import Zones
from twin.demo.roads import MAIN, Network
from twin.demo.sites import Site

# lot type: (frontage m, depth min, depth max, setback m, selection weight)
LOTS = {
    "dense": (5.5, 12.0, 20.0, 1.5, 1.0),
    "normal": (7.0, 12.0, 20.0, 2.0, 1.0),
    "rural": (14.0, 9.0, 15.0, 4.0, 1.0),
    "beach": (30.0, 25.0, 40.0, 6.0, 8.0),
    "industrial": (55.0, 30.0, 60.0, 8.0, 50.0),
}
TYPES = list(LOTS)
DENSE = ("Hải Châu", "Thanh Khê")


@dataclass
class Lots:
    """Candidate lots (parallel arrays)."""

    cx: np.ndarray
    cy: np.ndarray
    ux: np.ndarray
    uy: np.ndarray
    width: np.ndarray
    depth: np.ndarray
    rot: np.ndarray
    kind: np.ndarray  # index into TYPES
    row: np.ndarray
    edge: np.ndarray
    number: np.ndarray  # house number (0: none)

    def take(self, idx: np.ndarray) -> Lots:
        return Lots(**{k: v[idx] for k, v in self.__dict__.items()})

    def frame(self) -> tuple[np.ndarray, ...]:
        """Axes of each footprint: along-street unit (ax, ay), inward unit (bx, by)."""
        c, s = np.cos(self.rot), np.sin(self.rot)
        ax, ay = self.ux * c - self.uy * s, self.ux * s + self.uy * c
        return ax, ay, -ay, ax

    def corners(self) -> tuple[np.ndarray, np.ndarray]:
        """Corner coordinates, shape (n, 5): a closed ring."""
        ax, ay, bx, by = self.frame()
        hw, hd = self.width / 2, self.depth / 2
        ring = [(-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1)]
        xs = np.stack([self.cx + i * hw * ax + j * hd * bx for i, j in ring], axis=1)
        ys = np.stack([self.cy + i * hw * ay + j * hd * by for i, j in ring], axis=1)
        return xs, ys

    def polygons(self) -> np.ndarray:
        xs, ys = self.corners()
        return shapely.polygons(np.stack([xs, ys], axis=2))

    def overlap(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Whether footprints ``i`` and ``j`` overlap (separating-axis test, vectorised)."""
        ax, ay, bx, by = self.frame()
        hw, hd = self.width / 2, self.depth / 2
        dx, dy = self.cx[j] - self.cx[i], self.cy[j] - self.cy[i]
        sep = np.zeros(len(i), bool)
        for lx, ly in ((ax[i], ay[i]), (bx[i], by[i]), (ax[j], ay[j]), (bx[j], by[j])):
            reach = np.zeros(len(i))
            for k in (i, j):
                reach += hw[k] * np.abs(ax[k] * lx + ay[k] * ly)
                reach += hd[k] * np.abs(bx[k] * lx + by[k] * ly)
            sep |= np.abs(dx * lx + dy * ly) > reach
        return ~sep


def _pieces(net: Network) -> dict[str, np.ndarray]:
    """Straight pieces of the streets that get frontage (not bridges nor links)."""
    ok = ~net.bridge & (net.street >= 0)
    edges = np.flatnonzero(ok)
    coords, idx = shapely.get_coordinates(net.geom[ok], return_index=True)
    same = idx[:-1] == idx[1:]
    p0, p1, e = coords[:-1][same], coords[1:][same], edges[idx[:-1][same]]
    d = p1 - p0
    length = np.hypot(d[:, 0], d[:, 1])
    keep = length > 1.0
    p0, d, length, e = p0[keep], d[keep], length[keep], e[keep]
    cum = np.cumsum(length)
    first = np.r_[True, e[1:] != e[:-1]]
    start = np.maximum.accumulate(np.where(first, cum - length, 0.0))
    return {"p0": p0, "u": d / length[:, None], "len": length, "edge": e,
            "off": cum - length - start}


def _piece_kind(geo: Geography, zones: Zones, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    dist = locate(geo.districts, x, y)
    kind = np.full(len(x), TYPES.index("normal"))
    dense = [i for i, d in enumerate(geo.districts) if d.name in DENSE]
    rural = [i for i, d in enumerate(geo.districts) if d.facts.get("type") == "huyện"]
    kind[np.isin(dist, dense)] = TYPES.index("dense")
    kind[np.isin(dist, rural)] = TYPES.index("rural")
    x_beach, _ = to_local_xy(float(facts.load("geography")["beach"]["east_of_lon"]), 16.05)
    shapely.prepare(geo.east_bank)
    near_sea = shapely.dwithin(geo.sea, shapely.points(x, y), 450.0)
    kind[near_sea & (x > x_beach) & shapely.contains_xy(geo.east_bank, x, y)] = TYPES.index("beach")
    for _, z in zones.industrial:
        kind[shapely.contains_xy(z, x, y)] = TYPES.index("industrial")
    return kind


def candidate_lots(net: Network, geo: Geography, zones: Zones, rows: int,
                   rng: np.random.Generator) -> Lots:
    """Every lot along every street side (and behind it, for ``rows`` > 1)."""
    p = _pieces(net)
    mid = p["p0"] + p["u"] * (p["len"] / 2)[:, None]
    kind = _piece_kind(geo, zones, mid[:, 0], mid[:, 1])
    table = np.array([LOTS[t] for t in TYPES])
    front, dmin, dmax, setback = (table[kind, i] for i in range(4))
    margin = np.where(kind == TYPES.index("industrial"), 25.0, 12.0)
    n = np.floor(np.maximum(p["len"] - 2 * margin, 0) / front).astype(np.int64)
    rep = np.repeat(np.arange(len(n)), n)
    k = np.arange(len(rep)) - np.repeat(np.cumsum(n) - n, n)
    slack = p["len"] - 2 * margin - n * front
    t = (margin + slack / 2)[rep] + (k + 0.5) * front[rep]
    hw = net.half_width[p["edge"]][rep]
    e = p["edge"][rep]
    c0, c1 = net.chain0[e], net.chain1[e]
    sense = np.where(c1 >= c0, 1.0, -1.0)
    chain = c0 + sense * (p["off"][rep] + t)
    parts = []
    for side in (1.0, -1.0):
        for r in range(rows):
            sel = np.ones(len(rep), bool) if r == 0 else np.isin(
                kind[rep], [TYPES.index("dense"), TYPES.index("normal")])
            m = int(sel.sum())
            depth = rng.uniform(dmin[rep][sel], dmax[rep][sel])
            off = hw[sel] + setback[rep][sel] + r * (dmax[rep][sel] + 4.0) + depth / 2
            ux, uy = p["u"][rep][sel, 0], p["u"][rep][sel, 1]
            base = p["p0"][rep][sel] + (p["u"][rep][sel] * t[sel][:, None])
            left = side * sense[sel] > 0
            number = 2 * np.floor(chain[sel] / 8.0).astype(np.int64) + np.where(left, 1, 2)
            parts.append(Lots(
                cx=base[:, 0] - side * uy * off, cy=base[:, 1] + side * ux * off,
                ux=ux, uy=uy, width=front[rep][sel] * rng.uniform(0.8, 0.95, m), depth=depth,
                rot=np.radians(np.clip(rng.normal(0.0, 1.2, m), -3.0, 3.0)), kind=kind[rep][sel],
                row=np.full(m, r), edge=e[sel], number=np.maximum(number, 1)))
    fields = Lots.__dataclass_fields__
    return Lots(**{f: np.concatenate([getattr(q, f) for q in parts]) for f in fields})


def select_lots(lots: Lots, net: Network, geo: Geography, buildable: BaseGeometry,
                target: int, rng: np.random.Generator) -> tuple[Lots, np.ndarray]:
    """Pick about ``target`` lots, denser where people live, whose footprints are clear of
    water, streets, special sites and each other. Returns the lots and their polygons."""
    shapely.prepare(buildable)
    inside = shapely.contains_xy(buildable, lots.cx, lots.cy)
    lots = lots.take(np.flatnonzero(inside))
    dist = locate(geo.districts, lots.cx, lots.cy)
    dens = np.array([float(d.facts.get("density", 1000)) for d in geo.districts])
    boost = np.array([LOTS[t][4] for t in TYPES])[lots.kind]
    weight = (dens[dist] / 1000.0) ** 0.8 * np.where(lots.row == 0, 1.0, 0.7) * boost
    key = np.log(rng.random(len(weight))) / weight  # Efraimidis–Spirakis keys
    want = min(len(key), int(target * 2.0) + 100)
    order = np.argsort(-key, kind="stable")[:want]
    lots = lots.take(order)
    xs, ys = lots.corners()
    ok = shapely.contains_xy(buildable, xs[:, :4].ravel(), ys[:, :4].ravel()).reshape(-1, 4)
    ok = ok.all(axis=1)
    polys = lots.polygons()
    wet = shapely.union_all([geo.water, geo.sea])
    shapely.prepare(wet)
    ok &= ~shapely.intersects(wet, polys)
    capsules = shapely.buffer(net.geom, net.half_width + 0.5, quad_segs=2)
    ok[shapely.STRtree(capsules).query(polys, predicate="intersects")[0]] = False
    survivors = np.flatnonzero(ok)
    sub = lots.take(survivors)
    i, j = shapely.STRtree(polys[survivors]).query(polys[survivors])
    m = i < j
    i, j = i[m], j[m]
    clash = sub.overlap(i, j)
    keep = survivors[_greedy(len(survivors), i[clash], j[clash])][:target]
    keep = np.sort(keep)
    return lots.take(keep), polys[keep]


def _greedy(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Indices of a conflict-free subset of ``n`` items (pairs i < j clash): earlier first."""
    order = np.argsort(j, kind="stable")
    keep = np.ones(n, bool)
    for a, b in zip(i[order].tolist(), j[order].tolist(), strict=True):
        if keep[a]:
            keep[b] = False
    return np.flatnonzero(keep)


def attributes(lots: Lots, polys: np.ndarray, net: Network, geo: Geography,
               rng: np.random.Generator) -> dict[str, Any]:
    """Use, levels, height, address, ward, district and population of each lot."""
    n = len(polys)
    cls = net.road_class[lots.edge]
    on_main = np.isin(cls, MAIN) & (lots.row == 0)
    kind = np.array(TYPES)[lots.kind]
    dist = locate(geo.districts, lots.cx, lots.cy)
    core = np.isin(dist, [i for i, d in enumerate(geo.districts) if d.name == "Hải Châu"])
    u = rng.random(n)
    use = np.full(n, "residential", dtype=object)
    use[on_main & (u < 0.55)] = "commercial"
    use[(cls == "tertiary") & (lots.row == 0) & (u < 0.2)] = "commercial"
    use[on_main & core & (u < 0.15)] = "office"
    use[(kind == "beach") & (u < 0.65)] = "hotel"
    use[kind == "industrial"] = "industrial"
    lv = np.ones(n, dtype=np.int64)
    draw = {
        "residential": lambda m: rng.integers(2, 6, m),
        "commercial": lambda m: rng.integers(3, 8, m),
        "office": lambda m: rng.integers(6, 22, m),
        "hotel": lambda m: rng.integers(8, 36, m),
        "industrial": lambda m: rng.integers(1, 3, m),
    }
    for name, f in draw.items():
        m = use == name
        lv[m] = f(int(m.sum()))
    lv[(kind == "rural") & (use == "residential")] = rng.integers(1, 3, int(
        ((kind == "rural") & (use == "residential")).sum()))
    height = lv * np.where(use == "industrial", 6.0, 3.4) + rng.uniform(0.0, 1.5, n)
    area = shapely.area(polys)
    street = net.street[lots.edge]
    names = [net.lines[s].name if s >= 0 else None for s in street]
    alley = rng.integers(1, 60, n)
    address = [None if nm is None else (f"{num} {nm}" if r == 0 else f"K{num}/{a} {nm}")
               for nm, num, r, a in zip(names, lots.number.tolist(), lots.row.tolist(),
                                        alley.tolist(), strict=True)]
    return {"use": use, "levels": lv, "height": np.round(height, 1), "area": area,
            "address": address, "district": dist}


def population(geo: Geography, district: np.ndarray, use: np.ndarray, levels: np.ndarray,
               area: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Census population of each district shared by residential floor area.

    Hòa Vang's census total is scaled by the share of its area the demo draws.
    """
    floor = np.where(use == "residential", area * levels,
                     np.where(use == "commercial", area * (levels - 1) * 0.7, 0.0))
    pop = np.zeros(len(area))
    notes = []
    for i, d in enumerate(geo.districts):
        m = district == i
        total = float(d.facts.get("pop_2019") or 0)
        if d.facts.get("type") == "huyện":
            share = d.geom.area / 1e6 / float(d.facts["area_km2"])
            total *= share
            notes.append(f"{d.name}: census population scaled by the drawn share {share:.0%}")
        s = floor[m].sum()
        if s > 0:
            pop[m] = floor[m] * total / s
    return np.round(pop).astype(np.int64), notes


def site_footprints(sites: list[Site]) -> BaseGeometry:
    """The sites' footprints (with a small clearance) as one geometry."""
    return shapely.union_all([s.footprint.buffer(4.0) for s in sites if s.footprint is not None])
