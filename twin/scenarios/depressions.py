"""The depressions of a DEM and where their water goes, computed once per terrain.

A priority-flood (Barnes et al. 2014, with the plain queue for cells inside a pit) from
the outlets — the sea (:attr:`DemArray.sea`), the rivers (``land_cover`` of kind
``water``, burnt in with every touched cell so a river stays one 4-connected channel),
the raster's edge and cells without data — over the conditioned DEM, 4-connected. It gives

- ``filled``: the lowest surface that drains to an outlet (a depression filled to its
  spill point), and ``parent``: the cell each cell drains to on that surface;
- the depressions ("bluespots"): 4-connected cells where ``filled`` > ground; each has
  one water level when full (its spill elevation) and a volume curve;
- ``catch``: the depression a cell's water reaches first (0: an outlet), and ``down``:
  the depression (or outlet, 0) a full one spills into, following ``parent`` from its
  pour point; ``upstream``: the depressions ordered so that each comes before the one it
  spills into.

The result is cached in memory and in ``<terrain_dir>/<dem>/rain_depressions-<rivers>.npz``
(checked against the DEM file's size and modification time; ``<rivers>`` hashes the river
mask); ``twin import dem`` computes it at import. Elevations in metres, areas in m², volumes in m³.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twin.scenarios import hierarchy
from twin.scenarios.terrain import FOUR, DemArray

CACHE_NAME = "rain_depressions-{rivers}.npz"
_VERSION = 4  # bump when the conditioning or the algorithm changes


@dataclass(eq=False)
class Depressions:
    """Depressions of one DEM (flat cell indices, row-major)."""

    filled: np.ndarray  # float32 (rows, cols): ground filled to each depression's spill
    label: np.ndarray  # int32 flat: depression of each cell, 0 outside any
    catch: np.ndarray  # int32 flat: depression a cell's water reaches first, 0 = outlet
    down: np.ndarray  # int32 per depression (index 0 unused): where a full one spills
    upstream: np.ndarray  # int32 depression ids, each before the one it spills into
    spill: np.ndarray  # float64 per depression: its level when full
    cells: np.ndarray  # int64 flat ids of depression cells sorted by (label, ground)
    starts: np.ndarray  # int64 per depression: first position in ``cells`` (len n+2)
    seconds: float  # how long the precomputation took
    tree: hierarchy.Tree | None = None  # the nested depressions (fill-spill-merge)

    @property
    def count(self) -> int:
        return int(len(self.spill) - 1)


def priority_flood(z: np.ndarray, outlets: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """Fill ``z`` (2-D, NaN allowed only on outlets) from the ``outlets`` mask, 4-connected.

    Returns ``filled`` (float64 flat), ``parent`` (int64 flat, -1 on outlets) and
    ``order`` (flat cell ids in the order they were reached; parents come first).
    """
    h, w = z.shape
    n = h * w
    elev = np.where(np.isnan(z), -np.inf, z).ravel().tolist()
    filled = list(elev)
    parent = [-1] * n
    closed = bytearray(n)
    order: list[int] = []
    seeds = np.flatnonzero(outlets.ravel()).tolist()
    heap = [(elev[i], i) for i in seeds]
    for i in seeds:
        closed[i] = 1
    heapq.heapify(heap)
    pit: deque[int] = deque()
    push, pop = heapq.heappush, heapq.heappop
    while heap or pit:
        c = pit.popleft() if pit else pop(heap)[1]
        order.append(c)
        fc = filled[c]
        r, col = divmod(c, w)
        for nb in (c - w if r else -1, c + w if r + 1 < h else -1,
                   c - 1 if col else -1, c + 1 if col + 1 < w else -1):
            if nb < 0 or closed[nb]:
                continue
            closed[nb] = 1
            parent[nb] = c
            e = elev[nb]
            if e <= fc:
                filled[nb] = fc
                pit.append(nb)
            else:
                push(heap, (e, nb))
    return (np.asarray(filled, np.float64), np.asarray(parent, np.int64),
            np.asarray(order, np.int64))


def compute(dem: DemArray, rivers: np.ndarray | None = None) -> Depressions:
    """Depressions of ``dem`` (its conditioned ground), timed in ``seconds``; ``rivers``
    (bool, the DEM's shape) are outlets too."""
    from scipy import ndimage

    t0 = time.perf_counter()
    z = dem.conditioned.astype(np.float64)
    h, w = z.shape
    outlets = dem.sea | np.isnan(z)
    if rivers is not None:
        outlets |= rivers
    outlets[0, :] = outlets[-1, :] = outlets[:, 0] = outlets[:, -1] = True
    filled, parent, order = priority_flood(z, outlets)
    ground = np.where(np.isnan(z), -np.inf, z).ravel()
    lab2, n = ndimage.label((filled > ground).reshape(h, w) & ~outlets, structure=FOUR)
    label = lab2.ravel().astype(np.int32)
    # where each cell's water goes: follow parent until a depression or an outlet
    target = np.where((label > 0) | (parent < 0), np.arange(h * w), parent)
    while True:
        nxt = target[target]
        if np.array_equal(nxt, target):
            break
        target = nxt
    catch = label[target]
    catch[parent < 0] = 0
    # a full depression spills at its pour point: the cell its first-reached cell was
    # reached from (reached before any of its cells, so never inside it)
    in_dep = np.flatnonzero(label > 0)
    pos = np.empty(h * w, np.int64)
    pos[order] = np.arange(len(order))
    by_pos = in_dep[np.argsort(pos[in_dep], kind="stable")]
    ids, first = np.unique(label[by_pos], return_index=True)
    entry = by_pos[first]
    down = np.zeros(n + 1, np.int32)
    down[ids] = catch[parent[entry]]
    reached = np.full(n + 1, np.iinfo(np.int64).max)
    reached[ids] = pos[entry]
    # reached later = further from the outlets = upstream
    upstream = (np.argsort(-reached[1:], kind="stable") + 1).astype(np.int32)
    spill = np.zeros(n + 1)
    spill[label[in_dep]] = filled[in_dep]
    srt = in_dep[np.lexsort((ground[in_dep], label[in_dep]))]
    starts = np.searchsorted(label[srt], np.arange(n + 2)).astype(np.int64)
    tree = hierarchy.build(z, outlets)
    seconds = time.perf_counter() - t0
    return Depressions(filled.reshape(h, w).astype(np.float32), label, catch.astype(np.int32),
                       down, upstream, spill, srt, starts, seconds, tree)


_cache: dict[tuple[str, str], tuple[tuple[int, int], Depressions]] = {}
_lock = threading.Lock()


def rivers_key(rivers: np.ndarray | None) -> str:
    """A short hash of a river mask ("none" without one)."""
    if rivers is None or not rivers.any():
        return "none"
    return hashlib.sha1(np.packbits(rivers).tobytes()).hexdigest()[:12]


def cache_path(terrain_dir: Path, dem_name: str, rivers: str = "none") -> Path:
    return terrain_dir / dem_name / CACHE_NAME.format(rivers=rivers)


def river_mask(conn: object, dem: DemArray) -> np.ndarray | None:
    """The rivers (``land_cover`` kind ``water``) burnt onto the DEM's grid, every
    touched cell (None when there are none or the DEM is not in lon/lat)."""
    import shapely
    from rasterio.features import rasterize
    from sqlalchemy import text

    if not dem.geographic:
        return None
    h, w = dem.shape
    t = dem.transform
    xs, ys = (t.c, t.c + w * t.a), (t.f, t.f + h * t.e)
    rows = conn.execute(text(  # type: ignore[attr-defined]
        "SELECT ST_AsBinary(geom) FROM land_cover WHERE kind = 'water' "
        "AND geom && ST_MakeEnvelope(:w, :s, :e, :n, 4326)"),
        {"w": min(xs), "e": max(xs), "s": min(ys), "n": max(ys)}).scalars().all()
    if not rows:
        return None
    mask = rasterize([(shapely.from_wkb(bytes(g)), 1) for g in rows], out_shape=(h, w),
                     transform=t, fill=0, all_touched=True, dtype="uint8").astype(bool)
    return mask if mask.any() else None


def load(dem: DemArray, terrain_dir: Path | None = None, dem_name: str | None = None,
         rivers: np.ndarray | None = None, *, verbose: bool = False) -> Depressions:
    """The depressions of ``dem`` with ``rivers`` as outlets: from memory, from the
    terrain cache file, or computed (then written to the cache file when ``terrain_dir``
    and ``dem_name`` are given)."""
    st = os.stat(dem.path)
    key = (st.st_mtime_ns, st.st_size)
    rk = rivers_key(rivers)
    with _lock:
        hit = _cache.get((dem.path, rk))
        if hit and hit[0] == key:
            return hit[1]
    path = cache_path(terrain_dir, dem_name, rk) if terrain_dir and dem_name else None
    dep = _read(path, key) if path else None
    if dep is None:
        dep = compute(dem, rivers)
        if verbose:
            print(f"depressions of {dem_name or dem.path}: {dep.count:,} in "
                  f"{dep.seconds:.2f} s (priority-flood, {dem.elev.size:,} cells)")
        if path:
            _write(path, key, dep)
    with _lock:
        _cache[(dem.path, rk)] = (key, dep)
        while len(_cache) > 4:
            _cache.pop(next(iter(_cache)))
    return dep


_FIELDS = ("filled", "label", "catch", "down", "upstream", "spill", "cells", "starts")
_TREE = ("parent", "child1", "child2", "top", "entry", "spill_to", "flowleaf", "join", "cells",
         "start", "stop")


def _write(path: Path, key: tuple[int, int], dep: Depressions) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.part.npz")
    try:
        assert dep.tree is not None
        np.savez(tmp, key=np.array([*key, _VERSION], np.int64), seconds=dep.seconds,
                 **{f: getattr(dep, f) for f in _FIELDS},
                 **{f"tree_{f}": getattr(dep.tree, f) for f in _TREE})
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _read(path: Path, key: tuple[int, int]) -> Depressions | None:
    try:
        with np.load(path) as z:
            if z["key"].tolist() != [*key, _VERSION]:
                return None
            tree = hierarchy.Tree(**{f: z[f"tree_{f}"] for f in _TREE})
            return Depressions(**{f: z[f] for f in _FIELDS}, seconds=float(z["seconds"]),
                               tree=tree)
    except (OSError, KeyError, ValueError):
        return None
