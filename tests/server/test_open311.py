from xml.etree import ElementTree as ET

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from tests.server.helpers import token_for

LAT, LON = 16.0544, 108.2022
SECRET = ("citizen-secret@example.com", "0905 123 987", "Nguyễn Văn Bí Mật")


@pytest.fixture(scope="module")
def client(settings):
    with TestClient(
        create_app(settings.model_copy(update={"open311_posts_per_minute": 1000}))
    ) as c:
        yield c


def _post(client, **extra):
    form = {
        "service_code": "pothole",
        "lat": str(LAT),
        "long": str(LON),
        "description": "Ổ gà lớn giữa đường",
        "email": SECRET[0],
        "phone": SECRET[1],
        "first_name": "Nguyễn Văn",
        "last_name": "Bí Mật",
        **extra,
    }
    return client.post("/open311/v2/requests.json", data=form)


def test_discovery_and_services(client):
    d = client.get("/open311/v2/discovery.json").json()
    assert d["endpoints"][0]["url"].endswith("/open311/v2/")
    services = client.get("/open311/v2/services.json").json()
    codes = {s["service_code"] for s in services}
    assert {"flood", "pothole", "fallen_tree", "water_main_burst"} <= codes
    fire = client.get("/open311/v2/services/fire.json").json()
    assert fire["attributes"][0]["code"] == "people_trapped"
    xml = ET.fromstring(client.get("/open311/v2/services.xml").content)
    assert xml.tag == "services" and len(xml.findall("service")) == len(services)
    assert client.get("/open311/v2/services/nope.json").status_code == 404


def test_round_trip_and_privacy(client, engine):
    r = _post(client)
    assert r.status_code == 201, r.text
    created = r.json()[0]
    rid, token = created["service_request_id"], created["token"]
    assert client.get(f"/open311/v2/tokens/{token}.json").json()[0]["service_request_id"] == rid
    # not shown to the public before staff verify it; the reporter sees it with the token
    assert client.get(f"/open311/v2/requests/{rid}.json").status_code == 404
    got = client.get(f"/open311/v2/requests/{rid}.json?token={token}").json()[0]
    assert got["status"] == "open" and got["service_code"] == "pothole"
    assert abs(got["lat"] - LAT) < 1e-5 and abs(got["long"] - LON) < 1e-5
    staff = token_for(client, engine, "responder")
    # a citizen's report is public, but not shown before staff verify it
    assert client.get(f"/incidents/{rid}", headers=staff).json()["properties"]["public"] is True
    assert client.get(f"/collections/incidents/items/{rid}").status_code == 404
    client.post(f"/incidents/{rid}/transition", json={"status": "verified"}, headers=staff)
    shown = client.get(f"/collections/incidents/items/{rid}")
    assert shown.status_code == 200 and all(s not in shown.text for s in SECRET)
    got = client.get(f"/open311/v2/requests/{rid}.json").json()[0]
    assert got["description"] == "Ổ gà lớn giữa đường"
    # staff see the reporter; no public answer carries personal data
    assert (
        client.get(f"/incidents/{rid}", headers=staff).json()["properties"]["reporter_email"]
        == SECRET[0]
    )
    public_answers = [
        client.get("/open311/v2/requests.json").text,
        client.get(f"/open311/v2/requests/{rid}.xml").text,
        client.get(f"/open311/v2/requests/{rid}.json").text,
    ]
    for body in public_answers:
        for secret in SECRET:
            assert secret not in body
    xml = ET.fromstring(client.get(f"/open311/v2/requests/{rid}.xml").content)
    assert xml.tag == "service_requests"
    assert xml.find("request/service_request_id").text == rid
    # closing shows as closed
    client.post(f"/incidents/{rid}/transition", json={"status": "resolved"}, headers=staff)
    assert client.get(f"/open311/v2/requests/{rid}.json").json()[0]["status"] == "closed"
    lst = client.get("/open311/v2/requests.json?status=closed&service_code=pothole").json()
    assert rid in [x["service_request_id"] for x in lst]


def test_nearby_report_is_linked_not_lost(client, engine):
    first = _post(client, service_code="fallen_tree", lat="16.0411", long="108.2100").json()[0]
    second = _post(client, service_code="fallen_tree", lat="16.0412", long="108.2101").json()[0]
    assert second["service_request_id"] != first["service_request_id"]
    # Vietnamese by default
    assert f"gộp vào phản ánh {first['service_request_id']}" in second["service_notice"]
    staff = token_for(client, engine, "responder")
    tl = client.get(f"/incidents/{first['service_request_id']}/timeline", headers=staff).json()
    assert any(e["kind"] == "linked" for e in tl)


@pytest.mark.parametrize(
    "form,needle",
    [
        ({"service_code": "nope", "lat": "16", "long": "108"}, "service_code"),
        ({"service_code": "pothole"}, "location"),
        ({"service_code": "pothole", "lat": "abc", "long": "108"}, "number"),
        ({"service_code": "pothole", "lat": "16", "long": "108", "email": "not-an-email"}, "email"),
        ({"service_code": "fire", "lat": "16", "long": "108"}, "people_trapped"),
        ({"service_code": "pothole", "address_string": "Nowhere street 99999"}, "not found"),
    ],
)
def test_bad_posts_use_the_error_format(client, form, needle):
    r = client.post("/open311/v2/requests.json?lang=en", data=form)
    assert r.status_code == 400
    body = r.json()
    assert isinstance(body, list) and body[0]["code"] == 400 and needle in body[0]["description"]
    x = client.post("/open311/v2/requests.xml", data=form)
    root = ET.fromstring(x.content)
    assert root.tag == "errors" and root.find("error/code").text == "400"


def test_unknown_format_and_request(client):
    assert client.get("/open311/v2/services.yaml").status_code == 400
    assert client.get("/open311/v2/requests/999999.json").status_code == 404
    assert client.get("/open311/v2/tokens/nope.json").status_code == 404


def test_posts_are_rate_limited(settings):
    with TestClient(create_app(settings.model_copy(update={"open311_posts_per_minute": 2}))) as c:
        codes = [_post(c, lat="16.03", long="108.19").status_code for _ in range(3)]
    assert codes == [201, 201, 429]


@pytest.mark.parametrize("encode", ["raw", "percent"])
def test_a_form_is_read_as_utf8_whether_raw_or_percent_encoded(client, encode):
    """``curl -d 'description=Ổ gà'`` sends raw UTF-8; a browser percent-encodes it. Both
    are stored as written (Starlette's own parser read raw bytes as Latin-1: 'á»\\x94 gÃ')."""
    from urllib.parse import quote

    text = f"Ổ gà sâu trước số 12 Bạch Đằng ({encode})"
    value = quote(text) if encode == "percent" else text
    body = f"service_code=pothole&lat={LAT}&long={LON}&description={value}".encode()
    r = client.post("/open311/v2/requests.json", content=body,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 201, r.text
    token, notice = r.json()[0]["token"], r.json()[0]["service_notice"]
    got = client.get(f"/open311/v2/tokens/{token}.json").json()[0]
    rid = got["service_request_id"]
    # the notice names the answer's due date the tracking page shows, in Đà Nẵng time
    import datetime as dt

    due = dt.datetime.fromisoformat(got["expected_datetime"])
    assert f"trả lời trước {due:%H:%M %d/%m/%Y} (GMT+7)" in notice, notice
    mine = client.get(f"/open311/v2/requests/{rid}.json?token={token}").json()[0]
    assert mine["description"] == text


def test_a_form_that_is_not_utf8_is_refused(client):
    body = b"service_code=pothole&lat=16.05&long=108.2&description=" + b"\xff\xfe"
    r = client.post("/open311/v2/requests.json", content=body,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and "UTF-8" in r.text, r.text


@pytest.mark.parametrize(("lang", "form", "said"), [
    ("vi", {"service_code": "flood", "attribute[depth_cm]": "30"},
     "Nước sâu bao nhiêu (cm)? 30"),
    ("en", {"service_code": "fire", "attribute[people_trapped]": "yes"},
     "Is anyone trapped? Yes"),
])
def test_answers_to_a_category_question_read_as_written(client, lang, form, said):
    """The category's questions are kept in the description in the report's language,
    not as ``depth_cm=30``."""
    r = client.post("/open311/v2/requests.json", headers={"Accept-Language": lang},
                    data={"lat": str(LAT), "long": str(LON + 0.01),
                          "description": "Trước số 12", **form, "attribute[note]": "x"})
    assert r.status_code == 201, r.text
    token = r.json()[0]["token"]
    got = client.get(f"/open311/v2/tokens/{token}.json").json()[0]
    assert got["description"] == f"Trước số 12\n{said}; note=x", got["description"]
