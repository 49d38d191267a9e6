"""Rain floods over HTTP on the real Đà Nẵng DEM: stored like a flood (kind rain) with
depth tiles, read back, compared; bad parameters answer 4xx in the error shape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import morecantile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from server.app import create_app
from tests.server.helpers import token_for
from tests.server.test_raster_api import register_srtm
from twin.settings import Settings

WMQ = morecantile.tms.get("WebMercatorQuad")


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


def test_the_2022_storm_on_the_real_dem(client, staff, dem) -> None:  # noqa: ANN001
    body = {"hyetograph": [500 / 6] * 6 + [59.0] * 5, "interval_h": 1, "dem": dem,
            "name": "14 Oct 2022"}
    r = client.post("/scenarios/rain", json=body, headers=staff)
    assert r.status_code == 201, r.text
    sc = r.json()
    s = sc["summary"]
    assert sc["kind"] == "rain" and r.headers["location"] == f"/scenarios/{sc['id']}"
    assert s["model"] == "rain" and s["rain_mm"] == pytest.approx(795) and s["hours"] == 11
    assert s["flooded_area_km2"] > 1 and s["max_depth_m"] > 0.5
    assert sum(s["depth_classes_km2"].values()) == pytest.approx(s["flooded_area_km2"],
                                                                 abs=0.01)
    wb = s["water_balance_m3"]
    assert wb["rain"] == pytest.approx(wb["infiltrated"] + wb["drained"] + wb["stored"]
                                       + wb["to_sea"], rel=1e-6)
    assert s["drainage_mm_per_h"] == pytest.approx(200 / 24, abs=1e-3)
    assert s["routing"] == "fill-spill-merge"
    assert "SCS" in s["notes_i18n"]["en"][0] and "SCS" in s["notes_i18n"]["vi"][0]
    assert "mưa" in s["notes_i18n"]["vi"][0]
    assert sc["links"]["tiles"] == f"/raster/flood/{sc['id']}/{{z}}/{{x}}/{{y}}.png"
    got = client.get(f"/scenarios/{sc['id']}", headers=staff).json()
    assert got["kind"] == "rain" and got["geometry"]["type"] == "MultiPolygon"
    feats = client.get(f"/scenarios/{sc['id']}?include=features", headers=staff).json()
    buildings = [f for f in feats["features"]["features"]
                 if f["properties"]["layer"] == "building"]
    assert len(buildings) == s["buildings"]["count"]
    closure = client.post("/scenarios/closure", json={"scenario_id": sc["id"], "samples": 0,
                                                      "save": False}, headers=staff)
    assert closure.status_code in (200, 400), closure.text  # 400: no impassable road here
    if closure.status_code == 400:
        assert "not a flood" not in closure.text
    listed = client.get("/scenarios?kind=rain", headers=staff).json()
    assert sc["id"] in {x["id"] for x in listed["items"]}
    # a tile over the deepest water draws
    tj = client.get(f"/raster/flood/{sc['id']}/tilejson.json", headers=staff)
    assert tj.status_code == 200, tj.text
    w, so, e, n = tj.json()["bounds"]
    t = WMQ.tile((w + e) / 2, (so + n) / 2, 12)
    tile = client.get(f"/raster/flood/{sc['id']}/12/{t.x}/{t.y}.png", headers=staff)
    assert tile.status_code == 200, tile.text
    out = Path(__file__).resolve().parents[1] / "artifacts"
    out.mkdir(exist_ok=True)
    (out / "rain_2022_depth_tile.png").write_bytes(tile.content)

    # less rain floods less; the same rain with a wet soil floods more
    small = client.post("/scenarios/rain?include=depth_classes", json={
        "rain_mm": 300, "hours": 11, "dem": dem, "save": False}, headers=staff).json()
    assert small["id"] is None and small["links"] == {}
    classes = small["depth_classes"]["features"]
    assert classes and all(f["geometry"]["type"] == "MultiPolygon" for f in classes)
    by_class = small["summary"]["depth_classes_km2"]
    assert sum(f["properties"]["area_km2"] for f in classes) == pytest.approx(
        sum(by_class.values()), abs=1e-3)
    assert small["summary"]["flooded_area_km2"] < s["flooded_area_km2"]
    cmp_ = client.get(f"/scenarios/compare?a={sc['id']}&b={sc['id']}", headers=staff)
    assert cmp_.status_code == 200 and cmp_.json()["area"]["only_a_km2"] == 0


def test_run_rain_reports_progress(engine, settings, dem) -> None:  # noqa: ANN001
    from twin.scenarios.rain import RainParams, run_rain

    seen: list[tuple[float, str]] = []
    with engine.connect() as conn, conn.begin():
        out = run_rain(conn, settings, RainParams(rain_mm=300, hours=24, dem=dem),
                       lambda f, m: seen.append((f, m)), save=False)
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(seen) >= 4
    assert out["id"] is None and out["kind"] == "rain"


def test_rain_below_the_drains_floods_nothing(client, staff, dem) -> None:  # noqa: ANN001
    r = client.post("/scenarios/rain", json={"rain_mm": 48, "hours": 24, "dem": dem,
                                             "save": False}, headers=staff)
    assert r.status_code == 200, r.text
    s = r.json()["summary"]
    assert s["flooded_area_km2"] == 0 and s["buildings"]["count"] == 0
    assert s["water_balance_m3"]["stored"] == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"rain_mm": -5, "hours": 3}, 400),
        ({"rain_mm": 100, "hours": 0}, 400),
        ({"hyetograph": []}, 400),
        ({"hyetograph": [10, -2]}, 400),
        ({"rain_mm": 1e9, "hours": 3}, 400),
        ({"rain_mm": 100, "hours": 3, "antecedent": "soggy"}, 422),
        ({"rain_mm": 100, "hours": 3, "dem": "no-such-dem"}, 404),
        ({"rain_mm": "lots", "hours": 3}, 422),
        ({"rain_mm": 100, "hours": 3, "rain": 1}, 422),
    ],
)
def test_bad_parameters(client, staff, body, status) -> None:  # noqa: ANN001
    r = client.post("/scenarios/rain", json=body, headers=staff)
    assert r.status_code == status, r.text
    assert {"code", "description", "request_id"} <= set(r.json())


def test_staff_only(client) -> None:  # noqa: ANN001
    assert client.post("/scenarios/rain", json={"rain_mm": 100, "hours": 3}).status_code == 401
