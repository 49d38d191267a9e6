"""`twin tiles export`: public layers' tiles in a PMTiles archive, identical to what the
API serves, read back with the pmtiles package and served with HTTP range requests."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pmtiles.reader import MmapSource, Reader
from pmtiles.tile import TileType

from layers.catalog import load_catalog
from layers.mvt import render_tile
from layers.pmtiles_export import export
from server.app import create_app
from tests.feature_data import delete, insert
from twin.errors import InputError

BBOX = (108.49, 16.49, 108.60, 16.61)  # tests/feature_data.py's region


@pytest.fixture(scope="module")
def fx(engine):  # noqa: ANN001, ANN201
    ids = insert(engine)
    yield ids
    delete(engine)


@pytest.fixture(scope="module")
def archive(settings, engine, fx) -> Path:  # noqa: ANN001, ARG001
    catalog = load_catalog(settings.layers_file)
    path = settings.data_dir / "pmtiles" / "test-export.pmtiles"
    with engine.connect() as conn:
        info = export(conn, [catalog.get("roads"), catalog.get("buildings")], path, 12, 14,
                      BBOX)
    assert info["tiles"] > 0 and info["tiles"] <= info["planned"]
    return path


def test_archive_holds_the_api_tiles(settings, engine, archive) -> None:  # noqa: ANN001
    catalog = load_catalog(settings.layers_file)
    layers = [catalog.get("roads"), catalog.get("buildings")]
    with archive.open("rb") as f:
        r = Reader(MmapSource(f))
        h = r.header()
        assert (h["min_zoom"], h["max_zoom"], h["tile_type"]) == (12, 14, TileType.MVT)
        meta = r.metadata()
        assert [v["id"] for v in meta["vector_layers"]] == ["roads", "buildings"]
        assert meta["vector_layers"][1]["fields"]["levels"] == "Number"
        compared = 0
        import morecantile

        tms = morecantile.tms.get("WebMercatorQuad")
        with engine.connect() as conn:
            for z in (12, 13, 14):
                for t in tms.tiles(*BBOX, zooms=[z]):
                    want = render_tile(conn, layers, t.z, t.x, t.y)
                    got = r.get(t.z, t.x, t.y)
                    if not want:
                        assert got is None  # empty tiles are left out
                        continue
                    assert gzip.decompress(got) == want
                    compared += 1
    assert compared >= 3


def test_bad_exports_are_refused(settings, engine, tmp_path) -> None:  # noqa: ANN001
    catalog = load_catalog(settings.layers_file)
    with engine.connect() as conn:
        with pytest.raises(InputError, match="not public"):
            export(conn, [catalog.get("incidents_staff")], tmp_path / "a.pmtiles", 12, 14, BBOX)
        with pytest.raises(InputError, match="more than"):
            export(conn, [catalog.get("roads")], tmp_path / "b.pmtiles", 0, 16,
                   (107.0, 14.8, 112.9, 17.2))
        with pytest.raises(InputError, match="zooms"):
            export(conn, [catalog.get("roads")], tmp_path / "c.pmtiles", 14, 12, BBOX)
        with pytest.raises(InputError, match="no tile"):
            export(conn, [catalog.get("roads")], tmp_path / "d.pmtiles", 12, 12,
                   (2.30, 48.80, 2.31, 48.81))
    assert not list(tmp_path.glob("*.pmtiles*"))  # nothing half-written left behind


def test_archives_are_served_with_ranges(settings, archive) -> None:  # noqa: ANN001, ARG001
    with TestClient(create_app(settings)) as client:
        listing = client.get("/pmtiles").json()["archives"]
        assert {"name": "test-export", "href": "/pmtiles/test-export.pmtiles"}.items() <= \
            next(a for a in listing if a["name"] == "test-export").items()
        r = client.get("/pmtiles/test-export.pmtiles", headers={"Range": "bytes=0-126"})
        assert r.status_code == 206 and len(r.content) == 127 and r.content[:7] == b"PMTiles"
        assert r.headers["content-range"].startswith("bytes 0-126/")
        assert client.get("/pmtiles/nope.pmtiles").status_code == 404
        assert client.get("/pmtiles/..%2Fsecret.pmtiles").status_code == 404
