"""Past one machine: two `twin serve` processes on their own ports, sharing one database
and one Redis (the notify bus on Redis pub/sub, fed by one relay): an SSE client on A
hears an incident written through B, and a tile cached on A changes after a write on B."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import httpx
import mapbox_vector_tile
import morecantile
import pytest

from tests.redissrv import RedisServer, redis_server
from tests.server.livesrv import serve
from tests.server.test_live import SSEReader
from twin.users import add_user

LON, LAT = 108.2199, 16.0601
POINT = {"type": "Point", "coordinates": [LON, LAT]}


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis2")) as srv:
        yield srv


@pytest.fixture(scope="module")
def pair(settings, engine, redis):  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        add_user(conn, "pair-responder", "password-123", "responder")
    with serve(settings, workers=1, TWIN_REDIS_URL=redis.url) as a, \
            serve(settings, workers=1, TWIN_REDIS_URL=redis.url) as b:
        assert a != b
        tok = httpx.post(b + "/auth/token",
                         data={"username": "pair-responder", "password": "password-123"})
        yield a, b, {"Authorization": f"Bearer {tok.json()['access_token']}"}


def numsub(redis: RedisServer, channel: str) -> int:
    out = subprocess.run(["redis-cli", "-p", str(redis.port), "PUBSUB", "NUMSUB", channel],
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[1])


def create(base: str, staff: dict[str, str]) -> int:
    r = httpx.post(base + "/incidents", json={"category": "fire", "title": "Cháy kho",
                                              "geometry": POINT}, headers=staff)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_sse_on_a_hears_an_incident_written_through_b(pair, redis, settings) -> None:  # type: ignore[no-untyped-def]
    a, b, staff = pair
    rd = SSEReader(a + "/live", staff)
    rd.start()
    assert rd.next("hello")
    db = settings.url().rsplit("/", 1)[1].split("?")[0]
    # A's live hub listens on Redis, not on PostgreSQL
    assert numsub(redis, f"{db}:twin_live") >= 1
    iid = create(b, staff)
    _, _, data = rd.next("incident", timeout=10)
    assert data["kind"] == "created" and data["feature"]["id"] == iid
    rd.stop = True


def test_tile_cached_on_a_changes_after_a_write_through_b(pair, redis, settings) -> None:  # type: ignore[no-untyped-def]
    a, b, staff = pair
    db = settings.url().rsplit("/", 1)[1].split("?")[0]
    t = morecantile.tms.get("WebMercatorQuad").tile(LON, LAT, 14)
    u = f"{a}/collections/incidents_staff/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}"
    first = httpx.get(u, headers=staff)
    assert first.status_code in (200, 204), first.text
    etag = first.headers["etag"]
    assert httpx.get(u, headers={**staff, "If-None-Match": etag}).status_code == 304
    iid = create(b, staff)
    deadline = time.monotonic() + 5  # well inside the trackers' 10 s re-read
    r = httpx.get(u, headers=staff)
    while r.headers["etag"] == etag and time.monotonic() < deadline:
        time.sleep(0.05)
        r = httpx.get(u, headers=staff)
    assert r.status_code == 200 and r.headers["etag"] != etag
    layer = mapbox_vector_tile.decode(r.content)["incidents_staff"]
    assert iid in {f["id"] for f in layer["features"]}
    assert httpx.get(u, headers={**staff, "If-None-Match": etag}).status_code == 200
    # both servers' tile trackers are Redis subscribers
    assert numsub(redis, f"{db}:twin_table") >= 2
