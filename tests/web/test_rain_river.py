"""Rain panel in /plan and rain forecast in /ops, in a real browser."""

from __future__ import annotations

import numpy as np
import pytest

from tests.slope_dem import RES, X0, Y0, N
from tests.web.city import LANDMARK
from tests.web.conftest import PLANNER

VIEW = f"#15/{LANDMARK[1]}/{LANDMARK[0]}/0/0"


@pytest.fixture(scope="module")
def test_dem(web_settings, web_engine, tmp_path_factory) -> str:
    import rasterio
    from affine import Affine

    from twin.ingest.dem import import_dem
    from twin.progress import NullReporter

    # the shared slope with a 3 m deep bowl around the landmark: rain gathers there
    lon = X0 + (np.arange(N) + 0.5) * RES
    lat = Y0 - (np.arange(N) + 0.5) * RES
    gx, gy = np.meshgrid(lon, lat)
    z = np.clip((108.235 - gx) * 200, 0, None)
    r = np.hypot(gx - LANDMARK[0], gy - LANDMARK[1])
    z = np.where(r < 0.004, z - 3.0 * (1 - r / 0.004), z)
    # and a 2 m dip under Lê Duẩn (16.0705), west of Bạch Đằng: a named street goes under
    r = np.hypot(gx - 108.220, gy - 16.0705)
    z = np.where(r < 0.002, z - 2.0 * (1 - r / 0.002), z).astype(np.float32)
    tif = tmp_path_factory.mktemp("rain-dem") / "bowl.tif"
    with rasterio.open(tif, "w", driver="GTiff", width=N, height=N, count=1, dtype="float32",
                       crs="EPSG:4326", nodata=-9999,
                       transform=Affine(RES, 0, X0, 0, -RES, Y0)) as ds:
        ds.write(z, 1)
    with web_engine.begin() as conn:
        import_dem(conn, tif, reporter=NullReporter(), settings=web_settings, name="test_dem")
    return "test_dem"


def _pixels(png: bytes) -> np.ndarray:
    from io import BytesIO

    from PIL import Image

    return np.asarray(Image.open(BytesIO(png)).convert("RGB"), dtype=np.int16)


def test_rain_preset_draws_depth_with_notes(visit, test_dem):
    visit.sign_in(PLANNER, "/plan" + VIEW)
    visit.idle()
    page = visit.page
    page.wait_for_selector("#rain-form")
    before = _pixels(visit.shot("rain-before"))
    page.click("#rain-form .rain-preset >> nth=0")
    assert page.input_value("#rain-mm") == "795"
    assert page.input_value("#rain-h") == "11"
    with page.expect_response(lambda r: r.url.endswith("/scenarios/rain")) as resp:
        page.click("#rain-run")
    answer = resp.value.json()
    assert answer["summary"]["flooded_area_km2"] > 0, answer["summary"]
    page.wait_for_selector("#rain-notes li", timeout=60_000)
    assert "km²" in page.inner_text("#rain-summary")
    layer_ids = page.evaluate("twinViewer.deckLayerIds()")
    assert any(i.startswith("whatif-flood-") for i in layer_ids)
    page.wait_for_function(
        "() => { const l = window.Twin.viewer.deck.layerManager.getLayers()"
        ".find((x) => x.id.startsWith('whatif-flood-') && !x.id.includes('-', 13)); "
        "return l && l.isLoaded; }", timeout=30_000)
    visit.idle()
    after = _pixels(visit.shot("rain-plan"))
    changed = (np.abs(after - before).sum(axis=2) > 30).mean()
    assert changed > 0.02, changed
    visit.check()


def test_ops_forecast_lists_the_streets_under_water(visit, test_dem):
    visit.sign_in(PLANNER, "/ops")
    page = visit.page
    page.wait_for_selector("#forecast-panel")
    page.click("#forecast-panel summary")  # folded at first, under the incident list
    page.wait_for_selector("#forecast-form")
    page.evaluate("([lon, lat]) => twinViewer.jumpTo({longitude: lon, latitude: lat, zoom: 15, "
                  "pitch: 0, bearing: 0})", [108.217, 16.066])
    visit.idle()
    before = _pixels(visit.shot("rain-ops-before"))
    page.fill("#forecast-mm", "800")
    page.fill("#forecast-h", "6")
    with page.expect_response(lambda r: r.url.endswith("/scenarios/rain")) as resp:
        page.click("#forecast-run")
    answer = resp.value.json()
    page.wait_for_selector("#forecast-list li", timeout=60_000)
    assert "km²" in page.inner_text("#forecast-summary")
    # the streets the water closes, by name and depth, deepest first
    streets = answer["summary"]["roads"]["impassable"]["streets"]
    assert streets, (answer["summary"]["roads"], answer["summary"].get("max_depth_m"))
    items = page.locator("#forecast-list li").all_inner_texts()
    assert streets[0]["name"] == "Lê Duẩn" and streets[0]["max_depth_m"] > 0.3, streets
    assert items[0].startswith("Lê Duẩn — ") and items[0].endswith(" m"), items
    # and the depth is drawn on the console's map from the stored run's tiles
    assert answer["id"]
    page.wait_for_function(
        "() => { const l = window.Twin.viewer.deck.layerManager.getLayers()"
        ".find((x) => x.id.startsWith('forecast-flood-') && !x.id.includes('-', 15)); "
        "return l && l.isLoaded; }", timeout=30_000)
    visit.idle()
    after = _pixels(visit.shot("rain-ops"))
    changed = (np.abs(after - before).sum(axis=2) > 30).mean()
    assert changed > 0.02, changed
    assert "độ sâu ngập" in page.inner_text("#map-legend")
    visit.check()


def test_plan_river_panel_runs_a_stage_and_says_why_not(visit, test_dem):
    visit.sign_in(PLANNER, "/plan")
    page = visit.page
    page.wait_for_selector("#river-panel")
    page.click("#river-panel summary")
    assert "Cẩm Lệ" in page.inner_text("#river-gauge")
    assert "Báo động 1" in page.inner_text("#river-alert")
    page.fill("#river-stage", "3")
    with page.expect_response(lambda r: r.url.endswith("/scenarios/river")) as resp:
        page.click("#river-run")
    # the test terrain does not reach the Cẩm Lệ gauge: a plain answer in the UI's language
    assert resp.value.status == 400
    page.wait_for_function("document.querySelector('#river-error').textContent.length > 0")
    assert "trạm đo" in page.inner_text("#river-error") and "DEM" in page.inner_text("#river-error")
    visit.shot("river-plan")
