"""Vector import on real PostGIS: districts, repair, reprojection, roads, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tests.conftest import count
from twin.errors import InputError
from twin.ingest.vector import import_vector
from twin.progress import NullReporter

TABLES = ("admin_area", "building", "facility", "land_cover", "place", "road_segment",
          "road_node", "utility_node", "utility_edge")


def run(engine: Engine, path: Path, layer: str, mapping: dict[str, str] | None = None,
        file_layer: str | None = None):  # noqa: ANN201
    with engine.begin() as conn:
        return import_vector(conn, path, layer, mapping or {}, reporter=NullReporter(),
                             file_layer=file_layer)


def snapshot(engine: Engine) -> dict[str, object]:
    with engine.connect() as conn:
        versions = dict(conn.execute(text("SELECT table_name, version FROM table_version")).all())
    return {"versions": versions, **{t: count(engine, t) for t in TABLES}}


def geojson(path: Path, features: list[dict], crs: str | None = None) -> Path:
    doc: dict = {"type": "FeatureCollection", "features": features}
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def feature(geometry: dict | None, **props: object) -> dict:
    return {"type": "Feature", "properties": props, "geometry": geometry}


def test_districts_become_seven_admin_areas(engine: Engine, danang: Path) -> None:
    path = danang / "admin" / "danang_districts_2020.geojson"
    first = run(engine, path, "admin_area")
    src = "source = 'file:danang_districts_2020'"
    assert count(engine, "admin_area", src) == 7
    assert count(engine, "admin_area", f"{src} AND level = 'district'") == 7
    with engine.connect() as conn:
        row = conn.execute(text(
            f"SELECT name_vi, name_en, area_km2, ST_GeometryType(geom) FROM admin_area "
            f"WHERE {src} AND name_en = 'Hoa Vang'"
        )).one()
    assert tuple(row) == ("Huyện Hòa Vang", "Hoa Vang", 737.3, "ST_MultiPolygon")
    assert first.total("admin_area", "inserted") + first.total("admin_area", "unchanged") == 7
    second = run(engine, path, "admin_area")
    assert second.total("admin_area", "inserted") == 0
    assert second.total("admin_area", "unchanged") == 7
    assert count(engine, "admin_area", src) == 7


def test_bowtie_is_repaired_and_null_geometry_skipped(engine: Engine, tmp_path: Path) -> None:
    bowtie = {"type": "Polygon", "coordinates": [[
        [108.2200, 16.0600], [108.2210, 16.0610], [108.2210, 16.0600], [108.2200, 16.0610],
        [108.2200, 16.0600],
    ]]}
    path = geojson(tmp_path / "bowtie.geojson", [
        feature(bowtie, id="b1", building="house", height="12 m", **{"building:levels": "3;4"}),
        feature(None, id="b2", building="yes"),
    ])
    summary = run(engine, path, "building", {"id": "source_id"})
    assert summary.total("building", "repaired") == 1
    assert summary.total("building", "skipped") == 1
    assert "building: empty or null geometry" in summary.skipped_reasons
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT use, levels, height_m, ST_IsValid(geom), ST_NumGeometries(geom), area_m2 "
            "FROM building WHERE source = 'file:bowtie' AND source_id = 'b1'"
        )).one()
    assert row[:5] == ("house", 4, 12.0, True, 2)
    assert row[5] > 0


def test_projected_file_is_reprojected(engine: Engine, tmp_path: Path) -> None:
    # EPSG:3857 metres around Hải Châu
    path = geojson(tmp_path / "merc.geojson", [
        feature({"type": "Point", "coordinates": [12043000.0, 1811000.0]},
                name="Bệnh viện Thử", amenity="hospital", beds="120"),
    ], crs="urn:ogc:def:crs:EPSG::3857")
    run(engine, path, "facility")
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT kind, name_vi, capacity, ST_X(geom), ST_Y(geom) FROM facility "
            "WHERE source = 'file:merc'"
        )).one()
    assert row[:3] == ("hospital", "Bệnh viện Thử", 120)
    assert 108.1 < row[3] < 108.3 and 16.0 < row[4] < 16.3


def test_pois_and_roads_from_the_extract(engine: Engine, danang: Path) -> None:
    core = danang / "osm_hai_chau_core"
    summary = run(engine, core / "pois.geojson", "facility")
    assert count(engine, "facility", "source = 'file:pois' AND kind = 'hospital'") == 7
    assert summary.total("facility", "skipped") > 0  # cafés, shops … are not facilities
    roads = run(engine, core / "danang_hai_chau_core_osm.gpkg", "road_segment",
                file_layer="roads")
    src = "source = 'file:danang_hai_chau_core_osm/roads'"
    assert roads.total("road_segment", "inserted") + roads.total(
        "road_segment", "unchanged") == count(engine, "road_segment", src)
    assert count(engine, "road_segment", src) > 1521  # split at junctions
    with engine.connect() as conn:
        biggest = conn.execute(text(
            "SELECT count(*) FROM pgr_connectedComponents('SELECT id, from_node AS source, "
            "to_node AS target, cost, reverse_cost FROM road_segment WHERE source = "
            "''file:danang_hai_chau_core_osm/roads''') GROUP BY component ORDER BY 1 DESC LIMIT 1"
        )).scalar_one()
        recorded = conn.execute(text(
            f"SELECT max(component_size) FROM road_node WHERE {src}")).scalar_one()
    assert biggest >= 0.95 * count(engine, "road_node", src)
    assert recorded == biggest  # the import recorded the components
    assert count(engine, "road_node", f"{src} AND component_size IS NULL") == 0
    assert any("connected component" in n for n in roads.notes)


def test_landuse_kinds(engine: Engine, danang: Path) -> None:
    path = danang / "osm_landuse_water" / "danang_osm_landuse_water_bbox.geojson"
    run(engine, path, "land_cover")
    src = "source = 'file:danang_osm_landuse_water_bbox'"
    assert count(engine, "land_cover", src) == 1661
    # 314 natural=water plus reservoirs / basins
    assert count(engine, "land_cover", f"{src} AND kind = 'water'") >= 314


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_unknown_crs_is_refused(engine: Engine, tmp_path: Path) -> None:
    import geopandas as gpd
    import pyogrio
    from shapely.geometry import Point

    gdf = gpd.GeoDataFrame({"name": ["x"]}, geometry=[Point(108.2, 16.05)], crs=None)
    path = tmp_path / "nocrs.shp"
    pyogrio.write_dataframe(gdf, path)
    assert not path.with_suffix(".prj").exists()
    before = snapshot(engine)
    with pytest.raises(InputError, match="unknown CRS"):
        run(engine, path, "place")
    assert snapshot(engine) == before


def test_bad_mappings_and_files(engine: Engine, danang: Path, tmp_path: Path) -> None:
    path = danang / "admin" / "danang_districts_2020.geojson"
    before = snapshot(engine)
    with pytest.raises(InputError, match=r"'nosuch' is not in .*available fields: name_en"):
        run(engine, path, "admin_area", {"nosuch": "name_vi"})
    with pytest.raises(InputError, match="'colour' is not a column of admin_area"):
        run(engine, path, "admin_area", {"name_en": "colour"})
    with pytest.raises(InputError, match="unknown target layer"):
        run(engine, path, "incident")
    with pytest.raises(InputError, match="not found"):
        run(engine, tmp_path / "missing.geojson", "building")
    garbage = tmp_path / "garbage.geojson"
    garbage.write_text("{ this is not json", encoding="utf-8")
    with pytest.raises(InputError, match="cannot read garbage.geojson"):
        run(engine, garbage, "building")
    with pytest.raises(InputError, match="layer 'nope' not in"):
        run(engine, danang / "osm_hai_chau_core" / "danang_hai_chau_core_osm.gpkg",
            "building", file_layer="nope")
    assert snapshot(engine) == before


def test_shapefile_truncated_field_names_are_recognised(engine, tmp_path) -> None:  # noqa: ANN001
    """A Shapefile cuts `building:levels` to `building_l` and `addr:housenumber` to
    `addr_house`: levels and addresses must still arrive."""
    import geopandas as gpd
    import pyogrio
    from shapely.geometry import box as sbox

    gdf = gpd.GeoDataFrame({
        "osm_id": ["w1", "w2"], "building": ["yes", "school"],
        "building:levels": [3, 5], "addr:housenumber": ["12", "7"],
        "addr:street": ["Trần Phú", "Lê Lợi"],
        "geometry": [sbox(108.21, 16.05, 108.2103, 16.0503),
                     sbox(108.212, 16.05, 108.2123, 16.0503)]}, crs=4326)
    path = tmp_path / "blds.shp"
    with pytest.warns(RuntimeWarning):  # GDAL says it cut the names
        gdf.to_file(path, engine="pyogrio")
    fields = list(pyogrio.read_info(path)["fields"])
    assert "building_l" in fields and "addr_house" in fields  # what a Shapefile keeps
    with engine.begin() as conn:
        import_vector(conn, path, "building", {}, reporter=NullReporter())
        rows = conn.execute(text(
            "SELECT levels, address FROM building WHERE source = 'file:blds' ORDER BY levels"
        )).all()
        conn.execute(text("DELETE FROM building WHERE source = 'file:blds'"))
    assert [tuple(r) for r in rows] == [(3, "12 Trần Phú"), (5, "7 Lê Lợi")]


def _fc(features: list[tuple[str, list[list[float]]]], kind: str) -> str:
    geom = "Polygon" if kind == "building" else "LineString"
    return json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": fid, "highway": "residential",
                                           "name": f"Đường {fid}"},
         "geometry": {"type": geom, "coordinates": [coords] if geom == "Polygon" else coords}}
        for fid, coords in features]})


def _square(x: float) -> list[list[float]]:
    return [[x, 16.05], [x + 0.0003, 16.05], [x + 0.0003, 16.0503], [x, 16.0503], [x, 16.05]]


def test_objects_gone_from_the_file_are_counted_and_pruned(engine, tmp_path: Path) -> None:
    """A re-import reports what the file no longer holds; --prune deletes it (roads: the
    segments, then the nodes no segment uses any more)."""
    blds, roads = tmp_path / "gone_b.geojson", tmp_path / "gone_r.geojson"

    def run(path: Path, table: str, prune: bool = False):  # noqa: ANN202
        with engine.begin() as conn:
            return import_vector(conn, path, table, {"id": "source_id"},
                                 reporter=NullReporter(), prune=prune)

    blds.write_text(_fc([(f"b{i}", _square(108.21 + i / 1000)) for i in range(3)], "building"))
    roads.write_text(_fc([("r1", [[108.21, 16.06], [108.211, 16.06]]),
                          ("r2", [[108.211, 16.06], [108.212, 16.06]])], "road"))
    run(blds, "building")
    run(roads, "road_segment")
    assert count(engine, "road_node", "source = 'file:gone_r'") == 3
    blds.write_text(_fc([(f"b{i}", _square(108.21 + i / 1000)) for i in range(2)], "building"))
    roads.write_text(_fc([("r1", [[108.21, 16.06], [108.211, 16.06]])], "road"))
    kept = run(blds, "building")
    assert kept.total("building", "gone") == 1 and kept.total("building", "deleted") == 0
    assert any("--prune" in n for n in kept.notes)
    assert count(engine, "building", "source = 'file:gone_b'") == 3
    pruned = run(blds, "building", prune=True)
    assert pruned.total("building", "deleted") == 1
    assert count(engine, "building", "source = 'file:gone_b'") == 2
    r = run(roads, "road_segment", prune=True)
    assert r.total("road_segment", "deleted") == 1 and r.total("road_node", "deleted") == 1
    assert count(engine, "road_segment", "source = 'file:gone_r'") == 1
    assert count(engine, "road_node", "source = 'file:gone_r'") == 2
    again = run(blds, "building")  # nothing gone any more
    assert again.total("building", "gone") == 0
    with engine.begin() as conn:
        for t in ("building", "road_segment", "road_node"):
            conn.execute(text(f"DELETE FROM {t} WHERE source IN ('file:gone_b', 'file:gone_r')"))


def test_a_hole_outside_its_shell_is_dropped_not_made_a_part(engine, tmp_path: Path) -> None:
    path = tmp_path / "stray.geojson"
    shell = [[108.21, 16.05], [108.2105, 16.05], [108.2105, 16.0505], [108.21, 16.0505],
             [108.21, 16.05]]
    stray = [[108.212, 16.05], [108.2122, 16.05], [108.2122, 16.0502], [108.212, 16.0502],
             [108.212, 16.05]]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"id": "s1", "building": "yes"},
        "geometry": {"type": "Polygon", "coordinates": [shell, stray]}}]}))
    with engine.begin() as conn:
        summary = import_vector(conn, path, "building", {"id": "source_id"},
                                reporter=NullReporter())
        parts = conn.execute(text(
            "SELECT ST_NumGeometries(geom), ST_NumInteriorRings(ST_GeometryN(geom, 1)) "
            "FROM building WHERE source = 'file:stray'")).all()
        conn.execute(text("DELETE FROM building WHERE source = 'file:stray'"))
    assert [tuple(p) for p in parts] == [(1, 0)]  # one part, the stray ring gone
    assert summary.total("building", "repaired") == 1
