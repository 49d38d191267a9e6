"""Helpers shared by the importers: value parsing, bulk upsert, road noding.

Geometry handed to :func:`write_rows` is WKB (bytes) in EPSG:4326, lon/lat order.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, text

from twin.ingest.summary import Summary

FEET = 0.3048

_NUM = re.compile(r"[-+]?\d+(?:[.,]\d+)?")
_FEET_INCHES = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(?:'|ft|feet)\s*(?:(\d+(?:\.\d+)?)\s*(?:\"|in))?\s*$"
)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def clean_text(value: Any) -> str | None:
    """A stripped string, or None for null / NaN / blank."""
    if _is_missing(value):
        return None
    s = str(value).strip()
    return s or None


def _parts(value: Any) -> list[str]:
    s = clean_text(value)
    return [p.strip() for p in re.split(r"[;|]", s)] if s else []


def parse_height(value: Any) -> float | None:
    """Height in metres from ``12``, ``12 m``, ``12,5``, ``40'``, ``40'6"``, ``40 ft`` or
    ``3;4`` (the largest value wins); None when nothing sensible can be read."""
    best: float | None = None
    for part in _parts(value):
        h = _one_height(part)
        if h is not None and (best is None or h > best):
            best = h
    return best


def _one_height(s: str) -> float | None:
    s = s.lower().replace("~", "").strip()
    m = _FEET_INCHES.match(s)
    if m:
        h = float(m.group(1)) * FEET + (float(m.group(2)) * 0.0254 if m.group(2) else 0.0)
        return round(h, 3)
    m2 = re.fullmatch(r"(\d+(?:[.,]\d+)?)\s*(m|metres?|meters?|cm|ft|feet)?\.?", s)
    if not m2:
        return None
    h = float(m2.group(1).replace(",", "."))
    unit = m2.group(2) or "m"
    if unit == "cm":
        h /= 100
    elif unit in ("ft", "feet"):
        h *= FEET
    return round(h, 3) if 0 < h < 1000 else None


def parse_levels(value: Any) -> int | None:
    """Parse a number of storeys: ``3``, ``3;4`` or ``3-4`` (max), ``2.5`` (rounds up)."""
    best: int | None = None
    for part in _parts(value):
        for num in re.split(r"\s*-\s*", part):
            if not re.fullmatch(r"\d+(?:[.,]\d+)?", num):
                continue
            n = math.ceil(float(num.replace(",", ".")))
            if 0 <= n < 300 and (best is None or n > best):
                best = n
    return best


def parse_maxspeed(value: Any) -> float | None:
    """Speed in km/h from ``50``, ``50 km/h``, ``30 mph``, ``walk``; None if unreadable."""
    for part in _parts(value):
        s = part.lower()
        if s == "walk":
            return 5.0
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(km/h|kmh|kph|mph|knots)?", s)
        if m:
            v = float(m.group(1))
            if m.group(2) == "mph":
                v *= 1.609344
            elif m.group(2) == "knots":
                v *= 1.852
            if v > 0:
                return round(v, 2)
    return None


def parse_int(value: Any) -> int | None:
    """First integer in a value (``2``, ``2;3`` → 2, ``120 beds`` → 120); None if none."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float) and not _is_missing(value):
        return int(value)
    s = clean_text(value)
    m = _NUM.search(s) if s else None
    return int(float(m.group(0).replace(",", "."))) if m else None


def parse_float(value: Any) -> float | None:
    """A float from a number or the first number in a string; None if none."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return None if _is_missing(value) else float(value)
    s = clean_text(value)
    m = _NUM.search(s) if s else None
    return float(m.group(0).replace(",", ".")) if m else None


def parse_voltage_kv(value: Any) -> float | None:
    """OSM ``voltage`` (volts, possibly ``110000;22000``) to the highest value in kV."""
    vals = [parse_float(p) for p in _parts(value)]
    vals_ok = [v for v in vals if v is not None]
    return max(vals_ok) / 1000.0 if vals_ok else None


def parse_bool(value: Any) -> bool:
    """OSM-ish truthiness: yes / true / 1 / -1 / viaduct … are True."""
    if isinstance(value, bool):
        return value
    s = clean_text(value)
    return s is not None and s.lower() not in ("no", "false", "0", "none")


def address_of(housenumber: Any, street: Any) -> str | None:
    """``12 Trần Phú`` from addr:housenumber and addr:street (either may be missing)."""
    parts = [p for p in (clean_text(housenumber), clean_text(street)) if p]
    return " ".join(parts) or None


def line_wkb(coords: Sequence[tuple[float, float]]) -> bytes:
    """Little-endian WKB LineString from (lon, lat) pairs."""
    flat = [c for xy in coords for c in xy]
    return struct.pack(f"<BII{len(flat)}d", 1, 2, len(coords), *flat)


def point_wkb(lon: float, lat: float) -> bytes:
    """Little-endian WKB Point."""
    return struct.pack("<BIdd", 1, 1, lon, lat)


# -- bulk upsert ----------------------------------------------------------------------


def stage(
    conn: Connection, name: str, columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[Any]]
) -> int:
    """COPY rows into a fresh temporary table ``name`` (dropped at commit) and return
    how many were copied. ``columns`` are ``(column, sql_type)``; geometry is ``bytea``."""
    conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
    cols = ", ".join(f"{c} {t}" for c, t in columns)
    conn.execute(text(f"CREATE TEMP TABLE {name} ({cols}) ON COMMIT DROP"))
    raw = conn.connection.driver_connection
    n = 0
    with raw.cursor() as cur:  # type: ignore[union-attr]
        names = ", ".join(c for c, _ in columns)
        with cur.copy(f"COPY {name} ({names}) FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)
                n += 1
    conn.execute(text(f"ANALYZE {name}"))  # temp tables have no statistics otherwise
    return n


def merge(
    conn: Connection,
    table: str,
    staged: str,
    targets: Mapping[str, str],
    *,
    source: str,
    joins: str = "",
    summary: Summary,
    staged_rows: int,
    derived: str = "",
) -> tuple[int, int, int]:
    """Upsert staged rows into ``table`` on (source, source_id), counting outcomes.

    Parameters
    ----------
    table
        Target table (a trusted name, never user input).
    staged
        The temp table from :func:`stage`, aliased ``s``; it must have ``source_id``.
    targets
        Target column → SQL expression over ``s`` (and ``joins``), without
        ``source``/``source_id``, which are set from ``source`` and ``s.source_id``.
    joins
        Extra ``JOIN …`` clauses; staged rows they drop are counted as skipped.
    staged_rows
        Rows copied into ``staged`` (for the skipped count).
    derived
        Extra ``expr AS name`` items computed once per staged row, usable in
        ``targets`` as ``s.name``.

    Returns
    -------
    tuple of int
        (inserted, updated, unchanged); also added to ``summary`` under ``table``.
    """
    cols = list(targets)
    derived = f", {derived}" if derived else ""
    exprs = ", ".join(f"{e} AS {c}" for c, e in targets.items())
    col_list = ", ".join(cols)
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols)
    old = ", ".join(f"{table}.{c}" for c in cols)
    new = ", ".join(f"EXCLUDED.{c}" for c in cols)
    sql = f"""
        WITH src AS (
            SELECT DISTINCT ON (s.source_id) s.source_id, {exprs}
            FROM (SELECT t.*{derived} FROM {staged} t) s {joins}
            ORDER BY s.source_id
        ), up AS (
            INSERT INTO {table} (source, source_id, {col_list})
            SELECT :source, source_id, {col_list} FROM src
            ON CONFLICT (source, source_id) DO UPDATE SET {sets}, updated_at = now()
            WHERE ({old}) IS DISTINCT FROM ({new})
            RETURNING (xmax = 0) AS inserted
        )
        SELECT (SELECT count(*) FROM src),
               count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
        FROM up
    """
    total, ins, upd = conn.execute(text(sql), {"source": source}).one()
    _remember(conn, table, staged, source)
    conn.execute(text(f"DROP TABLE IF EXISTS {staged}"))
    unchanged = int(total) - int(ins) - int(upd)
    summary.add(table, "inserted", int(ins))
    summary.add(table, "updated", int(upd))
    summary.add(table, "unchanged", unchanged)
    dropped = staged_rows - int(total)
    if dropped > 0:
        summary.skip(table, "duplicate source id or unresolved node reference", dropped)
    return int(ins), int(upd), unchanged


def _remember(conn: Connection, table: str, staged: str, source: str) -> None:
    """Note the source ids this import carried for ``table`` (see :func:`finish_import`)."""
    conn.execute(text("CREATE TEMP TABLE IF NOT EXISTS _import_seen (tbl text, source text, "
                      "source_id text) ON COMMIT DROP"))
    conn.execute(text(f"INSERT INTO _import_seen SELECT :t, :s, source_id FROM {staged}"),
                 {"t": table, "s": source})


#: dependants first: a segment or edge goes before the nodes it joins
_PRUNE_ORDER = ("road_segment", "utility_service", "utility_edge", "building", "facility",
                "land_cover", "place", "admin_area", "road_node", "utility_node")
_STILL_USED = {
    "road_node": "EXISTS (SELECT 1 FROM road_segment e WHERE e.from_node = x.id "
                 "OR e.to_node = x.id)",
    "utility_node": "EXISTS (SELECT 1 FROM utility_edge e WHERE e.from_node = x.id "
                    "OR e.to_node = x.id)",
}


def finish_import(conn: Connection, summary: Summary, source: str, *, prune: bool) -> int:
    """Count the rows of ``source`` that the re-imported file no longer holds ("gone"
    upstream), per table this import wrote, and delete them when ``prune`` (nodes only
    once no segment or edge uses them). Returns how many were deleted."""
    exists = conn.execute(text("SELECT to_regclass('pg_temp._import_seen') IS NOT NULL"))
    if not exists.scalar_one():
        return 0
    written = set(conn.execute(text(
        "SELECT DISTINCT tbl FROM _import_seen WHERE source = :s"), {"s": source}).scalars())
    deleted = 0
    for table in [t for t in _PRUNE_ORDER if t in written]:
        gone_sql = (f"FROM {table} x WHERE x.source = :s AND NOT EXISTS (SELECT 1 FROM "
                    "_import_seen k WHERE k.tbl = :t AND k.source = :s "
                    "AND k.source_id = x.source_id)")
        params = {"s": source, "t": table}
        gone = int(conn.execute(text(f"SELECT count(*) {gone_sql}"), params).scalar_one())
        if not gone:
            continue
        summary.add(table, "gone", gone)
        if prune:
            keep = f" AND NOT {_STILL_USED[table]}" if table in _STILL_USED else ""
            n = conn.execute(text(f"DELETE {gone_sql}{keep}"), params).rowcount or 0
            summary.add(table, "deleted", int(n))
            deleted += int(n)
    total_gone = sum(summary.total(t, "gone") for t in written)
    if total_gone and not prune:
        summary.notes.append(f"{total_gone} rows of {source} are no longer in the file; "
                             "kept (re-run with --prune to delete them)")
    elif deleted:
        summary.notes.append(f"pruned {deleted} rows no longer in the file")
    return deleted


def drop_stray_holes(geom: Any) -> tuple[Any, int]:
    """Remove interior rings that do not lie inside their polygon's shell (``make_valid``
    would turn such a "hole" into an extra part: a building piece that is not there).
    Returns the geometry and how many rings were dropped."""
    from shapely.geometry import MultiPolygon, Polygon

    def fix(poly: Any) -> tuple[Any, int]:
        if not poly.interiors:
            return poly, 0
        shell = Polygon(poly.exterior)
        keep = [r for r in poly.interiors if shell.covers(Polygon(r).representative_point())
                and shell.buffer(1e-9).covers(Polygon(r))]
        return Polygon(poly.exterior, keep), len(poly.interiors) - len(keep)

    if geom.geom_type == "Polygon":
        return fix(geom)
    if geom.geom_type == "MultiPolygon":
        parts, n = [], 0
        for p in geom.geoms:
            fixed, d = fix(p)
            parts.append(fixed)
            n += d
        return (MultiPolygon(parts) if n else geom), n
    return geom, 0


def to_multipolygon(geom: Any) -> tuple[Any, bool]:
    """``(valid 2D MultiPolygon or None, repaired?)`` from a shapely geometry: invalid
    input goes through ``shapely.make_valid`` and only its polygons are kept."""
    import shapely
    from shapely.geometry import MultiPolygon

    if geom is None or geom.is_empty:
        return None, False
    geom = shapely.force_2d(geom)
    repaired = False
    geom, dropped = drop_stray_holes(geom)
    if dropped:
        repaired = True
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
        repaired = True
    polys = [
        p
        for p in shapely.get_parts(shapely.get_parts(geom))
        if p.geom_type == "Polygon" and not p.is_empty and p.area > 0
    ]
    if not polys:
        return None, repaired
    return MultiPolygon(polys), repaired


GEOM = "ST_GeomFromWKB(s.geom, 4326)"
AREA_M2 = f"ST_Area({GEOM}::geography)"
LENGTH_M = f"ST_Length({GEOM}::geography)"


def write_rows(
    conn: Connection,
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Iterable[Sequence[Any]],
    *,
    source: str,
    summary: Summary,
    computed: Mapping[str, str] | None = None,
    joins: str = "",
    stage_only: Iterable[str] = (),
) -> tuple[int, int, int]:
    """Stage ``rows`` (``source_id`` first, then ``columns``) and upsert them.

    Parameters
    ----------
    columns
        ``(column, sql_type)`` after ``source_id``; ``geom`` is WKB (EPSG:4326).
    computed
        Extra target columns as SQL over the staged row ``s`` (e.g. ``area_m2``).
    stage_only
        Staged columns that are not target columns (used by ``computed``/``joins``).

    Returns
    -------
    tuple of int
        (inserted, updated, unchanged)
    """
    staged = f"_stage_{table}"
    n = stage(conn, staged, [("source_id", "text"), *columns], rows)
    skip = set(stage_only)
    targets = {c: (GEOM if c == "geom" else f"s.{c}") for c, _ in columns if c not in skip}
    targets.update(computed or {})
    return merge(
        conn, table, staged, targets, source=source, joins=joins, summary=summary, staged_rows=n
    )
