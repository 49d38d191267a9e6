"""Parsing and formatting of SensorThings values: ISO 8601 instants and intervals,
results by observation type, GeoJSON geometries."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from twin.errors import InputError
from twin.geojson import read_geometry

OM = "http://www.opengis.net/def/observationType/OGC-OM/2.0/"
MEASUREMENT = OM + "OM_Measurement"
COUNT = OM + "OM_CountObservation"
TRUTH = OM + "OM_TruthObservation"
CATEGORY = OM + "OM_CategoryObservation"
OBSERVATION = OM + "OM_Observation"
OBSERVATION_TYPES = (MEASUREMENT, COUNT, TRUTH, CATEGORY, OBSERVATION)

_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(value: Any, what: str = "time") -> dt.datetime:
    """An ISO 8601 instant with a UTC offset (``Z`` or ``±hh:mm``) → aware datetime.

    Instants without an offset are refused: a reading's time must be unambiguous.
    """
    if not isinstance(value, str):
        raise InputError(f"{what} must be an ISO 8601 string, got {type(value).__name__}")
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        try:
            t = dt.datetime.fromisoformat(_FRACTION.sub(r"\1", value))
        except ValueError:
            raise InputError(f"{what} {value!r} is not an ISO 8601 time") from None
    if t.tzinfo is None:
        raise InputError(f"{what} {value!r} has no UTC offset (add Z or +07:00)")
    return t


def parse_instant_or_interval(value: Any, what: str) -> tuple[dt.datetime, dt.datetime | None]:
    """``start`` or ``start/end`` → (start, end or None)."""
    if isinstance(value, str) and "/" in value:
        a, _, b = value.partition("/")
        start, end = parse_time(a, what), parse_time(b, what)
        if end < start:
            raise InputError(f"{what} {value!r}: the interval ends before it starts")
        return start, end
    return parse_time(value, what), None


def iso(t: dt.datetime | None) -> str | None:
    """UTC ISO 8601 with ``Z`` (as SensorThings services answer)."""
    if t is None:
        return None
    s = t.astimezone(dt.UTC).isoformat()
    return s[:-6] + "Z" if s.endswith("+00:00") else s


def interval(start: dt.datetime | None, end: dt.datetime | None) -> str | None:
    if start is None:
        return None
    if end is None or end == start:
        return iso(start)
    return f"{iso(start)}/{iso(end)}"


def check_result(value: Any, observation_type: str, what: str) -> tuple[float | None, Any]:
    """Split a result into (numeric column, JSON column) after checking its type against
    the datastream's observation type; :class:`InputError` names what is wrong."""
    is_num = isinstance(value, int | float) and not isinstance(value, bool)
    if observation_type == MEASUREMENT:
        if not is_num:
            raise InputError(f"{what}: result must be a number for an OM_Measurement "
                             f"datastream, got {_kind(value)}")
        return float(value), None
    if observation_type == COUNT:
        if not isinstance(value, int) or isinstance(value, bool):
            raise InputError(f"{what}: result must be an integer for an "
                             f"OM_CountObservation datastream, got {_kind(value)}")
        return float(value), None
    if observation_type == TRUTH:
        if not isinstance(value, bool):
            raise InputError(f"{what}: result must be true or false for an "
                             f"OM_TruthObservation datastream, got {_kind(value)}")
        return None, value
    if observation_type == CATEGORY:
        if not isinstance(value, str):
            raise InputError(f"{what}: result must be a string for an "
                             f"OM_CategoryObservation datastream, got {_kind(value)}")
        return None, value
    if value is None:
        raise InputError(f"{what}: result is required")
    if is_num:
        return float(value), None
    return None, value


def result_out(num: float | None, js: Any, observation_type: str) -> Any:
    if num is None:
        return js
    if observation_type == COUNT or (observation_type != MEASUREMENT and num.is_integer()):
        return int(num)
    return num


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__
    )


def geojson_geometry(value: Any, what: str) -> str:
    """A GeoJSON geometry (or Feature) → WKT, checked by :func:`twin.geojson.read_geometry`."""
    return str(read_geometry(value, what).wkt)
