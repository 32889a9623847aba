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
from gep.engine import REGIONAL_INDICATORS, Grid, RegionShape, RunConfig, Source, pixel_areas, plan_run, run_in_process
from gep.prices import load_table, parse_table
from gep.spec import DEFAULT_INDICATORS
from gep.synthetic import NORTH, WEST, demo_tables, township_collection, write_stack

ROWS = COLS = 120
CELL = 0.001
INDICATORS = ["water_conservation", "oxygen_release", "soil_retention"]
#: Every indicator a run can compute (element-wise and regional second pass).
ALL_INDICATORS = [
    *INDICATORS,
    "carbon_sequestration",
    "sand_fixation",
    "flood_regulation",
    "climate_regulation",
    "air_purification_so2",
    "air_purification_nox",
    "air_purification_dust",
    "water_purification_cod",
    "water_purification_nh3n",
]


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


def full_config(names: dict[str, str], **changes: Any) -> RunConfig:
    """Every indicator, on the Guyuan table (it has a carbon price), with the synthetic regional tables."""
    base: dict[str, Any] = {
        "indicators": ALL_INDICATORS,
        "prices": "prices_guyuan_2025",
        "land_cover_legend": "legend_synthetic_jingyuan",
        "cover_unit": "percent",
        **demo_tables([r.code for r in regions()]),
    }
    return config(names, **(base | changes))


def test_one_tile_and_many_tiles_give_the_same_totals(stack: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    folder, names = stack
    results = {}
    for size in (ROWS, 30, 17):  # 1, 16 and 64 tiles (ragged)
        merged, rasters = run_in_process(
            plan(full_config(names, tile_size=size), sources(folder, names), "prices_guyuan_2025"),
            tmp_path / str(size),
        )
        results[size] = merged
        assert set(rasters) == set(ALL_INDICATORS)
    one = results[ROWS]
    for code in ALL_INDICATORS:  # every indicator has a non-zero total somewhere (the test can fail)
        assert any(total > 0 for total in one.totals[code].values()), code
    for size in (30, 17):
        for code in ALL_INDICATORS:
            for region, total in one.totals[code].items():
                assert math.isclose(results[size].totals[code][region], total, rel_tol=1e-12, abs_tol=0.0), code
                for klass, part in one.by_class[code][region].items():
                    tiled = results[size].by_class[code][region][klass]
                    assert math.isclose(tiled, part, rel_tol=1e-12, abs_tol=1e-9), (code, klass)
        assert [line.gross_yuan for line in results[size].lines] == [line.gross_yuan for line in one.lines]
        for region, by_class in one.extent.items():
            for klass, area in by_class.items():
                assert math.isclose(results[size].extent[region][klass], area, rel_tol=1e-12)
    # The value rasters are the same pixel for pixel, and sum to the physical totals × unit value.
    for code in ALL_INDICATORS:
        with (
            rasterio.open(tmp_path / "120" / f"value_{code}.tif") as a,
            rasterio.open(tmp_path / "17" / f"value_{code}.tif") as b,
        ):
            assert a.dtypes[0] == "float64"
            whole, tiled = a.read(1), b.read(1)
        if code in REGIONAL_INDICATORS:  # factors come from regional totals, equal to 1e-12 (not bitwise)
            np.testing.assert_allclose(tiled, whole, rtol=1e-12, atol=0.0)
        else:
            np.testing.assert_array_equal(whole, tiled)
        price = float(DEFAULT_INDICATORS.get(code).unit_value(load_table("prices_guyuan_2025"), load_table(
            "coefficients_default")).yuan_per_unit)  # fmt: skip
        expected = math.fsum(one.totals[code].values()) * price
        assert math.isclose(math.fsum(whole[np.isfinite(whole)].tolist()), expected, rel_tol=1e-9), code


def test_regional_pass_caps_purification_and_maps_reservoirs(stack: tuple[Path, dict[str, str]]) -> None:
    folder, names = stack
    merged, _ = run_in_process(plan(full_config(names), sources(folder, names), "prices_guyuan_2025"))
    tables = demo_tables([r.code for r in regions()])
    for code, by_region in tables["emissions_t"].items():
        for region, emission in by_region.items():
            assert merged.totals[code][region] <= emission
    capped = merged.factors["air_purification_dust:capacity"]
    assert any(f < 1.0 for f in capped.values()) and all(0.0 < f <= 1.0 for f in capped.values())
    assert merged.factors["flood_regulation:reservoir"]["SYN-JY-01"] > 0.0
    # Σ classes = total for every indicator (the ecosystem-type split starts from these).
    for code in ALL_INDICATORS:
        for region, total in merged.totals[code].items():
            assert math.isclose(math.fsum(merged.by_class[code][region].values()), total, rel_tol=1e-9, abs_tol=1e-9)


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
        ({"indicators": ["pest_control"]}, "unknown-indicator"),
        ({"indicators": ["sand_fixation"]}, "cover-unit-required"),
        ({"indicators": ["flood_regulation"]}, "land-cover-legend-required"),
        ({"indicators": ["air_purification_so2"]}, "emissions-required"),
        ({"indicators": ["climate_regulation"]}, "missing-input"),
        ({"reservoir_capacity_m3": {"A": -1.0}}, "table-value-not-a-finite-number-ge-0"),
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


def test_a_stack_lacking_a_selected_indicators_input_is_refused_at_creation(
    stack: tuple[Path, dict[str, str]],
) -> None:
    folder, names = stack
    without = {role: name for role, name in names.items() if role != "wind_weather_factor"}
    with pytest.raises(InvalidInput) as refused:
        full_config(without)
    assert {"indicator": "sand_fixation", "role": "wind_weather_factor", "reason": "missing-input"} in (
        refused.value.problems
    )
    # Not selected, not needed: the same stack runs the other indicators.
    others = [code for code in ALL_INDICATORS if code != "sand_fixation"]
    assert plan(full_config(without, indicators=others), sources(folder, without), "prices_guyuan_2025")


def test_regional_tables_and_legend_are_checked_against_the_run(
    stack: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, names = stack
    tables = demo_tables([r.code for r in regions()])
    capacity = dict(tables["reservoir_capacity_m3"])
    capacity.pop("SYN-JY-02")
    capacity["NOWHERE"] = 1.0
    with pytest.raises(InvalidInput) as refused:
        plan(full_config(names, reservoir_capacity_m3=capacity), sources(folder, names), "prices_guyuan_2025")
    reasons = {(p.get("region"), p["reason"]) for p in refused.value.problems}
    assert {("SYN-JY-02", "region-missing"), ("NOWHERE", "unknown-region")} <= reasons
    # A land-cover class missing from the legend is refused before anything is computed.
    with rasterio.open(folder / names["land_cover"]) as dataset:
        profile, data = dataset.profile, dataset.read(1)
    data[0:5, 0:5] = 42
    odd = tmp_path / "lc.tif"
    with rasterio.open(odd, "w", **profile) as out:
        out.write(data, 1)
    with pytest.raises(InvalidInput) as unknown:
        plan(full_config(names), sources(folder, names, land_cover=odd), "prices_guyuan_2025")
    assert {
        "role": "land_cover",
        "class": 42,
        "legend": "legend_synthetic_jingyuan",
        "reason": "class-not-in-legend",
    } in (unknown.value.problems)


def test_reservoir_capacity_without_reservoir_pixels_fails_the_merge(stack: tuple[Path, dict[str, str]]) -> None:
    folder, names = stack
    capacity = {r.code: 1e6 for r in regions()}  # only township 1 has a reservoir
    with pytest.raises(InvalidInput, match="reservoir capacity but no reservoir pixel"):
        run_in_process(
            plan(full_config(names, reservoir_capacity_m3=capacity), sources(folder, names), "prices_guyuan_2025")
        )


def test_fraction_cover_unit_expects_unitless_rasters(stack: tuple[Path, dict[str, str]]) -> None:
    folder, names = stack
    srcs = sources(folder, names)
    srcs["vegetation_cover"] = Source("vegetation_cover", "c", srcs["vegetation_cover"].path, "x", units="percent")
    with pytest.raises(InvalidInput) as refused:
        plan(full_config(names, cover_unit="fraction"), srcs, "prices_guyuan_2025")
    assert {"role": "vegetation_cover", "reason": "wrong-units", "units": "percent", "expected": "1"} in (
        refused.value.problems
    )


def test_layers_no_selected_indicator_reads_do_not_mask_pixels(
    stack: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, names = stack
    with rasterio.open(folder / names["uptake_so2"]) as dataset:
        profile = dataset.profile
    holes = tmp_path / "holes.tif"
    half = np.full((ROWS, COLS), 5.0, dtype="float32")
    half[:, : COLS // 2] = -9999.0  # nodata over the western half
    with rasterio.open(holes, "w", **profile) as out:
        out.write(half, 1)
    srcs = sources(folder, names, uptake_so2=holes)
    assert config(names).used_roles == {
        "precipitation",
        "evapotranspiration",
        "runoff_coefficient",
        "nep",
        "dem",
        "erosivity",
        "erodibility",
        "cover_factor",
        "practice_factor",
        "land_cover",
    }
    with_holes, _ = run_in_process(plan(config(names), srcs))
    without, _ = run_in_process(plan(config(names), sources(folder, names)))
    assert with_holes.totals == without.totals
