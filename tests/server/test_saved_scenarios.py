"""Saved scenarios over HTTP (issue 13): the list with its filters and paging, rename and
describe (the author or an admin; other staff read), delete, and the difference table
of a 2 m and a 4 m flood on the sloping test DEM, checked against the stored summaries."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from server.app import create_app
from tests.server.helpers import token_for
from tests.slope_dem import write_dem
from twin.settings import Settings


@pytest.fixture(scope="module")
def dem(engine: Engine, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> str:
    from twin.ingest.dem import import_dem
    from twin.progress import NullReporter

    name = f"saved-{uuid.uuid4().hex[:6]}"
    tif = write_dem(tmp_path_factory.mktemp("saved-dem") / "slope.tif")
    with engine.begin() as conn:
        import_dem(conn, tif, reporter=NullReporter(), settings=settings, name=name)
    return name


@pytest.fixture(scope="module")
def client(settings: Settings, dem: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def lan(client: TestClient, engine: Engine) -> dict[str, str]:
    return token_for(client, engine, "planner")


@pytest.fixture(scope="module")
def other(client: TestClient, engine: Engine) -> dict[str, str]:
    return token_for(client, engine, "responder")


@pytest.fixture(scope="module")
def admin(client: TestClient, engine: Engine) -> dict[str, str]:
    return token_for(client, engine, "admin")


def me(client: TestClient, headers: dict[str, str]) -> str:
    r = client.get("/auth/me", headers=headers)
    assert r.status_code == 200, r.text
    return str(r.json()["username"])


@pytest.fixture(scope="module")
def floods(client: TestClient, lan: dict[str, str], dem: str) -> dict[str, dict]:
    out = {}
    for m in (2, 4):
        r = client.post("/scenarios/flood", headers=lan,
                        json={"water_level_m": m, "dem": dem, "name": f"Lũ {m} m thử"})
        assert r.status_code == 201, r.text
        out[f"{m}m"] = r.json()
    return out


def test_list_filters_and_paging(client, lan, other, floods) -> None:  # noqa: ANN001
    author = me(client, lan)
    got = client.get(f"/scenarios?author={author}", headers=other).json()
    assert got["total"] == 2
    items = got["items"]
    assert [i["id"] for i in items] == [floods["4m"]["id"], floods["2m"]["id"]]  # newest first
    first = items[0]
    assert first["name"] == "Lũ 4 m thử" and first["kind"] == "flood"
    assert first["created_by"] == author and first["created_at"]
    assert first["params"]["water_level_m"] == 4
    s = floods["4m"]["summary"]
    assert str(s["buildings"]["count"]) in first["headline"]["en"]
    assert first["headline"]["vi"].startswith("4,0 m") and "km² ngập" in first["headline"]["vi"]
    assert first["kind_label"] == {"vi": "Lũ (mực nước)", "en": "Flood (water level)"}
    assert "geometry" not in first and "_building_ids" not in first["summary"]

    page = client.get(f"/scenarios?author={author}&limit=1&offset=1", headers=lan).json()
    assert page["total"] == 2 and [i["id"] for i in page["items"]] == [floods["2m"]["id"]]
    q = client.get(f"/scenarios?author={author}&q=2%20M", headers=lan).json()
    assert [i["id"] for i in q["items"]] == [floods["2m"]["id"]]
    # a wildcard in q is a character, not a pattern
    assert client.get(f"/scenarios?author={author}&q=%25", headers=lan).json()["total"] == 0
    assert client.get(f"/scenarios?author={author}&kind=closure,outage",
                      headers=lan).json()["total"] == 0
    assert client.get(f"/scenarios?author={author}&kind=flood,rain",
                      headers=lan).json()["total"] == 2
    assert client.get("/scenarios?author=nobody-at-all", headers=lan).json()["total"] == 0
    bad = client.get("/scenarios?kind=volcano", headers=lan)
    assert bad.status_code == 400 and "kind" in bad.json()["description"]
    assert client.get("/scenarios?limit=0", headers=lan).status_code == 422
    assert client.get("/scenarios").status_code == 401


def test_compare_table_of_two_floods(client, lan, floods) -> None:  # noqa: ANN001
    a, b = floods["2m"], floods["4m"]
    r = client.get(f"/scenarios/compare?a={a['id']}&b={b['id']}", headers=lan)
    assert r.status_code == 200, r.text
    rows = {row["key"]: row for row in r.json()["table"]}
    sa, sb = a["summary"], b["summary"]
    expect = {
        "water_level": (sa["water_level_m"], sb["water_level_m"], "m"),
        "area": (sa["flooded_area_km2"], sb["flooded_area_km2"], "km²"),
        "max_depth": (sa["max_depth_m"], sb["max_depth_m"], "m"),
        "buildings": (sa["buildings"]["count"], sb["buildings"]["count"], ""),
        "population": (sa["population"], sb["population"], "người"),
        "impassable": (sa["roads"]["impassable"]["count"], sb["roads"]["impassable"]["count"], ""),
    }
    for key, (va, vb, unit) in expect.items():
        row = rows[key]
        assert row["a"] == pytest.approx(va) and row["b"] == pytest.approx(vb), key
        assert row["diff"] == pytest.approx(vb - va, abs=1e-3), key
        assert row["unit"] == unit and row["label"]["vi"] and row["label"]["en"]
    assert rows["water_level"]["diff"] == pytest.approx(2)
    assert sb["flooded_area_km2"] > sa["flooded_area_km2"] > 0  # the slope floods further
    assert rows["area"]["diff"] > 0
    assert rows["area"]["label"] == {"vi": "Diện tích ngập", "en": "Flooded area"}
    # reversed, the differences change sign
    back = client.get(f"/scenarios/compare?a={b['id']}&b={a['id']}", headers=lan).json()
    assert {x["key"]: x["diff"] for x in back["table"]}["area"] == pytest.approx(
        -rows["area"]["diff"])


def test_compare_refuses_different_kinds(client, lan, floods, engine) -> None:  # noqa: ANN001
    from twin.scenarios import store

    with engine.begin() as conn:
        cid = store.insert(conn, "closure", {"segment_ids": [1]}, name="đóng thử",
                           created_by=me(client, lan),
                           result={"closed": {"count": 1, "length_m": 10.0},
                                   "cut_off": {"segments": 0, "length_m": 0},
                                   "buildings": {"count": 0, "population": 0}})
    try:
        r = client.get(f"/scenarios/compare?a={floods['2m']['id']}&b={cid}", headers=lan)
        assert r.status_code == 400
        body = r.json()
        assert set(body) >= {"code", "description"} and "cannot be compared" in body["description"]
        same = client.get(f"/scenarios/compare?a={cid}&b={cid}", headers=lan).json()
        assert {x["key"] for x in same["table"]} >= {"closed", "buildings"}
        listed = client.get(f"/scenarios?author={me(client, lan)}&kind=closure",
                            headers=lan).json()["items"]
        assert listed[0]["headline"]["en"].startswith("1 closed")
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM scenario WHERE id = :i"), {"i": cid})


def test_rename_and_describe_by_the_author_or_an_admin(client, lan, other, admin,  # noqa: ANN001
                                                       floods) -> None:
    sid = floods["2m"]["id"]
    r = client.patch(f"/scenarios/{sid}", headers=lan,
                     json={"name": "Lũ 2 m — Hải Châu", "description": "mốc so sánh"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Lũ 2 m — Hải Châu" and r.json()["description"] == "mốc so sánh"
    got = client.get(f"/scenarios/{sid}", headers=other).json()  # other staff read it
    assert got["name"] == "Lũ 2 m — Hải Châu" and got["description"] == "mốc so sánh"
    assert got["summary"] == floods["2m"]["summary"]

    denied = client.patch(f"/scenarios/{sid}", headers=other, json={"name": "của tôi"})
    assert denied.status_code == 403 and "author" in denied.json()["description"]
    assert client.delete(f"/scenarios/{sid}", headers=other).status_code == 403
    assert client.get(f"/scenarios/{sid}", headers=lan).json()["name"] == "Lũ 2 m — Hải Châu"

    ok = client.patch(f"/scenarios/{sid}", headers=admin, json={"description": ""})
    assert ok.status_code == 200 and ok.json()["description"] is None
    assert ok.json()["name"] == "Lũ 2 m — Hải Châu"

    for body in ({"name": ""}, {"name": "x" * 101}, {"name": "   "}, {"colour": "red"},
                 {"description": "y" * 2001}):
        bad = client.patch(f"/scenarios/{sid}", headers=lan, json=body)
        assert bad.status_code in (400, 422), (body, bad.text)
        assert "description" in bad.json()
    assert client.get(f"/scenarios/{sid}", headers=lan).json()["name"] == "Lũ 2 m — Hải Châu"
    assert client.patch("/scenarios/987654321", headers=lan, json={"name": "a"}).status_code == 404
    assert client.patch(f"/scenarios/{sid}", json={"name": "a"}).status_code == 401


def test_delete_by_the_author(client, lan, dem) -> None:  # noqa: ANN001
    r = client.post("/scenarios/flood", headers=lan,
                    json={"water_level_m": 1, "dem": dem, "name": "tạm"})
    sid = r.json()["id"]
    assert client.delete(f"/scenarios/{sid}", headers=lan).status_code == 204
    assert client.get(f"/scenarios/{sid}", headers=lan).status_code == 404
    assert client.delete(f"/scenarios/{sid}", headers=lan).status_code == 404
    author = me(client, lan)
    assert sid not in {i["id"] for i in client.get(f"/scenarios?author={author}",
                                                   headers=lan).json()["items"]}
