"""The rain model on small synthetic DEMs with known answers (no database: the curve
numbers are given), the terrain conditioning and the 4-connectivity of every model.

Basin DEM (12 rows × 24 cols, 0.0005° cells at lon 106, lat 11; rows 0 and 11 are
20 m walls)::

    cols 0–2 sea 0 m | 3–4 shore 3 m | 5–9 basin B 1 m | 10 wall 4 m |
    11–15 basin A 2 m | 16–22 slope 5→8 m draining into A | 23 wall 20 m

A (capacity 2 m) spills over the 4 m wall into B (capacity 2 m, spills at 3 m to the
sea). With every drop running off (CN 100) and no drains, each cell's water runs down
its steepest 4-neighbour: A catches 120 cells' rain (itself and the slope), B 70
(itself, the wall between them and the inner shore column, which falls 2 m to B but
none to the sea side).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from twin.errors import InputError
from twin.scenarios import depressions, flood
from twin.scenarios.rain import RainParams, simulate
from twin.scenarios.terrain import DemArray, load_dem

RES = 0.0005
A_COLS, B_COLS = slice(11, 16), slice(5, 10)
INNER = slice(1, 11)


def write(path: Path, z: np.ndarray, x0: float, y0: float) -> DemArray:
    import rasterio
    from affine import Affine

    with rasterio.open(path, "w", driver="GTiff", width=z.shape[1], height=z.shape[0],
                       count=1, dtype="float32", crs="EPSG:4326", nodata=-9999,
                       transform=Affine(RES, 0, x0, 0, -RES, y0)) as ds:
        ds.write(z.astype(np.float32), 1)
    return load_dem(str(path))


@pytest.fixture(scope="module")
def basins(tmp_path_factory: pytest.TempPathFactory) -> DemArray:
    z = np.full((12, 24), 20.0)
    z[INNER, 0:3] = 0
    z[:, 0:3] = 0
    z[INNER, 3:5] = 3
    z[INNER, B_COLS] = 1
    z[INNER, 10] = 4
    z[INNER, A_COLS] = 2
    z[INNER, 16:23] = 5 + 0.5 * np.arange(7)
    return write(tmp_path_factory.mktemp("rain") / "basins.tif", z, 106.0, 11.0)


def run(dem: DemArray, mm: float, *, cn: float = 100.0, drain: float = 0.0,
        hours: int = 24, sea: float | None = None):  # noqa: ANN201
    dep = depressions.compute(dem)
    rain = np.full(hours, mm / hours)
    return simulate(dem, dep, np.full(dem.shape, cn, np.float32), rain, 1.0, drain, sea)


def test_depressions_of_the_basins(basins: DemArray) -> None:
    dep = depressions.compute(basins)
    assert dep.count == 2
    a, b = dep.label.reshape(basins.shape)[5, 13], dep.label.reshape(basins.shape)[5, 7]
    assert a and b and a != b
    assert dep.spill[a] == 4 and dep.spill[b] == 3
    assert dep.down[a] == b and dep.down[b] == 0  # A spills into B, B into the sea
    assert list(dep.upstream) == [a, b]


@pytest.mark.parametrize(
    ("mm", "depth_a", "depth_b", "to_sea_cells"),
    [
        (500, 1.2, 0.7, 0),  # A: 120 × 0.5 / 50 = 1.2 m; B: 70 × 0.5 / 50 = 0.7 m
        (1000, 2.0, 1.8, 0),  # A full (100 cells·m), 20 spill into B: (70 + 20) / 50
        (1500, 2.0, 2.0, 85),  # B full too: 180 − 100 + 105 − 100 = 85 cells·m to the sea
    ],
)
def test_a_basin_fills_to_its_spill_point_then_spills_into_the_next(
    basins: DemArray, mm: float, depth_a: float, depth_b: float, to_sea_cells: float,
) -> None:
    res = run(basins, mm)
    depth = res.grid.depth
    assert np.allclose(depth[INNER, A_COLS], depth_a, rtol=1e-3)
    assert np.allclose(depth[INNER, B_COLS], depth_b, rtol=1e-3)
    assert not res.grid.flooded[:, 16:].any() and not res.grid.flooded[:, :5].any()
    cell = float(basins.cell_area_m2.mean())
    shore_and_walls = res.balance["rain"] - 190 * mm / 1000 * cell  # what runs off at once
    assert res.balance["to_sea"] == pytest.approx(shore_and_walls + to_sea_cells * cell,
                                                  rel=1e-3)


def test_rivers_are_outlets(basins: DemArray) -> None:
    rivers = np.zeros(basins.shape, bool)
    rivers[INNER, 7] = True  # a river through basin B
    dep = depressions.compute(basins, rivers)
    assert dep.count == 1  # B drains into the river; A spills into it
    res = simulate(basins, dep, np.full(basins.shape, 100.0, np.float32), np.full(24, 1500 / 24),
                   1.0, 0.0)
    assert np.allclose(res.grid.depth[INNER, A_COLS], 2.0, rtol=1e-3)
    assert not res.grid.flooded[:, B_COLS].any()
    b = res.balance
    assert b["rain"] == pytest.approx(b["infiltrated"] + b["stored"] + b["to_sea"], rel=1e-9)


def test_rain_below_the_drain_capacity_floods_nothing(basins: DemArray) -> None:
    res = run(basins, 120, drain=5.0)  # 5 mm/h of rain, drains take 5 mm/h
    assert res.grid.cells == 0 and res.balance["stored"] == 0
    assert res.balance["drained"] == pytest.approx(res.balance["rain"], rel=1e-9)
    wetter = run(basins, 240, drain=5.0)  # 10 mm/h: 5 mm/h stays on the ground
    assert wetter.grid.cells > 0


def test_mass_balance(basins: DemArray) -> None:
    res = run(basins, 800, cn=80.0, drain=3.0)
    b = res.balance
    assert b["infiltrated"] > 0 and b["drained"] > 0 and b["stored"] > 0 and b["to_sea"] > 0
    assert b["rain"] == pytest.approx(
        b["infiltrated"] + b["drained"] + b["stored"] + b["to_sea"], rel=1e-9)
    area = np.repeat(basins.cell_area_m2, basins.shape[1]).reshape(basins.shape)
    assert (res.depth_all * area).sum() == pytest.approx(b["stored"], rel=1e-5)
    # SCS: with S = 25400/80 − 254 = 63.5 mm, Ia = 12.7 mm, Q(800) = 787.3² / 850.8
    q = (800 - 12.7) ** 2 / (800 - 12.7 + 63.5)
    land = area[:, 3:].sum()
    assert b["infiltrated"] == pytest.approx((800 - q) / 1000 * land, rel=1e-4)


def test_a_higher_tide_keeps_the_sea_in_low_ground(basins: DemArray) -> None:
    res = run(basins, 100, sea=3.5)  # over the 3 m shore: B is part of the sea
    assert np.allclose(res.grid.depth[INNER, B_COLS], 2.5, rtol=1e-3)
    assert np.allclose(res.grid.depth[INNER, 3:5], 0.5, rtol=1e-3)


@pytest.fixture(scope="module")
def dyke(tmp_path_factory: pytest.TempPathFactory) -> DemArray:
    """Plain 1 m land behind a diagonal 5 m dyke one cell wide (cells (r, 10 + r)); the
    sea (0 m) on the west; a −8 m radar pit at (15, 5) west of the dyke."""
    z = np.ones((20, 40))
    z[:, 0:3] = 0
    for r in range(20):
        z[r, 10 + r] = 5
    z[15, 5] = -8
    return write(tmp_path_factory.mktemp("dyke") / "dyke.tif", z, 107.0, 11.0)


def test_four_connectivity_does_not_leak_through_a_diagonal_gap(dyke: DemArray) -> None:
    from scipy import ndimage

    grid = flood.fill(dyke, water_level_m=2)
    cols = np.arange(40)[None, :]
    rows = np.arange(20)[:, None]
    behind = cols > 10 + rows
    assert grid.flooded[~behind & (dyke.elev == 1)].all()
    assert not grid.flooded[behind].any()
    # 8-connectivity would have leaked through every corner of the dyke
    labels, _ = ndimage.label(dyke.conditioned <= 2, structure=np.ones((3, 3), bool))
    assert labels[0, 0] == labels[0, 39]
    # rain routing spreads 4-connected too: no ground behind the dyke is filled to the
    # sea's side through a corner (the land there drains east, over its own 1 m plain)
    dep = depressions.compute(dyke)
    assert (dep.filled[behind] == 1).all()


def test_a_sub_sea_pit_not_connected_to_the_sea_is_filled(dyke: DemArray) -> None:
    assert dyke.pits.sum() == 1 and dyke.conditioned[15, 5] == 1
    assert dyke.elev[15, 5] == -8  # the raw DEM is kept for display
    grid = flood.fill(dyke, water_level_m=2)
    assert grid.depth[15, 5] == pytest.approx(1.0)  # not 10 m
    assert not dyke.sea[15, 5]


def test_geodesic_cell_area(dyke: DemArray) -> None:
    from pyproj import Geod

    a = dyke.transform
    lat0, lat1 = a.f + 3 * a.e, a.f + 4 * a.e
    lons = [a.c, a.c + a.a, a.c + a.a, a.c]
    area, _ = Geod(ellps="WGS84").polygon_area_perimeter(lons, [lat0, lat0, lat1, lat1])
    assert dyke.cell_area_m2[3] == pytest.approx(abs(area), rel=1e-9)


def test_notes_say_the_source_and_the_method(dyke: DemArray) -> None:
    sea = flood.fill(dyke, water_level_m=2)
    assert any("the sea" in n for n in sea.notes) and any("4-connected" in n for n in sea.notes)
    assert any("biển" in n for n in sea.notes_vi)
    seeded = flood.fill(dyke, rise_m=1, seeds=[(107.0 + 30.5 * RES, 11.0 - 5.5 * RES)])
    assert not any("the sea:" in n for n in seeded.notes)
    assert any("1 given seed point" in n for n in seeded.notes)
    assert any("điểm nguồn" in n for n in seeded.notes_vi)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rain_mm": -1, "hours": 3}, "rain_mm"),
        ({"rain_mm": 100, "hours": 0}, "hours"),
        ({"rain_mm": 100, "hours": -2}, "hours"),
        ({"rain_mm": 100}, "rain_mm and hours"),
        ({"hyetograph": ()}, "empty"),
        ({"hyetograph": (10, -1)}, "≥ 0"),
        ({"hyetograph": (10, float("nan"))}, "finite"),
        ({"hyetograph": (10,), "rain_mm": 10}, "not both"),
        ({"rain_mm": 1e6, "hours": 24}, "rain_mm"),
        ({"rain_mm": 100, "hours": 1e5}, "hours"),
        ({"rain_mm": 2000, "hours": 1}, "intensity"),
        ({"rain_mm": 100, "hours": 3, "drainage_mm_per_h": -1}, "drainage"),
        ({"rain_mm": 100, "hours": 3, "sea_level_m": 50}, "sea_level_m"),
        ({"rain_mm": 100, "hours": 3, "antecedent": "soggy"}, "antecedent"),
        ({"rain_mm": 100, "hours": 3, "interval_h": 0}, "interval_h"),
    ],
)
def test_bad_parameters(kwargs: dict, match: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InputError, match=match):
        RainParams(**kwargs).check()


def test_params_from_a_mapping() -> None:
    from twin.scenarios.rain import params_from_dict

    p = params_from_dict({"hyetograph": [10, 20], "interval_h": 0.5, "antecedent": "wet"})
    assert p.hyetograph == (10.0, 20.0) and p.intervals()[1] == 0.5
    with pytest.raises(InputError, match="unknown"):
        params_from_dict({"rain": 10})
    with pytest.raises(InputError, match="bad"):
        params_from_dict({"rain_mm": "lots", "hours": 3})


@pytest.fixture(scope="module")
def nested(tmp_path_factory: pytest.TempPathFactory) -> DemArray:
    """One depression (rim 5 m) holding two: C (cols 4–6, 1 m) and D (cols 8–15, 2 m)
    behind an inner saddle (col 7, 3 m); a slope (cols 16–22, 6→9 m) drains into D."""
    z = np.full((12, 24), 20.0)
    z[:, 0:3] = 0
    z[INNER, 3] = 5
    z[INNER, 4:7] = 1
    z[INNER, 7] = 3
    z[INNER, 8:16] = 2
    z[INNER, 16:23] = 6 + 0.5 * np.arange(7)
    return write(tmp_path_factory.mktemp("nested") / "nested.tif", z, 106.5, 11.0)


@pytest.mark.parametrize(
    ("mm", "depth_c", "depth_d", "depth_saddle"),
    [
        # C holds its own 40 cells' rain, D its 150 cells': two lakes below the saddle
        (400, 40 * 0.4 / 30, 150 * 0.4 / 80, 0.0),
        # D (capacity 80 cells·m at 3 m) overflows into C, both fill: one lake over C, the
        # saddle and D with 190 × 0.8 = 152 cells·m: 30(h−1) + 10(h−3) + 80(h−2) = 152
        (800, 2.1, 1.1, 0.1),
    ],
)
def test_nested_depressions_fill_spill_and_merge(
    nested: DemArray, mm: float, depth_c: float, depth_d: float, depth_saddle: float,
) -> None:
    res = run(nested, mm)
    d = res.grid.depth
    assert np.allclose(np.nan_to_num(d[INNER, 4:7]), depth_c, rtol=1e-3)
    assert np.allclose(np.nan_to_num(d[INNER, 8:16]), depth_d, rtol=1e-3)
    assert np.allclose(res.depth_all[INNER, 7], depth_saddle, atol=1e-3)
    one_lake = simulate(nested, depressions.compute(nested), np.full(nested.shape, 100.0,
                        np.float32), np.full(24, mm / 24), 1.0, 0.0, nested=False)
    assert one_lake.balance["stored"] == pytest.approx(res.balance["stored"], rel=1e-9)
    if mm == 400:  # one lake per depression would have pooled it all in C first
        assert not np.allclose(np.nan_to_num(one_lake.grid.depth[INNER, 4:7]), depth_c,
                               rtol=1e-2)


def test_depressions_are_cached_per_terrain(basins: DemArray, tmp_path: Path) -> None:
    depressions._cache.clear()
    first = depressions.load(basins, tmp_path, "basins")
    files = list((tmp_path / "basins").glob("rain_depressions-*.npz"))
    assert len(files) == 1 and first.tree is not None
    depressions._cache.clear()  # read back from the file, not recomputed
    again = depressions.load(basins, tmp_path, "basins")
    assert again is not first and again.tree is not None
    assert (again.tree.parent == first.tree.parent).all() and (again.label == first.label).all()
    rivers = np.zeros(basins.shape, bool)
    rivers[INNER, 7] = True
    other = depressions.load(basins, tmp_path, "basins", rivers)
    assert other.count == 1 and len(list((tmp_path / "basins").glob("*.npz"))) == 2
