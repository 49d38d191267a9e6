"""Citizens over Open311 (issue 17): privacy of unverified reports, limits on every path,
photos (EXIF stripped, thumbnails), nearby duplicates and supporters, the tracking answer
(public timeline, 3-working-day due date, Đà Nẵng time), texts in vi or en."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import text

from server.app import create_app
from tests.server.helpers import token_for
from twin.incidents.open311 import answer_due

LAT, LON = 16.0612, 108.2231


@pytest.fixture(scope="module")
def client(settings):
    app = create_app(settings.model_copy(update={"open311_posts_per_minute": 1000}))
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def staff(client, engine):
    return token_for(client, engine, "responder")


def _jpeg_with_gps(size=(1200, 800)) -> bytes:
    img = Image.new("RGB", size, (200, 40, 40))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (16.0, 3.0, 40.0)
    gps[3], gps[4] = "E", (108.0, 13.0, 23.0)
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)  # the fixture has GPS
    return data


def _report(client, files=None, **extra):
    form = {"service_code": "streetlight", "lat": str(LAT), "long": str(LON),
            "description": "Đèn đường tắt cả tuần", "email": "dan@example.com",
            "phone": "0905 111 222", "first_name": "Trần", "last_name": "Riêng Tư", **extra}
    r = client.post("/open311/v2/requests.json", data=form, files=files)
    assert r.status_code == 201, r.text
    return r.json()[0]


def test_unverified_report_and_its_photo_are_private(client, staff):
    made = _report(client, files=[("media", ("p.jpg", _jpeg_with_gps(), "image/jpeg"))])
    rid, token = made["service_request_id"], made["token"]
    listed = client.get("/open311/v2/requests.json?service_code=streetlight").json()
    assert rid not in [x["service_request_id"] for x in listed]
    assert client.get(f"/open311/v2/requests/{rid}.json").status_code == 404
    own = client.get(f"/open311/v2/requests/{rid}.json?token={token}")
    assert own.status_code == 200 and own.json()[0]["description"] == "Đèn đường tắt cả tuần"
    assert rid in [x["service_request_id"] for x in
                   client.get("/open311/v2/requests.json", headers=staff).json()]
    track = client.get(f"/open311/v2/tokens/{token}.json").json()[0]
    assert track["public"] is False and len(track["media"]) == 1
    photo = track["media"][0]["url"].split("/open311/")[1]
    assert client.get(f"/open311/{photo}").status_code == 404
    assert client.get(f"/open311/{photo}?token=wrong").status_code == 404
    assert client.get(f"/open311/{photo}?token={token}").status_code == 200
    assert client.get(f"/open311/{photo}", headers=staff).status_code == 200
    # once verified it is public, without the reporter's data
    client.post(f"/incidents/{rid}/transition", json={"status": "verified"}, headers=staff)
    got = client.get(f"/open311/v2/requests/{rid}.json")
    assert got.status_code == 200 and got.json()[0]["media_url"].endswith(photo.split("/")[-1])
    assert client.get(f"/open311/{photo}").status_code == 200
    for body in (got.text, client.get("/open311/v2/requests.json").text,
                 client.get(f"/open311/v2/tokens/{token}.json").text,
                 client.get("/collections/incidents/items").text):
        for secret in ("dan@example.com", "0905 111 222", "Riêng Tư"):
            assert secret not in body
    # hidden by staff: gone again for the public
    etag = client.get(f"/incidents/{rid}", headers=staff).headers["ETag"]
    client.patch(f"/incidents/{rid}", json={"public": False},
                 headers={**staff, "If-Match": etag})
    assert client.get(f"/open311/v2/requests/{rid}.json").status_code == 404
    assert client.get(f"/open311/{photo}").status_code == 404


def test_photo_is_re_encoded_without_exif_and_has_a_thumbnail(client):
    made = _report(client, files=[("media", ("p.jpg", _jpeg_with_gps((1600, 900)), "image/jpeg"))])
    track = client.get(f"/open311/v2/tokens/{made['token']}.json").json()[0]
    url = track["media"][0]["url"].split("://", 1)[1].split("/", 1)[1]
    full = client.get(f"/{url}?token={made['token']}")
    assert full.headers["content-type"] == "image/jpeg"
    img = Image.open(io.BytesIO(full.content))
    exif = img.getexif()
    assert not exif.get_ifd(0x8825) and 0x010F not in exif and img.size == (1600, 900)
    thumb = client.get(f"/{url}?size=thumb&token={made['token']}")
    assert Image.open(io.BytesIO(thumb.content)).size == (320, 180)
    assert track["media"][0]["thumb"].endswith("?size=thumb")


@pytest.mark.parametrize(
    "files,status",
    [
        ([("media", ("a.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image/gif"))], 415),
        ([("media", ("fake.jpg", b"this is not a jpeg at all", "image/jpeg"))], 415),
        ([("media", ("broken.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 200, "image/jpeg"))], 400),
        ([("media", ("big.jpg", b"\xff\xd8\xff" + b"\x00" * (5 * 1024 * 1024 + 10),
                     "image/jpeg"))], 413),
        ([("media", (f"{i}.jpg", b"x", "image/jpeg")) for i in range(4)], 400),
    ],
)
def test_bad_photos_are_refused_and_nothing_is_written(client, engine, files, status):
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM incident")).scalar()
    r = client.post("/open311/v2/requests.json",
                    data={"service_code": "waste", "lat": "16.05", "long": "108.2"}, files=files)
    assert r.status_code == status, r.text
    assert r.json()[0]["code"] == status and r.json()[0]["description"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident")).scalar() == before


@pytest.mark.parametrize("how", ["form", "json", "multipart"])
def test_limits_on_every_path(client, how):
    huge = "x" * (5 * 1024 * 1024)
    base = {"service_code": "waste", "lat": "16.05", "long": "108.2"}
    cases = [({"description": huge}, (400, 413)), ({"description": "y" * 4001}, (400,)),
             ({"address_string": "z" * 301}, (400,)), ({"first_name": "n" * 101}, (400,)),
             ({"email": "a@b"}, (400,)), ({"phone": "call me maybe"}, (400,))]
    for extra, statuses in cases:
        form = {**base, **extra}
        if how == "json":
            r = client.post("/open311/v2/requests.json", json=form)
        elif how == "multipart":
            r = client.post("/open311/v2/requests.json", data=form,
                            files=[("media", ("a.png", _png(), "image/png"))])
        else:
            r = client.post("/open311/v2/requests.json", data=form)
        assert r.status_code in statuses, (how, list(extra), r.status_code, r.text[:200])
        body = r.json()
        assert isinstance(body, list) and body[0]["code"] == r.status_code
    if how == "json":
        assert client.post("/open311/v2/requests.json",
                           json={**base, "description": huge}).status_code == 413


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (40, 30), (0, 0, 255, 128)).save(out, "PNG")
    return out.getvalue()


def test_nearby_and_support(client, engine, staff):
    lat, lon = 16.0701, 108.2150
    first = _report(client, service_code="pothole", lat=str(lat), long=str(lon))
    rid = first["service_request_id"]
    near = f"/open311/v2/requests/nearby.json?service_code=pothole&lat={lat}&long={lon + 0.0002}"
    assert rid not in [x["service_request_id"] for x in client.get(near).json()]  # unverified
    client.post(f"/incidents/{rid}/transition", json={"status": "verified"}, headers=staff)
    rows = client.get(near + "&radius=50").json()
    mine = next(x for x in rows if x["service_request_id"] == rid)
    assert 15 < mine["distance_m"] < 30 and mine["supporters"] == 0
    assert mine["status"] == "verified" and "address" not in mine
    assert rid not in [x["service_request_id"] for x in
                       client.get(near.replace("pothole", "waste")).json()]
    far = f"/open311/v2/requests/nearby.json?service_code=pothole&lat={lat + 0.01}&long={lon}"
    assert rid not in [x["service_request_id"] for x in client.get(far).json()]
    assert client.get(near + "&radius=500").status_code == 400
    assert client.get(near.replace(f"lat={lat}", "lat=abc")).status_code == 400
    # anonymous support, then a citizen's own report linked to it (counted once)
    s = client.post(f"/open311/v2/requests/{rid}/support.json")
    assert s.status_code == 200 and s.json() == {"service_request_id": rid, "supporters": 1}
    other = _report(client, service_code="pothole", lat=str(lat + 0.003), long=str(lon))
    for _ in range(2):
        s = client.post(f"/open311/v2/requests/{rid}/support.json",
                        json={"token": other["token"]})
    assert s.json()["supporters"] == 2
    assert client.get(f"/incidents/{rid}", headers=staff).json()["properties"]["supporters"] == 2
    listing = client.get("/incidents?category=pothole", headers=staff).json()
    assert next(f for f in listing["features"] if str(f["id"]) == rid)["properties"][
        "supporters"] == 2
    track = client.get(f"/open311/v2/tokens/{other['token']}.json").json()[0]
    assert track["linked_to"] == rid and track["timeline"][-1]["kind"] == "linked"
    assert client.post("/open311/v2/requests/99999999/support.json").status_code == 404
    unverified = _report(client, service_code="waste")
    assert client.post(f"/open311/v2/requests/{unverified['service_request_id']}"
                       "/support.json").status_code == 404


def test_tracking_timeline_due_date_and_language(client, engine, staff):
    made = _report(client, service_code="fallen_tree", lat="16.0331", long="108.2401")
    rid, token = made["service_request_id"], made["token"]
    # received on Friday 2026-12-04 15:00 in Đà Nẵng: due three working days later,
    # Wednesday (the weekend skipped)
    friday = dt.datetime(2026, 12, 4, 8, 0, tzinfo=dt.UTC)
    with engine.begin() as conn:
        conn.execute(text("UPDATE incident SET created_at = :t WHERE id = :i"),
                     {"t": friday, "i": int(rid)})
    client.post(f"/incidents/{rid}/comments", json={"text": "Ghi chú nội bộ: gọi đội 3"},
                headers=staff)
    client.post(f"/incidents/{rid}/comments",
                json={"text": "Đội cây xanh sẽ đến trong hôm nay", "public": True},
                headers=staff)
    client.post(f"/incidents/{rid}/transition", json={"status": "verified", "note": "nội bộ"},
                headers=staff)
    vi = client.get(f"/open311/v2/tokens/{token}.json").json()[0]
    assert vi["expected_datetime"] == "2026-12-09T15:00:00+07:00"
    assert vi["requested_datetime"] == "2026-12-04T15:00:00+07:00"
    assert vi["updated_datetime"].endswith("+07:00")
    assert vi["status"] == "verified" and vi["status_label"] == "Đã xác minh"
    assert vi["public"] is True and vi["service_name"] == "Cây đổ"
    kinds = [(e["kind"], e["status"]) for e in vi["timeline"]]
    assert kinds == [("created", "reported"), ("comment", None), ("status", "verified")]
    texts = " ".join(e["text"] for e in vi["timeline"])
    assert "Đội cây xanh" in texts and "nội bộ" not in texts
    assert all(e["at"].endswith("+07:00") for e in vi["timeline"])
    en = client.get(f"/open311/v2/tokens/{token}.json?lang=en").json()[0]
    assert en["status_label"] == "Verified" and en["service_name"] == "Fallen tree"
    assert en["timeline"][0]["text"] == "Report received"
    by_header = client.get(f"/open311/v2/tokens/{token}.json",
                           headers={"Accept-Language": "en-US,en;q=0.9,vi;q=0.5"}).json()[0]
    assert by_header["status_label"] == "Verified"
    bad = client.post("/open311/v2/requests.json?lang=en", data={"service_code": "nope"})
    assert bad.json()[0]["description"] == "service_code 'nope' not found"
    bad = client.post("/open311/v2/requests.json", data={"service_code": "nope"})
    assert bad.json()[0]["description"] == "không có loại phản ánh 'nope'"
    assert client.get("/open311/v2/tokens/nope.json").status_code == 404


def test_answer_due_skips_weekends_and_holidays():
    vn = dt.timezone(dt.timedelta(hours=7))
    assert answer_due(dt.datetime(2026, 12, 4, 9, 0, tzinfo=vn)).date() == dt.date(2026, 12, 9)
    # Wednesday 29 Apr 2026 → 30 Apr, 1 May (holidays), weekend → Mon 4, Tue 5, Wed 6 May
    assert answer_due(dt.datetime(2026, 4, 29, 9, 0, tzinfo=vn)).date() == dt.date(2026, 5, 6)
