"""A new user's story: ``twin demo --scale small``, then ``twin import osm`` of the Hải Châu
core into the same database. The OSM road graph overlaps the demo's without touching it;
routing must still answer from anywhere in Hải Châu.

Before road nodes knew their components, a start snapped to whichever node was nearest
(often one of the OSM graph) and hospitals to theirs (often the demo's): nearest by
drive answered fewer hospitals than asked, and the Dragon Bridge closure none at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from twin.analysis import routing
from twin.demo import build_demo
from twin.ingest.osm import import_osm
from twin.progress import NullReporter
from twin.scenarios import closure
from twin.settings import Settings

#: a 10 × 9 grid, ~200 m apart, over the OSM core (108.2047–108.2244 E, 16.0469–16.0652 N)
POINTS = [(108.206 + i * 0.002, 16.048 + j * 0.002) for i in range(10) for j in range(9)]


@pytest.fixture(scope="module")
def mixed(engine: Engine, settings: Settings, danang: Path) -> None:
    with engine.begin() as conn:
        build_demo(conn, reporter=NullReporter(), scale="small", seed=1, settings=settings)
    with engine.begin() as conn:
        summary = import_osm(conn, danang / "osm_hai_chau_core" / "map.osm",
                             reporter=NullReporter())
    assert any("connected component" in n for n in summary.notes)


def _answers(conn: Connection) -> list[int]:
    return [len(routing.nearest_by_drive(conn, x, y, "hospital", 3)) for x, y in POINTS]


def test_two_networks_are_told_apart(mixed: None, engine: Engine) -> None:
    with engine.connect() as conn:
        largest = dict(conn.execute(text(
            "SELECT source, max(component_size) FROM road_node WHERE source IN ('demo', 'osm') "
            "GROUP BY source")).tuples().all())
        demo_nodes = conn.execute(text(
            "SELECT count(*) FROM road_node WHERE source = 'demo'")).scalar_one()
    assert largest["demo"] == demo_nodes  # the demo is one network
    assert 2000 < largest["osm"] < demo_nodes  # the OSM core: a second, smaller one


def test_nearest_hospitals_by_drive_from_hai_chau(mixed: None, engine: Engine) -> None:
    with engine.connect() as conn:
        hospitals = conn.execute(text(
            "SELECT count(*) FROM facility WHERE kind = 'hospital' AND source = 'demo'"
        )).scalar_one()
        assert hospitals >= 3
        got = _answers(conn)
        for x, y in POINTS[:3]:
            for f in routing.nearest_by_drive(conn, x, y, "hospital", 3):
                assert f["drive_s"] >= 0 and len(f["route"]["coordinates"]) >= 2
    assert got == [3] * len(POINTS)


def test_the_old_rule_fails_here(mixed: None, engine: Engine) -> None:
    """The story reproduces the problem: snapping to the nearest node alone (no
    components) leaves points of the grid with fewer than 3 hospitals, and the Dragon
    Bridge closure with no hospital drive times."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE road_node SET component = NULL, component_size = NULL"))
        got = _answers(conn)
        times = _bridge_closure(conn)
        conn.rollback()
    assert min(got) < 3, "the grid no longer catches the islands problem; move the points"
    assert any(t["before"] is None for t in times)


def _bridge_closure(conn: Connection) -> list[dict[str, Any]]:
    """Hospital drive times of the Dragon Bridge closure (not saved)."""
    bridge = conn.execute(text(
        "SELECT id FROM road_segment WHERE source = 'demo' AND name = 'Cầu Rồng'"
    )).scalars().all()
    assert bridge
    answer = closure.run_closure(conn, segment_ids=list(bridge), save=False)
    return [t for t in answer["summary"]["drive_times"] if t["kind"] == "hospital"]


def test_dragon_bridge_closure_has_drive_times(mixed: None, engine: Engine) -> None:
    with engine.begin() as conn:
        times = _bridge_closure(conn)
        conn.rollback()
    assert times
    for t in times:
        assert t["before"] is not None and t["after"] is not None, t["point"]
        assert t["after"]["drive_s"] >= t["before"]["drive_s"]
