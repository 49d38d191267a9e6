"""The planner's what-if panel: the flood slider draws the flooded area with counts."""

from __future__ import annotations

import numpy as np
import pytest

from tests.slope_dem import write_dem
from tests.web.city import LANDMARK
from tests.web.conftest import PLANNER

VIEW = f"#15/{LANDMARK[1]}/{LANDMARK[0]}/0/0"


@pytest.fixture(scope="module")
def test_dem(web_settings, web_engine, tmp_path_factory) -> str:
    from twin.ingest.dem import import_dem
    from twin.progress import NullReporter

    tif = write_dem(tmp_path_factory.mktemp("web-dem") / "slope.tif")
    with web_engine.begin() as conn:
        import_dem(conn, tif, reporter=NullReporter(), settings=web_settings, name="test_dem")
    return "test_dem"


def _pixels(png: bytes) -> np.ndarray:
    from io import BytesIO

    from PIL import Image

    return np.asarray(Image.open(BytesIO(png)).convert("RGB"), dtype=np.int16)


def test_flood_slider_draws_the_flood_with_counts(visit, test_dem):
    visit.sign_in(PLANNER, "/plan" + VIEW)
    visit.idle()
    page = visit.page
    page.wait_for_selector("#flood-slider")
    before = _pixels(visit.shot("whatif-before"))
    slider = page.locator("#flood-slider")
    slider.fill("6")
    slider.dispatch_event("change")
    page.wait_for_selector("#flood-counts:not([hidden])", timeout=30_000)
    buildings = int(page.get_attribute("#flood-status", "data-buildings") or 0)
    assert buildings > 0
    row = page.inner_text('#flood-counts tr[data-row="buildings"] td.now')
    assert int(row.replace(".", "").replace(",", "")) == buildings
    layer_ids = page.evaluate("twinViewer.deckLayerIds()")
    assert any(i.startswith("whatif-flood-") for i in layer_ids)
    page.wait_for_function(
        "() => { const l = window.Twin.viewer.deck.layerManager.getLayers()"
        ".find((x) => x.id.startsWith('whatif-flood-') && !x.id.includes('-', 13)); "
        "return l && l.isLoaded; }", timeout=30_000)
    visit.idle()
    after = _pixels(visit.shot("whatif-flood"))
    changed = (np.abs(after - before).sum(axis=2) > 30).mean()
    assert changed > 0.02, changed

    # a second level: the first result stays beside it for comparison
    slider.fill("3")
    slider.dispatch_event("change")
    page.wait_for_function("document.querySelector('#flood-prev-h').innerText.includes('6')",
                           timeout=30_000)
    assert page.inner_text('#flood-counts tr[data-row="buildings"] td.prev').strip()
    visit.check()


def _centre(visit, lon: float, lat: float) -> None:
    visit.page.evaluate("([lon, lat]) => twinViewer.jumpTo({longitude: lon, latitude: lat, "
                        "zoom: 16, pitch: 0, bearing: 0})", [lon, lat])
    visit.idle()


def test_burst_pipe_and_road_closure_by_clicking(visit):
    visit.sign_in(PLANNER, "/plan")
    page = visit.page
    page.wait_for_function("window.twinViewer && twinViewer.layerIds().includes('water_network')")
    _centre(visit, 108.218, 16.0575)
    # a burst on the test water main: the valve to close and its message
    page.click("#outage-mode")
    assert page.get_attribute("#outage-mode", "aria-pressed") == "true"
    visit.idle()  # the mode turns the (default off) water network on
    visit.click_map(108.218, 16.0575, "water_network", "#outage-result p.message")
    assert "Van 1" in page.inner_text("#outage-result")
    assert "whatif-outage" in page.evaluate("twinViewer.deckLayerIds()")
    page.keyboard.press("Escape")
    assert page.get_attribute("#outage-mode", "aria-pressed") == "false"

    # close Lê Duẩn by clicking it, then run: cut-offs and drive times in the panel
    page.click("#closure-mode")
    # east of the minor streets' ends (108.225), where Lê Duẩn runs alone
    _centre(visit, 108.2258, 16.0705)
    visit.click_map(108.2258, 16.0705, "roads", "#closure-list li")
    assert "Lê Duẩn" in page.inner_text("#closure-list")
    page.click("#closure-run")
    page.wait_for_selector("#closure-result p[data-kind=cut_off]", timeout=30_000)
    visit.check()
