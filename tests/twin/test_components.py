"""Road network components and snapping to them, on a hand-built network (lon 103, lat 13).

    I0 - I1 - I2                (island of 3, 22 m north of the start S)
    S                            start point, 66 m north of M0
    M0 - M1 - M2 - M3 - M4 - M5  (main network; H1 hospital at M2, H2 66 m south of M5)
                        H2
                        J0 - J1 (island of 2, 22 m south of H2)

    K0 - K1 - K2 ~2.2 km north (a far island); Z ~2.2 km south (a node with no segment)

Spacing 0.001° (~108 m), 10 m/s. By nearest node alone S snaps to I0 and H2 to J0, and
nothing is reachable.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Connection, Engine, text

from twin import localdb
from twin.analysis import routing
from twin.analysis.components import refresh_components
from twin.migrate import upgrade
from twin.scenarios import closure
from twin.settings import Settings

X0, Y0, D = 103.0, 13.0, 0.001
SRC = "test-components"
NODES = (
    {f"M{i}": (X0 + i * D, Y0) for i in range(6)}
    | {f"I{i}": (X0 + i * 0.0003, Y0 + 0.0008) for i in range(3)}
    | {f"J{i}": (X0 + 5 * D + i * 0.0003, Y0 - 0.0008) for i in range(2)}
    | {f"K{i}": (X0 + i * 0.0003, Y0 + 0.02) for i in range(3)}
    | {"Z": (X0 + 0.01, Y0 - 0.02)}
)
EDGES = [(f"M{i}", f"M{i + 1}") for i in range(5)] + [
    ("I0", "I1"), ("I1", "I2"), ("J0", "J1"), ("K0", "K1"), ("K1", "K2")
]
START = (X0, Y0 + 0.0006)
HOSPITALS = {"H1": (X0 + 2 * D, Y0 - 0.0001), "H2": (X0 + 5 * D, Y0 - 0.0006)}


def add_network(conn: Connection, source: str, nodes: dict[str, tuple[float, float]],
                edges: list[tuple[str, str]]) -> dict[str, int]:
    """Insert nodes and two-way segments at 10 m/s; returns node ids by name."""
    ids: dict[str, int] = {}
    for name, (x, y) in nodes.items():
        ids[name] = conn.execute(
            text("INSERT INTO road_node (source, source_id, geom) VALUES (:s, :n, "
                 "ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"),
            {"s": source, "n": name, "x": x, "y": y},
        ).scalar_one()
    for a, b in edges:
        conn.execute(
            text(
                "INSERT INTO road_segment (source, source_id, from_node, to_node, road_class, "
                "oneway, maxspeed_kmh, length_m, cost, reverse_cost, bridge, geom) "
                "SELECT :s, :sid, :fa, :fb, 'residential', false, 36, l, l / 10, l / 10, false, "
                "g FROM (SELECT ST_MakeLine(ST_SetSRID(ST_MakePoint(:xa, :ya), 4326), "
                "ST_SetSRID(ST_MakePoint(:xb, :yb), 4326)) AS g) q, "
                "LATERAL (SELECT ST_Length(g::geography) AS l) t"
            ),
            {"s": source, "sid": f"{a}-{b}", "fa": ids[a], "fb": ids[b], "xa": nodes[a][0],
             "ya": nodes[a][1], "xb": nodes[b][0], "yb": nodes[b][1]},
        )
    return ids


@pytest.fixture(scope="module")
def net(engine: Engine) -> dict[str, int]:
    with engine.begin() as conn:
        for table in ("road_segment", "road_node", "facility"):
            conn.execute(text(f"DELETE FROM {table} WHERE source = :s"), {"s": SRC})
        ids = add_network(conn, SRC, NODES, EDGES)
        for name, (x, y) in HOSPITALS.items():
            conn.execute(
                text("INSERT INTO facility (source, source_id, kind, name_vi, geom) VALUES "
                     "(:s, :n, 'hospital', :n, ST_SetSRID(ST_MakePoint(:x, :y), 4326))"),
                {"s": SRC, "n": name, "x": x, "y": y},
            )
        refresh_components(conn)
    return ids


def _knn(conn: Connection, x: float, y: float) -> int:
    """The nearest node alone (the rule before components)."""
    return int(conn.execute(
        text("SELECT id FROM road_node ORDER BY geom <-> ST_SetSRID(ST_MakePoint(:x, :y), "
             "4326) LIMIT 1"), {"x": x, "y": y}).scalar_one())


def test_components_are_recorded(net: dict[str, int], engine: Engine) -> None:
    with engine.connect() as conn:
        rows = {r[0]: (r[1], r[2]) for r in conn.execute(text(
            "SELECT source_id, component, component_size FROM road_node WHERE source = :s"),
            {"s": SRC})}
    for prefix, size in (("M", 6), ("I", 3), ("J", 2), ("K", 3), ("Z", 1)):
        members = {n: v for n, v in rows.items() if n.startswith(prefix)}
        # pgRouting numbers a component by its smallest node id
        assert {v for v in members.values()} == {(min(net[n] for n in members), size)}, prefix


def test_refresh_writes_only_what_changed(net: dict[str, int], engine: Engine) -> None:
    with engine.begin() as conn:
        again = refresh_components(conn)
        conn.execute(text("UPDATE road_node SET component = NULL, component_size = NULL "
                          "WHERE source = :s"), {"s": SRC})
        redone = refresh_components(conn)
    assert again.updated == 0
    assert redone.updated == len(NODES)
    assert redone.components >= 5 and redone.largest >= 6
    assert "connected component" in redone.note()


def test_start_next_to_an_island_snaps_to_the_main_network(
    net: dict[str, int], engine: Engine
) -> None:
    with engine.connect() as conn:
        assert _knn(conn, *START) == net["I0"]  # the old rule's pick
        assert _knn(conn, *HOSPITALS["H2"]) == net["J0"]
        node, dist = routing.nearest_node(conn, *START)
        drive = routing.nearest_by_drive(conn, *START, "hospital", k=2, candidates=2)
    assert node == net["M0"]
    assert dist == pytest.approx(0.0006 * 110_600, rel=0.02)
    assert [f["name_vi"] for f in drive] == ["H1", "H2"]
    leg = D * 111_320 * 0.9744  # one east-west edge at 13°N, metres
    h1, h2 = drive
    assert h1["route_m"] == pytest.approx(2 * leg, rel=0.02)
    assert h2["route_m"] == pytest.approx(5 * leg, rel=0.02)
    assert h1["drive_s"] == pytest.approx(h1["route_m"] / 10, rel=0.01)
    assert h2["access_m"] == pytest.approx(0.0006 * 110_600, rel=0.02)  # M5, not J0


def test_point_near_nothing_but_an_island_snaps_to_it(
    net: dict[str, int], engine: Engine
) -> None:
    with engine.connect() as conn:
        node, dist = routing.nearest_node(conn, X0 + 0.0001, Y0 + 0.0201)
        alone, _ = routing.nearest_node(conn, X0 + 0.0101, Y0 - 0.0201, car=False)
        # a drive starts on a road a car may use: a node with no segment is no start
        by_car, _ = routing.nearest_node(conn, X0 + 0.0101, Y0 - 0.0201)
        drive = routing.nearest_by_drive(conn, X0 + 0.0001, Y0 + 0.0201, "hospital", k=2,
                                         candidates=2)
    assert node == net["K0"] and dist < 20
    assert alone == net["Z"] and by_car != net["Z"]
    assert drive == []  # no hospital is reachable from the island


def test_ties_go_to_the_nearest_and_prefer_wins(net: dict[str, int], engine: Engine) -> None:
    near_island = (X0 + 0.0004, Y0 + 0.0007)  # 15 m from I1, 89 m from M0
    with engine.connect() as conn:
        node, _ = routing.nearest_node(conn, X0 + 2.6 * D, Y0 - 0.0002)
        island = conn.execute(text("SELECT component FROM road_node WHERE id = :i"),
                              {"i": net["I0"]}).scalar_one()
        main, _ = routing.nearest_node(conn, *near_island)
        preferred, _ = routing.nearest_node(conn, *near_island, prefer=island)
    assert node == net["M3"]
    assert main == net["M0"]
    assert preferred == net["I1"]  # a route starting on the island ends on it


def test_closure_snaps_hospitals_like_routing(net: dict[str, int], engine: Engine) -> None:
    with engine.connect() as conn:
        nodes = closure._hospital_nodes(conn)
    assert {net["M2"], net["M5"]} <= nodes
    assert net["J0"] not in nodes


def test_migration_0006_computes_components_of_existing_roads() -> None:
    from alembic import command

    from twin.db import make_engine
    from twin.migrate import alembic_config

    base = Settings()
    name = f"twin_m6_{uuid.uuid4().hex[:8]}"
    localdb.ensure_database(base, name)
    url = base.url(name)
    try:
        upgrade(url, "0005")
        eng = make_engine(Settings(database_url=url), pool_size=1)
        try:
            with eng.begin() as c:
                ids = add_network(c, "m6", NODES, EDGES)
            upgrade(url)
            with eng.connect() as c:
                got = dict(c.execute(text(
                    "SELECT id, component_size FROM road_node")).tuples().all())
            assert got[ids["M3"]] == 6 and got[ids["I0"]] == 3 and got[ids["Z"]] == 1
            command.downgrade(alembic_config(url), "0005")
            with eng.connect() as c:
                assert c.execute(text(
                    "SELECT count(*) FROM information_schema.columns WHERE table_name = "
                    "'road_node' AND column_name LIKE 'component%'")).scalar_one() == 0
        finally:
            eng.dispose()
    finally:
        localdb.drop_database(base, name)
