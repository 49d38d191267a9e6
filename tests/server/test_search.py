"""GET /search: names with or without Vietnamese diacritics, access honoured."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from layers.catalog import Catalog
from server.app import create_app
from server.routes.search import search
from tests.web.city import HAI_CHAU_WARD, insert_city, remove_city


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


def test_hai_chau_without_diacritics_finds_the_ward_first(client):
    r = client.get("/search", params={"q": "Hai Chau"})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    admin = [i for i in items if i["layer"] == "admin_boundaries" and i["name_vi"] == "Hải Châu"]
    assert admin, items
    assert admin[0]["kind"] == "ward"  # the unit in force before the historic district
    assert {"district", "ward"} <= {i["kind"] for i in admin}
    ward = admin[0]
    assert set(ward) >= {"id", "name_vi", "name_en", "kind", "layer", "lon", "lat", "bbox"}
    assert ward["lon"] == pytest.approx(HAI_CHAU_WARD[0], abs=1e-3)
    assert ward["lat"] == pytest.approx(HAI_CHAU_WARD[1], abs=1e-3)
    w, s, e, n = ward["bbox"]
    assert w < ward["lon"] < e and s < ward["lat"] < n


@pytest.mark.parametrize("q", ["benh vien", "Bệnh viện", "BENH VIEN DA NANG", "bệnh vien"])
def test_hospital_with_or_without_diacritics(client, q):
    items = client.get("/search", params={"q": q}).json()["items"]
    names = [i["name_vi"] for i in items if i["layer"] == "facilities"]
    assert "Bệnh viện Đà Nẵng" in names, items


def test_streets_are_one_result_per_name_spanning_their_segments(client):
    items = client.get("/search", params={"q": "bach dang"}).json()["items"]
    roads = [i for i in items if i["layer"] == "roads" and i["name_vi"] == "Bạch Đằng"]
    assert len(roads) == 1
    w, s, e, n = roads[0]["bbox"]
    assert n - s > 0.05  # the test street runs 6.6 km north-south


def test_words_inside_names_and_english_names_match(client):
    items = client.get("/search", params={"q": "rong"}).json()["items"]
    assert any(i["name_vi"] == "Cầu Rồng" for i in items)
    items = client.get("/search", params={"q": "dragon"}).json()["items"]
    assert any(i["name_vi"] == "Cầu Rồng" for i in items)


def test_like_wildcards_are_plain_characters(client):
    r = client.get("/search", params={"q": "%_%"})
    assert r.status_code == 200
    assert r.json()["items"] == []


def test_bad_queries_are_client_errors(client):
    assert client.get("/search").status_code == 422
    assert client.get("/search", params={"q": ""}).status_code == 422
    assert client.get("/search", params={"q": "x" * 201}).status_code == 422
    assert client.get("/search", params={"q": "hai", "limit": 0}).status_code == 422
    items = client.get("/search", params={"q": "hai", "limit": 1}).json()["items"]
    assert len(items) == 1


def test_staff_layers_are_searched_for_staff_only(client, engine):
    catalog: Catalog = client.app.state.catalog
    # the same catalogue with facilities made staff-only
    layers = [lyr.model_copy(update={"access": "staff"}) if lyr.id == "facilities" else lyr
              for lyr in catalog]
    staff_only = Catalog(layers)
    with engine.connect() as conn:
        public = search(conn, staff_only, "benh vien", None)
        planner = search(conn, staff_only, "benh vien", "planner")
    assert not any(i["layer"] == "facilities" for i in public)
    assert any(i["layer"] == "facilities" for i in planner)
