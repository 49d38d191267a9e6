"""OGC API Features over real HTTP (TestClient with the lifespan) on real PostGIS."""

from __future__ import annotations

import csv
import io
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient
from sqlalchemy import text

from server.app import create_app
from tests.feature_data import BBOX, N_BUILDINGS, delete, insert
from tests.server.helpers import token_for

ITEMS = "/collections/buildings/items"


@pytest.fixture(scope="module")
def ids(engine):
    out = insert(engine)
    yield out
    delete(engine)


@pytest.fixture(scope="module")
def client(settings, ids):
    with TestClient(create_app(settings)) as c:
        yield c


def get_items(client, path=ITEMS, **params):
    params.setdefault("bbox", BBOX)
    r = client.get(path, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    return r.json()


def bad(client, path, params, *words, status=400):
    r = client.get(path, params=params)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"code", "description", "request_id"}
    for w in words:
        assert w in body["description"], body
    return body


# -- landing, conformance, collections ----------------------------------------------


def test_landing_page_links(client):
    r = client.get("/", headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    rels = {ln["rel"]: ln for ln in r.json()["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= set(rels)
    assert rels["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    assert rels["service-desc"]["href"].endswith("/openapi.json")
    assert rels["data"]["href"].endswith("/collections")
    assert client.get(rels["service-desc"]["href"]).status_code == 200
    assert client.get("/?f=json", headers={"Accept": "text/html"}).json()["links"]
    assert client.get("/?f=xml").status_code == 400


def test_landing_page_hands_browsers_to_the_viewer(client):
    app = client.app
    saved = getattr(app.state, "viewer_page", None)
    app.state.viewer_page = lambda request: HTMLResponse("<html>map</html>")
    try:
        html = client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
        assert html.headers["content-type"].startswith("text/html") and "map" in html.text
        assert client.get("/", headers={"Accept": "application/json"}).json()["links"]
        assert client.get("/?f=json", headers={"Accept": "text/html"}).json()["links"]
    finally:
        if saved is None:
            del app.state.viewer_page
        else:
            app.state.viewer_page = saved
    if saved is None:
        assert "links" in client.get("/", headers={"Accept": "text/html"}).json()


def test_conformance(client):
    classes = client.get("/conformance").json()["conformsTo"]
    for c in ("ogcapi-features-1/1.0/conf/core", "ogcapi-features-1/1.0/conf/geojson",
              "ogcapi-features-1/1.0/conf/oas30", "ogcapi-features-3/1.0/conf/filter",
              "ogcapi-features-3/1.0/conf/features-filter", "cql2/1.0/conf/cql2-text",
              "cql2/1.0/conf/cql2-json", "cql2/1.0/conf/basic-spatial-functions",
              "cql2/1.0/conf/spatial-functions", "cql2/1.0/conf/temporal-functions",
              "ogcapi-tiles-1/1.0/conf/core", "ogcapi-tiles-1/1.0/conf/mvt"):
        assert any(x.endswith(c) for x in classes), c
    assert not any(x.endswith("/html") for x in classes)


def test_collections_hide_staff_layers_from_anonymous(client):
    cols = {c["id"]: c for c in client.get("/collections").json()["collections"]}
    assert "buildings" in cols and "roads" in cols
    assert "water_network" not in cols and "power_network" not in cols
    b = cols["buildings"]
    assert b["title"] == "Buildings" and b["title_vi"] == "Công trình"
    assert b["itemType"] == "feature" and b["crs"][0].endswith("CRS84")
    minx, miny, maxx, maxy = b["extent"]["spatial"]["bbox"][0]
    assert minx <= 108.5 and maxx >= 108.58 and miny <= 16.5 and maxy >= 16.58
    rels = {(ln["rel"], ln["type"]) for ln in b["links"]}
    assert ("items", "application/geo+json") in rels and ("items", "text/csv") in rels
    assert any(r.endswith("queryables") for r, _ in rels)
    assert any(ln["href"].endswith("/collections/buildings/tiles") for ln in b["links"])
    admin = cols["admin_boundaries"]
    assert admin["extent"]["temporal"]["interval"][0][0] <= "1997-01-01T00:00:00Z"
    one = client.get("/collections/buildings").json()
    assert one["id"] == "buildings" and one["extent"] == b["extent"]


def test_hidden_and_unknown_collections_are_404_everywhere(client, ids):
    fid = ids["utility_edge"][0]
    for path in ("/collections/water_network", "/collections/water_network/items",
                 "/collections/water_network/queryables", f"/collections/water_network/items/{fid}",
                 "/collections/nope", "/collections/nope/items"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert r.json()["code"] == "LayerNotFound"


def test_staff_see_the_water_network(client, engine, ids):
    headers = token_for(client, engine, "responder")
    cols = {c["id"] for c in client.get("/collections", headers=headers).json()["collections"]}
    assert "water_network" in cols and "power_network" not in cols
    fc = client.get("/collections/water_network/items", params={"bbox": BBOX},
                    headers=headers).json()
    assert fc["numberMatched"] == 2
    assert {f["id"] for f in fc["features"]} == set(ids["utility_edge"][:2])
    one = client.get(f"/collections/water_network/items/{ids['utility_edge'][0]}",
                     headers=headers)
    assert one.status_code == 200
    # the power line is in the same table but not in this layer
    assert client.get(f"/collections/water_network/items/{ids['utility_edge'][2]}",
                      headers=headers).status_code == 404
    admin = token_for(client, engine, "admin")
    r = client.get("/collections/power_network/items", params={"bbox": BBOX}, headers=admin)
    assert r.json()["numberMatched"] == 1


def test_queryables(client):
    r = client.get("/collections/buildings/queryables")
    assert r.status_code == 200 and r.headers["content-type"] == "application/schema+json"
    q = r.json()
    assert q["type"] == "object" and q["$id"].endswith("/collections/buildings/queryables")
    props = q["properties"]
    assert props["levels"]["type"] == "integer" and props["height_m"]["type"] == "number"
    assert props["name"]["type"] == "string" and props["name"]["title"] == "Name"
    assert props["geometry"]["$ref"].endswith("MultiPolygon.json")
    admin = client.get("/collections/admin_boundaries/queryables").json()["properties"]
    assert admin["valid_from"] == {**admin["valid_from"], "type": "string", "format": "date"}


# -- items --------------------------------------------------------------------------


def test_items_feature_collection(client, ids):
    fc = get_items(client, limit=10)
    assert fc["type"] == "FeatureCollection"
    assert fc["numberMatched"] == N_BUILDINGS and fc["numberReturned"] == 10
    assert fc["timeStamp"].endswith("Z")
    assert [f["id"] for f in fc["features"]] == ids["building"][:10]
    f0 = fc["features"][0]
    assert f0["type"] == "Feature" and f0["geometry"]["type"] == "MultiPolygon"
    assert f0["properties"] == {"name": "Tòa nhà 0", "use": "school", "levels": 1,
                                "height_m": 3, "address": "0 Võ Nguyên Giáp",
                                "ward": "Sơn Trà", "area_m2": 100}
    assert f0["geometry"]["coordinates"][0][0][0] == [108.5, 16.5]
    rels = {ln["rel"]: ln["href"] for ln in fc["links"]}
    assert {"self", "next", "collection"} <= set(rels) and "prev" not in rels
    assert rels["collection"].endswith("/collections/buildings")


def test_paging_follows_next_links_to_the_end(client, ids):
    seen, pages = [], 0
    url = f"{ITEMS}?bbox={BBOX}&limit=7&sortby=-levels"
    while url:
        r = client.get(url)
        assert r.status_code == 200
        fc = r.json()
        assert fc["numberMatched"] == N_BUILDINGS
        seen += [f["properties"]["levels"] for f in fc["features"]]
        links = {ln["rel"]: ln["href"] for ln in fc["links"]}
        if pages:
            assert "prev" in links
        url = links.get("next")
        if url:
            q = parse_qs(urlsplit(url).query)
            assert q["sortby"] == ["-levels"] and q["limit"] == ["7"] and q["bbox"] == [BBOX]
        pages += 1
    assert pages == 4 and seen == list(range(N_BUILDINGS, 0, -1))
    last = get_items(client, limit=5, offset=20)
    assert last["numberReturned"] == 5 and "next" not in {ln["rel"] for ln in last["links"]}
    beyond = get_items(client, limit=5, offset=100)
    assert beyond["numberReturned"] == 0 and beyond["numberMatched"] == N_BUILDINGS


def test_properties_sortby_ids(client, ids):
    fc = get_items(client, properties="levels,use", sortby="-height_m", limit=3)
    assert [f["properties"] for f in fc["features"]] == [
        {"levels": 25, "use": "school"}, {"levels": 24, "use": "residential"},
        {"levels": 23, "use": "office"}]
    assert get_items(client, properties="", limit=1)["features"][0]["properties"] == {}
    # '+' unencoded arrives as a space; both spellings sort ascending
    for raw in ("%2Blevels", "+levels", "levels"):
        r = client.get(f"{ITEMS}?bbox={BBOX}&limit=2&sortby={raw}").json()
        assert [f["properties"]["levels"] for f in r["features"]] == [1, 2], raw
    two = get_items(client, sortby="use,-levels", limit=2)
    assert [f["properties"]["levels"] for f in two["features"]] == [23, 20]
    pick = ids["building"][3:6]
    fc = get_items(client, ids=",".join(map(str, pick)))
    assert [f["id"] for f in fc["features"]] == pick and fc["numberMatched"] == 3


def test_property_equality_parameters(client):
    fc = get_items(client, use="school")
    assert fc["numberMatched"] == 9
    assert {f["properties"]["use"] for f in fc["features"]} == {"school"}
    assert get_items(client, levels="7")["numberMatched"] == 1
    bad(client, ITEMS, {"levels": "seven"}, "levels", "integer")
    assert client.get("/collections/roads/items", params={"bbox": BBOX, "oneway": "true"}
                      ).json()["numberMatched"] == 1
    assert client.get("/collections/roads/items", params={"bbox": BBOX, "oneway": "1"}
                      ).json()["numberMatched"] == 1


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"bbox": "a,b,c,d"}, ["bbox"]),
        ({"bbox": "1,2,3"}, ["bbox"]),
        ({"bbox": "109,16,108,17"}, ["bbox", "min"]),
        ({"bbox": "108,95,109,96"}, ["bbox"]),
        ({"bbox": BBOX, "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/3857"}, ["bbox-crs"]),
        ({"limit": "0"}, ["limit"]),
        ({"limit": "abc"}, ["limit"]),
        ({"offset": "-1"}, ["offset"]),
        ({"properties": "levels,heigth"}, ["properties", "heigth"]),
        ({"sortby": "-heigth"}, ["sortby", "heigth"]),
        ({"ids": "1,x"}, ["ids"]),
        ({"filter": "heigth > 3"}, ["unknown property 'heigth'", "height_m"]),
        ({"filter": "levels >"}, ["cannot parse"]),
        ({"filter": "levels = 'abc'"}, ["levels", "abc"]),
        ({"filter": "levels > 1", "filter-lang": "ecql"}, ["filter-lang"]),
        ({"filter": "{\"op\": \"=\"", "filter-lang": "cql2-json"}, ["JSON"]),
        ({"filter": "levels > 1", "filter-crs": "EPSG:3857"}, ["filter-crs"]),
        ({"datetime": "2020-13-45"}, ["datetime"]),
        ({"f": "xml"}, ["f"]),
        ({"frobnicate": "1"}, ["unknown parameter 'frobnicate'"]),
    ],
)
def test_bad_parameters_are_400(client, params, words):
    body = bad(client, ITEMS, params, *words)
    assert body["code"] in ("InvalidParameter", "InvalidFilter")


def test_limit_bounds(client):
    assert get_items(client, limit=10000)["numberReturned"] == N_BUILDINGS
    # OGC API Features Part 1, /req/core/limit-response: above the maximum, use it
    assert get_items(client, limit=10001)["numberReturned"] == N_BUILDINGS
    assert get_items(client, limit=10**30)["numberReturned"] == N_BUILDINGS
    assert get_items(client, limit=1)["numberReturned"] == 1
    default = client.get(ITEMS).json()
    assert default["numberReturned"] <= 100


def test_filters_text_and_json(client, ids):
    def matched(flt, lang=None, **extra):
        params = {"filter": flt, **extra}
        if lang:
            params["filter-lang"] = lang
        return get_items(client, **params)["numberMatched"]

    assert matched("levels > 20") == 5
    assert matched(orjson.dumps({"op": ">", "args": [{"property": "levels"}, 20]}).decode(),
                   "cql2-json") == 5
    assert matched("levels > 20 AND use = 'school'") == 2
    assert matched("use IN ('school', 'office') AND NOT levels <= 20") == 3
    assert matched("height_m BETWEEN 30 AND 45") == 6
    assert matched("name IS NULL") == 6
    assert matched("name LIKE 'Tòa nhà 1%'") == 8  # 1, 10, 12, 13, 14, 16, 17, 18
    assert matched("CASEI(ward) = casei('SƠN TRÀ')") == 10
    assert matched("ACCENTI(ward) = ACCENTI('Son Tra')") == 10
    assert matched("levels + 1 = 3 OR levels * 2 = 50") == 2
    # spatial: the first column of buildings (x = 108.5) and one building by a point
    column = "POLYGON((108.499 16.49,108.503 16.49,108.503 16.61,108.499 16.61,108.499 16.49))"
    assert matched(f"S_INTERSECTS(geometry, {column})") == 5
    assert matched(f"S_WITHIN(geom, {column})") == 5
    assert matched("S_CONTAINS(geometry, POINT(108.501 16.501))") == 1
    assert matched("S_INTERSECTS(geometry, BBOX(108.49, 16.49, 108.511, 16.511))") == 1
    assert matched("S_DISJOINT(geometry, BBOX(108.49, 16.49, 108.511, 16.511))") == 24
    gj = {"op": "s_intersects", "args": [
        {"property": "geometry"},
        {"type": "Point", "coordinates": [108.581, 16.581]}]}
    assert matched(orjson.dumps(gj).decode(), "cql2-json") == 1
    # without a bbox parameter, the spatial filter alone scopes the query
    r = client.get(ITEMS, params={"filter": f"S_WITHIN(geometry, {column}) AND levels > 10"})
    assert r.json()["numberMatched"] == 3


def test_admin_periods_are_half_open_and_open_started(client, engine, ids):
    """[valid_from, valid_to): a district abolished on 2025-07-01 is not valid that day;
    a unit imported without valid_from is valid "since always" (issue: it never matched)."""
    path = "/collections/admin_boundaries/items"
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO admin_area (level, code, name_vi, name_en, valid_from, valid_to, geom, "
            "source, source_id) VALUES ('district', 'TD1', 'Quận Không Ngày', 'Undated', NULL, "
            "'2025-07-01', ST_Multi(ST_MakeEnvelope(108.6, 16.55, 108.61, 16.56, 4326)), "
            "'test-periods', 'd1')"))
    try:
        def names(when: str) -> list[str]:
            fc = get_items(client, path, datetime=when)
            return sorted(f["properties"]["name_vi"] for f in fc["features"])

        assert "Quận Không Ngày" in names("2020-01-01")
        assert "Quận Không Ngày" in names("1900-01-01T00:00:00Z")
        assert "Quận Không Ngày" in names("2025-06-30")
        assert names("2025-07-01") == ["Phường Mới"]
        assert names("2025-07-02") == ["Phường Mới"]
        assert "Quận Không Ngày" not in names("2025-07-01/..")
        assert "Quận Không Ngày" in names("../2025-07-01")
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM admin_area WHERE source = 'test-periods'"))


def test_datetime_on_a_collection_without_time_matches_every_feature(client):
    """OGC API Features Part 1, /req/core/fc-time-response: features without temporal
    data are not filtered out by datetime (buildings have no time field)."""
    assert get_items(client, datetime="2020-01-01")["numberMatched"] == N_BUILDINGS
    assert get_items(client, datetime="../2020-01-01")["numberMatched"] == N_BUILDINGS


def test_items_link_their_csv_alternate(client):
    """/rec/core/fc-links: the other formats of this page as rel=alternate."""
    fc = get_items(client, limit=5)
    alt = [lk for lk in fc["links"] if lk["rel"] == "alternate"]
    assert [lk["type"] for lk in alt] == ["text/csv"]
    r = client.get(alt[0]["href"].replace("http://testserver", ""))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert len(r.text.strip().splitlines()) == 6  # header + the same 5 features


def test_datetime_and_temporal_filters(client, ids):
    path = "/collections/admin_boundaries/items"

    def names(**params):
        fc = get_items(client, path, **params)
        return sorted(f["properties"]["name_vi"] for f in fc["features"])

    assert names(datetime="2025-07-15") == ["Phường Mới"]
    assert names(datetime="2015-06-01T12:00:00Z") == ["Quận Cũ", "Xã Tạm"]
    assert names(datetime="2025-01-01/..") == ["Phường Mới", "Quận Cũ"]
    assert names(datetime="../2009-12-31") == ["Quận Cũ"]
    assert names(datetime="2020-01-01/2020-12-31") == ["Quận Cũ"]
    bad(client, path, {"datetime": "2020-13-45"}, "datetime")
    bad(client, path, {"datetime": "2021-01-01/2020-01-01"}, "datetime")
    assert names(filter="T_INTERSECTS(INTERVAL(valid_from, valid_to), "
                 "INTERVAL('2025-01-01', '..'))") == ["Phường Mới", "Quận Cũ"]
    assert names(filter="T_AFTER(valid_from, DATE('2000-01-01'))") == ["Phường Mới", "Xã Tạm"]
    assert names(filter="T_BEFORE(valid_to, TIMESTAMP('2020-01-01T00:00:00Z'))") == ["Xã Tạm"]
    assert names(filter="T_DURING(INTERVAL(valid_from, valid_to), "
                 "INTERVAL('2000-01-01', '2024-12-31'))") == ["Xã Tạm"]
    assert names(filter="valid_to IS NULL") == ["Phường Mới"]
    j = {"op": "t_intersects", "args": [{"property": "valid_from"},
                                         {"interval": ["2025-06-01", "2025-12-31"]}]}
    assert names(filter=orjson.dumps(j).decode(), **{"filter-lang": "cql2-json"}) == ["Phường Mới"]
    bad(client, path, {"filter": "T_AFTER(name_vi, DATE('2000-01-01'))"}, "T_AFTER")


def test_csv_output(client, ids):
    r = client.get(ITEMS, params={"bbox": BBOX, "f": "csv", "limit": 5, "properties": "use,levels"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["id", "use", "levels", "wkt"]
    assert len(rows) == 6 and rows[1][0] == str(ids["building"][0])
    assert rows[1][1:3] == ["school", "1"] and rows[1][3].startswith("MULTIPOLYGON")
    assert 'rel="next"' in r.headers["link"]
    full = client.get(ITEMS, params={"bbox": BBOX, "limit": 100},
                      headers={"Accept": "text/csv"})
    assert full.headers["content-type"].startswith("text/csv")
    header, *body = list(csv.reader(io.StringIO(full.text)))
    assert header == ["id", "name", "use", "levels", "height_m", "address", "ward", "area_m2",
                      "wkt"]
    assert len(body) == N_BUILDINGS and "link" not in full.headers
    assert body[3][1] == ""  # NULL name


def test_single_feature(client, ids):
    fid = ids["building"][2]
    r = client.get(f"{ITEMS}/{fid}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    f = r.json()
    assert f["type"] == "Feature" and f["id"] == fid and f["properties"]["levels"] == 3
    assert {ln["rel"] for ln in f["links"]} == {"self", "collection"}
    for missing in ("999999999", "abc", "1.5", "99999999999999999999999"):
        r = client.get(f"{ITEMS}/{missing}")
        assert r.status_code == 404, missing


def test_number_matched_is_estimated_past_the_cap(client, monkeypatch):
    from layers import features

    monkeypatch.setattr(features, "COUNT_CAP", 10)
    fc = get_items(client, limit=3)
    assert fc["numberReturned"] == 3 and fc["numberMatched"] >= 10
