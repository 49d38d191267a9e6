"""The staff alarm console API: rules, list (with the no-signal sweep), ack, assign, clear."""

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from tests.server.helpers import token_for
from tests.twin.sensors_net import make_net, put, series


@pytest.fixture(scope="module")
def env(settings, engine):
    net = make_net(engine)
    with TestClient(create_app(settings)) as client:
        yield client, net, token_for(client, engine, "responder")


def test_alarm_lifecycle_over_http(env, engine):
    client, net, staff = env
    assert client.get("/alarms").status_code == 401
    r = client.post("/rules", headers=staff, json={
        "datastream_id": net.level, "kind": "above", "threshold": 2.0, "severity": 4,
        "name": "Flood mark", "opens_incident": True})
    assert r.status_code == 201, r.text
    rule = r.json()
    put(engine, series(net.level, [2.4], dt.datetime(2026, 6, 1, tzinfo=dt.UTC)))
    alarms = client.get("/alarms", headers=staff, params={"thing": net.tower}).json()["alarms"]
    (a,) = [x for x in alarms if x["rule_id"] == rule["id"]]
    assert a["status"] == "open" and a["severity"] == 4 and a["incident_id"]
    assert a["thing_name"] == f"Tower {net.tag}" and a["geometry"]["type"] == "Point"
    aid = a["id"]
    r = client.post(f"/alarms/{aid}/acknowledge", headers=staff)
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    assert client.post(f"/alarms/{aid}/acknowledge", headers=staff).status_code == 409
    r = client.post(f"/alarms/{aid}/assign", headers=staff, json={"assignee": "Team 3"})
    assert r.json()["assignee"] == "Team 3"
    r = client.post(f"/alarms/{aid}/clear", headers=staff, json={"note": "water receding"})
    assert r.json()["status"] == "cleared"
    active = client.get("/alarms", headers=staff, params={"thing": net.tower}).json()["alarms"]
    assert aid not in [x["id"] for x in active]
    everything = client.get("/alarms", headers=staff, params={"thing": net.tower,
                                                              "status": "all"}).json()
    assert aid in [x["id"] for x in everything["alarms"]]
    assert client.get(f"/alarms/{aid}", headers=staff).json()["cleared_by"].startswith(
        "responder")
    assert client.get("/alarms/999999999", headers=staff).status_code == 404


def test_listing_runs_the_no_signal_sweep(env, engine):
    client, net, staff = env
    r = client.post("/rules", headers=staff, json={
        "datastream_id": net.count, "kind": "no_signal", "no_signal_minutes": 1})
    assert r.status_code == 201
    put(engine, series(net.count, [5], dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)))
    import server.routes.alarms as mod

    mod._last_sweep = 0.0
    alarms = client.get("/alarms", headers=staff, params={"thing": net.tower}).json()["alarms"]
    assert any(a["kind"] == "no_signal" and a["datastream_id"] == net.count for a in alarms)


@pytest.mark.parametrize("body, code, words", [
    ({"kind": "sideways", "threshold": 1}, 400, "rule kind must be one of"),
    ({"kind": "above"}, 400, "numeric threshold"),
    ({"kind": "above", "threshold": 1, "severity": 9}, 400, "severity"),
    ({"kind": "rate", "threshold": 0}, 400, "rising"),
    ({"kind": "above", "threshold": 1, "colour": "red"}, 400, "unknown rule field"),
])
def test_bad_rules(env, body, code, words):
    client, net, staff = env
    r = client.post("/rules", headers=staff, json={"datastream_id": net.level, **body})
    assert r.status_code == code and words in r.text, r.text
    assert client.post("/rules", json={"datastream_id": net.level, **body}).status_code == 401
