"""/metrics: Prometheus text for staff or a scraper token, 404 for everyone else."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from server.app import create_app
from server.metrics import family
from tests.server.helpers import token_for
from twin.settings import Settings


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    s = settings.model_copy(update={"metrics_token": "scrape-" + "x" * 32})
    with TestClient(create_app(s)) as c:
        yield c


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            out[(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "worker")))] = \
                s.value
    return out


def test_metrics_are_for_staff_and_scrapers_only(client, engine) -> None:  # noqa: ANN001
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code in (
        401, 404)
    r = client.get("/metrics", headers={"Authorization": "Bearer scrape-" + "x" * 32})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    staff = token_for(client, engine, "responder")
    assert client.get("/metrics", headers=staff).status_code == 200
    citizen = token_for(client, engine, "citizen")
    assert client.get("/metrics", headers=citizen).status_code == 404


def test_requests_tiles_pool_alarms_and_ingest_are_counted(client) -> None:  # noqa: ANN001
    auth = {"Authorization": "Bearer scrape-" + "x" * 32}
    before = samples(client.get("/metrics", headers=auth).text)
    for _ in range(3):
        assert client.get("/collections").status_code == 200
    client.get("/collections/no-such-layer/items")
    client.get("/tiles/roads/14/13000/7500.mvt")
    after = samples(client.get("/metrics", headers=auth).text)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("twin_http_requests_total", family="features", status="2xx") == 3
    assert delta("twin_http_requests_total", family="features", status="4xx") == 1
    assert delta("twin_http_request_seconds_count", family="features") == 4
    assert delta("twin_http_requests_total", family="tiles", status="2xx") == 1
    assert after[("twin_tile_cache", (("what", "misses"),))] >= 1
    assert after[("twin_db_pool", (("engine", "primary"), ("state", "size")))] > 0
    assert ("twin_live_clients", ()) in after
    assert ("twin_observations_last_minute", ()) in after


def test_route_families() -> None:
    assert family("/collections/buildings/items") == "features"
    assert family("/collections/buildings/tiles/WebMercatorQuad/14/1/2") == "tiles"
    assert family("/sta/v1.1/Things") == "sensorthings"
    assert family("/") == "viewer"
