"""Routing on a small hand-built network with known answers (far from other test data).

    B0 - B1 - B2 - B3          (north bank; H1 hospital at B0)
                    |  bridge
    A0 - A1 - A2 - A3 - A4     (south bank; start at A0; H2 hospital at A4)

Spacing 0.001° (~110 m), all at 10 m/s. H1 is nearer in a straight line (~333 m) but
8 edges away by road; H2 is 4 edges away.
"""

import pytest
from sqlalchemy import text

from twin.analysis import routing
from twin.errors import InputError

# open sea east of the coast, inside the city's bounds (the analysis API checks them) and
# away from every other test's data
X0, Y0, D = 110.0, 15.0, 0.001
NODES = {f"A{i}": (X0 + i * D, Y0) for i in range(5)} | {
    f"B{i}": (X0 + i * D, Y0 + 3 * D) for i in range(4)
}
EDGES = [
    ("A0", "A1"),
    ("A1", "A2"),
    ("A2", "A3"),
    ("A3", "A4"),
    ("A3", "B3"),
    ("B3", "B2"),
    ("B2", "B1"),
    ("B1", "B0"),
]


@pytest.fixture(scope="module")
def net(engine):
    ids = {}
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM road_segment WHERE source = 'test-routing'"))
        conn.execute(text("DELETE FROM road_node WHERE source = 'test-routing'"))
        conn.execute(text("DELETE FROM facility WHERE source = 'test-routing'"))
        conn.execute(text("DELETE FROM building WHERE source = 'test-routing'"))
        for name, (x, y) in NODES.items():
            ids[name] = conn.execute(
                text(
                    "INSERT INTO road_node (source, source_id, geom) VALUES ('test-routing', :n, "
                    "ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"
                ),
                {"n": name, "x": x, "y": y},
            ).scalar_one()
        for a, b in EDGES:
            conn.execute(
                text(
                    "INSERT INTO road_segment (source, source_id, from_node, to_node, road_class, "
                    "oneway, maxspeed_kmh, length_m, cost, reverse_cost, bridge, geom) "
                    "SELECT 'test-routing', :sid, :fa, :fb, 'residential', false, 36, l, l / 10, "
                    "l / 10, false, g FROM (SELECT ST_MakeLine("
                    "ST_SetSRID(ST_MakePoint(:xa, :ya), 4326), "
                    "ST_SetSRID(ST_MakePoint(:xb, :yb), 4326)) AS g) s, "
                    "LATERAL (SELECT ST_Length(g::geography) AS l) t"
                ),
                {
                    "sid": f"{a}-{b}",
                    "fa": ids[a],
                    "fb": ids[b],
                    "xa": NODES[a][0],
                    "ya": NODES[a][1],
                    "xb": NODES[b][0],
                    "yb": NODES[b][1],
                },
            )
        for name, at in (("H1", "B0"), ("H2", "A4")):
            conn.execute(
                text(
                    "INSERT INTO facility (source, source_id, kind, name_vi, geom) VALUES "
                    "('test-routing', :n, 'hospital', :n, ST_SetSRID(ST_MakePoint(:x, :y), 4326))"
                ),
                {"n": name, "x": NODES[at][0], "y": NODES[at][1] + 0.00005},
            )
        conn.execute(
            text(
                "INSERT INTO building (source, source_id, use, population, area_m2, levels, geom) "
                "SELECT 'test-routing', 'b' || i, 'residential', 4, 100, 2, ST_Multi(ST_Buffer("
                "ST_SetSRID(ST_MakePoint(:x + i * 0.0002, :y + 0.0003), 4326), 0.00005, 1)) "
                "FROM generate_series(0, 4) i"
            ),
            {"x": X0, "y": Y0},
        )
    return ids


def test_straight_line_prefers_h1_drive_prefers_h2(net, engine):
    with engine.connect() as conn:
        straight = routing.nearest_straight(conn, X0, Y0, "hospital", 2)
        drive = routing.nearest_by_drive(conn, X0, Y0, "hospital", 2)
    assert [f["name_vi"] for f in straight] == ["H1", "H2"]
    assert [f["name_vi"] for f in drive] == ["H2", "H1"]
    h2, h1 = drive
    leg = 0.001 * 111_320 * 0.985  # one east-west edge at 10°N, metres
    assert h2["route_m"] == pytest.approx(4 * leg, rel=0.02)
    assert h2["drive_s"] == pytest.approx(h2["route_m"] / 10, rel=0.01)
    assert h1["drive_s"] > 2 * h2["drive_s"] * 0.9
    assert h2["route"]["coordinates"][0] == pytest.approx([X0, Y0])
    assert h2["route"]["coordinates"][-1] == pytest.approx(list(NODES["A4"]))


def test_closing_the_bridge_cuts_h1_off(net, engine):
    with engine.connect() as conn:
        bridge = conn.execute(
            text(
                "SELECT id FROM road_segment WHERE source_id = 'A3-B3' AND source = 'test-routing'"
            )
        ).scalar_one()
        drive = routing.nearest_by_drive(conn, X0, Y0, "hospital", 2, closed=[bridge])
    assert [f["name_vi"] for f in drive] == ["H2"]


def test_service_area_reaches_known_nodes(net, engine):
    with engine.connect() as conn:
        # each edge takes ~11 s: 24 s reaches A0, A1, A2 but not A3
        area = routing.service_area(conn, X0, Y0, 0.4)
        wider = routing.service_area(conn, X0, Y0, 1.0)
    assert area["reached_nodes"] == 3
    assert area["area"]["type"] == "Polygon"
    # 60 s: A0…A4 (≤ 44 s) but not B3 (A3 + the 333 m bridge ≈ 66 s)
    assert wider["reached_nodes"] == 5


def test_within_radius_counts(net, engine):
    with engine.connect() as conn:
        public = routing.within_radius(conn, X0, Y0, 200, staff=False)
        staff = routing.within_radius(conn, X0, Y0, 200, staff=True)
    assert public["buildings"] == {"count": 5, "population": 20, "floor_area_m2": 1000.0}
    assert "utility_nodes" not in public and "utility_nodes" in staff
    assert public["facilities"]["count"] == 0


def test_bad_parameters(net, engine):
    with engine.connect() as conn:
        with pytest.raises(InputError):
            routing.nearest_by_drive(conn, 500, 10, "hospital")
        with pytest.raises(InputError):
            routing.service_area(conn, X0, Y0, 0)
        with pytest.raises(InputError):
            routing.within_radius(conn, X0, Y0, 99999, staff=False)
