"""Valve and switch traces on hand-built networks with known isolated sets (lon 102).

Water (lat 12)::

    P - e1 - J1 - e2 - V1 - e3 - J2 - e4 - J3 - e5 - V2 - e6 - J4 - e7 - J5
                                  |
                                  e8
                                  |
                                  V3 - e9 - J6

A burst on e4 is isolated by closing V1, V2 and V3: e3, e4, e5, e8 are isolated; e6,
e7 and e9 lose their only feed from the plant P. Buildings: two on e4, one on e7, one
on e2 (keeps water).

Power (lat 12.01), run radially from the substation S::

    S - l1 - J - l2 - T - l3 - N1 - l4 - SW1 - l5 - N2
             |
             l6 - N3

A failed transformer T darkens what lies below it: the section l3, l4 down to SW1,
which is opened; l5 beyond it is cut off until fed from elsewhere; l1, l2 and l6 keep
power.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from twin.errors import InputError
from twin.scenarios import outage

SRC = "test-outage"
X0, D = 102.0, 0.001
WATER_NODES = {
    "P": ("plant", 0, 0), "J1": ("junction", 1, 0), "V1": ("valve", 2, 0),
    "J2": ("junction", 3, 0), "J3": ("junction", 4, 0), "V2": ("valve", 5, 0),
    "J4": ("junction", 6, 0), "J5": ("junction", 7, 0), "V3": ("valve", 3, -1),
    "J6": ("junction", 3, -2),
}
WATER_EDGES = {
    "e1": ("P", "J1"), "e2": ("J1", "V1"), "e3": ("V1", "J2"), "e4": ("J2", "J3"),
    "e5": ("J3", "V2"), "e6": ("V2", "J4"), "e7": ("J4", "J5"), "e8": ("J2", "V3"),
    "e9": ("V3", "J6"),
}
POWER_NODES = {
    "S": ("substation", 0, 10), "J": ("pole", 1, 10), "T": ("transformer", 2, 10),
    "N1": ("pole", 3, 10), "SW1": ("switch", 4, 10), "N2": ("pole", 5, 10),
    "N3": ("pole", 1, 11),
}
POWER_EDGES = {"l1": ("S", "J"), "l2": ("J", "T"), "l3": ("T", "N1"), "l4": ("N1", "SW1"),
               "l5": ("SW1", "N2"), "l6": ("J", "N3")}
SERVICES = [("b-e4a", "water", "e4"), ("b-e4b", "water", "e4"), ("b-e7", "water", "e7"),
            ("b-e2", "water", "e2"), ("b-l3", "power", "l3"), ("b-l5", "power", "l5"),
            ("b-l6", "power", "l6")]


@pytest.fixture(scope="module")
def net(engine: Engine) -> dict[str, int]:
    ids: dict[str, int] = {}
    with engine.begin() as conn:
        for table in ("utility_service", "utility_edge", "utility_node", "building"):
            conn.execute(text(f"DELETE FROM {table} WHERE source = :s"), {"s": SRC})
        for network, nodes, edges, y0 in (("water", WATER_NODES, WATER_EDGES, 12.0),
                                          ("power", POWER_NODES, POWER_EDGES, 12.0)):
            for name, (kind, i, j) in nodes.items():
                ids[name] = conn.execute(
                    text("INSERT INTO utility_node (source, source_id, network, kind, name, "
                         "status, geom) VALUES (:s, :n, :net, :k, :n, 'in_service', "
                         "ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"),
                    {"s": SRC, "n": name, "net": network, "k": kind, "x": X0 + i * D,
                     "y": y0 + j * D},
                ).scalar_one()
            for name, (a, b) in edges.items():
                ids[name] = conn.execute(
                    text("INSERT INTO utility_edge (source, source_id, network, kind, name, "
                         "from_node, to_node, length_m, geom) SELECT :s, :n, :net, 'main', :n, "
                         ":a, :b, 110, ST_MakeLine(x.geom, y.geom) FROM utility_node x, "
                         "utility_node y WHERE x.id = :a AND y.id = :b RETURNING id"),
                    {"s": SRC, "n": name, "net": network, "a": ids[a], "b": ids[b]},
                ).scalar_one()
        for name, network, edge in SERVICES:
            ids[name] = conn.execute(
                text("INSERT INTO building (source, source_id, use, population, geom) VALUES "
                     "(:s, :n, 'residential', 4, ST_Multi(ST_Expand(ST_SetSRID(ST_MakePoint("
                     ":x, 12.0005), 4326), 0.00003))) RETURNING id"),
                {"s": SRC, "n": name, "x": X0 + len(ids) * 0.0001},
            ).scalar_one()
            conn.execute(
                text("INSERT INTO utility_service (source, source_id, network, building_id, "
                     "edge_id) VALUES (:s, :n, :net, :b, :e)"),
                {"s": SRC, "n": name, "net": network, "b": ids[name], "e": ids[edge]},
            )
    return ids


def names(ids: dict[str, int], wanted: list[int], kind: str = "edge") -> set[str]:
    """Names of edges (or buildings: ``kind='building'``) by id; the id spaces overlap."""
    pool = set(WATER_EDGES) | set(POWER_EDGES) if kind == "edge" else {s[0] for s in SERVICES}
    back = {v: k for k, v in ids.items() if k in pool}
    return {back[i] for i in wanted}


def test_a_burst_main_is_isolated_by_its_valves(engine: Engine, net) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        out = outage.run_outage(conn, edge_id=net["e4"])
    s = out["summary"]
    assert out["id"] is not None and s["network"] == "water"
    assert [d["name"] for d in s["operate"]] == sorted(["V1", "V2", "V3"],
                                                       key=lambda n: net[n])
    assert all(d["action"] == "close" for d in s["operate"])
    assert names(net, s["isolated"]["ids"]) == {"e3", "e4", "e5", "e8"}
    assert names(net, s["cut_off"]["ids"]) == {"e6", "e7", "e9"}
    assert s["isolated"]["length_m"] == pytest.approx(440)
    assert names(net, s["buildings"]["ids"], "building") == {"b-e4a", "b-e4b", "b-e7"}
    assert s["buildings"]["population"] == 12
    assert s["message"].startswith("close valves V1, V2, V3")  # ids ascend in build order
    assert s["message"].endswith("; 3 buildings without water")
    layers = {f["properties"]["layer"] for f in out["features"]["features"]}
    assert layers == {"isolated", "cut_off", "operate", "building"}


def test_a_shut_valve_is_a_boundary_not_an_action(engine: Engine, net) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        conn.execute(text("UPDATE utility_node SET status = 'closed' WHERE id = :i"),
                     {"i": net["V3"]})
        out = outage.run_outage(conn, edge_id=net["e4"], save=False)
        conn.rollback()
    s = out["summary"]
    assert [d["name"] for d in s["operate"]] == ["V1", "V2"]
    assert [d["name"] for d in s["already_shut"]] == ["V3"]


def test_a_failed_transformer_darkens_what_lies_below_it(
    engine: Engine, net  # noqa: ANN001
) -> None:
    with engine.begin() as conn:
        out = outage.run_outage(conn, node_id=net["T"], save=False)
    s = out["summary"]
    assert s["network"] == "power" and s["fault"]["kind"] == "transformer"
    assert [(d["name"], d["action"]) for d in s["operate"]] == [("SW1", "open")]
    assert names(net, s["isolated"]["ids"]) == {"l3", "l4"}
    assert names(net, s["cut_off"]["ids"]) == {"l5"}
    assert names(net, s["buildings"]["ids"], "building") == {"b-l3", "b-l5"}
    assert s["message"] == "open switches SW1; 2 buildings without power"


def test_a_cut_cable_takes_its_side_of_the_feeder(engine: Engine, net) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        out = outage.run_outage(conn, edge_id=net["l2"], save=False)
    s = out["summary"]
    assert names(net, s["isolated"]["ids"]) == {"l2", "l3", "l4"}
    assert names(net, s["cut_off"]["ids"]) == {"l5"}
    assert [d["name"] for d in s["operate"]] == ["SW1"]
    with engine.begin() as conn:
        tip = outage.run_outage(conn, edge_id=net["l6"], save=False)["summary"]
    assert names(net, tip["isolated"]["ids"]) == {"l6"} and tip["operate"] == []
    assert tip["message"] == "no switches to open; 1 building without power"


def test_bad_outages(engine: Engine, net) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        with pytest.raises(InputError, match="unknown utility edge"):
            outage.run_outage(conn, edge_id=987654321, save=False)
        with pytest.raises(InputError, match="unknown utility node"):
            outage.run_outage(conn, node_id=987654321, save=False)
        with pytest.raises(InputError, match="give edge_id"):
            outage.run_outage(conn, edge_id=net["e4"], node_id=net["T"], save=False)


def _road(conn, name: str | None, name_en: str | None, y: float) -> None:  # noqa: ANN001
    a, b = (conn.execute(
        text("INSERT INTO road_node (source, source_id, geom) VALUES (:s, :n, "
             "ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"),
        {"s": SRC, "n": f"{name}-{x}", "x": x, "y": y}).scalar_one() for x in (X0, X0 + 8 * D))
    conn.execute(
        text("INSERT INTO road_segment (source, source_id, from_node, to_node, road_class, "
             "name, name_en, oneway, bridge, maxspeed_kmh, length_m, cost, reverse_cost, "
             "geom) VALUES (:s, :n, :a, :b, 'residential', :name, :en, false, false, 36, 850, "
             "85, 85, "
             "ST_MakeLine("
             "ST_SetSRID(ST_MakePoint(:x0, :y), 4326), ST_SetSRID(ST_MakePoint(:x1, :y), 4326)))"),
        {"s": SRC, "n": f"road-{name}-{y}", "a": a, "b": b, "name": name, "en": name_en,
         "x0": X0, "x1": X0 + 8 * D, "y": y})


def test_valves_to_close_name_the_street_they_lie_on(engine: Engine, net) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM road_segment WHERE source = :s"), {"s": SRC})
        conn.execute(text("DELETE FROM road_node WHERE source = :s"), {"s": SRC})
        # V1 and V2 lie 22 m from "Đường Thử" (an unnamed lane runs closer, 5 m); V3 lies
        # 55 m from "Đường Xa" and 133 m from "Đường Thử"
        _road(conn, "Đường Thử", "Test Street", 12.0002)
        _road(conn, None, None, 11.99995)
        _road(conn, "Đường Xa", None, 11.9985)
        out = outage.run_outage(conn, edge_id=net["e4"], save=False)
        conn.execute(text("DELETE FROM road_segment WHERE source = :s"), {"s": SRC})
        conn.execute(text("DELETE FROM road_node WHERE source = :s"), {"s": SRC})
    by = {d["name"]: d for d in out["summary"]["operate"]}
    assert by["V1"]["street"] == "Đường Thử" and by["V1"]["street_en"] == "Test Street"
    assert by["V2"]["street"] == "Đường Thử"
    assert by["V1"]["street_m"] == pytest.approx(22, abs=2)
    assert by["V3"]["street"] == "Đường Xa" and by["V3"]["street_en"] == "Đường Xa"
    assert by["V3"]["street_m"] == pytest.approx(55, abs=3)
    # the map's valve points carry the same streets
    pts = {f["properties"]["name"]: f["properties"] for f in out["features"]["features"]
           if f["properties"]["layer"] == "operate"}
    assert pts["V3"]["street"] == "Đường Xa"
    # the method and its limits, in both languages
    notes = out["summary"]["notes_i18n"]
    assert notes["en"][-1].startswith("method") and notes["vi"][-1].startswith("phương pháp")


def test_a_valve_far_from_any_named_road_has_no_street(engine: Engine, net) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        out = outage.run_outage(conn, edge_id=net["e4"], save=False)
    assert all(d["street"] is None and d["street_m"] is None for d in out["summary"]["operate"])
