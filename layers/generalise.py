"""Low-zoom buildings: merged blocks in ``building_generalised`` (migration 0012).

Statement triggers on ``building`` mark the z14 cells a write touched as dirty; the tile
query draws a dirty cell's raw footprints, so tiles are right at every moment, and
:func:`refresh` rebuilds the dirty cells' blocks (``twin_generalise_cells`` in SQL).
Importers and the demo call it at the end of their transaction; ``twin tiles
generalise`` runs it by hand.
"""

from __future__ import annotations

import time

from sqlalchemy import Connection, text

from twin.progress import NullReporter, Reporter

BATCH_CELLS = 4
"""Cells rebuilt per statement: a dense z14 cell of the large demo holds ~7,000
footprints (about a second of DBSCAN, union and simplification)."""


def dirty_cells(conn: Connection) -> list[int]:
    return [int(c) for c in conn.execute(text(
        "SELECT cell FROM building_generalised_dirty ORDER BY cell")).scalars()]


def refresh(conn: Connection, reporter: Reporter | None = None,
            everything: bool = False) -> tuple[int, int, float]:
    """Rebuild the dirty cells (all cells with buildings when ``everything``); returns
    (cells, blocks written, seconds)."""
    reporter = reporter or NullReporter()
    started = time.perf_counter()
    if everything:
        conn.execute(text(
            "INSERT INTO building_generalised_dirty SELECT DISTINCT twin_cell14(geom_3857) "
            "FROM building WHERE geom_3857 IS NOT NULL ON CONFLICT DO NOTHING"))
    cells = dirty_cells(conn)
    blocks = 0
    if cells:
        task = reporter.task("generalising low-zoom buildings (z14 cells)", total=len(cells))
        for i in range(0, len(cells), BATCH_CELLS):
            part = cells[i:i + BATCH_CELLS]
            blocks += int(conn.execute(text(
                "SELECT twin_generalise_cells(CAST(:c AS bigint[]))"), {"c": part}).scalar_one())
            reporter.advance(task, len(part))
        reporter.done(task)
    return len(cells), blocks, time.perf_counter() - started
