"""Utility networks of the demo city (local metres): water supply, drainage and power.

Pipes and cables follow the street graph (each network shifted a few metres off the
street centre line so the layers do not sit on one another), so their topology is the
street topology: a trace can walk from a burst pipe to the valves that isolate it.

- water: treatment plants (real names, estimated points) feed transmission mains; mains
  under the main roads, distribution pipes under the others; valves at about half the
  junctions and along the mains, hydrants on short laterals.
- drainage: a tree that follows the streets downhill to outfalls on the river banks and
  the shore; pipes grow with the area they drain and become open canals near outfalls.
- power: 110 kV substations (synthetic) linked by 110 kV lines, 22 kV feeders under the
  streets (cables in the centre, overhead lines elsewhere), transformers at junctions.

Every building gets one service link per network ``water`` and ``power``: the nearest
distribution pipe and the nearest 22 kV feeder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, Point
from shapely.ops import nearest_points

from twin.demo import facts, graph
from twin.demo.geo import Geography, distance_to, locate, pt
from twin.demo.roads import MAIN, Network

SHIFT = {"water": (2.5, 2.5), "power": (-2.5, -2.5), "drainage": (-2.5, 2.5)}
OUTFALL_SPACING_M = 700.0


@dataclass
class Utilities:
    """Nodes and edges of every network (parallel lists) and the building services."""

    n_net: list[str] = field(default_factory=list)
    n_kind: list[str] = field(default_factory=list)
    n_name: list[str | None] = field(default_factory=list)
    n_attrs: list[dict[str, Any] | None] = field(default_factory=list)
    n_xy: list[tuple[float, float]] = field(default_factory=list)
    e_net: list[str] = field(default_factory=list)
    e_kind: list[str] = field(default_factory=list)
    e_from: list[int] = field(default_factory=list)
    e_to: list[int] = field(default_factory=list)
    e_diam: list[float | None] = field(default_factory=list)
    e_kv: list[float | None] = field(default_factory=list)
    e_name: list[str | None] = field(default_factory=list)
    e_geom: list[LineString] = field(default_factory=list)
    services: dict[str, np.ndarray] = field(default_factory=dict)  # network → edge per bldg

    def node(self, net: str, kind: str, xy: tuple[float, float], name: str | None = None,
             attrs: dict[str, Any] | None = None) -> int:
        self.n_net.append(net)
        self.n_kind.append(kind)
        self.n_name.append(name)
        self.n_attrs.append(attrs)
        self.n_xy.append(xy)
        return len(self.n_net) - 1

    def nodes(self, net: str, kinds: list[str], xy: np.ndarray) -> np.ndarray:
        start = len(self.n_net)
        self.n_net += [net] * len(kinds)
        self.n_kind += kinds
        self.n_name += [None] * len(kinds)
        self.n_attrs += [None] * len(kinds)
        self.n_xy += [(float(x), float(y)) for x, y in xy]
        return np.arange(start, start + len(kinds))

    def edge(self, net: str, kind: str, a: int, b: int, geom: LineString,
             diameter: float | None = None, kv: float | None = None,
             name: str | None = None) -> int:
        self.e_net.append(net)
        self.e_kind.append(kind)
        self.e_from.append(a)
        self.e_to.append(b)
        self.e_diam.append(diameter)
        self.e_kv.append(kv)
        self.e_name.append(name)
        self.e_geom.append(geom)
        return len(self.e_net) - 1

    def link(self, net: str, kind: str, a: int, b: int, **kw: Any) -> int:
        return self.edge(net, kind, a, b, LineString([self.n_xy[a], self.n_xy[b]]), **kw)


def _shifted(net: Network, network: str) -> tuple[np.ndarray, np.ndarray]:
    dx, dy = SHIFT[network]
    xy = net.node_xy + np.array([dx, dy])
    geoms = shapely.transform(net.geom, lambda c: c + np.array([dx, dy]))
    return xy, geoms


def _street_edges(u: Utilities, net: Network, network: str, node_ids: np.ndarray,
                  kinds: list[str], diam: np.ndarray | None, kv: float | None) -> np.ndarray:
    _, geoms = _shifted(net, network)
    ids = []
    for i in range(len(net.a)):
        ids.append(u.edge(network, kinds[i], int(node_ids[net.a[i]]), int(node_ids[net.b[i]]),
                          geoms[i], None if diam is None else float(diam[i]), kv,
                          net.name[i]))
    return np.array(ids)


def water(u: Utilities, net: Network, geo: Geography, rng: np.random.Generator) -> np.ndarray:
    """The water network; returns the edge ids that can serve buildings."""
    xy, _ = _shifted(net, "water")
    n = len(xy)
    deg = np.bincount(net.a, minlength=n) + np.bincount(net.b, minlength=n)
    main = np.isin(net.road_class, MAIN)
    on_main = np.zeros(n, bool)
    on_main[net.a[main]] = on_main[net.b[main]] = True
    r = rng.random(n)
    valve = ((deg >= 3) & (r < 0.45)) | (on_main & (deg == 2) & (r < 0.35)) | (deg == 1)
    kinds = ["valve" if v else "junction" for v in valve]
    ids = u.nodes("water", kinds, xy)
    for i in np.flatnonzero(valve):
        u.n_attrs[ids[i]] = {"normally": "open"}
    diam = np.where(np.isin(net.road_class, ["trunk", "primary"]), 500.0,
                    np.where(net.road_class == "secondary", 300.0,
                             np.where(net.road_class == "tertiary", 200.0, 110.0)))
    ekind = ["main" if m else "pipe" for m in main]
    serving = _street_edges(u, net, "water", ids, ekind, diam, None)
    tree = shapely.STRtree(shapely.points(xy))
    for p in facts.load("facilities")["water_plants"]["list"]:
        loc = pt(p["lonlat"])
        near = int(tree.query_nearest(loc, all_matches=False)[0])
        attrs = {"capacity_m3_day": p.get("capacity_m3_day"), "location_estimated": True}
        plant = u.node("water", "plant", (loc.x, loc.y), p["name"], attrs)
        u.link("water", "main", plant, int(ids[near]), diameter=800.0,
               name=f"Tuyến ống truyền tải {p['name']}")
    hyd = np.flatnonzero((deg >= 2) & (rng.random(n) < 0.2))
    for i in hyd:
        h = u.node("water", "hydrant", (xy[i, 0] + 6.0, xy[i, 1]))
        u.link("water", "pipe", int(ids[i]), h, diameter=100.0)
    return serving


def power(u: Utilities, net: Network, geo: Geography, rng: np.random.Generator) -> np.ndarray:
    """The power network; returns the 22 kV feeder edge ids that serve buildings."""
    xy, _ = _shifted(net, "power")
    n = len(xy)
    deg = np.bincount(net.a, minlength=n) + np.bincount(net.b, minlength=n)
    central = [i for i, d in enumerate(geo.districts) if d.name in ("Hải Châu", "Thanh Khê")]
    underground = np.isin(locate(geo.districts, xy[:, 0], xy[:, 1]), central)
    r = rng.random(n)
    kinds = np.where(underground, "junction", "pole").astype(object)
    kinds[(deg >= 2) & (r < 0.3)] = "transformer"
    kinds[(deg >= 3) & (r > 0.96)] = "switch"
    ids = u.nodes("power", kinds.tolist(), xy)
    ek = ["cable" if underground[a] else "line" for a in net.a]
    feeders = _street_edges(u, net, "power", ids, ek, None, 22.0)
    tree = shapely.STRtree(shapely.points(xy))
    subs = []
    for d in geo.districts:
        near = int(tree.query_nearest(d.seed, all_matches=False)[0])
        spot = (xy[near, 0] + 25.0, xy[near, 1] + 25.0)
        s = u.node("power", "substation", spot, f"Trạm biến áp 110kV {d.name} (mô phỏng)",
                   {"voltage_kv": 110, "synthetic": True})
        u.link("power", "cable", s, int(ids[near]), kv=22.0)
        subs.append(s)
    for a, b in _mst([u.n_xy[s] for s in subs]):
        u.link("power", "line", subs[a], subs[b], kv=110.0, name="Đường dây 110kV (mô phỏng)")
    return feeders


def _mst(points: list[tuple[float, float]]) -> list[tuple[int, int]]:
    """Edges of the Euclidean minimum spanning tree (Prim; few points)."""
    p = np.array(points)
    inside, out = [0], []
    while len(inside) < len(p):
        best = None
        for i in inside:
            for j in range(len(p)):
                if j in inside:
                    continue
                d = float(np.hypot(*(p[i] - p[j])))
                if best is None or d < best[0]:
                    best = (d, i, j)
        assert best is not None
        inside.append(best[2])
        out.append((best[1], best[2]))
    return out


def drainage(u: Utilities, net: Network, geo: Geography, rng: np.random.Generator) -> None:
    """A drainage forest: every street node drains along the streets to an outfall."""
    xy, geoms = _shifted(net, "drainage")
    n = len(xy)
    shore = shapely.union_all([geo.water.boundary, geo.sea.boundary]).intersection(
        geo.extent.buffer(-5.0))
    dist = distance_to(shore, net.node_xy[:, 0], net.node_xy[:, 1])
    cand = np.flatnonzero(dist < 150.0)
    chosen: list[int] = []
    for i in cand[np.argsort(dist[cand], kind="stable")]:
        if chosen:
            gap = np.hypot(*(net.node_xy[chosen] - net.node_xy[i]).T)
            if gap.min() < OUTFALL_SPACING_M:
                continue
        chosen.append(int(i))
    sources = np.array(sorted(chosen), dtype=np.int64)
    d, via = graph.dijkstra(n, net.a, net.b, net.length, sources)
    kinds = np.where(rng.random(n) < 0.3, "inlet", "manhole").tolist()
    ids = u.nodes("drainage", kinds, xy)
    acc = np.ones(n)
    order = np.argsort(-d, kind="stable")
    down = np.full(n, -1, dtype=np.int64)
    for v in order.tolist():
        e = via[v]
        if e < 0:
            continue
        w = int(net.b[e] if net.a[e] == v else net.a[e])
        down[v] = w
        acc[w] += acc[v]
    for v in np.flatnonzero(down >= 0).tolist():
        e = int(via[v])
        g = geoms[e] if net.a[e] == v else shapely.reverse(geoms[e])
        size = min(2000.0, 300.0 + 150.0 * float(np.log2(acc[v])))
        u.edge("drainage", "canal" if acc[v] > 400 else "pipe", int(ids[v]), int(ids[down[v]]),
               g, diameter=round(size, -1))
    for s in sources.tolist():
        spot = nearest_points(shore, Point(net.node_xy[s]))[0]
        o = u.node("drainage", "outfall", (spot.x, spot.y), None, {"receiving": "river/sea"})
        u.link("drainage", "canal" if acc[s] > 400 else "pipe", int(ids[s]), o,
               diameter=round(min(2000.0, 300.0 + 150.0 * float(np.log2(acc[s]))), -1))


def service_links(u: Utilities, serving: np.ndarray, centroids: np.ndarray,
                  frontage: np.ndarray) -> np.ndarray:
    """The serving edge of each building: the one under the street the building fronts
    (``frontage``: street edge index, aligned with ``serving``), else the nearest one."""
    out = np.where(frontage >= 0, serving[np.maximum(frontage, 0)], -1)
    loose = np.flatnonzero(frontage < 0)
    if len(loose):
        tree = shapely.STRtree(np.array([u.e_geom[i] for i in serving], dtype=object))
        idx = tree.query_nearest(shapely.points(centroids[loose]), all_matches=False)
        out[loose[idx[0]]] = serving[idx[1]]
    return out


def build_utilities(net: Network, geo: Geography, centroids: np.ndarray,
                    frontage: np.ndarray, seed: int) -> Utilities:
    """All three networks and the water/power service link of every building.

    ``centroids`` (local metres) and ``frontage`` (street edge index or -1) per building.
    """
    rng = np.random.default_rng([seed, 505])
    u = Utilities()
    w = water(u, net, geo, rng)
    p = power(u, net, geo, rng)
    drainage(u, net, geo, rng)
    u.services = {"water": service_links(u, w, centroids, frontage),
                  "power": service_links(u, p, centroids, frontage)}
    return u
