"""Floods run for a flood incident (the /ops flood layer): the link, the list, the seeds
and level that default from the incident and its flood-tower reading, and bad input that
writes nothing. On a small made-up DEM: the sea east of 108.235 E, land rising 1 m per
0.005° westwards (1.6 m under the test flood tower at 108.227 E)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from server.app import create_app
from tests.server.helpers import token_for
from tests.slope_dem import write_dem
from tests.twin.sensors_net import T0, make_net, put, series
from twin import localdb
from twin.migrate import upgrade
from twin.sensors import rules
from twin.settings import Settings

TOWER = (108.2270, 16.0612)  # where tests.twin.sensors_net puts its flood tower
INLAND = (108.2200, 16.0800)  # 3 m above the sea on the test DEM
FAR = (108.3800, 15.8800)  # Hội An (the city since 2025), off the test DEM


@pytest.fixture(scope="module")
def dem(engine: Engine, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> str:
    from twin.ingest.dem import import_dem
    from twin.progress import NullReporter

    tif = write_dem(tmp_path_factory.mktemp("incident-dem") / "incident_slope.tif")
    with engine.begin() as conn:
        import_dem(conn, tif, reporter=NullReporter(), settings=settings, name="incident_slope")
    return "incident_slope"


@pytest.fixture(scope="module")
def client(settings: Settings, dem: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def staff(client: TestClient, engine: Engine) -> dict[str, str]:
    return token_for(client, engine, "responder")


def new_incident(client: TestClient, staff: dict[str, str], lonlat: tuple[float, float],
                 category: str = "flood") -> int:
    r = client.post("/incidents", headers=staff, json={
        "category": category, "title": f"{category} {uuid.uuid4().hex[:4]}",
        "geometry": {"type": "Point", "coordinates": list(lonlat)}})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def flood(client: TestClient, staff: dict[str, str], dem: str, **body):  # noqa: ANN003, ANN201
    return client.post("/scenarios/flood", headers=staff, json={"dem": dem, **body})


@pytest.fixture()
def tower_incident(engine: Engine) -> tuple[int, int]:
    """A flood incident opened by a flood-mark alarm at 2.4 m (the level then rises to
    2.7 m: the alarm keeps the worst, the timeline the reading that raised it); returns
    the incident and the level datastream."""
    with engine.begin() as c:  # earlier flood incidents at this tower would be joined
        c.execute(text("UPDATE incident SET status = 'closed', close_reason = 'resolved' "
                       "WHERE category = 'flood' AND status <> 'closed'"))
    net = make_net(engine)
    with engine.begin() as c:
        rid = rules.add_rule(c, {"datastream_id": net.level, "kind": "above", "threshold": 2.2,
                                 "severity": 4, "opens_incident": True, "name": "Flood mark"})
    put(engine, series(net.level, [2.4], T0))
    put(engine, series(net.level, [2.7], T0 + dt.timedelta(minutes=1)))
    with engine.connect() as c:
        iid, value = c.execute(text("SELECT incident_id, value FROM alarm WHERE rule_id = :r"),
                               {"r": rid}).one()
    assert iid is not None and value == 2.7
    return int(iid), net.level


def state(engine: Engine, settings: Settings) -> tuple[int, list[str]]:
    """Scenario rows and depth files: bad input must change neither."""
    with engine.connect() as c:
        rows = int(c.execute(text("SELECT count(*) FROM scenario")).scalar_one())
    folder = settings.terrain_dir / "scenarios"
    return rows, sorted(p.name for p in folder.glob("*")) if folder.exists() else []


def test_the_rule_records_the_reading_on_the_timeline(client, staff, tower_incident):
    iid, level = tower_incident
    events = client.get(f"/incidents/{iid}/timeline", headers=staff).json()
    reading = next(e["data"]["reading"] for e in events if "reading" in (e["data"] or {}))
    assert reading["value"] == 2.4 and reading["unit"] == "m" and reading["datastream"] == level


def test_a_tower_incident_floods_from_the_tower_at_its_reading(
        client, staff, dem, tower_incident, engine):
    iid, level = tower_incident
    r = flood(client, staff, dem, incident_id=iid)
    assert r.status_code == 201, r.text
    sc = r.json()
    p, s = sc["params"], sc["summary"]
    assert sc["incident_id"] == iid and p["incident_id"] == iid
    assert p["defaulted"] == ["seeds", "water_level_m"]
    assert p["water_level_m"] == 2.4 and s["water_level_m"] == 2.4  # not the worst, 2.7
    assert p["reading"]["datastream"] == level and p["reading"]["source"] == "timeline"
    assert p["seeds"][0] == pytest.approx(list(TOWER))
    assert s["source"] == "points" and s["flooded_area_km2"] > 0
    depth = client.get(f"/raster/flood/{sc['id']}/point/{TOWER[0]},{TOWER[1]}",
                       headers=staff).json()
    assert depth["depth_m"] == pytest.approx(0.8, abs=0.06)  # 2.4 m over ground at 1.6 m
    with engine.connect() as c:
        assert c.execute(text("SELECT incident_id FROM scenario WHERE id = :i"),
                         {"i": sc["id"]}).scalar_one() == iid

    # what the request gives wins over the defaults
    r = flood(client, staff, dem, incident_id=iid, water_level_m=3.0, seeds=[list(INLAND)])
    assert r.status_code == 201, r.text
    p = r.json()["params"]
    assert p["defaulted"] == [] and "reading" not in p
    assert p["water_level_m"] == 3.0 and p["seeds"] == [list(INLAND)]


def test_an_older_tower_incident_uses_its_alarm_value(client, staff, dem, engine):
    """Incidents opened before the rules recorded the reading: the alarm's value."""
    net = make_net(engine)
    iid = new_incident(client, staff, (108.2300, 16.0700))
    with engine.begin() as c:
        rid = rules.add_rule(c, {"datastream_id": net.level, "kind": "above", "threshold": 9})
        c.execute(text("INSERT INTO alarm (rule_id, datastream_id, thing_id, kind, severity, "
                       "message, value, incident_id) VALUES (:r, :d, :t, 'above', 4, 'old', "
                       "1.9, :i)"), {"r": rid, "d": net.level, "t": net.tower, "i": iid})
    r = flood(client, staff, dem, incident_id=iid)
    assert r.status_code == 201, r.text
    p = r.json()["params"]
    assert p["water_level_m"] == 1.9 and p["reading"]["source"] == "alarm"
    assert p["seeds"][0] == pytest.approx([108.2300, 16.0700])


def test_a_staff_incident_needs_a_level_and_floods_from_its_location(
        client, staff, dem, engine, settings):
    iid = new_incident(client, staff, INLAND)
    before = state(engine, settings)
    r = flood(client, staff, dem, incident_id=iid)
    assert r.status_code == 400, r.text
    assert "water_level_m" in r.json()["description"]
    assert state(engine, settings) == before
    r = flood(client, staff, dem, incident_id=iid, water_level_m=4)
    assert r.status_code == 201, r.text
    sc = r.json()
    assert sc["params"]["defaulted"] == ["seeds"]
    assert sc["params"]["seeds"][0] == pytest.approx(list(INLAND))
    assert sc["summary"]["source"] == "points" and sc["summary"]["flooded_area_km2"] > 0
    assert sc["links"]["tiles"] == f"/raster/flood/{sc['id']}/{{z}}/{{x}}/{{y}}.png"
    # it goes on the incident's timeline (and so live to the consoles); an unsaved run not
    flood(client, staff, dem, incident_id=iid, water_level_m=3, save=False)
    events = [e for e in client.get(f"/incidents/{iid}/timeline", headers=staff).json()
              if e["kind"] == "flood_modelled"]
    assert len(events) == 1 and events[0]["data"]["scenario"] == sc["id"]
    assert events[0]["data"]["water_level_m"] == 4
    assert events[0]["data"]["buildings"] == sc["summary"]["buildings"]["count"]


def test_listing_the_floods_of_an_incident(client, staff, dem, engine):
    a, b = new_incident(client, staff, INLAND), new_incident(client, staff, INLAND)
    first = flood(client, staff, dem, incident_id=a, water_level_m=3.5).json()["id"]
    second = flood(client, staff, dem, incident_id=a, water_level_m=4.5).json()["id"]
    other = flood(client, staff, dem, incident_id=b, water_level_m=4).json()["id"]
    unlinked = flood(client, staff, dem, water_level_m=4).json()["id"]
    listed = client.get(f"/scenarios?incident_id={a}", headers=staff).json()
    assert [i["id"] for i in listed["items"]] == [second, first] and listed["total"] == 2
    assert all(i["incident_id"] == a for i in listed["items"])
    latest = client.get(f"/scenarios?kind=flood&incident_id={a}&limit=1", headers=staff).json()
    assert [i["id"] for i in latest["items"]] == [second]
    assert latest["items"][0]["summary"]["buildings"]["count"] >= 0
    assert client.get(f"/scenarios?kind=closure&incident_id={a}",
                      headers=staff).json()["total"] == 0
    everything = {i["id"] for i in client.get("/scenarios?limit=500", headers=staff).json()
                  ["items"]}
    assert {first, second, other, unlinked} <= everything
    got = client.get(f"/scenarios/{second}", headers=staff).json()
    assert got["incident_id"] == a and got["geometry"]["type"] in ("Polygon", "MultiPolygon")

    r = client.get("/scenarios?incident_id=987654321", headers=staff)
    assert r.status_code == 404 and "987654321" in r.json()["description"]
    assert client.get(f"/scenarios?incident_id={a}").status_code == 401
    citizen = token_for(client, engine, "citizen")
    assert client.get(f"/scenarios?incident_id={a}", headers=citizen).status_code == 403
    assert flood(client, citizen, dem, incident_id=a, water_level_m=3).status_code == 403


@pytest.mark.parametrize(
    ("case", "body", "status", "says"),
    [
        ("unknown", {"incident_id": 987654321, "water_level_m": 3}, 400, "unknown incident"),
        ("fire", {"water_level_m": 3}, 400, "flood incidents only"),
        ("flood", {"water_level_m": 5000}, 400, "between 0 and 1000"),
        ("flood", {"water_level_m": -2}, 400, "between 0 and 1000"),
        ("flood", {"rise_m": 500}, 400, "between 0 and 100"),
        ("flood", {"water_level_m": 3, "rise_m": 1}, 400, "exactly one"),
        ("flood", {"water_level_m": "high"}, 422, ""),
        ("flood", {"incident_id": "seven", "water_level_m": 3}, 422, ""),
        ("far", {"water_level_m": 3}, 400, "outside the DEM"),
        ("absurd-reading", {}, 400, "no usable level"),
    ],
)
def test_bad_input_writes_nothing(client, staff, dem, engine, settings, case, body, status,
                                  says):
    if case in ("fire", "flood", "far", "absurd-reading"):
        where = FAR if case == "far" else INLAND
        iid = new_incident(client, staff, where, "fire" if case == "fire" else "flood")
        body = {"incident_id": iid, **body}
        if case == "absurd-reading":
            net = make_net(engine)
            with engine.begin() as c:
                rid = rules.add_rule(c, {"datastream_id": net.level, "kind": "above",
                                         "threshold": 9})
                c.execute(text("INSERT INTO alarm (rule_id, datastream_id, thing_id, kind, "
                               "severity, message, value, incident_id) VALUES (:r, :d, :t, "
                               "'above', 4, 'bad', 5000, :i)"),
                          {"r": rid, "d": net.level, "t": net.tower, "i": iid})
    before = state(engine, settings)
    r = flood(client, staff, dem, **body)
    assert r.status_code == status, r.text
    if says:
        assert says in r.json()["description"]
    assert state(engine, settings) == before


def test_migration_0005_links_the_floods_saved_before_it(settings: Settings) -> None:
    """A scenario that kept ``incident_id`` in its params gets the column on upgrade;
    downgrading drops the column again."""
    from twin.migrate import alembic_config

    base = Settings()
    name = f"twin_m5_{uuid.uuid4().hex[:8]}"
    localdb.ensure_database(base, name)
    url = base.url(name)
    try:
        upgrade(url, "0004")
        from twin.db import make_engine

        eng = make_engine(Settings(database_url=url), pool_size=1)
        try:
            with eng.begin() as c:
                iid = c.execute(text(
                    "INSERT INTO incident (category, severity, status, title, public, channel, "
                    "version, geom) VALUES ('flood', 3, 'reported', 'old', false, 'staff', 1, "
                    "ST_SetSRID(ST_MakePoint(108.22, 16.06), 4326)) RETURNING id")).scalar_one()
                c.execute(text(
                    "INSERT INTO scenario (kind, params) VALUES ('flood', CAST(:a AS jsonb)), "
                    "('flood', CAST(:b AS jsonb)), ('flood', '{}')"),
                    {"a": f'{{"incident_id": {iid}}}', "b": '{"incident_id": 987654321}'})
            upgrade(url)
            with eng.connect() as c:
                linked = c.execute(text("SELECT incident_id FROM scenario ORDER BY id")).scalars()
                assert list(linked) == [iid, None, None]
            from alembic import command

            command.downgrade(alembic_config(url), "0004")
            with eng.connect() as c:
                assert c.execute(text(
                    "SELECT count(*) FROM information_schema.columns WHERE table_name = "
                    "'scenario' AND column_name = 'incident_id'")).scalar_one() == 0
        finally:
            eng.dispose()
    finally:
        localdb.drop_database(base, name)
