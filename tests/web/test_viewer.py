"""The public map in a real browser: offline, drawn, pickable, searchable, bilingual."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import text

from tests.web.city import HAI_CHAU_WARD, LANDMARK, SOURCE, box
from tests.web.conftest import PLANNER, SHOTS
from web import assets
from web.pages import BACKGROUND
from web.screenshot import wait_idle

# the landmark building, close and from above; the 3D look is from z15
CLOSE = f"#16.5/{LANDMARK[1]}/{LANDMARK[0]}/0/0"
TILTED = f"#16/{LANDMARK[1] - 0.002}/{LANDMARK[0]}/20/50"


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def map_area(img: np.ndarray) -> np.ndarray:
    """The part of the screenshot right of the layer panel and below the top bar."""
    return img[70:, 290:]


def not_background(img: np.ndarray, tol: int = 12) -> np.ndarray:
    return np.abs(img - np.array(BACKGROUND)).max(axis=2) > tol


def test_map_loads_offline_and_draws_the_city(visit):
    visit.goto("/" + TILTED)
    img = pixels(visit.shot("map"))
    visit.check()
    tiles = [u for u in visit.requests if "/tiles/" in u]
    assert any("buildings" in u and u.endswith(".mvt") for u in tiles), tiles
    # deck.gl under its hashed, immutable name (web.assets manifest)
    bundle = "/static/vendor/" + assets.manifest()["deckgl-bundle.js"]
    assert any(u.endswith(bundle) for u in visit.requests)
    # buildings (extruded at this zoom) cover a good part of the map, in their own colours
    drawn = not_background(map_area(img))
    assert drawn.mean() > 0.25, f"only {drawn.mean():.0%} of the map is drawn"
    x, y = visit.project(*LANDMARK)
    patch = img[int(y) - 3:int(y) + 4, int(x) - 3:int(x) + 4]
    assert not_background(patch).all(), "no building drawn where the landmark stands"
    # the layer panel lists public layers only, titled in Vietnamese by default
    assert visit.page.locator("#lyr-buildings").is_checked()
    assert visit.page.inner_text("label[for=lyr-buildings]") == "Công trình"
    assert visit.page.evaluate("document.documentElement.lang") == "vi"


def test_layer_toggle_changes_what_is_drawn(visit):
    visit.goto("/" + CLOSE)
    before = map_area(pixels(visit.page.screenshot()))
    visit.page.click("label[for=lyr-buildings]")
    assert not visit.page.locator("#lyr-buildings").is_checked()
    visit.idle()
    after = map_area(pixels(visit.page.screenshot()))
    changed = (np.abs(before - after).max(axis=2) > 20).mean()
    assert changed > 0.15, f"hiding buildings changed only {changed:.1%} of the map"
    x, y = visit.project(*LANDMARK)
    assert visit.page.evaluate("([x, y]) => twinViewer.pickAt(x, y)", [x, y]) is None or \
        visit.page.evaluate("([x, y]) => twinViewer.pickAt(x, y).layer", [x, y]) != "buildings"
    visit.page.keyboard.press("Space")  # the checkbox still has focus: keyboard toggles back
    assert visit.page.locator("#lyr-buildings").is_checked()
    visit.idle()
    again = map_area(pixels(visit.page.screenshot()))
    assert (np.abs(before - again).max(axis=2) > 20).mean() < 0.02
    visit.check()


def test_click_a_building_shows_its_attributes_in_both_languages(visit):
    visit.goto("/" + CLOSE)
    x, y = visit.project(*LANDMARK)
    visit.page.wait_for_function(
        "([x, y]) => (twinViewer.pickAt(x, y) || {}).layer === 'buildings'", arg=[x, y])
    visit.page.mouse.click(x, y)
    panel = visit.page.locator("#info-panel")
    panel.wait_for(state="visible")
    visit.page.wait_for_function(
        "document.querySelector('#info-body').innerText.includes('Tòa nhà Thử nghiệm')")
    text = panel.inner_text()
    for label in ("Chiều cao (m)", "Height (m)", "Số tầng", "Levels", "Địa chỉ", "Address"):
        assert label in text, label
    assert "60" in visit.page.inner_text("[data-prop=height_m] dd")
    assert "1 Bạch Đằng" in text
    visit.shot("map-attributes")
    # English, remembered across a reload
    visit.page.click("button[data-lang=en]")
    assert visit.page.inner_text("[data-prop=height_m] dt span[lang=en]") == "Height (m)"
    assert visit.page.inner_text("label[for=lyr-buildings]") == "Buildings"
    visit.page.reload()
    visit.idle()
    assert visit.page.evaluate("document.documentElement.lang") == "en"
    assert visit.page.inner_text("#layers-h") == "Map layers"
    visit.page.click("button[data-lang=vi]")
    assert visit.page.inner_text("#layers-h") == "Lớp bản đồ"
    visit.check()


def test_search_without_diacritics_flies_to_the_ward(visit):
    visit.goto("/#14/16.03/108.26/0/0")
    start = visit.view()
    box = visit.page.locator("#search-input")
    box.fill("benh vien")
    visit.page.wait_for_selector("#search-results li[role=option]")
    assert "Bệnh viện Đà Nẵng" in visit.page.inner_text("#search-results")
    box.fill("Hai Chau")
    visit.page.wait_for_function(
        "document.querySelector('#search-results').innerText.includes('Hải Châu')")
    options = visit.page.locator("#search-results li[role=option]")
    assert options.count() >= 2
    assert box.get_attribute("aria-expanded") == "true"
    assert options.first.get_attribute("aria-selected") == "true"
    assert "phường" in options.first.inner_text()  # the ward in force comes first
    box.press("Enter")
    visit.page.wait_for_function(
        "(c) => { const v = twinViewer.getViewState();"
        " return Math.abs(v.longitude - c[0]) < 0.004 && Math.abs(v.latitude - c[1]) < 0.004; }",
        arg=list(HAI_CHAU_WARD), timeout=20_000)
    visit.idle()
    end = visit.view()
    moved = math.hypot(end["longitude"] - start["longitude"], end["latitude"] - start["latitude"])
    assert moved > 0.03
    assert visit.page.locator("#info-panel").is_visible()
    assert "Hai Chau Ward" in visit.page.inner_text("#info-body")
    visit.shot("map-search")
    visit.check()


def test_anonymous_visitor_cannot_see_or_fetch_staff_layers(visit):
    visit.goto("/map")  # the public map also answers at /map, opening on Đà Nẵng
    v = visit.view()
    assert abs(v["longitude"] - 108.21) < 0.01 and abs(v["latitude"] - 16.06) < 0.01
    assert 12 <= v["zoom"] <= 14
    ids = visit.page.evaluate("twinViewer.layerIds()")
    assert "buildings" in ids and "water_network" not in ids and "utility_nodes" not in ids
    assert visit.page.locator("#lyr-water_network").count() == 0
    api = visit.page.request
    assert api.get(visit.base + "/tiles/water_network/15/26233/14902.mvt").status == 404
    assert api.get(visit.base + "/tiles/buildings,water_network/15/26233/14902.mvt").status == 404
    assert api.get(visit.base + "/tiles/buildings/15/26233/14902.mvt").status == 200
    body = api.get(visit.base + "/viewer/layers").json()
    assert body["role"] == "anonymous"
    assert {lyr["id"] for lyr in body["layers"]}.isdisjoint({"water_network", "utility_nodes"})
    visit.check()


# -- the basemap as a resident reads it ----------------------------------------------------
WATER = (120, 180, 225)  # layers.yaml: the water layer's fill
#: every label placed (labels.js); a street's carries its letters ("glyphs") along the street
LABELS = "(Twin.viewer.placedLabels || []).map(({line, ...d}) => d)"


def _near(px: np.ndarray, rgb: tuple[int, int, int], tol: int = 14) -> bool:
    return bool(np.abs(px.astype(int) - np.array(rgb)).max() <= tol)


def test_sea_is_water_and_the_data_fades_out_at_its_edge(browser, live_server, web_engine):
    # the sea east of the test city, out to the east edge of its data
    with web_engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO land_cover (kind, name, geom, source, source_id) VALUES "
            "('sea', 'Biển thử', ST_Multi(ST_GeomFromText(:w, 4326)), :s, 'land_cover-sea')"),
            {"w": box(108.2525, 16.06, 0.0175, 0.03), "s": SOURCE})
    ctx = browser.new_context(viewport={"width": 1024, "height": 700})  # no cached tiles
    try:
        page = ctx.new_page()
        page.goto(live_server + "/#13/16.045/108.25/0/0")
        page.wait_for_function("twinViewer.deckLayerIds().includes('basemap-edge')")
        wait_idle(page)
        ext = page.evaluate("Twin.viewer.dataExtent")
        assert ext[2] == pytest.approx(108.27, abs=1e-6)  # the sea reaches the data's east edge
        img = pixels(page.screenshot())

        def at(lon: float) -> np.ndarray:
            x, y = page.evaluate("(p) => twinViewer.project(p)", [lon, 16.045])[:2]
            return img[int(y), int(x)]

        # open sea in the water colour, not a land colour
        assert _near(at(108.245), WATER), at(108.245)
        # towards the edge the sea fades into the page colour; past it only the page colour
        blue = [int(at(lon)[2]) - int(at(lon)[0]) for lon in (108.245, 108.262, 108.268)]
        assert blue[0] > blue[1] > blue[2], blue
        assert _near(at(108.28), BACKGROUND, 3), at(108.28)
    finally:
        ctx.close()
        with web_engine.begin() as conn:
            conn.execute(text("DELETE FROM land_cover WHERE source_id = 'land_cover-sea'"))


def test_street_names_lie_along_their_streets_from_z15(visit):
    visit.goto("/#16/16.069/108.221/0/0")  # where Lê Duẩn meets Bạch Đằng
    labels = {d["text"]: d for d in visit.page.evaluate(LABELS) if d.get("street")}
    # Lê Duẩn runs east–west, Bạch Đằng north–south: each name turned to its street
    assert abs(labels["Lê Duẩn"]["angle"]) < 5, labels.get("Lê Duẩn")
    assert abs(abs(labels["Bạch Đằng"]["angle"]) - 90) < 5, labels.get("Bạch Đằng")
    visit.shot("map-street-names")
    visit.page.evaluate("twinViewer.jumpTo({zoom: 12.5})")
    visit.idle()
    assert not [d for d in visit.page.evaluate(LABELS) if d.get("street")]  # none below z14
    visit.check()


CURVE = (108.200, 16.050, 0.0015)  # centre and radius (degrees) of a curved test street


def test_a_street_name_follows_its_curve(browser, live_server, web_engine):
    from tests.web.city import _road

    cx, cy, r = CURVE
    arc = [(cx + r * math.cos(math.radians(t)), cy + r * math.sin(math.radians(t)))
           for t in range(200, 341, 10)]  # the lower half of a circle, west to east
    with web_engine.begin() as conn:
        _road(conn, arc, "residential", "Đường Cong Thử", "Curve Test Street")
    ctx = browser.new_context(viewport={"width": 1024, "height": 700})  # no cached tiles
    try:
        page = ctx.new_page()
        page.goto(live_server + f"/#16/{cy - r}/{cx}/0/0")
        wait_idle(page)
        labels = {d["text"]: d for d in page.evaluate(LABELS) if d.get("street")}
        curve = labels["Đường Cong Thử"]
        glyphs = curve["glyphs"]
        # every letter but the spaces, in reading order, west to east
        assert "".join(g["ch"] for g in glyphs) == "ĐườngCongThử"
        xy = [page.evaluate("(p) => twinViewer.project(p)", g["pos"])[:2] for g in glyphs]
        assert all(b[0] > a[0] for a, b in zip(xy, xy[1:], strict=False)), xy
        # each letter sits on the street and is turned to it: the angles follow the bend
        line = [page.evaluate("(p) => twinViewer.project(p)", list(q))[:2] for q in arc]
        for (x, y) in xy:
            gap = min(_to_segment((x, y), a, b) for a, b in zip(line, line[1:], strict=False))
            assert gap < 2.0, (x, y, gap)
        angles = [g["angle"] for g in glyphs]
        assert max(angles) - min(angles) > 20, angles  # one straight label would be 0
        assert angles[0] < 0 < angles[-1], angles  # down into the bend, then up out of it
        shot = page.screenshot(path=str(SHOTS / "map-curved-street-name.png"))
        assert pixels(shot).size
    finally:
        ctx.close()
        with web_engine.begin() as conn:
            ids = conn.execute(text(
                "DELETE FROM road_segment WHERE name = 'Đường Cong Thử' "
                "RETURNING from_node, to_node")).one()
            conn.execute(text("DELETE FROM road_node WHERE id IN (:a, :b)"),
                         {"a": ids[0], "b": ids[1]})


def _to_segment(p: tuple[float, float], a: list[float], b: list[float]) -> float:
    ax, ay, bx, by = a[0], a[1], b[0], b[1]
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((p[0] - ax) * dx + (p[1] - ay) * dy) / ((dx * dx + dy * dy) or 1)))
    return math.hypot(p[0] - ax - t * dx, p[1] - ay - t * dy)


def test_historic_districts_are_labelled_only_for_dates_before_the_merger(visit, web_engine):
    rows = [("district", "Quận Hải Châu", 108.205, 16.05),
            ("ward", "Phường Thạch Thang", 108.19, 16.08)]
    with web_engine.begin() as conn:
        for kind, name, lon, lat in rows:
            conn.execute(text(
                "INSERT INTO place (kind, name_vi, rank, geom, source, source_id) VALUES "
                "(:k, :n, 2, ST_SetSRID(ST_MakePoint(:x, :y), 4326), :s, :sid)"),
                {"k": kind, "n": name, "x": lon, "y": lat, "s": SOURCE, "sid": "place-" + kind})
    try:
        visit.sign_in(PLANNER, "/plan#13.5/16.065/108.2/0/0")
        visit.idle()
        page = visit.page
        page.wait_for_selector("#time-box:not([hidden])")

        def names() -> set[str]:
            visit.idle()
            return {d["text"] for d in page.evaluate(LABELS)}

        today = names()  # the time control starts at today: wards, no districts
        assert "Phường Thạch Thang" in today and "Quận Hải Châu" not in today, today
        # the time control asks for January 2024: the district then, not the later ward
        page.evaluate("""() => { const s = document.querySelector('#time-slider');
          s.value = String((2024 - 2015) * 12); s.dispatchEvent(new Event('input')); }""")
        assert page.inner_text("#time-value") == "2024-01-01"
        before = names()
        assert "Quận Hải Châu" in before and "Phường Thạch Thang" not in before, before
        visit.check()
    finally:
        with web_engine.begin() as conn:
            conn.execute(text("DELETE FROM place WHERE source = :s AND source_id IN "
                              "('place-district', 'place-ward')"), {"s": SOURCE})
