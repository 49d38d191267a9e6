"""A parser for SensorThings' OData ``$filter`` and ``$orderby`` expressions.

Grammar (precedence low → high)::

    expr    := and ('or' and)*
    and     := not ('and' not)*
    not     := 'not' not | cmp
    cmp     := add (('eq'|'ne'|'gt'|'ge'|'lt'|'le') add)?
    add     := mul (('add'|'sub') mul)*
    mul     := unary (('mul'|'div'|'mod') unary)*
    unary   := '-' unary | primary
    primary := literal | '(' expr ')' | function '(' args ')' | path

Literals: numbers, ``'strings'`` (``''`` escapes a quote), ``true``/``false``/``null``,
ISO 8601 date-times (``2026-10-14T06:00:00Z``), ``geography'POINT(108.22 16.06)'`` and
``geometry'…'`` (WKT, EPSG:4326). Paths are property names joined by ``/``
(``Datastream/Thing/name``, ``properties/owner``). Errors raise :class:`InputError`
naming the problem and its position.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any

from twin.errors import InputError


@dataclass(frozen=True)
class Lit:
    value: Any
    type: str  # num | str | bool | null | time | geom


@dataclass(frozen=True)
class Path:
    segments: tuple[str, ...]


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Bin:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    expr: Node


@dataclass(frozen=True)
class Neg:
    expr: Node


Node = Lit | Path | Call | Bin | Not | Neg

COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
FUNCTIONS: dict[str, tuple[int, ...]] = {
    "substringof": (2,), "contains": (2,), "startswith": (2,), "endswith": (2,),
    "length": (1,), "indexof": (2,), "substring": (2, 3), "tolower": (1,), "toupper": (1,),
    "trim": (1,), "concat": (2,), "year": (1,), "month": (1,), "day": (1,), "hour": (1,),
    "minute": (1,), "second": (1,), "now": (0,), "mindatetime": (0,), "maxdatetime": (0,),
    "round": (1,), "floor": (1,), "ceiling": (1,), "geo.distance": (2,), "geo.length": (1,),
    "geo.intersects": (2,), "st_equals": (2,), "st_disjoint": (2,), "st_touches": (2,),
    "st_within": (2,), "st_overlaps": (2,), "st_crosses": (2,), "st_intersects": (2,),
    "st_contains": (2,), "st_relate": (3,),
}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<geo>(?:geography|geometry)'(?:[^']|'')*')
  | (?P<str>'(?:[^']|'')*')
  | (?P<time>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\d.]))
  | (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_@][A-Za-z0-9_.@]*)
  | (?P<punct>[(),/-])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Tok:
    kind: str
    text: str
    pos: int


def tokenize(src: str, what: str = "$filter") -> list[Tok]:
    toks: list[Tok] = []
    pos = 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if m is None:
            if src[pos] == "'":
                raise InputError(f"{what}: unterminated string starting at position {pos}")
            raise InputError(f"{what}: unexpected character {src[pos]!r} at position {pos}")
        kind = m.lastgroup or ""
        if kind != "ws":
            toks.append(Tok(kind, m.group(), pos))
        pos = m.end()
    return toks


MAX_DEPTH = 100
"""Deepest nesting (not, parentheses, functions, minus signs) of an expression."""
MAX_BIGINT = 2**63 - 1


class Parser:
    def __init__(self, src: str, what: str = "$filter"):
        self.src, self.what = src, what
        self.toks = tokenize(src, what)
        self.i = 0
        self.depth = 0

    def nest(self) -> None:
        """One level deeper (a recursive-descent step); refused past :data:`MAX_DEPTH`."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nested too deeply (at most {MAX_DEPTH} levels)")

    # -- helpers ----------------------------------------------------------------------
    def peek(self, k: int = 0) -> Tok | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def error(self, msg: str, tok: Tok | None = None) -> InputError:
        tok = tok or self.peek()
        where = f" at position {tok.pos}" if tok else " at the end"
        return InputError(f"{self.what}: {msg}{where}")

    def take(self) -> Tok:
        tok = self.peek()
        if tok is None:
            raise InputError(f"{self.what}: the expression ends too early (a value is missing)")
        self.i += 1
        return tok

    def accept_word(self, *words: str) -> str | None:
        tok = self.peek()
        if tok is not None and tok.kind == "name" and tok.text in words:
            self.i += 1
            return tok.text
        return None

    def expect_punct(self, p: str) -> None:
        tok = self.peek()
        if tok is None or tok.kind != "punct" or tok.text != p:
            found = repr(tok.text) if tok else "the end"
            raise self.error(f"expected {p!r}, found {found}", tok)
        self.i += 1

    def at_punct(self, p: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "punct" and tok.text == p

    # -- grammar ----------------------------------------------------------------------
    def parse(self) -> Node:
        if not self.toks:
            raise InputError(f"{self.what}: empty expression")
        node = self.expr()
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return node

    def expr(self) -> Node:
        node = self.and_()
        while self.accept_word("or"):
            node = Bin("or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.accept_word("and"):
            node = Bin("and", node, self.not_())
        return node

    def not_(self) -> Node:
        if self.accept_word("not"):
            self.nest()
            node = Not(self.not_())
            self.depth -= 1
            return node
        return self.cmp()

    def cmp(self) -> Node:
        node = self.add()
        op = self.accept_word(*COMPARISONS)
        if op:
            node = Bin(op, node, self.add())
            if self.accept_word(*COMPARISONS):
                raise self.error("comparisons cannot be chained; combine them with 'and'")
        return node

    def add(self) -> Node:
        node = self.mul()
        while op := self.accept_word("add", "sub"):
            node = Bin(op, node, self.mul())
        return node

    def mul(self) -> Node:
        node = self.unary()
        while op := self.accept_word("mul", "div", "mod"):
            node = Bin(op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.at_punct("-"):
            self.i += 1
            self.nest()
            inner = self.unary()
            self.depth -= 1
            if isinstance(inner, Lit) and inner.type == "num":
                return Lit(-inner.value, "num")
            return Neg(inner)
        return self.primary()

    def primary(self) -> Node:
        tok = self.take()
        if tok.kind == "punct" and tok.text == "(":
            self.nest()
            node = self.expr()
            self.expect_punct(")")
            self.depth -= 1
            return node
        if tok.kind == "num":
            v = float(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text)
            if isinstance(v, int) and v > MAX_BIGINT:
                raise self.error(f"integer {tok.text[:30]} is out of range (64-bit)", tok)
            if isinstance(v, float) and not math.isfinite(v):
                raise self.error("numbers must be finite", tok)
            return Lit(v, "num")
        if tok.kind == "str":
            return Lit(tok.text[1:-1].replace("''", "'"), "str")
        if tok.kind == "time":
            return Lit(self._time(tok), "time")
        if tok.kind == "date":
            try:
                d = dt.date.fromisoformat(tok.text)
            except ValueError:
                raise self.error(f"invalid date {tok.text!r}", tok) from None
            return Lit(dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC), "time")
        if tok.kind == "geo":
            return Lit(self._wkt(tok), "geom")
        if tok.kind == "name":
            if tok.text in ("true", "false"):
                return Lit(tok.text == "true", "bool")
            if tok.text == "null":
                return Lit(None, "null")
            if self.at_punct("("):
                return self.call(tok)
            if tok.text in COMPARISONS or tok.text in ("and", "or", "add", "sub", "mul",
                                                       "div", "mod"):
                raise self.error(f"operator {tok.text!r} needs a value before it", tok)
            return self.path(tok)
        raise self.error(f"unexpected {tok.text!r}", tok)

    def call(self, tok: Tok) -> Node:
        name = tok.text.lower()
        if name not in FUNCTIONS:
            raise self.error(f"unknown function {tok.text!r}", tok)
        self.expect_punct("(")
        self.nest()
        args: list[Node] = []
        if not self.at_punct(")"):
            args.append(self.expr())
            while self.at_punct(","):
                self.i += 1
                args.append(self.expr())
        self.expect_punct(")")
        self.depth -= 1
        if len(args) not in FUNCTIONS[name]:
            want = " or ".join(str(n) for n in FUNCTIONS[name])
            raise self.error(f"{name}() takes {want} argument(s), got {len(args)}", tok)
        return Call(name, tuple(args))

    def path(self, tok: Tok) -> Node:
        segs = [tok.text]
        while self.at_punct("/"):
            self.i += 1
            nxt = self.take()
            if nxt.kind != "name":
                raise self.error(f"expected a property name after '/', found {nxt.text!r}", nxt)
            segs.append(nxt.text)
        return Path(tuple(segs))

    def _time(self, tok: Tok) -> dt.datetime:
        s = tok.text
        try:
            t = dt.datetime.fromisoformat(s)
        except ValueError:
            raise self.error(f"invalid date-time {s!r}", tok) from None
        return t if t.tzinfo else t.replace(tzinfo=dt.UTC)

    def _wkt(self, tok: Tok) -> str:
        from shapely import wkt

        body = tok.text[tok.text.index("'") + 1 : -1].replace("''", "'")
        body = re.sub(r"^SRID=\d+;", "", body.strip())
        import numpy as np

        try:
            geom = wkt.loads(body)
        except Exception:  # noqa: BLE001 - shapely raises several kinds
            raise self.error(f"invalid WKT {body!r}", tok) from None
        if geom.is_empty:
            raise self.error("empty geometry", tok)
        import shapely

        if not bool(np.isfinite(shapely.get_coordinates(geom)).all()):
            raise self.error("geometry coordinates must be finite numbers", tok)
        return str(geom.wkt)


def parse_filter(src: str) -> Node:
    return Parser(src, "$filter").parse()


def parse_orderby(src: str) -> list[tuple[Node, bool]]:
    """``expr [asc|desc], …`` → [(expression, descending)]."""
    p = Parser(src, "$orderby")
    if not p.toks:
        raise InputError("$orderby: empty")
    out: list[tuple[Node, bool]] = []
    while True:
        node = p.add()
        desc = p.accept_word("asc", "desc") == "desc"
        out.append((node, desc))
        if p.peek() is None:
            return out
        p.expect_punct(",")
