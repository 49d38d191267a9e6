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
    ({"kind": "above", "threshold": 1, "clear_threshold": 2}, 400, "clears at or below"),
    ({"kind": "below", "threshold": 1, "clear_threshold": 0.5}, 400, "clears at or above"),
    ({"kind": "above", "threshold": 1, "hold_seconds": -60}, 400, "hold_seconds"),
    ({"kind": "above", "threshold": 1, "clear_seconds": -1}, 400, "clear_seconds"),
])
def test_bad_rules(env, body, code, words):
    client, net, staff = env
    r = client.post("/rules", headers=staff, json={"datastream_id": net.level, **body})
    assert r.status_code == code and words in r.text, r.text
    assert client.post("/rules", json={"datastream_id": net.level, **body}).status_code == 401


def test_rule_patch_hysteresis_and_messages_in_the_request_language(env, engine):
    client, net, staff = env
    r = client.post("/rules", headers=staff, json={
        "datastream_id": net.turbidity, "kind": "above", "threshold": 50.0,
        "name": "Turbid", "name_i18n": {"vi": "Nước đục", "en": "Turbid"}})
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    r = client.patch(f"/rules/{rid}", headers=staff, json={
        "clear_threshold": 40.0, "hold_seconds": 120, "clear_seconds": 60})
    assert r.status_code == 200 and r.json()["clear_seconds"] == 60, r.text
    assert client.patch(f"/rules/{rid}", headers=staff,
                        json={"clear_threshold": 60.0}).status_code == 400
    assert client.patch(f"/rules/{rid}", headers=staff, json={"kind": "below"}).status_code == 400
    assert client.patch("/rules/999999999", headers=staff,
                        json={"threshold": 3.0}).status_code == 404
    got = [x for x in client.get("/rules", headers=staff,
                                 params={"datastream": net.turbidity}).json()["rules"]
           if x["id"] == rid][0]
    assert (got["clear_threshold"], got["hold_seconds"]) == (40.0, 120)
    t0 = dt.datetime(2026, 6, 2, tzinfo=dt.UTC)
    put(engine, series(net.turbidity, [10, 70, 75], t0))  # 1 min over: held too briefly
    mine = lambda: [x for x in client.get("/alarms", headers=staff, params={  # noqa: E731
        "limit": 1000}).json()["alarms"] if x["rule_id"] == rid]
    assert mine() == []
    put(engine, series(net.turbidity, [80, 85], t0 + dt.timedelta(minutes=3)))
    (a,) = mine()
    vi = client.get(f"/alarms/{a['id']}", headers={**staff, "Accept-Language": "vi"}).json()
    en = client.get(f"/alarms/{a['id']}", headers=staff, params={"lang": "en"}).json()
    assert vi["message"] == vi["message_i18n"]["vi"] and en["message"] == en["message_i18n"]["en"]
    assert vi["message"] != en["message"] and vi["rule_name"] == "Nước đục"
    assert a["count"] == 1
