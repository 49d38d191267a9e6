"""Geometries and boxes from clients: the one GeoJSON validator and the one bbox parser.

Every route that takes a GeoJSON geometry (incidents, Open311, SensorThings locations,
area queries, CQL2 literals) or a ``bbox`` parameter reads it here, so the same input
gets the same answer everywhere: a clear error (the caller's error class, a 400) and
never a shapely or PostGIS exception later.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from shapely.geometry.base import BaseGeometry

from twin.bounds import CITY_BOUNDS, in_city
from twin.errors import InputError

MAX_VERTICES = 100_000
GEOMETRY_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                  "MultiPolygon", "GeometryCollection")
Error = Callable[[str], Exception]


#: how deep positions sit in each type's coordinates (a Point's is wrapped in a list)
NESTING = {"Point": 1, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2,
           "Polygon": 2, "MultiPolygon": 3}


def check_positions(coords: Any, what: str = "geometry", *, depth: int = 1,
                    allow_z: bool = False, max_vertices: int = MAX_VERTICES,
                    error: Error = InputError) -> Any:
    """GeoJSON coordinates: arrays nested ``depth`` deep of 2-D (or, with ``allow_z``,
    3-D) positions of finite numbers, walked iteratively (deep nesting cannot exhaust
    the stack). The coordinates are returned with heights dropped."""
    if not isinstance(coords, list | tuple) or not coords:
        raise error(f"{what}: coordinates must be arrays of positions")
    root: list[Any] = [list(coords)]
    stack: list[tuple[list[Any], int]] = [(root, 0)]
    seen = 0
    while stack:
        holder, level = stack.pop()
        for i, c in enumerate(holder):
            if not isinstance(c, list | tuple) or not c:
                raise error(f"{what}: coordinates must be arrays of positions")
            is_position = all(isinstance(v, int | float) and not isinstance(v, bool)
                              for v in c)
            if is_position != (level == depth):
                raise error(f"{what}: coordinates must be arrays of positions nested "
                            f"{depth} deep for this geometry type")
            if is_position:
                seen += 1
                if seen > max_vertices:
                    raise error(f"{what}: more than {max_vertices} positions")
                if len(c) != 2 and not (allow_z and len(c) == 3):
                    raise error(f"{what}: positions must be 2-D [lon, lat], got {len(c)} "
                                "numbers")
                if not all(math.isfinite(v) for v in c):
                    raise error(f"{what}: coordinates must be finite numbers")
                holder[i] = [float(c[0]), float(c[1])]
            else:
                holder[i] = list(c)
                stack.append((holder[i], level + 1))
    return root[0]


def read_geometry(
    value: Any,
    what: str = "geometry",
    *,
    types: Iterable[str] = GEOMETRY_TYPES,
    repair: bool = False,
    city: bool = False,
    allow_z: bool = False,
    max_vertices: int = MAX_VERTICES,
    error: Error = InputError,
) -> BaseGeometry:
    """A GeoJSON geometry (or a Feature holding one) in EPSG:4326 degrees, as shapely.

    ``types`` limits the geometry types; ``repair`` makes an invalid geometry valid
    (``make_valid``) instead of refusing it; ``city`` requires it inside
    :data:`twin.bounds.CITY_BOUNDS`; ``allow_z`` accepts (and drops) heights."""
    import shapely
    from shapely.geometry import shape
    from shapely.validation import explain_validity

    if isinstance(value, dict) and value.get("type") == "Feature":
        value = value.get("geometry")
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise error(f"{what} must be a GeoJSON geometry object")
    allowed = tuple(types)
    kind = value["type"]
    if kind not in allowed:
        raise error(f"{what}: geometry type {kind[:40]!r} not accepted "
                    f"({', '.join(allowed)})")
    doc = dict(value)
    if kind == "GeometryCollection":
        parts = doc.get("geometries")
        if not isinstance(parts, list) or not parts:
            raise error(f"{what}: a GeometryCollection needs a list of geometries")
        if any(isinstance(p, dict) and p.get("type") == "GeometryCollection" for p in parts):
            raise error(f"{what}: nested GeometryCollections are not accepted")
        if not all(isinstance(p, dict) and p.get("type") in NESTING for p in parts):
            raise error(f"{what}: every member of a GeometryCollection must be a geometry")
        doc["geometries"] = [
            {"type": p["type"], "coordinates": _coordinates(
                p["type"], p.get("coordinates"), what, allow_z, max_vertices, error)}
            for p in parts]
    else:
        doc["coordinates"] = _coordinates(kind, doc.get("coordinates"), what, allow_z,
                                          max_vertices, error)
    try:
        geom = shape(doc)
    except Exception as exc:  # noqa: BLE001 - shapely raises several kinds
        raise error(f"{what}: malformed GeoJSON geometry ({exc})") from None
    if geom.is_empty:
        raise error(f"{what} is empty")
    w, s, e, n = geom.bounds
    if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
        raise error(f"{what}: coordinates outside lon −180…180 / lat −90…90")
    if not geom.is_valid:
        if not repair:
            raise error(f"{what} is invalid: {explain_validity(geom)}")
        geom = shapely.make_valid(geom)
    if city and not (in_city(w, s) and in_city(e, n)):
        cw, cs, ce, cn = CITY_BOUNDS
        raise error(f"{what} is outside the city (lon {cw}…{ce}, lat {cs}…{cn})")
    return geom


def _coordinates(kind: str, coords: Any, what: str, allow_z: bool, max_vertices: int,
                 error: Error) -> Any:
    point = kind == "Point"
    out = check_positions([coords] if point else coords, what, depth=NESTING[kind],
                          allow_z=allow_z, max_vertices=max_vertices, error=error)
    return out[0] if point else out


def parse_bbox(text: str, what: str = "bbox", *,
               error: Error = InputError) -> tuple[float, float, float, float]:
    """``minlon,minlat,maxlon,maxlat`` (or 6 numbers with heights, which are dropped) in
    CRS84 degrees; the box must not cross the antimeridian."""
    try:
        nums = [float(x) for x in text.split(",")]
    except ValueError:
        raise error(f"{what}: expected 4 comma-separated numbers "
                    f"(minlon,minlat,maxlon,maxlat), got {text[:80]!r}") from None
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    if len(nums) != 4 or not all(math.isfinite(v) for v in nums):
        raise error(f"{what}: expected 4 comma-separated numbers "
                    f"(minlon,minlat,maxlon,maxlat), got {text[:80]!r}")
    minx, miny, maxx, maxy = nums
    if minx > maxx or miny > maxy:
        raise error(f"{what}: min must not exceed max (minlon,minlat,maxlon,maxlat), "
                    f"got {text[:80]!r}")
    if miny < -90 or maxy > 90 or minx < -180 or maxx > 180:
        raise error(f"{what}: longitudes must lie within -180..180 and latitudes within "
                    f"-90..90, got {text[:80]!r}")
    return minx, miny, maxx, maxy
