"""CQL2 text and JSON → one abstract syntax tree (pygeofilter's nodes plus a few of ours).

pygeofilter 0.4's own CQL2-text grammar lags the standard (no function-form
``T_INTERSECTS(a, b)``, no ``DATE`` or ``..`` in ``INTERVAL``, no ``''`` escapes, and it
maps ``T_INTERSECTS`` to overlaps); its JSON reader expects draft argument shapes. So
the grammar below follows OGC CQL2 1.0 (BNF of OGC 21-065r2), reusing pygeofilter's
WKT grammar and AST classes, and the JSON reader is a small walk over the standard
encoding. Both produce the same tree, which :mod:`layers.cql2` turns into SQL.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from lark import Lark, v_args
from lark.exceptions import LarkError, UnexpectedInput, VisitError
from pygeofilter import ast, values
from pygeofilter.parsers.wkt import WKTTransformer

from layers.errors import InvalidFilter

MAX_FILTER_CHARS = 20_000
MAX_DEPTH = 100
"""Deepest nesting of a filter (NOT, parentheses, functions, arithmetic): deeper trees
would exhaust the stack of the compiler that turns them into SQL."""
MAX_BIGINT = 2**63 - 1


@dataclass(frozen=True)
class TemporalPredicate:
    """``T_<op>(lhs, rhs)``; ``op`` is lower case without the prefix ("intersects")."""

    op: str
    lhs: Any
    rhs: Any


@dataclass(frozen=True)
class TInterval:
    """An interval; each end is a date/datetime, a property (Attribute) or None (``..``)."""

    start: Any
    end: Any


@dataclass(frozen=True)
class ArrayPredicate:
    op: str
    lhs: Any
    rhs: Any


SPATIAL = {
    "s_intersects": ast.GeometryIntersects,
    "s_disjoint": ast.GeometryDisjoint,
    "s_contains": ast.GeometryContains,
    "s_within": ast.GeometryWithin,
    "s_touches": ast.GeometryTouches,
    "s_crosses": ast.GeometryCrosses,
    "s_overlaps": ast.GeometryOverlaps,
    "s_equals": ast.GeometryEquals,
}
TEMPORAL = (
    "after", "before", "contains", "disjoint", "during", "equals", "finishedby", "finishes",
    "intersects", "meets", "metby", "overlappedby", "overlaps", "startedby", "starts",
)
COMPARISON = {
    "=": ast.Equal, "<>": ast.NotEqual, "<": ast.LessThan, "<=": ast.LessEqual,
    ">": ast.GreaterThan, ">=": ast.GreaterEqual,
}
ARITHMETIC = {"+": ast.Add, "-": ast.Sub, "*": ast.Mul, "/": ast.Div}

_GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr | or_expr _OR and_expr -> or_
?and_expr: not_expr | and_expr _AND not_expr -> and_
?not_expr: _NOT not_expr -> not_
         | primary
?primary: predicate | "(" or_expr ")"

?predicate: expr COMP_OP expr -> compare
    | expr _LIKE expr -> like
    | expr _NOT _LIKE expr -> not_like
    | expr _ILIKE expr -> ilike
    | expr _BETWEEN expr _AND expr -> between
    | expr _NOT _BETWEEN expr _AND expr -> not_between
    | expr _IN "(" expr ("," expr)* ")" -> in_
    | expr _NOT _IN "(" expr ("," expr)* ")" -> not_in
    | expr _IS _NULL -> is_null
    | expr _IS _NOT _NULL -> is_not_null
    | SPATIAL_FN "(" expr "," expr ")" -> spatial
    | TEMPORAL_FN "(" texpr "," texpr ")" -> temporal
    | ARRAY_FN "(" expr "," expr ")" -> array

?texpr: expr | interval
interval: _INTERVAL "(" expr "," expr ")"

?expr: sum
?sum: product | sum ADD_OP product -> arith
?product: power | product MUL_OP power -> arith
?power: unary | unary POW_OP unary -> arith
?unary: "-" unary -> neg
      | atom
?atom: attribute
     | literal
     | function
     | "(" expr ")"

function: IDENT "(" [expr ("," expr)*] ")"
attribute: IDENT | DQ_IDENT

?literal: NUMBER -> number
        | STRING -> string
        | BOOLEAN -> boolean
        | _DATE "(" STRING ")" -> date
        | _TIMESTAMP "(" STRING ")" -> timestamp
        | _BBOX "(" snum "," snum "," snum "," snum ["," snum "," snum] ")" -> bbox
        | ewkt_geometry -> geometry

?snum: NUMBER -> number
     | "-" NUMBER -> neg_number

COMP_OP: "<>" | "<=" | ">=" | "=" | "<" | ">"
ADD_OP: "+" | "-"
MUL_OP: "*" | "/" | "%" | /div\b/i
POW_OP: "^"
SPATIAL_FN.3: /S_(INTERSECTS|DISJOINT|CONTAINS|WITHIN|TOUCHES|CROSSES|OVERLAPS|EQUALS)\b/i
TEMPORAL_FN.3: /T_(AFTER|BEFORE|CONTAINS|DISJOINT|DURING|EQUALS|FINISHEDBY|FINISHES)\b/i
    | /T_(INTERSECTS|MEETS|METBY|OVERLAPPEDBY|OVERLAPS|STARTEDBY|STARTS)\b/i
ARRAY_FN.3: /A_(EQUALS|CONTAINS|CONTAINEDBY|OVERLAPS)\b/i
_OR.2: /OR\b/i
_AND.2: /AND\b/i
_NOT.2: /NOT\b/i
_LIKE.2: /LIKE\b/i
_ILIKE.2: /ILIKE\b/i
_BETWEEN.2: /BETWEEN\b/i
_IN.2: /IN\b/i
_IS.2: /IS\b/i
_NULL.2: /NULL\b/i
_INTERVAL.2: /INTERVAL\b/i
_DATE.2: /DATE\b/i
_TIMESTAMP.2: /TIMESTAMP\b/i
_BBOX.2: /BBOX\b/i
BOOLEAN.2: /(TRUE|FALSE)\b/i
IDENT: /[A-Za-z_][A-Za-z0-9_.:]*/
DQ_IDENT: /"[^"]+"/
STRING: /'(?:[^']|'')*'/
NUMBER: /(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/

%import .wkt.ewkt_geometry
%import common.WS
%ignore WS
"""


def _parse_date(s: str) -> dt.date:
    try:
        return dt.date.fromisoformat(s)
    except ValueError:
        raise InvalidFilter(f"invalid date {s!r} (expected YYYY-MM-DD)") from None


def _parse_timestamp(s: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(s.replace("z", "Z"))
    except ValueError:
        raise InvalidFilter(f"invalid timestamp {s!r} (expected RFC 3339)") from None
    if value.tzinfo is None:
        raise InvalidFilter(f"timestamp {s!r} needs a time zone (e.g. Z)")
    return value


def parse_instant(s: str) -> dt.date | dt.datetime:
    """A date (``YYYY-MM-DD``) or an RFC 3339 timestamp."""
    return _parse_date(s) if len(s) == 10 else _parse_timestamp(s)


@v_args(inline=True)
class _ToAst(WKTTransformer):
    def wkt__geometry_with_srid(self, srid: Any, geometry: dict[str, Any]) -> dict[str, Any]:
        if int(srid) != 4326:
            raise InvalidFilter(f"geometry SRID {srid}: only 4326 / CRS84 is supported")
        return geometry

    def or_(self, a: Any, b: Any) -> Any:
        return ast.Or(a, b)

    def and_(self, a: Any, b: Any) -> Any:
        return ast.And(a, b)

    def not_(self, a: Any) -> Any:
        return ast.Not(a)

    def compare(self, lhs: Any, op: Any, rhs: Any) -> Any:
        return COMPARISON[str(op)](lhs, rhs)

    def like(self, lhs: Any, pattern: Any, not_: bool = False) -> Any:
        return ast.Like(lhs, pattern, False, "%", "_", "\\", not_)

    def not_like(self, lhs: Any, pattern: Any) -> Any:
        return self.like(lhs, pattern, True)

    def ilike(self, lhs: Any, pattern: Any) -> Any:  # ECQL, sent by GDAL
        return ast.Like(lhs, pattern, True, "%", "_", "\\", False)

    def between(self, lhs: Any, low: Any, high: Any, not_: bool = False) -> Any:
        return ast.Between(lhs, low, high, not_)

    def not_between(self, lhs: Any, low: Any, high: Any) -> Any:
        return self.between(lhs, low, high, True)

    def in_(self, lhs: Any, *items: Any) -> Any:
        return ast.In(lhs, list(items), False)

    def not_in(self, lhs: Any, *items: Any) -> Any:
        return ast.In(lhs, list(items), True)

    def is_null(self, lhs: Any) -> Any:
        return ast.IsNull(lhs, False)

    def is_not_null(self, lhs: Any) -> Any:
        return ast.IsNull(lhs, True)

    def spatial(self, fn: Any, lhs: Any, rhs: Any) -> Any:
        return SPATIAL[str(fn).lower()](lhs, rhs)

    def temporal(self, fn: Any, lhs: Any, rhs: Any) -> Any:
        return TemporalPredicate(str(fn).lower()[2:], lhs, rhs)

    def array(self, fn: Any, lhs: Any, rhs: Any) -> Any:
        return ArrayPredicate(str(fn).lower()[2:], lhs, rhs)

    def interval(self, start: Any, end: Any) -> TInterval:
        return TInterval(_interval_end(start), _interval_end(end))

    def arith(self, lhs: Any, op: Any, rhs: Any) -> Any:
        name = {"%": "mod", "div": "div", "^": "power"}.get(str(op).lower())
        if name:
            return ast.Function(name, [lhs, rhs])
        return ARITHMETIC[str(op)](lhs, rhs)

    def neg(self, value: Any) -> Any:
        if isinstance(value, int | float):
            return -value
        return ast.Sub(0, value)

    def function(self, name: Any, *args: Any) -> Any:
        return ast.Function(str(name).lower(), [a for a in args if a is not None])

    def attribute(self, name: Any) -> Any:
        s = str(name)
        return ast.Attribute(s[1:-1] if s.startswith('"') else s)

    def number(self, tok: Any) -> int | float:
        s = str(tok)
        value = float(s) if any(c in s for c in ".eE") else int(s)
        return check_number(value)

    def neg_number(self, tok: Any) -> int | float:
        return -self.number(tok)

    def string(self, tok: Any) -> str:
        return str(tok)[1:-1].replace("''", "'")

    def boolean(self, tok: Any) -> bool:
        return str(tok).lower() == "true"

    def date(self, tok: Any) -> dt.date:
        return _parse_date(self.string(tok))

    def timestamp(self, tok: Any) -> dt.datetime:
        return _parse_timestamp(self.string(tok))

    def bbox(self, *nums: Any) -> values.Envelope:
        n = [x for x in nums if x is not None]
        if len(n) == 6:  # 3D box: drop the heights
            n = [n[0], n[1], n[3], n[4]]
        return values.Envelope(n[0], n[2], n[1], n[3])

    def geometry(self, geom: dict[str, Any]) -> values.Geometry:
        return values.Geometry(geom)



def check_number(value: Any) -> Any:
    """A numeric literal SQL can hold: finite, integers within bigint."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and not -MAX_BIGINT - 1 <= value <= MAX_BIGINT:
        raise InvalidFilter(f"integer {str(value)[:30]} is out of range (64-bit)")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidFilter("numbers must be finite")
    return value


def _children(node: Any) -> list[Any]:
    if isinstance(node, ast.Node):
        return list(node.get_sub_nodes())
    if isinstance(node, TemporalPredicate | ArrayPredicate):
        return [node.lhs, node.rhs]
    if isinstance(node, TInterval):
        return [node.start, node.end]
    if isinstance(node, list | tuple):
        return list(node)
    return []


def check_depth(tree: Any, limit: int = MAX_DEPTH) -> Any:
    """``tree`` when it nests at most ``limit`` levels (walked without recursion)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise InvalidFilter(f"filter nested too deeply (at most {limit} levels)")
        stack.extend((c, depth + 1) for c in _children(node))
    return tree


def _interval_end(v: Any) -> Any:
    """An INTERVAL end: '..' → None, a string → date/timestamp, else as is."""
    if isinstance(v, str):
        return None if v == ".." else parse_instant(v)
    return v


@lru_cache(maxsize=1)
def _parser() -> Lark:
    import pygeofilter.parsers as p

    return Lark(
        _GRAMMAR,
        parser="lalr",
        lexer="contextual",
        maybe_placeholders=True,
        transformer=_ToAst(),
        import_paths=[os.path.dirname(p.__file__)],
    )


def parse_text(text: str) -> Any:
    """Parse CQL2 text into the AST; :class:`InvalidFilter` says where it fails."""
    if len(text) > MAX_FILTER_CHARS:
        raise InvalidFilter(f"filter longer than {MAX_FILTER_CHARS} characters")
    if not text.strip():
        raise InvalidFilter("empty filter")
    try:
        return check_depth(_parser().parse(text))
    except InvalidFilter:
        raise
    except RecursionError:
        raise InvalidFilter(f"filter nested too deeply (at most {MAX_DEPTH} levels)") from None
    except UnexpectedInput as exc:
        near = text[max(0, exc.pos_in_stream or 0):][:30] if exc.pos_in_stream is not None else ""
        where = f" at column {exc.column}" if getattr(exc, "column", None) else ""
        raise InvalidFilter(f"cannot parse CQL2 text filter{where} near {near!r}") from None
    except VisitError as exc:
        if isinstance(exc.orig_exc, InvalidFilter):
            raise exc.orig_exc from None
        raise InvalidFilter(f"invalid CQL2 text filter: {exc.orig_exc}") from None
    except (LarkError, ValueError, TypeError, IndexError) as exc:
        raise InvalidFilter(f"invalid CQL2 text filter: {exc}") from None


# -- CQL2 JSON -----------------------------------------------------------------------


def parse_json(raw: str | bytes | dict[str, Any]) -> Any:
    """Parse CQL2 JSON (a string or an already decoded object) into the AST."""
    if isinstance(raw, str | bytes):
        if len(raw) > MAX_FILTER_CHARS:
            raise InvalidFilter(f"filter longer than {MAX_FILTER_CHARS} characters")
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidFilter(f"filter is not valid JSON: {exc}") from None
    try:
        return check_depth(_walk(raw, 0))
    except InvalidFilter:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise InvalidFilter(f"invalid CQL2 JSON filter: {exc}") from None


_JSON_OPS = {
    "and", "or", "not", "like", "between", "in", "isNull", "casei", "accenti",
    *COMPARISON, *ARITHMETIC, "%", "div", "^", *SPATIAL,
    *(f"t_{t}" for t in TEMPORAL),
    "a_equals", "a_contains", "a_containedby", "a_overlaps",
}


def _walk(node: Any, depth: int) -> Any:  # noqa: C901 - one branch per operator
    if depth > 100:
        raise InvalidFilter("filter nested too deeply")
    if node is None:
        raise InvalidFilter("null is not a CQL2 value")
    if isinstance(node, bool | int | float | str):
        return check_number(node)
    if isinstance(node, list):
        return [_walk(n, depth + 1) for n in node]
    if not isinstance(node, dict):
        raise InvalidFilter(f"unexpected JSON value {node!r}")
    if "op" in node:
        op = node["op"]
        args = node.get("args", [])
        if op not in _JSON_OPS:
            raise InvalidFilter(f"unsupported CQL2 operator {op!r}")
        if not isinstance(args, list):
            args = [args]
        a = [_walk(x, depth + 1) for x in args]
        return _json_op(op, a)
    if "property" in node:
        return ast.Attribute(str(node["property"]))
    if "type" in node and ("coordinates" in node or "geometries" in node):
        return values.Geometry(node)
    if "bbox" in node:
        b = list(node["bbox"])
        if len(b) == 6:
            b = [b[0], b[1], b[3], b[4]]
        if len(b) != 4:
            raise InvalidFilter("bbox needs 4 or 6 numbers")
        return values.Envelope(b[0], b[2], b[1], b[3])
    if "date" in node:
        return _parse_date(str(node["date"]))
    if "timestamp" in node:
        return _parse_timestamp(str(node["timestamp"]))
    if "interval" in node:
        start, end = node["interval"]
        return TInterval(_interval_end(_walk(start, depth + 1)),
                         _interval_end(_walk(end, depth + 1)))
    if "function" in node:  # draft encoding
        fn = node["function"]
        args = fn.get("args", fn.get("arguments", []))
        return ast.Function(str(fn["name"]).lower(), [_walk(x, depth + 1) for x in args])
    raise InvalidFilter(f"cannot read CQL2 JSON node {orjson.dumps(node).decode()[:80]}")


def _json_op(op: str, a: list[Any]) -> Any:  # noqa: C901
    def need(n: int) -> None:
        if len(a) != n:
            raise InvalidFilter(f"operator {op!r} takes {n} arguments, got {len(a)}")

    if op in ("and", "or"):
        if len(a) < 2:
            raise InvalidFilter(f"operator {op!r} takes at least 2 arguments")
        cls = ast.And if op == "and" else ast.Or
        out = a[0]
        for x in a[1:]:
            out = cls(out, x)
        return out
    if op == "not":
        need(1)
        return ast.Not(a[0])
    if op == "isNull":
        need(1)
        return ast.IsNull(a[0], False)
    if op == "like":
        need(2)
        return ast.Like(a[0], a[1], False, "%", "_", "\\", False)
    if op == "between":
        if len(a) == 2 and isinstance(a[1], list):  # draft: [x, [low, high]]
            a = [a[0], *a[1]]
        need(3)
        return ast.Between(a[0], a[1], a[2], False)
    if op == "in":
        need(2)
        if not isinstance(a[1], list):
            raise InvalidFilter("'in' needs a list as its second argument")
        return ast.In(a[0], a[1], False)
    if op in ("casei", "accenti"):
        need(1)
        return ast.Function(op, [a[0]])
    if op in COMPARISON:
        need(2)
        return COMPARISON[op](a[0], a[1])
    if op in ARITHMETIC:
        need(2)
        return ARITHMETIC[op](a[0], a[1])
    if op in ("%", "div", "^"):
        need(2)
        return ast.Function({"%": "mod", "div": "div", "^": "power"}[op], [a[0], a[1]])
    if op in SPATIAL:
        need(2)
        return SPATIAL[op](a[0], a[1])
    if op.startswith("t_"):
        need(2)
        return TemporalPredicate(op[2:], a[0], a[1])
    need(2)
    return ArrayPredicate(op[2:], a[0], a[1])
