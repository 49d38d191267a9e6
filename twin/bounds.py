"""Where the city is: points and geometries the services accept (EPSG:4326 degrees)."""

from __future__ import annotations

import math

from twin.errors import InputError

CITY_BOUNDS = (107.0, 14.8, 112.9, 17.2)
"""Đà Nẵng (west, south, east, north) since 2025-07-01, the former Quảng Nam included,
with the Hoàng Sa island district and a margin of a few kilometres."""

MAX_BIGINT = 2**63 - 1


def in_city(lon: float, lat: float) -> bool:
    w, s, e, n = CITY_BOUNDS
    return math.isfinite(lon) and math.isfinite(lat) and w <= lon <= e and s <= lat <= n


def check_point(lon: float, lat: float, what: str = "point") -> None:
    """:class:`InputError` unless (lon, lat) is a finite point inside the city."""
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise InputError(f"{what}: coordinates must be finite numbers")
    if not in_city(lon, lat):
        w, s, e, n = CITY_BOUNDS
        raise InputError(f"{what} ({lon:.5f}, {lat:.5f}) is outside the city "
                         f"(lon {w}…{e}, lat {s}…{n})")


def check_id(value: int, what: str = "id") -> int:
    """An id that fits PostgreSQL's bigint."""
    if not -MAX_BIGINT - 1 <= value <= MAX_BIGINT:
        raise InputError(f"{what} {value} is out of range")
    return value
