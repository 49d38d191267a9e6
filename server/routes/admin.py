"""Administrative units over time: lineage of the 2025 merge and the unit at a point on
a day (``twin.admin``). Admin boundaries are a public layer, so these are public too."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query

from server.deps import ConnDep
from twin import admin
from twin.bounds import check_point
from twin.errors import InputError, NotFound

router = APIRouter(prefix="/admin", tags=["admin units"])


@router.get("/lineage")
def lineage(
    conn: ConnDep,
    code: Annotated[str | None, Query(max_length=100, description="unit code, e.g. "
                                      "old-ward-thach-thang or ward-hai-chau")] = None,
    name: Annotated[str | None, Query(max_length=100, description="unit name, with or "
                                      "without diacritics (instead of code)")] = None,
) -> dict[str, Any]:
    """What an old unit became on its last day (``became``, with the share of it each new
    unit took) and what a new unit was formed from (``formed_from``)."""
    if (code is None) == (name is None):
        raise InputError("give exactly one of code or name")
    codes = [code] if code is not None else admin.find_codes(conn, name or "")
    units = [u for c in codes if (u := admin.lineage(conn, c)) is not None]
    if not units:
        raise NotFound(f"no administrative unit {code or name!r}")
    if code is not None:
        return units[0]
    return {"name": name, "units": units}


@router.get("/at")
def unit_at(
    conn: ConnDep,
    lon: Annotated[float, Query(ge=-180, le=180)],
    lat: Annotated[float, Query(ge=-90, le=90)],
    date: Annotated[dt.date | None, Query(description="the day (default: today)")] = None,
) -> dict[str, Any]:
    """The ward/commune, district and city containing a point on a given day."""
    check_point(lon, lat)
    on = date or dt.date.today()
    units = admin.units_at(conn, lon, lat, on)
    return {"lon": lon, "lat": lat, "date": on.isoformat(), "units": units}
