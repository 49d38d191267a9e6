"""Raster tiles, TileJSON, point and profile over HTTP on the real Đà Nẵng DEM."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import morecantile
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from server.app import create_app
from tests.layers.test_raster import HAI_CHAU, SON_TRA, decode, direct
from twin.settings import Settings

WMQ = morecantile.tms.get("WebMercatorQuad")
DEM = "danang-srtm-test"


def register_srtm(engine: Engine, settings: Settings, danang: Path) -> str:
    """Register the real DEM under its own name (other tests own the default name)."""
    from twin.ingest.dem import import_dem
    from twin.progress import NullReporter

    with engine.begin() as conn:
        import_dem(conn, danang / "dem" / "danang_srtm_gl1_30m.tif", reporter=NullReporter(),
                   settings=settings, name=DEM)
    return DEM


@pytest.fixture(scope="module")
def client(settings: Settings, engine: Engine, danang: Path) -> Iterator[TestClient]:
    register_srtm(engine, settings, danang)
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def srtm(danang: Path) -> str:
    return str(danang / "dem" / "danang_srtm_gl1_30m.tif")


@pytest.mark.parametrize("lonlat", [HAI_CHAU, SON_TRA, (108.1, 15.9)])
def test_point_equals_rasterio(client: TestClient, srtm: str, lonlat) -> None:  # noqa: ANN001
    r = client.get(f"/raster/elevation/point/{lonlat[0]},{lonlat[1]}?dem={DEM}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["elevation_m"] == direct(srtm, *lonlat) and body["dem"] == DEM


def test_point_errors(client: TestClient) -> None:
    assert client.get(f"/raster/elevation/point/107.0,16.0?dem={DEM}").status_code == 404
    assert client.get(f"/raster/elevation/point/abc,16.0?dem={DEM}").status_code == 400
    assert client.get(f"/raster/elevation/point/108.2,99?dem={DEM}").status_code == 400
    r = client.get("/raster/elevation/point/108.2,16.0?dem=no-such-dem")
    assert r.status_code == 404 and "unknown DEM" in r.json()["description"]


@pytest.mark.parametrize("kind", ["elevation", "hillshade", "slope"])
def test_tiles(client: TestClient, kind: str) -> None:
    t = WMQ.tile(*HAI_CHAU, 14)
    r = client.get(f"/raster/{kind}/14/{t.x}/{t.y}.png?dem={DEM}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png" and r.headers["etag"]
    img = decode(r.content)
    assert img.shape == (4, 256, 256) and (img[3] > 0).all()
    again = client.get(f"/raster/{kind}/14/{t.x}/{t.y}.png?dem={DEM}",
                       headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    far = WMQ.tile(105.0, 20.0, 14)
    assert client.get(f"/raster/{kind}/14/{far.x}/{far.y}.png?dem={DEM}").status_code == 204


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/raster/elevation/3/9/0.png", 404),  # x outside the matrix at z3
        ("/raster/elevation/40/0/0.png", 404),
        ("/raster/elevation/-1/0/0.png", 404),
        ("/raster/contours/10/0/0.png", 404),
        ("/raster/elevation/a/0/0.png", 422),
    ],
)
def test_tiles_outside_the_matrix(client: TestClient, path: str, status: int) -> None:
    assert client.get(f"{path}?dem={DEM}").status_code == status


def test_tilejson(client: TestClient) -> None:
    r = client.get(f"/raster/elevation/tilejson.json?dem={DEM}")
    assert r.status_code == 200
    tj = r.json()
    assert tj["tiles"][0].endswith(f"/raster/elevation/{{z}}/{{x}}/{{y}}.png?dem={DEM}")
    assert tj["bounds"] == pytest.approx([108.0799, 15.8701, 108.3199, 16.1201], abs=1e-3)
    assert tj["legend"]["stops"]
    assert client.get("/raster/elevation/tilejson.json").status_code == 200  # newest DEM


def test_profile(client: TestClient, srtm: str) -> None:
    line = f"{HAI_CHAU[0]},{HAI_CHAU[1]};{SON_TRA[0]},{SON_TRA[1]}"
    r = client.get(f"/raster/elevation/profile?line={line}&samples=30&dem={DEM}")
    assert r.status_code == 200, r.text
    p = r.json()
    assert len(p["points"]) == 30 and p["max_m"] == 686
    z = np.array([pt["elevation_m"] for pt in p["points"]])
    assert z[-1] == direct(srtm, *SON_TRA)
    for bad in ("108.2", "108.2,16;x,y", "1,2;3", ""):
        assert client.get(f"/raster/elevation/profile?line={bad}&dem={DEM}").status_code == 400
    assert client.get(f"/raster/elevation/profile?line={line}&samples=1").status_code == 422
