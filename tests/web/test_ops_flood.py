"""The /ops flood layer: select a flood incident, model its flood from the keyboard, see
the flooded area drawn with its counts; it goes with the selection unless every active
flood incident's layer is asked for."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from tests.slope_dem import write_dem
from tests.web.conftest import PLANNER
from tests.web.test_ops import _token
from tests.web.test_whatif import _pixels

INCIDENT = (108.2125, 16.0575)  # 4.5 m above the sea on the test DEM, among the buildings
VIEW = f"#15/{INCIDENT[1]}/{INCIDENT[0]}/0/0"
LEVEL = 5  # floods east of 108.21 E: the edge of the water crosses the view


@pytest.fixture(scope="module")
def slope_dem(web_settings, web_engine, tmp_path_factory) -> str:
    """The what-if test's DEM (same name: registering it again updates it in place)."""
    from twin.ingest.dem import import_dem
    from twin.progress import NullReporter

    tif = write_dem(tmp_path_factory.mktemp("ops-flood-dem") / "slope.tif")
    with web_engine.begin() as conn:
        import_dem(conn, tif, reporter=NullReporter(), settings=web_settings, name="test_dem")
    return "test_dem"


def _flooded(img: np.ndarray) -> np.ndarray:
    """Pixels in the flood depth colours (yellow → orange → red → purple: red well above
    green and blue is never the strongest channel; water and pipes are blue)."""
    r, g, b = (img[..., i].astype(int) for i in range(3))
    return (r - g > 40) & (r >= b)


def _flood_layers(page) -> list[str]:  # noqa: ANN001
    return [i for i in page.evaluate("twinViewer.deckLayerIds()") if i.startswith("ops-flood-")]


def test_model_and_draw_the_flood_of_a_flood_incident(visit, live_server, slope_dem):
    headers = {"Authorization": "Bearer " + _token(live_server)}
    r = httpx.post(live_server + "/incidents", headers=headers, json={
        "category": "flood", "severity": 4, "title": "Ngập thử nghiệm",
        "geometry": {"type": "Point", "coordinates": list(INCIDENT)}})
    assert r.status_code == 201, r.text
    iid = r.json()["id"]

    visit.sign_in(PLANNER, "/ops" + VIEW)
    page = visit.page
    item = page.locator(f'#incident-list li[data-id="{iid}"] button')
    item.wait_for(timeout=15_000)
    item.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#flood-block:not([hidden])")
    page.wait_for_function("document.querySelector('#opsflood-status').innerText.includes("
                           "'Chưa có mô phỏng')", timeout=15_000)
    assert page.locator("#opsflood-counts").is_hidden()
    assert _flood_layers(page) == []
    visit.idle()
    before = _pixels(visit.shot("ops-flood-before"))

    # model it from the keyboard: the level, then Enter
    page.locator("#opsflood-level").focus()
    page.keyboard.type(str(LEVEL))
    page.keyboard.press("Enter")
    page.wait_for_selector("#opsflood-counts:not([hidden])", timeout=60_000)
    sid = int(page.get_attribute("#opsflood-status", "data-scenario") or 0)
    assert sid > 0
    listed = httpx.get(f"{live_server}/scenarios?kind=flood&incident_id={iid}",
                       headers=headers).json()
    assert [i["id"] for i in listed["items"]] == [sid]
    summary = listed["items"][0]["summary"]
    assert summary["buildings"]["count"] > 0 and summary["water_level_m"] == LEVEL
    shown = page.inner_text('#opsflood-counts tr[data-row="buildings"] td')
    assert int(shown.replace(".", "").replace(",", "")) == summary["buildings"]["count"]
    assert page.locator('#opsflood-counts tr[data-row="impassable"]').count() == 1
    assert page.locator('#opsflood-counts tr[data-row="facilities"]').count() == 1
    # the model, its data and limits; the depth legend in metres with the outline
    assert "Phương pháp" in page.inner_text("#opsflood-method")
    assert len(page.locator("#opsflood-method li").all()) >= 1
    legend = page.inner_text('#map-legend [data-legend="ops-flood"]')
    assert "≥ 2 m" in legend and "Ranh giới vùng ngập" in legend

    # drawn: the outline with its feature, and the depth tiles once loaded
    assert set(_flood_layers(page)) >= {f"ops-flood-area-{sid}", f"ops-flood-depth-{sid}"}
    # (deck.gl takes the new layers on its next frame)
    feats = page.wait_for_function(
        f"() => {{ const l = window.Twin.viewer.deck.layerManager.getLayers()"
        f".find((x) => x.id === 'ops-flood-area-{sid}'); "
        f"return l && l.props.data.features.length; }}", timeout=15_000).json_value()
    assert feats == 1
    page.wait_for_function(
        f"() => {{ const l = window.Twin.viewer.deck.layerManager.getLayers()"
        f".find((x) => x.id === 'ops-flood-depth-{sid}'); return l && l.isLoaded; }}",
        timeout=30_000)
    visit.idle()
    after = _pixels(visit.shot("ops-flood"))
    gained = (_flooded(after) & ~_flooded(before)).mean()
    assert gained > 0.02, gained

    # deselected: the layer goes; ticking "all active flood incidents" brings it back
    page.click("#inc-close-panel")
    page.wait_for_selector("#incident-panel", state="hidden")
    assert _flood_layers(page) == []
    page.locator("#opsflood-all").focus()
    page.keyboard.press("Space")
    page.wait_for_function(f"twinViewer.deckLayerIds().includes('ops-flood-area-{sid}')",
                           timeout=15_000)
    page.locator("#opsflood-all").uncheck()
    assert _flood_layers(page) == []

    # English; and the layer of a closed incident is gone even with the box ticked
    page.click("[data-lang=en]")
    item.click()
    page.wait_for_function(f"document.querySelector('#opsflood-status').dataset.scenario "
                           f"=== '{sid}'", timeout=15_000)
    assert "Flood layer" in page.inner_text("#flood-block")
    assert "Model flood" in page.inner_text("#opsflood-model")
    # another operator models a higher flood for it: it replaces this one live
    r = httpx.post(f"{live_server}/scenarios/flood", headers=headers,
                   json={"incident_id": iid, "water_level_m": LEVEL + 0.5, "dem": slope_dem})
    assert r.status_code == 201, r.text
    newer = r.json()["id"]
    page.wait_for_function(f"document.querySelector('#opsflood-status').dataset.scenario "
                           f"=== '{newer}'", timeout=15_000)
    page.wait_for_function(f"twinViewer.deckLayerIds().includes('ops-flood-area-{newer}')",
                           timeout=15_000)
    sid = newer
    page.locator("#opsflood-all").check()
    r = httpx.post(f"{live_server}/incidents/{iid}/transition", headers=headers,
                   json={"status": "closed", "reason": "resolved"})
    assert r.status_code == 200, r.text
    page.wait_for_function(f"!twinOps.ids().includes({iid})", timeout=15_000)
    assert not [i for i in _flood_layers(page) if i.endswith(f"-{sid}")]
    page.locator("#opsflood-all").uncheck()
    visit.check()
