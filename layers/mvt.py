"""Mapbox Vector Tiles built in PostGIS (``ST_AsMVT``), one SQL round-trip per tile.

Tiles are in the WebMercatorQuad tiling scheme (EPSG:3857). Every layer reads its
table's stored ``geom_3857`` copy, so no row is transformed at request time; rows are
picked with ``&&`` against the tile envelope plus a margin (GiST index), simplified per
zoom (tolerance in metres from the catalogue's tolerance in tile pixels), capped at the
layer's ``max_features_per_tile`` and carry only the layer's declared properties.

The SQL text depends only on the layer set and the zoom band (which layers are in
range, their zoom filter, whether they simplify), never on x/y: ``z``, ``x``, ``y`` and
the tolerances are bound parameters, so psycopg prepares the statement after a few
executions on a connection.

Plain Python: no web framework here.
"""

from __future__ import annotations

import math
import struct
import types
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import psycopg
from sqlalchemy import Connection

from layers.catalog import Layer
from layers.errors import TileOutOfRange

EXTENT = 4096
"""Tile coordinate extent (MVT 2.1 default)."""
BUFFER = 64
"""Clip buffer around the tile, in tile units (as ``ST_TileEnvelope``'s margin)."""
MAX_ZOOM = 24
WORLD_M = 2 * math.pi * 6378137.0
"""Width of the WebMercatorQuad world, in metres (EPSG:3857)."""
MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
GZIP_LEVEL = 1
"""gzip level for tiles. MVT's varint-coded geometry compresses little whatever the
level: on building tiles zlib's level 1 is 3 % larger than level 4 and 6 % larger than
level 6 but takes 2/3 and 1/3 of their time (3.9 vs 5.8 vs 12.3 ms on a 315 kB z14
tile). ISA-L's level 1 (the ``isal`` package, used when installed) is as small as
zlib's and about four times faster."""
SESSION_OPTIONS = "-c jit=off -c max_parallel_workers_per_gather=0"
"""libpq ``options`` for connections that render tiles. JIT would compile each
execution of a big tile query anew (tens of ms); parallel workers cost a process
launch per query and only pay off on an idle machine, while tiles are served to many
clients at once."""


class TileQuery(NamedTuple):
    """SQL for one tile of a layer set at one zoom band, and its extra parameters."""

    sql: str
    params: dict[str, Any]
    layers: tuple[str, ...]


def check_tile(z: int, x: int, y: int) -> None:
    """Raise :class:`TileOutOfRange` unless z/x/y lie in the WebMercatorQuad matrix."""
    if not 0 <= z <= MAX_ZOOM:
        raise TileOutOfRange(f"zoom {z} outside 0..{MAX_ZOOM}")
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise TileOutOfRange(f"tile {z}/{x}/{y} outside the matrix (x, y in 0..{n - 1})")


def in_zoom(layer: Layer, z: int) -> bool:
    return layer.minzoom <= z <= layer.maxzoom


def pixel_size_m(z: int) -> float:
    """Size of one tile unit (1/4096 of a tile) at zoom ``z``, in metres (EPSG:3857)."""
    return WORLD_M / (1 << z) / EXTENT


BUILTIN_SIMPLIFY_PX = 0.5
"""``ST_AsMVTGeom`` itself simplifies with half a tile unit before snapping to the grid,
so a catalogue tolerance at or below that needs no ``ST_Simplify`` of its own."""
SIMPLIFY_MIN_POINTS = 8
"""Geometries with at most this many vertices skip ``ST_Simplify``: a footprint of four
or five corners has no detail to lose to a tolerance of a pixel or two (only a sliver
would vanish, and ``ST_AsMVTGeom`` drops those below half a unit itself), and copying
every small building through ``ST_Simplify`` costs ~10 % of a z14 tile."""


def tolerance_m(layer: Layer, z: int) -> float:
    """Simplification tolerance for ``layer`` at zoom ``z``, in metres (EPSG:3857
    units): the catalogue's tolerance in tile pixels × the size of a tile unit. 0 when
    ``ST_AsMVTGeom``'s own half-unit simplification already covers it."""
    px = layer.simplify_px(z)
    return px * pixel_size_m(z) if px > BUILTIN_SIMPLIFY_PX else 0.0


def _ident(name: str) -> str:
    # catalogue identifiers are validated as plain lower-case names; quote anyway
    return '"' + name.replace('"', '""') + '"'


def _clause(sql: str) -> str:
    # catalogue filters are trusted SQL; escape % for the driver's pyformat style
    return "(" + sql.replace("%", "%%") + ")"


def _geom_expr(layer: Layer, z: int, n: int, alias: str) -> tuple[str, dict[str, Any]]:
    """The layer's geometry at zoom ``z`` as ``ST_AsMVTGeom`` takes it: simplified by the
    catalogue's tolerance when that is above ``ST_AsMVTGeom``'s own."""
    geom = f"{alias}.{_ident(layer.geometry_3857_column)}"
    tol = tolerance_m(layer, z)
    if tol <= 0:
        return geom, {}
    return (f"CASE WHEN ST_NPoints({geom}) > {SIMPLIFY_MIN_POINTS} "
            f"THEN ST_Simplify({geom}, %(tol{n})s) ELSE {geom} END"), {f"tol{n}": tol}


def _filters(layer: Layer, z: int) -> list[str]:
    where = [_clause(layer.where)] if layer.where else []
    zf = layer.zoom_filter(z)
    if zf and zf.strip().upper() != "TRUE":
        where.append(_clause(zf))
    return where


def _layer_sql(layer: Layer, z: int, n: int) -> tuple[str, dict[str, Any]]:
    """The ``ST_AsMVT`` subquery of one layer (the n-th of the tile)."""
    if uses_z14_table(layer, z):
        return _z14_sql(layer, n)
    geom = f"f.{_ident(layer.geometry_3857_column)}"
    geom_expr, params = _geom_expr(layer, z, n, "f")
    cols = [f"f.{_ident(layer.id_column)} AS _fid"]
    cols += [f"f.{_ident(p.col)} AS {_ident(p.name)}" for p in layer.properties]
    cols.append(f"ST_AsMVTGeom({geom_expr}, _tile.env, {EXTENT}, {BUFFER}, true) AS geom")
    source = _ident(layer.table)
    if layer.generalised_table and z <= layer.generalised_maxzoom:
        source = _generalised_source(layer)
    where = [f"{geom} && _tile.m", *_filters(layer, z)]
    sql = (
        f"COALESCE((SELECT ST_AsMVT(t, '{layer.id}', {EXTENT}, 'geom', '_fid') FROM ("
        f"SELECT {', '.join(cols)} FROM {source} AS f, _tile "
        f"WHERE {' AND '.join(where)} LIMIT {int(layer.max_features_per_tile)}"
        f") AS t), ''::bytea)"
    )
    return sql, params


BLOCK_SIMPLIFY_M = 2.0
"""The generalised blocks' own simplification when they are built (migration 0012)."""


def uses_z14_table(layer: Layer, z: int) -> bool:
    """Whether a z14 tile of ``layer`` reads its blocks' stored tile geometry
    (``generalised_z14_table``, migration 0017) instead of computing it: only where the
    stored geometry is what the computation would give. So: no filter on the layer, and
    a catalogue tolerance within the blocks' own simplification (the stored geometry
    skips ``ST_Simplify``, which at 0.6 m on blocks simplified by 2 m changed no feature
    of the bench's tiles or the test's)."""
    return (z == 14 and layer.generalised_z14_table is not None
            and layer.generalised_table is not None and layer.generalised_maxzoom >= 14
            and not _filters(layer, z) and tolerance_m(layer, z) <= BLOCK_SIMPLIFY_M)


def _z14_sql(layer: Layer, n: int) -> tuple[str, dict[str, Any]]:
    """A z14 tile of a generalised layer: the stored tile geometry of the blocks of clean
    cells (one index scan; ``ST_AsMVTGeom`` ran when the blocks were built), and the raw
    rows of the dirty cells around the tile drawn as usual, so the tile is never stale.

    A raw row is looked for in the 3×3 cells around the tile: a building whose box
    centre lies farther out would be over a tile (2.4 km) across."""
    z14 = _ident(str(layer.generalised_z14_table))
    raw, ident = _ident(layer.table), _ident(layer.id_column)
    geom = f"r.{_ident(layer.geometry_3857_column)}"
    geom_expr, params = _geom_expr(layer, 14, n, "r")
    stored = ", ".join(["p.fid AS _fid"]
                       + [f"p.{_ident(p.col)} AS {_ident(p.name)}" for p in layer.properties
                          if p.col != layer.id_column]
                       + ["p.geom AS geom"])
    live = ", ".join([f"r.{ident} AS _fid"]
                     + [f"r.{_ident(p.col)} AS {_ident(p.name)}" for p in layer.properties
                        if p.col != layer.id_column]
                     + [f"ST_AsMVTGeom({geom_expr}, _tile.env, {EXTENT}, {BUFFER}, true) AS geom"])
    dirty = "building_generalised_dirty"
    sql = (
        f"COALESCE((SELECT ST_AsMVT(t, '{layer.id}', {EXTENT}, 'geom', '_fid') FROM ("
        f"SELECT {stored} FROM {z14} AS p "
        f"WHERE p.tile = %(x)s::bigint * 16384 + %(y)s::int AND NOT EXISTS "
        f"(SELECT 1 FROM {dirty} AS d WHERE d.cell = p.cell) "
        f"UNION ALL SELECT {live} FROM {dirty} AS d "
        f"JOIN {raw} AS r ON {geom} && ST_TileEnvelope(14, (d.cell / 16384)::int, "
        f"(d.cell % 16384)::int) AND twin_cell14({geom}) = d.cell, _tile "
        f"WHERE d.cell / 16384 BETWEEN %(x)s::bigint - 1 AND %(x)s::bigint + 1 "
        f"AND d.cell % 16384 BETWEEN %(y)s::bigint - 1 AND %(y)s::bigint + 1 "
        f"AND {geom} && _tile.m "
        f"LIMIT {int(layer.max_features_per_tile)}) AS t), ''::bytea)"
    )
    return sql.replace("d.cell % 16384", "d.cell %% 16384"), params


def _generalised_source(layer: Layer) -> str:
    """The rows a low-zoom tile draws: the generalised blocks of clean cells and the raw
    rows of cells written since their last rebuild (:mod:`layers.generalise`)."""
    gen, raw = _ident(str(layer.generalised_table)), _ident(layer.table)
    geom, ident = _ident(layer.geometry_3857_column), _ident(layer.id_column)
    props = [_ident(p.col) for p in layer.properties if p.col != layer.id_column]
    keep = ", ".join(props)
    dirty = "building_generalised_dirty"
    return (
        f"(SELECT g.fid AS {ident}, {', '.join('g.' + c for c in props)}, g.geom_3857 AS {geom} "
        f"FROM {gen} AS g, _tile WHERE g.geom_3857 && _tile.m AND NOT EXISTS "
        f"(SELECT 1 FROM {dirty} AS d WHERE d.cell = g.cell) "
        f"UNION ALL SELECT r.{ident}, {', '.join('r.' + c for c in props)}, r.{geom} "
        f"FROM {raw} AS r, _tile WHERE r.{geom} && _tile.m AND EXISTS "
        f"(SELECT 1 FROM {dirty} AS d WHERE d.cell = twin_cell14(r.{geom})))"
    ) if keep else raw


def tile_query(layers: Sequence[Layer], z: int) -> TileQuery | None:
    """The one-round-trip query for ``layers`` at zoom ``z`` (None: no layer in range).

    Layers outside their zoom range are left out. Bind ``z``, ``x``, ``y`` (plus the
    returned params) to run it; it returns one ``bytea``: the layers' MVTs concatenated.
    """
    active = [lyr for lyr in layers if in_zoom(lyr, z)]
    if not active:
        return None
    parts: list[str] = []
    params: dict[str, Any] = {}
    for n, lyr in enumerate(active):
        sql, p = _layer_sql(lyr, z, n)
        parts.append(sql)
        params.update(p)
    margin = BUFFER / EXTENT
    sql = (
        "WITH _tile AS (SELECT "
        "ST_TileEnvelope(%(z)s::int, %(x)s::int, %(y)s::int) AS env, "
        f"ST_TileEnvelope(%(z)s::int, %(x)s::int, %(y)s::int, margin => {margin!r}) AS m) "
        "SELECT " + " || ".join(parts)
    )
    return TileQuery(sql, params, tuple(lyr.id for lyr in active))


def render_tile(conn: Connection, layers: Sequence[Layer], z: int, x: int, y: int) -> bytes:
    """The MVT (uncompressed) of ``layers`` for tile z/x/y; ``b""`` when it is empty.

    One statement on ``conn``; the SQL text is stable per layer set and zoom band.
    """
    check_tile(z, x, y)
    q = tile_query(layers, z)
    if q is None:
        return b""
    params = {"z": z, "x": x, "y": y, **q.params}
    dbapi = conn.connection.driver_connection
    if isinstance(dbapi, psycopg.Connection):
        # binary results: the bytea comes as is, not hex-encoded text
        with dbapi.cursor(binary=True) as cur:
            row = cur.execute(q.sql, params).fetchone()
    else:
        row = conn.exec_driver_sql(q.sql, params).first()
    return bytes(row[0]) if row and row[0] is not None else b""


_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
PARALLEL_GZIP_BYTES = 128 * 1024
"""Tiles at least this big are compressed in two halves on two threads (zlib releases
the GIL), which halves gzip's share of a big tile's latency."""
_gzip_pool: ThreadPoolExecutor | None = None


_deflater: types.ModuleType = zlib
try:  # the same deflate format, computed by Intel's ISA-L: about 4× faster
    from isal import isal_zlib

    _deflater = isal_zlib
except ImportError:  # pragma: no cover - plain zlib when isal is not installed
    pass


def _deflate(data: memoryview, level: int, zdict: bytes | None, last: bool) -> bytes:
    c = (_deflater.compressobj(level, zlib.DEFLATED, -15, zdict=zdict) if zdict
         else _deflater.compressobj(level, zlib.DEFLATED, -15))
    return c.compress(data) + c.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def gzip_bytes(data: bytes, level: int = GZIP_LEVEL) -> bytes:
    """gzip-wrap ``data`` (as served with ``Content-Encoding: gzip``).

    Big inputs are deflated as two halves at once, pigz-style: the first half ends on
    a sync flush, the second is primed with the 32 kB before it, so the two raw
    streams concatenate into one ordinary gzip member.
    """
    global _gzip_pool
    if len(data) < PARALLEL_GZIP_BYTES:
        c = _deflater.compressobj(level, zlib.DEFLATED, 31)
        return c.compress(data) + c.flush()
    if _gzip_pool is None:
        _gzip_pool = ThreadPoolExecutor(2, thread_name_prefix="twin-gzip")
    view = memoryview(data)
    mid = len(data) // 2
    first = _gzip_pool.submit(_deflate, view[:mid], level, None, False)
    second = _deflate(view[mid:], level, bytes(view[max(0, mid - 32768):mid]), True)
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return b"".join((_GZIP_HEADER, first.result(), second, trailer))


def gunzip_bytes(data: bytes) -> bytes:
    return zlib.decompress(data, 31)


def layer_bounds(conn: Connection, layer: Layer) -> tuple[float, float, float, float] | None:
    """The layer's extent in EPSG:4326 (west, south, east, north), None when empty.

    Uses the planner's estimate for unfiltered layers (cheap on big tables) and an
    exact ``ST_Extent`` otherwise.
    """
    geom = _ident(layer.geometry_column)
    box = None
    if not layer.where:
        box = conn.exec_driver_sql(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT ST_EstimatedExtent(%(t)s, %(c)s)::geometry AS e) s",
            {"t": layer.table, "c": layer.geometry_column},
        ).first()
    if box is None or box[0] is None:
        where = f"WHERE {_clause(layer.where)}" if layer.where else ""
        box = conn.exec_driver_sql(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            f"(SELECT ST_Extent({geom})::geometry AS e FROM {_ident(layer.table)} {where}) s"
        ).first()
    if box is None or box[0] is None:
        return None
    w, s, e, n = (float(v) for v in box)
    return (max(w, -180.0), max(s, -85.0511287798), min(e, 180.0), min(n, 85.0511287798))
