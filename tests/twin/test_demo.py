"""The demo city (``twin demo``): deterministic, routable, dry, served, with its DEM.

Builds the ``small`` scale in the session's test database (only ``source = 'demo'`` rows
are touched or read).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from twin.demo import PARAMS, SCALES, build_demo
from twin.progress import NullReporter
from twin.settings import Settings

CHECKSUM = text("""
    SELECT md5(string_agg(k || ':' || x, '|' ORDER BY k)) FROM (
      SELECT 'b/' || source_id AS k, ST_AsText(geom) AS x FROM building WHERE source = 'demo'
      UNION ALL
      SELECT 'r/' || source_id, ST_AsText(geom) FROM road_segment WHERE source = 'demo'
    ) t
""")


def _build(engine: Engine, settings: Settings, seed: int) -> str:
    with engine.begin() as conn:
        build_demo(conn, reporter=NullReporter(), scale="small", seed=seed, settings=settings)
    with engine.connect() as conn:
        return str(conn.execute(CHECKSUM).scalar_one())


@pytest.fixture(scope="module")
def checksums(engine: Engine, settings: Settings) -> dict[str, str]:
    """Seed 1, seed 2, then seed 1 again (left in place for the other tests)."""
    first = _build(engine, settings, 1)
    other = _build(engine, settings, 2)
    again = _build(engine, settings, 1)
    return {"first": first, "other": other, "again": again}


def _one(engine: Engine, sql: str, **params: object) -> object:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def test_scales() -> None:
    assert SCALES == ("small", "city", "large")
    assert set(PARAMS) == set(SCALES)


def test_same_seed_same_city(checksums: dict[str, str]) -> None:
    assert checksums["first"] == checksums["again"]


def test_other_seed_other_city(checksums: dict[str, str]) -> None:
    assert checksums["first"] != checksums["other"]


def test_rebuild_replaces(checksums: dict[str, str], engine: Engine) -> None:
    dup = _one(engine, "SELECT count(*) - count(DISTINCT source_id) FROM building "
                       "WHERE source = 'demo'")
    assert dup == 0
    assert _one(engine, "SELECT count(*) FROM terrain WHERE source = 'demo'") == 1


def test_counts(checksums: dict[str, str], engine: Engine) -> None:
    n = _one(engine, "SELECT count(*) FROM building WHERE source = 'demo'")
    assert 2000 <= n <= 5000
    assert _one(engine, "SELECT count(*) FROM road_segment WHERE source = 'demo'") > 1000
    assert _one(engine, "SELECT count(*) FROM admin_area WHERE source = 'demo' "
                        "AND level = 'district' AND valid_to = '2025-07-01'") == 7
    assert _one(engine, "SELECT count(*) FROM admin_area WHERE source = 'demo' "
                        "AND level = 'ward' AND valid_from = '2025-07-01'") == 12
    assert _one(engine, "SELECT count(*) FROM land_cover WHERE source = 'demo' "
                        "AND kind = 'water' AND name = 'Sông Hàn'") == 1
    kinds = _one(engine, "SELECT string_agg(DISTINCT kind, ',' ORDER BY kind) FROM place "
                         "WHERE source = 'demo'")
    assert {"city", "district", "ward", "landmark", "bridge"} <= set(str(kinds).split(","))
    nets = _one(engine, "SELECT string_agg(DISTINCT network, ',' ORDER BY network) "
                        "FROM utility_edge WHERE source = 'demo'")
    assert nets == "drainage,power,water"


def test_names_and_population(checksums: dict[str, str], engine: Engine) -> None:
    row = _one(engine, "SELECT name_en || '|' || population FROM admin_area "
                       "WHERE source = 'demo' AND name_vi = 'Quận Hải Châu'")
    assert row == "Hai Chau District|201522"
    missing = _one(engine, "SELECT count(*) FROM building WHERE source = 'demo' "
                           "AND (ward IS NULL OR area_m2 <= 0 OR height_m <= 0)")
    assert missing == 0
    people = _one(engine, "SELECT sum(population) FROM building WHERE source = 'demo'")
    assert 900_000 < int(people) < 1_150_000  # the 2019 census of the drawn districts


def test_no_building_in_water(checksums: dict[str, str], engine: Engine) -> None:
    wet = _one(engine, """
        SELECT count(*) FROM building b JOIN land_cover w
          ON w.source = 'demo' AND w.kind IN ('water', 'sea') AND ST_Intersects(b.geom, w.geom)
        WHERE b.source = 'demo'""")
    assert wet == 0


def test_no_road_in_water_but_bridges(checksums: dict[str, str], engine: Engine) -> None:
    wet = _one(engine, """
        SELECT count(*) FROM road_segment r JOIN land_cover w
          ON w.source = 'demo' AND w.kind IN ('water', 'sea') AND ST_Intersects(r.geom, w.geom)
        WHERE r.source = 'demo' AND NOT r.bridge
          AND ST_Length(ST_Intersection(r.geom, w.geom)::geography) > 1""")
    assert wet == 0
    bridges = _one(engine, "SELECT count(DISTINCT name) FROM road_segment WHERE source = 'demo' "
                           "AND bridge AND name IN ('Cầu Rồng', 'Cầu sông Hàn', "
                           "'Cầu Trần Thị Lý', 'Cầu Thuận Phước', 'Cầu Tiên Sơn')")
    assert bridges == 5


def test_graph_connected(checksums: dict[str, str], engine: Engine) -> None:
    with engine.connect() as conn:
        sizes = conn.execute(text("""
            SELECT count(*) FROM pgr_connectedComponents(
              'SELECT id, from_node AS source, to_node AS target, cost, reverse_cost
                 FROM road_segment WHERE source = ''demo''')
            GROUP BY component ORDER BY 1 DESC""")).scalars().all()
    assert sizes and sizes[0] >= 0.99 * sum(sizes)


def test_components_recorded(checksums: dict[str, str], engine: Engine) -> None:
    with engine.connect() as conn:
        parts = conn.execute(text(
            "SELECT component, component_size, count(*) FROM road_node WHERE source = 'demo' "
            "GROUP BY 1, 2 ORDER BY 3 DESC")).all()
    assert all(c is not None and size == n for c, size, n in parts)
    assert parts[0][1] >= 0.99 * sum(n for *_, n in parts)


def test_segments_end_at_their_nodes(checksums: dict[str, str], engine: Engine) -> None:
    bad = _one(engine, """
        SELECT count(*) FROM road_segment s
          JOIN road_node a ON a.id = s.from_node JOIN road_node b ON b.id = s.to_node
        WHERE s.source = 'demo' AND NOT (ST_Equals(ST_StartPoint(s.geom), a.geom)
                                         AND ST_Equals(ST_EndPoint(s.geom), b.geom))""")
    assert bad == 0
    costs = _one(engine, """
        SELECT count(*) FROM road_segment WHERE source = 'demo' AND (cost <= 0
           OR (oneway AND reverse_cost <> -1) OR (NOT oneway AND reverse_cost <> cost))""")
    assert costs == 0
    assert _one(engine, "SELECT count(*) FROM road_segment WHERE source = 'demo' AND oneway") > 0


def test_every_building_served(checksums: dict[str, str], engine: Engine) -> None:
    for network in ("water", "power"):
        unserved = _one(engine, """
            SELECT count(*) FROM building b WHERE b.source = 'demo' AND NOT EXISTS (
              SELECT 1 FROM utility_service s JOIN utility_edge e ON e.id = s.edge_id
              WHERE s.building_id = b.id AND s.network = :n AND e.network = :n)""", n=network)
        assert unserved == 0, network


def test_water_network_has_valves_and_plants(checksums: dict[str, str], engine: Engine) -> None:
    assert _one(engine, "SELECT count(*) FROM utility_node WHERE source = 'demo' "
                        "AND network = 'water' AND kind = 'valve'") > 100
    assert _one(engine, "SELECT count(*) FROM utility_node WHERE source = 'demo' "
                        "AND kind = 'plant' AND name = 'NMN Cầu Đỏ'") == 1
    loose = _one(engine, """
        SELECT count(*) FROM utility_edge e JOIN utility_node a ON a.id = e.from_node
        WHERE e.source = 'demo' AND a.network <> e.network""")
    assert loose == 0
    outfalls = _one(engine, "SELECT count(*) FROM utility_node WHERE source = 'demo' "
                            "AND network = 'drainage' AND kind = 'outfall'")
    assert outfalls > 5


def test_facilities(checksums: dict[str, str], engine: Engine) -> None:
    with engine.connect() as conn:
        hospitals = set(conn.execute(text(
            "SELECT name_vi FROM facility WHERE source = 'demo' AND kind = 'hospital'"
        )).scalars())
        kinds = set(conn.execute(text(
            "SELECT DISTINCT kind FROM facility WHERE source = 'demo'")).scalars())
    assert {"Bệnh viện Đà Nẵng", "Bệnh viện C Đà Nẵng", "Bệnh viện Quân y 17"} <= hospitals
    assert {"hospital", "fire_station", "police", "shelter", "school", "clinic"} <= kinds


def test_dem_registered(checksums: dict[str, str], engine: Engine, settings: Settings) -> None:
    import rasterio

    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT path, crs, width, height, min_value, max_value, "
            "ST_XMin(geom) AS w, ST_YMax(geom) AS n FROM terrain WHERE name = 'demo_dem'"
        )).mappings().one()
    path = Path(row["path"])
    assert path == (settings.terrain_dir / "demo_dem.tif").resolve()
    assert path.is_file()
    assert row["crs"] == "EPSG:4326" and row["min_value"] < 0 < 500 < row["max_value"]
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 4326
        assert src.dtypes[0] == "float32"
        assert (src.width, src.height) == (row["width"], row["height"])
        assert src.overviews(1)
        assert abs(src.bounds.left - row["w"]) < 1e-9 and abs(src.bounds.top - row["n"]) < 1e-9


def test_cli_demo(checksums: dict[str, str], settings: Settings, engine: Engine) -> None:
    from server.cli import app

    env = {"TWIN_DATABASE_URL": settings.url(), "TWIN_DATA_DIR": str(settings.data_dir)}
    result = CliRunner().invoke(app, ["demo", "--scale", "small", "--seed", "1"], env=env)
    assert result.exit_code == 0, result.output
    assert _one(engine, "SELECT count(*) FROM building WHERE source = 'demo'") >= 2000
    with engine.connect() as conn:
        assert str(conn.execute(CHECKSUM).scalar_one()) == checksums["first"]
