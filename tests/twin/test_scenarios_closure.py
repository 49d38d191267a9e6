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


def nodes_at(x0: float, y0: float) -> dict[str, tuple[float, float]]:
    """The network's node positions with W0 at (x0, y0)."""
    return {f"W{i}": (x0 + i * D, y0) for i in range(5)} | {
        f"E{i}": (x0 + (i + 6) * D, y0) for i in range(3)
    } | {"E3": (x0 + 7 * D, y0 - D), "X": (x0 + 2 * D, y0 + D)}


NODES = nodes_at(X0, Y0)
EDGES = [("W0", "W1"), ("W1", "W2"), ("W2", "W3"), ("W3", "W4"), ("W4", "E0"),
         ("E0", "E1"), ("E1", "E2"), ("E1", "E3"), ("W1", "X"), ("X", "W3")]


def build(engine: Engine, x0: float = X0, y0: float = Y0, src: str = SRC) -> dict[str, int]:
    """The network, facilities and buildings (W0 at x0, y0; rows of source ``src``);
    returns segment ids by 'A-B' name."""
    ids: dict[str, int] = {}
    at = nodes_at(x0, y0)
    with engine.begin() as conn:
        for table in ("road_segment", "road_node", "facility", "building"):
            conn.execute(text(f"DELETE FROM {table} WHERE source = :s"), {"s": src})
        for name, (x, y) in at.items():
            ids[name] = conn.execute(
                text("INSERT INTO road_node (source, source_id, geom) VALUES (:s, :n, "
                     "ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"),
                {"s": src, "n": name, "x": x, "y": y},
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
                {"s": src, "sid": f"{a}-{b}", "fa": ids[a], "fb": ids[b],
                 "bridge": (a, b) == ("W4", "E0"), "xa": at[a][0], "ya": at[a][1],
                 "xb": at[b][0], "yb": at[b][1]},
            ).scalar_one()
        for name, kind, node in (("H", "hospital", "W0"), ("F", "fire_station", "W1")):
            conn.execute(
                text("INSERT INTO facility (source, source_id, kind, name_vi, geom) VALUES "
                     "(:s, :n, :k, :n, ST_SetSRID(ST_MakePoint(:x, :y), 4326))"),
                {"s": src, "n": name, "k": kind, "x": at[node][0], "y": at[node][1] - 0.0001},
            )
        for name in ("W3", "E1", "E2"):
            conn.execute(
                text("INSERT INTO building (source, source_id, use, population, area_m2, geom) "
                     "VALUES (:s, :n, 'residential', 5, 80, ST_Multi(ST_Expand(ST_SetSRID("
                     "ST_MakePoint(:x, :y), 4326), 0.00003)))"),
                {"s": src, "n": name, "x": at[name][0], "y": at[name][1] + 0.0002},
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


def test_facilities_timed_from_a_given_origin_before_and_after(
    engine: Engine, segs  # noqa: ANN001
) -> None:
    with engine.begin() as conn:
        out = closure.run_closure(conn, segment_ids=[segs["W2-W3"]], origin=list(NODES["W4"]),
                                  samples=0, save=False)
    s = out["summary"]
    assert s["origin"]["source"] == "given"
    assert (s["origin"]["lon"], s["origin"]["lat"]) == NODES["W4"]
    by = {f["name_vi"]: f for f in s["facilities"]}
    # W4 → W0: three segments before; round the detour W3 - X - W1 after (two long sides)
    h = by["H"]
    assert h["kind"] == "hospital" and not h["unreachable"] and h["changed"]
    assert h["after_s"] > h["before_s"] > 0
    assert h["delta_s"] == pytest.approx(h["after_s"] - h["before_s"], abs=0.11)
    assert h["after_m"] > h["before_m"]
    assert by["F"]["kind"] == "fire_station" and by["F"]["after_s"] > by["F"]["before_s"]
    assert s["notes_i18n"]["vi"] and s["notes_i18n"]["en"][0].startswith("method")
    # both routes of each facility, from the origin, plus the origin and the facilities
    feats = [f for f in out["features"]["features"] if f["properties"].get("origin")]
    routes = {(f["properties"]["name_vi"], f["properties"]["layer"]) for f in feats
              if f["properties"]["layer"].startswith("route_")}
    assert routes == {("H", "route_before"), ("H", "route_after"), ("F", "route_before"),
                      ("F", "route_after")}
    after = next(f for f in feats if f["properties"]["layer"] == "route_after"
                 and f["properties"]["name_vi"] == "H")
    xs = [c[0] for c in after["geometry"]["coordinates"]]
    ys = [c[1] for c in after["geometry"]["coordinates"]]
    assert xs[0] == pytest.approx(NODES["W4"][0]) and max(ys) == pytest.approx(NODES["X"][1])
    assert [f["properties"]["layer"] for f in out["features"]["features"]].count("origin") == 1


def test_the_default_origin_is_the_first_closed_roads_midpoint(
    engine: Engine, segs  # noqa: ANN001
) -> None:
    with engine.begin() as conn:
        out = closure.run_closure(conn, segment_ids=[segs["W4-E0"], segs["W2-W3"]], samples=0,
                                  save=False)
    o = out["summary"]["origin"]
    assert o["source"] == "closed_midpoint" and o["segment_id"] == segs["W4-E0"]
    assert o["lon"] == pytest.approx(X0 + 5 * D, abs=1e-6) and o["lat"] == pytest.approx(Y0)


def test_a_facility_cut_off_from_the_origin_is_unreachable_after(
    engine: Engine, segs  # noqa: ANN001
) -> None:
    with engine.begin() as conn:
        out = closure.run_closure(conn, segment_ids=[segs["W4-E0"]], origin=list(NODES["E2"]),
                                  samples=0, save=False)
    h = next(f for f in out["summary"]["facilities"] if f["name_vi"] == "H")
    assert h["before_s"] > 0 and h["after_s"] is None and h["unreachable"]
    with engine.begin() as conn, pytest.raises(InputError, match="origin"):
        closure.run_closure(conn, segment_ids=[segs["W4-E0"]], origin=[101.0], save=False)
