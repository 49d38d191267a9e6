"""A small made-up DEM shared by the flood tests: the sea east of 108.235 E, land rising
1 m per 0.005° westwards (5 m at 108.21 E), covering the test cities (108.17–108.25 E,
16.02–16.10 N)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

X0, Y0, RES, N = 108.17, 16.10, 0.0005, 160


def write_dem(path: Path) -> Path:
    import rasterio
    from affine import Affine

    lon = X0 + (np.arange(N) + 0.5) * RES
    z = np.clip((108.235 - lon) * 200, 0, None).astype(np.float32)
    with rasterio.open(path, "w", driver="GTiff", width=N, height=N, count=1, dtype="float32",
                       crs="EPSG:4326", nodata=-9999,
                       transform=Affine(RES, 0, X0, 0, -RES, Y0)) as ds:
        ds.write(np.tile(z, (N, 1)), 1)
    return path
