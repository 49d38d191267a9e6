"""GET /incidents filters (status incl. open, category, severity, ward, time range), closing
with a reason kept on the timeline, and error descriptions in the request's language."""

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from tests.server.helpers import token_for

POINT = {"type": "Point", "coordinates": [108.2208, 16.0678]}


@pytest.fixture(scope="module")
def client(settings):
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def staff(client, engine):
    return token_for(client, engine, "responder")


def _new(client, staff, **extra):
    body = {"category": "flood", "title": "Lọc thử", "geometry": POINT, **extra}
    r = client.post("/incidents", json=body, headers=staff)
    assert r.status_code == 201, r.text
    return r.json()


def _ids(client, staff, query):
    r = client.get("/incidents?limit=5000&" + query, headers=staff)
    assert r.status_code == 200, r.text
    return {f["id"] for f in r.json()["features"]}


def test_filters_narrow_the_list(client, staff):
    fire = _new(client, staff, category="fire", severity=5)
    flood = _new(client, staff, category="flood", severity=2)
    ward = fire["properties"]["ward"]
    assert _ids(client, staff, "category=fire") >= {fire["id"]}
    assert flood["id"] not in _ids(client, staff, "category=fire")
    assert fire["id"] in _ids(client, staff, "severity=4,5")
    assert flood["id"] not in _ids(client, staff, "severity=4,5")
    assert flood["id"] in _ids(client, staff, "severity_max=2")
    assert fire["id"] not in _ids(client, staff, "severity_max=2")
    assert {fire["id"], flood["id"]} <= _ids(client, staff, "status=open")
    if ward:
        assert fire["id"] in _ids(client, staff, "ward=" + ward)
    assert fire["id"] not in _ids(client, staff, "ward=Không có phường này")
    now = dt.datetime.now(dt.UTC)
    later = (now + dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    earlier = (now - dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert fire["id"] in _ids(client, staff, f"since={earlier}&until={later}")
    assert fire["id"] not in _ids(client, staff, f"since={later}")
    assert fire["id"] not in _ids(client, staff, f"until={earlier}")


@pytest.mark.parametrize("query", [
    "status=bogus", "status=open,nope", "category=volcano", "severity=0", "severity=6",
    "severity=a", "severity_min=4&severity_max=2", "since=yesterday",
    "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "since=1800-01-01T00:00:00Z",
    "severity_max=9",
])
def test_bad_filters_are_4xx(client, staff, query):
    r = client.get("/incidents?" + query, headers=staff)
    assert r.status_code in (400, 422), r.text
    body = r.json()
    assert body["code"] and body["description"] and "request_id" in body


def test_close_with_reason_is_in_the_closed_view_and_on_the_timeline(client, staff):
    feat = _new(client, staff)
    iid = feat["id"]
    assert iid not in _ids(client, staff, "status=closed")
    r = client.post(f"/incidents/{iid}/transition", headers=staff,
                    json={"status": "closed", "reason": "false_alarm", "note": "không có ngập"})
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["close_reason"] == "false_alarm"
    assert iid in _ids(client, staff, "status=closed,resolved")
    assert iid not in _ids(client, staff, "status=open")
    tl = client.get(f"/incidents/{iid}/timeline", headers=staff).json()
    last = tl[-1]
    assert last["kind"] == "transition"
    assert last["data"]["to"] == "closed" and last["data"]["reason"] == "false_alarm"
    assert last["data"]["note"] == "không có ngập"
    # closed is final
    again = client.post(f"/incidents/{iid}/transition", headers=staff,
                        json={"status": "verified"})
    assert again.status_code == 409


def test_error_descriptions_follow_the_language(client, staff):
    vi = client.get("/incidents/999999999", headers={**staff, "Accept-Language": "vi"})
    en = client.get("/incidents/999999999", headers={**staff, "Accept-Language": "en"})
    assert vi.status_code == en.status_code == 404
    assert vi.json()["description"] == "không tìm thấy sự cố 999999999"
    assert en.json()["description"] == "incident 999999999 not found"
    # the lang parameter wins over the header
    r = client.get("/incidents?status=bogus&lang=vi", headers={**staff, "Accept-Language": "en"})
    assert r.status_code == 400 and r.json()["description"].startswith("không có trạng thái")
    feat = _new(client, staff)
    r = client.post(f"/incidents/{feat['id']}/transition", json={"status": "closed"},
                    headers={**staff, "Accept-Language": "vi-VN,vi;q=0.9"})
    assert r.status_code == 400 and "cần lý do đóng sự cố" in r.json()["description"]
    r = client.post(f"/incidents/{feat['id']}/comments", json={"text": "  "},
                    headers={**staff, "Accept-Language": "vi"})
    assert r.json()["description"] == "nội dung bình luận không được để trống"
    # another route: the public warnings and a validation error
    r = client.get("/warnings/999999999.cap", headers={"Accept-Language": "vi"})
    assert r.status_code == 404
    vi_text = r.json()["description"]
    r = client.get("/warnings/999999999.cap", headers={"Accept-Language": "en"})
    assert "999999999" in vi_text and "sự cố" in vi_text
    assert r.json()["description"] != vi_text and "incident" in r.json()["description"]
    r = client.get("/incidents?limit=0", headers={**staff, "Accept-Language": "vi"})
    assert r.status_code == 422 and r.json()["description"].startswith("dữ liệu không hợp lệ")
    r = client.get("/incidents?limit=0", headers={**staff, "Accept-Language": "en"})
    assert r.json()["description"].startswith("invalid input")
    # unauthenticated, in Vietnamese
    r = client.get("/incidents", headers={"Accept-Language": "vi"})
    assert r.status_code == 401 and r.json()["description"] == "cần đăng nhập"
    # no language named: English, as API clients have read it so far
    r = client.get("/incidents/999999999", headers=staff)
    assert r.json()["description"] == "incident 999999999 not found"


def test_an_incident_names_its_ward_in_english_too(client, staff, engine):
    """The ward is stored as named in Vietnamese; ``ward_en`` carries the ward's English
    name for a page in English (the /ops list)."""
    from sqlalchemy import text

    at = (108.30, 16.20)  # out at sea: a ward of this test's own
    square = (f"SRID=4326;MULTIPOLYGON((({at[0] - .001} {at[1] - .001},{at[0] + .001} "
              f"{at[1] - .001},{at[0] + .001} {at[1] + .001},{at[0] - .001} {at[1] + .001},"
              f"{at[0] - .001} {at[1] - .001})))")
    with engine.begin() as conn:
        area = conn.execute(text(
            "INSERT INTO admin_area (source, source_id, level, code, name_vi, name_en, "
            "valid_from, geom) VALUES ('test', 'ward-en', 'ward', 'T-EN', 'Phường Thử Tiếng', "
            "'Thu Tieng Ward', '2025-07-01', "
            "ST_GeomFromEWKT(:g)) RETURNING id"), {"g": square}).scalar_one()
    try:
        made = _new(client, staff, geometry={"type": "Point", "coordinates": list(at)})
        got = client.get(f"/incidents/{made['id']}", headers=staff).json()["properties"]
        assert got["ward"] == "Phường Thử Tiếng" and got["ward_en"] == "Thu Tieng Ward"
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM admin_area WHERE id = :i"), {"i": area})
