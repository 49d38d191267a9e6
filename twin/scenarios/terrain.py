"""Registered DEMs for analysis: look one up in ``terrain``, read it whole into memory
(cached per path and modification time), and sample it at lon/lat points.

Elevations are metres in the DEM's vertical datum (EGM96 for SRTM); lon/lat are
EPSG:4326; the grid stays in the DEM's own CRS (the real Đà Nẵng DEM is EPSG:4326).

Water spreads between the 4 edge neighbours of a cell (``FOUR``), never across a corner
alone: with 8-connectivity a flood leaks through every diagonal gap in a dyke or a road
embankment one cell wide. Every model reads ``DemArray.conditioned``: the elevations
with pits at or below sea level (≤ ``SEA_LEVEL_M``) that are not connected to the sea
filled to their lowest rim (SRTM has 1,120 radar pits below 0 m in Đà Nẵng, down to
−25 m, and more at 0 m inside the city; left in, they give 9 m "depths" at a 2 m water
level), then every single-cell pit (a cell below all 4 neighbours: noise at 30 m)
raised to its lowest neighbour. Cell areas are geodesic (WGS 84 ellipsoid).
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from twin.errors import InputError, NotFound

#: Cells at or below this elevation (metres) that touch the raster's edge are the sea:
#: permanent water, the default flood source and never counted as flooded land.
SEA_LEVEL_M = 0.5
MAX_CELLS = 40_000_000  # a whole-raster read beyond this would not fit the time budget
EARTH_RADIUS_M = 6_371_008.8
_CACHE_SIZE = 4
#: 4-connectivity: the structure every model spreads water with.
FOUR = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)
WGS84_A = 6_378_137.0
WGS84_F = 1 / 298.257223563


@dataclass(frozen=True)
class DemRef:
    """A registered DEM: its name, COG path, CRS and footprint (lon/lat bounds)."""

    name: str
    path: str
    crs: str
    bounds: tuple[float, float, float, float]


def resolve_dem(conn: Connection, name: str | None = None) -> DemRef:
    """The DEM called ``name``, or the most recently registered one when None.

    Raises
    ------
    NotFound
        No DEM of that name (the message lists the registered ones), or none at all.
    """
    sql = (
        "SELECT name, path, crs, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) "
        "FROM terrain WHERE kind = 'dem' "
    )
    if name is None:
        row = conn.execute(text(sql + "ORDER BY updated_at DESC, id DESC LIMIT 1")).first()
        if row is None:
            raise NotFound("no DEM is registered (import one with `twin import dem FILE`)")
    else:
        row = conn.execute(text(sql + "AND name = :n"), {"n": name}).first()
        if row is None:
            names = conn.execute(
                text("SELECT name FROM terrain WHERE kind = 'dem' ORDER BY name")
            ).scalars().all()
            known = ", ".join(names) or "none"
            raise NotFound(f"unknown DEM {name!r}; registered: {known}")
    return DemRef(row[0], row[1], row[2], (row[3], row[4], row[5], row[6]))


@dataclass(eq=False)
class DemArray:
    """A DEM read whole: ``elev`` float32 metres with NaN where there is no data."""

    path: str
    elev: np.ndarray
    transform: Any  # affine.Affine, grid → DEM CRS
    crs: Any  # rasterio.crs.CRS

    @property
    def shape(self) -> tuple[int, int]:
        return self.elev.shape  # type: ignore[return-value]

    @property
    def geographic(self) -> bool:
        return bool(self.crs.is_geographic)

    @cached_property
    def sea(self) -> np.ndarray:
        """Permanent water: cells ≤ ``SEA_LEVEL_M`` 4-connected to the raster's edge."""
        from scipy import ndimage

        low = self.elev <= SEA_LEVEL_M
        labels, _ = ndimage.label(low, structure=FOUR)
        edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
        keep = np.zeros(int(labels.max()) + 1, bool)
        keep[edge] = True
        keep[0] = False
        return keep[labels]  # type: ignore[no-any-return]

    @cached_property
    def pits(self) -> np.ndarray:
        """Cells at or below sea level (≤ ``SEA_LEVEL_M``) not 4-connected to the sea:
        radar pits, not water."""
        return (self.elev <= SEA_LEVEL_M) & ~self.sea  # type: ignore[no-any-return]

    @cached_property
    def conditioned(self) -> np.ndarray:
        """Elevations (float32 m), read-only: every pit at or below sea level not
        connected to the sea raised to the lowest cell on its rim (4-neighbours outside
        the pit), then every single-cell pit to its lowest 4-neighbour."""
        from scipy import ndimage

        z = self.elev.copy()
        pits = self.pits
        if pits.any():
            labels, n = ndimage.label(pits, structure=FOUR)
            rim = np.full(n + 1, np.inf)
            h, w = z.shape
            for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                # a cell outside the pits whose neighbour (r+dr, c+dc) is in pit L
                src = labels[max(dr, 0):h + min(dr, 0), max(dc, 0):w + min(dc, 0)]
                dst = z[max(-dr, 0):h + min(-dr, 0), max(-dc, 0):w + min(-dc, 0)]
                out = labels[max(-dr, 0):h + min(-dr, 0), max(-dc, 0):w + min(-dc, 0)] == 0
                sel = (src > 0) & out & np.isfinite(dst)
                np.minimum.at(rim, src[sel], dst[sel])
            rim[~np.isfinite(rim)] = SEA_LEVEL_M  # a pit with no rim (the whole raster)
            z[pits] = rim[labels[pits]]
        lowest = _lowest_neighbour(z)
        single = (z < lowest) & np.isfinite(lowest) & ~self.sea
        z[single] = lowest[single]
        z.setflags(write=False)
        return z

    @cached_property
    def cell_area_m2(self) -> np.ndarray:
        """Area of one cell per row (m²). On a geographic grid: the exact area of the
        cell's quadrangle on the WGS 84 ellipsoid (authalic formula; it agrees with
        ``pyproj.Geod.polygon_area_perimeter`` to 1e-9)."""
        a = self.transform
        h = self.shape[0]
        if not self.geographic:
            unit = float(self.crs.linear_units_factor[1]) if self.crs else 1.0
            return np.full(h, abs(a.a * a.e) * unit * unit)
        top = a.f + np.arange(h) * a.e
        return ellipsoid_band_area(top, top + a.e) * abs(a.a) / 360.0  # type: ignore[no-any-return]

    def to_grid(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fractional (row, col) of lon/lat points (EPSG:4326) on this grid."""
        x, y = np.asarray(lon, float), np.asarray(lat, float)
        if not _is_wgs84(self.crs):
            from rasterio.warp import transform

            xs, ys = transform("EPSG:4326", self.crs, x.ravel().tolist(), y.ravel().tolist())
            x, y = np.asarray(xs).reshape(x.shape), np.asarray(ys).reshape(y.shape)
        inv = ~self.transform
        col = inv.a * x + inv.b * y + inv.c
        row = inv.d * x + inv.e * y + inv.f
        return row, col

    def cells(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Integer (row, col) of points and whether each falls inside the grid."""
        row, col = self.to_grid(lon, lat)
        r, c = np.floor(row).astype(np.int64), np.floor(col).astype(np.int64)
        h, w = self.shape
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        return np.clip(r, 0, h - 1), np.clip(c, 0, w - 1), inside

    def sample(self, grid: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Values of ``grid`` (same shape as the DEM) at points; NaN outside."""
        r, c, inside = self.cells(lon, lat)
        out = grid[r, c].astype(np.float64)
        out[~inside] = np.nan
        return out  # type: ignore[no-any-return]


def _lowest_neighbour(z: np.ndarray) -> np.ndarray:
    """The lowest of each cell's 4 neighbours (NaN and off-grid ones ignored; +inf
    when there is none)."""
    big = np.where(np.isnan(z), np.inf, z)
    out = np.full(z.shape, np.inf, z.dtype)
    out[1:, :] = np.minimum(out[1:, :], big[:-1, :])
    out[:-1, :] = np.minimum(out[:-1, :], big[1:, :])
    out[:, 1:] = np.minimum(out[:, 1:], big[:, :-1])
    out[:, :-1] = np.minimum(out[:, :-1], big[:, 1:])
    return out


def ellipsoid_band_area(lat1: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    """Area (m²) of the full 360° band between two latitudes on the WGS 84 ellipsoid."""
    e2 = WGS84_F * (2 - WGS84_F)
    e = math.sqrt(e2)
    b2 = (WGS84_A * (1 - WGS84_F)) ** 2

    def q(lat: np.ndarray) -> np.ndarray:
        s = np.sin(np.radians(lat))
        return s / (1 - e2 * s * s) + np.log((1 + e * s) / (1 - e * s)) / (2 * e)  # type: ignore[no-any-return]

    return np.abs(math.pi * b2 * (q(np.asarray(lat2, float)) - q(np.asarray(lat1, float))))  # type: ignore[no-any-return]


def _is_wgs84(crs: Any) -> bool:
    try:
        return bool(crs.to_epsg() == 4326)
    except Exception:  # noqa: BLE001 - an unusual CRS is simply not WGS 84
        return False


_cache: dict[str, tuple[tuple[int, int], DemArray]] = {}
_cache_lock = threading.Lock()


def load_dem(path: str) -> DemArray:
    """Read a DEM whole (band 1, float32, NaN for nodata), cached per path + mtime.

    Raises
    ------
    NotFound
        The file registered for the DEM is missing.
    InputError
        The raster is too large to analyse in memory.
    """
    import rasterio

    try:
        st = os.stat(path)
    except OSError as exc:
        raise NotFound(f"the DEM file {path} is missing") from exc
    key = (st.st_mtime_ns, st.st_size)
    with _cache_lock:
        hit = _cache.get(path)
        if hit and hit[0] == key:
            return hit[1]
    with rasterio.open(path) as ds:
        if ds.width * ds.height > MAX_CELLS:
            raise InputError(
                f"the DEM has {ds.width}×{ds.height} cells; at most {MAX_CELLS:,} are analysed"
            )
        band = ds.read(1, masked=True)
        elev = np.ma.filled(band.astype(np.float32), np.nan)
        dem = DemArray(path=path, elev=elev, transform=ds.transform, crs=ds.crs)
    dem.elev.setflags(write=False)
    with _cache_lock:
        _cache[path] = (key, dem)
        while len(_cache) > _CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
    return dem
