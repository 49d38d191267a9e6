"""Sign-in, the planner view (CQL2 filter, area counts and export, time) and /ops."""

from __future__ import annotations

import json

from tests.web.city import LANDMARK
from tests.web.conftest import CITIZEN, PLANNER, count

VIEW = f"#15.5/{LANDMARK[1]}/{LANDMARK[0]}/0/0"
# a box right of the panels, inside the hand-made city (lon/lat corners)
RECT = ((108.2135, 16.0595), (108.2185, 16.0655))
# inside the historic district, outside every ward in force today
DISTRICT_VIEW = "#15.5/16.044/108.228/0/0"
DISTRICT_ONLY = ((108.229, 16.041), (108.234, 16.047))


def _in_rect(engine, table: str, rect, extra: str = "TRUE") -> int:
    (w, s), (e, n) = rect
    return count(engine, f"SELECT count(*) FROM {table} WHERE ST_Intersects(geom, "
                 f"ST_MakeEnvelope(:w, :s, :e, :n, 4326)) AND {extra}", w=w, s=s, e=e, n=n)


def _draw_rect(visit, rect) -> None:
    visit.page.click("#draw-rect")
    assert visit.page.get_attribute("#draw-rect", "aria-pressed") == "true"
    for lon, lat in rect:
        x, y = visit.project(lon, lat)
        visit.page.mouse.click(x, y)
    visit.page.wait_for_selector("#area-result:not([hidden])")


def _summary(visit) -> dict[str, int]:
    rows = visit.page.locator("#area-summary tbody tr")
    out = {}
    for i in range(rows.count()):
        r = rows.nth(i)
        out[r.get_attribute("data-layer")] = int(
            r.locator("td").nth(1).inner_text().replace(".", "").replace(",", ""))
    return out


def test_plan_needs_sign_in_then_filters_counts_and_exports(visit, web_engine):
    visit.goto("/plan" + VIEW, idle=False)
    visit.page.wait_for_url("**/signin?next=**")
    visit.page.wait_for_selector("#signin-form")
    visit.shot("signin")
    visit.page.fill("#username", PLANNER[0])
    visit.page.fill("#password", "wrong-password")
    visit.page.click("form#signin-form button[type=submit]")
    visit.page.wait_for_function("document.querySelector('#signin-error').innerText.length > 0")
    visit.errors.clear()  # the browser logs the expected 401 of the wrong password
    visit.page.fill("#password", PLANNER[1])
    visit.page.click("form#signin-form button[type=submit]")
    visit.page.wait_for_url("**/plan#**")
    visit.idle()
    assert "water_network" in visit.page.evaluate("twinViewer.layerIds()")
    assert "lan" in visit.page.inner_text("#who")

    # CQL2 filter: the matches are drawn and counted
    visit.page.select_option("#filter-layer", "buildings")
    visit.page.fill("#filter-text", "height_m > 50")
    visit.page.click("#filter-apply")
    visit.page.wait_for_function("document.querySelector('#filter-result').dataset.count")
    expected = count(web_engine, "SELECT count(*) FROM building WHERE height_m > 50")
    assert visit.page.get_attribute("#filter-result", "data-count") == str(expected)

    # area: counts per layer, then an export of what is inside
    _draw_rect(visit, RECT)
    got = _summary(visit)
    assert got["buildings"] == _in_rect(web_engine, "building", RECT)
    assert got["buildings"] > 5
    assert "water_network" in got
    visit.idle()
    visit.shot("plan")
    visit.page.select_option("#export-layer", "buildings")
    with visit.page.expect_download() as dl:
        visit.page.click("button.export[data-format=geojson]")
    fc = json.loads(open(dl.value.path(), encoding="utf-8").read())
    assert dl.value.suggested_filename == "buildings-area.geojson"
    assert len(fc["features"]) == got["buildings"]
    with visit.page.expect_download() as dl:
        visit.page.click("button.export[data-format=gpkg]")
    assert open(dl.value.path(), "rb").read(16).startswith(b"SQLite format 3")
    visit.check()

    # the time control: districts before 2025-07-01, wards after
    visit.page.click("#draw-clear")
    lat, lon = (float(v) for v in DISTRICT_VIEW[1:].split("/")[1:3])
    visit.page.evaluate("([lon, lat]) => twinViewer.jumpTo({longitude: lon, latitude: lat})",
                        [lon, lat])
    visit.idle()
    _draw_rect(visit, DISTRICT_ONLY)
    assert _summary(visit)["admin_boundaries"] == 0  # today: only the wards, none here
    slider = visit.page.locator("#time-slider")
    slider.fill(str(12 * (2024 - 2015)))  # January 2024: the districts were still in force
    slider.dispatch_event("change")
    assert visit.page.inner_text("#time-value") == "2024-01-01"
    visit.page.wait_for_function(
        "document.querySelector('#area-summary tr[data-layer=admin_boundaries] td:last-child')"
        ".innerText === '1'")
    visit.check()

    # a bad expression shows the server's message (its 400 is logged by the browser)
    visit.page.fill("#filter-text", "height_m >> 50")
    visit.page.click("#filter-apply")
    visit.page.wait_for_function("document.querySelector('#filter-error').innerText.length > 0")
    assert "50" in visit.page.inner_text("#filter-error")


def test_ops_console_shows_staff_layers_and_the_incident_board(visit):
    visit.sign_in(PLANNER, "/ops" + VIEW)
    visit.idle()
    for lid in ("water_network", "utility_nodes"):
        assert visit.page.locator(f"#lyr-{lid}").count() == 1
    visit.page.wait_for_selector("#ops-count:not(:empty)")
    assert "sự cố" in visit.page.inner_text("#ops-panel")
    visit.shot("ops")
    visit.check()


def test_citizen_is_told_the_console_is_for_staff(visit):
    visit.sign_in(CITIZEN, "/ops")
    visit.page.wait_for_selector("#gate:not([hidden])")
    assert "cán bộ" in visit.page.inner_text("#gate-msg")
    assert "water_network" not in visit.page.evaluate("twinViewer.layerIds()")
    visit.check()
