"""Sensor readings and alarms on the live stream (/live, Server-Sent Events)."""

import datetime as dt

from tests.server.helpers import token_for
from tests.server.test_live import SSEReader
from tests.twin.sensors_net import make_net, put, series
from twin.sensors import rules


def test_readings_and_alarms_reach_the_right_clients(live_server, engine, settings):
    from fastapi.testclient import TestClient

    from server.app import create_app

    net = make_net(engine)
    with TestClient(create_app(settings)) as tc:
        staff_headers = token_for(tc, engine, "responder")
    staff = SSEReader(live_server + "/live", staff_headers)
    public = SSEReader(live_server + "/live")
    for r in (staff, public):
        r.start()
        r.next("hello")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    put(engine, series(net.turbidity, [3.0], now))  # private plant: staff only
    put(engine, series(net.level, [1.25], now))
    _, _, s1 = staff.next("sensor")
    _, _, s2 = staff.next("sensor")
    assert {s1["things"][0]["id"], s2["things"][0]["id"]} == {net.plant, net.tower}
    _, _, p = public.next("sensor")
    (thing,) = p["things"]
    assert thing["id"] == net.tower and thing["state"] == "normal" and thing["value"] == 1.25
    assert thing["unit"] == "m" and "public" not in thing
    assert p["observations"][0]["datastream"] == net.level
    with engine.begin() as c:
        rules.add_rule(c, {"datastream_id": net.level, "kind": "above", "threshold": 2.0,
                           "severity": 4, "name": "flood mark"})
    put(engine, series(net.level, [2.5], now + dt.timedelta(minutes=1)))
    _, _, alarm = staff.next("alarm")
    assert alarm["action"] == "raised" and alarm["alarm"]["thing_id"] == net.tower
    assert alarm["alarm"]["severity"] == 4 and alarm["alarm"]["status"] == "open"
    _, _, p = public.next("sensor")
    assert p["things"][0]["state"] == "alarm"
    while not public.events.empty():
        assert public.events.get()[1] != "alarm"
    staff.stop = public.stop = True
