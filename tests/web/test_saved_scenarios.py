"""Saved scenarios in /plan (issue 13): a planner runs a 2 m and a 4 m flood, finds both
in the list, renames one, reopens it on a fresh page (the flood drawn again), compares
the two side by side (flood colour in both halves, the difference table filled) and
opens the share link in a new page; on a phone the two maps stack."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import numpy as np
import pytest

from tests.slope_dem import write_dem
from tests.web.conftest import PLANNER, _watch

CENTRE = (108.226, 16.0625)  # both floods reach here: 2 m east of 108.225, 4 m of 108.215
VIEW = f"#14/{CENTRE[1]}/{CENTRE[0]}/0/0"


@pytest.fixture(scope="module")
def saved_dem(web_settings, web_engine, tmp_path_factory) -> str:  # noqa: ANN001
    from twin.ingest.dem import import_dem
    from twin.progress import NullReporter

    tif = write_dem(tmp_path_factory.mktemp("saved-dem") / "slope.tif")
    with web_engine.begin() as conn:
        import_dem(conn, tif, reporter=NullReporter(), settings=web_settings, name="saved_dem")
    return "saved_dem"


def rgb(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(BytesIO(png)).convert("RGB"), dtype=np.int16)


def flood_share(img: np.ndarray) -> float:
    """Share of pixels in the depth ramp's colours (yellow → red → purple, at 75 %
    opacity over the basemap); the page background, roads and the sea are not."""
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    warm = (r - b > 90) & (r > 150) & (g < 215)
    purple = (r > g + 40) & (b > g + 20) & (r < 210)
    return float((warm | purple).mean())


def run_flood(page: Any, metres: int) -> str:
    """Move the flood slider; the stored run's id once it is in the saved list (matched
    by id: the list shows a page of 10, so counting its rows says nothing once full)."""
    slider = page.locator("#flood-slider")
    with page.expect_response(lambda r: r.url.endswith("/scenarios/flood")
                              and r.request.method == "POST", timeout=60_000) as resp:
        slider.fill(str(metres))
        slider.dispatch_event("change")
    assert resp.value.status == 201, resp.value.text()
    sid = str(resp.value.json()["id"])
    page.wait_for_selector(f'#saved-list li[data-id="{sid}"]', timeout=30_000)
    return sid


def flood_loaded(page: Any, side: str | None = None) -> None:
    """Wait for the depth tiles of the main map (or of compare pane ``side``)."""
    page.wait_for_function(
        "(side) => { const deck = side ? twinScenarios.state.cmp && twinScenarios.state.cmp"
        ".decks[side] : window.Twin.viewer.deck; if (!deck || !deck.layerManager) return false;"
        " const p = side ? `cmp-${side}-whatif-flood-` : 'whatif-flood-'; "
        "return deck.layerManager.getLayers().some((x) => x.id.startsWith(p) && "
        "/^\\d+$/.test(x.id.slice(p.length)) && x.isLoaded); }",
        arg=side, timeout=30_000)


def test_save_rename_reopen_compare_share(device, saved_dem) -> None:  # noqa: ANN001
    v = device(1440, 900, phone=False)
    page = v.page
    v.sign_in(PLANNER, "/plan" + VIEW)
    v.idle()
    page.wait_for_selector("#saved-panel")
    # folded at first on a desktop (the right column would cover the map): unfold it
    toggle = page.locator("#saved-panel .panel-toggle")
    assert toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    id2 = run_flood(page, 2)
    id4 = run_flood(page, 4)
    items = page.locator("#saved-list li")
    top, second = items.nth(0), items.nth(1)  # newest first: 4 m, then 2 m
    assert top.get_attribute("data-id") == id4 and second.get_attribute("data-id") == id2
    assert "4 m" in top.inner_text() and "Lũ (mực nước)" in top.inner_text()
    assert "2 m" in second.inner_text() and "lan" in second.inner_text()
    assert id2 != id4
    headline = second.locator(".saved-headline").inner_text()
    assert "km² ngập" in headline and "công trình" in headline

    # rename the 2 m flood inline
    second.locator(".saved-rename-btn").click()
    field = page.locator(f"#saved-name-{id2}")
    field.fill("Lũ 2 m — mốc")
    field.press("Enter")
    page.wait_for_selector(f'#saved-list li[data-id="{id2}"] .saved-open:text("Lũ 2 m — mốc")')
    assert "Lũ 2 m — mốc" in page.inner_text("#saved-status")

    # delete needs a confirmation: cancel keeps it
    n = page.locator("#saved-list li").count()
    page.locator(f'#saved-list li[data-id="{id4}"] .saved-delete').click()
    page.locator(f'#saved-list li[data-id="{id4}"] .saved-no').click()
    assert page.locator("#saved-list li").count() == n
    v.check()

    # tomorrow: a fresh page, reopen the 2 m flood from the list
    fresh = _watch(page.context.new_page(), v.base)
    fresh.goto("/plan" + VIEW)
    fresh.page.click("#saved-panel .panel-toggle")
    fresh.page.wait_for_selector(f'#saved-list li[data-id="{id2}"]')
    before = rgb(fresh.shot("saved-before"))
    fresh.page.locator(f'#saved-list li[data-id="{id2}"] .saved-reopen').click()
    flood_loaded(fresh.page)
    fresh.idle()
    after = rgb(fresh.shot("saved-reopened"))
    assert flood_share(after) > flood_share(before) + 0.02, (flood_share(before),
                                                             flood_share(after))
    assert f"scenario={id2}" in fresh.page.url
    assert not fresh.page.is_hidden("#flood-counts")
    fresh.check()

    # compare the 2 m with the 4 m side by side
    for i in (id2, id4):
        fresh.page.locator(f"#saved-pick-{i}").check()
    fresh.page.click("#saved-compare")
    fresh.page.wait_for_selector("#compare-view:not([hidden]) #cmp-table tbody tr")
    for side in ("a", "b"):
        flood_loaded(fresh.page, side)
    fresh.idle()
    fresh.shot("saved-compare")
    shares = {side: flood_share(rgb(fresh.page.locator(f"#cmp-{side}").screenshot()))
              for side in ("a", "b")}
    assert shares["a"] > 0.03 and shares["b"] > shares["a"], shares  # 4 m floods further
    rows = fresh.page.locator("#cmp-table tbody tr")
    assert rows.count() >= 5
    level = fresh.page.locator('#cmp-table tr[data-key="water_level"]')
    assert level.locator("td.a").inner_text() == "2" and level.locator("td.b").inner_text() == "4"
    assert level.locator("td.diff").inner_text() == "+2"
    assert "Lũ 2 m — mốc" in fresh.page.inner_text("#cmp-a-name")
    assert f"compare={id2},{id4}" in fresh.page.url
    # one view: panning A moves B
    box = fresh.page.locator("#cmp-a").bounding_box()
    fresh.page.mouse.move(box["x"] + 300, box["y"] + 300)
    fresh.page.mouse.down()
    fresh.page.mouse.move(box["x"] + 200, box["y"] + 250, steps=5)
    fresh.page.mouse.up()
    views = fresh.page.evaluate("['a', 'b'].map((s) => twinScenarios.state.cmp.decks[s]"
                                ".getViewports()[0].longitude)")
    assert views[0] == pytest.approx(views[1]) and views[0] > CENTRE[0]
    fresh.page.click("#cmp-link")
    link = fresh.page.input_value("#saved-link")
    assert link.startswith(v.base + f"/plan?compare={id2},{id4}")
    fresh.check()

    # the share link in a new page opens the same comparison
    shared = _watch(page.context.new_page(), v.base)
    shared.goto(link.replace(v.base, ""))
    shared.page.wait_for_selector("#compare-view:not([hidden]) #cmp-table tbody tr")
    assert shared.page.locator("#cmp-table tbody tr").count() == rows.count()
    for side in ("a", "b"):
        flood_loaded(shared.page, side)
    shared.idle()
    shared.shot("saved-shared-compare")
    shared.page.click("#cmp-close")
    assert shared.page.is_hidden("#compare-view")
    shared.check()
    one = _watch(page.context.new_page(), v.base)
    one.goto(f"/plan?scenario={id2}" + VIEW)
    flood_loaded(one.page)
    assert "Lũ 2 m — mốc" in one.page.inner_text("#saved-status")

    # delete, confirmed
    assert one.page.get_attribute("#saved-panel .panel-toggle", "aria-expanded") == "true"
    one.check()
    page.locator(f'#saved-list li[data-id="{id4}"] .saved-delete').click()
    page.locator(f'#saved-list li[data-id="{id4}"] .saved-yes').click()
    page.wait_for_selector(f'#saved-list li[data-id="{id4}"]', state="detached")
    v.check()


def test_phone_compare_stacks(device, saved_dem) -> None:  # noqa: ANN001
    v = device(390, 844)
    page = v.page
    v.sign_in(PLANNER, "/plan" + VIEW)
    v.idle()
    ids = page.evaluate(
        "async () => { const out = []; for (const m of [2, 4]) { const r = await Twin.api("
        "'/scenarios/flood', {method: 'POST', headers: {'Content-Type': 'application/json'}, "
        "body: JSON.stringify({water_level_m: m, name: 'phone ' + m})}); out.push(r.id); } "
        "return out; }")
    v.goto(f"/plan?compare={ids[0]},{ids[1]}" + VIEW)
    page.wait_for_selector("#compare-view:not([hidden]) #cmp-table tbody tr")
    for side in ("a", "b"):
        flood_loaded(page, side)
    v.idle()
    v.shot("saved-compare-phone")
    a, b = (page.locator(f"#cmp-{s}").bounding_box() for s in ("a", "b"))
    assert b["y"] >= a["y"] + a["height"] - 1 and a["width"] > 380  # stacked, full width
    assert flood_share(rgb(page.locator("#cmp-b").screenshot())) > 0.03
    page.click("#cmp-close")
    assert page.is_hidden("#compare-view")
    v.check()
