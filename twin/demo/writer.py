"""Fast bulk writing for the demo: ids from the tables' sequences, rows through COPY.

Geometry is passed to COPY as hex EWKB in EPSG:4326 (lon/lat); generated columns
(``geom_3857``) are left to the database. Everything runs on the caller's connection,
so it commits or rolls back with the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Connection, text

from twin.demo.geo import to_lonlat

SOURCE = "demo"
# Source ids are zero-padded ("bldg/0012345") so rows arrive in index order: the
# (source, source_id) b-tree grows at its right edge instead of splitting pages.
# Children before parents, so a delete never waits on a foreign key.
TABLES = ("utility_service", "utility_edge", "utility_node", "building", "road_segment",
          "road_node", "facility", "land_cover", "place", "admin_area", "terrain")


def delete_demo(conn: Connection) -> dict[str, int]:
    """Delete every ``source = 'demo'`` row; returns the counts per table."""
    out = {}
    for table in TABLES:
        res = conn.execute(text(f"DELETE FROM {table} WHERE source = :s"), {"s": SOURCE})
        out[table] = int(res.rowcount or 0)
    return out


def allocate_ids(conn: Connection, table: str, n: int) -> np.ndarray:
    """``n`` fresh ids from ``table``'s id sequence (safe with concurrent writers)."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rows = conn.execute(
        text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
        {"t": table, "n": n},
    ).scalars().all()
    return np.array(rows, dtype=np.int64)


def ewkb(local_geoms: Any, multi: bool = False) -> list[str]:
    """Hex EWKB (SRID 4326) of geometries given in the local frame (metres)."""
    geoms = np.asarray(to_lonlat(np.asarray(local_geoms, dtype=object)), dtype=object)
    if multi:
        single = shapely.get_type_id(geoms) == 3  # Polygon
        geoms[single] = shapely.multipolygons(geoms[single][:, None]) if single.any() else []
    geoms = shapely.set_srid(geoms, 4326)
    return list(shapely.to_wkb(geoms, hex=True, include_srid=True))


def copy_rows(conn: Connection, table: str, columns: Sequence[str],
              rows: Iterable[Sequence[Any]]) -> int:
    """COPY ``rows`` (tuples of plain Python values in ``columns`` order) into ``table``."""
    raw = conn.connection.driver_connection
    assert raw is not None
    n = 0
    cols = ", ".join(columns)
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)
            n += 1
    return n


def copy_columns(conn: Connection, table: str, data: dict[str, Any]) -> int:
    """COPY column arrays (all the same length) into ``table``; ``source`` is added.

    Dicts are written as JSON text (for JSONB columns).
    """
    names = list(data)
    cols = [v.tolist() if isinstance(v, np.ndarray) else
            [json.dumps(x, ensure_ascii=False) if isinstance(x, dict) else x for x in v]
            for v in data.values()]
    n = len(cols[0]) if cols else 0
    rows = zip(*cols, strict=True)
    return copy_rows(conn, table, ["source", *names], ((SOURCE, *r) for r in rows)) if n else 0
