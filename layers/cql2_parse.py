"""CQL2 text and JSON → one abstract syntax tree (pygeofilter's nodes plus a few of ours).

CQL2 text is parsed by the ``cql2`` package (a maintained parser of OGC CQL2 1.0, in
Rust, with Python bindings) into the standard JSON encoding; a small walk over that JSON
(the same that reads ``filter-lang=cql2-json``) builds the tree :mod:`layers.cql2` turns
into SQL. A thin pre-pass in front of ``cql2`` adds what clients send that it lacks —
``ILIKE`` (ECQL, sent by GDAL) and EWKT ``SRID=4326;`` prefixes — and refuses filters
nested deeper than :data:`MAX_DEPTH` before they reach it: ``cql2`` 0.6 crashes the
process (a native stack overflow) on a few thousand nested ``NOT``, signs or
parentheses.

``cql2`` reads every number as a double: integral literals are turned back into
integers, and integer literals beyond 2^53 (which a double cannot hold exactly) are
refused rather than silently rounded.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any

import cql2
import orjson
from pygeofilter import ast, values

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


#: string literals, quoted identifiers and the code between them
_TOKENS = re.compile(r"""('(?:[^']|'')*')|("[^"]*")|([^'"]+)|(['"])""")
_SRID = re.compile(r"\bSRID\s*=\s*(\d+)\s*;", re.IGNORECASE)
_ILIKE = re.compile(r"\bILIKE\s*$", re.IGNORECASE)
_ANY_ILIKE = re.compile(r"\bILIKE\b", re.IGNORECASE)
_INTEGER = re.compile(r"(?<![\w.])(\d{16,})(?![\w.])")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.:]*|\d+\.?\d*(?:[eE][+-]?\d+)?|\S")
_ILIKE_FN = "TWIN_ILIKE"  # the pattern of an ILIKE, marked for the JSON walk
MAX_EXACT_INT = 2**53


def _nesting(code: list[str]) -> int:
    """How deep the parse tree of a text filter nests at most, from its code segments:
    parentheses, and runs of prefix operators (NOT, signs) before an operand."""
    deepest, parens, run = 0, [0], 0
    prev = "("
    for piece in code:
        for word in _WORD.findall(piece):
            w = word.upper()
            if w == "(":
                parens.append(run)
                run, prev = 0, "("
            elif w == ")":
                if len(parens) > 1:
                    parens.pop()
                run, prev = 0, ")"
            elif w == "NOT" or (w in "+-" and prev in ("(", ",", "op")):
                run += 1
                prev = "op" if w in "+-" else "("
            else:
                run = 0
                prev = "op" if not (w[0].isalnum() or w[0] == "_") else "x"
            deepest = max(deepest, len(parens) - 1 + sum(parens) + run)
    return deepest


def _prepass(text: str) -> str:
    """``text`` with what ``cql2`` lacks rewritten, after the depth and integer checks."""
    parts: list[str] = []
    code: list[str] = []
    pending_ilike = False
    for string, ident, other, stray in _TOKENS.findall(text):
        if stray:
            raise InvalidFilter(f"cannot parse CQL2 text filter: unclosed quote {stray}")
        if string:
            parts.append(f"{_ILIKE_FN}({string})" if pending_ilike else string)
            pending_ilike = False
            continue
        if pending_ilike:
            raise InvalidFilter("ILIKE takes a string pattern, e.g. name ILIKE 'tòa%'")
        if ident:
            parts.append(ident)
            code.append(" x ")
            continue
        for srid in _SRID.findall(other):
            if int(srid) != 4326:
                raise InvalidFilter(f"geometry SRID {srid}: only 4326 / CRS84 is supported")
        other = _SRID.sub(" ", other)
        for digits in _INTEGER.findall(other):
            check_number(int(digits))
            if int(digits) > MAX_EXACT_INT:
                raise InvalidFilter(f"integer {digits[:30]} is beyond 2^53 and cannot be "
                                    "compared exactly")
        if _ILIKE.search(other):
            other, pending_ilike = _ILIKE.sub(" LIKE ", other), True
        if _ANY_ILIKE.search(other):
            raise InvalidFilter("ILIKE takes a string pattern, e.g. name ILIKE 'tòa%'")
        parts.append(other)
        code.append(other)
    if pending_ilike:
        raise InvalidFilter("ILIKE takes a string pattern, e.g. name ILIKE 'tòa%'")
    if _nesting(code) > MAX_DEPTH:
        raise InvalidFilter(f"filter nested too deeply (at most {MAX_DEPTH} levels)")
    return "".join(parts)


def _parse_error(exc: Exception, text: str) -> InvalidFilter:
    msg = str(exc)
    where = re.search(r"-->\s*(\d+):(\d+)", msg)
    expected = re.search(r"=\s*(expected .*)", msg)
    at = ""
    if where:
        col = int(where.group(2))
        line = text.splitlines()[int(where.group(1)) - 1] if text.strip() else ""
        at = f" at column {col} near {line[max(col - 1, 0):][:30]!r}"
    return InvalidFilter(f"cannot parse CQL2 text filter{at}"
                         + (f": {expected.group(1)[:200]}" if expected else ""))


def parse_text(text: str) -> Any:
    """Parse CQL2 text into the AST; :class:`InvalidFilter` says where it fails."""
    if len(text) > MAX_FILTER_CHARS:
        raise InvalidFilter(f"filter longer than {MAX_FILTER_CHARS} characters")
    if not text.strip():
        raise InvalidFilter("empty filter")
    if "\x00" in text:
        raise InvalidFilter("cannot parse CQL2 text filter: NUL character")
    prepared = text
    try:
        prepared = _prepass(text)
        doc = cql2.parse_text(prepared).to_json()
    except InvalidFilter:
        raise
    except RecursionError:
        raise InvalidFilter(f"filter nested too deeply (at most {MAX_DEPTH} levels)") from None
    except (cql2.ParseError, cql2.ValidationError, ValueError) as exc:
        raise _parse_error(exc, prepared) from None
    if not (isinstance(doc, dict) and "op" in doc):
        raise InvalidFilter(f"cannot parse CQL2 text filter: {text.strip()[:40]!r} is not a "
                            "condition")
    try:
        return check_depth(_walk(_integral(doc), 0))
    except InvalidFilter:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise InvalidFilter(f"invalid CQL2 text filter: {exc}") from None


def _integral(node: Any) -> Any:
    """``cql2``'s doubles back as integers where they are whole numbers (walked without
    recursion: the depth is checked afterwards)."""
    if isinstance(node, float):
        return int(node) if node.is_integer() and abs(node) <= MAX_EXACT_INT else node
    root = [node]
    stack: list[Any] = [root]
    while stack:
        holder = stack.pop()
        items = holder.items() if isinstance(holder, dict) else enumerate(holder)
        for key, value in list(items):
            if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_EXACT_INT:
                holder[key] = int(value)
            elif isinstance(value, dict | list):
                stack.append(value)
    return root[0]


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


_OPS_BY_LOWER = {op.lower(): op for op in _JSON_OPS}


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
        if not isinstance(op, str):
            raise InvalidFilter(f"unsupported CQL2 operator {op!r}")
        if not isinstance(args, list):
            args = [args]
        if op == "like" and len(args) == 2 and isinstance(args[1], dict) \
                and args[1].get("op") == _ILIKE_FN:  # from the text pre-pass
            pattern = _walk((args[1].get("args") or [None])[0], depth + 1)
            return ast.Like(_walk(args[0], depth + 1), pattern, True, "%", "_", "\\", False)
        a = [_walk(x, depth + 1) for x in args]
        name = _OPS_BY_LOWER.get(op.lower())  # the standard writes t_metBy, isNull…
        if name is None:  # a function: the compiler knows which it supports
            return ast.Function(op.lower(), a)
        return _json_op(name, a)
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
