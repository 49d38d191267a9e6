"""Import a DEM: check it, write it as a Cloud-Optimised GeoTIFF, register it in
``terrain`` (``source='file'``, ``source_id=<name>``)."""

from __future__ import annotations

import os
import re
import uuid
import warnings
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from twin.errors import InputError
from twin.ingest.common import merge, stage
from twin.ingest.summary import Summary
from twin.progress import Reporter
from twin.settings import Settings

#: above this many cells the rain model's depressions are computed on first use, not here
PRECOMPUTE_MAX_CELLS = 5_000_000
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
COG_OPTIONS = {
    "COMPRESS": "DEFLATE",
    "BLOCKSIZE": "256",
    "OVERVIEWS": "AUTO",
    "OVERVIEW_RESAMPLING": "AVERAGE",
    "RESAMPLING": "BILINEAR",
    "BIGTIFF": "IF_SAFER",
}


def import_dem(
    conn: Connection,
    path: Path,
    *,
    reporter: Reporter,
    settings: Settings,
    name: str | None = None,
) -> Summary:
    """Write ``path`` as a COG into ``settings.terrain_dir`` and register it.

    The COG is written under a temporary name and renamed into place only after the
    ``terrain`` row is written, so a failed import leaves no half-written file.

    Parameters
    ----------
    conn
        A connection inside the caller's transaction.
    path
        A single-band raster GDAL reads (GeoTIFF), with a CRS; elevations in metres.
    settings
        Gives ``terrain_dir`` (created if needed).
    name
        Registered name (default: the file stem); also the COG's file name.

    Returns
    -------
    Summary
        ``terrain`` inserted / updated, with notes on nodata and the value range.

    Raises
    ------
    InputError
        Missing file, not a raster, no CRS, or a bad name.
    """
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError
    from rasterio.warp import transform_bounds

    path = Path(path)
    if not path.is_file():
        raise InputError(f"DEM file not found: {path}")
    name = name or path.stem
    if not NAME.match(name):
        raise InputError(f"bad terrain name {name!r}: use letters, digits, '_', '-', '.'")
    summary = Summary(source=f"dem:{path.name}")
    task = reporter.task(f"checking {path.name}", total=1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(path)
        with src:
            info = _inspect(src, path, summary)
            bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    except RasterioError as exc:
        raise InputError(f"{path.name} is not a raster GDAL can read: {exc}") from exc
    reporter.done(task)

    out_dir = settings.terrain_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"{name}.tif"
    tmp = out_dir / f".{name}.{uuid.uuid4().hex[:8]}.tmp.tif"
    task = reporter.task(f"writing COG {final.name}", total=1)
    try:
        _write_cog(path, tmp)
        _register(conn, name, final, info, bounds, summary)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    reporter.done(task)
    summary.notes.append(f"COG written to {final}")
    _precompute(conn, final, name, settings, reporter, summary)
    return summary


def _precompute(conn: Connection, final: Path, name: str, settings: Settings,
                reporter: Reporter, summary: Summary) -> None:
    """The rain model's depressions (priority-flood), once per terrain, timed; a DEM too
    large to analyse in memory is still imported (the rain model refuses it later)."""
    from twin.scenarios import depressions
    from twin.scenarios.terrain import load_dem

    try:
        dem = load_dem(str(final))
    except InputError as exc:
        summary.notes.append(f"no rain-model depressions: {exc}")
        return
    if dem.elev.size > PRECOMPUTE_MAX_CELLS:  # ~4 s per million cells: left to first use
        summary.notes.append(f"rain-model depressions: {dem.elev.size:,} cells, computed "
                             "on the first rain run")
        return
    task = reporter.task("depressions for the rain model", total=1)
    rivers = depressions.river_mask(conn, dem)
    dep = depressions.load(dem, settings.terrain_dir, name, rivers, verbose=True)
    reporter.done(task)
    summary.notes.append(f"rain model: {dep.count:,} depressions by priority-flood in "
                         f"{dep.seconds:.2f} s")
    if rivers is None:
        summary.notes.append("river model: no rivers in the land cover yet, HAND is "
                             "computed on the first river run")
        return
    from twin.scenarios import hand

    task = reporter.task("height above the rivers (HAND) for the river model", total=1)
    try:
        got = hand.load(dem, rivers, settings.terrain_dir, name)
    except InputError as exc:
        summary.notes.append(f"no river-model HAND: {exc}")
        return
    finally:
        reporter.done(task)
    summary.notes.append(f"river model: HAND above {int(rivers.sum()):,} river cells in "
                         f"{got.seconds:.2f} s")


def _inspect(src: Any, path: Path, summary: Summary) -> dict[str, Any]:
    """Check the raster and read its size, resolution, nodata and value range."""
    import numpy as np

    if src.crs is None:
        raise InputError(f"{path.name} has no CRS (georeference it first, e.g. gdal_edit -a_srs)")
    if src.count < 1:
        raise InputError(f"{path.name} has no bands")
    if src.count > 1:
        summary.notes.append(f"{src.count} bands: band 1 is the elevation")
    if not np.issubdtype(np.dtype(src.dtypes[0]), np.number):
        raise InputError(f"{path.name}: band 1 is not numeric ({src.dtypes[0]})")
    band = src.read(1, masked=True)
    nodata = src.nodata
    if nodata is None:
        summary.notes.append("no nodata value is set: every cell is taken as data")
    else:
        holes = int(np.ma.count_masked(band))
        summary.notes.append(f"nodata {nodata:g}: {holes} cells without data")
    if band.count() == 0:
        raise InputError(f"{path.name}: every cell is nodata")
    lo, hi = float(band.min()), float(band.max())
    summary.notes.append(f"elevation {lo:g} … {hi:g} ({src.width}×{src.height} cells)")
    epsg = src.crs.to_epsg()
    return {
        "crs": f"EPSG:{epsg}" if epsg else src.crs.to_string(),
        "width": src.width,
        "height": src.height,
        "res_x": float(src.res[0]),
        "res_y": float(src.res[1]),
        "nodata": None if nodata is None else float(nodata),
        "min_value": lo,
        "max_value": hi,
    }


def _write_cog(path: Path, dest: Path) -> None:
    import rasterio
    import rasterio.shutil
    from rasterio.errors import RasterioError

    try:
        rasterio.shutil.copy(str(path), str(dest), driver="COG", **COG_OPTIONS)
        with rasterio.open(dest) as check:  # the written file must open again
            check.read(1, window=((0, 1), (0, 1)))
    except RasterioError as exc:
        raise InputError(f"cannot write a COG from {path.name}: {exc}") from exc


def _register(
    conn: Connection,
    name: str,
    final: Path,
    info: dict[str, Any],
    bounds: tuple[float, float, float, float],
    summary: Summary,
) -> None:
    cols = [
        ("name", "text"), ("kind", "text"), ("path", "text"), ("crs", "text"),
        ("width", "integer"), ("height", "integer"), ("res_x", "float8"), ("res_y", "float8"),
        ("nodata", "float8"), ("min_value", "float8"), ("max_value", "float8"),
    ]
    row = (name, name, "dem", str(final.resolve()), *(info[c] for c, _ in cols[3:]))
    n = stage(conn, "_stage_terrain", [("source_id", "text"), *cols, *_bbox_cols()],
              [(*row, *bounds)])
    targets = {c: f"s.{c}" for c, _ in cols}
    targets["geom"] = "ST_MakeEnvelope(s.west, s.south, s.east, s.north, 4326)"
    other = conn.execute(
        text("SELECT source FROM terrain WHERE name = :name AND NOT "
             "(source = 'file' AND source_id = :name)"),
        {"name": name},
    ).scalar()
    if other is not None:
        raise InputError(f"terrain {name!r} is already registered by {other!r}; use --name")
    merge(conn, "terrain", "_stage_terrain", targets, source="file", summary=summary,
          staged_rows=n)


def _bbox_cols() -> list[tuple[str, str]]:
    return [("west", "float8"), ("south", "float8"), ("east", "float8"), ("north", "float8")]
