"""SensorThings writes: deep insert, update, delete, gateways (scoped to what they own),
CreateObservations and bad payloads (clear 4xx, nothing written)."""

import datetime as dt

import orjson
import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from tests.conftest import count
from tests.server.helpers import token_for
from tests.twin.sensors_net import LEVEL_UOM, make_net
from twin.sensors import gateways
from twin.sensors.values import MEASUREMENT

STA = "/sta/v1.1"


@pytest.fixture(scope="module")
def env(settings, engine):
    net = make_net(engine)
    with engine.begin() as c:
        _, key = gateways.add(c, f"gw-{net.tag}")
        gateways.adopt(c, f"gw-{net.tag}", [net.tower, net.plant])
    with TestClient(create_app(settings)) as client:
        yield client, net, token_for(client, engine, "responder"), {"X-Api-Key": key}


def _thing(tag):
    return {
        "name": f"Rain gauge {tag}", "description": "tipping bucket",
        "properties": {"kind": "rain_gauge"},
        "Locations": [{"name": f"Hòa Bắc {tag}", "encodingType": "application/geo+json",
                       "location": {"type": "Point", "coordinates": [108.05, 16.13]}}],
        "Datastreams": [{
            "name": f"rain {tag}", "unitOfMeasurement": LEVEL_UOM, "observationType": MEASUREMENT,
            "Sensor": {"name": "bucket", "encodingType": "text/html", "metadata": "-"},
            "ObservedProperty": {"name": "rain", "definition": "http://example.org/rain"},
            "Observations": [{"phenomenonTime": "2026-04-01T00:00:00Z", "result": 1.5}]}]}


def test_deep_insert_update_delete(env, engine):
    client, net, staff, _ = env
    r = client.post(f"{STA}/Things", json=_thing(net.tag), headers=staff)
    assert r.status_code == 201, r.text
    tid = r.json()["@iot.id"]
    assert r.headers["location"].endswith(f"/Things({tid})")
    t = client.get(f"{STA}/Things({tid})", params={
        "$expand": "Locations,HistoricalLocations,Datastreams($expand=Observations)"}).json()
    assert t["Locations"][0]["location"]["coordinates"] == [108.05, 16.13]
    assert len(t["HistoricalLocations"]) == 1
    ds = t["Datastreams"][0]
    assert ds["Observations"][0]["result"] == 1.5
    r = client.patch(f"{STA}/Things({tid})", json={"name": "Renamed", "properties": {
        "kind": "rain_gauge", "public": False}}, headers=staff)
    assert r.status_code == 200 and r.json()["name"] == "Renamed"
    assert client.get(f"{STA}/Things({tid})").status_code == 404  # now private
    r = client.patch(f"{STA}/Datastreams({ds['@iot.id']})", json={"unitOfMeasurement": {
        "name": "millimetre", "symbol": "mm", "definition": "x"}}, headers=staff)
    assert r.json()["unitOfMeasurement"]["symbol"] == "mm"
    oid = ds["Observations"][0]["@iot.id"]
    r = client.patch(f"{STA}/Observations({oid})", json={"result": 2.5}, headers=staff)
    assert r.status_code == 200 and r.json()["result"] == 2.5
    r = client.patch(f"{STA}/Observations({oid})", json={"result": "lots"}, headers=staff)
    assert r.status_code == 400 and "must be a number" in r.text
    assert client.delete(f"{STA}/Things({tid})", headers=staff).status_code == 200
    for path in (f"Things({tid})", f"Datastreams({ds['@iot.id']})", f"Observations({oid})"):
        assert client.get(f"{STA}/{path}", headers=staff).status_code == 404


def test_observation_posts_are_idempotent_and_link_to_their_datastream(env, engine):
    client, net, _, gw = env
    obs = {"phenomenonTime": "2026-04-02T00:00:00+07:00", "result": 0.75,
           "resultQuality": {"flag": "ok"}, "parameters": {"battery": 3.6}}
    r1 = client.post(f"{STA}/Datastreams({net.level})/Observations", json=obs, headers=gw)
    r2 = client.post(f"{STA}/Datastreams({net.level})/Observations", json=obs, headers=gw)
    assert r1.status_code == r2.status_code == 201
    assert r1.json()["@iot.id"] == r2.json()["@iot.id"]
    assert r1.json()["phenomenonTime"] == "2026-04-01T17:00:00Z"
    assert r1.json()["parameters"] == {"battery": 3.6}
    r3 = client.post(f"{STA}/Observations", headers=gw, json={
        "result": 1.25, "phenomenonTime": "2026-04-02T01:00:00Z",
        "Datastream": {"@iot.id": net.level},
        "FeatureOfInterest": {"name": "bank", "encodingType": "application/geo+json",
                              "feature": {"type": "Point", "coordinates": [108.2, 16.0]}}})
    assert r3.status_code == 201, r3.text
    foi = client.get(f"{STA}/Observations({r3.json()['@iot.id']})/FeatureOfInterest").json()
    assert foi["name"] == "bank"


@pytest.mark.parametrize("headers, code", [({}, 401), ({"X-Api-Key": "twk_nope"}, 401),
                                           ({"Authorization": "Bearer bad"}, 401)])
def test_writes_need_staff_or_a_gateway(env, headers, code):
    client, net, _, _ = env
    r = client.post(f"{STA}/Datastreams({net.level})/Observations", headers=headers,
                    json={"result": 1.0})
    assert r.status_code == code


def test_citizens_cannot_write(env, engine):
    client, net, _, _ = env
    citizen = token_for(client, engine, "citizen")
    r = client.post(f"{STA}/Things", json={"name": "x"}, headers=citizen)
    assert r.status_code == 403


def _batch(ds, start, values):
    return {"Datastream": {"@iot.id": ds}, "components": ["phenomenonTime", "result"],
            "dataArray@iot.count": len(values),
            "dataArray": [[(start + dt.timedelta(seconds=k)).isoformat(), v]
                          for k, v in enumerate(values)]}


def test_create_observations_resend_changes_nothing(env, engine):
    client, net, _, gw = env
    t = dt.datetime(2026, 4, 3, tzinfo=dt.UTC)
    body = [_batch(net.level, t, [0.1 * k for k in range(300)]),
            _batch(net.count, t, list(range(200)))]
    where = f"datastream_id IN ({net.level}, {net.count}) AND phenomenon_time >= '{t}'"
    r = client.post(f"{STA}/CreateObservations", json=body, headers=gw)
    assert r.status_code == 201
    links = r.json()
    assert len(links) == 500 and links[0].startswith("http") and "/Observations(" in links[0]
    assert count(engine, "observation", where) == 500
    again = client.post(f"{STA}/CreateObservations", json=body, headers=gw)
    assert again.status_code == 201 and again.json() == links
    assert count(engine, "observation", where) == 500


@pytest.mark.parametrize("payload, code, words", [
    (b"[{\"Datastream\": {\"@iot.id\": 1}, \"components\": [", 400, "malformed JSON"),
    (b"{\"Datastream\": 1}", 400, "JSON array"),
    ("wrong_type", 400, "must be a number"),
    ("unknown_ds", 400, "unknown Datastream"),
    ("bad_time", 400, "not an ISO 8601 time"),
    ("oversize", 413, "exceeds the limit of 50000"),
])
def test_bad_batches_write_nothing(env, engine, payload, code, words):
    client, net, _, gw = env
    t = dt.datetime(2026, 4, 4, tzinfo=dt.UTC)
    good = _batch(net.level, t, [1.0, 2.0, 3.0])
    bodies = {
        "wrong_type": [good, _batch(net.level, t + dt.timedelta(hours=1), [1.0, "2.0"])],
        "unknown_ds": [good, _batch(987_654_321, t, [1.0])],
        "bad_time": [good, {**_batch(net.level, t, [1.0]),
                            "dataArray": [["yesterday", 1.0]]}],
        "oversize": [_batch(net.level, t, [1.0] * 50_001)],
    }
    raw = payload if isinstance(payload, bytes) else orjson.dumps(bodies[payload])
    before = count(engine, "observation")
    r = client.post(f"{STA}/CreateObservations", content=raw,
                    headers={**gw, "Content-Type": "application/json"})
    assert r.status_code == code and words in r.text, r.text
    assert count(engine, "observation") == before


@pytest.mark.parametrize("body, words", [
    ({"name": "x", "colour": "red"}, "unknown field(s) colour"),
    ({"description": "no name"}, "name is required"),
    ({"name": "x", "Locations": [{"name": "l", "encodingType": "application/geo+json",
                                  "location": {"type": "Point", "coordinates": [500, 1]}}]},
     "outside lon"),
    ({"name": "x", "properties": {"public": "yes"}}, "true or false"),
])
def test_bad_entities_are_refused_whole(env, engine, body, words):
    client, _, staff, _ = env
    before = count(engine, "thing")
    r = client.post(f"{STA}/Things", json=body, headers=staff)
    assert r.status_code == 400 and words in r.text, r.text
    assert count(engine, "thing") == before


def test_gateway_keys_are_scoped_to_what_the_gateway_owns(env, engine):
    client, net, staff, gw = env
    other = make_net(engine)  # owned by no gateway
    private = other.plant
    before = count(engine, "observation")
    # another's entities: 403, nothing changed
    r = client.patch(f"{STA}/Things({private})", json={"properties": {"public": True}},
                     headers=gw)
    assert r.status_code == 403 and "does not own" in r.text
    assert client.get(f"{STA}/Things({private})").status_code == 404  # still private
    assert client.delete(f"{STA}/Datastreams({other.level})", headers=gw).status_code == 403
    assert client.delete(f"{STA}/Things({other.tower})", headers=gw).status_code == 403
    assert client.get(f"{STA}/Datastreams({other.level})").status_code == 200
    assert client.patch(f"{STA}/Sensors({net.sensor})", json={"name": "x"},
                        headers=gw).status_code == 403  # shared entities
    obs = {"phenomenonTime": "2026-04-05T00:00:00Z", "result": 99.0}
    assert client.post(f"{STA}/Datastreams({other.level})/Observations", json=obs,
                       headers=gw).status_code == 403
    assert client.post(f"{STA}/Observations", json={**obs, "Datastream": {
        "@iot.id": other.level}}, headers=gw).status_code == 403
    r = client.post(f"{STA}/CreateObservations", headers=gw, json=[
        _batch(net.level, dt.datetime(2026, 4, 5, tzinfo=dt.UTC), [1.0]),
        _batch(other.level, dt.datetime(2026, 4, 5, tzinfo=dt.UTC), [99.0])])
    assert r.status_code == 403 and str(other.level) in r.text
    assert count(engine, "observation") == before  # nothing stored, not even its own
    r = client.post(f"{STA}/Datastreams", headers=gw, json={
        "name": "sneaky", "unitOfMeasurement": LEVEL_UOM, "observationType": MEASUREMENT,
        "Thing": {"@iot.id": other.tower}, "Sensor": {"@iot.id": net.sensor},
        "ObservedProperty": {"@iot.id": net.prop}})
    assert r.status_code == 403
    r = client.post(f"{STA}/Things({other.tower})/Locations", headers=gw, json={
        "name": "moved", "encodingType": "application/geo+json",
        "location": {"type": "Point", "coordinates": [108.2, 16.0]}})
    assert r.status_code == 403
    # a Thing it creates is its own: it may change and delete it, staff see who owns it
    r = client.post(f"{STA}/Things", json=_thing(f"gw{net.tag}"), headers=gw)
    assert r.status_code == 201, r.text
    tid = r.json()["@iot.id"]
    assert r.json()["properties"]["gateway"] == f"gw-{net.tag}"
    r = client.patch(f"{STA}/Things({tid})", json={"properties": {"public": False}}, headers=gw)
    assert r.status_code == 200
    props = client.get(f"{STA}/Things({tid})", headers=staff).json()["properties"]
    assert props["gateway"] == f"gw-{net.tag}" and props["public"] is False  # still its own
    ds = client.get(f"{STA}/Things({tid})/Datastreams", headers=staff).json()["value"][0]
    r = client.post(f"{STA}/Datastreams({ds['@iot.id']})/Observations", json=obs, headers=gw)
    assert r.status_code == 201
    assert client.delete(f"{STA}/Things({tid})", headers=gw).status_code == 200
    # staff may still do anything
    assert client.patch(f"{STA}/Things({other.tower})", json={"name": "staff edit"},
                        headers=staff).status_code == 200
