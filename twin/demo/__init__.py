"""The deterministic demo city of Đà Nẵng (``twin demo --scale small|city|large``).

Built from the facts the project carries in ``data/demo/*.yaml``: the land and the
rivers, the historic districts and today's wards, main roads and bridges, hospitals and
water plants; everything else (street grid, buildings, utilities, schools…) is drawn at
random from ``seed``, so one seed always gives the same city. All rows have
``source = 'demo'``; a rebuild deletes the earlier demo rows first, in the caller's
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from twin.ingest.summary import Summary
    from twin.progress import Reporter
    from twin.settings import Settings

SCALES = ("small", "city", "large")


@dataclass(frozen=True)
class Scale:
    """How big a demo is: street spacing factor, building target, rows of lots, schools."""

    grid: float
    buildings: int
    rows: int
    schools_per_ward: int


PARAMS = {
    "small": Scale(grid=2.2, buildings=3_500, rows=1, schools_per_ward=1),
    "city": Scale(grid=1.0, buildings=50_000, rows=1, schools_per_ward=3),
    "large": Scale(grid=0.65, buildings=520_000, rows=2, schools_per_ward=6),
}


def build_demo(conn: Connection, *, reporter: Reporter, scale: str, seed: int,
               settings: Settings) -> Summary:
    """Build (or rebuild) the demo city in the caller's transaction.

    Parameters
    ----------
    conn
        Connection inside a transaction (the CLI passes ``engine.begin()``).
    reporter
        Progress reporter (one task per stage).
    scale
        ``small`` (~3.5k buildings, for tests), ``city`` (~50k, the demo) or ``large``
        (≥500k, for benchmarks).
    seed
        Random seed: the same seed gives the same city.
    settings
        Where the DEM is written: ``settings.terrain_dir / 'demo_dem.tif'``.

    Returns
    -------
    Summary
        Rows inserted per table, with notes.
    """
    from twin.demo.build import build

    if scale not in SCALES:
        from twin.errors import InputError

        raise InputError(f"unknown demo scale {scale!r}; choose one of {', '.join(SCALES)}")
    return build(conn, reporter=reporter, params=PARAMS[scale], scale=scale, seed=seed,
                 settings=settings)


__all__ = ["PARAMS", "SCALES", "Scale", "build_demo"]
