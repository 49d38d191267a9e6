"""Noding the demo's road lines into one routable graph (local metres).

Lines are split where they cross, end points become nodes, short stubs are trimmed, main
roads that stop short are linked to the nearest node, and pieces cut off from the main
graph are linked to it (over a river: a bridge) or dropped.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import LineString

from twin.demo import facts, graph
from twin.demo.geo import Geography, pt
from twin.demo.roads import MAIN, SPEED_KMH, Line, Network

STUB_M = 15.0
MAIN_LINK_M = 300.0
COMPONENT_LINK_M = 800.0


def _node_ids(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keys = np.round(np.vstack([start, end]), 2)
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    inv = inv.ravel()
    return uniq, inv[: len(start)], inv[len(start):]


def _drop_stubs(a: np.ndarray, b: np.ndarray, length: np.ndarray, keep: np.ndarray,
                n: int) -> np.ndarray:
    """Mask of edges left after trimming dangling stubs shorter than ``STUB_M`` (twice)."""
    alive = np.ones(len(a), bool)
    for _ in range(2):
        deg = np.bincount(a[alive], minlength=n) + np.bincount(b[alive], minlength=n)
        stub = alive & ~keep & (length < STUB_M) & ((deg[a] == 1) | (deg[b] == 1))
        alive &= ~stub
    return alive


def node_network(lines: list[Line], geo: Geography) -> Network:
    """Node ``lines`` into a :class:`Network` whose one component holds every node."""
    src_geoms = np.array([ln.geom for ln in lines], dtype=object)
    parts = shapely.get_parts(shapely.union_all(src_geoms))
    parts = parts[shapely.length(parts) > 0.5]
    tree = shapely.STRtree(src_geoms)
    mids = shapely.line_interpolate_point(parts, 0.5, normalized=True)
    idx = tree.query_nearest(mids, all_matches=False)
    src = np.empty(len(parts), dtype=np.int64)
    src[idx[0]] = idx[1]
    cls = np.array([lines[s].road_class for s in src])
    bridge = np.array([lines[s].bridge for s in src])
    main = np.isin(cls, MAIN) | bridge
    shapely.prepare(geo.water)
    shapely.prepare(geo.sea)
    wet = shapely.intersects(geo.water, mids)
    in_sea = shapely.intersects(geo.sea, mids)
    ok = bridge | (~in_sea & (main | ~wet))  # the Thuận Phước bridge spans the river mouth
    parts, src, cls, bridge, main, wet = parts[ok], src[ok], cls[ok], bridge[ok], main[ok], wet[ok]
    bridge = bridge | wet
    start = shapely.get_coordinates(shapely.get_point(parts, 0))
    end = shapely.get_coordinates(shapely.get_point(parts, -1))
    xy, a, b = _node_ids(start, end)
    length = shapely.length(parts)
    alive = _drop_stubs(a, b, length, main, len(xy)) & (a != b)
    edges = _Edges(xy, a[alive], b[alive], list(parts[alive]), src[alive].tolist(), bridge[alive])
    edges.link_main_ends(lines, geo)
    edges.link_components(geo)
    return edges.finish(lines, geo)


class _Edges:
    """Mutable edge lists while links are added."""

    def __init__(self, xy: np.ndarray, a: np.ndarray, b: np.ndarray, geoms: list[LineString],
                 street: list[int], bridge: np.ndarray) -> None:
        self.xy = xy
        self.a, self.b = a.tolist(), b.tolist()
        self.geoms = geoms
        self.street = street
        self.bridge = bridge.tolist()
        self.link_class: list[str | None] = [None] * len(self.a)

    def _add(self, u: int, v: int, cls: str, street: int, bridge: bool) -> None:
        self.a.append(u)
        self.b.append(v)
        self.geoms.append(LineString([self.xy[u], self.xy[v]]))
        self.street.append(-1 if street < 0 else street)
        self.bridge.append(bridge)
        self.link_class.append(cls)

    def link_main_ends(self, lines: list[Line], geo: Geography) -> None:
        """Join the loose ends of main roads and bridges to the nearest other node."""
        a, b = np.array(self.a), np.array(self.b)
        deg = np.bincount(a, minlength=len(self.xy)) + np.bincount(b, minlength=len(self.xy))
        pts = shapely.points(self.xy)
        tree = shapely.STRtree(pts)
        blocked = shapely.union_all([geo.water, geo.sea])
        shapely.prepare(blocked)
        for e in range(len(a)):
            s = self.street[e]
            if s < 0 or not (lines[s].road_class in MAIN or lines[s].bridge):
                continue
            for u, other in ((a[e], b[e]), (b[e], a[e])):
                if deg[u] != 1:
                    continue
                near = tree.query(pts[u], predicate="dwithin", distance=MAIN_LINK_M)
                near = [int(v) for v in near if v != u and v != other]
                if not near:
                    continue
                d = [float(np.hypot(*(self.xy[v] - self.xy[u]))) for v in near]
                v = near[int(np.argmin(d))]
                link = LineString([self.xy[u], self.xy[v]])
                if lines[s].bridge or not blocked.intersects(link):
                    self._add(int(u), v, lines[s].road_class, s, False)
                    deg[u] += 1
                    deg[v] += 1

    def link_components(self, geo: Geography) -> None:
        """Link every piece cut off from the main graph to it, or mark it for dropping."""
        n = len(self.xy)
        a, b = np.array(self.a), np.array(self.b)
        used = np.zeros(n, bool)
        used[a] = used[b] = True
        label = graph.components(n, a, b)
        label[~used] = -1
        sizes = np.bincount(label[used])
        main_label = int(np.argmax(sizes))
        main_nodes = np.flatnonzero(label == main_label)
        tree = shapely.STRtree(shapely.points(self.xy[main_nodes]))
        shapely.prepare(geo.sea)
        shapely.prepare(geo.water)
        others = [c for c in np.unique(label[used]) if c != main_label]
        others.sort(key=lambda c: (-sizes[c], c))
        for c in others:
            nodes = np.flatnonzero(label == c)
            q, dist = tree.query_nearest(shapely.points(self.xy[nodes]), return_distance=True,
                                         all_matches=False)
            k = int(np.argmin(dist))
            u, v = int(nodes[q[0][k]]), int(main_nodes[q[1][k]])
            link = LineString([self.xy[u], self.xy[v]])
            if dist[k] <= COMPONENT_LINK_M and not geo.sea.intersects(link):
                self._add(u, v, "residential", -1, bool(geo.water.intersects(link)))

    def finish(self, lines: list[Line], geo: Geography) -> Network:
        n = len(self.xy)
        a, b = np.array(self.a), np.array(self.b)
        label = graph.components(n, a, b)
        used = np.zeros(n, bool)
        used[a] = used[b] = True
        main_label = int(np.argmax(np.bincount(label[used])))
        keep = label[a] == main_label
        node_keep = np.flatnonzero((label == main_label) & used)
        remap = np.full(n, -1, dtype=np.int64)
        remap[node_keep] = np.arange(len(node_keep))
        ek = np.flatnonzero(keep)
        a, b = remap[a[ek]], remap[b[ek]]
        geoms = np.array([self.geoms[i] for i in ek], dtype=object)
        street = np.array([self.street[i] for i in ek], dtype=np.int64)
        bridge = np.array([self.bridge[i] for i in ek], dtype=bool)
        link_cls = [self.link_class[i] for i in ek]
        cls = np.array([lc or lines[s].road_class for lc, s in zip(link_cls, street, strict=True)])
        oneway = np.array([lc is None and lines[s].oneway for lc, s in zip(link_cls, street,
                                                                             strict=True)])
        chain0, chain1 = _chainage(lines, geoms, street)
        flip = oneway & (chain1 < chain0)
        geoms[flip] = shapely.reverse(geoms[flip])
        a[flip], b[flip] = b[flip], a[flip].copy()
        chain0[flip], chain1[flip] = chain1[flip], chain0[flip].copy()
        names = [lines[s].name if s >= 0 else None for s in street]
        names = _bridge_names(geoms, bridge, names)
        node_xy = self.xy[node_keep]
        geoms = snap_ends(geoms, node_xy[a], node_xy[b])
        return Network(
            node_xy=node_xy, a=a, b=b, geom=geoms, road_class=cls, name=names,
            ref=[lines[s].ref if s >= 0 else None for s in street],
            lanes=[lines[s].lanes if s >= 0 else None for s in street],
            oneway=oneway, bridge=bridge,
            speed=np.array([SPEED_KMH.get(c, 30.0) for c in cls]),
            length=shapely.length(geoms), street=street, chain0=chain0, chain1=chain1,
            lines=lines,
        )


def snap_ends(geoms: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Copies of the lines with their first/last vertex set exactly to ``start``/``end``."""
    coords, idx = shapely.get_coordinates(geoms, return_index=True)
    first = np.r_[True, idx[1:] != idx[:-1]]
    last = np.r_[idx[1:] != idx[:-1], True]
    coords[first] = start
    coords[last] = end
    return shapely.set_coordinates(np.array(geoms, dtype=object, copy=True), coords)


def _chainage(lines: list[Line], geoms: np.ndarray, street: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Distance along each edge's street line of the edge's start and end (links: 0)."""
    has = street >= 0
    src = np.array([lines[s].geom if s >= 0 else None for s in street], dtype=object)
    c0 = np.zeros(len(geoms))
    c1 = np.zeros(len(geoms))
    c0[has] = shapely.line_locate_point(src[has], shapely.get_point(geoms[has], 0))
    c1[has] = shapely.line_locate_point(src[has], shapely.get_point(geoms[has], -1))
    return c0, c1


def _bridge_names(geoms: np.ndarray, bridge: np.ndarray, names: list[str | None]
                  ) -> list[str | None]:
    """Bridges where a road crosses a river take the crossing's name from the facts."""
    items = facts.load("roads")["crossings"]["items"]
    spots = [(pt(i["lonlat"]), i["name_vi"]) for i in items]
    out = list(names)
    for i in np.flatnonzero(bridge):
        for p, name in spots:
            if geoms[i].distance(p) < 400:
                out[i] = name
    return out
