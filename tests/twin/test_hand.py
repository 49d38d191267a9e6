"""Height above nearest drainage on a synthetic valley, and the river flood by stage it
gives: known answers."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from twin.errors import InputError
from twin.scenarios import hand
from twin.scenarios.terrain import DemArray

CROSS = 1.0  # m per cell up the valley's sides
ALONG = 0.05  # m per cell down the valley (north to south)
ROWS, COLS, MID = 40, 21, 10
LAND = slice(0, ROWS - 1)  # the rows above the sea


def valley() -> tuple[DemArray, np.ndarray]:
    r, c = np.mgrid[0:ROWS, 0:COLS]
    z = 5.0 + ALONG * (ROWS - r) + CROSS * np.abs(c - MID)
    z[-1, :] = 0.0  # the river runs out into the sea along the south edge
    dem = DemArray("valley.tif", z.astype(np.float32),
                   Affine(0.0003, 0, 108.0, 0, -0.0003, 16.0), CRS.from_epsg(4326))
    rivers = np.zeros(z.shape, bool)
    rivers[:-1, MID] = True
    return dem, rivers


def test_hand_on_a_valley_is_the_height_over_its_river() -> None:
    dem, rivers = valley()
    got = hand.compute(dem, rivers)
    _, c = np.mgrid[0:ROWS, 0:COLS]
    # each cell drains straight across to the river beside it: HAND = the side's rise
    assert np.allclose(got.hand[LAND], CROSS * np.abs(c - MID)[LAND], atol=1e-4)
    assert (got.hand[LAND][rivers[LAND]] == 0).all()
    assert np.isnan(got.hand[-1]).all()  # the sea has no height above a river
    drain = got.drain.reshape(ROWS, COLS)[LAND]
    assert (drain % COLS == MID).all() and (drain // COLS == np.mgrid[LAND, 0:COLS][0]).all()


def test_a_stage_floods_the_same_height_over_the_bed_all_down_the_valley() -> None:
    dem, rivers = valley()
    got = hand.compute(dem, rivers)
    depth = hand.inundation(dem, got, 2.5)
    wet = np.isfinite(depth)
    # 1 and 2 cells out from the river on both sides, in every row; the river itself and
    # the cells 3 m up stay dry
    assert wet.sum(axis=1).tolist() == [4] * (ROWS - 1) + [0]
    assert np.allclose(depth[LAND, MID + 1], 1.5) and np.allclose(depth[LAND, MID - 2], 0.5)
    assert not wet[:, MID].any() and not wet[:, MID + 3].any()
    # the water surface follows the bed: ALONG lower per row downstream, not one level
    surface = dem.elev[LAND, MID + 1] + depth[LAND, MID + 1]
    assert np.allclose(np.diff(surface), -ALONG, atol=1e-4)


def test_a_hollow_beside_the_river_floods_with_it() -> None:
    dem, rivers = valley()
    z = dem.elev.copy()
    z[20, MID + 3] = dem.elev[20, MID] - 1.0  # a pit lower than the river bed next to it
    dem = DemArray(dem.path, z, dem.transform, dem.crs)
    got = hand.compute(dem, rivers)
    assert got.hand[20, MID + 3] >= 0  # never below the drainage


def test_a_terrain_without_rivers_is_refused() -> None:
    dem, rivers = valley()
    with pytest.raises(InputError, match="no river"):
        hand.compute(dem, np.zeros_like(rivers))
