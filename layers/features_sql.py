"""The SQL of OGC API Features items: conditions, GeoJSON text per row, page statements.

Every per-request value (bbox, datetime, ids, property=value, limit, offset, caps) is a
*named* bound parameter, so a statement depends only on the query's shape (which
parameters are present, properties, sortby, the filter). :func:`execute` compiles each
shape once and afterwards sends the cached SQL text with fresh values: SQLAlchemy's
statement building and cache-key work would otherwise cost more Python time per
request than everything else together, and psycopg prepares the repeated text.

Identifiers only ever come from the validated catalogue.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql import ColumnElement, bindparam, func, literal_column

from layers.catalog import Layer
from layers.cql2 import SQL_TYPES, SRID, layer_columns
from layers.features_params import ItemsQuery

PRECISION = 7
"""Decimal places of GeoJSON coordinates (1e-7 degree ≈ 1 cm)."""
_INF = {"start": "'-infinity'::timestamptz", "end": "'infinity'::timestamptz"}


def feature_json(
    layer: Layer, properties: tuple[str, ...] | None = None, qualifier: str = ""
) -> ColumnElement[str]:
    """SQL producing one GeoJSON Feature per row, as text.

    Identifiers come from the validated catalogue (plain lower-case identifiers), so
    they are written into the SQL; no user value is. ``qualifier`` names the FROM item.
    """
    names = properties if properties is not None else tuple(layer.property_map)
    t = f"{qualifier}." if qualifier else ""
    pairs = ", ".join(f"'{n}', {t}{layer.property_map[n].col}" for n in names)
    props = f"json_build_object({pairs})::text" if names else "'{}'"
    sql = (
        f"""'{{"type":"Feature","id":' || {t}{layer.id_column} || ',"geometry":' || """
        f"""coalesce(ST_AsGeoJSON({t}{layer.geometry_column}, {PRECISION}), 'null') || """
        f"""',"properties":' || {props} || '}}'"""
    )
    return literal_column(sql, sa.Text())


def conditions(layer: Layer, q: ItemsQuery) -> list[ColumnElement[bool]]:
    """The WHERE clauses for a query on ``layer`` (all user values bound, by name)."""
    lc = layer_columns(layer)
    conds: list[ColumnElement[bool]] = []
    if layer.where:
        conds.append(sa.text(f"({layer.where})"))  # type: ignore[arg-type]
    if q.bbox is not None:
        box = [bindparam(f"bbox_{k}", v, type_=sa.Float())
               for k, v in zip(("minx", "miny", "maxx", "maxy"), q.bbox, strict=True)]
        # ST_Intersects adds ``geom && env`` as its index condition (PostGIS support
        # function); spelling && out as well would square its selectivity estimate.
        conds.append(func.ST_Intersects(lc.geom, func.ST_MakeEnvelope(*box, SRID),
                                        type_=sa.Boolean()))
    if q.datetime is not None:
        conds.extend(_time_conditions(layer, *q.datetime))
    if q.ids is not None:
        ids = bindparam("ids", list(q.ids), type_=ARRAY(sa.BigInteger()))
        conds.append(lc.id == sa.any_(ids))
    for name, value in q.equals:
        typ = _type_of(value) if layer.property_map[name].type in ("date", "datetime") \
            else SQL_TYPES[layer.property_map[name].type]
        conds.append(lc.props[name] == bindparam(f"eq_{name}", value, type_=typ))
    if q.filter is not None:
        conds.append(q.filter)
    return conds


def _time_conditions(layer: Layer, start: Any, end: Any) -> list[ColumnElement[bool]]:
    """Features whose time meets the closed query interval [start, end].

    A layer with an end field holds half-open periods ``[time_field, time_end_field)``:
    a unit valid to 2025-07-01 is no longer valid on that day, and a missing start
    (NULL) means "since always", a missing end "still valid". A layer with one time
    field holds instants.
    """
    assert layer.time_field
    s: Any = sa.column(layer.time_field)
    end_field = layer.time_end_field
    period = end_field is not None
    e: Any = s
    if end_field is not None:
        s = func.coalesce(s, literal_column(_INF["start"]))
        e = func.coalesce(sa.column(end_field), literal_column(_INF["end"]))
    out = []
    if isinstance(end, dt.date) and not isinstance(end, dt.datetime):
        # a date ends at the end of that day, also for timestamp columns
        out.append(s < bindparam("t_end", end + dt.timedelta(days=1), type_=sa.Date()))
    elif end is not None:
        out.append(s <= bindparam("t_end", end, type_=_type_of(end)))
    if start is not None:
        t_start = bindparam("t_start", start, type_=_type_of(start))
        out.append(e > t_start if period else e >= t_start)
    return out


def _type_of(v: Any) -> Any:
    return sa.DateTime(timezone=True) if isinstance(v, dt.datetime) else sa.Date()


def values(q: ItemsQuery, **caps: int) -> dict[str, Any]:
    """The per-request bound values of ``q``'s statements (see :func:`conditions`)."""
    out: dict[str, Any] = {"lim": q.limit + 1, "off": q.offset, **caps}
    if q.bbox is not None:
        out.update(zip(("bbox_minx", "bbox_miny", "bbox_maxx", "bbox_maxy"), q.bbox,
                       strict=True))
    if q.datetime is not None:
        start, end = q.datetime
        if isinstance(end, dt.date) and not isinstance(end, dt.datetime):
            out["t_end"] = end + dt.timedelta(days=1)
        elif end is not None:
            out["t_end"] = end
        if start is not None:
            out["t_start"] = start
    if q.ids is not None:
        out["ids"] = list(q.ids)
    for name, value in q.equals:
        out[f"eq_{name}"] = value
    return out


def _sort_keys(q: ItemsQuery, id_col: Any, cols: Any) -> list[Any]:
    """ORDER BY: the requested keys, then the id (a total order, for stable paging)."""
    keys: list[Any] = []
    for name, desc in q.sortby:
        col = id_col if name == "id" else cols[name]
        keys.append(col.desc() if desc else col.asc())
    if not any(name == "id" for name, _ in q.sortby):
        keys.append(id_col.asc())
    return keys


def order_by(layer: Layer, q: ItemsQuery) -> list[Any]:
    lc = layer_columns(layer)
    return _sort_keys(q, lc.id, lc.props)


# placeholders: values() supplies the real ones on every execution
_LIM = bindparam("lim", 0, type_=sa.Integer())
_OFF = bindparam("off", 0, type_=sa.Integer())


def wide_statement(layer: Layer, q: ItemsQuery) -> sa.Select[Any]:
    """``SELECT feature_text, capped_count … ORDER BY … LIMIT lim OFFSET off``.

    The page is picked in a subquery of plain columns and the GeoJSON text is rendered
    outside it: PostgreSQL would otherwise render every row skipped by ``OFFSET``.
    The count is an InitPlan capped at ``:count_cap`` rows.
    """
    lc = layer_columns(layer)
    conds = conditions(layer, q)
    inner = (
        sa.select(literal_column("1")).select_from(lc.table).where(*conds)
        .limit(bindparam("count_cap", 0, type_=sa.Integer())).correlate(None).subquery("m")
    )
    count = sa.select(func.count()).select_from(inner).correlate(None).scalar_subquery()
    page = (
        sa.select(lc.id, lc.geom, *lc.props.values()).select_from(lc.table).where(*conds)
        .order_by(*_sort_keys(q, lc.id, lc.props)).limit(_LIM).offset(_OFF).subquery("p")
    )
    pc = {name: page.c[col.name] for name, col in lc.props.items()}
    return (
        sa.select(feature_json(layer, q.properties).label("f"), count.label("n"))
        .select_from(page).order_by(*_sort_keys(q, page.c[lc.id.name], pc))
    )


def narrow_statement(layer: Layer, q: ItemsQuery) -> sa.Select[Any]:
    """One index scan for page and count, for queries that select a part of a layer.

    The matching ids (and sort keys) are collected once, capped at ``:narrow_cap``
    (``WITH m AS MATERIALIZED``); the count and the page both read them, and only the
    page's rows are joined back to render GeoJSON. The spatial predicate thus runs once
    per candidate row instead of twice. When ``n`` reaches the cap the page may be
    wrong and the caller falls back to :func:`wide_statement`.
    """
    lc = layer_columns(layer)
    sort_names = [n for n, _ in q.sortby if n != "id"]
    m = (
        sa.select(lc.id, *(lc.props[n] for n in dict.fromkeys(sort_names)))
        .select_from(lc.table).where(*conditions(layer, q))
        .limit(bindparam("narrow_cap", 0, type_=sa.Integer()))
        .cte("m").prefix_with("MATERIALIZED")
    )
    mid = m.c[lc.id.name]
    page = (
        sa.select(mid)
        .order_by(*_sort_keys(q, mid, {n: m.c[lc.props[n].name] for n in sort_names}))
        .limit(_LIM).offset(_OFF).subquery("pg")
    )
    b = lc.table.alias("b")
    count = sa.select(func.count()).select_from(m).scalar_subquery()
    bid = b.c[lc.id.name]
    return (
        sa.select(feature_json(layer, q.properties, "b").label("f"), count.label("n"))
        .select_from(page.join(b, bid == page.c[lc.id.name]))
        .order_by(*_sort_keys(q, bid, {n: b.c[lc.props[n].name] for n in sort_names}))
    )


def is_narrow(q: ItemsQuery) -> bool:
    """Whether ``q`` selects part of the layer (bbox, filter …), not all of it."""
    return (q.bbox is not None or q.filter is not None or q.ids is not None
            or bool(q.equals) or q.datetime is not None)


# -- compiled statement cache -----------------------------------------------------------

_CACHE_SIZE = 256
_cache: OrderedDict[tuple[Any, ...], tuple[str, dict[str, Any], tuple[Any, ...]]] = OrderedDict()
_lock = threading.Lock()


def shape(layer: Layer, q: ItemsQuery) -> tuple[Any, ...]:
    """What the SQL text of ``q`` depends on (values excluded)."""
    times = None
    if q.datetime is not None:
        start, end = q.datetime
        times = (type(start).__name__, type(end).__name__)
    return (id(layer), q.properties, q.sortby, q.bbox is not None, times, q.ids is not None,
            tuple((n, type(v).__name__) for n, v in q.equals), id(q.filter))


def execute(conn: Connection, kind: str, layer: Layer, q: ItemsQuery,
            build: Callable[[Layer, ItemsQuery], sa.Select[Any]],
            **caps: int) -> list[Any]:
    """Run the ``kind`` statement of ``q``: compiled once per shape, then cached."""
    key = (kind, conn.dialect.name, *shape(layer, q))
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
    if hit is None or hit[2][0] is not layer or hit[2][1] is not q.filter:
        compiled = build(layer, q).compile(dialect=conn.dialect,
                                           compile_kwargs={"render_postcompile": True})
        # the pins keep layer and filter alive, so their id()s in the key stay theirs
        hit = (compiled.string, dict(compiled.params), (layer, q.filter))
        with _lock:
            _cache[key] = hit
            if len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    sql, defaults, _ = hit
    return list(conn.exec_driver_sql(sql, {**defaults, **values(q, **caps)}).all())
