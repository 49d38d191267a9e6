"""Compressed answers: gzip for JSON/GeoJSON/CSV when asked, precompressed static bundles,
tiles and images untouched."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from tests.feature_data import BBOX, delete, insert

VENDOR = Path(__file__).resolve().parents[2] / "web" / "static" / "vendor"


@pytest.fixture(scope="module")
def client(settings, engine) -> Iterator[TestClient]:  # noqa: ANN001
    insert(engine)
    try:
        with TestClient(create_app(settings)) as c:
            yield c
    finally:
        delete(engine)


def raw(client: TestClient, path: str, encoding: str | None) -> httpx.Response:
    headers = {"Accept-Encoding": encoding} if encoding else {"Accept-Encoding": "identity"}
    return client.get(path, headers=headers)


@pytest.mark.parametrize("path", [
    f"/collections/buildings/items?bbox={BBOX}&limit=100",
    f"/collections/buildings/items?bbox={BBOX}&limit=100&f=csv",
    "/openapi.json",
    "/collections",
])
def test_json_geojson_csv_are_gzipped_when_asked(client, path) -> None:  # noqa: ANN001
    plain = raw(client, path, None)
    zipped = raw(client, path, "gzip")  # br-capable clients get br (test_brotli.py)
    assert plain.status_code == zipped.status_code == 200
    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in zipped.headers["vary"].lower()
    assert zipped.content == plain.content  # httpx decodes; same document
    assert int(zipped.headers["content-length"]) < len(plain.content) / 2


def test_the_deck_gl_bundle_is_precompressed(client) -> None:  # noqa: ANN001
    if not (VENDOR / "deckgl-bundle.js.gz").exists():
        pytest.fail("web assets were not built with their .gz (make web-assets)")
    with client.stream("GET", "/static/vendor/deckgl-bundle.js",
                       headers={"Accept-Encoding": "gzip"}) as r:
        body = b"".join(r.iter_raw())
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert r.headers["cache-control"].startswith("public, max-age=")
    assert r.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert len(body) < (VENDOR / "deckgl-bundle.js").stat().st_size / 2
    assert gzip.decompress(body) == (VENDOR / "deckgl-bundle.js").read_bytes()
    plain = raw(client, "/static/vendor/deckgl-bundle.js", None)
    assert "content-encoding" not in plain.headers
    assert plain.content == (VENDOR / "deckgl-bundle.js").read_bytes()
    assert raw(client, "/static/vendor/../../pages.py", "gzip").status_code == 404


def test_tiles_are_not_gzipped_twice(client) -> None:  # noqa: ANN001
    import morecantile

    t = morecantile.tms.get("WebMercatorQuad").tile(108.5005, 16.5005, 14)  # test buildings
    with client.stream("GET", f"/tiles/buildings/14/{t.x}/{t.y}.mvt",
                       headers={"Accept-Encoding": "gzip"}) as r:
        body = b"".join(r.iter_raw())
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert not gzip.decompress(body).startswith(b"\x1f\x8b")  # one layer of gzip, not two
