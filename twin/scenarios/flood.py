"""Flood at a water level on a DEM: a bathtub fill that respects connectivity.

Every cell at or below the water level is wet, but only the wet regions connected
to a source flood — 4-connectivity, so water never crosses a one-cell dyke through its
diagonal gaps: low ground behind higher ground stays dry until the water tops it. The
DEM is conditioned first (``DemArray.conditioned``: sub-sea pits not connected to the sea
filled to their rim), so a radar pit never shows as a deep "flood". The source is, by
default, the sea — cells at or below ``SEA_LEVEL_M`` (0.5 m) that touch the raster's
edge; a DEM with no such cells uses its lowest cells instead. Explicit seed points (a
river reach, a flood tower) replace it.

The sea itself is permanent water: it is never counted, drawn or written as flooded
land. Depth = level − elevation (metres) on the flooded cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from twin.errors import InputError
from twin.i18n import t
from twin.scenarios.terrain import FOUR, SEA_LEVEL_M, DemArray

MAX_LEVEL_M = 1000.0
MAX_RISE_M = 100.0
MAX_SEEDS = 100
#: Above this many flooded cells the polygon is traced on a 2× coarser mask (speed).
POLYGON_FULL_RES_CELLS = 400_000


@dataclass
class FloodGrid:
    """The result of a fill on a DEM grid (rows/cols of ``dem``)."""

    dem: DemArray
    level_m: float
    reference_m: float
    flooded: np.ndarray  # bool: flooded land (the sea excluded)
    seeds: str  # "sea" | "lowest" | "points"
    notes: list[str] = field(default_factory=list)
    notes_vi: list[str] = field(default_factory=list)  # the same notes in Vietnamese
    #: per-cell water depth (m, NaN dry) when the model gives one (rain); else level − ground
    water_depth: np.ndarray | None = None

    @cached_property
    def depth(self) -> np.ndarray:
        """Water depth in metres on flooded cells, NaN elsewhere (float32), over the
        conditioned ground."""
        if self.water_depth is not None:
            return self.water_depth
        d = np.full(self.flooded.shape, np.nan, np.float32)
        d[self.flooded] = self.level_m - self.dem.conditioned[self.flooded]
        return d

    @property
    def cells(self) -> int:
        return int(self.flooded.sum())

    def area_km2(self) -> float:
        per_row = self.flooded.sum(axis=1) * self.dem.cell_area_m2
        return float(per_row.sum() / 1e6)

    def window(self) -> tuple[slice, slice] | None:
        """The smallest row/col window holding every flooded cell (None when dry)."""
        rows = np.flatnonzero(self.flooded.any(axis=1))
        if rows.size == 0:
            return None
        cols = np.flatnonzero(self.flooded.any(axis=0))
        return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def check_level(
    water_level_m: float | None, rise_m: float | None
) -> tuple[float | None, float | None]:
    """Exactly one of an absolute level (0…1000 m) or a rise over the reference (0…100 m)."""
    if (water_level_m is None) == (rise_m is None):
        raise InputError("give exactly one of water_level_m or rise_m")
    for name, v, hi in (("water_level_m", water_level_m, MAX_LEVEL_M), ("rise_m", rise_m,
                                                                         MAX_RISE_M)):
        if v is None:
            continue
        if not math.isfinite(v) or v < 0 or v > hi:
            raise InputError(f"{name} must be between 0 and {hi:g} metres, got {v:g}")
    return water_level_m, rise_m


def fill(
    dem: DemArray,
    *,
    water_level_m: float | None = None,
    rise_m: float | None = None,
    seeds: list[tuple[float, float]] | None = None,
) -> FloodGrid:
    """Flood ``dem`` to a water level from the sea (default) or from seed points.

    Parameters
    ----------
    dem
        The DEM (elevations in metres).
    water_level_m
        Absolute water surface (metres, the DEM's datum).
    rise_m
        Or a rise over the reference: 0 m (mean sea level) with the default source, the
        lowest ground under the seeds with explicit seeds.
    seeds
        Source points as (lon, lat) in EPSG:4326; each must fall on the DEM's data.

    Returns
    -------
    FloodGrid
        The flooded land and the level used.

    Raises
    ------
    InputError
        A bad level, or a seed outside the DEM or on a cell without data.
    """
    from scipy import ndimage

    check_level(water_level_m, rise_m)
    elev = dem.conditioned
    notes: list[str] = []
    notes_vi: list[str] = []
    seed_cells: tuple[np.ndarray, np.ndarray] | None = None
    if seeds:
        if len(seeds) > MAX_SEEDS:
            raise InputError(f"at most {MAX_SEEDS} seed points")
        lon = np.array([s[0] for s in seeds], float)
        lat = np.array([s[1] for s in seeds], float)
        r, c, inside = dem.cells(lon, lat)
        if not inside.all():
            i = int(np.flatnonzero(~inside)[0])
            raise InputError(f"seed point {seeds[i][0]:.5f},{seeds[i][1]:.5f} is outside the DEM")
        under = elev[r, c]
        if np.isnan(under).any():
            i = int(np.flatnonzero(np.isnan(under))[0])
            raise InputError(f"seed point {seeds[i][0]:.5f},{seeds[i][1]:.5f} has no elevation")
        reference = float(under.min())
        mode = "points"
        seed_cells = (r, c)
    else:
        reference = 0.0
        mode = "sea" if dem.sea.any() else "lowest"
    level = float(water_level_m) if water_level_m is not None else reference + float(rise_m or 0)

    wet = elev <= level  # NaN compares False: no data never floods
    labels, _ = ndimage.label(wet, structure=FOUR)
    keep = np.zeros(int(labels.max()) + 1, bool)
    if seed_cells is not None:
        keep[labels[seed_cells]] = True
        dry = int((labels[seed_cells] == 0).sum())
        if dry:
            notes.append(t("flood.dry_seeds", "en", n=dry))
            notes_vi.append(t("flood.dry_seeds", "vi", n=dry))
    elif mode == "sea":
        keep[labels[dem.sea]] = True
    else:
        lowest = np.nanmin(elev)
        keep[labels[elev == lowest]] = True
        notes.append(t("flood.no_sea", "en", lowest=lowest))
        notes_vi.append(t("flood.no_sea", "vi", lowest=lowest))
    keep[0] = False
    flooded = keep[labels] & ~dem.sea
    pits = int(dem.pits.sum())
    src = {"sea": "flood.source.sea", "points": "flood.source.points",
           "lowest": "flood.source.lowest"}[mode]
    for lang, out in (("en", notes), ("vi", notes_vi)):
        source = t(src, lang, level=SEA_LEVEL_M, n=len(seeds or ()), reference=reference)
        out.insert(0, t("flood.method", lang, level=level, source=source, pits=pits))
        out.append(t("flood.limits", lang))
    return FloodGrid(dem, level, reference, flooded, mode, notes, notes_vi)


def polygon(grid: FloodGrid) -> Any:
    """The flooded land as one shapely MultiPolygon in EPSG:4326 (None when dry).

    Traced with GDAL's polygonize, 4-connected so every ring is valid (parts meet at
    most at a corner), on a 2× coarser mask above ``POLYGON_FULL_RES_CELLS`` cells.
    """
    import shapely

    win = grid.window()
    if win is None:
        return None
    mask = grid.flooded[win]
    t = grid.dem.transform @ grid.dem.transform.translation(win[1].start, win[0].start)
    if grid.cells > POLYGON_FULL_RES_CELLS:
        h, w = mask.shape
        padded = np.zeros((h + h % 2, w + w % 2), bool)
        padded[:h, :w] = mask
        mask = np.asarray(
            padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2).any(axis=(1, 3))
        )
        t = t @ t.scale(2, 2)
    parts = _trace(mask.view(np.uint8), mask, t, grid.dem.crs)
    return shapely.MultiPolygon(list(parts))


def pieces(grid: FloodGrid, block: int = 32) -> np.ndarray:
    """The flooded land cut along a grid of ``block``×``block`` cells: small polygons
    (EPSG:4326) for fast index probes — what ``ST_Subdivide`` would give, without its
    cost on a polygon with thousands of holes."""
    win = grid.window()
    if win is None:
        return np.array([], dtype=object)
    mask = grid.flooded[win]
    t = grid.dem.transform @ grid.dem.transform.translation(win[1].start, win[0].start)
    h, w = mask.shape
    per_row = (w + block - 1) // block
    ids = ((np.arange(h) // block)[:, None] * per_row + (np.arange(w) // block)[None, :] + 1)
    return _trace(ids.astype(np.int32), mask, t, grid.dem.crs)


def _trace(values: np.ndarray, mask: np.ndarray, transform: Any, crs: Any) -> np.ndarray:
    """Polygons of the 4-connected regions of equal value under ``mask``, built in one
    vectorised call, transformed to EPSG:4326 when the grid is not."""
    import itertools

    import shapely
    from rasterio.features import shapes

    geoms = [g["coordinates"] for g, _ in shapes(values, mask=mask, connectivity=4,
                                                  transform=transform)]
    if not geoms:
        return np.array([], dtype=object)
    rings = [r for g in geoms for r in g]
    sizes = np.fromiter((len(r) for r in rings), np.int64, count=len(rings))
    flat = itertools.chain.from_iterable(itertools.chain.from_iterable(rings))
    coords = np.fromiter(flat, float, count=2 * int(sizes.sum())).reshape(-1, 2)
    if not _is_wgs84(crs):
        from pyproj import Transformer

        tr = Transformer.from_crs(crs.to_wkt(), "EPSG:4326", always_xy=True)
        coords = np.column_stack(tr.transform(coords[:, 0], coords[:, 1]))
    lr = shapely.linearrings(coords, indices=np.repeat(np.arange(len(rings)), sizes))
    owner = np.repeat(np.arange(len(geoms)), [len(g) for g in geoms])
    return shapely.polygons(lr, indices=owner)  # type: ignore[no-any-return]


def _is_wgs84(crs: Any) -> bool:
    try:
        return bool(crs.to_epsg() == 4326)
    except Exception:  # noqa: BLE001
        return False


def write_depth(grid: FloodGrid, path: Path) -> Path | None:
    """Write the depth (metres, float32, NaN = dry) of the flooded window as a COG.

    Written under a temporary name and renamed, so a reader never sees half a file.
    Returns None when nothing is flooded.
    """
    import rasterio

    win = grid.window()
    if win is None:
        return None
    depth = grid.depth[win]
    transform = grid.dem.transform @ grid.dem.transform.translation(win[1].start, win[0].start)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.part.tif")
    profile = {
        "driver": "COG", "width": depth.shape[1], "height": depth.shape[0], "count": 1,
        "dtype": "float32", "nodata": float("nan"), "crs": grid.dem.crs,
        "transform": transform, "compress": "DEFLATE", "blocksize": 256,
        "overview_resampling": "average",
    }
    try:
        with rasterio.open(tmp, "w", **profile) as ds:
            ds.write(depth, 1)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def sea_level_note(lang: str = "en") -> str:
    """The old default-source note (kept for callers; floods now say their own source)."""
    return t("flood.sea_default", lang, level=SEA_LEVEL_M)
