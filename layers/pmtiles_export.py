"""Write public layers' vector tiles into one PMTiles archive (``twin tiles export``).

A PMTiles v3 file holds every tile of the chosen layers and zooms over their extent,
gzip-compressed MVT in Hilbert order, with a directory a client reads by HTTP range
requests: a CDN or a plain file server can serve it, or a laptop offline. The tiles are
the ones the API serves (the same SQL: generalised buildings at low zoom included);
empty tiles are left out and identical ones stored once (the ``pmtiles`` package's
writer deduplicates by content).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import morecantile
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer
from sqlalchemy import Connection

from layers.catalog import Layer
from layers.mvt import gzip_bytes, layer_bounds, render_tile
from twin.errors import InputError
from twin.progress import NullReporter, Reporter

MAX_TILES = 250_000
"""Refuse exports bigger than this (a z18 export of the whole city would take hours)."""
MVT_FIELD_TYPES = {"string": "String", "integer": "Number", "number": "Number",
                   "boolean": "Boolean", "date": "String", "datetime": "String"}


def plan(bounds: tuple[float, float, float, float], minzoom: int,
         maxzoom: int) -> list[tuple[int, int, int, int]]:
    """(tile id, z, x, y) of every tile over ``bounds`` from ``minzoom`` to ``maxzoom``,
    in tile-id order (the archive's clustered order)."""
    tms = morecantile.tms.get("WebMercatorQuad")
    w, s, e, n = bounds
    count = 0
    for z in range(minzoom, maxzoom + 1):
        ul, lr = tms.tile(w, n, z), tms.tile(e, s, z)
        count += (lr.x - ul.x + 1) * (lr.y - ul.y + 1)
        if count > MAX_TILES:
            raise InputError(f"the export would hold more than {MAX_TILES:,} tiles; "
                             "choose fewer zooms or a smaller --bbox")
    out = []
    for z in range(minzoom, maxzoom + 1):
        ul, lr = tms.tile(w, n, z), tms.tile(e, s, z)
        for x in range(ul.x, lr.x + 1):
            for y in range(ul.y, lr.y + 1):
                out.append((zxy_to_tileid(z, x, y), z, x, y))
    out.sort()
    return out


def export(conn: Connection, layers: Sequence[Layer], path: Path, minzoom: int, maxzoom: int,
           bbox: tuple[float, float, float, float] | None = None,
           reporter: Reporter | None = None) -> dict[str, Any]:
    """Write the archive; returns what it holds (tiles written, bytes, seconds)."""
    reporter = reporter or NullReporter()
    if not layers:
        raise InputError("choose at least one layer")
    for lyr in layers:
        if lyr.access != "public":
            raise InputError(f"layer {lyr.id!r} is not public: an archive has no access "
                             "control, so only public layers are exported")
    if not 0 <= minzoom <= maxzoom <= 18:
        raise InputError("zooms must satisfy 0 ≤ minzoom ≤ maxzoom ≤ 18")
    if bbox is None:
        boxes = [b for b in (layer_bounds(conn, lyr) for lyr in layers) if b]
        if not boxes:
            raise InputError("the chosen layers hold no features")
        bbox = (min(b[0] for b in boxes), min(b[1] for b in boxes),
                max(b[2] for b in boxes), max(b[3] for b in boxes))
    tiles = plan(bbox, minzoom, maxzoom)
    started = time.perf_counter()
    written = size = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    task = reporter.task(f"exporting {len(tiles):,} tiles (z{minzoom}–{maxzoom})",
                         total=len(tiles))
    try:
        with tmp.open("wb") as f:
            writer = Writer(f)
            for tile_id, z, x, y in tiles:
                data = render_tile(conn, layers, z, x, y)
                if data:
                    gz = gzip_bytes(data)
                    writer.write_tile(tile_id, gz)
                    written += 1
                    size += len(gz)
                reporter.advance(task)
            if not written:
                raise InputError("no tile of the chosen layers and zooms holds a feature")
            w, s, e, n = bbox
            writer.finalize(_header(bbox, minzoom, maxzoom), _metadata(layers, minzoom, maxzoom))
        tmp.replace(path)
    finally:
        reporter.done(task)
        if tmp.exists():
            tmp.unlink()
    return {"path": str(path), "tiles": written, "planned": len(tiles),
            "tile_bytes": size, "file_bytes": path.stat().st_size,
            "seconds": round(time.perf_counter() - started, 1), "bbox": list(bbox)}


def _e7(v: float) -> int:
    return int(round(v * 10_000_000))


def _header(bbox: tuple[float, float, float, float], minzoom: int,
            maxzoom: int) -> dict[str, Any]:
    w, s, e, n = bbox
    return {
        "tile_compression": Compression.GZIP, "tile_type": TileType.MVT,
        "min_lon_e7": _e7(w), "min_lat_e7": _e7(s), "max_lon_e7": _e7(e), "max_lat_e7": _e7(n),
        "center_zoom": int(math.floor((minzoom + maxzoom) / 2)),
        "center_lon_e7": _e7((w + e) / 2), "center_lat_e7": _e7((s + n) / 2),
    }


def _metadata(layers: Sequence[Layer], minzoom: int, maxzoom: int) -> dict[str, Any]:
    return {
        "name": "Da Nang Twin: " + ", ".join(lyr.id for lyr in layers),
        "format": "pbf",
        "attribution": "© OpenStreetMap contributors; Da Nang Twin",
        "vector_layers": [
            {"id": lyr.id, "description": lyr.description or "",
             "minzoom": max(minzoom, lyr.minzoom), "maxzoom": min(maxzoom, lyr.maxzoom),
             "fields": {p.name: MVT_FIELD_TYPES.get(p.type, "String") for p in lyr.properties}}
            for lyr in layers],
        "twin": json.dumps({"layers": [lyr.id for lyr in layers]}),
    }
