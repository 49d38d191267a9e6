"""Raster tiles from registered COGs (rio-tiler): elevation coloured by a legend,
hillshade, slope, and the water depth of a stored flood; elevation at a point and along
a line.

Tiles are XYZ on WebMercatorQuad (EPSG:3857), 256 px PNG with alpha. A tile that does
not touch the data gives None (the API answers 204). Elevations and depths in metres,
slope in degrees, lon/lat in EPSG:4326. Plain Python: no web framework here.
"""

from __future__ import annotations

import math
import threading
import warnings
from typing import Any

import numpy as np

from twin.errors import InputError, NotFound

#: rio_tiler is imported lazily; the first tiles arrive on several threads at once, and
#: concurrent first imports of rio_tiler.io fail ("cannot import name 'Reader'").
_IMPORT_LOCK = threading.Lock()

TILE = 256
MAX_ZOOM = 22
#: colour stops (metres → RGB) for elevation; values between stops are interpolated
ELEVATION_LEGEND: list[tuple[float, tuple[int, int, int]]] = [
    (-25, (40, 90, 160)), (0, (110, 170, 220)), (0.5, (70, 140, 80)), (5, (120, 180, 90)),
    (15, (190, 210, 120)), (40, (230, 210, 140)), (100, (200, 160, 100)),
    (250, (160, 110, 70)), (500, (140, 120, 110)), (700, (245, 245, 245)),
]
#: water depth classes (metres → RGB, each colour from its depth up to the next one): a
#: sequential yellow → orange → red → dark purple ramp, never blue, so a flood stands out
#: from rivers, the sea and water pipes (web/static/legend.js draws the same classes)
DEPTH_LEGEND: list[tuple[float, tuple[int, int, int]]] = [
    (0, (255, 230, 120)), (0.1, (254, 178, 76)), (0.3, (250, 120, 45)), (0.5, (222, 45, 38)),
    (1, (160, 25, 70)), (2, (95, 10, 80)),
]
SLOPE_LEGEND: list[tuple[float, tuple[int, int, int]]] = [
    (0, (255, 255, 204)), (5, (161, 218, 180)), (15, (254, 178, 76)), (30, (240, 59, 32)),
    (45, (128, 0, 38)),
]
KINDS = ("elevation", "hillshade", "slope")


def classify(
    values: np.ndarray, valid: np.ndarray, classes: list[tuple[float, tuple[int, int, int]]],
    alpha: int = 255,
) -> np.ndarray:
    """RGBA (4, h, w) uint8 of ``values`` in steps: a value takes the colour of the last
    class whose lower bound it reaches; alpha 0 where not valid."""
    bounds = np.array([b for b, _ in classes[1:]], float)
    colours = np.array([c for _, c in classes], np.uint8)
    idx = np.digitize(np.where(valid, values, 0), bounds)
    out = np.zeros((4, *values.shape), np.uint8)
    out[:3] = np.moveaxis(colours[idx], -1, 0)
    out[3] = np.where(valid, alpha, 0)
    return out


def check_tile(z: int, x: int, y: int) -> None:
    """Raise NotFound unless z/x/y lies in the WebMercatorQuad matrix (z 0…22)."""
    if not 0 <= z <= MAX_ZOOM or not (0 <= x < 2**z and 0 <= y < 2**z):
        raise NotFound(f"tile {z}/{x}/{y} is outside the WebMercatorQuad matrix")


def colorize(
    values: np.ndarray, valid: np.ndarray, legend: list[tuple[float, tuple[int, int, int]]],
    alpha: int = 255,
) -> np.ndarray:
    """RGBA (4, h, w) uint8 of ``values`` through a legend; alpha 0 where not valid."""
    stops = np.array([s for s, _ in legend], float)
    out = np.zeros((4, *values.shape), np.uint8)
    v = np.where(valid, values, stops[0])
    for band in range(3):
        out[band] = np.interp(v, stops, [c[band] for _, c in legend]).astype(np.uint8)
    out[3] = np.where(valid, alpha, 0)
    return out


def encode_png(rgba: np.ndarray) -> bytes:
    """PNG with alpha; light zlib compression (level 6 costs ~4× the time for ~15 %)."""
    with _IMPORT_LOCK:
        from rio_tiler.utils import render

    return render(rgba[:3], mask=rgba[3], img_format="PNG",  # type: ignore[no-any-return]
                  ZLEVEL=2)


def _read(path: str, z: int, x: int, y: int, buffer: int = 0) -> tuple[np.ndarray,
                                                                         np.ndarray] | None:
    """Float values and validity of a tile (plus ``buffer`` pixels around), or None when
    the tile misses the raster. Past the raster's native zoom the tile is read coarser
    and upsampled bilinearly in float, so integer DEMs do not terrace."""
    with _IMPORT_LOCK:
        from rio_tiler.errors import TileOutsideBounds
        from rio_tiler.io import Reader

    check_tile(z, x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with Reader(path) as src:
                if not src.tile_exists(x, y, z):
                    return None
                size = TILE
                if z > src.maxzoom:
                    size = max(16, TILE >> (z - src.maxzoom))
                img = src.tile(x, y, z, tilesize=size, buffer=buffer or None,
                               resampling_method="bilinear")
        except TileOutsideBounds:
            return None
    arr = img.array[0]
    values = np.ma.filled(arr.astype(np.float32), np.nan)
    valid = ~np.ma.getmaskarray(arr) & np.isfinite(values)
    if not valid.any():
        return None
    want = TILE + 2 * buffer
    if values.shape[0] != want:
        from scipy import ndimage

        f = want / values.shape[0]
        filled = np.where(valid, values, np.nanmean(np.where(valid, values, np.nan)))
        values = ndimage.zoom(filled, f, order=1)[:want, :want]
        valid = ndimage.zoom(valid.astype(np.uint8), f, order=0)[:want, :want].astype(bool)
    return values, valid


def _pixel_m(z: int, y: int) -> float:
    """Ground size (m) of one tile pixel at zoom ``z`` on tile row ``y`` (3857 scale ×
    cos latitude)."""
    n = math.pi - 2 * math.pi * (y + 0.5) / 2**z
    lat = math.atan(math.sinh(n))
    return 2 * math.pi * 6378137 / (TILE * 2**z) * math.cos(lat)


def _gradient(values: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """Horn's 3×3 gradient (dz/dx east, dz/dy south) of a buffered array (m/m)."""
    a, b, c = values[:-2, :-2], values[:-2, 1:-1], values[:-2, 2:]
    d, f = values[1:-1, :-2], values[1:-1, 2:]
    g, h, i = values[2:, :-2], values[2:, 1:-1], values[2:, 2:]
    dzdx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8 * cell)
    dzdy = ((g + 2 * h + i) - (a + 2 * b + c)) / (8 * cell)
    return dzdx, dzdy


def elevation_tile(path: str, z: int, x: int, y: int) -> bytes | None:
    """Elevation coloured by ``ELEVATION_LEGEND``."""
    got = _read(path, z, x, y)
    if got is None:
        return None
    return encode_png(colorize(got[0], got[1], ELEVATION_LEGEND))


def hillshade_tile(
    path: str, z: int, x: int, y: int, *, azimuth: float = 315, altitude: float = 45,
    exaggeration: float = 1.0,
) -> bytes | None:
    """Grey hillshade (sun at ``azimuth``° from north, ``altitude``° high)."""
    got = _read(path, z, x, y, buffer=1)
    if got is None:
        return None
    values, valid = got
    dzdx, dzdy = _gradient(np.where(valid, values, np.nanmin(values[valid])), _pixel_m(z, y))
    slope = np.arctan(exaggeration * np.hypot(dzdx, dzdy))
    aspect = np.arctan2(dzdy, -dzdx)
    zenith = math.radians(90 - altitude)
    az = math.radians(360 - azimuth + 90)
    shade = math.cos(zenith) * np.cos(slope) + math.sin(zenith) * np.sin(slope) * np.cos(
        az - aspect)
    grey = np.clip(shade * 255, 0, 255).astype(np.uint8)
    ok = valid[1:-1, 1:-1]
    return encode_png(np.stack([grey, grey, grey, np.where(ok, 255, 0).astype(np.uint8)]))


def slope_tile(path: str, z: int, x: int, y: int) -> bytes | None:
    """Slope in degrees coloured by ``SLOPE_LEGEND``."""
    got = _read(path, z, x, y, buffer=1)
    if got is None:
        return None
    values, valid = got
    dzdx, dzdy = _gradient(np.where(valid, values, np.nanmin(values[valid])), _pixel_m(z, y))
    deg = np.degrees(np.arctan(np.hypot(dzdx, dzdy)))
    return encode_png(colorize(deg, valid[1:-1, 1:-1], SLOPE_LEGEND))


def depth_tile(path: str, z: int, x: int, y: int) -> bytes | None:
    """Flood depth coloured by ``DEPTH_LEGEND`` (dry cells transparent)."""
    got = _read(path, z, x, y)
    if got is None:
        return None
    values, valid = got
    valid = valid & (values > 0)
    if not valid.any():
        return None
    return encode_png(classify(values, valid, DEPTH_LEGEND, alpha=200))


TILE_FUNCS = {"elevation": elevation_tile, "hillshade": hillshade_tile, "slope": slope_tile,
              "flood": depth_tile}
LEGENDS = {"elevation": ELEVATION_LEGEND, "slope": SLOPE_LEGEND, "flood": DEPTH_LEGEND}


def tile(kind: str, path: str, z: int, x: int, y: int) -> bytes | None:
    """A PNG tile of ``kind`` (elevation | hillshade | slope | flood), None outside."""
    try:
        fn = TILE_FUNCS[kind]
    except KeyError:
        raise NotFound(f"unknown raster {kind!r}; one of {', '.join(TILE_FUNCS)}") from None
    return fn(path, z, x, y)


def tilejson(
    kind: str, url: str, bounds: tuple[float, float, float, float], *, name: str,
    minzoom: int = 8, maxzoom: int = 16, attribution: str | None = None,
) -> dict[str, Any]:
    """TileJSON 3.0 for a raster layer, with its legend (value → hex colour)."""
    w, s, e, n = bounds
    out: dict[str, Any] = {
        "tilejson": "3.0.0", "name": name, "tiles": [url], "scheme": "xyz",
        "minzoom": minzoom, "maxzoom": maxzoom, "bounds": [w, s, e, n],
        "center": [(w + e) / 2, (s + n) / 2, max(minzoom, min(12, maxzoom))],
    }
    if attribution:
        out["attribution"] = attribution
    if kind in LEGENDS:
        unit = "degrees" if kind == "slope" else "m"
        out["legend"] = {"unit": unit, "stops": [
            {"value": v, "color": "#{:02x}{:02x}{:02x}".format(*c)} for v, c in LEGENDS[kind]]}
    return out


def parse_line(line: str) -> list[tuple[float, float]]:
    """``lon,lat;lon,lat;…`` (EPSG:4326) → points; InputError when malformed."""
    pts = []
    for part in (line or "").split(";"):
        xy = part.split(",")
        try:
            lon, lat = float(xy[0]), float(xy[1])
        except (ValueError, IndexError):
            raise InputError(f"bad point {part!r}: expected 'lon,lat;lon,lat;…'") from None
        if len(xy) != 2 or not (-180 <= lon <= 180 and -90 <= lat <= 90) or not (
                math.isfinite(lon) and math.isfinite(lat)):
            raise InputError(f"bad point {part!r}: expected lon,lat in degrees")
        pts.append((lon, lat))
    if len(pts) < 2:
        raise InputError("a line needs at least two points: 'lon,lat;lon,lat'")
    if len(pts) > 1000:
        raise InputError("at most 1000 points in a line")
    return pts


def point(path: str, lon: float, lat: float) -> float | None:
    """Elevation (m) of the cell under lon/lat; None on a cell without data.

    Raises
    ------
    NotFound
        The point is outside the raster.
    """
    from twin.scenarios.terrain import load_dem

    dem = load_dem(path)
    _, _, inside = dem.cells(np.array([lon]), np.array([lat]))
    if not inside[0]:
        raise NotFound(f"{lon:.5f},{lat:.5f} is outside the DEM")
    v = dem.sample(dem.elev, np.array([lon]), np.array([lat]))[0]
    return None if np.isnan(v) else float(v)


def profile(path: str, line: list[tuple[float, float]], samples: int = 100) -> dict[str, Any]:
    """Elevation along a line: ``samples`` points evenly spaced by geodesic distance.

    Returns
    -------
    dict
        ``length_m``, ``points`` (distance_m, lon, lat, elevation_m or None), ``min_m``,
        ``max_m``, ``gain_m``, ``loss_m``.
    """
    from pyproj import Geod

    from twin.scenarios.terrain import load_dem

    if not 2 <= samples <= 2000:
        raise InputError("samples must be between 2 and 2000")
    geod = Geod(ellps="WGS84")
    lons = np.array([p[0] for p in line])
    lats = np.array([p[1] for p in line])
    legs = np.array(geod.inv(lons[:-1], lats[:-1], lons[1:], lats[1:])[2], float).reshape(-1)
    cum = np.concatenate([[0.0], np.cumsum(legs)])
    dist = np.linspace(0, cum[-1], samples)
    # interpolating lon/lat linearly within a leg is close enough at city scale
    x, y = np.interp(dist, cum, lons), np.interp(dist, cum, lats)
    dem = load_dem(path)
    z = dem.sample(dem.elev, x, y)
    if np.isnan(z).all():
        raise InputError("the line does not cross the DEM")
    dz = np.diff(z[~np.isnan(z)])
    return {
        "length_m": round(float(cum[-1]), 1),
        "samples": samples,
        "min_m": float(np.nanmin(z)),
        "max_m": float(np.nanmax(z)),
        "gain_m": round(float(dz[dz > 0].sum()), 1),
        "loss_m": round(float(-dz[dz < 0].sum()), 1),
        "points": [
            {"distance_m": round(float(d), 1), "lon": round(float(a), 6),
             "lat": round(float(b), 6), "elevation_m": None if np.isnan(v) else float(v)}
            for d, a, b, v in zip(dist, x, y, z, strict=True)
        ],
    }
