"""layers.features: queries, paging, counts, plans and encodings on real PostGIS."""

from __future__ import annotations

import csv
import datetime as dt
import io

import orjson
import pytest
from sqlalchemy import text

from layers import features, features_sql
from layers.catalog import load_catalog
from layers.errors import InvalidFilter, InvalidParameter
from layers.features_params import ItemsQuery, parse_items_query
from tests.feature_data import BBOX, N_BUILDINGS, delete, insert


@pytest.fixture(scope="module")
def catalog(settings):
    return load_catalog(settings.layers_file)


@pytest.fixture(scope="module")
def fx(engine):
    ids = insert(engine)
    yield ids
    delete(engine)


def q(catalog, layer="buildings", **params):
    params.setdefault("bbox", BBOX)
    return parse_items_query(catalog.get(layer), [(k, str(v)) for k, v in params.items()])


def test_pages_and_counts(catalog, engine, fx):
    b = catalog.get("buildings")
    with engine.connect() as conn:
        first = features.items(conn, b, q(catalog, limit=10))
        assert first.number_matched == N_BUILDINGS and first.matched_exact
        assert first.number_returned == 10 and first.has_next
        ids = [orjson.loads(f)["id"] for f in first.features]
        assert ids == fx["building"][:10]
        last = features.items(conn, b, q(catalog, limit=10, offset=20))
        assert last.number_returned == 5 and not last.has_next
        exact = features.items(conn, b, q(catalog, limit=25))
        assert exact.number_returned == 25 and not exact.has_next
        past = features.items(conn, b, q(catalog, limit=10, offset=40))
        assert past.number_returned == 0 and past.number_matched == N_BUILDINGS


@pytest.mark.parametrize("params", [
    {"limit": 4, "sortby": "-height_m"},
    {"limit": 3, "offset": 6, "sortby": "use,-levels", "filter": "levels > 2"},
    {"limit": 5, "offset": 22, "use": "school"},
])
def test_one_scan_plan_matches_the_two_scan_plan(catalog, engine, fx, monkeypatch, params):
    """The narrow (one index scan) plan and its fallback give the same pages."""
    b = catalog.get("buildings")
    query = q(catalog, **params)
    with engine.connect() as conn:
        narrow = features.items(conn, b, query)
        monkeypatch.setattr(features, "NARROW_CAP", 2)  # every query overflows: fallback
        wide = features.items(conn, b, query)
    assert narrow == wide and narrow.number_matched > 2


def test_feature_text_is_geojson(catalog, engine, fx):
    b = catalog.get("buildings")
    with engine.connect() as conn:
        page = features.items(conn, b, q(catalog, limit=3, properties="name,levels"))
        doc = orjson.loads(features.feature_collection(page, [{"rel": "self", "href": "x"}]))
    assert doc["type"] == "FeatureCollection" and doc["numberReturned"] == 3
    f = doc["features"][0]
    assert f["properties"] == {"name": "Tòa nhà 0", "levels": 1}
    assert f["geometry"]["type"] == "MultiPolygon"
    assert doc["links"] == [{"rel": "self", "href": "x"}]
    dt.datetime.strptime(doc["timeStamp"], "%Y-%m-%dT%H:%M:%SZ")


def test_number_matched_estimated_past_the_cap(catalog, engine, fx, monkeypatch):
    monkeypatch.setattr(features, "COUNT_CAP", 5)
    b = catalog.get("buildings")
    with engine.connect() as conn:
        page = features.items(conn, b, q(catalog, limit=2))
        est = features.estimate_matched(conn, b, q(catalog, limit=2))
    assert not page.matched_exact and page.number_matched >= 5 and est >= 1
    assert page.number_returned == 2 and page.has_next


def test_count_when_offset_passes_the_end_is_still_exact(catalog, engine, fx):
    with engine.connect() as conn:
        n = features.count_matched(conn, catalog.get("buildings"), q(catalog, use="office"))
    assert n == 8


def test_single_feature_respects_the_layer_filter(catalog, engine, fx):
    water, power = fx["utility_edge"][0], fx["utility_edge"][2]
    wn = catalog.get("water_network")
    with engine.connect() as conn:
        assert orjson.loads(features.feature(conn, wn, water))["id"] == water
        assert features.feature(conn, wn, power) is None
        assert features.feature(conn, wn, -1) is None


def test_csv(catalog, engine, fx):
    roads = catalog.get("roads")
    with engine.connect() as conn:
        body, has_next = features.items_csv(conn, roads, q(catalog, "roads", limit=3))
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0][0] == "id" and rows[0][-1] == "wkt" and len(rows) == 4 and has_next
    oneway = rows[0].index("oneway")
    assert rows[1][oneway] == "true" and rows[2][oneway] == "false"
    assert rows[1][-1].startswith("LINESTRING(108.5 16.59")


def test_bbox_queries_use_the_gist_index(catalog, engine, fx):
    b = catalog.get("buildings")
    query = q(catalog, limit=100, filter="levels > 3")
    for stmt in (features_sql.wide_statement(b, query), features_sql.narrow_statement(b, query)):
        with engine.connect() as conn:
            # the test tables are tiny: without this the planner rightly reads them whole
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            compiled = stmt.compile(conn, compile_kwargs={"render_postcompile": True})
            plan = "\n".join(r[0] for r in conn.exec_driver_sql(
                "EXPLAIN " + compiled.string, compiled.params))
        assert "idx_building_geom" in plan and "&&" in plan, plan


def test_datetime_on_open_ended_periods(catalog, engine, fx):
    admin = catalog.get("admin_boundaries")
    with engine.connect() as conn:
        page = features.items(conn, admin, q(catalog, "admin_boundaries",
                                             datetime="2030-01-01T00:00:00Z"))
    names = [orjson.loads(f)["properties"]["name_vi"] for f in page.features]
    assert names == ["Phường Mới"]


def test_parameter_parsing(catalog):
    b = catalog.get("buildings")
    parsed = parse_items_query(b, [("bbox", "1,2,0,3,4,5"), ("sortby", "name DESC,+levels"),
                                   ("limit", "7"), ("levels", "3"), ("f", "csv")])
    assert parsed.bbox == (1.0, 2.0, 3.0, 4.0) and parsed.limit == 7
    assert parsed.sortby == (("name", True), ("levels", False))
    assert parsed.equals == (("levels", 3),) and parsed.format == "csv"
    assert parse_items_query(b, [], "text/csv").format == "csv"
    assert parse_items_query(b, [], "application/geo+json, text/csv").format == "json"
    assert ItemsQuery().limit == 100
    admin = catalog.get("admin_boundaries")
    assert parse_items_query(admin, [("datetime", "../2020-01-01")]).datetime == (
        None, dt.date(2020, 1, 1))
    assert parse_items_query(admin, [("datetime", "2020-01-01T00:00:00Z/")]).datetime == (
        dt.datetime(2020, 1, 1, tzinfo=dt.UTC), None)
    with pytest.raises(InvalidParameter, match="more than once"):
        parse_items_query(b, [("limit", "1"), ("limit", "2")])
    with pytest.raises(InvalidParameter, match="datetime"):
        parse_items_query(admin, [("datetime", "../..x")])
    with pytest.raises(InvalidParameter, match="datetime"):
        parse_items_query(admin, [("datetime", "..")])
    with pytest.raises(InvalidFilter, match="filter-lang"):
        parse_items_query(b, [("filter", "levels > 1"), ("filter-lang", "sql")])
    with pytest.raises(InvalidParameter, match="height_m"):
        parse_items_query(b, [("height_m", "nan")])



def test_a_date_covers_the_whole_day_on_timestamp_columns(catalog, engine, fx):
    from layers.catalog import Layer

    spec = catalog.get("buildings").model_dump()
    layer = Layer.model_validate({**spec, "id": "buildings_by_update", "time_field": "updated_at"})
    with engine.connect() as conn:
        today = conn.execute(text("SELECT current_date")).scalar_one()

        def matched(value: str) -> int:
            query = parse_items_query(layer, [("bbox", BBOX), ("datetime", value)])
            return features.items(conn, layer, query).number_matched

        assert matched(today.isoformat()) == N_BUILDINGS
        assert matched(f"../{today.isoformat()}") == N_BUILDINGS
        assert matched(f"{today.isoformat()}/..") == N_BUILDINGS
        assert matched((today + dt.timedelta(days=1)).isoformat()) == 0
        assert matched(f"../{(today - dt.timedelta(days=1)).isoformat()}") == 0


def test_cached_statements_take_fresh_values(catalog, engine, fx):
    """Same query shape, new values: the compiled SQL is reused, the values are not."""
    b = catalog.get("buildings")
    with engine.connect() as conn:
        def matched(**params):
            return features.items(conn, b, q(catalog, **params)).number_matched

        assert matched(bbox="108.49,16.49,108.511,16.511") == 1
        assert matched(bbox="108.49,16.49,108.531,16.511") == 2
        assert matched(ids=",".join(map(str, fx["building"][:3]))) == 3
        assert matched(ids=str(fx["building"][7])) == 1
        assert matched(use="school") == 9 and matched(use="office") == 8
        assert matched(levels=3) == 1 and matched(levels=99) == 0
        ok = [features.items(conn, b, q(catalog, limit=2, offset=o)).features for o in (0, 2)]
        assert ok[0] != ok[1]
