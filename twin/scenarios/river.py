"""River floods by stage (issue 16): a water level at a gauge → the land the rivers flood.

The gauge's stage, less the river bed at the gauge (the DEM's lowest river cell near it),
is the height of the water over the bed; every cell whose height above the nearest
drainage (:mod:`twin.scenarios.hand`) is lower floods, by the difference. Stored like a
flood (kind ``river``): depth tiles, ``/plan``, compare and export work unchanged.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection

from twin.errors import InputError
from twin.i18n import t
from twin.scenarios import depressions, hand
from twin.scenarios.flood import FloodGrid
from twin.scenarios.terrain import load_dem, resolve_dem
from twin.settings import Settings


@dataclass(frozen=True)
class Gauge:
    name_vi: str
    name_en: str
    lon: float
    lat: float
    alerts: tuple[float, ...]  # alert levels 1, 2, 3 (m) as far as they are known


#: Water-level gauges on the city's rivers (``facts.yaml``: the Cẩm Lệ gauge on the Vu
#: Gia–Cẩm Lệ, alert level 1 = 1.0 m; its position is taken at the Cẩm Lệ bridge).
GAUGES = {
    "cam_le": Gauge("Trạm Cẩm Lệ", "Cẩm Lệ gauge", 108.2004, 16.0069, (1.0,)),
}
SEARCH_CELLS = 30  # how far from the gauge (cells) its river is looked for
BED_CELLS = 10  # the river's level at the gauge: its cells this near (median)


@dataclass(frozen=True)
class RiverParams:
    """A stage (m, the gauge's datum ≈ the DEM's) at a named gauge, or at a point on a
    river (lon, lat); the DEM by name; the depth above which a road is impassable."""

    stage_m: float | None = None
    gauge: str | None = "cam_le"
    at: tuple[float, float] | None = None
    dem: str | None = None
    impassable_depth_m: float = 0.3
    name: str | None = None
    incident_id: int | None = None  # a flood incident: its place and flood-tower reading

    def check(self) -> None:
        if self.stage_m is None:
            raise InputError("give stage_m (metres at the gauge), or incident_id of a flood "
                             "incident with a flood-tower reading")
        if not math.isfinite(self.stage_m):
            raise InputError("stage_m must be a number of metres")
        if not 0 < self.impassable_depth_m <= 10:
            raise InputError("impassable_depth_m must be between 0 and 10 metres")
        if self.at is None and self.gauge not in GAUGES:
            raise InputError(f"unknown gauge {self.gauge!r}; known: {', '.join(GAUGES)} "
                             "(or give at: [lon, lat] on a river)")
        if self.at is not None and not (-180 <= self.at[0] <= 180 and -90 <= self.at[1] <= 90):
            raise InputError(f"at {list(self.at)} is not a [lon, lat] pair")


def _bed(dem: Any, rivers: np.ndarray, lon: float, lat: float) -> tuple[int, float]:
    """The river cell nearest the point (within ``SEARCH_CELLS``) and the river's level
    there (:func:`hand.bed_level`, median over ``BED_CELLS``)."""
    r, c, inside = dem.cells(np.array([lon]), np.array([lat]))
    if not inside[0]:
        raise InputError(f"the gauge ({lon:g}, {lat:g}) is outside the DEM")
    r0, c0 = int(r[0]), int(c[0])
    h, w = rivers.shape
    win = (slice(max(r0 - SEARCH_CELLS, 0), min(r0 + SEARCH_CELLS + 1, h)),
           slice(max(c0 - SEARCH_CELLS, 0), min(c0 + SEARCH_CELLS + 1, w)))
    rr, cc = np.nonzero(rivers[win])
    if not len(rr):
        raise InputError(f"no river within {SEARCH_CELLS} cells of the gauge ({lon:g}, {lat:g})")
    rr, cc = rr + win[0].start, cc + win[1].start
    d2 = (rr - r0) ** 2 + (cc - c0) ** 2
    k = int(np.argmin(d2))
    # the river's level there: the median over its cells within BED_CELLS of the nearest
    # one (a single SRTM cell over water is noise, and bank cells mix in the shore)
    near = (rr - rr[k]) ** 2 + (cc - cc[k]) ** 2 <= BED_CELLS ** 2
    level = float(np.median(hand.bed_level(dem.conditioned[rr[near], cc[near]])))
    return int(rr[k] * w + cc[k]), level


def _reach(rivers: np.ndarray, cell: int) -> np.ndarray:
    """The river the gauge is on: the water cells connected (8-connected, across the
    one-cell gaps bridges leave) to its cell, flat; other lakes and rivers do not rise."""
    from scipy import ndimage

    labels, _ = ndimage.label(rivers, structure=np.ones((3, 3), bool))
    flat = labels.ravel()
    return flat == flat[cell]  # type: ignore[no-any-return]


def run_river(
    conn: Connection, settings: Settings, params: RiverParams, *,
    created_by: str | None = None, save: bool = True, public: bool = False,
    features: bool = False,
) -> dict[str, Any]:
    """Compute, store (kind ``river``) and summarise a river flood, answered like
    :func:`twin.scenarios.flood_scenario.run_flood`."""
    from twin.scenarios.flood_scenario import finish_run

    t0 = time.perf_counter()
    params, from_incident = _from_incident(conn, params)
    params.check()
    assert params.stage_m is not None
    ref = resolve_dem(conn, params.dem)
    dem = load_dem(ref.path)
    rivers = depressions.river_mask(conn, dem)
    got = hand.load(dem, rivers, settings.terrain_dir, ref.name)
    assert rivers is not None  # hand.load refused a terrain without rivers
    top = float(np.nanmax(dem.elev))
    if params.stage_m > top:
        raise InputError(f"stage_m {params.stage_m:g} m is above the DEM's highest ground "
                         f"({top:.1f} m)")
    gauge = GAUGES.get(params.gauge or "") if params.at is None else None
    lon, lat = (gauge.lon, gauge.lat) if gauge else params.at  # type: ignore[misc]
    cell, bed = _bed(dem, rivers, lon, lat)
    reach = _reach(rivers, cell)
    height = params.stage_m - bed
    if height <= 0:
        raise InputError(f"stage_m {params.stage_m:g} m is not above the river bed at the "
                         f"gauge ({bed:.2f} m)")
    t_load = time.perf_counter()
    depth = hand.inundation(dem, got, height, reach)
    flooded = np.isfinite(depth)
    t_fill = time.perf_counter()
    notes: dict[str, list[str]] = {}
    for lang in ("vi", "en"):
        where = (gauge.name_vi if lang == "vi" else gauge.name_en) if gauge else \
            f"({lon:g}, {lat:g})"
        out = [t("river.method", lang, cells=int(reach.sum()), stage=params.stage_m,
                 gauge=where, bed=bed, height=height)]
        for i, a in enumerate(gauge.alerts if gauge else (), start=1):
            if params.stage_m >= a:
                out.append(t("river.alert", lang, stage=params.stage_m, level=i, alert=a,
                             gauge=where))
        out.append(t("river.limits", lang))
        notes[lang] = out
    grid = FloodGrid(dem, params.stage_m, bed, flooded, "river", notes=notes["en"],
                     notes_vi=notes["vi"], water_depth=depth)
    stored = {"stage_m": params.stage_m, "gauge": params.gauge if params.at is None else None,
              "at": list(params.at) if params.at else None, "dem": ref.name,
              "impassable_depth_m": params.impassable_depth_m, **from_incident}
    extra = {"model": "river", "bed_m": round(bed, 3), "height_m": round(height, 3),
             "hand_seconds": round(got.seconds, 3), "river_cells": int(reach.sum())}
    return finish_run(
        conn, settings, "river", grid, ref.name, stored,
        impassable_depth_m=params.impassable_depth_m, name=params.name, created_by=created_by,
        save=save, public=public, features=features, incident_id=params.incident_id,
        times=(t0, t_load, t_fill), extra=extra)


def _from_incident(conn: Connection, p: RiverParams) -> tuple[RiverParams, dict[str, Any]]:
    """A flood incident drives the river as it drives the bathtub
    (:mod:`twin.scenarios.incident_flood`): the river is the one at its place, the stage
    its flood-tower reading, unless given."""
    import dataclasses

    from sqlalchemy import text

    from twin.scenarios.incident_flood import level_reading

    if p.incident_id is None:
        return p, {}
    row = conn.execute(text(
        "SELECT category, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
        "FROM incident WHERE id = :i"), {"i": p.incident_id}).first()
    if row is None:
        raise InputError(f"unknown incident {p.incident_id}")
    if row[0] != "flood":
        raise InputError(f"incident {p.incident_id} is a {row[0]} incident: river floods are "
                         "run for flood incidents only")
    record: dict[str, Any] = {"incident_id": p.incident_id, "defaulted": []}
    changes: dict[str, Any] = {}
    if p.at is None:
        changes["at"] = (float(row[1]), float(row[2]))
        record["defaulted"].append("at")
    if p.stage_m is None:
        reading = level_reading(conn, p.incident_id)
        if reading is None:
            raise InputError(f"incident {p.incident_id} has no flood-tower reading: give "
                             "stage_m (metres)")
        changes["stage_m"] = float(reading["value"])
        record["defaulted"].append("stage_m")
        record["reading"] = reading
    return dataclasses.replace(p, **changes), record
