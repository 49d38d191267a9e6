"""Height above nearest drainage (HAND), computed once per terrain.

The drainage is the rivers of the land cover (``land_cover`` of kind ``water`` burnt onto
the DEM, :func:`twin.scenarios.depressions.river_mask`). A priority-flood from the river
cells over the conditioned DEM, 4-connected (:func:`depressions.priority_flood`), gives
each cell the cell it is reached from: followed downhill, that path is the way its water
takes to the river over the depression-filled surface. The river cell at its end is the
cell's *drainage*; HAND is the cell's ground above that cell's level (its ground, not
below sea level: :func:`bed_level`); 0 on the river, never below 0 (a hollow beside the
river floods with it). The open sea has none.

A river flood by stage (Nobre et al. 2016; the NOAA/NWC "HAND–rating curve" method) then
floods every cell whose HAND is below the water's height over the river bed, by that
difference: the water surface follows the river's bed down to the sea instead of one
level for the whole city (a bathtub).

The result is cached in memory and in ``<terrain_dir>/<dem>/hand-<rivers>.npz``, checked
against the DEM file's size and modification time.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twin.errors import InputError
from twin.scenarios import depressions
from twin.scenarios.terrain import DemArray

CACHE_NAME = "hand-{rivers}.npz"
_VERSION = 2


@dataclass(eq=False)
class Hand:
    """HAND of one DEM: ``hand`` (float32 m, NaN on the sea and without data) and
    ``drain`` (int64 flat index of each cell's drainage cell, -1 where none)."""

    hand: np.ndarray
    drain: np.ndarray
    seconds: float


def compute(dem: DemArray, rivers: np.ndarray) -> Hand:
    """HAND of ``dem`` above the ``rivers`` (bool mask of the DEM's shape)."""
    t0 = time.perf_counter()
    if rivers is None or not rivers.any():
        raise InputError("no river on this terrain: HAND needs the rivers of the land cover "
                         "(land_cover kind 'water')")
    z = dem.conditioned.astype(np.float64)
    h, w = z.shape
    nodata = np.isnan(z)
    outlets = rivers & ~nodata
    filled, parent, _ = depressions.priority_flood(np.where(nodata, np.inf, z), outlets)
    # follow each cell's path to its river cell (pointer jumping: log2(path) steps)
    n = h * w
    target = np.where(parent < 0, np.arange(n), parent)
    while True:
        nxt = target[target]
        if np.array_equal(nxt, target):
            break
        target = nxt
    ground = z.ravel()
    reached = outlets.ravel()[target]
    drain = np.where(reached, target, -1).astype(np.int64)
    hand = np.full(n, np.nan, np.float32)
    # the open sea (not a river) has no height above a river
    ok = reached & ~nodata.ravel() & ~(dem.sea.ravel() & ~outlets.ravel())
    hand[ok] = np.maximum(ground[ok] - bed_level(ground[drain[ok]]), 0.0)
    hand[outlets.ravel()] = 0.0
    return Hand(hand.reshape(h, w), drain, time.perf_counter() - t0)


def bed_level(z: np.ndarray | float) -> np.ndarray:
    """A river cell's level as the models take it: its DEM height, not below sea level
    (0 m). SRTM over water is noise; its tidal lower reaches read 1–2 m below the sea,
    which would put every riverside street metres above the river."""
    return np.maximum(np.asarray(z, np.float64), 0.0)


_cache: dict[tuple[str, str], tuple[tuple[int, int], Hand]] = {}
_lock = threading.Lock()


def cache_path(terrain_dir: Path, dem_name: str, rivers: str) -> Path:
    return terrain_dir / dem_name / CACHE_NAME.format(rivers=rivers)


def load(dem: DemArray, rivers: np.ndarray | None, terrain_dir: Path | None = None,
         dem_name: str | None = None) -> Hand:
    """HAND of ``dem`` above ``rivers``: from memory, the terrain cache file, or computed
    (and written to the cache file when ``terrain_dir`` and ``dem_name`` are given)."""
    if rivers is None or not rivers.any():
        raise InputError("no river on this terrain: HAND needs the rivers of the land cover "
                         "(land_cover kind 'water')")
    st = os.stat(dem.path)
    key = (st.st_mtime_ns, st.st_size)
    rk = depressions.rivers_key(rivers)
    with _lock:
        hit = _cache.get((dem.path, rk))
        if hit and hit[0] == key:
            return hit[1]
    path = cache_path(terrain_dir, dem_name, rk) if terrain_dir and dem_name else None
    got = _read(path, key) if path else None
    if got is None:
        got = compute(dem, rivers)
        if path:
            _write(path, key, got)
    with _lock:
        _cache[(dem.path, rk)] = (key, got)
        while len(_cache) > 4:
            _cache.pop(next(iter(_cache)))
    return got


def _write(path: Path, key: tuple[int, int], got: Hand) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.part.npz")
    try:
        np.savez(tmp, key=np.array([*key, _VERSION], np.int64), seconds=got.seconds,
                 hand=got.hand, drain=got.drain)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _read(path: Path, key: tuple[int, int]) -> Hand | None:
    try:
        with np.load(path) as z:
            if z["key"].tolist() != [*key, _VERSION]:
                return None
            return Hand(z["hand"], z["drain"], float(z["seconds"]))
    except (OSError, KeyError, ValueError):
        return None


def inundation(dem: DemArray, got: Hand, height_m: float,
               reach: np.ndarray | None = None) -> np.ndarray:
    """Water depth (float32 m, NaN dry) when the rivers stand ``height_m`` over their bed:
    ``height_m − HAND`` where that is positive, the river cells themselves excluded (they
    are water already); only cells draining to ``reach`` (flat bool over river cells)
    when given."""
    depth = (height_m - got.hand).astype(np.float32)
    wet = np.isfinite(depth) & (depth > 0) & (got.hand > 0)
    if reach is not None:
        d = got.drain.reshape(got.hand.shape)
        wet &= (d >= 0) & reach[np.clip(d, 0, None)]
    depth[~wet] = np.nan
    return depth
