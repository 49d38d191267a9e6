"""Query parameters of ``/collections/{id}/items`` → a validated :class:`ItemsQuery`.

Plain Python (no web framework): the router passes the raw ``(name, value)`` pairs.
Every problem is an :class:`InvalidParameter` (or :class:`InvalidFilter`) naming the
parameter, which the server answers with 400.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.sql import ColumnElement

from layers.catalog import Layer
from layers.cql2 import compile_filter
from layers.cql2_parse import parse_instant
from layers.errors import InvalidFilter, InvalidParameter
from twin import geojson

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
MAX_OFFSET = 10_000_000
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_CRS84_NAMES = {CRS84, "[OGC:CRS84]", "OGC:CRS84", "CRS84", CRS84.replace("http:", "https:")}
KNOWN = frozenset({
    "f", "bbox", "bbox-crs", "datetime", "limit", "offset", "properties", "sortby", "ids",
    "filter", "filter-lang", "filter-crs", "crs",
})
FORMATS = {"json": "json", "geojson": "json", "application/geo+json": "json",
           "application/json": "json", "csv": "csv", "text/csv": "csv"}

Instant = dt.date | dt.datetime


@dataclass(frozen=True)
class ItemsQuery:
    """What a client asked of a collection's items (all values checked)."""

    bbox: tuple[float, float, float, float] | None = None
    datetime: tuple[Instant | None, Instant | None] | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    properties: tuple[str, ...] | None = None  # None: all declared properties
    sortby: tuple[tuple[str, bool], ...] = ()  # (property, descending)
    ids: tuple[int, ...] | None = None
    filter: ColumnElement[bool] | None = field(default=None, compare=False)
    equals: tuple[tuple[str, Any], ...] = ()
    format: str = "json"


def parse_items_query(
    layer: Layer, params: Iterable[tuple[str, str]], accept: str | None = None
) -> ItemsQuery:
    """Validate the items parameters for ``layer``.

    Unknown parameters are refused, except a declared property's name, which filters
    on equality (``?use=school``) as OGC API Features Part 1 allows.
    """
    raw: dict[str, str] = {}
    for name, value in params:
        if name in raw:
            raise InvalidParameter(f"parameter {name!r} given more than once")
        raw[name] = value
    equals: list[tuple[str, Any]] = []
    for name in raw:
        if name in KNOWN:
            continue
        if name in layer.property_map:
            equals.append((name, _typed(layer, name, raw[name])))
        else:
            allowed = ", ".join(sorted(KNOWN))
            raise InvalidParameter(
                f"unknown parameter {name!r} (allowed: {allowed}, or a property name "
                f"for equality: {', '.join(layer.property_map)})"
            )
    for p in ("bbox-crs", "filter-crs", "crs"):
        if p in raw and raw[p].strip() not in _CRS84_NAMES:
            raise InvalidParameter(f"{p}: only {CRS84} is supported, got {raw[p]!r}")
    lang = raw.get("filter-lang", "cql2-text")
    cond = None
    if "filter" in raw:
        if lang not in ("cql2-text", "cql2-json", "cql-text"):
            raise InvalidFilter(f"filter-lang {lang!r} not supported (use cql2-text or cql2-json)")
        cond = compile_filter(layer, raw["filter"], lang)
    return ItemsQuery(
        bbox=parse_bbox(raw["bbox"]) if "bbox" in raw else None,
        # a collection without time: every feature lacks temporal data, so all match
        datetime=_datetime(layer, raw),
        # above the maximum, the maximum (OGC API Features Part 1, /req/core/limit-response)
        limit=min(_int(raw, "limit", DEFAULT_LIMIT, 1, None), MAX_LIMIT),
        offset=_int(raw, "offset", 0, 0, MAX_OFFSET),
        properties=parse_properties(layer, raw["properties"]) if "properties" in raw else None,
        sortby=parse_sortby(layer, raw["sortby"]) if "sortby" in raw else (),
        ids=parse_ids(raw["ids"]) if "ids" in raw else None,
        filter=cond,
        equals=tuple(equals),
        format=parse_format(raw.get("f"), accept),
    )


def parse_format(f: str | None, accept: str | None = None) -> str:
    """``json`` or ``csv``: from ``f``, else from an Accept header that asks for CSV."""
    if f is not None:
        fmt = FORMATS.get(f.strip().lower())
        if fmt is None:
            raise InvalidParameter(f"f: unsupported format {f!r} (use json or csv)")
        return fmt
    if accept and "text/csv" in accept and "json" not in accept:
        return "csv"
    return "json"


def _int(raw: dict[str, str], name: str, default: int, lo: int, hi: int | None) -> int:
    if name not in raw:
        return default
    try:
        value = int(raw[name])
    except ValueError:
        raise InvalidParameter(f"{name}: expected an integer, got {raw[name]!r}") from None
    if hi is None:
        if value < lo:
            raise InvalidParameter(f"{name}: must be at least {lo}, got {value}")
    elif not lo <= value <= hi:
        raise InvalidParameter(f"{name}: must be between {lo} and {hi}, got {value}")
    return value


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """``minx,miny,maxx,maxy`` (or 6 numbers with heights) in CRS84 degrees."""
    return geojson.parse_bbox(text, error=InvalidParameter)


def _datetime(layer: Layer, raw: dict[str, str]) -> tuple[Instant | None, Instant | None] | None:
    if "datetime" not in raw:
        return None
    parsed = parse_datetime(layer, raw["datetime"])  # malformed is 400 on any collection
    return parsed if layer.time_field else None


def parse_datetime(layer: Layer, text: str) -> tuple[Instant | None, Instant | None]:
    """An instant or an interval ``start/end`` (``..`` or empty = open)."""
    parts = text.split("/")
    if len(parts) > 2 or not text.strip():
        raise InvalidParameter(f"datetime: expected an instant or start/end, got {text!r}")
    try:
        ends = [None if p in ("", "..") else parse_instant(p.strip()) for p in parts]
    except InvalidFilter as exc:
        raise InvalidParameter(f"datetime: {exc}") from None
    if len(ends) == 1:
        if ends[0] is None:
            raise InvalidParameter(f"datetime: expected an instant or start/end, got {text!r}")
        return ends[0], ends[0]
    start, end = ends
    if start is not None and end is not None and _as_dt(start) > _as_dt(end):
        raise InvalidParameter(f"datetime: start after end in {text!r}")
    return start, end


def _as_dt(v: Instant) -> dt.datetime:
    if isinstance(v, dt.datetime):
        return v
    return dt.datetime(v.year, v.month, v.day, tzinfo=dt.UTC)


def parse_properties(layer: Layer, text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    for n in names:
        if n not in layer.property_map:
            raise InvalidParameter(
                f"properties: unknown property {n!r} (known: {', '.join(layer.property_map)})"
            )
    return tuple(dict.fromkeys(names))


def parse_sortby(layer: Layer, text: str) -> tuple[tuple[str, bool], ...]:
    out = []
    for item in text.split(","):
        # a literal '+' arrives as a space when the client did not percent-encode it
        s = item.strip()
        desc = s.startswith("-")
        name = s.lstrip("+-").strip()
        if name.endswith((" ASC", " DESC")):  # sortby=name DESC (CQL-style)
            name, _, order = name.rpartition(" ")
            desc = order == "DESC"
        if not name:
            raise InvalidParameter(f"sortby: empty sort key in {text!r}")
        if name not in layer.property_map and name != "id":
            raise InvalidParameter(
                f"sortby: unknown property {name!r} (known: id, {', '.join(layer.property_map)})"
            )
        out.append((name, desc))
    return tuple(out)


MAX_BIGINT = 2**63 - 1


def parse_ids(text: str) -> tuple[int, ...]:
    try:
        ids = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise InvalidParameter(f"ids: expected comma-separated integers, got {text!r}") from None
    if not ids or len(ids) > MAX_LIMIT:
        raise InvalidParameter(f"ids: expected 1 to {MAX_LIMIT} feature ids")
    if not all(-MAX_BIGINT - 1 <= i <= MAX_BIGINT for i in ids):
        raise InvalidParameter("ids: a feature id is out of range (64-bit)")
    return ids


def _typed(layer: Layer, name: str, value: str) -> Any:
    """A property=value parameter converted to the property's declared type."""
    typ = layer.property_map[name].type
    try:
        if typ == "integer":
            n = int(value)
            if not -MAX_BIGINT - 1 <= n <= MAX_BIGINT:
                raise ValueError(value)
            return n
        if typ == "number":
            v = float(value)
            if not math.isfinite(v):
                raise ValueError(value)
            return v
        if typ == "boolean":  # 0/1 too, as GDAL and other clients write booleans
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return value.lower() in ("true", "1")
        if typ in ("date", "datetime"):
            return parse_instant(value)
    except (ValueError, InvalidFilter):
        raise InvalidParameter(f"{name}: expected a {typ} value, got {value!r}") from None
    return value
