"""Rain flood: where a storm's water stands at the end of the rain.

Method, per DEM cell (the DEM's own grid, 4-connected, conditioned ground):

1. **Rain**: a hyetograph (mm per interval), or a total spread evenly over ``hours``.
2. **Runoff** by the SCS curve number (USDA TR-55): ``S = 25400/CN − 254`` mm,
   ``Ia = 0.2 S``, cumulative runoff ``Q = (P − Ia)² / (P − Ia + S)``. CN from the land
   cover (:data:`CN_BY_COVER`, hydrologic soil group C, AMC II), raised toward 98 by the
   share of the cell under buildings, and shifted to AMC I / III for a dry / wet
   antecedent (Chow, Maidment & Mays 1988, eq. 5.5.4–5). Rain on the sea is not counted.
3. **Drains** take up to ``drainage_mm_per_h`` of each interval's runoff on every land
   cell; the rest is surface water.
4. **Routing** over the depression hierarchy of :mod:`twin.scenarios.hierarchy`
   (computed once per terrain with :mod:`twin.scenarios.depressions`): each cell's
   water runs down its steepest 4-neighbour into a leaf depression; a full depression
   spills over its saddle into its neighbour, two full ones merge into one lake that
   fills on (fill-spill-merge, Barnes et al. 2020); what reaches an outlet (the sea at
   ``sea_level_m``, a river, the raster's edge) leaves. A lake's level solves its volume
   curve for the water it holds. ``nested=False`` keeps the simpler routing: each
   maximal depression one lake, spilling whole into the next.

The volume balance is exact by construction: rain = infiltrated + drained + stored + to
the sea (m³), and stored equals the depth raster integrated over the cells.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from twin.errors import InputError
from twin.i18n import t
from twin.scenarios import depressions, flood, hierarchy
from twin.scenarios.flood import FloodGrid
from twin.scenarios.terrain import SEA_LEVEL_M, DemArray, load_dem, resolve_dem
from twin.settings import Settings

Progress = Callable[[float, str], None]

#: The city's drains are built for 100–200 mm a day according to issue 16 (facts.yaml
#: carries no drain figure; its flood_2022_10_14 gives the rain); the upper figure, as
#: mm/h, is the default.
DEFAULT_DRAINAGE_MM_PER_H = 200 / 24
MIN_DEPTH_M = 0.1  # shallower standing water is not counted as flooded
MAX_RAIN_MM = 3000.0  # > the 1,752.6 mm of Oct 2025, the largest in the facts
MAX_HOURS = 240.0
MAX_INTERVALS = 1000
MAX_INTENSITY_MM_PER_H = 500.0
MAX_DRAINAGE_MM_PER_H = 500.0
MAX_SEA_LEVEL_M = 10.0
ANTECEDENT = ("dry", "normal", "wet")
DEPTH_CLASSES = ((0.1, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, math.inf))
#: SCS curve numbers (soil group C, AMC II; TR-55 table 2-2) per ``land_cover.kind``.
CN_BY_COVER = {
    "forest": 70.0, "park": 74.0, "farmland": 78.0, "beach": 45.0, "aerodrome": 88.0,
    "industrial": 91.0, "residential": 90.0, "water": 100.0, "sea": 100.0,
}
CN_DEFAULT = 80.0  # land without a mapped cover: open land / mixed use, group C
CN_IMPERVIOUS = 98.0


@dataclass(frozen=True)
class RainParams:
    """What a planner asks: a total over hours or a hyetograph (mm per ``interval_h``),
    drain capacity (mm/h, default the city's design figure), the sea level (tide, m),
    antecedent soil (dry/normal/wet), the DEM by name, the depth (m) above which a road
    is impassable."""

    rain_mm: float | None = None
    hours: float | None = None
    hyetograph: tuple[float, ...] | None = None
    interval_h: float = 1.0
    drainage_mm_per_h: float | None = None
    sea_level_m: float | None = None
    antecedent: str = "normal"
    dem: str | None = None
    impassable_depth_m: float = 0.3
    name: str | None = None

    def intervals(self) -> tuple[np.ndarray, float]:
        """The rain per interval (mm) and the interval length (h); checks the input.

        Raises
        ------
        InputError
            Negative, non-finite or absurd figures, an empty hyetograph, both or neither
            of a total and a hyetograph.
        """
        if self.hyetograph is not None:
            if self.rain_mm is not None:
                raise InputError("give rain_mm (with hours) or a hyetograph, not both")
            h = np.asarray(self.hyetograph, float)
            if h.size == 0:
                raise InputError("hyetograph is empty")
            if h.size > MAX_INTERVALS:
                raise InputError(f"hyetograph has at most {MAX_INTERVALS} intervals")
            if not np.isfinite(h).all() or (h < 0).any():
                raise InputError("hyetograph values must be finite and ≥ 0 mm")
            _range("interval_h", self.interval_h, 1 / 60, 24, exclusive_low=False)
            dt = float(self.interval_h)
            if self.hours is not None and not math.isclose(self.hours, h.size * dt):
                raise InputError(f"hours ({self.hours:g}) ≠ intervals × interval_h "
                                 f"({h.size} × {dt:g})")
            rain = h
        else:
            if self.rain_mm is None or self.hours is None:
                raise InputError("give rain_mm and hours, or a hyetograph")
            _range("rain_mm", self.rain_mm, 0, MAX_RAIN_MM)
            _range("hours", self.hours, 0, MAX_HOURS, exclusive_low=True)
            _range("interval_h", self.interval_h, 1 / 60, 24, exclusive_low=False)
            n = max(1, math.ceil(self.hours / self.interval_h - 1e-9))
            if n > MAX_INTERVALS:
                raise InputError(f"hours / interval_h gives more than {MAX_INTERVALS} intervals")
            dt = float(self.hours) / n
            rain = np.full(n, float(self.rain_mm) / n)
        total_h = rain.size * dt
        if total_h > MAX_HOURS + 1e-9:
            raise InputError(f"the rain lasts at most {MAX_HOURS:g} h")
        if rain.sum() > MAX_RAIN_MM:
            raise InputError(f"at most {MAX_RAIN_MM:g} mm of rain in all")
        if (rain / dt > MAX_INTENSITY_MM_PER_H).any():
            raise InputError(f"rain intensity above {MAX_INTENSITY_MM_PER_H:g} mm/h")
        return rain, dt

    def check(self) -> None:
        self.intervals()
        if self.drainage_mm_per_h is not None:
            _range("drainage_mm_per_h", self.drainage_mm_per_h, 0, MAX_DRAINAGE_MM_PER_H)
        if self.sea_level_m is not None:
            _range("sea_level_m", self.sea_level_m, -2, MAX_SEA_LEVEL_M)
        if self.antecedent not in ANTECEDENT:
            raise InputError(f"antecedent must be one of {', '.join(ANTECEDENT)}")
        _range("impassable_depth_m", self.impassable_depth_m, 0, 10, exclusive_low=True)


def _range(name: str, v: float, lo: float, hi: float, *, exclusive_low: bool = False) -> None:
    bad = not math.isfinite(v) or v > hi or (v <= lo if exclusive_low else v < lo)
    if bad:
        op = ">" if exclusive_low else "≥"
        raise InputError(f"{name} must be {op} {lo:g} and ≤ {hi:g}, got {v:g}")


def adjust_cn(cn: np.ndarray, antecedent: str) -> np.ndarray:
    """CN for the antecedent moisture: AMC I (dry), II (normal), III (wet)."""
    if antecedent == "dry":
        return 4.2 * cn / (10 - 0.058 * cn)  # type: ignore[no-any-return]
    if antecedent == "wet":
        return 23 * cn / (10 + 0.13 * cn)  # type: ignore[no-any-return]
    return cn


@dataclass
class RainResult:
    """The water grid and the water balance (m³) of one run."""

    grid: FloodGrid
    balance: dict[str, float]
    depth_all: np.ndarray  # float32 depth (m) before the ``MIN_DEPTH_M`` cut, 0 dry
    tide_km2: float
    routing: str = "fill-spill-merge"  # or "one lake per depression"


def simulate(
    dem: DemArray, dep: depressions.Depressions, cn: np.ndarray, rain_mm: np.ndarray,
    dt_h: float, drainage_mm_per_h: float, sea_level_m: float | None = None,
    antecedent: str = "normal", *, nested: bool = True,
) -> RainResult:
    """Run the model on a DEM (see the module's docstring). ``cn`` is the AMC II curve
    number per cell (shape of the DEM)."""
    z = dem.conditioned
    h, w = z.shape
    land = (~dem.sea & np.isfinite(z)).ravel()
    area = np.repeat(dem.cell_area_m2, w)  # m² per flat cell
    idx = np.flatnonzero(land)
    a = area[idx]
    c = np.clip(adjust_cn(cn.ravel()[idx].astype(np.float64), antecedent), 1.0, 100.0)
    # the runoff series depends on CN alone: run it once per CN (to 0.01), not per cell
    c_u, inv = np.unique(np.round(c, 2), return_inverse=True)
    s = np.where(c_u >= 100, 0.0, 25400.0 / c_u - 254.0)
    ia = 0.2 * s
    cap = drainage_mm_per_h * dt_h
    p_cum = 0.0
    q_cum = np.zeros(c_u.size)
    drained_u = np.zeros(c_u.size)
    excess_u = np.zeros(c_u.size)
    for p in rain_mm:
        p_cum += float(p)
        pe = np.maximum(p_cum - ia, 0.0)
        q_new = np.divide(pe * pe, pe + s, out=np.zeros_like(pe), where=pe + s > 0)
        q = np.maximum(q_new - q_cum, 0.0)
        q_cum = q_new
        d = np.minimum(q, cap)
        drained_u += d
        excess_u += q - d
    drained, excess, runoff = drained_u[inv], excess_u[inv], q_cum[inv]
    rain_total = float(rain_mm.sum())
    vol = excess * a / 1000.0  # m³ of surface water per land cell
    ground = np.where(np.isfinite(z), z, 0.0).ravel().astype(np.float64)
    # the sea at a tide above its usual level floods low ground connected to it: the
    # depressions it reaches are part of the sea for the rain
    tide = None
    if sea_level_m is not None and sea_level_m > SEA_LEVEL_M:
        tide = flood.fill(dem, water_level_m=sea_level_m)
    if nested and dep.tree is not None:
        tree = dep.tree
        water = np.zeros(h * w)
        water[idx] = vol
        sea_nodes = None
        if tide is not None:
            sea_nodes = (tree.parent == hierarchy.OCEAN) & (tree.top <= sea_level_m)
        try:
            d64, stored, to_sea = hierarchy.fill_spill_merge(tree, ground, area, water,
                                                             sea_nodes)
            depth = d64.astype(np.float32)
        except RecursionError:  # a cascade nested too deep: the simpler routing answers
            nested = False
    if not (nested and dep.tree is not None):
        depth, stored, to_sea = _one_lake_each(dep, ground, area, idx, vol, tide, h * w)
    if tide is not None:
        td = np.nan_to_num(tide.depth, nan=0.0).ravel()
        depth = np.maximum(depth, td.astype(np.float32))
    depth2 = depth.reshape(h, w)
    flooded = depth2 >= MIN_DEPTH_M
    wd = np.where(flooded, depth2, np.nan).astype(np.float32)
    grid = FloodGrid(dem, float("nan"), 0.0, flooded, "rain", water_depth=wd)
    land_area = float(a.sum())
    balance = {
        "rain": rain_total * land_area / 1000.0,
        "infiltrated": float(((p_cum - runoff) * a).sum() / 1000.0),
        "drained": float((drained * a).sum() / 1000.0),
        "stored": stored,
        "to_sea": to_sea,
    }
    tide_km2 = tide.area_km2() if tide is not None else 0.0
    routing = ("fill-spill-merge" if nested and dep.tree is not None
               else "one lake per depression")
    return RainResult(grid, balance, depth2, tide_km2, routing)


def _one_lake_each(dep: depressions.Depressions, ground: np.ndarray, area: np.ndarray,
                   idx: np.ndarray, vol: np.ndarray, tide: FloodGrid | None,
                   n_cells: int) -> tuple[np.ndarray, float, float]:
    """The simpler routing (``nested=False``): each maximal depression one lake, filled
    upstream first, spilling whole into the next."""
    n = dep.count
    inflow = np.bincount(dep.catch[idx], weights=vol, minlength=n + 1)
    to_sea = float(inflow[0])
    inflow[0] = 0.0
    cells = dep.cells
    lab = dep.label[cells]
    capacity = np.bincount(lab, weights=(dep.spill[lab] - ground[cells]) * area[cells],
                           minlength=n + 1)
    sea_dep = np.zeros(n + 1, bool)
    if tide is not None:
        sea_dep[np.unique(dep.label[tide.flooded.ravel()])] = True
        sea_dep[0] = False
    held = inflow.tolist()
    cap_l = capacity.tolist()
    down = dep.down.tolist()
    is_sea = sea_dep.tolist()
    for b in dep.upstream.tolist():
        wb = held[b]
        if is_sea[b]:
            over, held[b] = wb, 0.0
        elif wb > cap_l[b]:
            over, held[b] = wb - cap_l[b], cap_l[b]
        else:
            continue
        d = down[b]
        if d:
            held[d] += over
        else:
            to_sea += over
    held_a = np.asarray(held)
    level = _levels(dep, ground, area, held_a, capacity)
    depth = np.zeros(n_cells, np.float32)
    depth[cells] = np.maximum(level[lab] - ground[cells], 0.0)
    return depth, float(held_a.sum()), to_sea


def _levels(dep: depressions.Depressions, ground: np.ndarray, area: np.ndarray,
            held: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """The lake level (m) of each depression for the water it holds: the inverse of its
    volume curve ``V(h) = Σ (h − ground) · area`` over its cells below ``h``."""
    cells = dep.cells
    lab = dep.label[cells]
    g = ground[cells]
    a = area[cells]
    start = dep.starts[lab]
    ca = np.cumsum(a)
    cag = np.cumsum(a * g)
    base_a = np.where(start > 0, ca[np.maximum(start - 1, 0)], 0.0)
    base_ag = np.where(start > 0, cag[np.maximum(start - 1, 0)], 0.0)
    in_a = ca - base_a  # area of this cell and the lower ones of its depression
    in_ag = cag - base_ag
    v_at = g * (in_a - a) - (in_ag - a * g)  # volume when the level reaches this cell
    fits = v_at <= held[lab]
    count = np.bincount(lab, weights=fits, minlength=len(held)).astype(np.int64)
    level = dep.spill.astype(np.float64).copy()
    ok = (count > 0) & (held < capacity)
    k = dep.starts[:-1][ok] + count[ok] - 1  # the highest cell under water
    level[ok] = (held[ok] + in_ag[k]) / in_a[k]
    dry = held <= 0
    level[dry] = -np.inf
    return level  # type: ignore[no-any-return]


_cn_cache: dict[tuple[Any, ...], np.ndarray] = {}


def curve_numbers(conn: Connection, dem: DemArray) -> np.ndarray:
    """The AMC II curve number per DEM cell from ``land_cover`` and ``building``.

    Land cover polygons are burnt in (cell centres; water and the sea last), cells
    without a cover get :data:`CN_DEFAULT`; then each cell's CN is moved toward 98 by
    the share of its area under building footprints (summed at their centroids).
    Cached per DEM and the two tables' versions (``table_version``), read-only.
    """
    versions = tuple(conn.execute(text(
        "SELECT table_name, version FROM table_version WHERE table_name IN "
        "('land_cover', 'building') ORDER BY table_name")).all())
    key = (dem.path, id(dem), versions)
    hit = _cn_cache.get(key)
    if hit is None:
        hit = _curve_numbers(conn, dem)
        hit.setflags(write=False)
        _cn_cache.clear()  # one DEM at a time: a 4 MB grid per entry
        _cn_cache[key] = hit
    return hit


def _curve_numbers(conn: Connection, dem: DemArray) -> np.ndarray:
    import shapely
    from rasterio.features import rasterize

    h, w = dem.shape
    west, north = dem.transform.c, dem.transform.f
    east, south = west + w * dem.transform.a, north + h * dem.transform.e
    env = {"w": min(west, east), "s": min(south, north), "e": max(west, east),
           "n": max(south, north)}
    if not dem.geographic:  # the cover is read in lon/lat; projected DEMs: default CN
        return np.full((h, w), CN_DEFAULT, np.float32)
    rows = conn.execute(text(
        "SELECT kind, ST_AsBinary(geom) FROM land_cover "
        "WHERE geom && ST_MakeEnvelope(:w, :s, :e, :n, 4326)"), env).all()
    order = list(CN_BY_COVER)
    rows = sorted((r for r in rows if r[0] in CN_BY_COVER), key=lambda r: order.index(r[0]))
    cn = np.full((h, w), CN_DEFAULT, np.float32)
    if rows:
        shapes = [(shapely.from_wkb(bytes(g)), CN_BY_COVER[k]) for k, g in rows]
        cn = rasterize(shapes, out_shape=(h, w), transform=dem.transform, fill=CN_DEFAULT,
                       dtype="float32")
    b = conn.execute(text(
        "SELECT ST_X(c), ST_Y(c), area_m2 FROM (SELECT ST_Centroid(geom) c, area_m2 "
        "FROM building WHERE geom && ST_MakeEnvelope(:w, :s, :e, :n, 4326)) q"), env).all()
    if b:
        xy = np.asarray(b, float)
        r, c, inside = dem.cells(xy[:, 0], xy[:, 1])
        roof = np.zeros(h * w)
        np.add.at(roof, (r * w + c)[inside], np.nan_to_num(xy[inside, 2]))
        share = np.clip(roof.reshape(h, w) / dem.cell_area_m2[:, None], 0.0, 1.0)
        cn = cn + (CN_IMPERVIOUS - cn) * np.where(cn < CN_IMPERVIOUS, share, 0.0)
    return cn.astype(np.float32)  # type: ignore[no-any-return]


def depth_class_polygons(grid: FloodGrid, tolerance_deg: float = 0.00005) -> dict[str, Any]:
    """The flooded land by depth class (:data:`DEPTH_CLASSES`) as a GeoJSON
    FeatureCollection: one MultiPolygon per class (EPSG:4326, simplified by
    ``tolerance_deg``), with ``min_m``, ``max_m`` (None: no upper bound) and ``area_km2``."""
    import json

    import shapely
    from rasterio.features import shapes

    feats: list[dict[str, Any]] = []
    win = grid.window()
    if win is None:
        return {"type": "FeatureCollection", "features": feats}
    d = np.nan_to_num(grid.depth[win], nan=0.0)
    cls = np.zeros(d.shape, np.int32)
    for i, (lo, _) in enumerate(DEPTH_CLASSES, start=1):
        cls[d >= lo] = i
    mask = grid.flooded[win] & (cls > 0)
    tr = grid.dem.transform @ grid.dem.transform.translation(win[1].start, win[0].start)
    polys: dict[int, list[Any]] = {}
    for g, v in shapes(cls, mask=mask, connectivity=4, transform=tr):
        polys.setdefault(int(v), []).append(shapely.geometry.shape(g))
    rows = np.nonzero(grid.flooded)[0]
    depth = grid.depth[grid.flooded]
    cell = grid.dem.cell_area_m2[rows]
    to_ll = None
    if not grid.dem.geographic:
        from pyproj import Transformer

        tr_ll = Transformer.from_crs(grid.dem.crs.to_wkt(), "EPSG:4326", always_xy=True)

        def to_ll(xy: np.ndarray) -> np.ndarray:
            return np.column_stack(tr_ll.transform(xy[:, 0], xy[:, 1]))

    for i, (lo, hi) in enumerate(DEPTH_CLASSES, start=1):
        if i not in polys:
            continue
        geom = shapely.MultiPolygon([p for g in polys[i] for p in getattr(g, "geoms", [g])])
        if to_ll is not None:
            geom = shapely.transform(geom, to_ll)
        geom = shapely.simplify(geom, tolerance_deg, preserve_topology=True)
        sel = (depth >= lo) & (depth < hi)
        feats.append({"type": "Feature", "id": i,
                      "geometry": json.loads(shapely.to_geojson(geom)),
                      "properties": {"min_m": lo, "max_m": hi if math.isfinite(hi) else None,
                                     "area_km2": round(float(cell[sel].sum()) / 1e6, 4)}})
    return {"type": "FeatureCollection", "features": feats}


def summary_extra(res: RainResult, p: RainParams, rain: np.ndarray, dt: float,
                  drain: float, river_cells: int = 0) -> dict[str, Any]:
    """The rain figures added to a flood-shaped summary, with notes in vi and en."""
    g = res.grid
    d = g.depth[g.flooded]
    rows = np.nonzero(g.flooded)[0]
    cell = g.dem.cell_area_m2[rows]
    classes = {}
    for lo, hi in DEPTH_CLASSES:
        sel = (d >= lo) & (d < hi)
        key = f"{lo:g}-{hi:g}" if math.isfinite(hi) else f">={lo:g}"
        classes[key] = round(float(cell[sel].sum()) / 1e6, 4)
    notes: dict[str, list[str]] = {}
    src_key = "rain.drain_given" if p.drainage_mm_per_h is not None else "rain.drain_source"
    for lang in ("vi", "en"):
        ante = {"vi": {"dry": "khô", "normal": "bình thường", "wet": "ướt"},
                "en": {"dry": "dry", "normal": "normal", "wet": "wet"}}[lang][p.antecedent]
        out = [t("rain.method", lang, rain_mm=float(rain.sum()), hours=rain.size * dt,
                 intervals=rain.size, antecedent=ante, drain=round(drain, 2),
                 drain_source=t(src_key, lang),
                 sea=p.sea_level_m if p.sea_level_m is not None else SEA_LEVEL_M,
                 rivers=t("rain.rivers", lang, cells=river_cells) if river_cells
                 else t("rain.no_rivers", lang)),
               t("rain.balance", lang, **res.balance)]
        if p.sea_level_m is not None and p.sea_level_m > SEA_LEVEL_M:
            out.append(t("rain.tide", lang, level=p.sea_level_m, km2=res.tide_km2))
        out.append(t("rain.limits", lang, min_depth=MIN_DEPTH_M))
        notes[lang] = out
    return {
        "model": "rain",
        "water_level_m": None,
        "reference_m": None,
        "rain_mm": round(float(rain.sum()), 2),
        "hours": round(rain.size * dt, 4),
        "peak_intensity_mm_per_h": round(float(rain.max() / dt), 2),
        "drainage_mm_per_h": round(drain, 3),
        "antecedent": p.antecedent,
        "sea_level_m": p.sea_level_m,
        "routing": res.routing,
        "min_depth_m": MIN_DEPTH_M,
        "depth_classes_km2": classes,
        "water_balance_m3": {k: round(v, 1) for k, v in res.balance.items()},
        "notes": notes["en"],
        "notes_i18n": notes,
    }


def params_from_dict(body: dict[str, Any]) -> RainParams:
    """RainParams from a JSON-like mapping (the API's body, a process's inputs).

    Raises
    ------
    InputError
        An unknown key or a value of the wrong type.
    """
    import dataclasses

    known = {f.name for f in dataclasses.fields(RainParams)}
    unknown = set(body) - known
    if unknown:
        raise InputError(f"unknown rain parameter(s): {', '.join(sorted(unknown))}")
    kw = dict(body)
    try:
        if kw.get("hyetograph") is not None:
            kw["hyetograph"] = tuple(float(x) for x in kw["hyetograph"])
        for k in ("rain_mm", "hours", "interval_h", "drainage_mm_per_h", "sea_level_m",
                  "impassable_depth_m"):
            if kw.get(k) is not None:
                if isinstance(kw[k], bool):
                    raise TypeError(k)
                kw[k] = float(kw[k])
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad rain parameter: {exc}") from exc
    return RainParams(**kw)


def run_rain(
    conn: Connection, settings: Settings, params: RainParams | dict[str, Any],
    progress: Progress | None = None,
    *, created_by: str | None = None, save: bool = True, public: bool = False,
    features: bool = False, depth_classes: bool = False,
) -> dict[str, Any]:
    """Compute, store (kind ``rain``) and summarise a rain flood, answered like
    :func:`twin.scenarios.flood_scenario.run_flood`; ``depth_classes`` adds the flooded
    land by depth class (GeoJSON, :func:`depth_class_polygons`). ``progress(fraction,
    message)`` is called as the run goes (for a job runner)."""
    from twin.scenarios.flood_scenario import finish_run

    def say(f: float, m: str) -> None:
        if progress is not None:
            progress(f, m)

    t0 = time.perf_counter()
    if isinstance(params, dict):
        params = params_from_dict(params)
    params.check()
    rain, dt = params.intervals()
    drain = (DEFAULT_DRAINAGE_MM_PER_H if params.drainage_mm_per_h is None
             else float(params.drainage_mm_per_h))
    say(0.05, "dem")
    ref = resolve_dem(conn, params.dem)
    dem = load_dem(ref.path)
    rivers = depressions.river_mask(conn, dem)
    dep = depressions.load(dem, settings.terrain_dir, ref.name, rivers)
    say(0.3, "land cover")
    cn = curve_numbers(conn, dem)
    t_load = time.perf_counter()
    say(0.4, "runoff and routing")
    res = simulate(dem, dep, cn, rain, dt, drain, params.sea_level_m, params.antecedent)
    t_fill = time.perf_counter()
    say(0.6, "affected assets")
    stored = {
        "rain_mm": params.rain_mm, "hours": params.hours,
        "hyetograph": list(params.hyetograph) if params.hyetograph is not None else None,
        "interval_h": params.interval_h, "drainage_mm_per_h": params.drainage_mm_per_h,
        "sea_level_m": params.sea_level_m, "antecedent": params.antecedent, "dem": ref.name,
        "impassable_depth_m": params.impassable_depth_m,
    }
    answer = finish_run(
        conn, settings, "rain", res.grid, ref.name, stored,
        impassable_depth_m=params.impassable_depth_m, name=params.name, created_by=created_by,
        save=save, public=public, features=features, times=(t0, t_load, t_fill),
        extra=summary_extra(res, params, rain, dt, drain,
                            0 if rivers is None else int(rivers.sum())))
    if depth_classes:
        answer["depth_classes"] = depth_class_polygons(res.grid)
    say(1.0, "done")
    return answer


def params_from_stored(p: dict[str, Any]) -> RainParams:
    """The parameters of a stored rain scenario."""
    return RainParams(
        rain_mm=p.get("rain_mm"), hours=p.get("hours"),
        hyetograph=tuple(p["hyetograph"]) if p.get("hyetograph") is not None else None,
        interval_h=float(p.get("interval_h") or 1.0),
        drainage_mm_per_h=p.get("drainage_mm_per_h"), sea_level_m=p.get("sea_level_m"),
        antecedent=p.get("antecedent") or "normal", dem=p.get("dem"),
        impassable_depth_m=float(p.get("impassable_depth_m", 0.3)))


def rain_grid(conn: Connection, settings: Settings, p: RainParams) -> FloodGrid:
    """The water grid of a rain scenario, recomputed (for its features)."""
    rain, dt = p.intervals()
    ref = resolve_dem(conn, p.dem)
    dem = load_dem(ref.path)
    dep = depressions.load(dem, settings.terrain_dir, ref.name,
                           depressions.river_mask(conn, dem))
    drain = DEFAULT_DRAINAGE_MM_PER_H if p.drainage_mm_per_h is None else p.drainage_mm_per_h
    return simulate(dem, dep, curve_numbers(conn, dem), rain, dt, drain, p.sea_level_m,
                    p.antecedent).grid
