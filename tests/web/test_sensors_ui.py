"""Sensors in the browser: a reading chart on the public map, the alarm panel of /ops."""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.twin.sensors_net import LEVEL_UOM, put, series
from tests.web.conftest import PLANNER
from twin.sensors import gateways, write
from twin.sensors.rules import UPDATE_EVENT_S
from twin.sensors.values import MEASUREMENT

#: where the test sensors stand: open ground of the test city, away from buildings,
#: roads and facilities
CHART_AT = (108.2185, 16.0485)
ALARM_AT = (108.2240, 16.0560)
PRIVATE_AT = (108.2160, 16.0470)


@dataclass(frozen=True)
class Sensors:
    tag: str
    chart_ds: int  # public water level with six hours of readings
    alarm_thing: int
    alarm_ds: int  # public water level the /ops test raises alarms on
    private_ds: int  # a staff-only station's datastream
    key: str  # a gateway's API key


def _thing(conn: Any, name: str, at: tuple[float, float], public: bool, tag: str) -> int:
    sensor = write.create(conn, "Sensors", {"name": f"radar {name}", "encodingType": "text/html",
                                            "metadata": "https://example.org/radar"})
    prop = write.create(conn, "ObservedProperties", {"name": f"water level {name}",
                                                      "definition": "http://example.org/level"})
    props: dict[str, Any] = {"kind": "flood_tower"}
    if not public:
        props = {"kind": "water_quality", "public": False}
    return write.create(conn, "Things", {
        "name": name, "properties": props,
        "Locations": [{"name": f"at {name}", "encodingType": "application/geo+json",
                       "location": {"type": "Point", "coordinates": list(at)}}],
        "Datastreams": [{"name": f"mực nước {tag} {name}", "unitOfMeasurement": LEVEL_UOM,
                         "properties": {"name_i18n": {"vi": f"mực nước {tag}",
                                                      "en": f"water level {tag}"}},
                         "observationType": MEASUREMENT,
                         "Sensor": {"@iot.id": sensor}, "ObservedProperty": {"@iot.id": prop}}],
    })


def _datastream(conn: Any, thing: int) -> int:
    return int(conn.exec_driver_sql(
        "SELECT id FROM datastream WHERE thing_id = %(t)s", {"t": thing}).scalar_one())


@pytest.fixture(scope="module")
def sensors(web_engine: Any) -> Sensors:
    tag = uuid.uuid4().hex[:6]
    with web_engine.begin() as conn:
        chart = _thing(conn, f"Trạm Thử {tag}", CHART_AT, True, tag)
        alarm = _thing(conn, f"Tháp Báo {tag}", ALARM_AT, True, tag)
        private = _thing(conn, f"Nhà máy {tag}", PRIVATE_AT, False, tag)
        ids = [_datastream(conn, t) for t in (chart, alarm, private)]
        _, key = gateways.add(conn, f"gateway {tag}")
        gateways.adopt(conn, f"gateway {tag}", [chart, alarm, private])  # its key writes these
    # six hours of readings every 10 minutes, rising from 1.20 m to 1.85 m
    start = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(hours=6)
    values = [round(1.20 + 0.65 * k / 35, 3) for k in range(36)]
    put(web_engine, series(ids[0], values, start, dt.timedelta(minutes=10)))
    put(web_engine, series(ids[1], [1.0, 1.1], start, dt.timedelta(hours=1)))
    put(web_engine, series(ids[2], [4.0, 4.2], start, dt.timedelta(hours=1)))
    return Sensors(tag, ids[0], alarm, ids[1], ids[2], key)


def _post_reading(base: str, key: str, ds: int, value: float) -> None:
    r = httpx.post(f"{base}/sta/v1.1/Datastreams({ds})/Observations",
                   headers={"X-Api-Key": key},
                   json={"phenomenonTime": dt.datetime.now(dt.UTC).isoformat(), "result": value})
    assert r.status_code == 201, r.text


def _staff(base: str) -> dict[str, str]:
    r = httpx.post(base + "/auth/token", data={"username": PLANNER[0], "password": PLANNER[1]})
    r.raise_for_status()
    return {"Authorization": "Bearer " + r.json()["access_token"]}


POINT = re.compile(r"(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)")


def test_public_sensor_click_shows_its_readings_chart(visit, sensors):
    visit.goto(f"/#16/{CHART_AT[1]}/{CHART_AT[0]}/0/0")
    page = visit.page
    page.wait_for_function("window.Twin.live && window.Twin.live.connected")
    x, y = visit.project(*CHART_AT)
    page.wait_for_function(
        "([x, y]) => (twinViewer.pickAt(x, y) || {}).layer === 'sensors'", arg=[x, y])
    page.mouse.click(x, y)
    page.wait_for_selector("#info-panel:not([hidden]) #sensor-chart svg path.avg")

    # the average line: one point per 15-minute bucket, rising like the readings
    chart = page.locator("#sensor-chart svg")
    assert chart.get_attribute("role") == "img"
    points = [(float(a), float(b))
              for a, b in POINT.findall(page.get_attribute("#sensor-chart path.avg", "d") or "")]
    assert len(points) >= 20, points
    assert points == sorted(points), "the line runs left to right in time"
    assert points[-1][1] < points[0][1], "the rising level is drawn rising"
    assert page.locator("#sensor-chart path.band").count() == 1
    label = chart.get_attribute("aria-label") or ""
    assert "Mới nhất 1,85 m" in label, label
    assert "thấp nhất 1,2 m" in label and "cao nhất 1,85 m" in label, label
    assert "24 giờ qua" in label
    assert page.locator("#sensor-chart table tbody tr").count() == len(points)
    assert "1,85 m" in page.inner_text("#sensor-chart .sensor-chart-summary")

    # a new reading arrives on /live: the chart is drawn again with it
    _post_reading(visit.base, sensors.key, sensors.chart_ds, 2.05)
    page.wait_for_function(
        "(document.querySelector('#sensor-chart svg') || {getAttribute: () => ''})"
        ".getAttribute('aria-label').includes('Mới nhất 2,05 m')", timeout=15_000)
    # … and the attribute panel's latest value follows
    page.wait_for_function("document.querySelector('#info-body [data-prop=last_value] dd')"
                           ".textContent.replace(',', '.').startsWith('2.05')")
    # the heading names the thing and its datastream in the page's language
    tag = sensors.tag
    assert page.inner_text("#sensor-chart-h").endswith(f"Trạm Thử {tag} · mực nước {tag}")
    page.click("button[data-lang=en]")
    label = page.get_attribute("#sensor-chart svg", "aria-label") or ""
    assert "Latest 2.05 m" in label and "max 2.05 m" in label, label
    assert f"Trạm Thử {tag} · water level {tag}" in label, label
    heading = page.inner_text("#sensor-chart-h")
    assert heading == f"Recent readings · Trạm Thử {tag} · water level {tag}", heading
    visit.idle()
    page.locator("#sensor-chart").scroll_into_view_if_needed()
    visit.shot("sensor-chart")

    # the public may chart public sensors only; a building click takes the chart away
    api = page.request
    agg = "/sta/v1.1/Datastreams({})/Observations/aggregate?interval=15min"
    assert api.get(visit.base + agg.format(sensors.chart_ds)).status == 200
    assert api.get(visit.base + agg.format(sensors.private_ds)).status == 404
    page.click("#info-close")
    assert page.locator("#sensor-chart").is_hidden()
    visit.check()


def test_ops_alarm_panel_follows_alarms_live(visit, live_server, sensors):
    visit.sign_in(PLANNER, f"/ops#15/{ALARM_AT[1]}/{ALARM_AT[0] - 0.004}/0/0")
    visit.idle()
    page = visit.page
    page.wait_for_function("window.Twin.live && window.Twin.live.connected")
    page.wait_for_selector("#alarm-count:not(:empty)")
    staff = _staff(live_server)
    rules = {}
    for name, threshold, severity, incident in (("Mốc báo động 3 m", 3.0, 4, True),
                                                ("Mốc chú ý 2,5 m", 2.5, 2, False)):
        r = httpx.post(live_server + "/rules", headers=staff, json={
            "datastream_id": sensors.alarm_ds, "kind": "above", "threshold": threshold,
            "severity": severity, "name": name, "opens_incident": incident})
        assert r.status_code == 201, r.text
        rules[severity] = r.json()["id"]
    loads = sum("/alarms?" in u for u in visit.requests)

    # a gateway reports 3.4 m: both rules fire while the page is open
    _post_reading(live_server, sensors.key, sensors.alarm_ds, 3.4)
    found = httpx.get(live_server + "/alarms", headers=staff,
                      params={"thing": sensors.alarm_thing}).json()["alarms"]
    by_rule = {a["rule_id"]: a for a in found}
    high, low = by_rule[rules[4]], by_rule[rules[2]]
    assert high["incident_id"], high
    item = page.locator(f'#alarm-list li[data-id="{high["id"]}"]')
    item.wait_for(timeout=15_000)
    page.locator(f'#alarm-list li[data-id="{low["id"]}"]').wait_for(timeout=15_000)
    assert sum("/alarms?" in u for u in visit.requests) == loads, "the list was reloaded"
    # most severe first; name, rule, value with its unit, severity, state, assignee
    assert page.locator("#alarm-list li").first.get_attribute("data-id") == str(high["id"])
    page.wait_for_function(
        f"document.querySelector('#alarm-list li[data-id=\"{high['id']}\"]')"
        ".innerText.includes('3,4 m')")
    text = item.inner_text()
    for words in (f"Tháp Báo {sensors.tag}", "Mốc báo động 3 m", "mức 4", "mới", "chưa giao"):
        assert words in text, (words, text)

    # acknowledge, then take it: the state changes in place
    item.locator("button[data-action=acknowledge]").click()
    page.wait_for_selector(f'#alarm-list li[data-id="{high["id"]}"][data-status=acknowledged]')
    assert item.locator("button[data-action=acknowledge]").is_disabled()
    assert "đã xác nhận" in item.inner_text()
    assert httpx.get(f"{live_server}/alarms/{high['id']}",
                     headers=staff).json()["acknowledged_by"] == PLANNER[0]
    item.locator("button[data-action=assign]").click()
    page.wait_for_function(
        f"document.querySelector('#alarm-list li[data-id=\"{high['id']}\"]')"
        f".innerText.includes('giao cho {PLANNER[0]}')")

    # the incident the alarm opened is selected in the incident list
    item.locator("button[data-action=incident]").click()
    page.wait_for_selector("#incident-panel:not([hidden])")
    assert page.evaluate("twinOps.selected") == high["incident_id"]
    assert "Mốc báo động 3 m" in page.inner_text("#inc-h")

    # choosing the alarm (from the keyboard) flies to the sensor and charts it
    item.locator("button.alarm").focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "(c) => { const v = twinViewer.getViewState();"
        " return Math.abs(v.longitude - c[0]) < 0.001 && Math.abs(v.latitude - c[1]) < 0.001; }",
        arg=list(ALARM_AT), timeout=20_000)
    page.wait_for_selector("#info-panel:not([hidden]) #sensor-chart svg path.avg")
    assert "3,4 m" in (page.get_attribute("#sensor-chart svg", "aria-label") or "")
    assert item.locator("button.alarm").get_attribute("aria-current") == "true"
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.alarm") == str(low["id"])
    visit.idle()
    visit.shot("ops-alarms")

    # clearing takes the alarm off the list
    page.locator(f'#alarm-list li[data-id="{low["id"]}"] button[data-action=clear]').click()
    page.locator(f'#alarm-list li[data-id="{low["id"]}"]').wait_for(state="detached")
    assert httpx.get(f"{live_server}/alarms/{low['id']}", headers=staff).json()["status"] \
        == "cleared"
    visit.check()


def test_ops_alarm_console_hold_and_frozen_order(visit, live_server, sensors):
    """A crossing shorter than its rule's duration is not raised; the list keeps its order
    while the pointer is over it and re-sorts after; the crossings count is shown."""
    visit.sign_in(PLANNER, f"/ops#15/{ALARM_AT[1]}/{ALARM_AT[0] - 0.004}/0/0")
    visit.idle()
    page = visit.page
    page.wait_for_function("window.Twin.live && window.Twin.live.connected")
    page.wait_for_selector("#alarm-count:not(:empty)")
    staff = _staff(live_server)

    def rule(**kw):
        r = httpx.post(live_server + "/rules", headers=staff, json={
            "datastream_id": sensors.alarm_ds, "kind": "above", **kw})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    held = rule(threshold=3.45, severity=3, hold_seconds=600, name="Giữ 10 phút")
    plain = rule(threshold=3.45, severity=1, clear_threshold=0.5, name="Mốc 1 m")
    _post_reading(live_server, sensors.key, sensors.alarm_ds, 3.5)  # earlier ones ≤ 3.4
    mine = {a["rule_id"]: a for a in httpx.get(live_server + "/alarms", headers=staff, params={
        "thing": sensors.alarm_thing}).json()["alarms"]}
    assert plain in mine and held not in mine
    page.locator(f'#alarm-list li[data-id="{mine[plain]["id"]}"]').wait_for(timeout=15_000)
    assert "Giữ 10 phút" not in page.inner_text("#alarm-list")

    # the pointer over the list: a new, more severe alarm does not jump to the top
    page.hover(f'#alarm-list li[data-id="{mine[plain]["id"]}"] button.alarm')
    assert page.evaluate("twinAlarms.frozen()")
    top = rule(threshold=3.45, severity=5, name="Mốc khẩn 1 m")
    _post_reading(live_server, sensors.key, sensors.alarm_ds, 3.55)
    new = [a for a in httpx.get(live_server + "/alarms", headers=staff, params={
        "thing": sensors.alarm_thing}).json()["alarms"] if a["rule_id"] == top][0]
    page.locator(f'#alarm-list li[data-id="{new["id"]}"]').wait_for(timeout=15_000)
    assert page.locator("#alarm-list li").last.get_attribute("data-id") == str(new["id"])
    box = page.locator("#alarm-list").bounding_box()
    assert box is not None
    off = box["x"] - 60 if box["x"] > 200 else box["x"] + box["width"] + 60
    page.mouse.move(off, box["y"] + 20)  # off the list: it re-sorts, most severe first
    page.wait_for_function(
        f"document.querySelector('#alarm-list li').dataset.id === '{new['id']}'",
        timeout=10_000)
    # back inside the band and over again: one alarm, its count shown
    _post_reading(live_server, sensors.key, sensors.alarm_ds, 0.8)
    time.sleep(UPDATE_EVENT_S + 1)  # update events of one alarm: at most every 5 s
    _post_reading(live_server, sensors.key, sensors.alarm_ds, 3.6)
    p = mine[plain]["id"]
    page.wait_for_selector(f'#alarm-list li[data-id="{p}"][data-count="2"]', timeout=20_000)
    assert "2 lần vượt ngưỡng" in page.inner_text(f'#alarm-list li[data-id="{p}"]')
    visit.idle()
    visit.shot("ops-alarms-grouped")
    visit.check()
