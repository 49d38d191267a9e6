"""A synthetic DEM of the demo city, written as a Cloud-Optimised GeoTIFF.

The grid is EPSG:4326 at 1 arc-second (~30 m), float32 metres above sea level: a low
coastal plain (1–5 m) rising slowly away from the water, the Sơn Trà massif (693 m), the
Hải Vân foothills and the hills to the west, the six Marble Mountains (Thủy Sơn 106 m),
a flat airfield (~9 m), river channels below 0 m and the sea at −2 m.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from twin.demo import facts
from twin.demo.geo import Geography, distance_to, pt, to_local_xy, to_lonlat
from twin.settings import Settings

RES_DEG = 1.0 / 3600.0
NODATA = -9999.0
SEA_M = -2.0
COG_OPTIONS = {
    "COMPRESS": "DEFLATE",
    "BLOCKSIZE": "256",
    "OVERVIEWS": "AUTO",
    "OVERVIEW_RESAMPLING": "AVERAGE",
    "RESAMPLING": "BILINEAR",
}


@dataclass
class Dem:
    """The DEM in memory: ``z`` (rows north → south), its affine transform, bounds."""

    z: np.ndarray
    transform: Any
    bounds: tuple[float, float, float, float]  # west, south, east, north (degrees)

    def sample(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Elevation (m) at lon/lat points (nearest cell; NaN outside)."""
        col = np.floor((np.asarray(lon) - self.bounds[0]) / RES_DEG).astype(np.int64)
        row = np.floor((self.bounds[3] - np.asarray(lat)) / RES_DEG).astype(np.int64)
        h, w = self.z.shape
        ok = (row >= 0) & (row < h) & (col >= 0) & (col < w)
        out = np.full(len(col), np.nan)
        out[ok] = self.z[row[ok], col[ok]]
        return out


def _bilinear(grid: np.ndarray, fy: np.ndarray, fx: np.ndarray, smooth: bool) -> np.ndarray:
    """Separable (bi)linear resampling of ``grid`` at fractional rows ``fy`` / cols ``fx``."""
    y0 = np.minimum(fy.astype(int), grid.shape[0] - 2)
    x0 = np.minimum(fx.astype(int), grid.shape[1] - 2)
    ty, tx = fy - y0, fx - x0
    if smooth:
        ty, tx = ty * ty * (3 - 2 * ty), tx * tx * (3 - 2 * tx)
    rows = grid[:, x0] * (1 - tx) + grid[:, x0 + 1] * tx
    return rows[y0] * (1 - ty)[:, None] + rows[y0 + 1] * ty[:, None]


def value_noise(shape: tuple[int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth noise in [-1, 1]: a random ``cells``² lattice, smoothly interpolated."""
    h, w = shape
    lattice = rng.uniform(-1.0, 1.0, size=(cells + 1, cells + 1))
    fy = np.linspace(0, cells, h, endpoint=False)
    fx = np.linspace(0, cells, w, endpoint=False)
    return _bilinear(lattice, fy, fx, smooth=True)


def fbm(shape: tuple[int, int], rng: np.random.Generator, octaves: int = 5,
        base: int = 4) -> np.ndarray:
    """Fractal noise (roughly [-1, 1]): ``octaves`` of value noise from ``base`` cells up."""
    out = np.zeros(shape)
    amp, total = 1.0, 0.0
    for k in range(octaves):
        out += amp * value_noise(shape, base * 2**k, rng)
        total += amp
        amp *= 0.5
    return out / total


def _upsample(coarse: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    fy = np.linspace(0, coarse.shape[0] - 1, shape[0])
    fx = np.linspace(0, coarse.shape[1] - 1, shape[1])
    return _bilinear(coarse, fy, fx, smooth=False)


def _rasterize(geom: BaseGeometry, shape: tuple[int, int], transform: Any) -> np.ndarray:
    from rasterio.features import rasterize

    if geom.is_empty:
        return np.zeros(shape, bool)
    return rasterize([(to_lonlat(geom), 1)], out_shape=shape, transform=transform,
                     dtype="uint8").astype(bool)


def synthesize(geo: Geography, seed: int, airport: BaseGeometry) -> Dem:
    """Build the DEM array for the demo extent (see the module docstring)."""
    from rasterio.transform import Affine

    e = facts.load("geography")["extent"]
    w, s, east, n = float(e["west"]), float(e["south"]), float(e["east"]), float(e["north"])
    width, height = round((east - w) / RES_DEG), round((n - s) / RES_DEG)
    transform = Affine(RES_DEG, 0.0, w, 0.0, -RES_DEG, n)
    shape = (height, width)
    lon = w + (np.arange(width) + 0.5) * RES_DEG
    lat = n - (np.arange(height) + 0.5) * RES_DEG
    glon, glat = np.meshgrid(lon, lat)
    x, y = to_local_xy(glon.ravel(), glat.ravel())
    x, y = x.reshape(shape), y.reshape(shape)
    rng = np.random.default_rng([seed, 101])

    step = 8  # distances on a coarse grid (~240 m), then interpolated
    cy, cx = y[::step, ::step], x[::step, ::step]
    shore = shapely.union_all([geo.sea.boundary, geo.water.boundary]).intersection(
        geo.extent.buffer(-1.0))
    d_water = _upsample(distance_to(shore, cx.ravel(), cy.ravel()).reshape(cx.shape), shape)
    d_sea = _upsample(distance_to(geo.sea.boundary.intersection(geo.extent.buffer(-1.0)),
                                cx.ravel(), cy.ravel()).reshape(cx.shape), shape)

    noise = fbm(shape, rng)
    plain = 1.0 + 4.0 * np.clip(d_water / 2500.0, 0, 1) ** 0.6 + 0.5 * noise
    plain = np.clip(plain, 1.0, 5.5)
    hills = np.zeros(shape)
    rough = fbm(shape, rng, octaves=5, base=12)  # ~2 km down to ~120 m
    for m in facts.load("geography")["relief"]["masses"]:
        c = pt(m["centre"])
        r = np.sqrt(((x - c.x) / m["rx_m"]) ** 2 + ((y - c.y) / m["ry_m"]) ** 2)
        peak = float(m["peak_m"])
        dome = peak * np.clip(1.0 - r, 0, 1) ** 1.3
        hills = np.maximum(hills, dome * (0.9 + 0.25 * rough))
    ridges = 1.0 - np.abs(fbm(shape, rng, octaves=4, base=24))  # valleys and spurs, [0, 1]
    hills *= (0.75 + 0.25 * ridges) * np.clip(d_sea / 400.0, 0, 1) ** 0.5
    for p in facts.load("geography")["marble_mountains"]["peaks"]:
        c = pt(p["lonlat"])
        r2 = ((x - c.x) ** 2 + (y - c.y) ** 2) / float(p["radius_m"]) ** 2
        hills = np.maximum(hills, float(p["height_m"]) * np.clip(1.0 - r2, 0, 1) ** 0.6)
    z = plain + hills
    a = _rasterize(airport, shape, transform)
    z[a] = 9.0 + 0.3 * noise[a]
    land = _rasterize(shapely.union(geo.land, geo.outside), shape, transform)
    water = _rasterize(geo.water, shape, transform)
    z[water] = -1.0 + 0.5 * noise[water] - 0.5 * np.clip(d_water[water] / 100.0, 0, 1)
    z[~land] = SEA_M
    return Dem(z.astype(np.float32), transform, (w, s, east, n))


def forest(dem: Dem, geo: Geography, above_m: float = 30.0) -> BaseGeometry:
    """Hill land higher than ``above_m`` as polygons (local metres): the demo's forest."""
    from rasterio.features import shapes

    from twin.demo.geo import polygonal, to_local

    mask = (dem.z > above_m).astype(np.uint8)
    polys = [shapely.geometry.shape(g) for g, v in shapes(mask, mask=mask.astype(bool),
                                                           transform=dem.transform) if v == 1]
    if not polys:
        return shapely.geometry.Polygon()
    merged = to_local(shapely.union_all(polys)).simplify(20.0)
    return polygonal(merged.buffer(0).intersection(geo.land))


def write_cog(dem: Dem, path: Path) -> None:
    """Write the DEM as a COG (DEFLATE, 256² tiles, overviews) at ``path``, atomically."""
    import rasterio
    import rasterio.shutil
    from rasterio.io import MemoryFile

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    h, w = dem.z.shape
    profile = {"driver": "GTiff", "width": w, "height": h, "count": 1, "dtype": "float32",
               "crs": "EPSG:4326", "transform": dem.transform, "nodata": NODATA}
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(dem.z, 1)
            dst.update_tags(source="Da Nang Twin demo city (synthetic)", units="metre")
        with mem.open() as src:
            rasterio.shutil.copy(src, str(tmp), driver="COG", **COG_OPTIONS)
    os.replace(tmp, path)


def register(conn: Connection, dem: Dem, path: Path, name: str = "demo_dem") -> None:
    """Insert (or take over) the ``terrain`` row for the demo DEM (source ``demo``)."""
    w, s, e, n = dem.bounds
    h, width = dem.z.shape
    valid = dem.z[dem.z != NODATA]
    conn.execute(
        text(
            "INSERT INTO terrain (source, source_id, name, kind, path, crs, width, height,"
            " res_x, res_y, nodata, min_value, max_value, geom) VALUES ('demo', :name, :name,"
            " 'dem', :path, 'EPSG:4326', :w, :h, :res, :res, :nodata, :lo, :hi,"
            " ST_MakeEnvelope(:west, :south, :east, :north, 4326))"
            " ON CONFLICT (name) DO UPDATE SET source = 'demo', source_id = EXCLUDED.source_id,"
            " kind = 'dem', path = EXCLUDED.path, crs = EXCLUDED.crs, width = EXCLUDED.width,"
            " height = EXCLUDED.height, res_x = EXCLUDED.res_x, res_y = EXCLUDED.res_y,"
            " nodata = EXCLUDED.nodata, min_value = EXCLUDED.min_value,"
            " max_value = EXCLUDED.max_value, geom = EXCLUDED.geom, updated_at = now()"
        ),
        {"name": name, "path": str(path.resolve()), "w": width, "h": h, "res": RES_DEG,
         "nodata": NODATA, "lo": float(valid.min()), "hi": float(valid.max()),
         "west": w, "south": s, "east": e, "north": n},
    )


def build_terrain(conn: Connection, geo: Geography, *, seed: int, settings: Settings,
                  airport: BaseGeometry) -> Dem:
    """Synthesize, write to ``settings.terrain_dir / 'demo_dem.tif'`` and register."""
    dem = synthesize(geo, seed, airport)
    path = Path(settings.terrain_dir) / "demo_dem.tif"
    write_cog(dem, path)
    register(conn, dem, path)
    return dem

