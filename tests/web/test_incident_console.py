"""The incident console: create by clicking the map, comment, seen live in a second
console, close with a reason after confirming, find it in the closed view; filters; the
list keeps its order under the pointer."""

from __future__ import annotations

import time

import httpx

from tests.web.city import LANDMARK
from tests.web.conftest import PLANNER

VIEW = f"#15/{LANDMARK[1]}/{LANDMARK[0] - 0.006}/0/0"
SPOT = (LANDMARK[0] - 0.006, LANDMARK[1])


def _token(base: str) -> str:
    r = httpx.post(base + "/auth/token", data={"username": PLANNER[0], "password": PLANNER[1]})
    r.raise_for_status()
    return str(r.json()["access_token"])


def _ready(v) -> None:
    v.idle()
    v.page.wait_for_function("window.Twin.live && window.Twin.live.connected")
    v.page.wait_for_selector("#ops-count:not(:empty)")


def test_console_create_comment_live_close_and_closed_view(visit, device, live_server):
    visit.sign_in(PLANNER, "/ops" + VIEW)
    _ready(visit)
    other = device(1440, 900, phone=False)
    other.sign_in(PLANNER, "/ops" + VIEW)
    _ready(other)
    page = visit.page

    # a new incident: the form, then a click on the map places it
    page.click("#inc-new")
    page.wait_for_selector("#inc-new-form:not([hidden])")
    page.select_option("#inc-new-category", "fire")
    page.select_option("#inc-new-severity", "4")
    assert "Nghiêm trọng" in page.inner_text("#inc-new-severity")
    page.fill("#inc-new-description", "Khói từ kho hàng")
    x, y = visit.project(*SPOT)
    page.mouse.click(x, y)
    page.wait_for_function(
        "document.querySelector('#inc-new-where').textContent.includes('Vị trí')")
    page.click("#inc-new-submit")
    page.wait_for_selector("#incident-panel:not([hidden])")
    page.wait_for_function("window.twinOps.selected !== null")
    iid = page.evaluate("twinOps.selected")
    t0 = time.monotonic()
    # the other console hears it on /live, no reload
    other.page.locator(f'#incident-list li[data-id="{iid}"]').wait_for(timeout=5_000)
    assert time.monotonic() - t0 < 1.5
    headers = {"Authorization": "Bearer " + _token(live_server)}
    stored = httpx.get(f"{live_server}/incidents/{iid}", headers=headers).json()["properties"]
    assert stored["category"] == "fire" and stored["severity"] == 4
    assert stored["description"] == "Khói từ kho hàng"

    # a comment, shown on the timeline
    page.wait_for_selector('#inc-timeline li[data-kind="created"]')
    page.fill("#inc-comment-text", "Đã gọi đội PCCC")
    page.click("#inc-comment button[type=submit]")
    page.wait_for_selector('#inc-timeline li[data-kind="comment"]')
    assert "Đã gọi đội PCCC" in page.inner_text("#inc-timeline")
    visit.shot("console-comment")

    # closing asks first; cancel keeps it open
    page.select_option("#inc-reason", "false_alarm")
    page.click("#inc-close")
    page.wait_for_selector("#inc-confirm:not([hidden])")
    assert "Báo sai" in page.inner_text("#inc-confirm-q")
    page.click("#inc-confirm-no")
    assert page.is_hidden("#inc-confirm")
    assert httpx.get(f"{live_server}/incidents/{iid}",
                     headers=headers).json()["properties"]["status"] == "reported"
    page.click("#inc-close")
    page.fill("#inc-close-note", "khói bếp")
    page.click("#inc-confirm-yes")
    page.locator(f'#incident-list li[data-id="{iid}"]').wait_for(state="detached")
    other.page.locator(f'#incident-list li[data-id="{iid}"]').wait_for(state="detached",
                                                                       timeout=5_000)
    # the closed view has it, with the reason on its timeline
    page.select_option("#flt-status", "closed,resolved")
    item = page.locator(f'#incident-list li[data-id="{iid}"]')
    item.wait_for()
    item.locator("button").click()
    page.wait_for_selector('#inc-timeline li[data-kind="transition"]')
    tl = page.inner_text("#inc-timeline")
    assert "Báo sai" in tl and "khói bếp" in tl and "đã đóng" in tl
    assert "đã đóng" in page.inner_text("#ops-count")
    visit.shot("console-closed-view")
    visit.check()
    other.check()


def test_filters_narrow_and_order_holds_under_the_pointer(visit, live_server):
    headers = {"Authorization": "Bearer " + _token(live_server)}

    def new(category: str, severity: int) -> int:
        r = httpx.post(live_server + "/incidents", headers=headers, json={
            "category": category, "severity": severity,
            "geometry": {"type": "Point", "coordinates": list(SPOT)}})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    fire, flood = new("fire", 5), new("flood", 1)
    visit.sign_in(PLANNER, "/ops" + VIEW)
    _ready(visit)
    page = visit.page
    ids = page.evaluate("twinOps.ids()")
    assert fire in ids and flood in ids
    page.select_option("#flt-category", "fire")
    page.wait_for_function(f"!twinOps.ids().includes({flood})")
    assert fire in page.evaluate("twinOps.ids()")
    page.select_option("#flt-category", "")
    page.select_option("#flt-severity", "4")
    page.wait_for_function(f"!twinOps.ids().includes({flood}) && twinOps.ids().includes({fire})")
    assert all(page.evaluate("twinOps.ids().map((i) => twinOps.get(i).properties.severity >= 4)"))
    page.select_option("#flt-severity", "")
    page.wait_for_function(f"twinOps.ids().includes({flood})")

    # the pointer over the list: a new incident arrives but the order shown stays
    page.hover("#incident-list li:first-child button")
    before = page.evaluate("twinOps.ids()")
    newest = new("pothole", 2)
    page.wait_for_function(f"twinOps.ids().includes({newest})")
    during = page.evaluate("twinOps.ids()")
    assert during[: len(before)] == before and during[-1] == newest
    assert page.evaluate("twinOps.frozen")
    page.mouse.move(5, 300)  # away from the list
    page.wait_for_function(f"twinOps.ids()[0] === {newest}")
    visit.shot("console-filters")
    visit.check()
