"""Cartography for analysis (issue 13): the depth ramp and its legend, utilities off by
default, map controls and keys, a closure timed from a picked origin, an outage that
names its valves' streets and clears the flood; at 1440×900 and on a 390×844 phone."""

from __future__ import annotations

import math
from io import BytesIO

import numpy as np
import pytest
from sqlalchemy import text

from tests.slope_dem import write_dem
from tests.web.city import LANDMARK, ORIGIN, SOURCE, _road
from tests.web.conftest import PLANNER

VIEW = f"#15/{LANDMARK[1]}/{LANDMARK[0]}/0/0"
UTILITIES = ("water_network", "utility_nodes")
VALVE = (ORIGIN[0] - 0.01, ORIGIN[1] - 0.0025)  # "Van 1" of the test city
STREET = "Đường Thử Van"


@pytest.fixture(scope="module")
def test_dem(web_settings, web_engine, tmp_path_factory) -> str:  # noqa: ANN001
    from twin.ingest.dem import import_dem
    from twin.progress import NullReporter

    tif = write_dem(tmp_path_factory.mktemp("carto-dem") / "slope.tif")
    with web_engine.begin() as conn:
        import_dem(conn, tif, reporter=NullReporter(), settings=web_settings, name="test_dem")
    return "test_dem"


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(BytesIO(png)).convert("RGB"), dtype=np.int16)


def _legend(page) -> dict[str, list[str]]:  # noqa: ANN001
    """Legend sections on the map → their entry keys."""
    return page.evaluate(
        "() => Object.fromEntries(Array.from(document.querySelectorAll('#map-legend "
        "[data-legend]')).map((s) => [s.dataset.legend, Array.from(s.querySelectorAll("
        "'li')).map((li) => li.dataset.entry)]))")


def _flood(visit, level: str) -> None:  # noqa: ANN001
    slider = visit.page.locator("#flood-slider")
    slider.fill(level)
    slider.dispatch_event("change")
    visit.page.wait_for_selector("#flood-counts:not([hidden])", timeout=30_000)
    visit.page.wait_for_function(
        "() => { const l = window.Twin.viewer.deck.layerManager.getLayers()"
        ".find((x) => /^whatif-flood-\\d+$/.test(x.id)); return l && l.isLoaded; }",
        timeout=30_000)
    visit.idle()


def _click_until(visit, lonlat: tuple[float, float], done: str, missed: str) -> None:  # noqa: ANN001
    """Click the map at lonlat until ``done`` shows; a click the page reports as a miss
    (the hint ``missed``: tiles not drawn yet on a loaded machine) is tried again."""
    page = visit.page
    for _ in range(4):
        visit.idle()
        x, y = visit.project(*lonlat)
        page.mouse.click(x, y)
        page.wait_for_function(
            f"document.querySelector({done!r}) || document.querySelector('#whatif-hint')"
            f".innerText === {missed!r}", timeout=30_000)
        if page.locator(done).count():
            return
        page.wait_for_timeout(1000)
    raise AssertionError(f"no {done} after clicking {lonlat}")


def _desktop(device):  # noqa: ANN001, ANN202
    v = device(1440, 900, phone=False)
    v.sign_in(PLANNER, "/plan" + VIEW)
    v.page.wait_for_function("window.twinViewer && twinViewer.layerIds().includes('roads')")
    v.idle()
    return v


def test_flood_depth_ramp_is_not_blue_and_has_a_legend_in_metres(device, test_dem) -> None:  # noqa: ANN001
    visit = _desktop(device)
    page = visit.page
    # pipes and valves are in the catalogue and the layer panel, but off
    ids = page.evaluate("twinViewer.layerIds()")
    on = page.evaluate("twinViewer.enabled()")
    for lid in UTILITIES:
        assert lid in ids and lid not in on
        assert page.locator(f"#lyr-{lid}").count() == 1
        assert not page.locator(f"#lyr-{lid}").is_checked()
    assert page.locator("#map-legend").is_hidden()
    before = _pixels(visit.shot("carto-plan-before"))

    _flood(visit, "6")
    legend = _legend(page)
    assert legend["whatif-flood"] == [f"depth-{d}" for d in ("0", "0.1", "0.3", "0.5", "1", "2")]
    texts = page.inner_text('#map-legend [data-legend="whatif-flood"]')
    assert "0,1–0,3 m" in texts and "≥ 2 m" in texts and "Độ sâu ngập" in texts
    method = page.inner_text("#flood-method")
    assert "Phương pháp" in method and len(method) > 40
    after = _pixels(visit.shot("carto-plan-flood"))
    # the pixels the flood changed, inside the map (not the panels): yellow to purple
    x0 = int(page.evaluate("document.querySelector('.dock-col.left').getBoundingClientRect()"
                           ".right")) + 5
    changed = np.abs(after - before).sum(axis=2) > 40
    changed[:, :x0] = False
    changed[:60, :] = False
    legend_box = page.locator("#map-legend").bounding_box()
    changed[int(legend_box["y"]):, :int(legend_box["x"] + legend_box["width"]) + 2] = False
    assert changed.mean() > 0.05, changed.mean()
    r, g, b = (after[..., i][changed] for i in range(3))
    blue = (b > r + 30) & (b > g)
    assert blue.mean() < 0.02, blue.mean()
    assert (r > b).mean() > 0.5  # mostly the warm classes over the slope's shallows
    # the legend's swatches are the colours drawn (the server's classes)
    sw = page.evaluate("getComputedStyle(document.querySelector('#map-legend "
                       "[data-entry=\"depth-0.5\"] .lg-swatch')).backgroundColor")
    assert sw == "rgb(222, 45, 38)"
    # English: the legend follows
    page.click("[data-lang=en]")
    assert "Flood depth" in page.inner_text("#map-legend") and "0.1–0.3 m" in page.inner_text(
        "#map-legend")
    assert "Method" in page.inner_text("#flood-method")
    visit.check()


def test_map_controls_scale_bar_and_keys(device) -> None:  # noqa: ANN001
    visit = _desktop(device)
    page = visit.page
    z0 = visit.view()["zoom"]
    page.click("#map-zoom-in")
    page.wait_for_function(f"twinViewer.getViewState().zoom > {z0 + 0.99}")
    visit.idle()
    page.click("#map-zoom-out")
    page.wait_for_function(f"Math.abs(twinViewer.getViewState().zoom - {z0}) < 0.01")
    visit.idle()

    # the scale bar's length is its metres at the map's scale (512 px world at zoom 0)
    def check_scale() -> None:
        v = visit.view()
        metres = float(page.get_attribute("#map-scale", "data-metres") or 0)
        px = page.locator("#map-scale .map-scale-bar").bounding_box()["width"]
        mpp = 40075016.686 * math.cos(math.radians(v["latitude"])) / (512 * 2 ** v["zoom"])
        assert px == pytest.approx(metres / mpp, rel=0.03) and 30 < px <= 112

    check_scale()
    assert page.inner_text("#map-scale").strip().endswith(("m", "km"))

    # keys on the focused map: one arrow press pans 120 px, + and − zoom by one
    page.focus("#deck-container")
    v0 = visit.view()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"twinViewer.getViewState().longitude > {v0['longitude']}")
    visit.idle()
    v1 = visit.view()
    deg_per_px = 360 / (512 * 2 ** v0["zoom"])
    assert v1["longitude"] - v0["longitude"] == pytest.approx(120 * deg_per_px, rel=0.05)
    assert v1["latitude"] == pytest.approx(v0["latitude"], abs=1e-6)
    page.keyboard.press("ArrowUp")
    page.wait_for_function(f"twinViewer.getViewState().latitude > {v0['latitude']}")
    page.keyboard.press("+")
    page.wait_for_function(f"twinViewer.getViewState().zoom > {v0['zoom'] + 0.99}")
    visit.idle()
    check_scale()
    page.keyboard.press("-")
    page.wait_for_function(f"Math.abs(twinViewer.getViewState().zoom - {v0['zoom']}) < 0.01")

    # reset north: bearing and tilt back to 0; reset view: the city's home view
    page.evaluate("twinViewer.jumpTo({bearing: 40, pitch: 30})")
    visit.idle()
    page.click("#map-north")
    page.wait_for_function("Math.abs(twinViewer.getViewState().bearing) < 0.01 && "
                           "twinViewer.getViewState().pitch < 0.01")
    home = page.evaluate("Twin.config.home")
    page.click("#map-home")
    page.wait_for_function(
        f"Math.abs(twinViewer.getViewState().zoom - {home['zoom']}) < 0.01 && Math.abs("
        f"twinViewer.getViewState().longitude - {home['longitude']}) < 1e-4 && Math.abs("
        f"twinViewer.getViewState().latitude - {home['latitude']}) < 1e-4", timeout=10_000)
    # the controls sit in the map, clear of the panel columns
    box = page.locator("#map-controls").bounding_box()
    left = page.evaluate("document.querySelector('.dock-col.left').getBoundingClientRect().right")
    assert box["x"] > left and box["x"] + box["width"] <= 1440
    assert page.get_attribute("#map-zoom-in", "aria-label") == "Phóng to (+)"
    visit.idle()
    visit.check()


def test_closure_from_a_picked_origin_lists_facilities_before_and_after(
    device, web_engine  # noqa: ANN001
) -> None:
    # the test city's streets do not meet at nodes: a small connected network of its own
    # (tests/twin/test_scenarios_closure.py: W0 … W4 with a detour over X, hospital H at
    # W0, fire station F at W1), east of the city, removed afterwards
    from tests.twin.test_scenarios_closure import D, build, nodes_at

    x0, y0, src = 108.26, 16.10, "test-web-closure"
    at = nodes_at(x0, y0)
    build(web_engine, x0, y0, src)
    try:
        visit = _desktop(device)
        page = visit.page
        page.click("#closure-mode")
        page.evaluate(f"twinViewer.jumpTo({{longitude: {x0 + 3 * D}, latitude: {y0}, zoom: 17, "
                      "pitch: 0, bearing: 0})")
        visit.idle()
        _click_until(visit, (x0 + 2.5 * D, y0), "#closure-list li",  # W2-W3
                     "Hãy bấm vào một con đường.")
        assert "giữa đoạn đường đóng đầu tiên" in page.inner_text("#closure-origin")
        # the origin, picked on the map a little north of W4
        page.click("#closure-origin-pick")
        assert page.get_attribute("#closure-origin-pick", "aria-pressed") == "true"
        ox, oy = visit.project(at["W4"][0], at["W4"][1] + 0.0002)
        page.mouse.click(ox, oy)
        assert "16,1" in page.inner_text("#closure-origin-text")
        assert page.get_attribute("#closure-origin-pick", "aria-pressed") == "false"
        assert page.locator("#closure-list li").count() == 1  # the pick closed no road
        assert "whatif-origin" in page.evaluate("twinViewer.deckLayerIds()")
        page.click("#closure-run")
        page.wait_for_selector("#closure-facilities li", timeout=60_000)
        assert "điểm đã chọn" in page.inner_text("#closure-result p.from")
        hospital = page.locator('#closure-facilities li[data-kind="hospital"]').first
        assert hospital.inner_text().startswith("H: ") and "→" in hospital.inner_text()
        assert hospital.get_attribute("data-changed") == "true"
        before, after = (float(v.replace(",", ".")) for v in hospital.inner_text()[3:]
                         .replace(" phút", "").split(" → "))
        assert after > before > 0
        fire = page.locator('#closure-facilities li[data-kind="fire_station"]')
        assert fire.count() == 1 and fire.inner_text().startswith("F: ")
        assert "Phương pháp" in page.inner_text("#closure-method")
        ids = page.evaluate("twinViewer.deckLayerIds()")
        assert {"whatif-closure", "whatif-closure-before", "whatif-closure-after",
                "whatif-closure-names"} <= set(ids)

        def layer(prop: str, lid: str):  # noqa: ANN202
            # deck.gl takes new layers on its next frame (slow on the loaded machine)
            return page.wait_for_function(
                f"() => {{ const l = Twin.viewer.deck.layerManager.getLayers().find((x) => "
                f"x.id === '{lid}'); return l ? [l.props.{prop}] : null; }}",
                timeout=30_000).json_value()[0]

        # after: one solid path per facility; before: the same routes cut into dashes
        assert layer("data.length", "whatif-closure-after") == 2
        assert layer("data.length", "whatif-closure-before") > 10
        assert layer("getColor", "whatif-closure-before") == [105, 105, 105, 230]
        assert layer("getColor", "whatif-closure-after") == [0, 140, 120, 255]
        assert sorted(d["text"] for d in layer("data", "whatif-closure-names")) == ["F", "H"]
        legend = _legend(page)["whatif-closure"]
        assert {"closed", "cut_off", "route_before", "route_after", "origin",
                "facility"} <= set(legend)
        visit.idle()
        visit.shot("carto-closure-1440")
        page.click("[data-lang=en]")
        assert "picked point" in page.inner_text("#closure-result p.from")
        assert "min" in page.inner_text("#closure-facilities")
        assert "Route before closure" in page.inner_text("#map-legend")
        visit.check()
    finally:
        with web_engine.begin() as conn:
            for table in ("road_segment", "road_node", "facility", "building"):
                conn.execute(text(f"DELETE FROM {table} WHERE source = :s"), {"s": src})


def test_outage_lists_valves_with_streets_and_clears_the_flood(device, web_engine,
                                                               test_dem) -> None:  # noqa: ANN001
    with web_engine.begin() as conn:
        _road(conn, [(VALVE[0] - 0.0015, VALVE[1] - 0.0004), (VALVE[0] + 0.0015,
                                                               VALVE[1] - 0.0004)],
              "residential", STREET, "Valve Test Street")
    try:
        visit = _desktop(device)
        page = visit.page
        _flood(visit, "6")
        assert "whatif-flood" in _legend(page)
        page.evaluate(f"twinViewer.jumpTo({{longitude: {VALVE[0] + 0.003}, latitude: "
                      f"{VALVE[1]}, zoom: 16, pitch: 0, bearing: 0}})")
        visit.idle()
        page.click("#outage-mode")
        visit.idle()
        assert "water_network" in page.evaluate("twinViewer.enabled()")
        _click_until(visit, (VALVE[0] + 0.004, VALVE[1]), "#outage-valves li",
                     "Hãy bấm vào một ống của mạng cấp nước.")
        valve = page.inner_text("#outage-valves li")
        assert valve == f"Van 1 — {STREET}"
        assert page.locator("#outage-result p[data-kind=buildings]").count() == 1
        assert "đoạn ống bị cô lập" in page.inner_text("#outage-result p[data-kind=isolated]")
        assert "Phương pháp" in page.inner_text("#outage-method")
        # the flood is gone: its layer, its legend, its counts and the slider
        ids = page.evaluate("twinViewer.deckLayerIds()")
        assert not any(i.startswith("whatif-flood") for i in ids)
        assert {"whatif-outage", "whatif-outage-valves", "whatif-outage-names"} <= set(ids)
        legend = _legend(page)
        assert "whatif-flood" not in legend
        assert {"isolated", "operate", "building"} <= set(legend["whatif-outage"])
        assert page.locator("#flood-counts").is_hidden()
        assert page.input_value("#flood-slider") == "0"
        # the valve is drawn where it is
        vx, vy = visit.project(*VALVE)
        assert page.wait_for_function(
            "() => { const l = Twin.viewer.deck.layerManager.getLayers().find((x) => x.id === "
            "'whatif-outage-valves'); return l && l.props.data.length; }").json_value() == 1
        visit.idle()
        img = _pixels(visit.shot("carto-outage-1440"))
        ring = img[int(vy) - 9:int(vy) + 10, int(vx) - 9:int(vx) + 10].reshape(-1, 3)
        green = (ring[:, 1] > ring[:, 0] + 40) & (ring[:, 1] > ring[:, 2] + 20)
        assert green.sum() >= 6
        page.click("[data-lang=en]")
        assert page.inner_text("#outage-valves li") == "Van 1 — Valve Test Street"
        visit.check()
    finally:
        with web_engine.begin() as conn:
            conn.execute(text("DELETE FROM road_segment WHERE source = :s AND name = :n"),
                         {"s": SOURCE, "n": STREET})


def test_ops_utilities_off_incident_list_in_few_tabs_and_named_hospital_routes(
    device, live_server  # noqa: ANN001
) -> None:
    import httpx

    from tests.web.test_ops import NEAR_HOSPITAL, _token

    headers = {"Authorization": "Bearer " + _token(live_server)}
    r = httpx.post(live_server + "/incidents", headers=headers, json={
        "category": "fire", "severity": 2, "title": "Khói thử bản đồ",
        "geometry": {"type": "Point", "coordinates": list(NEAR_HOSPITAL)}})
    assert r.status_code == 201, r.text
    visit = device(1440, 900, phone=False)
    visit.sign_in(PLANNER, f"/ops#15/{NEAR_HOSPITAL[1]}/{NEAR_HOSPITAL[0]}/0/0")
    page = visit.page
    page.wait_for_selector("#incident-list li")
    visit.idle()
    on = page.evaluate("twinViewer.enabled()")
    for lid in UTILITIES:
        assert lid in page.evaluate("twinViewer.layerIds()") and lid not in on
    # from the top of the page: the skip link to the incidents within three Tabs
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("Tab")
    tabs = 1
    while page.evaluate("document.activeElement.id") != "skip-incidents" and tabs < 4:
        page.keyboard.press("Tab")
        tabs += 1
    assert page.evaluate("document.activeElement.id") == "skip-incidents", tabs
    page.keyboard.press("Enter")
    page.wait_for_function("document.activeElement.matches('#incident-list button.incident')",
                           timeout=10_000)
    # open the first incident with Enter: routes to the nearest hospitals, named on the map
    page.locator(f'#incident-list li[data-id="{r.json()["id"]}"] button').focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#inc-nearest li.hospital", timeout=20_000)
    visit.idle()
    names = page.wait_for_function(
        "() => { const l = Twin.viewer.deck.layerManager.getLayers().find((x) => x.id === "
        "'ops-hospital-names'); return l && l.props.data.map((d) => d.text); }",
        timeout=30_000).json_value()
    assert any(n.startswith("Bệnh viện Đà Nẵng · ") and n.endswith(" phút") for n in names)
    colour = page.wait_for_function(
        "() => { const l = Twin.viewer.deck.layerManager.getLayers().find((x) => x.id === "
        "'ops-routes'); return l && l.props.getColor; }", timeout=30_000).json_value()
    assert colour[1] > colour[0] + 60  # teal, not the incidents' red
    assert set(_legend(page)["ops-help"]) == {"route", "hospital"}
    assert "Tuyến lái xe đến bệnh viện" in page.inner_text("#map-legend")
    visit.idle()
    visit.shot("carto-ops-1440")
    visit.check()


def test_phone_controls_and_legend(device, test_dem) -> None:  # noqa: ANN001
    visit = device(390, 844)
    visit.sign_in(PLANNER, "/plan" + VIEW)
    page = visit.page
    page.wait_for_function("window.twinViewer && twinViewer.layerIds().includes('roads')")
    visit.idle()
    for sel in ("#map-zoom-in", "#map-zoom-out", "#map-north", "#map-home"):
        b = page.locator(sel).bounding_box()
        assert b["width"] >= 44 and b["height"] >= 44 and b["x"] + b["width"] <= 390
    # run a flood from the what-if tab of the sheet
    page.evaluate("Twin.panels.show(document.querySelector('#plan-panel'))")
    _flood(visit, "6")
    legend = page.locator("#map-legend").bounding_box()
    controls = page.locator("#map-controls").bounding_box()
    assert legend["x"] >= 0 and legend["x"] + legend["width"] < controls["x"]
    scale = page.locator("#map-scale").bounding_box()
    sheet = page.locator(".dock").bounding_box()
    assert scale["y"] + scale["height"] <= min(sheet["y"], legend["y"]) + 1
    assert scale["x"] + scale["width"] < controls["x"]
    visit.shot("carto-phone-390")
    visit.check()
