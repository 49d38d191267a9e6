"""SensorThings reads against known data: paths, options, filters, access, aggregation."""

import datetime as dt
import math
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from tests.server.helpers import token_for
from tests.twin.sensors_net import T0, make_net, put, series

LEVELS = [round(k * 0.1, 1) for k in range(50)]  # one a minute from T0
BOX = "POLYGON((108.2 16.0, 108.25 16.0, 108.25 16.1, 108.2 16.1, 108.2 16.0))"


@pytest.fixture(scope="module")
def env(settings, engine):
    net = make_net(engine)
    put(engine, series(net.level, LEVELS))
    put(engine, series(net.count, list(range(10))))
    put(engine, series(net.turbidity, [1.0, 2.0, 3.0, 4.0, 5.0]))
    with TestClient(create_app(settings)) as client:
        yield client, net, token_for(client, engine, "responder")


def get(client, path, headers=None, **params):
    r = client.get("/sta/v1.1/" + path, params=params, headers=headers or {})
    assert r.status_code == 200, r.text
    return r.json()


def results(page):
    return [o["result"] for o in page["value"]]


def test_service_root(env):
    client, _, _ = env
    root = get(client, "")
    assert [v["name"] for v in root["value"]][:2] == ["Things", "Locations"]
    assert any("create-observations-via-mqtt" in c
               for c in root["serverSettings"]["conformance"])


def test_latest_readings_top_orderby_and_paging(env):
    client, net, _ = env
    page = get(client, f"Datastreams({net.level})/Observations", **{
        "$top": "5", "$orderby": "phenomenonTime desc"})
    assert results(page) == [4.9, 4.8, 4.7, 4.6, 4.5]
    first = page["value"][0]
    assert first["phenomenonTime"] == "2026-03-01T00:49:00Z"
    assert first["@iot.selfLink"].endswith(f"/Observations({first['@iot.id']})")
    assert first["Datastream@iot.navigationLink"].endswith("/Datastream")
    nxt = page["@iot.nextLink"]
    assert "%24skip=5" in nxt or "$skip=5" in nxt
    page2 = client.get(nxt).json()
    assert results(page2) == [4.4, 4.3, 4.2, 4.1, 4.0]
    last = get(client, f"Datastreams({net.level})/Observations", **{
        "$skip": "45", "$count": "true"})
    assert last["@iot.count"] == 50 and results(last) == [4.5, 4.6, 4.7, 4.8, 4.9]
    assert "@iot.nextLink" not in last


def test_select(env):
    client, net, _ = env
    page = get(client, f"Datastreams({net.level})/Observations", **{
        "$top": "2", "$select": "result,phenomenonTime"})
    assert page["value"] == [{"result": 0.0, "phenomenonTime": "2026-03-01T00:00:00Z"},
                             {"result": 0.1, "phenomenonTime": "2026-03-01T00:01:00Z"}]
    counts = get(client, f"Datastreams({net.count})/Observations", **{"$select": "id,result"})
    assert results(counts) == list(range(10)) and "@iot.id" in counts["value"][0]


@pytest.mark.parametrize("flt, expected", [
    ("result gt 4.5", [4.6, 4.7, 4.8, 4.9]),
    ("result ge 1 and result le 1.3", [1.0, 1.1, 1.2, 1.3]),
    ("phenomenonTime ge 2026-03-01T00:46:00Z", [4.6, 4.7, 4.8, 4.9]),
    ("phenomenonTime lt 2026-03-01T07:02:00+07:00", [0.0, 0.1]),
    ("round(result mul 10) mod 7 eq 0", [0.0, 0.7, 1.4, 2.1, 2.8, 3.5, 4.2, 4.9]),
    ("not (result lt 4.7) or result eq 0", [0.0, 4.7, 4.8, 4.9]),
    ("result sub 4 div 2 gt 2.9", [4.9]),
    ("-result gt -0.2", [0.0, 0.1]),
    ("year(phenomenonTime) eq 2026 and minute(phenomenonTime) eq 3", [0.3]),
    ("Datastream/Thing/properties/owner eq 'DONRE' and result eq 2.5", [2.5]),
])
def test_filter_observations(env, flt, expected):
    client, net, _ = env
    page = get(client, "Observations", **{
        "$filter": f"Datastream/id eq {net.level} and ({flt})", "$orderby": "result"})
    assert results(page) == expected


def test_filter_things_strings_json_and_geo(env):
    client, net, _ = env
    tag = net.tag
    name = f"Tower {tag}"
    for flt in (
        f"substringof('{tag}', name)", f"contains(name, '{tag}')",
        f"startswith(name, 'Tower ') and endswith(name, '{tag}')",
        f"tolower(name) eq 'tower {tag}'", f"toupper(name) eq 'TOWER {tag.upper()}'",
        f"length(name) eq {len(name)} and contains(name, '{tag}')",
        f"indexof(name, '{tag}') eq 6",
        f"substring(name, 6) eq '{tag}'", f"substring(name, 0, 5) eq 'Tower' and "
        f"contains(name, '{tag}')",
        f"concat(concat(name, '/'), 'x') eq '{name}/x'", f"trim(concat(' ', name)) eq '{name}'",
        f"properties/owner eq 'DONRE' and properties/height gt 10 and contains(name, '{tag}')",
        f"properties/kind eq 'flood_tower' and contains(name, '{tag}')",
        f"Datastreams/name eq 'level {tag}'",
        "geo.distance(Locations/location, geography'POINT(108.2270 16.0612)') lt 5 and "
        f"contains(name, '{tag}')",
        f"st_within(Locations/location, geography'{BOX}') and contains(name, '{tag}')",
    ):
        page = get(client, "Things", **{"$filter": flt})
        assert [t["name"] for t in page["value"]] == [name], flt


def test_filter_locations_geo(env):
    client, net, _ = env
    page = get(client, "Locations", **{
        "$filter": f"geo.intersects(location, geography'{BOX}') and "
                   f"endswith(name, '{net.tag}')"})
    assert [x["name"] for x in page["value"]] == [f"Dragon Bridge {net.tag}"]
    far = get(client, "Locations", **{
        "$filter": "geo.distance(location, geography'POINT(108.0 15.0)') lt 1000"})
    assert far["value"] == []


def test_datastream_phenomenon_time_is_an_interval(env):
    client, net, _ = env
    ds = get(client, f"Datastreams({net.level})")
    assert ds["phenomenonTime"] == "2026-03-01T00:00:00Z/2026-03-01T00:49:00Z"
    hit = get(client, "Datastreams", **{
        "$filter": f"Thing/id eq {net.tower} and phenomenonTime ge 2026-03-01T00:00:00Z "
                   "and phenomenonTime lt 2026-03-01T00:50:00Z"})
    assert {d["@iot.id"] for d in hit["value"]} == {net.level, net.count}


def test_nested_expand(env):
    client, net, _ = env
    thing = get(client, f"Things({net.tower})", **{
        "$expand": "Datastreams($orderby=id;$select=id,name;$expand=Observations("
                   "$top=3;$orderby=phenomenonTime desc;$select=result)),Locations"})
    level, count = thing["Datastreams"]
    assert level["name"] == f"level {net.tag}" and set(level) >= {"@iot.id", "name"}
    assert level["Observations"] == [{"result": 4.9}, {"result": 4.8}, {"result": 4.7}]
    assert "Observations@iot.nextLink" in level
    assert [o["result"] for o in count["Observations"]] == [9, 8, 7]
    assert thing["Locations"][0]["location"]["coordinates"] == [108.227, 16.0612]
    path_style = get(client, "Things", **{
        "$filter": f"id eq {net.tower}", "$expand": "Datastreams/ObservedProperty,"
                                                    "Datastreams/Sensor"})
    d0 = path_style["value"][0]["Datastreams"][0]
    assert d0["ObservedProperty"]["@iot.id"] == net.prop and d0["Sensor"]["@iot.id"] == net.sensor
    counted = get(client, f"Datastreams({net.level})", **{
        "$expand": "Observations($filter=result ge 4;$count=true;$top=1)"})
    assert counted["Observations@iot.count"] == 10 and len(counted["Observations"]) == 1


def test_navigation_property_value_and_ref(env):
    client, net, _ = env
    oid = get(client, f"Datastreams({net.level})/Observations", **{"$top": "1"})["value"][0][
        "@iot.id"]
    assert get(client, f"Observations({oid})/Datastream")["@iot.id"] == net.level
    assert get(client, f"Observations({oid})/Datastream/Thing")["@iot.id"] == net.tower
    assert get(client, f"Observations({oid})/FeatureOfInterest")["feature"]["type"] == "Point"
    assert get(client, f"Things({net.tower})/name") == {"name": f"Tower {net.tag}"}
    r = client.get(f"/sta/v1.1/Things({net.tower})/name/$value")
    assert r.status_code == 200 and r.text == f"Tower {net.tag}"
    refs = get(client, f"Things({net.tower})/Datastreams/$ref")
    assert all(set(v) == {"@iot.selfLink"} for v in refs["value"]) and len(refs["value"]) == 2
    hist = get(client, f"Things({net.tower})/HistoricalLocations", **{"$expand": "Locations"})
    assert hist["value"][0]["Locations"][0]["name"] == f"Dragon Bridge {net.tag}"
    assert get(client, f"Locations({hist['value'][0]['Locations'][0]['@iot.id']})/Things")[
        "value"][0]["@iot.id"] == net.tower


def test_private_things_are_hidden_from_the_public(env):
    client, net, staff = env
    for path in (f"Things({net.plant})", f"Datastreams({net.turbidity})",
                 f"Datastreams({net.turbidity})/Observations",
                 f"Datastreams({net.turbidity})/Observations/aggregate"):
        assert client.get("/sta/v1.1/" + path).status_code == 404, path
        assert client.get("/sta/v1.1/" + path, headers=staff).status_code == 200, path
    assert get(client, "Things", **{"$filter": f"id eq {net.plant}"})["value"] == []
    hidden = get(client, "Observations", **{"$filter": f"Datastream/id eq {net.turbidity}"})
    assert hidden["value"] == []
    seen = get(client, "Observations", staff, **{"$filter": f"Datastream/id eq {net.turbidity}"})
    assert results(seen) == [1.0, 2.0, 3.0, 4.0, 5.0]


@pytest.mark.parametrize("path, params, code, words", [
    ("Observations", {"$filter": "result gt 'x' and foo eq 1"}, 400, "no property 'foo'"),
    ("Things", {"$filter": "name gt 3"}, 400, "not a number"),
    ("Things", {"$filter": "name eq"}, 400, "ends too early"),
    ("Things", {"$filter": "geo.intersects(name, geography'POINT(1 2)')"}, 400,
     "not a geometry"),
    ("Things", {"$top": "abc"}, 400, "$top must be an integer"),
    ("Things", {"$top": "10001"}, 400, "between 0 and 10000"),
    ("Things", {"$frobnicate": "1"}, 400, "unknown query option"),
    ("Things", {"$expand": "Colours"}, 400, "no relation 'Colours'"),
    ("Things", {"$select": "colour"}, 400, "no property colour"),
    ("Things(999999999)", {}, 404, "not found"),
    ("Things(99999999999999999999)", {}, 404, "not found"),
    ("Gadgets", {}, 404, "no entity set"),
])
def test_errors(env, path, params, code, words):
    client, _, _ = env
    r = client.get("/sta/v1.1/" + path, params=params)
    assert r.status_code == code and words in r.text, r.text


def test_aggregation_matches_python(env):
    client, net, _ = env
    out = get(client, f"Datastreams({net.level})/Observations/aggregate", **{
        "interval": "15min", "fn": "avg,min,max,count,sum,first,last,stddev",
        "from": "2026-03-01T00:00:00Z", "to": "2026-03-01T01:00:00Z"})
    buckets: dict[dt.datetime, list[float]] = {}
    for k, v in enumerate(LEVELS):
        t = T0 + dt.timedelta(minutes=k)
        buckets.setdefault(t.replace(minute=t.minute // 15 * 15), []).append(v)
    assert len(out["value"]) == len(buckets) == 4
    for got, (start, vals) in zip(out["value"], sorted(buckets.items()), strict=True):
        mean = sum(vals) / len(vals)
        sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
        assert got["time"] == start.isoformat().replace("+00:00", "Z")
        assert got["count"] == len(vals)
        assert got["avg"] == pytest.approx(mean) and got["sum"] == pytest.approx(sum(vals))
        assert (got["min"], got["max"]) == (min(vals), max(vals))
        assert (got["first"], got["last"]) == (vals[0], vals[-1])
        assert got["stddev"] == pytest.approx(sd)
    hourly = get(client, f"Datastreams({net.level})/Observations/aggregate", **{
        "interval": "PT1H", "fn": "count"})  # default window: the 24 h up to the newest
    assert hourly["value"] == [{"time": "2026-03-01T00:00:00Z", "count": 50}]
    for bad, words in (({"interval": "fortnightly"}, "use e.g."), ({"fn": "median"}, "unknown"),
                       ({"interval": "1s", "from": "2026-01-01T00:00:00Z"}, "more than")):
        r = client.get(f"/sta/v1.1/Datastreams({net.level})/Observations/aggregate",
                       params=bad)
        assert r.status_code == 400 and words in r.text


def test_quoted_filter_in_url(env):
    client, net, _ = env
    url = (f"/sta/v1.1/Datastreams({net.level})/Observations?$top=1&$orderby="
           f"{quote('phenomenonTime desc')}")
    assert client.get(url).json()["value"][0]["result"] == 4.9


def test_count_only_and_expand_depth(env):
    client, net, _ = env
    page = get(client, f"Datastreams({net.level})/Observations", **{"$top": "0",
                                                                    "$count": "true"})
    assert page == {"@iot.count": 50, "value": []}
    r = client.get("/sta/v1.1/Things", params={"$expand": "Datastreams/Thing/Datastreams/"
                                                          "Thing/Locations"})
    assert r.status_code == 400 and "levels" in r.text
