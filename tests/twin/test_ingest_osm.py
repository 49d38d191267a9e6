"""OSM import on real PostGIS: the Hải Châu core extract, re-import, noding, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tests.conftest import count
from twin.errors import InputError
from twin.ingest.common import (
    parse_height,
    parse_levels,
    parse_maxspeed,
    parse_voltage_kv,
)
from twin.ingest.osm import import_osm, oneway_of, speed_kmh
from twin.ingest.roads import split_lines
from twin.progress import NullReporter

TABLES = ("road_node", "road_segment", "building", "facility", "utility_node",
          "utility_edge", "land_cover")


def snapshot(engine: Engine) -> dict[str, object]:
    """Row counts and write versions of every table an import touches."""
    with engine.connect() as conn:
        versions = dict(conn.execute(text("SELECT table_name, version FROM table_version")).all())
    return {"versions": versions, **{t: count(engine, t) for t in TABLES}}


def run(engine: Engine, path: Path):  # noqa: ANN201
    with engine.begin() as conn:
        return import_osm(conn, path, reporter=NullReporter())


@pytest.fixture(scope="module")
def core(engine: Engine, danang: Path):  # noqa: ANN201
    """The core extract imported once into a clean 'osm' source (first and second run)."""
    with engine.begin() as conn:
        for t in ("road_segment", "road_node", "building", "facility", "utility_edge",
                  "utility_node", "land_cover"):
            conn.execute(text(f"DELETE FROM {t} WHERE source = 'osm'"))
    path = danang / "osm_hai_chau_core" / "map.osm"
    first = run(engine, path)
    counts = {t: count(engine, t, "source = 'osm'") for t in TABLES}
    second = run(engine, path)
    return first, second, counts


# -- parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "metres"),
    [("3", 3.0), ("12 m", 12.0), ("12m", 12.0), ("12,5", 12.5), ("12.5 m", 12.5),
     ("40'", 12.192), ("40 ft", 12.192), ("10'6\"", 3.2004), ("3;4", 4.0), ("~15", 15.0),
     ("", None), (None, None), ("tall", None), ("-3", None), (float("nan"), None)],
)
def test_parse_height(raw, metres) -> None:  # noqa: ANN001
    got = parse_height(raw)
    assert got == pytest.approx(metres, abs=1e-3) if metres is not None else got is None


@pytest.mark.parametrize(
    ("raw", "levels"),
    [("3", 3), ("3;4", 4), ("3-5", 5), ("2.5", 3), ("12,0", 12), (" 7 ", 7),
     ("G+3", None), ("", None), (None, None)],
)
def test_parse_levels(raw, levels) -> None:  # noqa: ANN001
    assert parse_levels(raw) == levels


def test_parse_speed_oneway_voltage() -> None:
    assert parse_maxspeed("50") == 50
    assert parse_maxspeed("50 km/h") == 50
    assert parse_maxspeed("30 mph") == pytest.approx(48.28, abs=0.01)
    assert parse_maxspeed("walk") == 5 and parse_maxspeed("VN:urban") is None
    assert speed_kmh("VN:urban", "primary") == 50 and speed_kmh("40", "primary") == 40
    assert speed_kmh(None, "footway") == 5
    assert oneway_of("yes") == 1 and oneway_of("-1") == -1 and oneway_of("no") == 0
    assert oneway_of(None, "primary", "roundabout") == 1
    assert oneway_of(None, "motorway") == 1 and oneway_of(None, "residential") == 0
    assert parse_voltage_kv("110000;22000") == 110
    assert parse_voltage_kv(None) is None


def test_split_lines_at_shared_nodes_and_ends() -> None:
    a = [(1, 0.0, 0.0), (2, 1.0, 0.0), (3, 2.0, 0.0), (4, 3.0, 0.0)]
    b = [(9, 2.0, -1.0), (3, 2.0, 0.0), (8, 2.0, 1.0)]
    pieces = list(split_lines([a, b]))
    assert [(p.line, p.k, p.from_key, p.to_key) for p in pieces] == [
        (0, 1, 1, 3), (0, 2, 3, 4), (1, 1, 9, 3), (1, 2, 3, 8),
    ]
    assert pieces[0].coords == [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0)]


# -- the real extract -----------------------------------------------------------------


def test_core_extract_counts(core, engine: Engine) -> None:  # noqa: ANN001
    first, _, counts = core
    assert count(engine, "facility", "source = 'osm' AND kind = 'hospital'") == 7
    assert counts["building"] == 314
    assert first.total("building", "inserted") == 314
    assert first.total("facility", "inserted") == counts["facility"]
    assert counts["road_segment"] > 3000 and counts["road_node"] > 2000
    assert counts["utility_node"] > 0 and counts["utility_edge"] > 0
    assert count(engine, "land_cover", "source = 'osm' AND kind = 'water'") >= 1


def test_unassembled_relations_are_counted_as_skipped(core) -> None:  # noqa: ANN001
    """The Hàn River multipolygon (relation 1891359) is cut by the extract's box: it cannot
    be assembled, and the summary says so instead of dropping it silently."""
    first, _, _ = core
    reasons = {r: n for r, n in first.skipped_reasons.items() if "relation" in r}
    assert reasons == {"land_cover: multipolygon relation that could not be assembled "
                       "(members missing from the file or rings not closed)": 1}


def test_road_graph_is_connected_and_costed(core, engine: Engine) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        sizes = conn.execute(text(
            "SELECT count(*) FROM pgr_connectedComponents('SELECT id, from_node AS source, "
            "to_node AS target, cost, reverse_cost FROM road_segment WHERE source = ''osm''') "
            "GROUP BY component ORDER BY 1 DESC"
        )).scalars().all()
        bad = conn.execute(text(
            "SELECT count(*) FROM road_segment WHERE source = 'osm' AND (length_m <= 0 "
            "OR cost <= 0 OR (oneway AND reverse_cost <> -1) "
            "OR (NOT oneway AND reverse_cost <> cost))"
        )).scalar_one()
        ends = conn.execute(text(
            "SELECT count(*) FROM road_segment s JOIN road_node a ON a.id = s.from_node "
            "JOIN road_node b ON b.id = s.to_node WHERE s.source = 'osm' AND NOT ("
            "ST_DWithin(ST_StartPoint(s.geom), a.geom, 1e-9) "
            "AND ST_DWithin(ST_EndPoint(s.geom), b.geom, 1e-9))"
        )).scalar_one()
    assert sizes[0] >= 0.95 * core[2]["road_node"]
    assert bad == 0
    assert ends == 0


def test_components_recorded(core, engine: Engine) -> None:  # noqa: ANN001
    first, second, counts = core
    with engine.connect() as conn:
        parts = conn.execute(text(
            "SELECT component, component_size, count(*) FROM road_node WHERE source = 'osm' "
            "GROUP BY 1, 2 ORDER BY 3 DESC"
        )).all()
    assert all(c is not None and size == n for c, size, n in parts)
    assert sum(n for *_, n in parts) == counts["road_node"]
    assert parts[0][1] >= 0.95 * counts["road_node"]  # the largest holds nearly all
    assert len(parts) > 1  # and the extract has a few small pieces
    assert any("connected component" in n for n in first.notes + second.notes)


def test_reimport_updates_in_place(core) -> None:  # noqa: ANN001
    first, second, counts = core
    for table in TABLES:
        assert second.total(table, "inserted") == 0, table
        assert second.total(table, "updated") == 0, table
        assert second.total(table, "unchanged") == counts[table], table


SMALL = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="test">
 <node id="9100000001" lat="16.0500" lon="108.2100"/>
 <node id="9100000002" lat="16.0500" lon="108.2110"/>
 <node id="9100000003" lat="16.0500" lon="108.2120"/>
 <node id="9100000004" lat="16.0490" lon="108.2110"/>
 <node id="9100000005" lat="16.0510" lon="108.2110"/>
 <node id="9100000011" lat="16.0520" lon="108.2100"/>
 <node id="9100000012" lat="16.0520" lon="108.2102"/>
 <node id="9100000013" lat="16.0522" lon="108.2102"/>
 <node id="9100000014" lat="16.0522" lon="108.2100"/>
 <node id="9100000031" lat="16.0540" lon="108.2100"/>
 <node id="9100000032" lat="16.0542" lon="108.2102"/>
 <node id="9100000033" lat="16.0540" lon="108.2102"/>
 <node id="9100000034" lat="16.0542" lon="108.2100"/>
 <node id="9100000021" lat="16.0530" lon="108.2100">
  <tag k="amenity" v="fire_station"/><tag k="name" v="Đội PCCC"/>
 </node>
 <way id="9100000101">
  <nd ref="9100000001"/><nd ref="9100000002"/><nd ref="9100000003"/>
  <tag k="highway" v="primary"/><tag k="oneway" v="-1"/><tag k="maxspeed" v="30 mph"/>
 </way>
 {cross}
 <way id="9100000201">
  <nd ref="9100000011"/><nd ref="9100000012"/><nd ref="9100000013"/><nd ref="9100000014"/>
  <nd ref="9100000011"/>
  <tag k="building" v="apartments"/><tag k="building:levels" v="3;4"/>
  <tag k="height" v="40'"/><tag k="addr:housenumber" v="12"/>
  <tag k="addr:street" v="Trần Phú"/>
 </way>
 <way id="9100000202">
  <nd ref="9100000031"/><nd ref="9100000032"/><nd ref="9100000033"/><nd ref="9100000034"/>
  <nd ref="9100000031"/><tag k="building" v="yes"/>
 </way>
</osm>
"""
CROSS = """<way id="9100000102">
  <nd ref="9100000004"/><nd ref="9100000002"/><nd ref="9100000005"/>
  <tag k="highway" v="residential"/>
 </way>"""


def test_small_file_noding_oneway_heights(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "small.osm"
    path.write_text(SMALL.replace("{cross}", CROSS), encoding="utf-8")
    summary = run(engine, path)
    assert summary.skipped_reasons["building: area geometry could not be built"] == 1  # bowtie
    where = "source = 'osm' AND source_id LIKE 'way/91000001%'"
    with engine.connect() as conn:
        segs = conn.execute(text(
            f"SELECT source_id, oneway, reverse_cost, maxspeed_kmh, ST_X(ST_StartPoint(geom)) "
            f"FROM road_segment WHERE {where} ORDER BY source_id"
        )).all()
        b = conn.execute(text(
            "SELECT use, levels, height_m, address, area_m2 FROM building "
            "WHERE source = 'osm' AND source_id = 'way/9100000201'"
        )).one()
        fire = conn.execute(text(
            "SELECT kind, name_vi FROM facility WHERE source_id = 'node/9100000021'"
        )).one()
    assert [s[0] for s in segs] == ["way/9100000101/1", "way/9100000101/2",
                                    "way/9100000102/1", "way/9100000102/2"]
    # oneway=-1: geometry reversed so it runs in the direction of travel
    assert segs[0][1] is True and segs[0][2] == -1 and segs[0][4] == pytest.approx(108.211)
    assert segs[0][3] == pytest.approx(48.28, abs=0.01)
    assert b.use == "apartments" and b.levels == 4 and b.height_m == pytest.approx(12.192)
    assert b.address == "12 Trần Phú" and 300 < b.area_m2 < 600
    assert tuple(fire) == ("fire_station", "Đội PCCC")

    # the crossing road disappears: the first road is one piece again, stale piece gone
    path.write_text(SMALL.replace("{cross}", ""), encoding="utf-8")
    summary = run(engine, path)
    assert count(engine, "road_segment", "source_id LIKE 'way/9100000101/%'") == 1
    assert any("stale" in n for n in summary.notes)
    with engine.begin() as conn:
        for t in ("road_segment", "road_node", "building", "facility"):
            conn.execute(text(f"DELETE FROM {t} WHERE source = 'osm' AND source_id ~ '/91000'"))


def test_truncated_file_is_refused_and_changes_nothing(
    core, engine: Engine, danang: Path, tmp_path: Path  # noqa: ANN001
) -> None:
    data = (danang / "osm_hai_chau_core" / "map.osm").read_bytes()
    bad = tmp_path / "truncated.osm"
    bad.write_bytes(data[: len(data) // 2])
    before = snapshot(engine)
    with pytest.raises(InputError, match="cannot read OSM file truncated.osm"):
        run(engine, bad)
    assert snapshot(engine) == before


@pytest.mark.parametrize("content", [b"not osm at all", b"<osm><node id='1'/></osm>"])
def test_malformed_file_is_refused(engine: Engine, tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.osm"
    bad.write_bytes(content)
    before = snapshot(engine)
    with pytest.raises(InputError):
        run(engine, bad)
    assert snapshot(engine) == before


def test_missing_file(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        run(engine, tmp_path / "nope.pbf")
