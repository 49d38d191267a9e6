"""CQL2 (text or JSON) → a SQLAlchemy boolean expression over a layer's table.

Only the layer's declared properties (plus its geometry, as ``geometry``, and the feature
``id``) may be named; every value becomes a bound parameter, every identifier comes from
the validated catalogue. Values are checked against the property's declared type, so a
bad filter is a 400 (:class:`InvalidFilter`) before any SQL runs, never a 500.

Supported: comparison, AND/OR/NOT, LIKE, IN, BETWEEN, IS NULL, arithmetic (+ - * / %),
CASEI / ACCENTI, S_INTERSECTS / S_WITHIN / S_CONTAINS / S_DISJOINT / S_TOUCHES /
S_CROSSES / S_OVERLAPS / S_EQUALS with WKT, GeoJSON or BBOX literals (CRS84), and all
T_* temporal functions on date / datetime properties and INTERVALs.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pygeofilter import ast, values
from sqlalchemy.sql import ColumnElement, column, func, table
from sqlalchemy.sql.expression import TableClause

from layers.catalog import Layer
from layers.cql2_parse import (
    ArrayPredicate,
    TemporalPredicate,
    TInterval,
    parse_instant,
    parse_json,
    parse_text,
)
from layers.errors import InvalidFilter
from twin.geojson import read_geometry

FILTER_LANGS = ("cql2-text", "cql2-json")
GEOMETRY_NAMES = ("geometry", "geom")
SRID: sa.ColumnClause[Any] = sa.literal_column("4326")  # integer SRIDs, written into the SQL
SQL_TYPES: dict[str, Any] = {
    "string": sa.Text(), "integer": sa.BigInteger(), "number": sa.Float(),
    "boolean": sa.Boolean(), "date": sa.Date(), "datetime": sa.DateTime(timezone=True),
}
KIND = {"string": "string", "integer": "number", "number": "number", "boolean": "boolean",
        "date": "time", "datetime": "time"}


@dataclass(frozen=True)
class LayerColumns:
    """The SQL side of a layer: its table clause and typed columns by property name."""

    table: TableClause
    id: sa.ColumnClause[Any]
    geom: sa.ColumnClause[Any]
    props: dict[str, sa.ColumnClause[Any]]
    kinds: dict[str, str]

    def queryables(self) -> str:
        return ", ".join([*self.props, "geometry"])


_columns_cache: dict[int, tuple[Layer, LayerColumns]] = {}


def layer_columns(layer: Layer) -> LayerColumns:
    """Table and columns for ``layer`` (built once per Layer object)."""
    hit = _columns_cache.get(id(layer))
    if hit is not None and hit[0] is layer:
        return hit[1]
    cols = {p.name: column(p.col, SQL_TYPES[p.type]) for p in layer.properties}
    idc = column(layer.id_column, sa.BigInteger())
    geom: sa.ColumnClause[Any] = column(layer.geometry_column)
    extra = {layer.time_field, layer.time_end_field} - {p.col for p in layer.properties} - {None}
    tbl = table(layer.table, idc, geom, *cols.values(), *(column(c) for c in extra if c))
    kinds = {p.name: KIND[p.type] for p in layer.properties}
    lc = LayerColumns(tbl, idc, geom, cols, kinds)
    if len(_columns_cache) > 1024:  # catalogues are reloaded (tests): keep it bounded
        _columns_cache.clear()
    _columns_cache[id(layer)] = (layer, lc)
    return lc


# -- entry point ---------------------------------------------------------------------

_CACHE_SIZE = 512
_cache: OrderedDict[tuple[int, str, str], tuple[Layer, ColumnElement[bool]]] = OrderedDict()
_cache_lock = threading.Lock()


def compile_filter(layer: Layer, filter_: str, lang: str = "cql2-text") -> ColumnElement[bool]:
    """The SQL condition for a CQL2 filter on ``layer`` (cached: filters repeat).

    Raises
    ------
    InvalidFilter
        Unparsable filter, unknown property, type mismatch or unsupported operator.
    """
    lang = (lang or "cql2-text").lower()
    lang = {"cql-text": "cql2-text"}.get(lang, lang)  # the draft's name
    if lang not in FILTER_LANGS:
        raise InvalidFilter(
            f"unsupported filter-lang {lang!r}; use one of {', '.join(FILTER_LANGS)}")
    key = (id(layer), lang, filter_)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] is layer:
            _cache.move_to_end(key)
            return hit[1]
    node = parse_text(filter_) if lang == "cql2-text" else parse_json(filter_)
    try:
        cond = to_sql(layer, node)
    except RecursionError:  # parse_* cap the depth; this is the last guard
        raise InvalidFilter("filter nested too deeply") from None
    with _cache_lock:
        _cache[key] = (layer, cond)
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return cond


def to_sql(layer: Layer, node: Any) -> ColumnElement[bool]:
    """Translate a parsed CQL2 tree into a boolean SQL expression."""
    return _Compiler(layer_columns(layer)).cond(node)


# -- the compiler ----------------------------------------------------------------------


@dataclass(frozen=True)
class Typed:
    """A scalar SQL expression with its CQL2 kind (string, number, boolean, time, …)."""

    sql: Any
    kind: str
    literal: Any = None
    is_literal: bool = False


class _Compiler:
    def __init__(self, cols: LayerColumns):
        self.c = cols

    # conditions
    def cond(self, node: Any) -> ColumnElement[bool]:  # noqa: C901 - one branch per node type
        if isinstance(node, bool):
            return sa.true() if node else sa.false()
        if isinstance(node, ast.And):
            return sa.and_(self.cond(node.lhs), self.cond(node.rhs))
        if isinstance(node, ast.Or):
            return sa.or_(self.cond(node.lhs), self.cond(node.rhs))
        if isinstance(node, ast.Not):
            return sa.not_(self.cond(node.sub_node))
        if isinstance(node, ast.Comparison):
            return self.comparison(node)
        if isinstance(node, ast.Like):
            return self.like(node)
        if isinstance(node, ast.In):
            return self.in_(node)
        if isinstance(node, ast.Between):
            return self.between(node)
        if isinstance(node, ast.IsNull):
            e = self.expr(node.lhs)
            return e.sql.is_not(None) if node.not_ else e.sql.is_(None)
        if isinstance(node, ast.SpatialComparisonPredicate):
            return self.spatial(node)
        if isinstance(node, TemporalPredicate):
            return self.temporal(node)
        if isinstance(node, ArrayPredicate):
            raise InvalidFilter(f"A_{node.op.upper()}: array functions are not supported "
                                "(no property of this collection is an array)")
        raise InvalidFilter(f"{_describe(node)} is not a condition")

    # scalar expressions
    def expr(self, node: Any) -> Typed:  # noqa: C901
        if isinstance(node, ast.Attribute):
            return self.attribute(node.name)
        if isinstance(node, bool):
            return Typed(sa.literal(node, sa.Boolean()), "boolean", node, True)
        if isinstance(node, int | float):
            if not math.isfinite(node):
                raise InvalidFilter(f"number {node!r} is not finite")
            if isinstance(node, int) and not -(2**63) <= node < 2**63:
                raise InvalidFilter(f"integer {str(node)[:30]} is out of range (64-bit)")
            typ = sa.BigInteger() if isinstance(node, int) else sa.Float()
            return Typed(sa.literal(node, typ), "number", node, True)
        if isinstance(node, str):
            return Typed(sa.literal(node, sa.Text()), "string", node, True)
        if isinstance(node, dt.datetime):
            return Typed(sa.literal(node, sa.DateTime(timezone=True)), "time", node, True)
        if isinstance(node, dt.date):
            return Typed(sa.literal(node, sa.Date()), "time", node, True)
        if isinstance(node, values.Geometry | values.Envelope):
            return Typed(_geometry_literal(node), "geometry", node, True)
        if isinstance(node, ast.Arithmetic):
            return self.arithmetic(node)
        if isinstance(node, ast.Function):
            return self.function(node)
        if isinstance(node, TInterval):
            raise InvalidFilter("INTERVAL is only allowed in temporal functions (T_...)")
        if isinstance(node, list):
            raise InvalidFilter("arrays are only allowed in IN lists")
        raise InvalidFilter(f"unsupported CQL2 expression {_describe(node)}")

    def attribute(self, name: str) -> Typed:
        c = self.c
        if name in c.props:
            return Typed(c.props[name], c.kinds[name])
        if name in GEOMETRY_NAMES or name == c.geom.name:
            return Typed(c.geom, "geometry")
        if name == "id" or name == c.id.name:
            return Typed(c.id, "number")
        raise InvalidFilter(f"unknown property {name!r} (queryables: {c.queryables()})")

    def arithmetic(self, node: ast.Arithmetic) -> Typed:
        lhs, rhs = self.expr(node.lhs), self.expr(node.rhs)
        for side in (lhs, rhs):
            if side.kind != "number":
                raise InvalidFilter(f"arithmetic '{node.op.value}' needs numbers, got {side.kind}")
        if isinstance(node, ast.Add):
            return Typed(lhs.sql + rhs.sql, "number")
        if isinstance(node, ast.Sub):
            return Typed(lhs.sql - rhs.sql, "number")
        if isinstance(node, ast.Mul):
            return Typed(lhs.sql * rhs.sql, "number")
        if rhs.is_literal and rhs.literal == 0:
            raise InvalidFilter("division by zero")
        # CQL2 '/' is real division (PostgreSQL would truncate integers); NULLIF: no 500s
        return Typed(sa.cast(lhs.sql, sa.Float()) / func.nullif(rhs.sql, 0), "number")

    def function(self, node: ast.Function) -> Typed:
        name, args = node.name.lower(), [self.expr(a) for a in node.arguments]
        if name in ("casei", "lower", "accenti", "upper"):
            if len(args) != 1 or args[0].kind != "string":
                raise InvalidFilter(f"{name.upper()}() takes one string argument")
            fn = {"casei": func.lower, "lower": func.lower, "upper": func.upper,
                  "accenti": func.unaccent}[name]
            return Typed(fn(args[0].sql), "string")
        if name in ("mod", "div", "power"):
            if len(args) != 2 or any(a.kind != "number" for a in args):
                raise InvalidFilter(f"{name}() takes two numbers")
            if name == "power":
                return self._power(*args)
            if name == "mod":
                return Typed(func.mod(args[0].sql, func.nullif(args[1].sql, 0)), "number")
            return Typed(func.div(args[0].sql, func.nullif(args[1].sql, 0)), "number")
        raise InvalidFilter(f"unsupported function {node.name!r} "
                            "(supported: CASEI, ACCENTI, LOWER, UPPER)")

    def _power(self, a: Typed, b: Typed) -> Typed:
        """``a ^ b`` as float8. What has no real finite value (0 ^ -1, (-8) ^ 0.5, an
        overflow) is NULL, so it matches nothing instead of failing the query."""
        if a.is_literal and b.is_literal:
            try:
                v = float(a.literal) ** float(b.literal)
            except (OverflowError, ZeroDivisionError):
                v = math.nan
            if isinstance(v, complex) or not math.isfinite(v):
                return Typed(sa.null(), "number")
            return Typed(sa.literal(v, sa.Float()), "number", v, True)
        base, exp = sa.cast(a.sql, sa.Float()), sa.cast(b.sql, sa.Float())
        return Typed(sa.case(
            (base == 0, sa.case((exp > 0, 0.0), else_=sa.null())),
            (sa.and_(base < 0, exp != func.trunc(exp)), sa.null()),
            (func.abs(exp * func.ln(func.abs(base))) > 700, sa.null()),
            else_=func.power(base, exp)), "number")

    # predicates
    def _coerce(self, a: Typed, b: Typed, what: str) -> tuple[Typed, Typed]:
        """Make two operands comparable; a string literal may stand for a date/time."""
        if a.kind == b.kind and a.kind not in ("geometry",):
            return a, b
        if a.kind == "time" and b.kind == "string" and b.is_literal:
            return a, self.expr(_instant(b.literal))
        if b.kind == "time" and a.kind == "string" and a.is_literal:
            return self.expr(_instant(a.literal)), b
        # client interop: GDAL 3.6 writes a boolean as 0/1 (`bridge = 1`); only 0 and 1
        if a.kind == "boolean" and b.kind == "number" and b.is_literal and b.literal in (0, 1):
            return a, self.expr(bool(b.literal))
        if b.kind == "boolean" and a.kind == "number" and a.is_literal and a.literal in (0, 1):
            return self.expr(bool(a.literal)), b
        raise InvalidFilter(f"{what}: cannot compare {_side(a)} with {_side(b)}")

    def comparison(self, node: ast.Comparison) -> ColumnElement[bool]:
        a, b = self._coerce(self.expr(node.lhs), self.expr(node.rhs), node.op.value)
        if a.kind == "boolean" and node.op.value not in ("=", "<>"):
            raise InvalidFilter(f"booleans compare with = or <> only, not {node.op.value}")
        ops = {"=": sa.sql.operators.eq, "<>": sa.sql.operators.ne, "<": sa.sql.operators.lt,
               "<=": sa.sql.operators.le, ">": sa.sql.operators.gt, ">=": sa.sql.operators.ge}
        return ops[node.op.value](a.sql, b.sql)  # type: ignore[no-any-return]

    def like(self, node: ast.Like) -> ColumnElement[bool]:
        lhs, pat = self.expr(node.lhs), self.expr(node.pattern)
        if lhs.kind != "string" or pat.kind != "string":
            raise InvalidFilter(f"LIKE needs strings: cannot match {_side(lhs)} with {_side(pat)}")
        cond = lhs.sql.ilike(pat.sql) if node.nocase else lhs.sql.like(pat.sql)
        return sa.not_(cond) if node.not_ else cond

    def in_(self, node: ast.In) -> ColumnElement[bool]:
        lhs = self.expr(node.lhs)
        if not node.sub_nodes:
            raise InvalidFilter("IN needs at least one value")
        items = [self._coerce(lhs, self.expr(v), "IN")[1] for v in node.sub_nodes]
        if all(i.is_literal for i in items):
            cond = lhs.sql.in_([i.literal for i in items])
        else:
            cond = lhs.sql.in_([i.sql for i in items])
        return sa.not_(cond) if node.not_ else cond

    def between(self, node: ast.Between) -> ColumnElement[bool]:
        lhs = self.expr(node.lhs)
        if lhs.kind not in ("number", "time", "string"):
            raise InvalidFilter(f"BETWEEN needs numbers, dates or strings, not {_side(lhs)}")
        _, low = self._coerce(lhs, self.expr(node.low), "BETWEEN")
        _, high = self._coerce(lhs, self.expr(node.high), "BETWEEN")
        cond = lhs.sql.between(low.sql, high.sql)
        return sa.not_(cond) if node.not_ else cond

    def spatial(self, node: ast.SpatialComparisonPredicate) -> ColumnElement[bool]:
        a, b = self.expr(node.lhs), self.expr(node.rhs)
        name = f"S_{node.op.name}"
        for side in (a, b):
            if side.kind != "geometry":
                raise InvalidFilter(f"{name} needs geometries, got {_side(side)}")
        fn = {
            "INTERSECTS": func.ST_Intersects, "DISJOINT": func.ST_Disjoint,
            "CONTAINS": func.ST_Contains, "WITHIN": func.ST_Within,
            "TOUCHES": func.ST_Touches, "CROSSES": func.ST_Crosses,
            "OVERLAPS": func.ST_Overlaps, "EQUALS": func.ST_Equals,
        }[node.op.name]
        return fn(a.sql, b.sql, type_=sa.Boolean())  # type: ignore[no-any-return]

    def temporal(self, node: TemporalPredicate) -> ColumnElement[bool]:
        a_s, a_e = self._period(node.lhs, node.op)
        b_s, b_e = self._period(node.rhs, node.op)
        rel = {
            "intersects": [(a_s, "<=", b_e), (a_e, ">=", b_s)],
            "disjoint": None,
            "after": [(a_s, ">", b_e)],
            "before": [(a_e, "<", b_s)],
            "during": [(a_s, ">", b_s), (a_e, "<", b_e)],
            "contains": [(a_s, "<", b_s), (a_e, ">", b_e)],
            "equals": [(a_s, "=", b_s), (a_e, "=", b_e)],
            "meets": [(a_e, "=", b_s)],
            "metby": [(a_s, "=", b_e)],
            "overlaps": [(a_s, "<", b_s), (a_e, ">", b_s), (a_e, "<", b_e)],
            "overlappedby": [(b_s, "<", a_s), (b_e, ">", a_s), (b_e, "<", a_e)],
            "starts": [(a_s, "=", b_s), (a_e, "<", b_e)],
            "startedby": [(a_s, "=", b_s), (a_e, ">", b_e)],
            "finishes": [(a_s, ">", b_s), (a_e, "=", b_e)],
            "finishedby": [(a_s, "<", b_s), (a_e, "=", b_e)],
        }
        if node.op not in rel:
            raise InvalidFilter(f"unsupported temporal function T_{node.op.upper()}")
        if node.op == "disjoint":
            return sa.not_(sa.and_(*(_tcmp(*t) for t in rel["intersects"] or [])))
        return sa.and_(*(_tcmp(*t) for t in rel[node.op] or []))

    def _period(self, node: Any, op: str) -> tuple[_Bound, _Bound]:
        """(start, end) of an instant or an interval operand."""
        if isinstance(node, TInterval):
            return self._bound(node.start, "start", op), self._bound(node.end, "end", op)
        b = self._bound(node, None, op)
        return b, b

    def _bound(self, node: Any, side: str | None, op: str) -> _Bound:
        if node is None:
            if side is None:
                raise InvalidFilter(f"T_{op.upper()}: missing operand")
            return _Bound(None, side)
        if isinstance(node, str):
            node = _instant(node)
        t = self.expr(node)
        if t.kind != "time":
            raise InvalidFilter(f"T_{op.upper()} needs dates, timestamps or intervals, "
                                f"got {_side(t)}")
        sql = t.sql
        if side is not None and not t.is_literal:
            # an open interval end held in a property (valid_to NULL = still valid)
            inf = "'-infinity'" if side == "start" else "'infinity'"
            sql = func.coalesce(sql, sa.literal_column(f"{inf}::timestamptz"))
        return _Bound(sql, side or "instant")


@dataclass(frozen=True)
class _Bound:
    sql: Any  # None: unbounded ('..')
    side: str  # start | end | instant


def _tcmp(a: _Bound, op: str, b: _Bound) -> ColumnElement[bool]:
    """a OP b; an unbounded ('..') start is -infinity, an unbounded end +infinity.

    PostgreSQL compares the infinities itself, so an open end held in a property
    (coalesced to infinity) and a literal '..' end compare equal, as they should.
    """
    ops = {"<": sa.sql.operators.lt, "<=": sa.sql.operators.le, ">": sa.sql.operators.gt,
           ">=": sa.sql.operators.ge, "=": sa.sql.operators.eq}
    return ops[op](_bound_sql(a), _bound_sql(b))  # type: ignore[no-any-return]


def _bound_sql(b: _Bound) -> Any:
    if b.sql is not None:
        return b.sql
    return sa.literal_column("'-infinity'::timestamptz" if b.side == "start"
                             else "'infinity'::timestamptz")


def _instant(s: Any) -> dt.date | dt.datetime:
    try:
        return parse_instant(str(s))
    except InvalidFilter:
        raise InvalidFilter(f"{s!r} is not a date or timestamp") from None


def _geometry_literal(v: values.Geometry | values.Envelope) -> Any:
    """A geometry literal as bound WKB (SRID 4326), validated here rather than in SQL."""
    if isinstance(v, values.Envelope):
        box = (v.x1, v.y1, v.x2, v.y2)
        if not all(isinstance(x, int | float) and math.isfinite(x) for x in box):
            raise InvalidFilter("BBOX needs 4 finite numbers")
        if v.x1 > v.x2 or v.y1 > v.y2:
            raise InvalidFilter("BBOX: min must not exceed max (antimeridian boxes unsupported)")
        return func.ST_MakeEnvelope(*(sa.literal(float(x), sa.Float()) for x in box), SRID)
    import shapely

    gj = dict(v.geometry)
    crs = gj.pop("crs", None)
    if crs and "4326" not in str(crs) and "CRS84" not in str(crs):
        raise InvalidFilter("geometry literals must be in CRS84 / EPSG:4326")
    geom = read_geometry(gj, "geometry literal", repair=True, allow_z=True,
                         error=InvalidFilter)
    wkb = shapely.to_wkb(geom, include_srid=False)
    # geoalchemy2 compiles ST_GeomFromWKB itself and writes the integer SRID inline
    return func.ST_GeomFromWKB(sa.literal(wkb, sa.LargeBinary()), 4326)


def _side(t: Typed) -> str:
    if t.is_literal:
        return f"{t.kind} value {t.literal!r}" if t.kind != "geometry" else "a geometry"
    name = getattr(t.sql, "name", None)
    return f"{t.kind} property {name!r}" if name else f"a {t.kind} expression"


def _describe(node: Any) -> str:
    if isinstance(node, ast.Attribute):
        return f"property {node.name!r}"
    if isinstance(node, ast.Function):
        return f"function {node.name!r}"
    if isinstance(node, ast.Node):
        return type(node).__name__
    return repr(node)
