"""Scenarios over HTTP: a flood on the real DEM with buildings by the Hàn River, its depth
tiles, reading back, comparing, closing its impassable roads; outages; access; bad
parameters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import morecantile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from server.app import create_app
from tests.layers.test_raster import SON_TRA, decode
from tests.server.helpers import token_for
from tests.server.test_raster_api import register_srtm
from tests.twin.test_scenarios_outage import net  # noqa: F401 - the hand-built networks
from twin.settings import Settings

WMQ = morecantile.tms.get("WebMercatorQuad")
SRC = "test-flood-api"
RIVERSIDE = (108.2295, 16.0456)  # 2 m above sea level, by the Hàn River mouth


@pytest.fixture(scope="module")
def dem(engine: Engine, settings: Settings, danang: Path) -> str:
    return register_srtm(engine, settings, danang)


@pytest.fixture(scope="module")
def client(settings: Settings, dem: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def staff(client: TestClient, engine: Engine) -> dict[str, str]:
    return token_for(client, engine, "planner")


@pytest.fixture(scope="module")
def assets(engine: Engine) -> dict[str, int]:
    """A house and a hospital by the river, a house on Sơn Trà, a riverside street."""
    x, y = RIVERSIDE
    with engine.begin() as conn:
        for table in ("road_segment", "road_node", "facility", "building"):
            conn.execute(text(f"DELETE FROM {table} WHERE source = :s"), {"s": SRC})
        ids = {}
        for name, (bx, by) in {"riverside": RIVERSIDE, "son-tra": SON_TRA}.items():
            ids[name] = conn.execute(
                text("INSERT INTO building (source, source_id, use, levels, area_m2, population, "
                     "geom) VALUES (:s, :n, 'residential', 3, 120, 6, ST_Multi(ST_Expand("
                     "ST_SetSRID(ST_MakePoint(:x, :y), 4326), 0.00005))) RETURNING id"),
                {"s": SRC, "n": name, "x": bx, "y": by},
            ).scalar_one()
        conn.execute(
            text("INSERT INTO facility (source, source_id, kind, name_vi, geom) VALUES "
                 "(:s, 'h', 'hospital', 'Bệnh viện thử', ST_SetSRID(ST_MakePoint(:x, :y), 4326))"),
            {"s": SRC, "x": x + 0.0001, "y": y},
        )
        a, b = (conn.execute(
            text("INSERT INTO road_node (source, source_id, geom) VALUES (:s, :n, "
                 "ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"),
            {"s": SRC, "n": n, "x": x + dx, "y": y},
        ).scalar_one() for n, dx in (("a", -0.0003), ("b", 0.0003)))
        ids["street"] = conn.execute(
            text("INSERT INTO road_segment (source, source_id, from_node, to_node, road_class, "
                 "oneway, maxspeed_kmh, length_m, cost, reverse_cost, bridge, geom) SELECT :s, "
                 "'street', :a, :b, 'tertiary', false, 30, 64, 8, 8, false, ST_MakeLine(x.geom, "
                 "y.geom) FROM road_node x, road_node y WHERE x.id = :a AND y.id = :b "
                 "RETURNING id"),
            {"s": SRC, "a": a, "b": b},
        ).scalar_one()
    return ids


def post_flood(client: TestClient, headers: dict[str, str], **body):  # noqa: ANN003, ANN201
    return client.post("/scenarios/flood", json=body, headers=headers)


def test_flood_on_the_real_dem(client, staff, dem, assets, engine) -> None:  # noqa: ANN001
    r = post_flood(client, staff, water_level_m=5, dem=dem, name="5 m")
    assert r.status_code == 201, r.text
    sc = r.json()
    s = sc["summary"]
    assert r.headers["location"] == f"/scenarios/{sc['id']}"
    assert s["dem"] == dem and s["source"] == "sea" and s["water_level_m"] == 5
    assert 30 < s["flooded_area_km2"] < 120
    # (the summary lists at most 500 ids: other data in the database may crowd them out,
    # so which buildings and roads are affected is read from the full feature list below)
    assert s["buildings"]["floor_area_m2"] >= 360 and s["population"] >= 6
    assert s["roads"]["impassable"]["by_class"]["tertiary"]["count"] >= 1
    assert s["facilities"]["by_kind"].get("hospital", 0) >= 1
    assert set(s["timing_ms"]) >= {"fill", "pieces", "database", "outline_and_raster_wait", "total"}
    assert sc["links"]["tiles"] == f"/raster/flood/{sc['id']}/{{z}}/{{x}}/{{y}}.png"

    got = client.get(f"/scenarios/{sc['id']}", headers=staff).json()
    assert got["geometry"]["type"] == "MultiPolygon" and got["summary"] == s
    feats = client.get(f"/scenarios/{sc['id']}?include=features", headers=staff).json()
    ids = {f["id"] for f in feats["features"]["features"]
           if f["properties"]["layer"] == "building"}
    assert assets["riverside"] in ids and assets["son-tra"] not in ids
    assert len(ids) == s["buildings"]["count"]
    impassable = {f["id"] for f in feats["features"]["features"]
                  if f["properties"]["layer"] == "road" and f["properties"]["impassable"]}
    assert assets["street"] in impassable
    assert len(impassable) == s["roads"]["impassable"]["count"]

    t = WMQ.tile(*RIVERSIDE, 14)
    tile = client.get(f"/raster/flood/{sc['id']}/14/{t.x}/{t.y}.png", headers=staff)
    assert tile.status_code == 200, tile.text
    img = decode(tile.content)
    wet = img[3] > 0
    assert wet.any()
    # depth classes in yellow → orange → red → purple (never blue: rivers and pipes are)
    from layers.raster import DEPTH_LEGEND
    colours = {c for _, c in DEPTH_LEGEND}
    got = {tuple(int(v) for v in px) for px in img[:3, wet].T}
    assert got <= colours and len(got) >= 2, got
    r, g, b = (img[i][wet].astype(int) for i in range(3))
    assert ((b - r <= 30) & (g < r)).all()  # the darkest class is purple, not blue
    assert client.get(f"/raster/flood/{sc['id']}/14/{t.x}/{t.y}.png").status_code == 401
    far = WMQ.tile(*SON_TRA, 14)
    assert client.get(f"/raster/flood/{sc['id']}/14/{far.x}/{far.y}.png",
                      headers=staff).status_code == 204
    depth = client.get(f"/raster/flood/{sc['id']}/point/{RIVERSIDE[0]},{RIVERSIDE[1]}",
                       headers=staff).json()
    assert depth["depth_m"] == pytest.approx(3.0)
    tj = client.get(f"/raster/flood/{sc['id']}/tilejson.json", headers=staff).json()
    assert tj["legend"]["unit"] == "m" and tj["bounds"][0] > 108

    # a lower flood, compared; then the roads it makes impassable, closed
    low = post_flood(client, staff, water_level_m=2, dem=dem, public=True).json()
    assert client.get(f"/raster/flood/{low['id']}/tilejson.json").status_code == 200
    cmp = client.get(f"/scenarios/compare?a={low['id']}&b={sc['id']}", headers=staff).json()
    assert cmp["delta"]["flooded_area_km2"] > 0 and cmp["area"]["only_b_km2"] > 0
    assert cmp["area"]["only_a_km2"] == pytest.approx(0, abs=1e-6)
    assert cmp["buildings"]["only_b"] >= 0 and cmp["a"]["id"] == low["id"]
    listed = client.get("/scenarios?kind=flood", headers=staff).json()
    assert {sc["id"], low["id"]} <= {i["id"] for i in listed["items"]}

    cl = client.post("/scenarios/closure", json={"scenario_id": sc["id"], "samples": 1},
                     headers=staff)
    assert cl.status_code == 201, cl.text
    assert cl.json()["summary"]["closed"]["count"] == s["roads"]["impassable"]["count"]
    assert cl.json()["features"]["type"] == "FeatureCollection"

    with engine.connect() as conn:
        path = conn.execute(text("SELECT raster_path FROM scenario WHERE id = :i"),
                            {"i": sc["id"]}).scalar_one()
    assert Path(path).exists()
    assert client.delete(f"/scenarios/{sc['id']}", headers=staff).status_code == 204
    assert not Path(path).exists()
    assert client.get(f"/scenarios/{sc['id']}", headers=staff).status_code == 404


def test_unsaved_flood_and_features(client, staff, dem, assets) -> None:  # noqa: ANN001
    r = post_flood(client, staff, rise_m=5, dem=dem, save=False)
    assert r.status_code == 200 and r.json()["id"] is None
    r = post_flood(client, staff, water_level_m=5, dem=dem, save=False, seeds=[list(RIVERSIDE)])
    body = client.post("/scenarios/flood?include=features", headers=staff,
                       json={"water_level_m": 5, "dem": dem, "save": False}).json()
    layers = {f["properties"]["layer"] for f in body["features"]["features"]}
    assert layers == {"building", "road"}
    assert r.json()["summary"]["source"] == "points"


def test_a_flood_for_an_incident(client, staff, dem) -> None:  # noqa: ANN001
    inc = client.post("/incidents", headers=staff, json={
        "category": "flood", "geometry": {"type": "Point", "coordinates": list(RIVERSIDE)}})
    assert inc.status_code in (200, 201), inc.text
    iid = inc.json()["id"]
    r = post_flood(client, staff, water_level_m=2, dem=dem, incident_id=iid)
    assert r.status_code == 201 and r.json()["params"]["incident_id"] == iid
    listed = client.get(f"/scenarios?kind=flood&incident_id={iid}", headers=staff).json()
    assert [i["id"] for i in listed["items"]] == [r.json()["id"]] and listed["total"] == 1


def test_outage_over_http(client, staff, net) -> None:  # noqa: ANN001, F811
    r = client.post("/scenarios/outage", json={"edge_id": net["e4"]}, headers=staff)
    assert r.status_code == 201, r.text
    assert r.json()["summary"]["message"].endswith("3 buildings without water")
    got = client.get(f"/scenarios/{r.json()['id']}", headers=staff).json()
    assert got["kind"] == "outage" and got["features"]["features"] and got["geometry"] is None


def test_closure_from_an_origin_over_http(client, staff, engine) -> None:  # noqa: ANN001
    from tests.twin.test_scenarios_closure import build, nodes_at

    x0, y0 = 112.0, 16.5  # open sea inside the city's bounds: no other test's roads
    at = nodes_at(x0, y0)
    segs = build(engine, x0, y0, "test-closure-api")
    r = client.post("/scenarios/closure", headers=staff, json={
        "segment_ids": [segs["W2-W3"]], "origin": list(at["W4"]), "samples": 0})
    assert r.status_code == 201, r.text
    s = r.json()["summary"]
    assert s["origin"]["source"] == "given" and s["drive_times"] == []
    h = next(f for f in s["facilities"] if f["name_vi"] == "H")
    assert h["kind"] == "hospital" and h["after_s"] > h["before_s"] > 0
    layers = [(f["properties"]["layer"], f["properties"].get("name_vi"))
              for f in r.json()["features"]["features"] if f["properties"].get("origin")]
    assert {("route_before", "H"), ("route_after", "H"), ("facility", "H")} <= set(layers)
    # stored with its origin: reading it back gives the same list
    got = client.get(f"/scenarios/{r.json()['id']}", headers=staff).json()
    assert got["params"]["origin"] == list(at["W4"])
    assert got["summary"]["facilities"] == s["facilities"]
    # the default origin: the middle of the first closed segment
    d = client.post("/scenarios/closure", headers=staff, json={
        "segment_ids": [segs["W4-E0"]], "samples": 0, "save": False}).json()["summary"]
    assert d["origin"]["source"] == "closed_midpoint"
    assert d["origin"]["lon"] == pytest.approx(x0 + 0.005, abs=1e-6)
    h = next(f for f in d["facilities"] if f["name_vi"] == "H")
    assert h["unreachable"] is False and h["delta_s"] == 0
    # an origin outside the city or not a pair: 400 / 422, nothing stored
    before = client.get("/scenarios?kind=closure", headers=staff).json()["total"]
    bad = client.post("/scenarios/closure", headers=staff, json={
        "segment_ids": [segs["W2-W3"]], "origin": [2.35, 48.85]})
    assert bad.status_code == 400 and "origin" in bad.text
    assert client.post("/scenarios/closure", headers=staff, json={
        "segment_ids": [segs["W2-W3"]], "origin": [112.0]}).status_code == 422
    assert client.get("/scenarios?kind=closure", headers=staff).json()["total"] == before


def test_outage_valves_name_their_street_over_http(client, staff, engine, net) -> None:  # noqa: ANN001, F811
    from tests.twin.test_scenarios_outage import X0, _road

    with engine.begin() as conn:
        _road(conn, "Đường Van", "Valve Street", 12.0002)
    try:
        r = client.post("/scenarios/outage", json={"edge_id": net["e4"], "save": False},
                        headers=staff)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM road_segment WHERE source = 'test-outage'"))
            conn.execute(text("DELETE FROM road_node WHERE source = 'test-outage'"))
    assert r.status_code == 200, r.text
    valves = {d["name"]: d for d in r.json()["summary"]["operate"]}
    assert valves["V1"]["street"] == "Đường Van" and valves["V1"]["street_en"] == "Valve Street"
    assert valves["V1"]["lon"] == pytest.approx(X0 + 0.002)


def test_scenarios_are_staff_only(client, engine, dem) -> None:  # noqa: ANN001
    body = {"water_level_m": 2, "dem": dem}
    assert client.post("/scenarios/flood", json=body).status_code == 401
    citizen = token_for(client, engine, "citizen")
    assert client.post("/scenarios/flood", json=body, headers=citizen).status_code == 403
    assert client.get("/scenarios", headers=citizen).status_code == 403
    assert client.get("/scenarios").status_code == 401
    assert client.post("/scenarios/outage", json={"edge_id": 1}).status_code == 401


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/scenarios/flood", {"water_level_m": -1}, 400),
        ("/scenarios/flood", {"water_level_m": 2000}, 400),
        ("/scenarios/flood", {"rise_m": -3}, 400),
        ("/scenarios/flood", {}, 400),
        ("/scenarios/flood", {"water_level_m": 2, "rise_m": 1}, 400),
        ("/scenarios/flood", {"water_level_m": 2, "seeds": [[100.0, 10.0]]}, 400),
        ("/scenarios/flood", {"water_level_m": 2, "seeds": [[108.2]]}, 400),
        ("/scenarios/flood", {"water_level_m": 2, "impassable_depth_m": 0}, 400),
        ("/scenarios/flood", {"water_level_m": 2, "dem": "no-such-dem"}, 404),
        ("/scenarios/flood", {"water_level_m": 2, "incident_id": 987654321}, 400),
        ("/scenarios/flood", {"water_level_m": "deep"}, 422),
        ("/scenarios/closure", {"segment_ids": [987654321]}, 400),
        ("/scenarios/closure", {}, 400),
        ("/scenarios/closure", {"scenario_id": 987654321}, 404),
        ("/scenarios/outage", {"edge_id": 987654321}, 400),
        ("/scenarios/outage", {}, 400),
    ],
)
def test_bad_parameters(client, staff, dem, path, body, status) -> None:  # noqa: ANN001
    if path == "/scenarios/flood" and "dem" not in body:
        body = {**body, "dem": dem}
    r = client.post(path, json=body, headers=staff)
    assert r.status_code == status, r.text
    if status == 400:
        assert r.json()["description"]


def test_bad_reads(client, staff) -> None:  # noqa: ANN001
    assert client.get("/scenarios/987654321", headers=staff).status_code == 404
    assert client.get("/scenarios/compare?a=987654321&b=1", headers=staff).status_code == 404
    assert client.get("/scenarios?kind=storm", headers=staff).status_code == 400
    assert client.get("/scenarios/1?include=everything", headers=staff).status_code == 400
    assert client.get("/raster/flood/987654321/10/0/0.png", headers=staff).status_code == 404
