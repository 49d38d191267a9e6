import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from tests.server.helpers import token_for
from tests.twin.test_routing import X0, Y0, net  # noqa: F401 - the hand-built network


@pytest.fixture(scope="module")
def client(settings):
    with TestClient(create_app(settings)) as c:
        yield c


def test_nearest_by_drive_over_http(client, net):  # noqa: F811
    r = client.get(f"/analysis/nearest?lon={X0}&lat={Y0}&kind=hospital&k=2")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["name_vi"] for i in items] == ["H2", "H1"]
    assert items[0]["eta_min"] > 0 and items[0]["route"]["type"] == "LineString"
    s = client.get(f"/analysis/nearest?lon={X0}&lat={Y0}&kind=hospital&k=2&mode=straight")
    assert [i["name_vi"] for i in s.json()["items"]] == ["H1", "H2"]


@pytest.mark.parametrize(
    "query",
    [
        "lon=500&lat=10",
        "lon=100&lat=10&kind=castle",
        "lon=100&lat=10&k=0",
        "lon=abc&lat=10",
        "lat=10",
        "lon=100&lat=10&mode=fly",
    ],
)
def test_bad_nearest_queries_are_4xx(client, query):
    r = client.get(f"/analysis/nearest?{query}")
    assert 400 <= r.status_code < 500, r.text


def test_service_area_and_incident_help_are_staff_only(client, engine, net):  # noqa: F811
    assert client.get(f"/analysis/service-area?lon={X0}&lat={Y0}&minutes=1").status_code == 401
    staff = token_for(client, engine, "responder")
    r = client.get(f"/analysis/service-area?lon={X0}&lat={Y0}&minutes=1", headers=staff)
    assert r.status_code == 200 and r.json()["reached_nodes"] == 5
    inc = client.post(
        "/incidents",
        headers=staff,
        json={"category": "medical", "geometry": {"type": "Point", "coordinates": [X0, Y0]}},
    ).json()
    help_ = client.get(f"/analysis/incident/{inc['id']}?radius=200", headers=staff).json()
    assert help_["nearest"][0]["name_vi"] == "H2"
    assert help_["around"]["buildings"]["count"] == 5
    assert client.get("/analysis/incident/99999999", headers=staff).status_code == 404
