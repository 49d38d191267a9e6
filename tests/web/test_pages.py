"""The viewer pages and files over HTTP (no browser): built by pydeck, nothing external."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from tests.server.helpers import token_for
from web.assets import vendor_url
from web.pages import localise, render_map_page

HTML = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture(scope="module")
def client(settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def _config(page: str) -> dict:
    m = re.search(r"window\.TWIN_CONFIG = (\{.*?\});</script>", page)
    assert m, "no viewer configuration in the page"
    return json.loads(m.group(1))


@pytest.mark.parametrize("path", ["/", "/map", "/plan", "/ops", "/signin"])
def test_pages_are_html_with_no_external_url(client, path):
    r = client.get(path, headers=HTML)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
    for url in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert url.startswith(("/", "#")), url
    if path != "/signin":
        assert "createDeck(" in page  # pydeck's own page, kept
        assert f'<script src="{vendor_url("deckgl-bundle.js")}">' in page  # hashed name
        cfg = _config(page)
        ids = {lyr["id"] for lyr in cfg["layers"]}
        assert {"water", "roads", "buildings", "places"} <= ids
        assert "water_network" not in ids  # pages carry public layers only
        assert cfg["page"] == ("map" if path in ("/", "/map") else path[1:])


def test_landing_page_stays_json_for_api_clients(client):
    r = client.get("/", headers={"Accept": "application/json"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")


def test_static_files_and_no_escape(client):
    r = client.get("/static/viewer.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert client.get("/static/twin.css").status_code == 200
    assert client.get("/static/../pyproject.toml").status_code == 404
    assert client.get("/static/%2e%2e/pyproject.toml").status_code == 404
    assert client.get("/static/nope.js").status_code == 404


def test_viewer_layers_follow_the_role(client, engine):
    anon = client.get("/viewer/layers").json()
    assert anon["role"] == "anonymous" and not anon["staff"]
    ids = {lyr["id"] for lyr in anon["layers"]}
    assert "buildings" in ids and "water_network" not in ids
    b = next(lyr for lyr in anon["layers"] if lyr["id"] == "buildings")
    assert b["style"]["extrude"] == "height_m"
    height = next(p for p in b["properties"] if p["name"] == "height_m")
    assert height["title"] == {"vi": "Chiều cao (m)", "en": "Height (m)"}
    assert "table" not in b and "where" not in b  # no SQL in the browser

    def ids_for(role: str) -> set[str]:
        body = client.get("/viewer/layers", headers=token_for(client, engine, role)).json()
        return {lyr["id"] for lyr in body["layers"]}

    assert {"water_network", "utility_nodes"} <= ids_for("planner")
    assert "power_network" not in ids_for("planner")
    assert "power_network" in ids_for("admin")
    assert "water_network" not in ids_for("citizen")
    bad = client.get("/viewer/layers", headers={"Authorization": "Bearer nonsense"})
    assert bad.status_code == 401


def test_localise_refuses_to_leave_an_external_asset():
    page = render_map_page("map", [])
    assert "mapbox-gl" not in page and "bootstrap" not in page and "unpkg" not in page
    with pytest.raises(RuntimeError, match="external asset"):
        localise('<html><head><style></style></head><body><img src="https://x.org/a.png"></body>')
