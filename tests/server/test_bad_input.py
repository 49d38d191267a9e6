"""Bad input answers a clear 4xx in the one error shape, never a 500: each case here is
an input that once made the server fail (found by schemathesis or by hand)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from server.app import create_app
from tests.conftest import count
from tests.server.helpers import token_for
from tests.twin.sensors_net import make_net
from twin.settings import Settings

POINT = {"type": "Point", "coordinates": [108.2208, 16.0678]}
BIG = "99999999999999999999"  # past bigint
STA = "/sta/v1.1"


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def staff(client: TestClient, engine: Engine) -> dict[str, str]:
    return token_for(client, engine, "planner")


@pytest.fixture(scope="module")
def incident(client: TestClient, staff: dict[str, str]) -> int:
    r = client.post("/incidents", json={"category": "flood", "title": "Ngập", "geometry": POINT},
                    headers=staff)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def refused(r: httpx.Response, *codes: int) -> dict[str, Any]:
    """The response is a 4xx (one of ``codes`` when given) in the one error shape."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:500])
    if codes:
        assert r.status_code in codes, (r.status_code, r.text[:500])
    body = r.json()
    assert set(body) >= {"code", "description", "request_id"}, body
    assert body["code"] and body["description"]
    assert body["request_id"] == r.headers["x-request-id"]
    return body  # type: ignore[no-any-return]


def refused_open311(r: httpx.Response, *codes: int) -> None:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:500])
    if codes:
        assert r.status_code in codes, (r.status_code, r.text[:500])
    body = r.json()
    assert isinstance(body, list) and body[0]["code"] == r.status_code and body[0]["description"]
    assert r.headers["x-request-id"]


# -- the error contract ----------------------------------------------------------------


def test_every_error_has_one_shape(client: TestClient, staff: dict[str, str]) -> None:
    refused(client.get("/no/such/path"), 404)
    refused(client.delete("/healthz"), 405)
    assert refused(client.get("/incidents"), 401)["code"] == "Unauthorized"
    refused(client.get("/collections/nope/items"), 404)
    body = refused(client.get("/analysis/within", params={"lon": "x", "lat": 16}), 422)
    assert body["code"] == "InvalidInput"
    assert [f["name"] for f in body["fields"]] == ["lon"]
    assert all(set(f) >= {"name", "loc", "message"} for f in body["fields"])


def test_validation_errors_do_not_echo_the_input(client: TestClient,
                                                 staff: dict[str, str]) -> None:
    marker = "ECHO-" + "x" * 5000
    r = client.post("/incidents", json={"category": "flood", "geometry": POINT,
                                        "title": 7, "severity": marker}, headers=staff)
    body = refused(r, 422)
    assert "ECHO-" not in r.text and len(r.content) < 2000
    assert {f["name"] for f in body["fields"]} >= {"severity"}


def test_request_id_is_sent_and_a_sane_one_kept(client: TestClient) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": "abc-123.def"})
    assert r.headers["x-request-id"] == "abc-123.def"
    r = client.get("/healthz", headers={"X-Request-ID": "bad id <script>" + "x" * 300})
    assert r.headers["x-request-id"] != "bad id" and len(r.headers["x-request-id"]) == 32
    assert client.get("/healthz").headers["x-request-id"]


def test_open311_keeps_its_list_shape(client: TestClient) -> None:
    refused_open311(client.get("/open311/v2/requests/1x.json"), 404)
    r = client.get("/open311/v2/requests.json", params={"status": "x\x00"})
    refused_open311(r, 400)


# -- bounded inputs ----------------------------------------------------------------------


def test_huge_bodies_are_refused_early(client: TestClient, staff: dict[str, str],
                                       engine: Engine) -> None:
    before = count(engine, "incident")
    big = {"category": "flood", "geometry": POINT, "title": "x", "description": "y" * (2 << 20)}
    r = client.post("/incidents", json=big, headers=staff)
    refused(r, 413)
    assert len(r.content) < 1000

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        yield b'{"category": "flood", "title": "'
        for _ in range(40):
            yield b"z" * 65536
        yield b'"}'

    r = client.post("/incidents", content=chunks(),
                    headers={**staff, "Content-Type": "application/json"})
    refused(r, 413)
    assert count(engine, "incident") == before


@pytest.mark.parametrize(("field", "size"), [("title", 201), ("description", 5001),
                                              ("address", 501), ("reporter_name", 101)])
def test_incident_text_limits(client: TestClient, staff: dict[str, str], field: str,
                              size: int) -> None:
    body = {"category": "flood", "title": "t", "geometry": POINT, field: "x" * size}
    assert refused(client.post("/incidents", json=body, headers=staff), 422)["fields"][0][
        "name"] == field


def test_comment_and_edit_limits(client: TestClient, staff: dict[str, str], incident: int,
                                 engine: Engine) -> None:
    events = count(engine, "incident_event", f"incident_id = {incident}")
    refused(client.post(f"/incidents/{incident}/comments", json={"text": "c" * 5001},
                        headers=staff), 422)
    refused(client.patch(f"/incidents/{incident}", json={"title": "t" * 201}, headers=staff),
            400, 422)
    refused(client.post(f"/incidents/{incident}/transition",
                        json={"status": "verified", "note": "n" * 5001}, headers=staff), 422)
    refused(client.post(f"/incidents/{incident}/assign", json={"units": ["u" * 101]},
                        headers=staff), 422)
    assert count(engine, "incident_event", f"incident_id = {incident}") == events


# -- point 8: every 500 found from outside -------------------------------------------------


@pytest.mark.parametrize("url", [
    "/search?q=%00",
    "/search?q=a%00b",
    "/collections/buildings/items?filter=name%3D%27%00%27",
    f"{STA}/Things?$filter=name eq '%00'",
])
def test_nul_in_urls(client: TestClient, url: str) -> None:
    refused(client.get(url), 400)


def test_nul_in_bodies(client: TestClient, staff: dict[str, str], incident: int,
                       engine: Engine) -> None:
    refused(client.post("/auth/token", data={"username": "a\x00b", "password": "x"}), 400)
    before = count(engine, "incident")
    refused(client.post("/incidents", json={"category": "flood", "title": "a\x00",
                                            "geometry": POINT}, headers=staff), 400)
    refused(client.post(f"/incidents/{incident}/comments", json={"text": "\x00"},
                        headers=staff), 400)
    refused(client.post(f"{STA}/Things", json={"name": "x\x00"}, headers=staff), 400)
    refused_open311(client.post("/open311/v2/requests.json", data={
        "service_code": "pothole", "lat": "16.0678", "long": "108.2208",
        "description": "ổ gà\x00"}), 400)
    refused_open311(client.post("/open311/v2/requests.json", files={
        "description": (None, "ổ gà\x00"), "service_code": (None, "pothole"),
        "lat": (None, "16.0678"), "long": (None, "108.2208")}), 400)
    assert count(engine, "incident") == before


@pytest.mark.parametrize("url", [
    f"/collections/buildings/items?ids={BIG}",
    f"/collections/buildings/items?offset={BIG}",
    f"/collections/buildings/items/{BIG}",
    f"/collections/buildings/items?filter=id%3D{BIG}",
    f"/collections/buildings/items?filter=id%3D-{BIG}",
    f"{STA}/Things?$skip={BIG}",
    f"{STA}/Things?$top={BIG}",
    f"{STA}/Things({BIG})",
    f"{STA}/Things?$filter=id eq {BIG}",
    f"/incidents/{BIG}",
    f"/incidents/{BIG}/timeline",
    f"/analysis/incident/{BIG}",
    f"/analysis/service-area?minutes=5&facility_id={BIG}",
    f"/scenarios/{BIG}",
    f"/scenarios?incident_id={BIG}",
    f"/scenarios/compare?a={BIG}&b=1",
    f"/collections/buildings/items?levels={BIG}",
])
def test_integers_past_bigint(client: TestClient, staff: dict[str, str], url: str) -> None:
    refused(client.get(url, headers=staff), 400, 404, 422)


def test_numbers_out_of_range(client: TestClient, staff: dict[str, str], incident: int,
                              engine: Engine) -> None:
    refused(client.get("/analysis/within", params={"lon": 108.22, "lat": 16.06,
                                                   "radius": "5e-324"}), 400, 422)
    refused(client.get("/collections/buildings/items",
                       params={"filter": "S_INTERSECTS(geom, POINT(1e400 0))"}), 400)
    refused(client.get(f"{STA}/Things",
                       params={"$filter": "geo.intersects(location, "
                                          "geography'POINT(1e400 0)')"}), 400)
    refused(client.patch(f"/incidents/{incident}", content=b'{"severity": 1e400}',
                         headers={**staff, "Content-Type": "application/json"}), 400, 422)
    refused(client.post("/incidents", content=b'{"category": "flood", "severity": 1e400, '
                        b'"geometry": {"type": "Point", "coordinates": [108.22, 16.06]}}',
                        headers={**staff, "Content-Type": "application/json"}), 400, 422)
    refused(client.patch(f"/incidents/{incident}", json={"sla_due": "not a date"},
                         headers=staff), 400, 422)
    level = make_net(engine).level
    for interval in ("1e20d", "99999999999999999999d", "P99999999999999999D"):
        refused(client.get(f"{STA}/Datastreams({level})/Observations/aggregate",
                           params={"interval": interval}), 400)


def test_deep_nesting(client: TestClient) -> None:
    cql = "NOT " * 4000 + "height > 3"
    refused(client.get("/collections/buildings/items", params={"filter": cql[:19_000]}), 400)
    cql_paren = "(" * 3000 + "height > 3" + ")" * 3000
    refused(client.get("/collections/buildings/items", params={"filter": cql_paren}), 400)
    odata = "not " * 3000 + "id eq 1"
    refused(client.get(f"{STA}/Things", params={"$filter": odata}), 400)
    refused(client.get(f"{STA}/Things", params={"$filter": "(" * 3000 + "id eq 1" + ")" * 3000}),
            400)


@pytest.mark.parametrize("geometry", [
    '{"type": "Point", "coordinates": [108.2208, 16.0678, 5.0]}',
    '{"type": "Point", "coordinates": [1e400, 16.0]}',
    '{"type": "Point", "coordinates": [2.35, 48.85]}',  # Paris: outside the city
    '{"type": "Point", "coordinates": [108.2]}',
    '{"type": "Point", "coordinates": "x"}',
    '{"type": "Polygon", "coordinates": [[[108.2, 16.0], [108.3, 16.0], [108.3, 16.1, 9], '
    '[108.2, 16.0]]]}',
    '{"type": "Point", "coordinates": ' + "[" * 5000 + "]" * 5000 + "}",
])
def test_incident_geometry(client: TestClient, staff: dict[str, str], engine: Engine,
                           geometry: str) -> None:
    before = count(engine, "incident")
    body = '{"category": "flood", "title": "t", "geometry": ' + geometry + "}"
    r = client.post("/incidents", content=body.encode(),
                    headers={**staff, "Content-Type": "application/json"})
    refused(r, 400, 422)
    before_edit = client.get("/incidents", headers=staff).json()["numberReturned"]
    assert count(engine, "incident") == before == before_edit


def test_points_outside_the_city(client: TestClient, staff: dict[str, str]) -> None:
    refused(client.get("/analysis/nearest", params={"lon": 2.35, "lat": 48.85}), 400)
    refused(client.get("/analysis/within", params={"lon": 2.35, "lat": 48.85}), 400)
    refused_open311(client.post("/open311/v2/requests.json", data={
        "service_code": "pothole", "lat": "48.85", "long": "2.35", "description": "x"}), 400)
    refused_open311(client.post("/open311/v2/requests.json", data={
        "service_code": "pothole", "lat": "1e400", "long": "108.2", "description": "x"}), 400)


@pytest.mark.parametrize(("path", "body"), [
    ("/scenarios/flood", b'{"water_level_m": 1e400}'),
    ("/scenarios/flood", b'{"water_level_m": 2, "seeds": [[2.35, 48.85]]}'),
    ("/scenarios/flood", b'{"water_level_m": 2, "seeds": [[108.2, 1e400]]}'),
    ("/scenarios/flood", b'{"water_level_m": 2, "name": "' + b"n" * 101 + b'"}'),
    ("/scenarios/flood", b'{"water_level_m": 2, "incident_id": ' + BIG.encode() + b"}"),
    ("/scenarios/closure", b'{"segment_ids": [' + BIG.encode() + b"]}"),
    ("/scenarios/closure", b'{"segment_ids": [1], "points": [[2.35, 48.85]]}'),
    ("/scenarios/outage", b'{"edge_id": ' + BIG.encode() + b"}"),
])
def test_scenario_inputs(client: TestClient, staff: dict[str, str], path: str,
                         body: bytes) -> None:
    refused(client.post(path, content=body,
                        headers={**staff, "Content-Type": "application/json"}), 400, 422)


def test_incident_list_bbox_must_be_finite(client: TestClient, staff: dict[str, str]) -> None:
    refused(client.get("/incidents", params={"bbox": "1e400,16,108.3,16.1"}, headers=staff), 400)


def test_sensorthings_text_limits(client: TestClient, staff: dict[str, str],
                                  engine: Engine) -> None:
    before = count(engine, "thing")
    refused(client.post(f"{STA}/Things", json={"name": "n" * 201}, headers=staff), 400)
    refused(client.post(f"{STA}/Things", json={"name": "x", "description": "d" * 5001},
                        headers=staff), 400)
    assert count(engine, "thing") == before


def test_an_unexpected_error_is_a_logged_500_in_the_shape(
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(settings)

    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/test-boom", boom)
    with TestClient(app, raise_server_exceptions=False) as c, caplog.at_level("ERROR"):
        r = c.get("/test-boom", headers={"X-Request-ID": "req-500-test"})
    assert r.status_code == 500
    body = r.json()
    assert body["code"] == "InternalServerError" and body["request_id"] == "req-500-test"
    assert "a bug" not in r.text  # internals stay in the log
    assert r.headers["x-request-id"] == "req-500-test"
    logged = [rec for rec in caplog.records if "req-500-test" in rec.getMessage()]
    assert logged and logged[0].exc_info and logged[0].exc_info[0] is RuntimeError


def test_a_database_conflict_is_409(settings: Settings, engine: Engine) -> None:
    from sqlalchemy import text

    app = create_app(settings)

    def twice() -> None:
        with engine.begin() as conn:  # one key twice: a unique violation
            conn.execute(text("CREATE TEMP TABLE t (k int UNIQUE)"))
            conn.execute(text("INSERT INTO t VALUES (1), (1)"))

    app.add_api_route("/test-conflict", twice)
    with TestClient(app, raise_server_exceptions=False) as c:
        body = refused(c.get("/test-conflict"), 409)
    assert body["code"] == "Conflict"


def test_warning_text_limits(client: TestClient, staff: dict[str, str], incident: int) -> None:
    refused(client.post(f"/incidents/{incident}/publish", json={"headline_vi": "h" * 201},
                        headers=staff), 422)
    refused(client.post(f"/incidents/{incident}/publish",
                        json={"instruction_en": "i" * 5001}, headers=staff), 422)
