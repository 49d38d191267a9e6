"""Flood fill on a small synthetic DEM with a known answer, far from other test data.

Columns (west → east), 40 rows each, cells 0.0005° (~55 m) at lon 105, lat 12::

    0–4 sea 0 m | 5–19 plain 1 m | 20–22 ridge 5 m | 23–37 basin 1 m | 38–59 hill 10 m

The sea touches the west edge, so it is the default source. The basin lies behind the
ridge: dry until the water tops 5 m.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, text

from twin.errors import InputError
from twin.scenarios import flood
from twin.scenarios.flood_scenario import FloodParams, run_flood
from twin.scenarios.terrain import load_dem
from twin.settings import Settings

X0, Y0, RES = 105.0, 12.0, 0.0005
ROWS, COLS = 40, 60
PLAIN, RIDGE, BASIN, HILL = slice(5, 20), slice(20, 23), slice(23, 38), slice(38, 60)


def lonlat(col: float, row: float) -> tuple[float, float]:
    """The centre of a cell (fractional cells allowed)."""
    return X0 + (col + 0.5) * RES, Y0 - (row + 0.5) * RES


def write_basin(path: Path) -> Path:
    import rasterio
    from affine import Affine

    z = np.zeros((ROWS, COLS), np.float32)
    z[:, PLAIN], z[:, RIDGE], z[:, BASIN], z[:, HILL] = 1, 5, 1, 10
    with rasterio.open(path, "w", driver="GTiff", width=COLS, height=ROWS, count=1,
                       dtype="float32", crs="EPSG:4326", nodata=-9999,
                       transform=Affine(RES, 0, X0, 0, -RES, Y0)) as ds:
        ds.write(z, 1)
    return path


@pytest.fixture(scope="module")
def basin(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    return load_dem(str(write_basin(tmp_path_factory.mktemp("dem") / "basin.tif")))


def test_basin_behind_the_ridge_stays_dry_until_the_water_tops_it(basin) -> None:  # noqa: ANN001
    low = flood.fill(basin, water_level_m=2)
    assert low.seeds == "sea"
    assert low.flooded[:, PLAIN].all() and not low.flooded[:, BASIN].any()
    assert low.cells == ROWS * 15
    assert not low.flooded[:, :5].any()  # the sea is not flooded land
    depth = low.depth
    assert np.allclose(depth[:, PLAIN], 1.0) and np.isnan(depth[:, BASIN]).all()

    just_below = flood.fill(basin, water_level_m=4.9)
    assert not just_below.flooded[:, BASIN].any()
    high = flood.fill(basin, water_level_m=5)
    assert high.flooded[:, BASIN].all() and high.flooded[:, RIDGE].all()
    assert not high.flooded[:, HILL].any()
    assert high.cells == ROWS * 33
    assert np.allclose(high.depth[:, BASIN], 4.0)


def test_area_and_polygon(basin) -> None:  # noqa: ANN001
    import shapely

    grid = flood.fill(basin, water_level_m=2)
    cell_m2 = (RES * 111_195) ** 2 * np.cos(np.radians(Y0 - 20 * RES))
    assert grid.area_km2() == pytest.approx(ROWS * 15 * cell_m2 / 1e6, rel=0.01)
    poly = flood.polygon(grid)
    assert poly.geom_type == "MultiPolygon" and poly.is_valid
    assert poly.bounds == pytest.approx((X0 + 5 * RES, Y0 - ROWS * RES, X0 + 20 * RES, Y0))
    pieces = flood.pieces(grid, block=8)
    assert len(pieces) > 1
    assert shapely.union_all(pieces).area == pytest.approx(poly.area)


def test_seeds_flood_from_their_own_ground(basin) -> None:  # noqa: ANN001
    seed = lonlat(30, 20)  # in the basin
    grid = flood.fill(basin, rise_m=1, seeds=[seed])
    assert grid.seeds == "points" and grid.reference_m == 1 and grid.level_m == 2
    assert grid.flooded[:, BASIN].all() and not grid.flooded[:, PLAIN].any()
    dry = flood.fill(basin, water_level_m=2, seeds=[lonlat(50, 20)])  # on the hill
    assert dry.cells == 0 and any("above the water level" in n for n in dry.notes)
    assert flood.polygon(dry) is None and dry.window() is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"water_level_m": -1}, "between 0 and 1000"),
        ({"water_level_m": 5000}, "between 0 and 1000"),
        ({"water_level_m": float("nan")}, "between"),
        ({"rise_m": -0.5}, "between 0 and 100"),
        ({}, "exactly one"),
        ({"water_level_m": 1, "rise_m": 1}, "exactly one"),
        ({"water_level_m": 2, "seeds": [(104.0, 12.0)]}, "outside the DEM"),
    ],
)
def test_bad_parameters(basin, kwargs, match) -> None:  # noqa: ANN001
    with pytest.raises(InputError, match=match):
        flood.fill(basin, **kwargs)


def test_depth_cog(basin, tmp_path: Path) -> None:  # noqa: ANN001
    import rasterio

    grid = flood.fill(basin, water_level_m=5)
    out = flood.write_depth(grid, tmp_path / "depth.tif")
    assert out is not None and out.exists()
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 4326 and ds.dtypes[0] == "float32"
        assert (ds.width, ds.height) == (33, ROWS)  # cropped to the flooded window
        assert ds.bounds.left == pytest.approx(X0 + 5 * RES)
        d = ds.read(1)
    assert np.nanmax(d) == pytest.approx(4.0) and np.nanmin(d) == pytest.approx(0.0)
    assert not list(tmp_path.glob(".*"))


def test_run_flood_stores_the_scenario_and_finds_what_is_affected(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    from twin.ingest.dem import import_dem
    from twin.progress import NullReporter

    with engine.begin() as conn:
        import_dem(conn, write_basin(tmp_path / "basin.tif"), reporter=NullReporter(),
                   settings=settings, name="test-basin")
        conn.execute(text("DELETE FROM building WHERE source = 'test-flood'"))
        for sid, (c, r) in {"plain": (10, 10), "basin": (30, 10), "hill": (50, 10)}.items():
            x, y = lonlat(c, r)
            conn.execute(
                text("INSERT INTO building (source, source_id, use, levels, area_m2, "
                     "population, geom) VALUES ('test-flood', :s, 'residential', 2, 100, 7, "
                     "ST_Multi(ST_Expand(ST_SetSRID(ST_MakePoint(:x, :y), 4326), 0.0001)))"),
                {"s": sid, "x": x, "y": y},
            )
        ids = dict(conn.execute(text(
            "SELECT source_id, id FROM building WHERE source = 'test-flood'")).all())
    with engine.begin() as conn:
        low = run_flood(conn, settings, FloodParams(water_level_m=2, dem="test-basin"))
    with engine.begin() as conn:
        high = run_flood(conn, settings, FloodParams(water_level_m=6, dem="test-basin"),
                         save=False)
    s = low["summary"]
    assert low["id"] is not None and low["kind"] == "flood"
    assert ids["plain"] in s["buildings"]["ids"] and ids["basin"] not in s["buildings"]["ids"]
    assert s["buildings"]["floor_area_m2"] >= 200 and s["population"] >= 7
    assert s["max_depth_m"] == pytest.approx(1.0) and s["source"] == "sea"
    assert "_building_ids" not in s
    assert {ids["plain"], ids["basin"]} <= set(high["summary"]["buildings"]["ids"])
    assert ids["hill"] not in high["summary"]["buildings"]["ids"]
    assert high["id"] is None and high["links"] == {}
    with engine.connect() as conn:
        row = conn.execute(text("SELECT raster_path, ST_IsValid(geom), result ? "
                                "'_building_ids' FROM scenario WHERE id = :i"),
                           {"i": low["id"]}).one()
        unsaved = conn.execute(text("SELECT count(*) FROM scenario WHERE params->>'dem' = "
                                    "'test-basin' AND params->>'water_level_m' = '6'")).scalar()
    assert row[0] and Path(row[0]).exists() and row[1] and row[2]
    assert unsaved == 0


def test_real_dem_bathtub_agrees_with_an_independent_count(danang: Path) -> None:
    """The bathtub at 2 m on the real SRTM DEM, recomputed with scipy's labelling
    (4-connected), the sea as the raw cells ≤ 0.5 m reaching the edge, and cell areas
    from pyproj's geodesic polygon area: the same cells and the same km²."""
    from pyproj import Geod
    from scipy import ndimage

    dem = load_dem(str(danang / "dem" / "danang_srtm_gl1_30m.tif"))
    grid = flood.fill(dem, water_level_m=2)
    four = ndimage.generate_binary_structure(2, 1)
    low, _ = ndimage.label(dem.elev <= 0.5, structure=four)
    edge = np.unique(np.concatenate([low[0], low[-1], low[:, 0], low[:, -1]]))
    sea = np.isin(low, edge[edge > 0])
    assert (sea == dem.sea).all()
    wet, _ = ndimage.label(dem.conditioned <= 2, structure=four)
    keep = np.unique(wet[sea])
    expected = np.isin(wet, keep[keep > 0]) & ~sea
    assert (grid.flooded == expected).all()
    # no depth deeper than the level over the lowest land: no pit left below sea level
    assert np.nanmax(grid.depth) <= 2 - 0.5 and not (dem.conditioned[~sea] <= 0.5).any()
    a = dem.transform
    geod = Geod(ellps="WGS84")
    per_row = []
    for r in range(dem.shape[0]):
        top, bottom = a.f + r * a.e, a.f + (r + 1) * a.e
        area, _ = geod.polygon_area_perimeter([a.c, a.c + a.a, a.c + a.a, a.c],
                                              [top, top, bottom, bottom])
        per_row.append(abs(area))
    km2 = float((expected.sum(axis=1) * np.asarray(per_row)).sum() / 1e6)
    assert grid.area_km2() == pytest.approx(km2, rel=1e-9)
