"""Raster tiles, point and profile on the real Đà Nẵng DEM (SRTM GL1, EPSG:4326)."""

from __future__ import annotations

from pathlib import Path

import morecantile
import numpy as np
import pytest

from layers import raster
from twin.errors import InputError, NotFound

WMQ = morecantile.tms.get("WebMercatorQuad")
HAI_CHAU = (108.2150, 16.0560)
SON_TRA = (108.2869, 16.1197)  # the DEM's highest cell (686 m)


@pytest.fixture(scope="module")
def dem(danang: Path) -> str:
    return str(danang / "dem" / "danang_srtm_gl1_30m.tif")


def direct(path: str, lon: float, lat: float) -> float:
    import rasterio

    with rasterio.open(path) as ds:
        r, c = ds.index(lon, lat)
        return float(ds.read(1, window=((r, r + 1), (c, c + 1)))[0, 0])


def decode(png: bytes) -> np.ndarray:
    import warnings

    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.io import MemoryFile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        mem = MemoryFile(png)
        ds = mem.open()
    with mem, ds:
        assert ds.driver == "PNG"
        return ds.read()


@pytest.mark.parametrize("lonlat", [HAI_CHAU, SON_TRA, (108.1, 15.9), (108.3, 16.0)])
def test_point_equals_rasterio(dem: str, lonlat: tuple[float, float]) -> None:
    assert raster.point(dem, *lonlat) == direct(dem, *lonlat)


def test_point_outside(dem: str) -> None:
    with pytest.raises(NotFound, match="outside"):
        raster.point(dem, 107.0, 16.0)


@pytest.mark.parametrize("kind", ["elevation", "hillshade", "slope"])
@pytest.mark.parametrize("z", [10, 12, 13, 16])
def test_tiles_decode_with_data(dem: str, kind: str, z: int) -> None:
    t = WMQ.tile(*HAI_CHAU, z)
    png = raster.tile(kind, dem, z, t.x, t.y)
    assert png is not None
    img = decode(png)
    assert img.shape == (4, 256, 256) and img.dtype == np.uint8
    # from z13 on the tile lies inside the DEM; at z10-12 it reaches past its north edge
    assert (img[3] > 0).mean() > (0.99 if z >= 13 else 0.1)
    assert img[:3].std() > 0  # not a flat colour


def test_tile_half_outside_is_partly_transparent(dem: str) -> None:
    t = WMQ.tile(108.3199, 16.0, 12)  # on the DEM's east edge
    img = decode(raster.tile("elevation", dem, 12, t.x, t.y) or b"")
    alpha = img[3] > 0
    assert alpha.any() and not alpha.all()


def test_tiles_outside_the_data_and_the_matrix(dem: str) -> None:
    t = WMQ.tile(105.0, 20.0, 13)
    assert raster.tile("elevation", dem, 13, t.x, t.y) is None
    with pytest.raises(NotFound, match="matrix"):
        raster.tile("elevation", dem, 3, 9, 0)
    with pytest.raises(NotFound, match="matrix"):
        raster.tile("elevation", dem, 30, 0, 0)
    with pytest.raises(NotFound, match="unknown raster"):
        raster.tile("contours", dem, 13, t.x, t.y)


def test_hillshade_lights_the_north_west_face(tmp_path: Path) -> None:
    """A pyramid lit from the north-west: its NW face is brighter than its SE face by
    what its slope (rise 1 m per ~11 m cell) gives."""
    import rasterio
    from affine import Affine

    n, res, x0, y0 = 200, 0.0001, 106.0, 14.0
    i = np.arange(n)
    pyramid = (100 - np.maximum(np.abs(i[:, None] - 100), np.abs(i[None, :] - 100))) * 1.0
    path = tmp_path / "pyramid.tif"
    with rasterio.open(path, "w", driver="GTiff", width=n, height=n, count=1,
                       dtype="float32", crs="EPSG:4326",
                       transform=Affine(res, 0, x0, 0, -res, y0)) as ds:
        ds.write(pyramid.astype("float32"), 1)
    centre = (x0 + n * res / 2, y0 - n * res / 2)
    t = WMQ.tile(*centre, 15)
    img = decode(raster.hillshade_tile(str(path), 15, t.x, t.y) or b"")
    b = WMQ.bounds(t)
    col = int((centre[0] - b.left) / (b.right - b.left) * 256)
    row = int((b.top - centre[1]) / (b.top - b.bottom) * 256)
    grey = img[0].astype(float)
    nw = grey[max(row - 40, 0):row - 10, max(col - 40, 0):col - 10]
    se = grey[row + 10:row + 40, col + 10:col + 40]
    # faces tilt atan(1 m / ~11 m) ≈ 5° towards / away from a sun 45° high:
    # 255·cos(40°) ≈ 195 and 255·cos(50°) ≈ 164 (flat ground: 255·cos(45°) ≈ 180)
    assert np.median(nw) == pytest.approx(195, abs=6)
    assert np.median(se) == pytest.approx(164, abs=6)
    slope = decode(raster.slope_tile(str(path), 15, t.x, t.y) or b"")
    assert slope.shape == (4, 256, 256)


def test_colorize_follows_the_legend() -> None:
    v = np.array([[-25.0, 0.0, 700.0, 5000.0]])
    rgba = raster.colorize(v, np.array([[True, True, True, False]]), raster.ELEVATION_LEGEND)
    assert tuple(rgba[:3, 0, 0]) == raster.ELEVATION_LEGEND[0][1]
    assert tuple(rgba[:3, 0, 2]) == raster.ELEVATION_LEGEND[-1][1]
    assert list(rgba[3, 0]) == [255, 255, 255, 0]


def test_profile(dem: str) -> None:
    line = [HAI_CHAU, SON_TRA]
    p = raster.profile(dem, line, samples=50)
    assert len(p["points"]) == 50 and p["samples"] == 50
    assert p["length_m"] == pytest.approx(10_500, rel=0.1)
    assert p["points"][0]["distance_m"] == 0
    assert p["points"][-1]["distance_m"] == pytest.approx(p["length_m"])
    assert p["points"][-1]["elevation_m"] == 686 and p["max_m"] == 686
    for pt in p["points"][::7]:
        assert pt["elevation_m"] == direct(dem, pt["lon"], pt["lat"])
    assert p["gain_m"] >= 686 - p["points"][0]["elevation_m"]


@pytest.mark.parametrize(
    "line",
    ["", "108.2,16.0", "108.2;16.0", "108.2,16.0;abc,16", "108.2,16.0;200,16",
     "108.2,16.0,3;108.3,16.1", "nan,nan;1,1"],
)
def test_malformed_lines(line: str) -> None:
    with pytest.raises(InputError):
        raster.parse_line(line)


def test_profile_off_the_dem(dem: str) -> None:
    with pytest.raises(InputError, match="does not cross"):
        raster.profile(dem, [(100.0, 10.0), (100.1, 10.1)])
    with pytest.raises(InputError, match="samples"):
        raster.profile(dem, [HAI_CHAU, SON_TRA], samples=1)


def test_tilejson_carries_the_legend() -> None:
    tj = raster.tilejson("elevation", "http://x/{z}/{x}/{y}.png", (108.0, 15.8, 108.3, 16.1),
                         name="elevation")
    assert tj["tilejson"] == "3.0.0" and tj["bounds"] == [108.0, 15.8, 108.3, 16.1]
    assert tj["legend"]["unit"] == "m" and tj["legend"]["stops"][0]["color"].startswith("#")
