"""Raster tiles (XYZ PNG + TileJSON) from the registered terrain and stored floods;
elevation at a point and along a line.

Elevation, hillshade and slope are public; a flood's depth tiles follow the scenario
(staff only unless it was made public). A tile that misses the data answers 204; a
z/x/y outside the tile matrix answers 404.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from sqlalchemy import Connection, text
from starlette.concurrency import run_in_threadpool

from layers import raster
from layers.access import is_staff
from server.auth import Principal
from server.deps import ConnDep, PrincipalDep
from twin.errors import InputError, NotFound
from twin.scenarios.models import DEPTH_KINDS
from twin.scenarios.terrain import resolve_dem

router = APIRouter(prefix="/raster", tags=["raster"])

DEM_MAX_AGE = 3600
ATTRIBUTION = "SRTM GL1 (NASA/USGS, public domain) where the SRTM DEM is used"
DemQ = Annotated[str | None, Query(description="registered DEM name (default: the newest)")]


@lru_cache(maxsize=1024)
def _render(kind: str, path: str, stamp: str, z: int, x: int, y: int) -> bytes | None:
    """A rendered tile, kept in memory (~50 MB at most): the file's stamp (mtime, size)
    is part of the key, so a re-imported raster is never served stale."""
    return raster.tile(kind, path, z, x, y)


def _png(request: Request, data: bytes | None, etag: str, max_age: int, private: bool) -> Response:
    cache = f"{'private' if private else 'public'}, max-age={max_age}"
    if data is None:
        return Response(status_code=204, headers={"Cache-Control": cache})
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache})
    return Response(data, media_type="image/png",
                    headers={"ETag": etag, "Cache-Control": cache, "Vary": "Authorization"})


def _stamp(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise NotFound("the raster file is missing") from exc
    return f"{st.st_mtime_ns:x}-{st.st_size:x}"


def _flood(conn: Connection, scenario_id: int, principal: Principal) -> dict[str, Any]:
    """The flood scenario's raster path and extent, if the caller may see it."""
    row = conn.execute(
        text("SELECT kind, public, raster_path, ST_XMin(geom) w, ST_YMin(geom) s, "
             "ST_XMax(geom) e, ST_YMax(geom) n FROM scenario WHERE id = :i"),
        {"i": scenario_id},
    ).mappings().first()
    if row is None or row["kind"] not in DEPTH_KINDS:  # rain and river floods too
        raise NotFound(f"flood scenario {scenario_id} not found")
    if not row["public"] and not is_staff(principal.role):
        if principal.anonymous:
            raise HTTPException(401, "sign in required", headers={"WWW-Authenticate": "Bearer"})
        raise HTTPException(403, "staff only")
    return dict(row)


@router.get("/flood/{scenario_id}/{z}/{x}/{y}.png", responses={204: {"description": "no water"}})
async def flood_tile(
    scenario_id: int, z: int, x: int, y: int, request: Request, conn: ConnDep,
    principal: PrincipalDep,
) -> Response:
    """Water depth of a stored flood (blue by depth, dry cells transparent)."""
    raster.check_tile(z, x, y)
    row = await run_in_threadpool(_flood, conn, scenario_id, principal)
    path = row["raster_path"]
    if not path:
        return _png(request, None, "", 300, True)
    stamp = _stamp(path)
    etag = f'"flood-{scenario_id}-{stamp}-{z}-{x}-{y}"'
    if request.headers.get("if-none-match") == etag:
        return _png(request, b"", etag, 300, not row["public"])
    data = await run_in_threadpool(_render, "flood", path, stamp, z, x, y)
    return _png(request, data, etag, 300, not row["public"])


@router.get("/flood/{scenario_id}/tilejson.json")
def flood_tilejson(
    scenario_id: int, request: Request, conn: ConnDep, principal: PrincipalDep
) -> dict[str, Any]:
    """TileJSON of a flood's depth tiles, with the depth legend."""
    row = _flood(conn, scenario_id, principal)
    bounds = (row["w"], row["s"], row["e"], row["n"]) if row["w"] is not None else (
        -180.0, -85.0, 180.0, 85.0)
    url = f"{str(request.base_url).rstrip('/')}/raster/flood/{scenario_id}/{{z}}/{{x}}/{{y}}.png"
    return raster.tilejson("flood", url, bounds, name=f"flood {scenario_id} depth",
                           attribution=ATTRIBUTION)


@router.get("/elevation/point/{lon},{lat}")
def elevation_point(lon: str, lat: str, conn: ConnDep, dem: DemQ = None) -> dict[str, Any]:
    """Elevation (metres) of the DEM cell under a lon/lat point (EPSG:4326)."""
    x, y = _lonlat(lon, lat)
    ref = resolve_dem(conn, dem)
    return {"lon": x, "lat": y, "dem": ref.name, "elevation_m": raster.point(ref.path, x, y)}


@router.get("/flood/{scenario_id}/point/{lon},{lat}")
def flood_point(
    scenario_id: int, lon: str, lat: str, conn: ConnDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Water depth (metres, 0 when dry) of a stored flood at a lon/lat point."""
    x, y = _lonlat(lon, lat)
    row = _flood(conn, scenario_id, principal)
    depth = None
    if row["raster_path"]:
        try:
            depth = raster.point(row["raster_path"], x, y)
        except NotFound:
            depth = None
    return {"lon": x, "lat": y, "scenario": scenario_id, "depth_m": depth or 0.0}


@router.get("/elevation/profile")
def elevation_profile(
    conn: ConnDep,
    line: Annotated[str, Query(description="lon,lat;lon,lat;… (EPSG:4326)")],
    samples: Annotated[int, Query(ge=2, le=2000)] = 100,
    dem: DemQ = None,
) -> dict[str, Any]:
    """Elevation along a line, sampled at evenly spaced points (geodesic distance)."""
    pts = raster.parse_line(line)
    ref = resolve_dem(conn, dem)
    return {"dem": ref.name, **raster.profile(ref.path, pts, samples)}


@router.get("/{name}/tilejson.json")
def dem_tilejson(name: str, request: Request, conn: ConnDep, dem: DemQ = None) -> dict[str, Any]:
    """TileJSON of a terrain layer (elevation | hillshade | slope), with its legend."""
    _kind(name)
    ref = resolve_dem(conn, dem)
    url = f"{str(request.base_url).rstrip('/')}/raster/{name}/{{z}}/{{x}}/{{y}}.png"
    if dem:
        url += f"?dem={ref.name}"
    return raster.tilejson(name, url, ref.bounds, name=f"{name} ({ref.name})",
                           attribution=ATTRIBUTION)


@router.get("/{name}/{z}/{x}/{y}.png", responses={204: {"description": "outside the data"}})
async def dem_tile(
    name: str, z: int, x: int, y: int, request: Request, conn: ConnDep, dem: DemQ = None
) -> Response:
    """A terrain tile: elevation coloured by the legend, hillshade or slope."""
    _kind(name)
    raster.check_tile(z, x, y)
    ref = await run_in_threadpool(resolve_dem, conn, dem)
    stamp = _stamp(ref.path)
    etag = f'"{name}-{ref.name}-{stamp}-{z}-{x}-{y}"'
    if request.headers.get("if-none-match") == etag:
        return _png(request, b"", etag, DEM_MAX_AGE, False)
    data = await run_in_threadpool(_render, name, ref.path, stamp, z, x, y)
    return _png(request, data, etag, DEM_MAX_AGE, False)


def _kind(name: str) -> None:
    if name not in raster.KINDS:
        raise NotFound(f"unknown raster {name!r}; one of {', '.join(raster.KINDS)}, flood/<id>")


def _lonlat(lon: str, lat: str) -> tuple[float, float]:
    try:
        x, y = float(lon), float(lat)
    except ValueError:
        raise InputError(f"bad point {lon},{lat}: expected lon,lat in degrees") from None
    if not (-180 <= x <= 180 and -90 <= y <= 90):
        raise InputError("lon must be within −180…180 and lat within −90…90")
    return x, y
