"""Run a flood scenario end to end: fill the DEM, trace the polygon, store the scenario,
find what is affected, write the depth COG.

The caller owns the transaction; an unsaved run (``save=False``) is rolled back to a
savepoint and writes no file.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from twin.errors import InputError
from twin.scenarios import flood, impact, incident_flood, store
from twin.scenarios.terrain import load_dem, resolve_dem
from twin.settings import Settings


@dataclass(frozen=True)
class FloodParams:
    """What a planner asks: a level (absolute, or a rise over the reference), optional
    seed points (lon, lat in EPSG:4326), the DEM by name, the depth (m) above which a road
    is impassable; for a flood incident its id (seeds and level default from it, see
    :mod:`twin.scenarios.incident_flood`)."""

    water_level_m: float | None = None
    rise_m: float | None = None
    seeds: tuple[tuple[float, float], ...] | None = None
    dem: str | None = None
    impassable_depth_m: float = 0.3
    name: str | None = None
    incident_id: int | None = None

    def check(self) -> None:
        flood.check_level(self.water_level_m, self.rise_m)
        if not 0 < self.impassable_depth_m <= 10:
            raise InputError("impassable_depth_m must be between 0 and 10 metres")
        for s in self.seeds or ():
            if len(s) != 2 or not (-180 <= s[0] <= 180 and -90 <= s[1] <= 90):
                raise InputError(f"seed {list(s)} is not a [lon, lat] pair")


def run_flood(
    conn: Connection,
    settings: Settings,
    p: FloodParams,
    *,
    created_by: str | None = None,
    save: bool = True,
    public: bool = False,
    features: bool = False,
) -> dict[str, Any]:
    """Compute, store and summarise a flood.

    Returns
    -------
    dict
        The scenario as ``store.public_view`` answers it (``id`` None when not saved),
        plus ``features`` (a GeoJSON FeatureCollection of affected buildings and roads)
        when asked. ``summary.timing_ms`` says where the time went.
    """
    t0 = time.perf_counter()
    p, from_incident = incident_flood.apply(conn, p)
    p.check()
    ref = resolve_dem(conn, p.dem)
    dem = load_dem(ref.path)
    t_load = time.perf_counter()
    grid = flood.fill(dem, water_level_m=p.water_level_m, rise_m=p.rise_m,
                      seeds=list(p.seeds) if p.seeds else None)
    t_fill = time.perf_counter()
    params = {
        "water_level_m": p.water_level_m, "rise_m": p.rise_m,
        "seeds": [list(s) for s in p.seeds] if p.seeds else None, "dem": ref.name,
        "impassable_depth_m": p.impassable_depth_m, **from_incident,
    }
    return finish_run(
        conn, settings, "flood", grid, ref.name, params, impassable_depth_m=p.impassable_depth_m,
        name=p.name, created_by=created_by, save=save, public=public, features=features,
        incident_id=p.incident_id, times=(t0, t_load, t_fill))


def finish_run(
    conn: Connection, settings: Settings, kind: str, grid: flood.FloodGrid, dem_name: str,
    params: dict[str, Any], *, impassable_depth_m: float, name: str | None,
    created_by: str | None, save: bool, public: bool, features: bool,
    incident_id: int | None = None, times: tuple[float, float, float],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Store a computed water grid as a scenario of ``kind`` (flood, rain): the affected
    buildings, roads and facilities, the outline, the depth COG; answer its view.
    ``extra`` adds figures to the summary; ``times`` = (start, DEM loaded, model done)."""
    t0, t_load, t_fill = times
    pending = settings.terrain_dir / "scenarios" / f".{kind}-{uuid.uuid4().hex}.tif"
    pieces = impact.as_wkb(flood.pieces(grid))
    t_poly = time.perf_counter()
    # while the database works: roads and facilities on a second connection, the display
    # outline and the depth COG in worker threads
    pool = ThreadPoolExecutor(max_workers=3)
    side = pool.submit(_roads_and_facilities, conn.engine, pieces, grid, impassable_depth_m,
                       features)
    outline = pool.submit(flood.polygon, grid) if save else None
    cog = pool.submit(flood.write_depth, grid, pending) if save and grid.cells else None
    nested = conn.begin_nested()
    final = None
    try:
        sid = store.insert(conn, kind, params, name=name, created_by=created_by,
                           public=public, incident_id=incident_id)
        b = impact.buildings(conn, pieces, features=features)
        r, f = side.result()
        t_db = time.perf_counter()
        geom = outline.result() if outline else None
        path = None
        if cog is not None:
            cog.result()
            final = pending.with_name(f"{kind}_{sid}.tif")
            pending.replace(final)
            path = str(final.resolve())
        t_end = time.perf_counter()
        summary = _summary(grid, dem_name, b, r, f)
        summary.update(extra or {})
        summary["timing_ms"] = {
            "dem": _ms(t0, t_load), "fill": _ms(t_load, t_fill), "pieces": _ms(t_fill, t_poly),
            "database": _ms(t_poly, t_db), "outline_and_raster_wait": _ms(t_db, t_end),
            "total": _ms(t0, t_end),
        }
        store.finish(conn, sid, summary, path, geom_wkb=geom.wkb if geom is not None else None)
        if save and incident_id is not None:
            _on_timeline(conn, incident_id, sid, summary, created_by)
        row = store.get_row(conn, sid)
    except BaseException:
        nested.rollback()
        if final is not None:
            final.unlink(missing_ok=True)
        raise
    finally:
        pool.shutdown(wait=True)
        pending.unlink(missing_ok=True)
    if save:
        nested.commit()
        answer = store.public_view(row)
    else:
        nested.rollback()
        answer = store.public_view({**row, "id": None, "raster_path": None})
        answer["links"] = {}
    if features:
        feats = [_tag(x, "building") for x in b.get("features", [])]
        feats += [_tag(x, "road") for x in r.get("features", [])]
        answer["features"] = {"type": "FeatureCollection", "features": feats}
    return answer


def _on_timeline(conn: Connection, incident_id: int, sid: int, summary: dict[str, Any],
                 actor: str | None) -> None:
    """A flood modelled for an incident goes on its timeline (and so, live, to every
    console that shows the incident)."""
    from twin.incidents import store as incidents

    incidents.event(conn, incident_id, actor or "planner", "flood_modelled", {
        "scenario": sid, "water_level_m": summary["water_level_m"],
        "flooded_area_km2": summary["flooded_area_km2"],
        "buildings": summary["buildings"]["count"],
        "roads_impassable": summary["roads"]["impassable"]["count"],
    })


def _roads_and_facilities(
    engine: Engine, pieces: list[bytes], grid: flood.FloodGrid, depth_m: float, features: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    with engine.connect() as other:
        return (impact.roads(other, pieces, grid, depth_m, features=features),
                impact.facilities(other, pieces, grid))


def _summary(
    grid: flood.FloodGrid, dem: str, b: dict[str, Any], r: dict[str, Any], f: dict[str, Any]
) -> dict[str, Any]:
    depth = grid.depth[grid.flooded]
    return {
        "dem": dem,
        "water_level_m": round(grid.level_m, 3),
        "reference_m": round(grid.reference_m, 3),
        "source": grid.seeds,
        "flooded_area_km2": round(grid.area_km2(), 4),
        "flooded_cells": grid.cells,
        "max_depth_m": round(float(depth.max()), 2) if depth.size else 0.0,
        "mean_depth_m": round(float(depth.mean()), 2) if depth.size else 0.0,
        "buildings": {k: v for k, v in b.items() if k not in ("features", "_ids")},
        "roads": {k: v for k, v in r.items() if k not in ("features", "_impassable_ids")},
        "facilities": f,
        "population": b["population"],
        "notes": list(grid.notes),
        "notes_i18n": {"vi": list(grid.notes_vi), "en": list(grid.notes)},
        # complete id lists for closures and comparisons; never answered
        "_building_ids": b["_ids"],
        "_impassable_ids": r["_impassable_ids"],
    }


def _tag(feature: dict[str, Any], layer: str) -> dict[str, Any]:
    feature["properties"]["layer"] = layer
    return feature


def _ms(a: float, b: float) -> float:
    return round((b - a) * 1000, 1)


def flood_features(conn: Connection, settings: Settings, scenario_id: int) -> dict[str, Any]:
    """The buildings and roads a stored flood or rain flood touches, as one GeoJSON
    FeatureCollection (property ``layer``: building | road), recomputed from its
    parameters."""
    row = store.get_row(conn, scenario_id)
    p = row["params"]
    if row["kind"] == "rain":
        from twin.scenarios import rain

        grid = rain.rain_grid(conn, settings, rain.params_from_stored(p))
    elif row["kind"] != "flood":
        raise InputError(f"scenario {scenario_id} is not a flood")
    else:
        ref = resolve_dem(conn, p.get("dem"))
        grid = flood.fill(load_dem(ref.path), water_level_m=p.get("water_level_m"),
                          rise_m=p.get("rise_m"),
                          seeds=[tuple(s) for s in p["seeds"]] if p.get("seeds") else None)
    pieces = impact.as_wkb(flood.pieces(grid))
    b = impact.buildings(conn, pieces, features=True)
    r = impact.roads(conn, pieces, grid, float(p.get("impassable_depth_m", 0.3)), features=True)
    feats = [_tag(x, "building") for x in b["features"]]
    feats += [_tag(x, "road") for x in r["features"]]
    return {"type": "FeatureCollection", "features": feats}
