"""The emergency console: a new incident appears live, then its nearest hospitals."""

from __future__ import annotations

import httpx

from tests.web.city import LANDMARK
from tests.web.conftest import PLANNER

VIEW = f"#15/{LANDMARK[1]}/{LANDMARK[0] - 0.006}/0/0"
# by the test city's hospital: the same nearest road node, so a route always exists
NEAR_HOSPITAL = (108.2025, 16.0715)


def _token(base: str) -> str:
    r = httpx.post(base + "/auth/token", data={"username": PLANNER[0], "password": PLANNER[1]})
    r.raise_for_status()
    return str(r.json()["access_token"])


def test_new_incident_appears_live_and_shows_nearest_hospitals(visit, live_server):
    visit.sign_in(PLANNER, "/ops" + VIEW)
    visit.idle()
    page = visit.page
    page.wait_for_function("window.Twin.live && window.Twin.live.connected")
    page.wait_for_selector("#ops-count:not(:empty)")
    before = page.locator("#incident-list li").count()

    # another client reports an incident through the API; no reload here
    headers = {"Authorization": "Bearer " + _token(live_server)}
    r = httpx.post(live_server + "/incidents", headers=headers, json={
        "category": "fire", "severity": 4, "title": "Cháy thử nghiệm",
        "address": "1 Bạch Đằng", "reporter_phone": "0900 000 000",
        "geometry": {"type": "Point", "coordinates": list(NEAR_HOSPITAL)},
    })
    assert r.status_code == 201, r.text
    iid = r.json()["id"]
    item = page.locator(f'#incident-list li[data-id="{iid}"]')
    item.wait_for(timeout=15_000)
    assert page.locator("#incident-list li").count() == before + 1
    # newest first
    assert page.locator("#incident-list li").first.get_attribute("data-id") == str(iid)
    assert "Cháy thử nghiệm" in item.inner_text()
    assert "mới báo" in item.inner_text()
    assert "ops-incidents" in page.evaluate("twinViewer.deckLayerIds()")
    assert iid in page.evaluate("twinOps.ids()")

    # select it from the keyboard: details, next statuses, nearest hospital with its route
    item.locator("button").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#incident-panel:not([hidden])")
    page.wait_for_selector("#inc-nearest li.hospital", timeout=20_000)
    assert "Bệnh viện Đà Nẵng" in page.inner_text("#inc-nearest")
    assert "phút" in page.inner_text("#inc-nearest")
    assert "tòa nhà" in page.inner_text("#inc-around")
    assert "0900 000 000" in page.inner_text("#inc-body")  # staff see the reporter
    assert "ops-routes" in page.evaluate("twinViewer.deckLayerIds()")
    assert page.locator('#inc-actions button[data-status="verified"]').count() == 1

    # verify it: the status changes in the list (the transition also arrives live)
    page.click('#inc-actions button[data-status="verified"]')
    page.wait_for_function(
        f"document.querySelector('#incident-list li[data-id=\"{iid}\"]').dataset.status"
        " === 'verified'")
    assert page.locator('#inc-actions button[data-status="dispatched"]').count() == 1

    # assign units, then show it on the public map (a PATCH naming its version)
    page.fill("#inc-units", "PCCC-01, 115-03")
    page.press("#inc-units", "Enter")
    page.wait_for_function(
        f"twinOps.get({iid}).properties.assigned_units.join() === 'PCCC-01,115-03'")
    assert page.get_attribute("#inc-public", "aria-pressed") == "false"
    page.click("#inc-public")
    page.wait_for_function("document.querySelector('#inc-public').ariaPressed === 'true'")
    staff = httpx.get(f"{live_server}/incidents/{iid}", headers=headers).json()["properties"]
    assert staff["public"] is True and staff["assigned_units"] == ["PCCC-01", "115-03"]
    public = httpx.get(f"{live_server}/collections/incidents/items/{iid}")
    assert public.status_code == 200 and "0900 000 000" not in public.text
    visit.idle()
    visit.shot("ops-incident")
    visit.check()

    # someone else edits it meanwhile: the stale version answers 412, the panel reloads
    edit = httpx.patch(f"{live_server}/incidents/{iid}", headers=headers, json={"severity": 5})
    version = edit.json()["properties"]["version"]
    page.wait_for_function(f"twinOps.get({iid}).properties.version === {version}")  # live
    page.evaluate(f"twinOps.get({iid}).properties.version -= 1")  # as if it had not arrived
    page.click("#inc-public")
    page.wait_for_function("document.querySelector('#inc-msg').textContent.includes('người khác')")
    assert httpx.get(f"{live_server}/incidents/{iid}",
                     headers=headers).json()["properties"]["public"] is True
    assert visit.failed == [f"412 {live_server}/incidents/{iid}"]  # the one expected refusal


def test_public_map_refreshes_live_incidents(visit, live_server):
    visit.goto(f"/#15/{NEAR_HOSPITAL[1]}/{NEAR_HOSPITAL[0]}/0/0")
    page = visit.page
    page.wait_for_function("window.Twin.live && window.Twin.live.connected")
    headers = {"Authorization": "Bearer " + _token(live_server)}
    r = httpx.post(live_server + "/incidents", headers=headers, json={
        "category": "fire", "severity": 5, "title": "Cháy công khai", "public": True,
        "geometry": {"type": "Point", "coordinates": [NEAR_HOSPITAL[0] + 0.001, NEAR_HOSPITAL[1]]},
    })
    assert r.status_code == 201, r.text
    iid = r.json()["id"]
    r = httpx.post(f"{live_server}/incidents/{iid}/transition", headers=headers,
                   json={"status": "verified"})
    assert r.status_code == 200, r.text
    # the verified public incident reaches the anonymous map: its tiles are fetched again
    page.wait_for_function("(twinViewer.liveVersion().incidents || 0) >= 1", timeout=15_000)
    for _ in range(100):  # the refetch starts on the next frame
        if any("/tiles/incidents/" in u and "?v=" in u for u in visit.requests):
            break
        page.wait_for_timeout(100)
    else:
        raise AssertionError("the incidents layer was not fetched again")
    visit.idle()
    visit.check()
