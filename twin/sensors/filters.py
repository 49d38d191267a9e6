"""Compile an OData ``$filter`` / ``$orderby`` tree (``twin.sensors.odata``) to SQL on one
entity set. Every value is a bound parameter; property names map to fixed SQL.

Paths through to-one relations become scalar subqueries; a path through a to-many
relation (``Things?$filter=Datastreams/name eq 'x'``) makes its comparison an
``EXISTS`` (any related entity matches). ``geo.distance`` and ``geo.length`` are in
metres (on the geography); the geometry tests work on EPSG:4326 coordinates.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from twin.errors import InputError
from twin.sensors.entities import ENTITIES, Entity, Prop
from twin.sensors.odata import COMPARISONS, Bin, Call, Lit, Neg, Node, Not, Path

_OPS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_ARITH = {"add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%"}
_ST = {"geo.intersects": "ST_Intersects", "st_equals": "ST_Equals",
       "st_disjoint": "ST_Disjoint", "st_touches": "ST_Touches", "st_within": "ST_Within",
       "st_overlaps": "ST_Overlaps", "st_crosses": "ST_Crosses",
       "st_intersects": "ST_Intersects", "st_contains": "ST_Contains"}
_PARTS = {"year": "year", "month": "month", "day": "day", "hour": "hour", "minute": "minute",
          "second": "second"}
Typed = tuple[str, str]  # (sql, type)


class Binder:
    """Bound parameters and fresh table aliases for one SQL statement."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self._n = 0

    def bind(self, value: Any) -> str:
        self._n += 1
        name = f"p{self._n}"
        self.params[name] = value
        return ":" + name

    def alias(self) -> str:
        self._n += 1
        return f"a{self._n}"


class Compiler:
    def __init__(self, b: Binder, ent: Entity, alias: str, anonymous: bool):
        self.b, self.ent, self.alias, self.anon = b, ent, alias, anonymous
        self._over: dict[int, Typed] = {}

    # -- entry points -------------------------------------------------------------------
    def where(self, node: Node) -> str:
        return self._bool(node)

    def order(self, node: Node) -> str:
        sql, typ = self.expr(node)
        if typ == "interval":
            return sql.split("|")[0]
        if typ == "geom":
            raise InputError("$orderby: cannot order by a geometry")
        return sql

    # -- boolean structure ---------------------------------------------------------------
    def _bool(self, node: Node) -> str:
        if isinstance(node, Bin) and node.op in ("and", "or"):
            return f"({self._bool(node.left)} {node.op.upper()} {self._bool(node.right)})"
        if isinstance(node, Not):
            return f"(NOT COALESCE({self._bool(node.expr)}, false))"
        return self._leaf(node)

    def _leaf(self, node: Node) -> str:
        many = self._find_many(node)
        if many is None:
            return self._as_bool(*self.expr(node))
        chain, ent, alias = [], self.ent, self.alias
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
            chain.append(f"EXISTS (SELECT 1 FROM {target.table} {inner} WHERE {cond} AND ")
            ent, alias = target, inner
            segs.pop(0)
        self._over[id(many)] = self._path(tuple(segs), ent, alias)
        try:
            body = self._as_bool(*self.expr(node))
        finally:
            del self._over[id(many)]
        return "".join(chain) + body + ")" * len(chain)

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
    def expr(self, node: Node) -> Typed:
        if isinstance(node, Lit):
            return self._lit(node)
        if isinstance(node, Path):
            if id(node) in self._over:
                return self._over[id(node)]
            return self._path(node.segments, self.ent, self.alias)
        if isinstance(node, Neg):
            return f"(-{self._num(node.expr)})", "num"
        if isinstance(node, Not) or (isinstance(node, Bin) and node.op in ("and", "or")):
            return self._bool(node), "bool"
        if isinstance(node, Bin) and node.op in COMPARISONS:
            return self._compare(node), "bool"
        if isinstance(node, Bin):
            left, right = self._num(node.left), self._num(node.right)
            if node.op == "div":
                return f"(CAST({left} AS float8) / NULLIF(CAST({right} AS float8), 0))", "num"
            if node.op == "mod":
                return (f"mod(CAST({left} AS numeric), NULLIF(CAST({right} AS numeric), 0))",
                        "num")
            return f"({left} {_ARITH[node.op]} {right})", "num"
        if isinstance(node, Call):
            return self._call(node)
        raise InputError("$filter: unsupported expression")

    def _lit(self, lit: Lit) -> Typed:
        if lit.type == "null":
            return "NULL", "null"
        if lit.type == "geom":
            return f"ST_GeomFromText({self.b.bind(lit.value)}, 4326)", "geom"
        if lit.type == "str":
            return f"CAST({self.b.bind(lit.value)} AS text)", "str"
        if lit.type == "time":
            return f"CAST({self.b.bind(lit.value)} AS timestamptz)", "time"
        if lit.type == "bool":
            return ("true" if lit.value else "false"), "bool"
        if isinstance(lit.value, float):
            return f"CAST({self.b.bind(lit.value)} AS float8)", "num"
        return self.b.bind(lit.value), "num"

    @staticmethod
    def _prop_key(ent: Entity, segs: list[str] | tuple[str, ...]) -> str | None:
        if len(segs) >= 2 and f"{segs[0]}/{segs[1]}" in ent.props:
            return f"{segs[0]}/{segs[1]}"
        return segs[0] if segs and segs[0] in ent.props else None

    def _path(self, segs: tuple[str, ...], ent: Entity, alias: str) -> Typed:
        if not segs:
            raise InputError(f"$filter: a path must end in a property of {ent.single}")
        key = self._prop_key(ent, segs)
        if key is not None:
            prop: Prop = ent.props[key]
            rest = segs[len(key.split("/")):]
            sql = prop.sql.format(a=alias)
            if prop.type == "interval":
                return f"{sql}|{prop.end_sql.format(a=alias) if prop.end_sql else sql}", "interval"
            if rest:
                if prop.type != "json":
                    raise InputError(f"$filter: {ent.single}/{key} has no sub-properties")
                for s in rest:
                    sql = f"({sql} -> {self.b.bind(s)})"
            return sql, prop.type
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
        sql, typ = self._path(segs[1:], target, inner)
        if typ == "interval":
            raise InputError("$filter: compare an interval of the entity itself")
        return (f"(SELECT {sql} FROM {target.table} {inner} WHERE "
                f"{rel.cond.format(o=alias, i=inner)})"), typ

    # -- coercions ------------------------------------------------------------------------
    def _num(self, node: Node) -> str:
        sql, typ = self.expr(node)
        return self._to_num(sql, typ, node)

    def _to_num(self, sql: str, typ: str, node: Node) -> str:
        if typ in ("num", "result", "null"):
            return sql
        if typ == "json":
            return (f"(CASE WHEN jsonb_typeof({sql}) = 'number' THEN CAST({sql} #>> '{{}}' "
                    "AS float8) END)")
        raise InputError(f"$filter: {_show(node)} is {_TYPE_NAMES.get(typ, typ)}, "
                         "not a number")

    def _text(self, node: Node) -> str:
        sql, typ = self.expr(node)
        if typ == "str":
            return sql
        if typ == "json":
            return f"({sql} #>> '{{}}')"
        if typ == "result":
            return f"COALESCE({sql}_json #>> '{{}}', CAST({sql} AS text))"
        if typ == "null":
            return "CAST(NULL AS text)"
        raise InputError(f"$filter: {_show(node)} is {_TYPE_NAMES.get(typ, typ)}, not text")

    def _time(self, node: Node) -> str:
        if isinstance(node, Lit) and node.type == "str":
            from twin.sensors.values import parse_time

            return f"CAST({self.b.bind(parse_time(node.value, '$filter time'))} AS timestamptz)"
        sql, typ = self.expr(node)
        if typ in ("time", "null"):
            return sql
        raise InputError(f"$filter: {_show(node)} is {_TYPE_NAMES.get(typ, typ)}, not a time")

    def _geom(self, node: Node) -> str:
        sql, typ = self.expr(node)
        if typ == "geom":
            return sql
        raise InputError(f"$filter: {_show(node)} is not a geometry (use location, feature, "
                         "observedArea or a geography'POINT(lon lat)' literal)")

    def _as_bool(self, sql: str, typ: str) -> str:
        if typ == "bool":
            return sql
        if typ == "json":
            return f"({sql} = 'true'::jsonb)"
        if typ == "result":
            return f"({sql}_json = 'true'::jsonb)"
        raise InputError("$filter: the expression is not a condition (true/false)")

    # -- comparisons ------------------------------------------------------------------------
    def _compare(self, node: Bin) -> str:
        op, l_node, r_node = node.op, node.left, node.right
        lt = self._peek_type(l_node)
        rt = self._peek_type(r_node)
        if "null" in (lt, rt):
            other = r_node if lt == "null" else l_node
            if op not in ("eq", "ne"):
                raise InputError("$filter: only eq and ne compare with null")
            sql, typ = self.expr(other)
            neg = "NOT " if op == "ne" else ""
            if typ == "result":
                return f"({neg}({sql} IS NULL AND {sql}_json IS NULL))"
            if typ == "interval":
                sql = sql.split("|")[0]
            return f"({sql} IS {'NOT ' if op == 'ne' else ''}NULL)"
        if "interval" in (lt, rt):
            return self._interval_cmp(op, l_node, r_node, lt == "interval")
        sym = _OPS[op]
        if "time" in (lt, rt):
            return f"({self._time(l_node)} {sym} {self._time(r_node)})"
        if "geom" in (lt, rt):
            if op not in ("eq", "ne"):
                raise InputError("$filter: geometries compare only with eq/ne; use "
                                 "geo.intersects or geo.distance")
            eq = f"ST_Equals({self._geom(l_node)}, {self._geom(r_node)})"
            return eq if op == "eq" else f"(NOT {eq})"
        if "json" in (lt, rt) and ({lt, rt} - {"json"}) <= {"str", "num", "bool", "json"}:
            return self._json_cmp(sym, l_node, r_node, lt, rt)
        if "num" in (lt, rt):
            return f"({self._num(l_node)} {sym} {self._num(r_node)})"
        if "str" in (lt, rt):
            return f"({self._text(l_node)} {sym} {self._text(r_node)})"
        if "bool" in (lt, rt):
            left, right = self._as_bool(*self.expr(l_node)), self._as_bool(*self.expr(r_node))
            return f"({left} {sym} {right})"
        raise InputError(f"$filter: cannot compare {_show(l_node)} with {_show(r_node)}")

    def _json_cmp(self, sym: str, l_node: Node, r_node: Node, lt: str, rt: str) -> str:
        def side(node: Node, typ: str) -> str:
            sql, _ = self.expr(node)
            cast = {"str": "text", "num": "float8", "bool": "boolean"}.get(typ)
            return f"to_jsonb(CAST({sql} AS {cast}))" if cast else sql

        return f"({side(l_node, lt)} {sym} {side(r_node, rt)})"

    def _interval_cmp(self, op: str, l_node: Node, r_node: Node, left_is: bool) -> str:
        iv_node, other = (l_node, r_node) if left_is else (r_node, l_node)
        start, end = self.expr(iv_node)[0].split("|")
        t = self._time(other)
        if not left_is:  # X op interval → interval (mirrored op) X
            op = {"gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}.get(op, op)
        if op == "eq":
            return f"({start} = {t} AND {end} = {t})"
        if op == "ne":
            return f"NOT ({start} = {t} AND {end} = {t})"
        if op in ("gt", "ge"):
            return f"({start} {_OPS[op]} {t})"
        return f"({end} {_OPS[op]} {t})"

    def _peek_type(self, node: Node) -> str:
        if isinstance(node, Lit):
            return node.type
        b = self.b
        saved = (dict(b.params), b._n)
        try:
            return self.expr(node)[1]
        finally:
            b.params, b._n = saved

    # -- functions ----------------------------------------------------------------------------
    def _call(self, c: Call) -> Typed:
        n, a = c.name, c.args
        if n in ("substringof", "contains"):
            hay, needle = (a[1], a[0]) if n == "substringof" else (a[0], a[1])
            return f"(strpos({self._text(hay)}, {self._text(needle)}) > 0)", "bool"
        if n == "startswith":
            return f"starts_with({self._text(a[0])}, {self._text(a[1])})", "bool"
        if n == "endswith":
            s, suf = self._text(a[0]), self._text(a[1])
            return f"(right({s}, char_length({suf})) = {suf})", "bool"
        if n == "length":
            return f"char_length({self._text(a[0])})", "num"
        if n == "indexof":
            return f"(strpos({self._text(a[0])}, {self._text(a[1])}) - 1)", "num"
        if n == "substring":
            s, start = self._text(a[0]), self._num(a[1])
            if len(a) == 3:
                n_ = self._num(a[2])
                return f"substr({s}, CAST({start} AS int) + 1, CAST({n_} AS int))", "str"
            return f"substr({s}, CAST({start} AS int) + 1)", "str"
        if n in ("tolower", "toupper", "trim"):
            fn = {"tolower": "lower", "toupper": "upper", "trim": "btrim"}[n]
            return f"{fn}({self._text(a[0])})", "str"
        if n == "concat":
            return f"({self._text(a[0])} || {self._text(a[1])})", "str"
        if n in _PARTS:
            t = self._time(a[0])
            return f"floor(extract({_PARTS[n]} FROM ({t} AT TIME ZONE 'UTC')))", "num"
        if n == "now":
            return f"CAST({self.b.bind(dt.datetime.now(dt.UTC))} AS timestamptz)", "time"
        if n in ("mindatetime", "maxdatetime"):
            return ("'-infinity'::timestamptz" if n == "mindatetime"
                    else "'infinity'::timestamptz"), "time"
        if n in ("round", "floor", "ceiling"):
            fn = {"round": "round", "floor": "floor", "ceiling": "ceil"}[n]
            return f"{fn}(CAST({self._num(a[0])} AS float8))", "num"
        if n == "geo.distance":
            return (f"ST_Distance(geography({self._geom(a[0])}), "
                    f"geography({self._geom(a[1])}))"), "num"
        if n == "geo.length":
            return f"ST_Length(geography({self._geom(a[0])}))", "num"
        if n in _ST:
            return f"{_ST[n]}({self._geom(a[0])}, {self._geom(a[1])})", "bool"
        if n == "st_relate":
            return (f"ST_Relate({self._geom(a[0])}, {self._geom(a[1])}, "
                    f"{self._text(a[2])})"), "bool"
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
