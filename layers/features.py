"""OGC API Features items as GeoJSON and CSV, built in PostgreSQL in one round trip.

Each feature's GeoJSON text is rendered by PostgreSQL (``ST_AsGeoJSON(geom, 7)`` and
``json_build_object`` of the declared properties); Python only joins the rows, so no
feature is decoded or re-encoded here. Rows are picked with ``ST_Intersects(geom,
envelope)``, which PostGIS turns into a GiST ``geom && envelope`` index condition;
they are ordered by the sort keys then the id so that ``offset`` paging is stable, and
one row more than ``limit`` is read to know whether a next page exists.

``numberMatched`` comes from the same statement. A query that selects part of a layer
(bbox, filter, ids, datetime, property=value) collects its matching ids once, up to
:data:`NARROW_CAP`, and both counts them and pages through them (one index scan). Any
other query, or one matching more rows, counts in an InitPlan capped at
:data:`COUNT_CAP`. Up to that cap the count is exact; past it, counting every row
would cost more than the page itself, so the planner's estimate for the filter
(``EXPLAIN``) is reported instead (never below the cap) — clients use it for progress
only and page by the ``next`` links. See :mod:`layers.features_sql` for the SQL.

Plain Python (no web framework): functions take a SQLAlchemy connection.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.sql import func, literal_column

from layers.catalog import Layer
from layers.cql2 import layer_columns
from layers.features_params import ItemsQuery
from layers.features_sql import (
    PRECISION,
    conditions,
    execute,
    feature_json,
    is_narrow,
    narrow_statement,
    order_by,
    wide_statement,
)

COUNT_CAP = 100_000
"""Exact ``numberMatched`` up to this many rows; the planner's estimate beyond."""
NARROW_CAP = 10_000
"""Matches held by the one-scan plan for filtered queries (:func:`narrow_statement`)."""
GEOJSON = "application/geo+json"


@dataclass(frozen=True)
class ItemsPage:
    """One page of features, each already encoded as GeoJSON text."""

    features: list[str]
    number_matched: int
    number_returned: int
    has_next: bool
    matched_exact: bool = True


# -- running --------------------------------------------------------------------------


def items(conn: Connection, layer: Layer, q: ItemsQuery) -> ItemsPage:
    """One page of ``layer``'s features matching ``q``."""
    rows = None
    if is_narrow(q):
        rows = execute(conn, "narrow", layer, q, narrow_statement, narrow_cap=NARROW_CAP)
        if (rows[0][1] >= NARROW_CAP) if rows else q.offset > 0:
            rows = None  # more matches than the narrow plan holds, or unknown
    if rows is None:
        rows = execute(conn, "wide", layer, q, wide_statement, count_cap=COUNT_CAP)
    has_next = len(rows) > q.limit
    feats = [r[0] for r in rows[: q.limit]]
    if rows:
        matched = int(rows[0][1])
    elif q.offset == 0:
        matched = 0
    else:
        matched = count_matched(conn, layer, q)
    exact = matched < COUNT_CAP
    if not exact:
        matched = max(matched, estimate_matched(conn, layer, q))
    return ItemsPage(feats, matched, len(feats), has_next, exact)


def count_matched(conn: Connection, layer: Layer, q: ItemsQuery) -> int:
    """Matching rows, counted up to :data:`COUNT_CAP`."""
    lc = layer_columns(layer)
    inner = (sa.select(literal_column("1")).select_from(lc.table)
             .where(*conditions(layer, q)).limit(COUNT_CAP).subquery("m"))
    return int(conn.execute(sa.select(func.count()).select_from(inner)).scalar_one())


def estimate_matched(conn: Connection, layer: Layer, q: ItemsQuery) -> int:
    """The planner's row estimate for ``q``'s filter (``EXPLAIN``, nothing is read)."""
    lc = layer_columns(layer)
    stmt: sa.Select[Any] = (sa.select(literal_column("1")).select_from(lc.table)
                            .where(*conditions(layer, q)))
    compiled = stmt.compile(conn, compile_kwargs={"render_postcompile": True})
    plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled.string}",
                                compiled.params).scalar_one()
    if isinstance(plan, str | bytes):
        plan = orjson.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def feature(conn: Connection, layer: Layer, fid: int) -> str | None:
    """One feature as GeoJSON text, or None when there is no such feature."""
    lc = layer_columns(layer)
    stmt: sa.Select[Any] = (sa.select(feature_json(layer)).select_from(lc.table)
                            .where(lc.id == fid))
    if layer.where:
        stmt = stmt.where(sa.text(f"({layer.where})"))
    return conn.execute(stmt).scalar_one_or_none()


# -- encoding ---------------------------------------------------------------------------


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def feature_collection(page: ItemsPage, links: list[dict[str, Any]]) -> bytes:
    """The GeoJSON FeatureCollection document, joined from pre-rendered features."""
    head = b'{"type":"FeatureCollection","features":['
    body = ",".join(page.features).encode()
    tail = orjson.dumps({
        "numberMatched": page.number_matched,
        "numberReturned": page.number_returned,
        "timeStamp": now_rfc3339(),
        "links": links,
    })
    return head + body + b"]," + tail[1:]


def feature_document(feature_text: str, links: list[dict[str, Any]]) -> bytes:
    """A single Feature with its links appended."""
    text = feature_text.encode()
    return text[:-1] + b',"links":' + orjson.dumps(links) + b"}"


def items_csv(conn: Connection, layer: Layer, q: ItemsQuery) -> tuple[bytes, bool]:
    """The page as CSV: ``id``, the properties, ``wkt`` (CRS84). Returns (csv, has_next)."""
    lc = layer_columns(layer)
    names = q.properties if q.properties is not None else tuple(layer.property_map)
    cols = [lc.id, *(lc.props[n] for n in names),
            func.ST_AsText(lc.geom, PRECISION, type_=sa.Text()).label("wkt")]
    stmt = (sa.select(*cols).select_from(lc.table).where(*conditions(layer, q))
            .order_by(*order_by(layer, q)).limit(q.limit + 1).offset(q.offset))
    rows = conn.execute(stmt).all()
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["id", *names, "wkt"])
    for r in rows[: q.limit]:
        w.writerow(["" if v is None else _csv_value(v) for v in r])
    return buf.getvalue().encode("utf-8"), len(rows) > q.limit


def _csv_value(v: Any) -> Any:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dt.date):
        return v.isoformat()
    return v
