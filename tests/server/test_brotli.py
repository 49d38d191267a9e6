"""Brotli answers (Accept-Encoding: br) for JSON/GeoJSON/CSV/HTML, precompressed .br vendor
bundles, and vendor files under hashed names with immutable caching."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import brotli
import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.compression import accepted_encodings
from tests.feature_data import BBOX, delete, insert
from web import assets

VENDOR = Path(__file__).resolve().parents[2] / "web" / "static" / "vendor"
IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def client(settings, engine) -> Iterator[TestClient]:  # noqa: ANN001
    insert(engine)
    try:
        with TestClient(create_app(settings)) as c:
            yield c
    finally:
        delete(engine)


def raw(client: TestClient, path: str, encoding: str) -> tuple[dict[str, str], bytes]:
    with client.stream("GET", path, headers={"Accept-Encoding": encoding}) as r:
        assert r.status_code == 200, r.read()
        return dict(r.headers), b"".join(r.iter_raw())


def test_accept_encoding_parsing() -> None:
    assert accepted_encodings("gzip, deflate, br, zstd") == {"gzip", "deflate", "br", "zstd"}
    assert accepted_encodings("br;q=0, gzip;q=0.8") == {"gzip"}
    assert accepted_encodings("BR ; q=1.0") == {"br"}
    assert accepted_encodings("br;q=x") == set() and accepted_encodings("") == set()


@pytest.mark.parametrize("path", [
    f"/collections/buildings/items?bbox={BBOX}&limit=100",
    f"/collections/buildings/items?bbox={BBOX}&limit=100&f=csv",
    "/openapi.json",
    "/collections",
])
def test_br_answer_decodes_to_the_same_bytes(client, path) -> None:  # noqa: ANN001
    _, plain = raw(client, path, "identity")
    headers, body = raw(client, path, "gzip, deflate, br")
    assert headers["content-encoding"] == "br"
    assert "accept-encoding" in headers["vary"].lower()
    assert brotli.decompress(body) == plain
    assert len(body) < len(plain) / 2
    gz_headers, gz_body = raw(client, path, "gzip")
    assert gz_headers["content-encoding"] == "gzip"  # gzip-only clients still get gzip
    # q=0 refuses br
    assert raw(client, path, "br;q=0, gzip")[0]["content-encoding"] == "gzip"


def test_small_answers_and_tiles_are_left_alone(client) -> None:  # noqa: ANN001
    headers, body = raw(client, "/healthz", "br")
    assert "content-encoding" not in headers and json.loads(body)
    import morecantile

    t = morecantile.tms.get("WebMercatorQuad").tile(108.5005, 16.5005, 14)
    headers, body = raw(client, f"/tiles/buildings/14/{t.x}/{t.y}.mvt", "br, gzip")
    assert headers["content-encoding"] == "gzip" and body[:2] == b"\x1f\x8b"  # as stored


def test_vendor_bundles_precompressed_as_br_and_served_under_hashed_names(client) -> None:  # noqa: ANN001
    manifest = json.loads((VENDOR / "manifest.json").read_text())
    original = (VENDOR / "deckgl-bundle.js").read_bytes()
    headers, body = raw(client, "/static/vendor/deckgl-bundle.js", "gzip, br")
    assert headers["content-encoding"] == "br" and brotli.decompress(body) == original
    assert body == (VENDOR / "deckgl-bundle.js.br").read_bytes()  # the precompressed file
    assert headers["cache-control"] == "public, max-age=86400"  # unhashed: a day
    hashed = manifest["deckgl-bundle.js"]
    assert hashed.startswith("deckgl-bundle.") and hashed != "deckgl-bundle.js"
    for enc in ("br", "gzip", "identity"):
        headers, body = raw(client, f"/static/vendor/{hashed}", enc)
        assert headers["cache-control"] == IMMUTABLE
        assert headers["content-type"].startswith(("text/javascript", "application/javascript"))
        decoded = {"br": brotli.decompress, "gzip": __import__("gzip").decompress,
                   "identity": lambda b: b}[enc](body)
        assert decoded == original
    css = manifest["maplibre-gl.css"]
    headers, _ = raw(client, f"/static/vendor/{css}", "br")
    assert headers["cache-control"] == IMMUTABLE and headers["content-type"].startswith("text/css")
    # a stale or made-up hash is not served
    assert client.get("/static/vendor/deckgl-bundle.000000000000.js").status_code == 404


def test_pages_link_the_hashed_bundles(client) -> None:  # noqa: ANN001
    manifest = assets.manifest()
    page = client.get("/map", headers={"Accept": "text/html"}).text
    for name in ("deckgl-bundle.js", "maplibre-gl.css", "mvt-worker.js"):
        assert f"/static/vendor/{manifest[name]}" in page
    assert 'src="/static/vendor/deckgl-bundle.js"' not in page
