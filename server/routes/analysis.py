"""Spatial queries for responders: nearest facilities, drive-time routes, service areas,
what lies within a radius (also around an incident)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from layers.access import is_staff
from server.deps import ConnDep, PrincipalDep, StaffDep
from twin.analysis import routing
from twin.bounds import MAX_BIGINT, check_point
from twin.errors import InputError
from twin.incidents import store

router = APIRouter(prefix="/analysis", tags=["analysis"])

Lon = Annotated[float, Query(ge=-180, le=180)]
Lat = Annotated[float, Query(ge=-90, le=90)]
Radius = Annotated[float, Query(ge=1, le=5000, description="metres")]
KINDS = {"hospital", "clinic", "fire_station", "police", "shelter", "school", "pharmacy"}


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise InputError(f"unknown facility kind {kind!r}; one of {', '.join(sorted(KINDS))}")
    return kind


@router.get("/nearest")
def nearest(
    conn: ConnDep,
    lon: Lon,
    lat: Lat,
    kind: str = "hospital",
    k: Annotated[int, Query(ge=1, le=10)] = 3,
    mode: Annotated[str, Query(pattern="^(drive|walk|straight)$",
                               description="drive: roads a car may use, one-way rules; "
                               "walk: footways and steps too, both ways, 5 km/h")] = "drive",
) -> dict[str, Any]:
    """Nearest facilities of a kind: by drive or walking time (routes, ETA) or straight
    line."""
    check_point(lon, lat)
    if mode == "straight":
        items = routing.nearest_straight(conn, lon, lat, _kind(kind), k)
    else:
        items = routing.nearest_by_drive(conn, lon, lat, _kind(kind), k, mode=mode)
    return {"mode": mode, "kind": kind, "from": [lon, lat], "items": items}


@router.get("/service-area")
def service_area(
    conn: ConnDep,
    who: StaffDep,
    minutes: Annotated[float, Query(gt=0, le=60)],
    facility_id: Annotated[int | None, Query(ge=1, le=MAX_BIGINT)] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
) -> dict[str, Any]:
    """The area a facility (or a point) reaches within N minutes of driving."""
    if facility_id is not None:
        from sqlalchemy import text

        row = conn.execute(
            text("SELECT ST_X(geom), ST_Y(geom) FROM facility WHERE id = :i"), {"i": facility_id}
        ).first()
        if row is None:
            from twin.errors import NotFound

            raise NotFound(f"facility {facility_id} not found")
        lon, lat = float(row[0]), float(row[1])
    if lon is None or lat is None:
        raise InputError("give facility_id, or lon and lat")
    check_point(lon, lat)
    return routing.service_area(conn, lon, lat, minutes)


@router.get("/within")
def within(
    conn: ConnDep,
    principal: PrincipalDep,
    lon: Lon,
    lat: Lat,
    radius: Radius = 500,
) -> dict[str, Any]:
    """Everything within a radius: buildings (people, floor area), facilities, and for
    staff the utility nodes."""
    check_point(lon, lat)
    return routing.within_radius(conn, lon, lat, radius, staff=is_staff(principal.role))


@router.get("/incident/{incident_id}")
def incident_help(
    incident_id: Annotated[int, Path(ge=1, le=MAX_BIGINT)],
    conn: ConnDep,
    who: StaffDep,
    kind: str = "hospital",
    k: Annotated[int, Query(ge=1, le=10)] = 3,
    radius: Radius = 300,
) -> dict[str, Any]:
    """For an incident: the nearest facilities by drive time with routes, and what lies
    around it."""
    from shapely.geometry import shape

    row = store.get(conn, incident_id)
    p = shape(row["geometry"]).representative_point()
    return {
        "incident": incident_id,
        "at": [p.x, p.y],
        "nearest": routing.nearest_by_drive(conn, p.x, p.y, _kind(kind), k),
        "around": routing.within_radius(conn, p.x, p.y, radius, staff=True),
    }
