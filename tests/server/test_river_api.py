"""River floods by stage over HTTP, on a synthetic valley with its river in the land
cover: stored like a flood (kind river) with depth tiles, the water a set height over the
bed all down the valley; a process like the others; bad parameters answer 4xx."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from server.app import create_app
from tests.server.helpers import token_for
from twin.settings import Settings

X0, Y0, RES = 108.60, 15.30, 0.0003  # a corner of the map no other test uses
ROWS, COLS, MID = 60, 41, 20
CROSS, ALONG = 1.0, 0.05
SOURCE = "test-river"


@pytest.fixture(scope="module")
def valley(engine: Engine, settings: Settings, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[str]:
    import rasterio
    from affine import Affine

    from twin.ingest.dem import import_dem
    from twin.progress import NullReporter

    r, c = np.mgrid[0:ROWS, 0:COLS]
    z = (5.0 + ALONG * (ROWS - r) + CROSS * np.abs(c - MID)).astype(np.float32)
    z[-1, :] = 0.0  # the river runs out into the sea along the south edge
    tif = tmp_path_factory.mktemp("river-dem") / "valley.tif"
    with rasterio.open(tif, "w", driver="GTiff", width=COLS, height=ROWS, count=1,
                       dtype="float32", crs="EPSG:4326", nodata=-9999,
                       transform=Affine(RES, 0, X0, 0, -RES, Y0)) as ds:
        ds.write(z, 1)
    river, mouth = X0 + (MID + 0.5) * RES, Y0 - (ROWS - 1) * RES  # down to the sea
    wkt = (f"MULTIPOLYGON((({river - RES / 4} {mouth},{river + RES / 4} {mouth},"
           f"{river + RES / 4} {Y0},{river - RES / 4} {Y0},{river - RES / 4} {mouth})))")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO land_cover (kind, name, geom, source, source_id) VALUES "
            "('water', 'Sông Thử', ST_GeomFromText(:w, 4326), :s, 'river-1')"),
            {"w": wkt, "s": SOURCE})
        import_dem(conn, tif, reporter=NullReporter(), settings=settings, name="test_valley")
    yield "test_valley"
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM land_cover WHERE source = :s"), {"s": SOURCE})


@pytest.fixture(scope="module")
def client(settings: Settings, valley: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def staff(client: TestClient, engine: Engine) -> dict[str, str]:
    return token_for(client, engine, "planner")


def at_river(row: int) -> list[float]:
    return [X0 + (MID + 0.5) * RES, Y0 - (row + 0.5) * RES]


def test_a_stage_floods_along_the_river(client, staff, valley, settings) -> None:  # noqa: ANN001
    bed = 5.0 + ALONG * (ROWS - 30)
    r = client.post("/scenarios/river", headers=staff, json={
        "stage_m": bed + 2.5, "at": at_river(30), "dem": valley, "name": "valley 2.5 m"})
    assert r.status_code == 201, r.text
    sc = r.json()
    s = sc["summary"]
    assert sc["kind"] == "river" and s["model"] == "river"
    assert s["bed_m"] == pytest.approx(bed, abs=1e-3) and s["height_m"] == pytest.approx(2.5)
    # two cells out on each side of the river, the whole valley long (not one level: the
    # bathtub at this level would flood the upper valley 0.05 m/row deeper and the lower
    # one not at all)
    assert s["flooded_cells"] == 4 * (ROWS - 1)
    assert s["max_depth_m"] == pytest.approx(1.5, abs=0.01)
    assert "HAND" in s["notes_i18n"]["en"][0] and "HAND" in s["notes_i18n"]["vi"][0]
    assert sc["links"]["tiles"] == f"/raster/flood/{sc['id']}/{{z}}/{{x}}/{{y}}.png"
    got = client.get(f"/scenarios/{sc['id']}", headers=staff).json()
    assert got["kind"] == "river" and got["geometry"]["type"] == "MultiPolygon"
    # the HAND grid is kept with the terrain, computed at import
    assert list((settings.terrain_dir / valley).glob("hand-*.npz"))


def test_river_is_a_process(client, staff, valley) -> None:  # noqa: ANN001
    listed = {p["id"] for p in client.get("/processes").json()["processes"]}
    assert "river" in listed
    bed = 5.0 + ALONG * (ROWS - 10)
    r = client.post("/processes/river/execution", headers=staff, json={"inputs": {
        "stage_m": bed + 1.5, "at": at_river(10), "dem": valley, "save": False}})
    assert r.status_code == 200, r.text
    assert r.json()["summary"]["flooded_cells"] == 2 * (ROWS - 1)


def test_a_flood_tower_incident_drives_the_river(client, staff, valley, engine) -> None:  # noqa: ANN001
    from twin.incidents import store as incidents

    bed = 5.0 + ALONG * (ROWS - 20)
    tower = [X0 + (MID + 2.5) * RES, Y0 - 20.5 * RES]  # on the bank, two cells out
    r = client.post("/incidents", headers=staff, json={
        "category": "flood", "title": "tháp báo lũ",
        "geometry": {"type": "Point", "coordinates": tower}})
    assert r.status_code == 201, r.text
    iid = r.json()["id"]
    with engine.begin() as conn:
        incidents.event(conn, iid, "rules", "alarm", {"reading": {"value": bed + 2.5, "unit": "m"}})
    r = client.post("/scenarios/river", headers=staff, json={"incident_id": iid, "dem": valley})
    assert r.status_code == 201, r.text
    sc = r.json()
    assert sc["params"]["defaulted"] == ["at", "stage_m"]
    assert sc["params"]["stage_m"] == pytest.approx(bed + 2.5)
    assert sc["summary"]["flooded_cells"] == 4 * (ROWS - 1)
    # and the run is on the incident's timeline
    events = client.get(f"/incidents/{iid}/timeline", headers=staff).json()
    modelled = [e for e in events if e["kind"] == "flood_modelled"]
    assert modelled and modelled[0]["data"]["scenario"] == sc["id"], events


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"stage_m": 500.0}, 400, "above the DEM's highest ground"),
    ({"stage_m": 1.0}, 400, "not above the river bed"),
    ({}, 400, "give stage_m"),
    ({"incident_id": 2**62}, 400, "unknown incident"),
    ({"stage_m": 8.0, "gauge": "nowhere", "at": None}, 400, "unknown gauge"),
    ({"stage_m": 8.0, "gauge": "cam_le", "at": None}, 400, "outside the DEM"),
    ({"stage_m": 8.0, "at": [X0 + 0.005, Y0 - 0.001, 3]}, 422, None),
    ({"stage_m": "high"}, 422, None),
    ({"stage_m": 8.0, "impassable_depth_m": 0}, 400, "impassable_depth_m"),
])
def test_bad_parameters_are_refused(client, staff, valley, body, status, words) -> None:  # noqa: ANN001
    r = client.post("/scenarios/river", headers=staff,
                    json={"at": at_river(30), "dem": valley, **body})
    assert r.status_code == status, r.text
    if words:
        assert words in r.json()["description"]


def test_anonymous_may_not_run_it(client, valley) -> None:  # noqa: ANN001
    r = client.post("/scenarios/river", json={"stage_m": 8.0, "at": at_river(30), "dem": valley})
    assert r.status_code == 401
