"""DEM import: COG written and registered, re-import, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tests.conftest import count
from twin.errors import InputError
from twin.ingest.dem import import_dem
from twin.progress import NullReporter
from twin.settings import Settings


def run(engine: Engine, settings: Settings, path: Path, name: str | None = None):  # noqa: ANN201
    with engine.begin() as conn:
        return import_dem(conn, path, reporter=NullReporter(), settings=settings, name=name)


def terrain(engine: Engine, name: str):  # noqa: ANN201
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT name, kind, path, crs, width, height, res_x, res_y, nodata, min_value, "
            "max_value, ST_XMin(geom) w, ST_YMin(geom) s, ST_XMax(geom) e, ST_YMax(geom) n, "
            "source, source_id, updated_at FROM terrain WHERE name = :n"
        ), {"n": name}).one_or_none()


def leftovers(settings: Settings) -> list[Path]:
    return [p for p in settings.terrain_dir.glob(".*")] if settings.terrain_dir.exists() else []


def test_srtm_dem_is_registered_as_a_cog(engine: Engine, settings: Settings, danang: Path) -> None:
    import rasterio

    src = danang / "dem" / "danang_srtm_gl1_30m.tif"
    summary = run(engine, settings, src)
    row = terrain(engine, "danang_srtm_gl1_30m")
    assert row is not None
    assert (row.kind, row.crs, row.width, row.height) == ("dem", "EPSG:4326", 864, 900)
    assert row.w == pytest.approx(108.0799, abs=1e-3) and row.e == pytest.approx(108.3199, abs=1e-3)
    assert row.s == pytest.approx(15.8701, abs=1e-3) and row.n == pytest.approx(16.1201, abs=1e-3)
    assert row.res_x == pytest.approx(1 / 3600) and row.nodata == -32768
    assert (row.min_value, row.max_value) == (-25, 686)
    assert (row.source, row.source_id) == ("file", "danang_srtm_gl1_30m")
    assert summary.total("terrain", "inserted") == 1
    assert any("nodata" in n for n in summary.notes)
    cog = Path(row.path)
    assert cog.parent == settings.terrain_dir and cog.exists()
    with rasterio.open(cog) as ds:
        assert ds.profile["tiled"] and ds.overviews(1)
        assert (ds.width, ds.height) == (864, 900)
        assert ds.read(1).max() == 686
    assert leftovers(settings) == []

    again = run(engine, settings, src)
    assert again.total("terrain", "inserted") == 0
    assert count(engine, "terrain", "name = 'danang_srtm_gl1_30m'") == 1
    assert leftovers(settings) == []


def test_named_import_and_missing_nodata(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    import numpy as np
    import rasterio
    from affine import Affine

    path = tmp_path / "tiny.tif"
    with rasterio.open(path, "w", driver="GTiff", width=4, height=3, count=1, dtype="float32",
                       crs="EPSG:4326", transform=Affine(0.01, 0, 108.2, 0, -0.01, 16.1)) as ds:
        ds.write(np.arange(12, dtype="float32").reshape(3, 4), 1)
    summary = run(engine, settings, path, name="tiny-test")
    assert any("no nodata value" in n for n in summary.notes)
    row = terrain(engine, "tiny-test")
    assert row.nodata is None and (row.min_value, row.max_value) == (0, 11)
    assert Path(row.path).name == "tiny-test.tif"


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_bad_rasters_are_refused(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    import numpy as np
    import rasterio

    nocrs = tmp_path / "nocrs.tif"
    with rasterio.open(nocrs, "w", driver="GTiff", width=2, height=2, count=1,
                       dtype="int16") as ds:
        ds.write(np.zeros((2, 2), dtype="int16"), 1)
    text_file = tmp_path / "dem.tif"
    text_file.write_text("this is not a raster", encoding="utf-8")
    geojson = tmp_path / "area.geojson"
    geojson.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    before = count(engine, "terrain")
    with pytest.raises(InputError, match="no CRS"):
        run(engine, settings, nocrs)
    with pytest.raises(InputError, match="not a raster"):
        run(engine, settings, text_file)
    with pytest.raises(InputError, match="not a raster"):
        run(engine, settings, geojson)
    with pytest.raises(InputError, match="not found"):
        run(engine, settings, tmp_path / "missing.tif")
    with pytest.raises(InputError, match="bad terrain name"):
        run(engine, settings, nocrs, name="../escape")
    assert count(engine, "terrain") == before
    assert not (settings.terrain_dir / "nocrs.tif").exists()
    assert not (settings.terrain_dir / "dem.tif").exists()
    assert leftovers(settings) == []
