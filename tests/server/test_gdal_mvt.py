"""GDAL's MVT driver as a real client of the tile endpoints (ogrinfo)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.layers.test_mvt import build_area, drop_area, tile_at
from tests.server.livesrv import serve

HERE = (108.70, 15.49)
pytestmark = pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="GDAL not installed")


@pytest.fixture(scope="module")
def base(settings, engine):
    ids = build_area(engine, *HERE)
    with serve(settings) as url:
        yield url, ids
    drop_area(engine)


def ogrinfo(*args: str) -> dict[str, int]:
    """Layer name → feature count from ``ogrinfo -ro -al -so``."""
    res = subprocess.run(["ogrinfo", "-ro", "-al", "-so", *args], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    names = re.findall(r"^Layer name: (\S+)", res.stdout, re.M)
    counts = [int(c) for c in re.findall(r"^Feature Count: (\d+)", res.stdout, re.M)]
    assert "EPSG\",3857" in res.stdout or "Pseudo-Mercator" in res.stdout, res.stdout
    return dict(zip(names, counts, strict=True))


def test_ogrinfo_reads_a_tile_over_http(base):
    url, ids = base
    t = tile_at(*HERE, 14)
    tile = f"{url}/collections/buildings/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}"
    found = ogrinfo("-oo", f"Z={t.z}", "-oo", f"X={t.x}", "-oo", f"Y={t.y}", tile)
    assert found == {"buildings": len(ids["buildings"])}


def test_ogrinfo_reads_a_saved_gzipped_composite_tile(base, tmp_path: Path):
    url, ids = base
    t = tile_at(*HERE, 14)
    tile = f"{url}/tiles/roads,buildings/{t.z}/{t.x}/{t.y}.mvt"
    with httpx.stream("GET", tile, headers={"Accept-Encoding": "gzip"}) as r:
        assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
        body = b"".join(r.iter_raw())  # as sent: still gzipped
    # GDAL reads gzipped tiles and takes the georeferencing from a z/x/y.pbf path
    path = tmp_path / str(t.z) / str(t.x) / f"{t.y}.pbf"
    path.parent.mkdir(parents=True)
    path.write_bytes(body)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    found = ogrinfo(str(path))
    assert found == {"roads": len(ids["roads"]), "buildings": len(ids["buildings"])}



def test_ogrinfo_opens_the_mvt_alias_through_vsicurl(base):
    """GDAL's MVT driver takes z/x/y from a URL that ends in /z/x/y.mvt."""
    url, ids = base
    t = tile_at(*HERE, 14)
    found = ogrinfo(f"MVT:/vsicurl/{url}/collections/buildings/tiles/WebMercatorQuad/"
                    f"{t.z}/{t.x}/{t.y}.mvt")
    assert found == {"buildings": len(ids["buildings"])}
