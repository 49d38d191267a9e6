"""Drive and walk on the real OSM core of Hải Châu: a drive route never uses a footway,
steps or a path; a walk may, both ways; roads not there to travel on are never imported."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from twin import localdb
from twin.analysis import routing
from twin.analysis.components import FOOT_ONLY
from twin.db import make_engine
from twin.errors import InputError
from twin.ingest.osm import import_osm
from twin.ingest.vector import import_vector
from twin.migrate import upgrade
from twin.progress import NullReporter
from twin.settings import Settings

#: a 6 × 5 grid over the core (108.2047–108.2244 E, 16.0469–16.0652 N)
POINTS = [(108.207 + i * 0.0035, 16.049 + j * 0.0035) for i in range(6) for j in range(5)]


@pytest.fixture(scope="module")
def engine(settings: Settings) -> Iterator[Engine]:
    """A database of its own holding only the OSM core: the session's database may hold
    a demo city whose larger road network would catch every route."""
    base = Settings()
    name = f"twin_test_modes_{uuid.uuid4().hex[:6]}"
    localdb.ensure_database(base, name)
    url = base.url(name)
    upgrade(url)
    eng = make_engine(settings.model_copy(update={"database_url": url}), pool_size=2)
    yield eng
    eng.dispose()
    localdb.drop_database(base, name)


@pytest.fixture(scope="module")
def core(engine: Engine, danang: Path):  # noqa: ANN201
    with engine.begin() as conn:
        import_osm(conn, danang / "osm_hai_chau_core" / "map.osm", reporter=NullReporter())
        classes = dict(conn.execute(text(
            "SELECT id, road_class FROM road_segment WHERE source = 'osm'")).all())
        oneway = {int(i) for i in conn.execute(text(
            "SELECT id FROM road_segment WHERE source = 'osm' AND reverse_cost < 0")).scalars()}
    assert sum(c in FOOT_ONLY for c in classes.values()) > 100  # the core has footways
    return classes, oneway


def test_drive_routes_never_use_a_footway(engine, core) -> None:  # noqa: ANN001
    classes, _ = core
    used = 0
    with engine.connect() as conn:
        for x, y in POINTS:
            for r in routing.nearest_by_drive(conn, x, y, "hospital", 3):
                assert r["mode"] == "drive"
                bad = [s for s in r["segments"] if classes.get(s) in FOOT_ONLY]
                assert not bad, (x, y, r["name_vi"], [classes[s] for s in bad])
                used += len(r["segments"])
    assert used > 200  # routes were really found


def test_drive_routes_follow_one_way_streets(engine, core) -> None:  # noqa: ANN001
    _, oneway = core
    checked = 0
    with engine.connect() as conn:
        for x, y in POINTS[:10]:
            for r in routing.nearest_by_drive(conn, x, y, "hospital", 3):
                coords = r["route"]["coordinates"]
                for seg in set(r["segments"]) & oneway:
                    start, end = conn.execute(text(
                        "SELECT ST_AsGeoJSON(ST_StartPoint(geom), 6), "
                        "ST_AsGeoJSON(ST_EndPoint(geom), 6) FROM road_segment WHERE id = :i"),
                        {"i": seg}).one()
                    a = [round(v, 6) for v in json.loads(start)["coordinates"]]
                    b = [round(v, 6) for v in json.loads(end)["coordinates"]]
                    pts = [[round(v, 6) for v in c] for c in coords]
                    assert pts.index(a) < pts.index(b), f"one-way segment {seg} driven backwards"
                    checked += 1
    assert checked > 0  # the routes did use one-way streets


def test_walks_use_footways_and_are_slower_than_driving(engine, core) -> None:  # noqa: ANN001
    classes, _ = core
    foot = 0
    with engine.connect() as conn:
        for x, y in POINTS:
            walk = routing.nearest_by_drive(conn, x, y, "hospital", 1, mode="walk")
            drive = routing.nearest_by_drive(conn, x, y, "hospital", 1)
            assert walk and drive
            assert walk[0]["mode"] == "walk"
            assert walk[0]["drive_s"] >= drive[0]["drive_s"] * 0.8 or \
                walk[0]["route_m"] < drive[0]["route_m"]
            foot += sum(classes.get(s) in FOOT_ONLY for s in walk[0]["segments"])
    assert foot > 0


def test_an_unknown_mode_is_refused(engine, core) -> None:  # noqa: ANN001
    with engine.connect() as conn, pytest.raises(InputError, match="unknown mode"):
        routing.nearest_by_drive(conn, 108.21, 16.055, "hospital", 1, mode="fly")


def test_proposed_roads_are_not_imported(engine, tmp_path: Path) -> None:
    path = tmp_path / "roads.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"highway": h, "name": f"Đường {h}"},
         "geometry": {"type": "LineString", "coordinates": [[108.21, 16.05 + i / 1000],
                                                            [108.212, 16.05 + i / 1000]]}}
        for i, h in enumerate(["residential", "proposed", "construction", "abandoned"])]}))
    with engine.begin() as conn:
        summary = import_vector(conn, path, "road_segment", {}, reporter=NullReporter())
        names = set(conn.execute(text(
            "SELECT name FROM road_segment WHERE source = 'file:roads'")).scalars())
        conn.execute(text("DELETE FROM road_segment WHERE source = 'file:roads'"))
    assert names == {"Đường residential"}
    assert sum(n for r, n in summary.skipped_reasons.items() if "not a usable road" in r) == 3


def test_turn_restrictions_are_imported_and_never_driven(engine, core) -> None:  # noqa: ANN001
    """The core's OSM restriction relations (no_right_turn, no_u_turn via a median) become
    forbidden segment paths, and no drive route takes one."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT source_id, kind, path FROM road_restriction WHERE source = 'osm'")).all()
        kinds = {k for _, k, _ in rows}
        assert len({sid for sid, _, _ in rows}) >= 5 and {"no_right_turn", "no_u_turn"} <= kinds
        forbidden = [list(p) for _, _, p in rows]
        checked = 0
        for x, y in POINTS:
            for r in routing.nearest_by_drive(conn, x, y, "hospital", 3):
                seq = r["segments"]
                for path in forbidden:
                    n = len(path)
                    assert not any(seq[i:i + n] == path for i in range(len(seq) - n + 1)), \
                        (x, y, path)
                checked += 1
    assert checked > 50


def test_a_forbidden_turn_makes_the_route_go_round(engine, core) -> None:  # noqa: ANN001
    """pgr_trsp with the restrictions against plain Dijkstra, from the start of each
    no_right_turn's `from` segment to the end of its `to` segment."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT r.path, f.from_node, f.to_node, t.from_node, t.to_node, "
            "ST_X(r.geom), ST_Y(r.geom) FROM road_restriction r "
            "JOIN road_segment f ON f.id = r.path[1] "
            "JOIN road_segment t ON t.id = r.path[array_length(r.path, 1)] "
            "WHERE r.source = 'osm' AND r.kind = 'no_right_turn'")).all()
        assert rows
        detours = 0
        for path, f_a, f_b, t_a, t_b, vx, vy in rows:
            via = ({f_a, f_b} & {t_a, t_b}).pop()
            start = f_a if f_b == via else f_b
            end = t_b if t_a == via else t_a
            box = (vx - 0.02, vy - 0.02, vx + 0.02, vy + 0.02)
            edges = routing.edges_sql(box)
            plain = [int(e) for e in conn.execute(text(
                "SELECT edge FROM pgr_dijkstra(:e, :s, :t, true) WHERE edge <> -1 "
                "ORDER BY path_seq"), {"e": edges, "s": start, "t": end}).scalars()]
            got = conn.execute(text(
                "SELECT edge, agg_cost FROM pgr_trsp(:e, :r, :s, :t, true) ORDER BY path_seq"),
                {"e": edges, "r": routing.restrictions_sql(box), "s": start, "t": end}).all()
            turned = [int(e) for e, _ in got if e != -1]
            total = max(float(a) for _, a in got)
            if plain == list(path):  # the shortest way is the forbidden turn itself
                # a detour, or (no other way there) only at the forbidden-turn penalty
                assert turned != plain or total >= routing.TURN_PENALTY, (path, total)
                detours += turned != plain
    assert detours > 0


def test_drive_times_agree_with_an_independent_dijkstra(engine, core) -> None:  # noqa: ANN001, ARG001
    """The car graph rebuilt in Python from road_segment (classes a car may use, one-way
    as reverse −1) and searched with scipy's Dijkstra: pgRouting's drive time to each of
    the top-3 hospitals equals the independent shortest time (turn restrictions can only
    make pgRouting's longer), and each route's segments chain end to end, are all car
    roads, and add up to its drive time."""
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT id, from_node, to_node, cost, reverse_cost, road_class FROM road_segment"
        )).all()
        car = [r for r in rows if r.road_class not in FOOT_ONLY]
        seg = {int(r.id): r for r in car}
        nodes = sorted({int(r.from_node) for r in car} | {int(r.to_node) for r in car})
        index = {n: i for i, n in enumerate(nodes)}
        best: dict[tuple[int, int], float] = {}  # parallel segments: the cheaper (a sparse
        for r in car:                            # matrix would add them up)
            a, b = index[int(r.from_node)], index[int(r.to_node)]
            arcs = [((a, b), float(r.cost))]
            if r.reverse_cost is not None and float(r.reverse_cost) >= 0:
                arcs.append(((b, a), float(r.reverse_cost)))
            for arc, cost in arcs:
                best[arc] = min(best.get(arc, np.inf), max(cost, 1e-9))
        src, dst = (list(v) for v in zip(*best, strict=True))
        graph = coo_matrix((list(best.values()), (src, dst)),
                           shape=(len(nodes), len(nodes))).tocsr()
        equal = compared = 0
        for x, y in POINTS:
            start, _, part = routing.snap(conn, x, y, car=True)
            times = dijkstra(graph, directed=True, indices=index[start])
            for r in routing.nearest_by_drive(conn, x, y, "hospital", 3):
                node, _ = routing.nearest_node(conn, r["lon"], r["lat"], prefer=part)
                independent = float(times[index[node]])
                assert np.isfinite(independent)
                assert r["drive_s"] >= independent - 0.1, (x, y, r["name_vi"])
                equal += abs(r["drive_s"] - independent) <= 0.1
                compared += 1
                at, total = start, 0.0
                for s in r["segments"]:
                    row = seg[s]  # KeyError: a segment a car may not use
                    if int(row.from_node) == at:
                        at, total = int(row.to_node), total + float(row.cost)
                    else:
                        assert int(row.to_node) == at and float(row.reverse_cost) >= 0, s
                        at, total = int(row.from_node), total + float(row.reverse_cost)
                assert at == node and abs(total - r["drive_s"]) <= 0.1
    assert compared >= 60
    assert equal >= 0.9 * compared  # only a forbidden turn makes pgRouting's longer
