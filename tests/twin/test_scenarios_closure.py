"""Road closure on a hand-built network with known cut-offs (lon 101, lat 11).

            X                          (a detour W1 - X - W3)
          /   \\
    W0 - W1 - W2 - W3 - W4 ==bridge== E0 - E1 - E2
    (H)  (F)                                |
                                            E3

H hospital at W0, F fire station at W1. The east bank hangs on the bridge alone.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from twin.errors import InputError
from twin.scenarios import closure

X0, Y0, D = 101.0, 11.0, 0.001
SRC = "test-closure"
NODES = {f"W{i}": (X0 + i * D, Y0) for i in range(5)} | {
    f"E{i}": (X0 + (i + 6) * D, Y0) for i in range(3)
} | {"E3": (X0 + 7 * D, Y0 - D), "X": (X0 + 2 * D, Y0 + D)}
EDGES = [("W0", "W1"), ("W1", "W2"), ("W2", "W3"), ("W3", "W4"), ("W4", "E0"),
         ("E0", "E1"), ("E1", "E2"), ("E1", "E3"), ("W1", "X"), ("X", "W3")]


def build(engine: Engine) -> dict[str, int]:
    """The network, facilities and buildings; returns segment ids by 'A-B' name."""
    ids: dict[str, int] = {}
    with engine.begin() as conn:
        for table in ("road_segment", "road_node", "facility", "building"):
            conn.execute(text(f"DELETE FROM {table} WHERE source = :s"), {"s": SRC})
        for name, (x, y) in NODES.items():
            ids[name] = conn.execute(
                text("INSERT INTO road_node (source, source_id, geom) VALUES (:s, :n, "
                     "ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"),
                {"s": SRC, "n": name, "x": x, "y": y},
            ).scalar_one()
        segs = {}
        for a, b in EDGES:
            segs[f"{a}-{b}"] = conn.execute(
                text(
                    "INSERT INTO road_segment (source, source_id, from_node, to_node, "
                    "road_class, oneway, maxspeed_kmh, length_m, cost, reverse_cost, bridge, "
                    "geom) SELECT :s, :sid, :fa, :fb, 'residential', false, 36, l, l / 10, "
                    "l / 10, :bridge, g FROM (SELECT ST_MakeLine(ST_SetSRID(ST_MakePoint(:xa, "
                    ":ya), 4326), ST_SetSRID(ST_MakePoint(:xb, :yb), 4326)) AS g) q, "
                    "LATERAL (SELECT ST_Length(g::geography) AS l) t RETURNING id"
                ),
                {"s": SRC, "sid": f"{a}-{b}", "fa": ids[a], "fb": ids[b],
                 "bridge": (a, b) == ("W4", "E0"), "xa": NODES[a][0], "ya": NODES[a][1],
                 "xb": NODES[b][0], "yb": NODES[b][1]},
            ).scalar_one()
        for name, kind, at in (("H", "hospital", "W0"), ("F", "fire_station", "W1")):
            conn.execute(
                text("INSERT INTO facility (source, source_id, kind, name_vi, geom) VALUES "
                     "(:s, :n, :k, :n, ST_SetSRID(ST_MakePoint(:x, :y), 4326))"),
                {"s": SRC, "n": name, "k": kind, "x": NODES[at][0], "y": NODES[at][1] - 0.0001},
            )
        for name in ("W3", "E1", "E2"):
            conn.execute(
                text("INSERT INTO building (source, source_id, use, population, area_m2, geom) "
                     "VALUES (:s, :n, 'residential', 5, 80, ST_Multi(ST_Expand(ST_SetSRID("
                     "ST_MakePoint(:x, :y), 4326), 0.00003)))"),
                {"s": SRC, "n": name, "x": NODES[name][0], "y": NODES[name][1] + 0.0002},
            )
    return segs


@pytest.fixture(scope="module")
def segs(engine: Engine) -> dict[str, int]:
    return build(engine)


def building(engine: Engine, name: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT id FROM building WHERE source = :s AND "
                                     "source_id = :n"), {"s": SRC, "n": name}).scalar_one())


def test_closing_the_bridge_cuts_the_east_bank_off(engine: Engine, segs) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        out = closure.run_closure(conn, segment_ids=[segs["W4-E0"]],
                                  points=[list(NODES["E2"]), list(NODES["W4"])], save=False)
    s = out["summary"]
    assert out["id"] is None and out["kind"] == "closure"
    assert s["closed"]["count"] == 1
    assert s["cut_off"] == {"groups": 1, "nodes": 4, "segments": 3,
                            "length_m": pytest.approx(3 * 107, rel=0.05), "with_hospital": 0}
    assert sorted(s["buildings"]["ids"]) == sorted([building(engine, "E1"),
                                                    building(engine, "E2")])
    assert s["buildings"]["population"] == 10
    by = {(tuple(t["point"]), t["kind"]): t for t in s["drive_times"]}
    east = by[(NODES["E2"], "hospital")]
    assert east["before"]["name_vi"] == "H" and east["after"] is None and east["unreachable"]
    west = by[(NODES["W4"], "hospital")]
    assert west["delta_s"] == 0 and not west["unreachable"]
    assert by[(NODES["E2"], "fire_station")]["after"] is None
    layers = {f["properties"]["layer"] for f in out["features"]["features"]}
    assert {"closed", "cut_off", "building", "route_before"} <= layers


def test_a_closure_with_a_detour_cuts_nothing_but_slows_the_drive(
    engine: Engine, segs  # noqa: ANN001
) -> None:
    with engine.begin() as conn:
        out = closure.run_closure(conn, segment_ids=[segs["W2-W3"]], samples=4)
    s = out["summary"]
    assert out["id"] is not None
    assert s["cut_off"]["nodes"] == 0 and s["buildings"]["count"] == 0
    # the sample points are the closed segment's ends, W2 and W3
    w3 = next(t for t in s["drive_times"]
              if t["kind"] == "hospital" and t["point"] == pytest.approx(list(NODES["W3"])))
    assert w3["after"]["drive_s"] > w3["before"]["drive_s"]
    assert w3["delta_s"] == pytest.approx(w3["after"]["drive_s"] - w3["before"]["drive_s"])


def test_a_dead_end_segment_strands_its_tip(engine: Engine, segs) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        out = closure.run_closure(conn, segment_ids=[segs["E1-E2"]], samples=0, save=False)
    s = out["summary"]
    assert s["cut_off"]["nodes"] == 1 and s["cut_off"]["segments"] == 0
    assert s["buildings"]["ids"] == [building(engine, "E2")]
    assert s["drive_times"] == []


def test_bad_closures(engine: Engine, segs) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        with pytest.raises(InputError, match="unknown road segment"):
            closure.run_closure(conn, segment_ids=[segs["W0-W1"], 987654321], save=False)
        with pytest.raises(InputError, match="segment_ids or the scenario_id"):
            closure.run_closure(conn, save=False)
        with pytest.raises(InputError, match="empty"):
            closure.run_closure(conn, segment_ids=[], save=False)
        with pytest.raises(InputError, match="lon must be"):
            closure.run_closure(conn, segment_ids=[segs["W0-W1"]], points=[[500, 1]],
                                save=False)
