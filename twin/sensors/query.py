"""SensorThings reads: resource paths (``Things(1)/Datastreams``), ``$filter``,
``$orderby``, ``$select``, ``$expand`` (nested, with its own options), ``$top``,
``$skip`` and ``$count`` → SQL, and rows → SensorThings JSON with ``@iot.id``,
``@iot.selfLink`` and ``…@iot.navigationLink``.

Expanded relations are read with one ``LATERAL`` query per relation and level (not one
query per parent), so ``$top`` inside an expand holds per parent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from twin.errors import InputError, NotFound
from twin.sensors.entities import ENTITIES, Entity
from twin.sensors.filters import Binder, Compiler
from twin.sensors.odata import Node, parse_filter, parse_orderby

DEFAULT_TOP = 100
MAX_TOP = 10_000
_SEG = re.compile(r"^([A-Za-z]+)(?:\((\d+)\))?$")
_OPTIONS = ("$top", "$skip", "$count", "$filter", "$orderby", "$select", "$expand",
            "$resultFormat")


@dataclass
class Options:
    top: int = DEFAULT_TOP
    skip: int = 0
    count: bool = False
    filter: Node | None = None
    orderby: list[tuple[Node, bool]] = field(default_factory=list)
    select: list[str] | None = None
    expand: list[Expand] = field(default_factory=list)


@dataclass
class Expand:
    rel: str
    opts: Options


def _split(s: str, sep: str) -> list[str]:
    """Split at ``sep`` outside parentheses and quotes."""
    out: list[str] = []
    cur: list[str] = []
    depth, quote = 0, False
    for ch in s:
        if ch == "'":
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
            if depth < 0:
                raise InputError(f"unbalanced ')' in {s!r}")
        if ch == sep and depth == 0 and not quote:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise InputError(f"unbalanced '(' in {s!r}")
    out.append("".join(cur))
    return [x.strip() for x in out if x.strip()]


def _int(name: str, raw: str, lo: int, hi: int | None = None) -> int:
    try:
        v = int(raw)
    except ValueError:
        raise InputError(f"{name} must be an integer, got {raw!r}") from None
    if v < lo or (hi is not None and v > hi):
        raise InputError(f"{name} must be between {lo} and {hi}" if hi is not None
                         else f"{name} must be at least {lo}")
    return v


def parse_options(params: Mapping[str, str]) -> Options:
    """Query options from a request (or from inside an ``$expand`` item)."""
    o = Options()
    for key in params:
        if key.startswith("$") and key not in _OPTIONS:
            raise InputError(f"unknown query option {key}; known: {', '.join(_OPTIONS)}")
    if "$top" in params:
        o.top = _int("$top", params["$top"], 0, MAX_TOP)
    if "$skip" in params:
        o.skip = _int("$skip", params["$skip"], 0, 2**63 - 1)  # PostgreSQL's OFFSET: bigint
    if "$count" in params:
        if params["$count"] not in ("true", "false"):
            raise InputError("$count must be true or false")
        o.count = params["$count"] == "true"
    if params.get("$filter", "").strip():
        o.filter = parse_filter(params["$filter"])
    if params.get("$orderby", "").strip():
        o.orderby = parse_orderby(params["$orderby"])
    if "$select" in params:
        o.select = [s.strip() for s in params["$select"].split(",") if s.strip()]
    if params.get("$expand", "").strip():
        o.expand = parse_expand(params["$expand"])
    return o


def parse_expand(src: str) -> list[Expand]:
    if src.count("$expand") > 3 or max((len(p.split("/")) for p in _split(src, ",")),
                                       default=0) > 4:
        raise InputError("$expand: at most 4 levels of nested expansion")
    out: list[Expand] = []
    for item in _split(src, ","):
        path, paren, rest = item.partition("(")
        opts = Options()
        if paren:
            if not rest.endswith(")"):
                raise InputError(f"$expand: expected ')' at the end of {item!r}")
            pairs: dict[str, str] = {}
            for kv in _split(rest[:-1], ";"):
                k, eq, v = kv.partition("=")
                if not eq:
                    raise InputError(f"$expand: expected option=value in {kv!r}")
                pairs[k.strip()] = v.strip()
            opts = parse_options(pairs)
        segs = [s.strip() for s in path.split("/") if s.strip()]
        if not segs:
            raise InputError(f"$expand: empty item in {src!r}")
        node = Expand(segs[-1], opts)
        for s in reversed(segs[:-1]):
            node = Expand(s, Options(expand=[node]))
        _merge(out, node)
    return out


def _merge(items: list[Expand], new: Expand) -> None:
    for e in items:
        if e.rel == new.rel:
            for sub in new.opts.expand:
                _merge(e.opts.expand, sub)
            if new.opts != Options(expand=new.opts.expand):
                e.opts = Options(**{**new.opts.__dict__, "expand": e.opts.expand})
            return
    items.append(new)


# -- resource paths ----------------------------------------------------------------------

Pred = Callable[[str], str]


@dataclass
class Target:
    """What a resource path names: an entity set (filtered), one entity, or a property."""

    ent: Entity
    preds: list[Pred]
    single: bool
    path: str
    prop: str | None = None
    value: bool = False
    ref: bool = False
    by_datastream: bool = False
    id_param: str | None = None  # the bound id when the path is exactly Set(id)


def resolve(conn: Connection, segments: list[str], b: Binder, anon: bool) -> Target:
    """Walk ``EntitySet(id)/Nav(id)/…[/property[/$value]][/$ref]``; 404 for a missing id."""
    if not segments:
        raise NotFound("empty path")
    m = _SEG.match(segments[0])
    if m is None or m.group(1) not in ENTITIES:
        raise NotFound(f"no entity set {segments[0]!r}; known: {', '.join(ENTITIES)}")
    ent = ENTITIES[m.group(1)]
    tgt = Target(ent, [], False, ent.name)
    if m.group(2):
        _with_id(conn, tgt, int(m.group(2)), b, anon)
    for seg in segments[1:]:
        if tgt.prop is not None:
            if seg == "$value" and not tgt.value:
                tgt.value = True
                continue
            raise NotFound(f"nothing below {tgt.path}")
        if seg == "$ref" and not tgt.ref:
            tgt.ref = True
            continue
        m = _SEG.match(seg)
        name = m.group(1) if m else seg
        if not tgt.single:
            raise NotFound(f"{tgt.path}: address one entity (with its id) before {seg}")
        if m and name in tgt.ent.rels:
            tgt = _navigate(tgt, name, b, anon)
            if m.group(2):
                _with_id(conn, tgt, int(m.group(2)), b, anon)
        elif seg in tgt.ent.props or (seg == "id"):
            tgt.prop = seg
        else:
            raise NotFound(f"{tgt.ent.single} has no property or relation {seg!r}")
    return tgt


def _with_id(conn: Connection, tgt: Target, ident: int, b: Binder, anon: bool) -> None:
    if ident > 2**63 - 1:
        raise NotFound(f"{tgt.path}({ident}) not found")
    p = b.bind(ident)
    tgt.preds.append(lambda a: f"{a}.id = {p}")
    tgt.id_param = p if len(tgt.preds) == 1 else None
    tgt.single = True
    tgt.path += f"({ident})"
    where = " AND ".join(pr("x") for pr in _visible(tgt, anon))
    if not conn.execute(text(f"SELECT 1 FROM {tgt.ent.table} x WHERE {where}"),
                        b.params).first():
        raise NotFound(f"{tgt.path} not found")


def _visible(tgt: Target, anon: bool) -> list[Pred]:
    pub = tgt.ent.public
    return tgt.preds + ([lambda a: pub.format(a=a)] if anon and pub else [])


def _navigate(tgt: Target, name: str, b: Binder, anon: bool) -> Target:
    rel = tgt.ent.rels[name]
    target = ENTITIES[rel.target]
    prev = _visible(tgt, anon)
    pid, fk = tgt.id_param, rel.fk
    if pid is not None and fk is not None:
        preds: list[Pred] = [lambda a: f"{a}.{fk} = {pid}"]
        if anon and tgt.ent.public:
            outer_pub = tgt.ent.public
            preds.append(lambda a: "EXISTS (SELECT 1 FROM {t} o WHERE o.id = {p} AND {v})".format(
                t=tgt.ent.table, p=pid, v=outer_pub.format(a="o")))
    else:
        table, cond = tgt.ent.table, rel.cond

        def nav(a: str) -> str:
            o = b.alias()
            inner = " AND ".join(p(o) for p in prev) or "TRUE"
            return f"EXISTS (SELECT 1 FROM {table} {o} WHERE {cond.format(o=o, i=a)} AND {inner})"

        preds = [nav]
    return Target(target, preds, not rel.many, f"{tgt.path}/{name}",
                  by_datastream=(rel.fk == "datastream_id"))


# -- reading -------------------------------------------------------------------------------


def _order(c: Compiler, opts: Options, a: str, default: list[str]) -> str:
    parts = [f"{c.order(node)} {'DESC' if desc else 'ASC'}" for node, desc in opts.orderby]
    return ", ".join(parts + default)


def read(
    conn: Connection, tgt: Target, opts: Options, b: Binder, *, anon: bool, base: str
) -> dict[str, Any]:
    """The JSON answer for ``tgt``: one entity, a property, or a page of a collection."""
    ent, a = tgt.ent, "a0"
    c = Compiler(b, ent, a, anon)
    where = [p(a) for p in _visible(tgt, anon)]
    if opts.filter is not None and not tgt.single:
        where.append(c.where(opts.filter))
    cond = " AND ".join(where) or "TRUE"
    default = ([f"{a}.phenomenon_time ASC", f"{a}.id ASC"] if tgt.by_datastream
               else [f"{a}.id ASC"])
    if tgt.single:
        rows = conn.execute(text(f"SELECT {ent.columns.format(a=a)} FROM {ent.table} {a} "
                                 f"WHERE {cond} LIMIT 1"), b.params).mappings().all()
        if not rows:
            raise NotFound(f"{tgt.path} not found")
        row = dict(rows[0])
        if tgt.prop is not None:
            value = row["id"] if tgt.prop == "id" else to_json(ent, row, base, None).get(tgt.prop)
            return {"$value": value} if tgt.value else {tgt.prop: value}
        out = [to_json(ent, row, base, opts.select)]
        _expand_all(conn, ent, out, opts.expand, anon, base)
        if tgt.ref:
            return {"@iot.selfLink": out[0]["@iot.selfLink"]}
        return out[0]
    order = _order(c, opts, a, default)
    sql = (f"SELECT {ent.columns.format(a=a)} FROM {ent.table} {a} WHERE {cond} "
           f"ORDER BY {order} LIMIT {opts.top + 1} OFFSET {opts.skip}")
    found = [dict(r) for r in conn.execute(text(sql), b.params).mappings()]
    more = opts.top > 0 and len(found) > opts.top
    found = found[: opts.top]
    payload: dict[str, Any] = {}
    if opts.count:
        payload["@iot.count"] = int(conn.execute(
            text(f"SELECT count(*) FROM {ent.table} {a} WHERE {cond}"), b.params).scalar_one())
    values = [to_json(ent, r, base, opts.select) for r in found]
    _expand_all(conn, ent, values, opts.expand, anon, base)
    if tgt.ref:
        values = [{"@iot.selfLink": v["@iot.selfLink"]} for v in values]
    payload["value"] = values
    payload["_more"] = more
    return payload


def to_json(
    ent: Entity, row: dict[str, Any], base: str, select: list[str] | None
) -> dict[str, Any]:
    link = f"{base}/{ent.name}({row['id']})"
    body = ent.to_json(row)
    out: dict[str, Any] = {"@iot.id": row["id"], "@iot.selfLink": link}
    if select is None:
        out.update(body)
        for rel in ent.rels:
            out[f"{rel}@iot.navigationLink"] = f"{link}/{rel}"
        return out
    known = {*body, *ent.rels, "id", "@iot.id", "@iot.selfLink"}
    bad = [s for s in select if s not in known]
    if bad:
        raise InputError(f"$select: {ent.single} has no property {', '.join(bad)}; "
                         f"known: id, {', '.join([*body, *ent.rels])}")
    if "id" not in select and "@iot.id" not in select:
        out = {}
    for s in select:
        if s in body:
            out[s] = body[s]
        elif s in ent.rels:
            out[f"{s}@iot.navigationLink"] = f"{link}/{s}"
    return out


def _expand_all(conn: Connection, ent: Entity, values: list[dict[str, Any]],
                items: list[Expand], anon: bool, base: str) -> None:
    if not values or not items:
        return
    for item in items:
        rel = ent.rels.get(item.rel)
        if rel is None:
            raise InputError(f"$expand: {ent.single} has no relation {item.rel!r}; "
                             f"known: {', '.join(ent.rels)}")
        _expand(conn, ent, values, item, rel.target, anon, base)


def _expand(conn: Connection, ent: Entity, values: list[dict[str, Any]], item: Expand,
            target_name: str, anon: bool, base: str) -> None:
    rel = ent.rels[item.rel]
    target = ENTITIES[target_name]
    ids = [v["@iot.id"] for v in values if "@iot.id" in v]
    if not ids:
        raise InputError("$expand needs the id: add id to $select")
    b = Binder()
    a = b.alias()
    c = Compiler(b, target, a, anon)
    where = [rel.cond.format(o="p", i=a)]
    if anon and target.public:
        where.append(target.public.format(a=a))
    opts = item.opts
    if opts.filter is not None:
        where.append(c.where(opts.filter))
    default = ([f"{a}.phenomenon_time ASC", f"{a}.id ASC"] if rel.fk == "datastream_id"
               else [f"{a}.id ASC"])
    order = _order(c, opts, a, default)
    top = opts.top if rel.many else 1
    count = ", count(*) OVER () AS _count" if opts.count and rel.many else ""
    sql = (f"SELECT p.id AS _pid, x.* FROM {ent.table} p CROSS JOIN LATERAL "
           f"(SELECT {target.columns.format(a=a)}{count} FROM {target.table} {a} "
           f"WHERE {' AND '.join(where)} ORDER BY {order} LIMIT {top + 1} OFFSET "
           f"{opts.skip}) x WHERE p.id = ANY({b.bind(ids)})")
    grouped: dict[int, list[dict[str, Any]]] = {}
    counts: dict[int, int] = {}
    for r in conn.execute(text(sql), b.params).mappings():
        d = dict(r)
        pid = d.pop("_pid")
        if "_count" in d:
            counts[pid] = int(d.pop("_count"))
        grouped.setdefault(pid, []).append(d)
    children: list[dict[str, Any]] = []
    for v in values:
        rows = grouped.get(v["@iot.id"], [])
        more = len(rows) > top
        kids = [to_json(target, r, base, opts.select) for r in rows[:top]]
        children.extend(kids)
        if not rel.many:
            v[item.rel] = kids[0] if kids else None
            continue
        v[item.rel] = kids
        if opts.count:
            v[f"{item.rel}@iot.count"] = counts.get(v["@iot.id"], 0)
        if more:
            v[f"{item.rel}@iot.nextLink"] = (
                f"{v['@iot.selfLink']}/{item.rel}?$top={top}&$skip={opts.skip + top}")
    _expand_all(conn, target, children, opts.expand, anon, base)
