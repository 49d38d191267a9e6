"""POST /area/summary and /area/export: counts and files for a drawn polygon."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pyogrio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from server.app import create_app
from tests.server.helpers import token_for
from tests.web.city import insert_city, remove_city

RECT = (108.2035, 16.0535, 108.2135, 16.0635)
DISTRICT_ONLY = (108.229, 16.041, 108.234, 16.047)


def polygon(w: float, s: float, e: float, n: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def truth(engine, table: str, box, where: str = "TRUE") -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(
            f"SELECT count(*) FROM {table} WHERE ST_Intersects(geom, "
            f"ST_MakeEnvelope(:w, :s, :e, :n, 4326)) AND {where}"),
            dict(zip("wsen", box, strict=True))).scalar_one())


@pytest.fixture(scope="module")
def client(settings, engine) -> Iterator[TestClient]:
    with engine.begin() as conn:
        remove_city(conn)
        insert_city(conn)
    try:
        with TestClient(create_app(settings)) as c:
            yield c
    finally:
        with engine.begin() as conn:
            remove_city(conn)


@pytest.fixture(scope="module")
def planner(client, engine) -> dict[str, str]:
    return token_for(client, engine, "planner")  # a token names a user that exists


def test_summary_counts_every_visible_layer(client, engine, planner):
    r = client.post("/area/summary", json=polygon(*RECT))
    assert r.status_code == 200, r.text
    body = r.json()
    rows = {row["id"]: row for row in body["layers"]}
    assert rows["buildings"]["count"] == truth(engine, "building", RECT) > 10
    assert rows["roads"]["count"] == truth(engine, "road_segment", RECT)
    assert rows["buildings"]["title"] == {"vi": "Công trình", "en": "Buildings"}
    assert "water_network" not in rows and "power_network" not in rows
    assert 0.5 < body["area_km2"] < 2.0  # about 1.07 km × 1.11 km
    staff = {row["id"]: row for row in
             client.post("/area/summary", json=polygon(*RECT), headers=planner).json()["layers"]}
    assert staff["water_network"]["count"] == truth(engine, "utility_edge", RECT,
                                                    "network = 'water'") >= 1
    assert "power_network" not in staff  # restricted: admins only


def test_summary_accepts_a_feature_and_a_date(client, engine):
    feature = {"type": "Feature", "properties": {}, "geometry": polygon(*DISTRICT_ONLY)}
    today = client.post("/area/summary", json=feature).json()
    before = client.post("/area/summary?date=2024-01-01", json=feature).json()
    count = {r["id"]: r["count"] for r in before["layers"]}["admin_boundaries"]
    assert count == truth(engine, "admin_area", DISTRICT_ONLY,
                          "valid_from <= '2024-01-01' AND "
                          "(valid_to IS NULL OR valid_to > '2024-01-01')")
    assert count >= 1
    assert before["date"] == "2024-01-01" and today["date"] is None
    assert client.post("/area/summary?date=yesterday", json=feature).status_code == 400


@pytest.mark.parametrize("body", [
    b"not json",
    b'{"type": "Point", "coordinates": [108.2, 16.0]}',
    b'{"type": "Polygon", "coordinates": [[[108.2, 16.0], [108.3, 16.0]]]}',
    b'{"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}',
    b'{"type": "Polygon", "coordinates": [[[500, 0], [501, 0], [501, 1], [500, 0]]]}',
    b'{"type": "Polygon", "coordinates": []}',
    b'{"type": "Polygon", "coordinates": "x"}',
    b'[1, 2, 3]',
])
def test_bad_polygons_are_400(client, body):
    for path in ("/area/summary", "/area/export?layer=buildings"):
        r = client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (path, body, r.text)
        assert r.json()["description"]


def test_export_geojson(client, engine):
    r = client.post("/area/export?layer=buildings&format=geojson", json=polygon(*RECT))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    assert 'filename="buildings-area.geojson"' in r.headers["content-disposition"]
    fc = r.json()
    assert fc["type"] == "FeatureCollection"
    assert len(fc["features"]) == truth(engine, "building", RECT)
    f = fc["features"][0]
    assert set(f["properties"]) == {"name", "use", "levels", "height_m", "address", "ward",
                                    "area_m2"}
    assert f["geometry"]["type"] == "MultiPolygon"


def test_export_csv(client, engine):
    r = client.post("/area/export?layer=admin_boundaries&format=csv", json=polygon(*RECT))
    assert r.status_code == 200, r.text
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["id", "level", "code", "name_vi", "name_en", "population", "valid_from",
                       "valid_to", "wkt"]
    assert len(rows) - 1 == truth(engine, "admin_area", RECT)
    names = {row[3] for row in rows[1:]}
    assert "Hải Châu" in names
    assert all(row[-1].startswith("MULTIPOLYGON") for row in rows[1:])


def test_export_geopackage(client, engine, tmp_path):
    r = client.post("/area/export?layer=buildings&format=gpkg", json=polygon(*RECT))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/geopackage+sqlite3"
    path = tmp_path / "out.gpkg"
    path.write_bytes(r.content)
    info = pyogrio.read_info(path, layer="buildings")
    assert info["features"] == truth(engine, "building", RECT)
    assert info["crs"] == "EPSG:4326"
    df = pyogrio.read_dataframe(path, layer="buildings")
    assert {"id", "use", "height_m", "levels", "ward"} <= set(df.columns)
    assert str(df["levels"].dtype).lower().startswith("int")
    empty = client.post("/area/export?layer=buildings&format=gpkg",
                        json=polygon(100, 10, 100.01, 10.01))
    assert empty.status_code == 200 and empty.content[:15] == b"SQLite format 3"


def test_staff_layers_export_for_staff_only(client, planner):
    url = "/area/export?layer=water_network&format=geojson"
    assert client.post(url, json=polygon(*RECT)).status_code == 404
    r = client.post(url, json=polygon(*RECT), headers=planner)
    assert r.status_code == 200 and len(r.json()["features"]) >= 1
    assert client.post("/area/export?layer=nope", json=polygon(*RECT)).status_code == 404
    assert client.post("/area/export?layer=buildings&format=shp",
                       json=polygon(*RECT)).status_code == 422


def test_a_broken_layer_does_not_hide_the_others(client, engine):
    from layers.catalog import Catalog
    from server.routes.area import parse_polygon, summary

    catalog = client.app.state.catalog
    broken = catalog.get("buildings").model_copy(update={"id": "ghost", "table": "no_such_table"})
    wkb = parse_polygon(json.dumps(polygon(*RECT)).encode())
    with engine.connect() as conn:
        body = summary(conn, Catalog([*catalog.all(), broken]), None, wkb)
    rows = {r["id"]: r for r in body["layers"]}
    assert rows["ghost"]["count"] is None and rows["ghost"]["error"] == "unavailable"
    assert rows["buildings"]["count"] == truth(engine, "building", RECT)
