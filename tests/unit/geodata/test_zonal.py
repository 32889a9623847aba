"""Zonal statistics against cases worked out by hand (exactextract does the work; these check it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer
from shapely.geometry import Polygon, box

from geodata.pixel_area import cell_area_m2
from geodata.zonal import zonal_statistics


def from_origin(west: float, north: float, xsize: float, ysize: float) -> Affine:
    return Affine(xsize, 0.0, west, 0.0, -ysize, north)


TO_LONLAT = Transformer.from_crs("EPSG:32648", "EPSG:4490", always_xy=True)


@contextmanager
def raster(tmp_path: Path, array: np.ndarray, crs: str, transform: Any, nodata: float | None = None) -> Iterator[Any]:
    path = tmp_path / "r.tif"
    profile = {"driver": "GTiff", "width": array.shape[1], "height": array.shape[0], "count": 1,
               "dtype": array.dtype.name, "crs": crs, "transform": transform, "nodata": nodata}  # fmt: skip
    with rasterio.open(path, "w", **profile) as out:
        out.write(array, 1)
    with rasterio.open(path) as dataset:
        yield dataset


def utm_polygon_as_lonlat(minx: float, miny: float, maxx: float, maxy: float) -> Polygon:
    corners = [(minx, miny), (maxx, miny), (maxx, maxy), (minx, maxy)]
    return Polygon([TO_LONLAT.transform(x, y) for x, y in corners])


def test_rectangle_covering_1111_11_cells_of_a_30_m_grid(tmp_path: Path) -> None:
    # 30 m cells from (600000, 3940000); a 1000 m × 999.999 m rectangle offset by 7 m inside the grid:
    # 999,999 m² / 900 m² = 1,111.11 cells whatever the offset.
    ones = np.ones((100, 100), dtype="float32")
    with raster(tmp_path, ones * 2, "EPSG:32648", from_origin(600_000, 3_940_000, 30, 30)) as dataset:
        plot = utm_polygon_as_lonlat(600_007, 3_937_500, 601_007, 3_938_499.999)
        [stats] = zonal_statistics(dataset, [plot])
    assert stats["cells"] == pytest.approx(1111.11, abs=1e-3)
    assert stats["area_m2"] == pytest.approx(999_999, abs=1)
    assert stats["sum"] == pytest.approx(2222.22, abs=2e-3) and stats["mean"] == pytest.approx(2.0)
    assert stats["integral"] == pytest.approx(2 * 999_999, abs=2)


def test_polygon_half_over_nodata(tmp_path: Path) -> None:
    values = np.arange(100, dtype="float32").reshape(10, 10) % 10  # value = column index
    values[:, :5] = -9999  # left half is nodata
    with raster(tmp_path, values, "EPSG:32648", from_origin(600_000, 3_940_000, 30, 30), nodata=-9999) as dataset:
        # columns 3..6 fully, rows 2..5: 4 × 4 cells, half of them nodata
        [stats] = zonal_statistics(dataset, [utm_polygon_as_lonlat(600_090, 3_939_820, 600_210, 3_939_940)])
    assert stats["cells"] == pytest.approx(8)  # only the valid half counts
    assert stats["mean"] == pytest.approx(5.5)  # columns 5 and 6
    assert stats["min"] == 5 and stats["max"] == 6
    assert stats["area_m2"] == pytest.approx(8 * 900)


def test_checkerboard_class_areas(tmp_path: Path) -> None:
    rows, cols = np.indices((20, 20))
    board = ((rows + cols) % 2 + 1).astype("uint8")  # classes 1 and 2
    with raster(tmp_path, board, "EPSG:32648", from_origin(600_000, 3_940_000, 30, 30)) as dataset:
        # 10 × 10 cells, aligned: 50 of each class; plus a polygon covering one and a half cells
        whole = utm_polygon_as_lonlat(600_060, 3_939_640, 600_360, 3_939_940)
        partial = utm_polygon_as_lonlat(600_000, 3_939_970, 600_045, 3_940_000)
        stats, part = zonal_statistics(dataset, [whole, partial], categorical=True, class_names={"1": "forest"})
    assert stats["classes"]["1"]["area_m2"] == pytest.approx(50 * 900)
    assert stats["classes"]["2"]["area_m2"] == pytest.approx(50 * 900)
    assert stats["classes"]["1"]["area_mu"] == pytest.approx(50 * 900 * 15 / 10_000)
    assert stats["classes"]["1"]["name"] == "forest" and stats["classes"]["2"]["share"] == pytest.approx(0.5)
    # cell (0,0) is class 1 (fully covered), cell (0,1) class 2 (half covered)
    assert part["classes"]["1"]["area_m2"] == pytest.approx(900) and part["classes"]["2"]["area_m2"] == pytest.approx(
        450
    )


def test_geographic_raster_uses_geodesic_cell_areas(tmp_path: Path) -> None:
    grid = np.full((10, 10), 100.0, dtype="float32")  # 100 t/ha of biomass everywhere
    with raster(tmp_path, grid, "EPSG:4490", from_origin(106.0, 35.6, 0.01, 0.01)) as dataset:
        [stats] = zonal_statistics(dataset, [box(106.02, 35.52, 106.04, 35.54)])  # exactly 2 × 2 cells
    # By hand (independent of geodata.pixel_area): ∫∫ M(φ)N(φ)cosφ dφ dλ over the 0.02° × 0.02° block.
    a, f = 6_378_137.0, 1 / 298.257222101
    e2 = f * (2 - f)
    phi = np.radians(np.linspace(35.52, 35.54, 20_001))
    w = 1 - e2 * np.sin(phi) ** 2
    expected_m2 = np.trapezoid(a * (1 - e2) / w**1.5 * a / np.sqrt(w) * np.cos(phi), phi) * np.radians(0.02)
    assert stats["area_m2"] == pytest.approx(expected_m2, rel=1e-9)
    assert float(cell_area_m2(35.52, 35.54, 0.02)) == pytest.approx(expected_m2, rel=1e-9)
    assert stats["integral"] / 10_000 == pytest.approx(100 * expected_m2 / 10_000, rel=1e-9)  # tonnes
    assert stats["cells"] == pytest.approx(4)
