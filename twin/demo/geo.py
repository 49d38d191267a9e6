"""The demo city's frame and base geography: land, sea, rivers, banks, admin polygons.

Everything here is built in a local transverse Mercator frame (metres, ``LOCAL_CRS``,
centred on Đà Nẵng so lengths and areas are true to better than 0.01 %); the writers
convert to EPSG:4326 (lon/lat) at the end.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPoint, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from twin.demo import facts

LOCAL_CRS = "+proj=tmerc +lat_0=16.05 +lon_0=108.22 +k=1 +ellps=WGS84 +units=m +no_defs"


@functools.cache
def _transformers() -> tuple[Any, Any]:
    from pyproj import Transformer

    fwd = Transformer.from_crs("EPSG:4326", LOCAL_CRS, always_xy=True)
    inv = Transformer.from_crs(LOCAL_CRS, "EPSG:4326", always_xy=True)
    return fwd, inv


def to_local_xy(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """lon/lat degrees (EPSG:4326) → local x/y metres."""
    x, y = _transformers()[0].transform(np.asarray(lon, float), np.asarray(lat, float))
    return np.asarray(x), np.asarray(y)


def to_lonlat_xy(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Local x/y metres → lon/lat degrees (EPSG:4326)."""
    lon, lat = _transformers()[1].transform(np.asarray(x, float), np.asarray(y, float))
    return np.asarray(lon), np.asarray(lat)


def pt(value: Any) -> Point:
    """A facts ``[lon, lat]`` as a local point (metres)."""
    lon, lat = facts.lonlat(value)
    x, y = to_local_xy(lon, lat)
    return Point(float(x), float(y))


def to_local(geom: Any) -> Any:
    """Geometry (or array of geometries) from lon/lat to the local frame."""
    return shapely.transform(geom, lambda c: np.column_stack(to_local_xy(c[:, 0], c[:, 1])))


def to_lonlat(geom: Any) -> Any:
    """Geometry (or array of geometries) from the local frame to lon/lat."""
    return shapely.transform(geom, lambda c: np.column_stack(to_lonlat_xy(c[:, 0], c[:, 1])))


def chaikin(points: np.ndarray, rounds: int = 2) -> np.ndarray:
    """Corner-cutting smoothing of an open polyline (any number of columns)."""
    p = np.asarray(points, float)
    for _ in range(rounds):
        q = 0.75 * p[:-1] + 0.25 * p[1:]
        r = 0.25 * p[:-1] + 0.75 * p[1:]
        mid = np.empty((2 * len(q), p.shape[1]))
        mid[0::2], mid[1::2] = q, r
        p = np.vstack([p[:1], mid, p[-1:]])
    return p


def polygonal(geom: BaseGeometry) -> BaseGeometry:
    """Only the polygon parts of a geometry (drops slivers turned into lines/points)."""
    parts = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon" and g.area > 1.0]
    return shapely.union_all(parts) if parts else Polygon()


@dataclass
class River:
    key: str
    name_vi: str
    name_en: str
    line: LineString  # smoothed centre line, downstream → upstream
    hw: np.ndarray  # half width (m) at each vertex of ``line``
    polygon: BaseGeometry


@dataclass
class Area:
    """An admin unit of the demo: polygon (local metres) plus its facts."""

    name: str
    level: str
    geom: BaseGeometry
    seed: Point
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class Geography:
    extent: Polygon
    land: BaseGeometry
    sea: BaseGeometry
    rivers: dict[str, River]
    water: BaseGeometry  # union of river polygons, clipped to land
    east_bank: BaseGeometry
    districts: list[Area]
    wards: list[Area]
    outside: BaseGeometry  # land beyond the city (not sea, not demo land)


def _river(key: str, spec: dict[str, Any]) -> River:
    pts = np.array([facts.lonlat(c["p"]) for c in spec["course"]])
    hw = np.array([float(c["hw"]) for c in spec["course"]])
    x, y = to_local_xy(pts[:, 0], pts[:, 1])
    smooth = chaikin(np.column_stack([x, y, hw]), rounds=3)
    line = LineString(smooth[:, :2])
    segs = shapely.linestrings(np.stack([smooth[:-1, :2], smooth[1:, :2]], axis=1))
    radii = 0.5 * (smooth[:-1, 2] + smooth[1:, 2])
    poly = shapely.union_all(shapely.buffer(segs, radii, quad_segs=8))
    return River(key, spec["name_vi"], spec["name_en"], line, smooth[:, 2], poly)


def _split_line(rivers: dict[str, River], ext: Polygon) -> LineString:
    """Hàn then Vĩnh Điện, extended north-west over the bay and south off the extent."""
    han = np.asarray(rivers["han"].line.coords)
    vd = np.asarray(rivers["vinh_dien"].line.coords)
    minx, miny, maxx, maxy = ext.bounds
    mouth = han[0]
    north = [(mouth[0] - 4000.0, maxy + 8000.0), (mouth[0] - 1500.0, mouth[1] + 600.0)]
    south = [(vd[-1][0], miny - 8000.0)]
    return LineString([*north, *map(tuple, han), *map(tuple, vd[1:]), *south])


def split_polygon(poly: Polygon, line: LineString) -> BaseGeometry:
    """The pieces of ``poly`` on either side of a line that crosses it."""
    from shapely.ops import split

    return split(poly, line)


def _voronoi(seeds: list[Point], region: BaseGeometry, frame: Polygon) -> list[BaseGeometry]:
    if len(seeds) == 1:
        return [region]
    cells = shapely.voronoi_polygons(MultiPoint(seeds), extend_to=frame, ordered=True)
    return [polygonal(c.intersection(region)) for c in shapely.get_parts(cells)]


def _areas(units: list[dict[str, Any]], level: str | None, banks: dict[str, BaseGeometry],
           frame: Polygon) -> list[Area]:
    """Voronoi cells of the units' centres, drawn per river bank and clipped to land."""
    areas: list[Area] = []
    for bank, region in banks.items():
        mine = [u for u in units if u.get("bank", "west") == bank]
        seeds = [pt(u["centre"]) for u in mine]
        for u, s, g in zip(mine, seeds, _voronoi(seeds, region, frame), strict=True):
            areas.append(Area(u["name"], level or u.get("level", "ward"), g, s, dict(u)))
    order = {u["name"] + u.get("level", ""): i for i, u in enumerate(units)}
    areas.sort(key=lambda a: order.get(a.name + (a.facts.get("level", "")), 0))
    return areas


def build_geography() -> Geography:
    """Land, sea, rivers and the admin polygons of the demo extent (local metres)."""
    g = facts.load("geography")
    e = g["extent"]
    ext = to_local(box(e["west"], e["south"], e["east"], e["north"]))
    land = to_local(Polygon([facts.lonlat(p) for p in g["land"]["outline"]])).buffer(0)
    land = land.intersection(ext)
    rivers = {k: _river(k, v) for k, v in g["rivers"].items() if isinstance(v, dict)}
    water = shapely.union_all([r.polygon for r in rivers.values()]).intersection(land)
    outside = to_local(Polygon([facts.lonlat(p) for p in g["outside_land"]["outline"]]))
    outside = polygonal(outside.intersection(ext).difference(land))
    sea = polygonal(ext.difference(land).difference(outside))
    split = _split_line(rivers, ext)
    frame = ext.buffer(5000)
    pieces = list(shapely.get_parts(split_polygon(frame, split)))
    east = max(pieces, key=lambda p: p.centroid.x)
    east_bank = east.intersection(land)
    west_bank = land.difference(east)
    banks = {"west": polygonal(west_bank), "east": polygonal(east_bank)}
    a = facts.load("admin")
    wards = _areas(a["wards"]["units"], None, banks, frame)
    districts = []
    for u in a["districts"]["units"]:
        mine = [w.geom for w in wards if w.facts.get("district") == u["name"]]
        geom = polygonal(shapely.union_all(mine).buffer(0.01).buffer(-0.01))
        districts.append(Area(u["name"], "district", geom, pt(u["centre"]), dict(u)))
    return Geography(ext, land, sea, rivers, water, banks["east"], districts, wards, outside)


def locate(areas: list[Area], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Index into ``areas`` of the area holding each point; nearest seed when outside all."""
    out = np.full(len(x), -1, dtype=np.int64)
    for i, a in enumerate(areas):
        shapely.prepare(a.geom)
        hit = (out < 0) & shapely.contains_xy(a.geom, x, y)
        out[hit] = i
    miss = np.flatnonzero(out < 0)
    if len(miss):
        sx = np.array([a.seed.x for a in areas])
        sy = np.array([a.seed.y for a in areas])
        d = (x[miss, None] - sx[None, :]) ** 2 + (y[miss, None] - sy[None, :]) ** 2
        out[miss] = np.argmin(d, axis=1)
    return out


def distance_to(lines: BaseGeometry, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Distance (m) from local points to the nearest part of ``lines`` (indexed segments)."""
    coords, idx = shapely.get_coordinates(lines, return_index=True)
    same = idx[:-1] == idx[1:]
    segs = shapely.linestrings(np.stack([coords[:-1][same], coords[1:][same]], axis=1))
    tree = shapely.STRtree(segs)
    _, dist = tree.query_nearest(shapely.points(x, y), return_distance=True, all_matches=False)
    return np.asarray(dist)
