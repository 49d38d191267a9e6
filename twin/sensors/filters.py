"""Compile an OData ``$filter`` / ``$orderby`` tree (``twin.sensors.odata``) on one
entity set into SQLAlchemy Core expressions, rendered into the SensorThings statements
with every value a bound parameter (:class:`Binder`); property names map to the fixed
SQL of :mod:`twin.sensors.entities`.

Paths through to-one relations become scalar subqueries; a path through a to-many
relation (``Things?$filter=Datastreams/name eq 'x'``) makes its comparison an
``EXISTS`` (any related entity matches). ``geo.distance`` and ``geo.length`` are in
metres (on the geography); the geometry tests work on EPSG:4326 coordinates. A time
interval (``phenomenonTime`` of a Datastream) is a pair of expressions, a result a
number with its JSON beside it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import ColumnElement

from twin.errors import InputError
from twin.sensors.entities import ENTITIES, Entity, Prop
from twin.sensors.odata import COMPARISONS, Bin, Call, Lit, Neg, Node, Not, Path

_OPS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_ARITH = {"add": "+", "sub": "-", "mul": "*"}
_ST = {"geo.intersects": "ST_Intersects", "st_equals": "ST_Equals",
       "st_disjoint": "ST_Disjoint", "st_touches": "ST_Touches", "st_within": "ST_Within",
       "st_overlaps": "ST_Overlaps", "st_crosses": "ST_Crosses",
       "st_intersects": "ST_Intersects", "st_contains": "ST_Contains"}
_PARTS = {"year": "year", "month": "month", "day": "day", "hour": "hour", "minute": "minute",
          "second": "second"}
#: renders Core into the ``:name`` text the statements are assembled from (no bind casts)
_DIALECT = postgresql.dialect(paramstyle="named")
_FLOAT: Any = postgresql.DOUBLE_PRECISION()
_TIME = sa.DateTime(timezone=True)
_EMPTY_PATH: Any = sa.literal_column("'{}'")
_TRUE_JSON: Any = sa.literal_column("'true'::jsonb")
_ZERO: Any = sa.literal_column("0")
_ONE: Any = sa.literal_column("1")


@dataclass(frozen=True)
class T:
    """A typed expression: ``type`` is num | str | bool | time | geom | json | result |
    interval | null; an interval's end is ``end``, a result's JSON value ``json``."""

    sql: Any
    type: str
    end: Any = None
    json: Any = None


def _col(sql: str) -> Any:
    return sa.literal_column(sql)


class Binder:
    """Bound parameters and fresh table aliases for one SQL statement."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self._n = 0

    def _name(self) -> str:
        self._n += 1
        return f"p{self._n}"

    def param(self, value: Any) -> Any:
        """A bound parameter holding ``value``, for a Core expression."""
        name = self._name()
        self.params[name] = value
        return sa.bindparam(name, value)

    def bind(self, value: Any) -> str:
        """A bound parameter holding ``value``, as ``:name`` for statement text."""
        name = self._name()
        self.params[name] = value
        return ":" + name

    def alias(self) -> str:
        self._n += 1
        return f"a{self._n}"

    def render(self, expr: Any) -> str:
        """The SQL text of a Core expression, its values bound under this binder's names."""
        compiled = expr.compile(dialect=_DIALECT)
        sql = str(compiled)
        for key, value in compiled.params.items():
            if key in self.params:
                continue
            fresh = self._name()  # a parameter Core named itself: give it a unique name
            sql = re.sub(rf":{re.escape(key)}\b", ":" + fresh, sql)
            self.params[fresh] = value
        return sql


class Compiler:
    def __init__(self, b: Binder, ent: Entity, alias: str, anonymous: bool):
        self.b, self.ent, self.alias, self.anon = b, ent, alias, anonymous
        self._over: dict[int, T] = {}

    # -- entry points -------------------------------------------------------------------
    def where(self, node: Node) -> str:
        return self.b.render(self.condition(node))

    def order(self, node: Node) -> str:
        t = self.expr(node)
        if t.type == "geom":
            raise InputError("$orderby: cannot order by a geometry")
        return self.b.render(t.sql)

    def condition(self, node: Node) -> ColumnElement[bool]:
        """The ``$filter`` as a Core boolean expression."""
        return self._bool(node)

    # -- boolean structure ---------------------------------------------------------------
    def _bool(self, node: Node) -> Any:
        if isinstance(node, Bin) and node.op in ("and", "or"):
            join = sa.and_ if node.op == "and" else sa.or_
            return join(self._bool(node.left), self._bool(node.right)).self_group()
        if isinstance(node, Not):
            return sa.not_(func.coalesce(self._bool(node.expr), sa.false())).self_group()
        return self._leaf(node)

    def _leaf(self, node: Node) -> Any:
        many = self._find_many(node)
        if many is None:
            return self._as_bool(self.expr(node))
        chain: list[tuple[str, str, str]] = []
        ent, alias = self.ent, self.alias
        segs = list(many.segments)
        while segs and self._prop_key(ent, segs) is None:
            rel = ent.rels.get(segs[0])
            if rel is None:
                raise InputError(f"$filter: {ent.single} has no property {segs[0]!r}")
            target = ENTITIES[rel.target]
            inner = self.b.alias()
            cond = rel.cond.format(o=alias, i=inner)
            if self.anon and target.public:
                cond += " AND " + target.public.format(a=inner)
            chain.append((target.table, inner, cond))
            ent, alias = target, inner
            segs.pop(0)
        self._over[id(many)] = self._path(tuple(segs), ent, alias)
        try:
            body = self._as_bool(self.expr(node))
        finally:
            del self._over[id(many)]
        for table, inner, cond in reversed(chain):
            body = sa.exists(sa.select(_ONE).select_from(sa.text(f"{table} {inner}"))
                             .where(sa.text(cond), body))
        return body

    def _find_many(self, node: Node) -> Path | None:
        if isinstance(node, Path):
            ent = self.ent
            for seg in node.segments:
                if self._prop_key(ent, [seg]) is not None or seg not in ent.rels:
                    return None
                rel = ent.rels[seg]
                if rel.many:
                    return node
                ent = ENTITIES[rel.target]
            return None
        kids: tuple[Node, ...] = ()
        if isinstance(node, Bin) and node.op not in ("and", "or"):
            kids = (node.left, node.right)
        elif isinstance(node, Call):
            kids = node.args
        elif isinstance(node, Neg):
            kids = (node.expr,)
        for k in kids:
            found = self._find_many(k)
            if found is not None:
                return found
        return None

    # -- expressions --------------------------------------------------------------------
    def expr(self, node: Node) -> T:
        if isinstance(node, Lit):
            return self._lit(node)
        if isinstance(node, Path):
            if id(node) in self._over:
                return self._over[id(node)]
            return self._path(node.segments, self.ent, self.alias)
        if isinstance(node, Neg):
            return T((-self._num(node.expr)).self_group(), "num")
        if isinstance(node, Not) or (isinstance(node, Bin) and node.op in ("and", "or")):
            return T(self._bool(node), "bool")
        if isinstance(node, Bin) and node.op in COMPARISONS:
            return T(self._compare(node), "bool")
        if isinstance(node, Bin):
            left, right = self._num(node.left), self._num(node.right)
            if node.op == "div":
                return T(sa.cast(left, _FLOAT).op("/")(
                    func.nullif(sa.cast(right, _FLOAT), _ZERO)).self_group(), "num")
            if node.op == "mod":
                return T(func.mod(sa.cast(left, sa.Numeric()),
                                  func.nullif(sa.cast(right, sa.Numeric()), _ZERO)), "num")
            return T(left.op(_ARITH[node.op])(right).self_group(), "num")
        if isinstance(node, Call):
            return self._call(node)
        raise InputError("$filter: unsupported expression")

    def _lit(self, lit: Lit) -> T:
        if lit.type == "null":
            return T(sa.null(), "null")
        if lit.type == "geom":
            return T(func.ST_GeomFromText(self.b.param(lit.value), _col("4326")), "geom")
        if lit.type == "str":
            return T(sa.cast(self.b.param(lit.value), sa.Text()), "str")
        if lit.type == "time":
            return T(sa.cast(self.b.param(lit.value), _TIME), "time")
        if lit.type == "bool":
            return T(sa.true() if lit.value else sa.false(), "bool")
        if isinstance(lit.value, float):
            return T(sa.cast(self.b.param(lit.value), _FLOAT), "num")
        return T(self.b.param(lit.value), "num")

    @staticmethod
    def _prop_key(ent: Entity, segs: list[str] | tuple[str, ...]) -> str | None:
        if len(segs) >= 2 and f"{segs[0]}/{segs[1]}" in ent.props:
            return f"{segs[0]}/{segs[1]}"
        return segs[0] if segs and segs[0] in ent.props else None

    def _path(self, segs: tuple[str, ...], ent: Entity, alias: str) -> T:
        if not segs:
            raise InputError(f"$filter: a path must end in a property of {ent.single}")
        key = self._prop_key(ent, segs)
        if key is not None:
            prop: Prop = ent.props[key]
            rest = segs[len(key.split("/")):]
            sql = prop.sql.format(a=alias)
            if prop.type == "interval":
                end = prop.end_sql.format(a=alias) if prop.end_sql else sql
                return T(_col(sql), "interval", end=_col(end))
            if prop.type == "result":
                return T(_col(sql), "result", json=_col(sql + "_json"))
            expr = _col(sql)
            if rest:
                if prop.type != "json":
                    raise InputError(f"$filter: {ent.single}/{key} has no sub-properties")
                for seg in rest:
                    expr = expr.op("->")(self.b.param(seg)).self_group()
            return T(expr, prop.type)
        rel = ent.rels.get(segs[0])
        if rel is None:
            known = ", ".join([*ent.props, *ent.rels])
            raise InputError(f"$filter: {ent.single} has no property {segs[0]!r} "
                             f"(known: {known})")
        if rel.many:
            raise InputError(f"$filter: {segs[0]} is a collection; compare one of its "
                             "properties (any match), e.g. Datastreams/name eq '…'")
        target = ENTITIES[rel.target]
        inner = self.b.alias()
        t = self._path(segs[1:], target, inner)
        if t.type == "interval":
            raise InputError("$filter: compare an interval of the entity itself")
        source = sa.text(f"{target.table} {inner}")
        cond = sa.text(rel.cond.format(o=alias, i=inner))

        def one(e: Any) -> Any:
            return sa.select(e).select_from(source).where(cond).scalar_subquery()

        return T(one(t.sql), t.type, json=one(t.json) if t.json is not None else None)

    # -- coercions ------------------------------------------------------------------------
    def _num(self, node: Node) -> Any:
        return self._to_num(self.expr(node), node)

    def _to_num(self, t: T, node: Node) -> Any:
        if t.type in ("num", "result", "null"):
            return t.sql
        if t.type == "json":
            return sa.case((func.jsonb_typeof(t.sql).op("=")(_col("'number'")),
                            sa.cast(t.sql.op("#>>")(_EMPTY_PATH), _FLOAT)))
        raise InputError(f"$filter: {_show(node)} is {_TYPE_NAMES.get(t.type, t.type)}, "
                         "not a number")

    def _text(self, node: Node) -> Any:
        t = self.expr(node)
        if t.type == "str":
            return t.sql
        if t.type == "json":
            return t.sql.op("#>>")(_EMPTY_PATH).self_group()
        if t.type == "result":
            return func.coalesce(t.json.op("#>>")(_EMPTY_PATH), sa.cast(t.sql, sa.Text()))
        if t.type == "null":
            return sa.cast(sa.null(), sa.Text())
        raise InputError(f"$filter: {_show(node)} is {_TYPE_NAMES.get(t.type, t.type)}, "
                         "not text")

    def _time(self, node: Node) -> Any:
        if isinstance(node, Lit) and node.type == "str":
            from twin.sensors.values import parse_time

            return sa.cast(self.b.param(parse_time(node.value, "$filter time")), _TIME)
        t = self.expr(node)
        if t.type in ("time", "null"):
            return t.sql
        raise InputError(f"$filter: {_show(node)} is {_TYPE_NAMES.get(t.type, t.type)}, "
                         "not a time")

    def _geom(self, node: Node) -> Any:
        t = self.expr(node)
        if t.type == "geom":
            return t.sql
        raise InputError(f"$filter: {_show(node)} is not a geometry (use location, feature, "
                         "observedArea or a geography'POINT(lon lat)' literal)")

    def _as_bool(self, t: T) -> Any:
        if t.type == "bool":
            return t.sql
        if t.type == "json":
            return t.sql.op("=")(_TRUE_JSON).self_group()
        if t.type == "result":
            return t.json.op("=")(_TRUE_JSON).self_group()
        raise InputError("$filter: the expression is not a condition (true/false)")

    # -- comparisons ------------------------------------------------------------------------
    def _compare(self, node: Bin) -> Any:  # noqa: C901 - one branch per type pair
        op, l_node, r_node = node.op, node.left, node.right
        lt = self._peek_type(l_node)
        rt = self._peek_type(r_node)
        if "null" in (lt, rt):
            other = r_node if lt == "null" else l_node
            if op not in ("eq", "ne"):
                raise InputError("$filter: only eq and ne compare with null")
            t = self.expr(other)
            if t.type == "result":
                both = sa.and_(t.sql.is_(None), t.json.is_(None)).self_group()
                return sa.not_(both).self_group() if op == "ne" else both
            return (t.sql.is_not(None) if op == "ne" else t.sql.is_(None)).self_group()
        if "interval" in (lt, rt):
            return self._interval_cmp(op, l_node, r_node, lt == "interval")
        sym = _OPS[op]
        if "time" in (lt, rt):
            return self._time(l_node).op(sym)(self._time(r_node)).self_group()
        if "geom" in (lt, rt):
            if op not in ("eq", "ne"):
                raise InputError("$filter: geometries compare only with eq/ne; use "
                                 "geo.intersects or geo.distance")
            eq = func.ST_Equals(self._geom(l_node), self._geom(r_node))
            return eq if op == "eq" else sa.not_(eq).self_group()
        if "json" in (lt, rt) and ({lt, rt} - {"json"}) <= {"str", "num", "bool", "json"}:
            return self._json_cmp(sym, l_node, r_node, lt, rt)
        if "num" in (lt, rt):
            return self._num(l_node).op(sym)(self._num(r_node)).self_group()
        if "str" in (lt, rt):
            return self._text(l_node).op(sym)(self._text(r_node)).self_group()
        if "bool" in (lt, rt):
            left, right = self._as_bool(self.expr(l_node)), self._as_bool(self.expr(r_node))
            return left.op(sym)(right).self_group()
        raise InputError(f"$filter: cannot compare {_show(l_node)} with {_show(r_node)}")

    def _json_cmp(self, sym: str, l_node: Node, r_node: Node, lt: str, rt: str) -> Any:
        def side(node: Node, typ: str) -> Any:
            e = self.expr(node).sql
            cast = {"str": sa.Text(), "num": _FLOAT, "bool": sa.Boolean()}.get(typ)
            return func.to_jsonb(sa.cast(e, cast)) if cast is not None else e

        return side(l_node, lt).op(sym)(side(r_node, rt)).self_group()

    def _interval_cmp(self, op: str, l_node: Node, r_node: Node, left_is: bool) -> Any:
        iv_node, other = (l_node, r_node) if left_is else (r_node, l_node)
        iv = self.expr(iv_node)
        start, end = iv.sql, iv.end
        t = self._time(other)
        if not left_is:  # X op interval → interval (mirrored op) X
            op = {"gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}.get(op, op)
        if op in ("eq", "ne"):
            same = sa.and_(start.op("=")(t), end.op("=")(t)).self_group()
            return same if op == "eq" else sa.not_(same).self_group()
        if op in ("gt", "ge"):
            return start.op(_OPS[op])(t).self_group()
        return end.op(_OPS[op])(t).self_group()

    def _peek_type(self, node: Node) -> str:
        if isinstance(node, Lit):
            return node.type
        b = self.b
        saved = (dict(b.params), b._n)  # noqa: SLF001
        try:
            return self.expr(node).type
        finally:
            b.params, b._n = saved  # noqa: SLF001

    # -- functions ----------------------------------------------------------------------------
    def _call(self, c: Call) -> T:  # noqa: C901, PLR0911, PLR0912 - one branch per function
        n, a = c.name, c.args
        if n in ("substringof", "contains"):
            hay, needle = (a[1], a[0]) if n == "substringof" else (a[0], a[1])
            found = func.strpos(self._text(hay), self._text(needle))
            return T(found.op(">")(_ZERO).self_group(), "bool")
        if n == "startswith":
            return T(func.starts_with(self._text(a[0]), self._text(a[1])), "bool")
        if n == "endswith":
            s, suf = self._text(a[0]), self._text(a[1])
            return T(func.right(s, func.char_length(suf)).op("=")(suf).self_group(), "bool")
        if n == "length":
            return T(func.char_length(self._text(a[0])), "num")
        if n == "indexof":
            pos = func.strpos(self._text(a[0]), self._text(a[1]))
            return T(pos.op("-")(_ONE).self_group(), "num")
        if n == "substring":
            s = self._text(a[0])
            start = sa.cast(self._num(a[1]), sa.Integer()).op("+")(_ONE)
            if len(a) == 3:
                return T(func.substr(s, start, sa.cast(self._num(a[2]), sa.Integer())), "str")
            return T(func.substr(s, start), "str")
        if n in ("tolower", "toupper", "trim"):
            fn = {"tolower": func.lower, "toupper": func.upper, "trim": func.btrim}[n]
            return T(fn(self._text(a[0])), "str")
        if n == "concat":
            return T(self._text(a[0]).op("||")(self._text(a[1])).self_group(), "str")
        if n in _PARTS:
            t = self._time(a[0])
            return T(func.floor(sa.extract(_PARTS[n], func.timezone(_col("'UTC'"), t))), "num")
        if n == "now":
            return T(sa.cast(self.b.param(dt.datetime.now(dt.UTC)), _TIME), "time")
        if n in ("mindatetime", "maxdatetime"):
            return T(_col("'-infinity'::timestamptz" if n == "mindatetime"
                          else "'infinity'::timestamptz"), "time")
        if n in ("round", "floor", "ceiling"):
            fn = {"round": func.round, "floor": func.floor, "ceiling": func.ceil}[n]
            return T(fn(sa.cast(self._num(a[0]), _FLOAT)), "num")
        if n == "geo.distance":
            return T(func.ST_Distance(func.geography(self._geom(a[0])),
                                      func.geography(self._geom(a[1]))), "num")
        if n == "geo.length":
            return T(func.ST_Length(func.geography(self._geom(a[0]))), "num")
        if n in _ST:
            return T(getattr(func, _ST[n])(self._geom(a[0]), self._geom(a[1])), "bool")
        if n == "st_relate":
            return T(func.ST_Relate(self._geom(a[0]), self._geom(a[1]), self._text(a[2])),
                     "bool")
        raise InputError(f"$filter: function {n} is not supported")


_TYPE_NAMES = {"str": "text", "num": "a number", "time": "a time", "geom": "a geometry",
               "bool": "a boolean", "json": "a JSON value", "interval": "a time interval",
               "result": "a result"}


def _show(node: Node) -> str:
    if isinstance(node, Path):
        return "/".join(node.segments)
    if isinstance(node, Lit):
        return repr(node.value)
    if isinstance(node, Call):
        return f"{node.name}(…)"
    return "the expression"
