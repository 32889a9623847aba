"""The run engine on a synthetic stack: tiling does not change totals; bad inputs are refused up front."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import shapely.geometry as sg
from affine import Affine

from core.errors import InvalidInput
from geodata.pixel_area import cell_area_m2
from gep.engine import Grid, RegionShape, RunConfig, Source, pixel_areas, plan_run, run_in_process
from gep.prices import load_table, parse_table
from gep.synthetic import NORTH, WEST, township_collection, write_stack

ROWS = COLS = 120
CELL = 0.001
INDICATORS = ["water_conservation", "oxygen_release", "soil_retention"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("stack")
    return folder, write_stack(folder, ROWS, COLS, cell_deg=CELL)


def regions() -> list[RegionShape]:
    return [
        RegionShape(f["properties"]["code"], f["properties"]["name"], sg.shape(f["geometry"]))
        for f in township_collection(ROWS, COLS, cell_deg=CELL, n=3)["features"]
    ]


def sources(folder: Path, names: dict[str, str], **override: Path) -> dict[str, Source]:
    out = {}
    for role, name in names.items():
        path = override.get(role, folder / name)
        out[role] = Source(role, name, path, hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def config(names: dict[str, str], **changes: Any) -> RunConfig:
    base: dict[str, Any] = {
        "name": "test",
        "year": 2025,
        "indicators": INDICATORS,
        "inputs": {**names, "practice_factor": 1.0},
        "prices": "prices_ganzi_2010",
        "negative_balance": "clamp-to-zero",
        "tile_size": ROWS,
    }
    return RunConfig.model_validate(base | changes)


def plan(cfg: RunConfig, srcs: dict[str, Source], prices: str = "prices_ganzi_2010") -> Any:
    return plan_run(cfg, srcs, regions(), load_table(prices), load_table("coefficients_default"))


def test_one_tile_and_many_tiles_give_the_same_totals(stack: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    folder, names = stack
    results = {}
    for size in (ROWS, 30, 17):  # 1, 16 and 64 tiles (ragged)
        merged, rasters = run_in_process(
            plan(config(names, tile_size=size), sources(folder, names)), tmp_path / str(size)
        )
        results[size] = merged
        assert set(rasters) == set(INDICATORS)
    one = results[ROWS]
    for size in (30, 17):
        for code in INDICATORS:
            for region, total in one.totals[code].items():
                assert math.isclose(results[size].totals[code][region], total, rel_tol=1e-12, abs_tol=0.0)
        assert [line.gross_yuan for line in results[size].lines] == [line.gross_yuan for line in one.lines]
        for region, by_class in one.extent.items():
            for klass, area in by_class.items():
                assert math.isclose(results[size].extent[region][klass], area, rel_tol=1e-12)
    # The value rasters are the same pixel for pixel, and sum to the physical totals × unit value.
    with (
        rasterio.open(tmp_path / "120" / "value_soil_retention.tif") as a,
        rasterio.open(tmp_path / "17" / "value_soil_retention.tif") as b,
    ):
        assert a.dtypes[0] == "float64"
        np.testing.assert_array_equal(a.read(1), b.read(1))


def test_pixel_areas_are_geodesic_and_tile_independent() -> None:
    grid = Grid("EPSG:4490", (CELL, 0.0, WEST, 0.0, -CELL, NORTH), COLS, ROWS, True)
    whole = pixel_areas(grid, (0, 0, COLS, ROWS))
    part = pixel_areas(grid, (10, 40, 5, 7))
    np.testing.assert_array_equal(part, whole[40:47, 10:15])
    expected = cell_area_m2(NORTH - CELL, NORTH, CELL)
    assert whole[0, 0] == pytest.approx(float(expected), rel=1e-15)
    projected = Grid("EPSG:4524", (30.0, 0.0, 0.0, 0.0, -30.0, 0.0), 4, 4, False)
    assert float(pixel_areas(projected, (0, 0, 2, 2))[0, 0]) == 900.0


def _rewrite(src: Path, dst: Path, **profile_changes: Any) -> Path:
    with rasterio.open(src) as dataset:
        profile = dataset.profile | profile_changes
        data = dataset.read(1)
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data, 1)
    return dst


def test_misaligned_raster_needs_a_resampling_rule(stack: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    folder, names = stack
    shifted = _rewrite(
        folder / names["nep"], tmp_path / "nep.tif", transform=Affine(CELL, 0, WEST + CELL / 3, 0, -CELL, NORTH)
    )
    srcs = sources(folder, names, nep=shifted)
    with pytest.raises(InvalidInput) as refused:
        plan(config(names), srcs)
    assert {"role": "nep", "reason": "misaligned-no-resampling-rule"} in refused.value.problems
    accepted = plan(config(names, resampling={"nep": "bilinear"}), srcs)
    assert accepted.warp == {"nep": "bilinear"}
    merged, _ = run_in_process(accepted)
    tiled, _ = run_in_process(plan(config(names, resampling={"nep": "bilinear"}, tile_size=40), srcs))
    for region, total in merged.totals["oxygen_release"].items():
        assert math.isclose(tiled.totals["oxygen_release"][region], total, rel_tol=1e-12)


def test_other_crs_needs_reprojection(stack: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    folder, names = stack
    other = _rewrite(folder / names["land_cover"], tmp_path / "lc.tif", crs="EPSG:4326")
    srcs = sources(folder, names, land_cover=other)
    with pytest.raises(InvalidInput) as refused:
        plan(config(names), srcs)
    assert refused.value.problems[0]["reason"] == "crs-mismatch"
    accepted = plan(config(names, reproject=True, resampling={"land_cover": "mode"}), srcs)
    assert accepted.warp == {"land_cover": "mode"}


def test_nan_only_raster_is_refused(stack: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    folder, names = stack
    path = tmp_path / "empty.tif"
    with rasterio.open(folder / names["precipitation"]) as dataset:
        profile = dataset.profile
    with rasterio.open(path, "w", **profile) as out:
        out.write(np.full((ROWS, COLS), -9999.0, dtype="float32"), 1)
    with pytest.raises(InvalidInput) as refused:
        plan(config(names), sources(folder, names, precipitation=path))
    assert {"role": "precipitation", "reason": "no-valid-pixel"} in refused.value.problems


def test_missing_price_and_wrong_unit_are_refused(stack: tuple[Path, dict[str, str]]) -> None:
    folder, names = stack
    with pytest.raises(InvalidInput) as missing:
        plan(config(names, indicators=["carbon_sequestration"]), sources(folder, names))
    assert missing.value.problems[0]["reason"] == "missing-entry"
    text = (Path(__file__).parents[3] / "gep" / "data" / "prices_ganzi_2010.toml").read_text(encoding="utf-8")
    start = text.index("[entries.reservoir_cost]")
    wrong = text[:start] + text[start:].replace('unit = "yuan/m3"', 'unit = "yuan/t"', 1)
    with pytest.raises(InvalidInput) as mis_united:
        plan_run(
            config(names),
            sources(folder, names),
            regions(),
            parse_table(wrong, name="wrong"),
            load_table("coefficients_default"),
        )
    assert mis_united.value.problems[0]["reason"] == "wrong-unit"


def test_wrong_raster_units_are_refused(stack: tuple[Path, dict[str, str]]) -> None:
    folder, names = stack
    srcs = sources(folder, names)
    srcs["precipitation"] = Source("precipitation", "p", srcs["precipitation"].path, "x", units="m")
    with pytest.raises(InvalidInput) as refused:
        plan(config(names), srcs)
    assert refused.value.problems[0]["reason"] == "wrong-units"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"negative_balance": None}, "negative-balance-policy-required"),
        ({"indicators": ["sand_fixation"]}, "unknown-indicator"),
        ({"resampling": {"land_cover": "bilinear"}}, "resampling-not-allowed"),
        ({"inputs": {"precipitation": "p.tif"}}, "missing-input"),
    ],
)
def test_configuration_problems(changes: dict[str, Any], reason: str) -> None:
    names = {"precipitation": "p.tif", "evapotranspiration": "e.tif", "runoff_coefficient": 0.1}
    with pytest.raises(InvalidInput) as refused:
        config(names, **({"indicators": ["water_conservation"]} | changes))
    assert reason in {p["reason"] for p in refused.value.problems}


def test_warped_sources_without_nodata_get_one() -> None:
    from gep.engine import _fill_for

    assert _fill_for("uint8") == 255.0
    assert math.isnan(_fill_for("float32"))
