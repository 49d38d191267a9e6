"""Every page at a phone's size (390×844) and a desktop's (1440×900): a one-line top bar,
panels that never overlap each other or the bar, the map keeping at least half the
screen, touch targets of 44 px on phones, and the panels' collapse controls working."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.web.city import LANDMARK
from tests.web.conftest import PLANNER, SHOTS, Visit

SIZES = {"phone": (390, 844), "desktop": (1440, 900)}
CLOSE = f"#16/{LANDMARK[1]}/{LANDMARK[0]}/0/0"

# What the page shows, measured in the browser: the top bar, the visible panels (and the
# phone's sheet), interactive elements and how much of the screen is the map.
MEASURE = """() => {
  const W = innerWidth, H = innerHeight;
  const shown = (e) => {
    const r = e.getBoundingClientRect(), s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && s.display !== "none" && s.visibility !== "hidden"
      && r.right > 0 && r.bottom > 0 && r.left < W && r.top < H;
  };
  const box = (e) => { const r = e.getBoundingClientRect();
    return { id: e.id || e.className, x: r.left, y: r.top, w: r.width, h: r.height }; };
  const bar = document.querySelector(".topbar");
  // the bar's own items (the menu's too where they sit in the bar; an open phone menu drops down)
  const inBar = getComputedStyle(bar.querySelector(".menu")).display === "contents";
  const items = inBar ? ":scope > *, :scope > .menu > *" : ":scope > *";
  const barKids = Array.from(bar.querySelectorAll(items)).filter(shown)
    .filter((e) => !e.classList.contains("menu")).map(box);
  const panels = Array.from(document.querySelectorAll(".panel, [data-panel]"))
    .filter(shown).map(box);
  const floating = "body > [data-float], body > .citizen-actions";
  const floats = Array.from(document.querySelectorAll(floating))
    .filter(shown).map(box);
  const dock = document.querySelector("#dock");
  const phone = dock && shown(dock) && getComputedStyle(dock).flexDirection === "column";
  const sheet = phone ? box(dock) : null;
  const sel = "button, a[href], input, select, textarea, summary, [role=tab]";
  const targets = Array.from(document.querySelectorAll(sel)).filter(shown).map((e) => {
    // a checkbox is hit through its label
    const t = e.type === "checkbox" && e.labels && e.labels[0] ? e.labels[0] : e;
    const b = box(t);
    b.id = e.id || e.getAttribute("aria-label") || e.textContent.trim().slice(0, 30) || e.tagName;
    return b;
  });
  const map = document.getElementById("deck-container");
  let onMap = 0, n = 0;
  for (let y = 5; y < H; y += 20) for (let x = 5; x < W; x += 20) {
    n += 1;
    const e = document.elementFromPoint(x, y);
    if (map && e && map.contains(e)) onMap += 1;
  }
  const search = document.querySelector("#search-input");
  return { bar: box(bar), barKids, panels, sheet, floats, targets, mapShare: onMap / n,
           search: search && shown(search) ? box(search) : null };
}"""


def overlap(a: dict[str, Any], b: dict[str, Any]) -> float:
    dx = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
    dy = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
    return max(dx, 0) * max(dy, 0)


def check_layout(v: Visit, size: str, has_map: bool = True) -> dict[str, Any]:
    m: dict[str, Any] = v.page.evaluate(MEASURE)
    bar = m["bar"]
    assert bar["h"] <= 56, f"top bar {bar['h']} px high"
    for kid in m["barKids"]:  # one line: everything in the bar lies inside it
        assert kid["y"] >= bar["y"] - 1 and kid["y"] + kid["h"] <= bar["y"] + bar["h"] + 1, kid
    boxes = m["panels"] + ([m["sheet"]] if m["sheet"] else [])
    for i, a in enumerate(boxes):
        assert overlap(a, bar) < 1, f"{a['id']} under the top bar: {a}, {bar}"
        for b in m["panels"][i + 1:] if not m["sheet"] or a is not m["sheet"] else []:
            assert overlap(a, b) < 1, f"panels overlap: {a} and {b}"
    for f in m["floats"]:  # buttons floating on the map keep clear of panels and sheet
        for a in boxes:
            assert overlap(a, f) < 1, f"{f['id']} covers {a['id']}: {f}, {a}"
    if has_map:
        assert m["mapShare"] >= 0.5, f"the map keeps only {m['mapShare']:.0%} of the screen"
    if size == "phone":
        small = [t for t in m["targets"] if t["w"] < 44 - 0.5 or t["h"] < 44 - 0.5]
        assert not small, f"touch targets under 44 px: {small}"
        if m["search"]:
            assert m["search"]["w"] >= 200, f"search box {m['search']['w']} px wide"
    return m


@pytest.fixture(params=list(SIZES))
def sized(request: pytest.FixtureRequest, browser: Any,
          live_server: str) -> Iterator[tuple[str, Visit]]:
    w, h = SIZES[request.param]
    phone = request.param == "phone"
    # a device in another zone: the viewer still shows Đà Nẵng's time
    ctx = browser.new_context(viewport={"width": w, "height": h}, is_mobile=phone, has_touch=phone,
                              timezone_id="America/New_York")
    page = ctx.new_page()
    v = Visit(page, live_server)
    page.on("pageerror", lambda e: v.errors.append(f"page error: {e}"))
    page.on("console", lambda msg: v.errors.append(f"console: {msg.text}")
            if msg.type == "error" else None)
    page.on("request", lambda r: v.requests.append(r.url))
    try:
        yield request.param, v
    finally:
        ctx.close()


def pick_landmark(v: Visit) -> None:
    """Click the landmark building: its attributes open in the attribute panel."""
    x, y = v.project(*LANDMARK)
    v.page.wait_for_function(
        "([x, y]) => (twinViewer.pickAt(x, y) || {}).layer === 'buildings'", arg=[x, y])
    v.page.mouse.click(x, y)
    v.page.locator("#info-panel").wait_for(state="visible")


def tab_selected(v: Visit, panel_id: str) -> bool:
    tab = v.page.locator(f".sheet-tab[aria-controls={panel_id}]")
    return tab.get_attribute("aria-selected") == "true"


def sign_in(v: Visit, path: str) -> None:
    """Sign in as the planner through the form and wait for the page it returns to."""
    v.page.goto(f"{v.base}/signin?next={quote(path, safe='/')}")
    v.page.fill("#username", PLANNER[0])
    v.page.fill("#password", PLANNER[1])
    v.page.click("form#signin-form button[type=submit]")
    v.page.wait_for_url(lambda url: "/signin" not in url)
    v.idle()


def open_sheet_tabs(v: Visit, size: str, shot: str, has_map: bool = True) -> list[str]:
    """On a phone: open the sheet and check the layout with each tab; on a desktop: once."""
    page = v.page
    if size == "desktop":
        check_layout(v, size, has_map)
        v.shot(shot)
        return []
    handle = page.locator(".sheet-handle")
    check_layout(v, size, has_map)
    if handle.get_attribute("aria-expanded") == "false":
        handle.click()
    assert handle.get_attribute("aria-expanded") == "true"
    tabs = page.locator(".sheet-tab")
    names = [tabs.nth(i).inner_text() for i in range(tabs.count())]
    assert names, "no panel tabs on the phone"
    for i in range(len(names)):
        tab = page.locator(".sheet-tab").nth(i)
        tab.click()
        assert tab.get_attribute("aria-selected") == "true"
        panel = page.locator("#" + str(tab.get_attribute("aria-controls")))
        assert panel.is_visible()
        check_layout(v, size, has_map)
    v.shot(shot)
    handle.click()  # fold again: the panels go, the map is back
    assert handle.get_attribute("aria-expanded") == "false"
    assert page.locator("#dock .panel:visible").count() == 0
    return names


def test_public_map_layout(sized):
    size, v = sized
    v.goto("/" + CLOSE)
    if size == "phone":  # the map first: the sheet starts folded
        assert v.page.locator(".sheet-handle").get_attribute("aria-expanded") == "false"
        assert v.page.locator("#dock .panel:visible").count() == 0
    # pick the landmark: the attribute panel joins the layer panel (on a phone: opens the sheet)
    pick_landmark(v)
    if size == "phone":
        assert v.page.locator(".sheet-handle").get_attribute("aria-expanded") == "true"
        assert tab_selected(v, "info-panel")
    names = open_sheet_tabs(v, size, f"layout-map-{size}")
    if size == "phone":
        assert "Lớp bản đồ" in names and "Thuộc tính" in names
        # the menu holds the page links, the language and sign-in
        page = v.page
        assert not page.locator(".topbar nav").is_visible()
        toggle = page.locator("#menu-toggle")
        toggle.click()
        assert toggle.get_attribute("aria-expanded") == "true"
        assert page.locator(".topbar nav a[href='/plan']").is_visible()
        check_layout(v, size)
        v.shot("layout-menu-phone")
        page.click("button[data-lang=en]")
        assert page.evaluate("document.documentElement.lang") == "en"
        assert page.locator(".sheet-tab").first.inner_text() == "Map layers"
    else:
        # a panel folds to its head and opens again
        toggle = v.page.locator("#layer-panel .panel-toggle")
        assert toggle.get_attribute("aria-expanded") == "true"
        before = v.page.locator("#layer-panel").bounding_box()
        toggle.click()
        assert toggle.get_attribute("aria-expanded") == "false"
        assert not v.page.locator("#layer-list").is_visible()
        assert v.page.locator("#layer-panel").bounding_box()["height"] < before["height"] - 50
        toggle.click()
        assert v.page.locator("#layer-list").is_visible()
    assert not v.errors, v.errors


def test_planner_layout(sized):
    size, v = sized
    sign_in(v, "/plan" + CLOSE)
    v.page.wait_for_selector("#filter-layer option", state="attached")
    pick_landmark(v)
    names = open_sheet_tabs(v, size, f"layout-plan-{size}")
    if size == "phone":
        assert "Công cụ quy hoạch" in names
    assert not v.errors, v.errors


def test_ops_layout_with_every_panel_open(sized, live_server):
    size, v = sized
    token = httpx.post(live_server + "/auth/token",
                       data={"username": PLANNER[0], "password": PLANNER[1]}).json()["access_token"]
    r = httpx.post(live_server + "/incidents", headers={"Authorization": "Bearer " + token}, json={
        "category": "fire", "severity": 3, "title": "Bố cục thử", "address": "1 Bạch Đằng",
        "geometry": {"type": "Point", "coordinates": [LANDMARK[0] + 0.002, LANDMARK[1]]}})
    assert r.status_code == 201, r.text
    iid = r.json()["id"]
    sign_in(v, "/ops" + CLOSE)
    page = v.page
    item = page.locator(f'#incident-list li[data-id="{iid}"] button')
    if size == "phone":
        page.locator(".sheet-handle").click()
        page.locator(".sheet-tab[aria-controls=ops-panel]").click()
    # its time as Đà Nẵng reads it, with the zone
    body = r.json()
    made = dt.datetime.fromisoformat(body.get("created_at") or body["properties"]["created_at"])
    made = made.astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
    assert made.strftime("%H:%M %d/%m/%Y (GMT+7)") in item.inner_text()
    item.click()
    page.locator("#incident-panel").wait_for(state="visible")
    if size == "phone":
        # the incident's panel takes the sheet, opened, as its own tab
        assert tab_selected(v, "incident-panel")
        page.locator(".sheet-handle").click()
    names = open_sheet_tabs(v, size, f"layout-ops-{size}")
    if size == "phone":
        assert {"Sự cố", "Cảnh báo cảm biến", "Lớp bản đồ"} <= set(names)
    else:
        for pid in ("layer-panel", "ops-panel", "incident-panel", "alarm-panel"):
            assert page.locator("#" + pid).is_visible(), pid
    assert not v.errors, v.errors


def test_signin_layout(sized):
    size, v = sized
    v.goto("/signin", idle=False)
    page = v.page
    page.wait_for_selector("#signin-form")
    m = check_layout(v, size, has_map=False)
    form = page.locator("#signin-form").bounding_box()
    assert form["y"] >= m["bar"]["y"] + m["bar"]["h"]
    assert form["x"] >= 0 and form["x"] + form["width"] <= SIZES[size][0]
    if size == "phone":
        assert page.locator("#menu-toggle").is_visible()
        assert not page.locator("#signin-link").is_visible()
        page.locator("#menu-toggle").click()
        assert page.locator("#signin-link").is_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    v.shot(f"layout-signin-{size}")
    assert not v.errors, v.errors


def test_tracking_page_layout(sized, live_server):
    size, v = sized
    r = httpx.post(live_server + "/open311/v2/requests.json", data={
        "service_code": "pothole", "lat": str(LANDMARK[1]), "long": str(LANDMARK[0] + 0.001),
        "description": "Ổ gà thử bố cục"})
    assert r.status_code in (200, 201), r.text
    token = r.json()[0]["token"]
    v.goto(f"/track/{token}", idle=False)
    page = v.page
    page.locator("#track-body").wait_for(state="visible")
    v.idle()
    # the report's panel and the map it sits on are both in view, the map keeping half
    check_layout(v, size)
    assert page.locator("#track-panel").is_visible()
    v.shot(f"layout-track-{size}")
    assert not v.errors, v.errors
