"""Citizens in a real browser: public incidents drawn and picked, live; every declared
layer with features draws something; report a problem from a phone, follow it, see a
public warning."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.web.city import LANDMARK
from tests.web.conftest import PLANNER, _watch

# a spot in the test city, away from the landmark, on a street
SPOT = (LANDMARK[0] - 0.003, LANDMARK[1] - 0.0035)
# the centre of one of the test city's 72 m buildings (not the landmark other tests pick)
TALL = (108.204, 16.061)


def _staff(base: str) -> dict[str, str]:
    r = httpx.post(base + "/auth/token", data={"username": PLANNER[0], "password": PLANNER[1]})
    r.raise_for_status()
    return {"Authorization": "Bearer " + str(r.json()["access_token"])}


def _pick(page: Any, lonlat: tuple[float, float], layer: str = "incidents") -> Any:
    return page.evaluate(
        "([p, l]) => { const [x, y] = twinViewer.project(p); const f = twinViewer.pickAt(x, y);"
        " return f && f.layer === l ? f : null; }", [list(lonlat), layer])


def _wait_pick(page: Any, lonlat: tuple[float, float], want: bool, timeout: int = 15_000) -> None:
    page.wait_for_function(
        "([p, want]) => { const [x, y] = twinViewer.project(p); const f = twinViewer.pickAt(x, y);"
        " return Boolean(f && f.layer === 'incidents') === want; }",
        arg=[list(lonlat), want], timeout=timeout, polling=100)


def _undrawn(page: Any) -> dict[str, Any]:
    """Layers whose tiles on screen carry features but which draw none."""
    loaded = page.evaluate("twinViewer.tileFeatures()")
    drawn = page.evaluate("twinViewer.drawnFeatures()")
    # labelled points (places) are drawn as text by labels.js, not as tile sub-layers
    labelled = page.evaluate(
        "Object.values(Twin.viewer.byId).filter(l => (l.style || {}).label).map(l => l.id)")
    assert loaded, "no tile features on screen at all"
    return {k: (n, drawn.get(k, 0)) for k, n in loaded.items()
            if n and not drawn.get(k) and k not in labelled}


def test_verified_incident_is_drawn_above_buildings_live(device, live_server):
    visit = device(1440, 900, phone=False)
    where = TALL  # on a 72 m building: seen only if drawn on top
    visit.goto(f"/#16.5/{where[1] - 0.002}/{where[0]}/20/50")
    page = visit.page
    page.wait_for_function("window.Twin.live && window.Twin.live.connected")
    headers = _staff(live_server)
    r = httpx.post(live_server + "/incidents", headers=headers, json={
        "category": "fallen_tree", "severity": 4, "title": "Cây đổ thử", "public": True,
        "geometry": {"type": "Point", "coordinates": list(where)}})
    assert r.status_code == 201, r.text
    iid = r.json()["id"]
    # not verified: not on the public map
    assert _pick(page, where) is None
    r = httpx.post(f"{live_server}/incidents/{iid}/transition", headers=headers,
                   json={"status": "verified"})
    assert r.status_code == 200, r.text
    _wait_pick(page, where, True)
    picked = _pick(page, where)
    assert picked["id"] == iid and picked["properties"]["category"] == "fallen_tree"
    visit.idle()
    assert _undrawn(page) == {}
    drawn = page.evaluate("twinViewer.drawnFeatures()")
    assert drawn.get("incidents", 0) >= 2  # its disc and its symbol
    assert drawn.get("buildings", 0) > 0
    # the legend tells the severity scale in words and shows the category symbols
    legend = page.inner_text("[data-layer=incidents] .legend")
    for word in ("Nhẹ", "Nghiêm trọng", "Rất nghiêm trọng", "cây đổ"):
        assert word in legend, legend
    # clicking it reads its severity in words
    x, y = visit.project(*where)
    page.mouse.click(x, y)
    page.wait_for_function(
        "document.querySelector('#info-body').innerText.includes('Nghiêm trọng')")
    visit.shot("citizen-incident-desktop")
    # hidden from the public: gone from the map within seconds, no reload
    etag = httpx.get(f"{live_server}/incidents/{iid}", headers=headers).headers["etag"]
    r = httpx.patch(f"{live_server}/incidents/{iid}", json={"public": False},
                    headers={**headers, "If-Match": etag})
    assert r.status_code == 200, r.text
    _wait_pick(page, where, False)
    # the report sheet on a wide screen, in English
    page.click("button[data-lang=en]")
    assert page.inner_text("#report-open") == "Report a problem"
    page.click("#report-open")
    page.wait_for_selector("#report-panel", state="visible")
    page.mouse.click(*visit.project(TALL[0] - 0.0015, TALL[1] - 0.001))
    page.wait_for_function("twinReport.spot() !== null")
    assert "Only city staff see your name" in page.inner_text("#report-privacy")
    page.wait_for_selector("#report-category option[value=pothole]", state="attached")
    assert "Pothole" in page.inner_text("#report-category")
    visit.shot("citizen-report-desktop")
    visit.check()


def _png(w: int = 64, h: int = 48) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 60, 40)).save(buf, format="PNG")
    return buf.getvalue()


def _tap(visit: Any, lonlat: tuple[float, float]) -> None:
    x, y = visit.project(*lonlat)
    visit.page.touchscreen.tap(x, y)


def count_reports(base: str, headers: dict[str, str]) -> int:
    return len(httpx.get(base + "/incidents", headers=headers, params={"limit": 1000})
               .json()["features"])


DUE = r"^\d\d:\d\d \d\d/\d\d/\d{4} \(GMT\+7\)$"


def test_phone_report_follow_verify_and_warning(device, live_server):
    phone = device(390, 844)
    page = phone.page
    # the spot sits in the upper half of the screen: the sheet covers at most the lower half
    phone.goto(f"/#17/{SPOT[1] - 0.0008}/{SPOT[0]}/0/0")
    # the page knows this server's citizen APIs (warnings, nearby reports, "me too", photos)
    assert page.evaluate("Twin.config.api") == {
        "warnings": True, "nearby": True, "support": True, "media": True}
    open_btn = page.locator("#report-open")
    assert open_btn.inner_text() == "Báo sự cố" and open_btn.is_visible()
    open_btn.click()
    sheet = page.locator("#report-panel")
    sheet.wait_for(state="visible")
    box = sheet.bounding_box()
    assert box["height"] <= 844 * 0.5 + 1, box
    _tap(phone, SPOT)
    page.wait_for_function("twinReport.spot() !== null")
    spot = page.evaluate("twinReport.spot()")
    assert abs(spot["lon"] - SPOT[0]) < 0.0002 and abs(spot["lat"] - SPOT[1]) < 0.0002, spot
    page.wait_for_selector("#report-category option[value=flood]", state="attached")
    page.select_option("#report-category", "flood")
    page.wait_for_selector("#report-attr-depth_cm")  # the category's own question
    page.fill("#report-attr-depth_cm", "30")
    page.fill("#report-description", "Nước ngập ngang bánh xe trước số 12.")
    page.set_input_files("#report-photos", files=[
        {"name": "ngap.png", "mimeType": "image/png", "buffer": _png()}])
    page.wait_for_selector("#report-photos-preview img")
    assert "Chỉ cán bộ thành phố thấy" in page.inner_text("#report-privacy")
    page.fill("#report-name", "Nguyễn Văn A")
    page.fill("#report-phone", "0905 000 111")
    page.locator("#report-where").scroll_into_view_if_needed()
    phone.shot("citizen-1-report")
    page.click("#report-send")
    page.wait_for_url("**/track/**", timeout=20_000)
    # the tracking page's small map may write its view into the URL's #fragment
    token = page.url.split("#", 1)[0].split("?", 1)[0].rsplit("/track/", 1)[1]
    page.wait_for_function("window.twinTrack && twinTrack.data() !== null", timeout=20_000)
    phone.idle()
    mine = page.evaluate("JSON.parse(localStorage.getItem('twin.reports'))")
    assert mine[0]["token"] == token and mine[0]["category"] == "flood"
    assert "ngập lụt" in page.inner_text("#track-category")
    due = page.inner_text("#track-due")
    assert re.match(DUE, due), due
    first_status = page.inner_text("#track-status")
    assert first_status
    # the reporter's name never shows on the tracking page
    assert "Nguyễn Văn A" not in page.inner_text("body")
    page.wait_for_function(  # the photo, re-encoded by the server, shown to its reporter
        "[...document.querySelectorAll('#track-photos img')].some(i => i.naturalWidth > 0)")
    phone.shot("citizen-2-track")

    # the same phone opens the map; a responder verifies the report
    phone2 = _watch(page.context.new_page(), live_server)
    phone2.goto(f"/#17/{SPOT[1]}/{SPOT[0]}/0/0")
    map_page = phone2.page
    map_page.wait_for_function("window.Twin.live && window.Twin.live.connected")
    assert _pick(map_page, SPOT) is None  # not verified yet: not public
    headers = _staff(live_server)
    iid = httpx.get(f"{live_server}/open311/v2/tokens/{token}.json").json()[0]["service_request_id"]
    reports_before = count_reports(live_server, headers)
    r = httpx.post(f"{live_server}/incidents/{iid}/transition", headers=headers,
                   json={"status": "verified"})
    assert r.status_code == 200, r.text
    _wait_pick(map_page, SPOT, True)
    assert str(_pick(map_page, SPOT)["id"]) == str(iid)
    phone2.idle()
    assert _undrawn(map_page) == {}
    phone2.shot("citizen-3-map")
    # the tracking page follows: a new status, the verification on its timeline
    page.wait_for_function("(s) => document.querySelector('#track-status').innerText !== s",
                           arg=first_status, timeout=20_000)
    status = page.inner_text("#track-status")
    assert "xác minh" in status.lower(), status
    assert page.locator("#track-timeline li[data-status=verified]").count() == 1
    phone.shot("citizen-4-track-verified")

    # "my reports" on the map lists it
    map_page.click("#myreports-open")
    assert map_page.locator(f'#myreports-list li[data-token="{token}"] a').count() == 1

    # a neighbour reports the same flood: offered the open report first, "Tôi cũng gặp"
    map_page.click("#report-open")
    map_page.wait_for_selector("#report-panel", state="visible")
    _tap(phone2, (SPOT[0] + 0.0001, SPOT[1]))  # about 11 m away
    map_page.wait_for_selector("#report-category option[value=flood]", state="attached")
    map_page.select_option("#report-category", "flood")
    dupe = map_page.locator(f'#report-dupes li[data-id="{iid}"]')
    dupe.wait_for(timeout=10_000)
    assert "Có phải một trong các báo cáo này không?" in map_page.inner_text("#report-dupes")
    dupe.scroll_into_view_if_needed()
    phone2.shot("citizen-6-duplicate")
    dupe.locator("button.metoo").click()
    map_page.wait_for_selector("#report-panel", state="hidden")
    map_page.wait_for_function(
        "(id) => twinReport.mine().some(e => e.id === String(id) && !e.token)", arg=iid)
    tracked = httpx.get(f"{live_server}/open311/v2/tokens/{token}.json").json()[0]
    assert tracked["supporters"] == 1, tracked
    assert count_reports(live_server, headers) == reports_before  # nothing duplicated

    # a CAP warning published for it shows as a banner on the map, live
    r = httpx.post(f"{live_server}/incidents/{iid}/publish", headers=headers, json={
        "headline_vi": "Cảnh báo ngập đường Lê Lợi", "headline_en": "Flooding on Le Loi street"})
    assert r.status_code == 200, r.text
    map_page.wait_for_selector("#warning-banner .warning", timeout=15_000)
    assert "Cảnh báo ngập đường Lê Lợi" in map_page.inner_text("#warning-banner")
    phone2.idle()
    assert map_page.evaluate("twinViewer.deckLayerIds()").count("warnings") == 1  # its area
    phone2.shot("citizen-5-warning")
    # and on the tracking page too
    page.wait_for_selector("#warning-banner .warning", timeout=15_000)
    phone.check()
    phone2.check()
    # closed: the warning ends with it (other tests in this session see no banner)
    r = httpx.post(f"{live_server}/incidents/{iid}/transition", headers=headers,
                   json={"status": "closed", "reason": "resolved"})
    assert r.status_code == 200, r.text
    assert httpx.get(live_server + "/warnings.json").json()["features"] == []


def test_report_and_track_pages_are_served(live_server):
    r = httpx.get(live_server + "/report")
    assert r.status_code == 200 and 'id="report-panel"' in r.text and "/static/report.js" in r.text
    r = httpx.get(live_server + "/track/abcdEFGH_1234-xyz")
    assert r.status_code == 200 and 'id="track-panel"' in r.text and "/static/track.js" in r.text
    assert 'id="report-panel"' not in r.text
    for bad in ("/track/short", "/track/" + "x" * 200, "/track/has%20space%21"):
        assert httpx.get(live_server + bad).status_code == 404, bad
    # every map page carries the warnings banner script
    for path in ("/", "/plan", "/ops"):
        html = httpx.get(live_server + path, headers={"Accept": "text/html"}).text
        assert "/static/warnings.js" in html, path
