"""Pure parts of reversal monitoring: loss pixels, per-plot sums in any tiling, seasons, shares, tonnes at risk."""

from __future__ import annotations

import json
import math
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from carbon.reversals.composites import check_pair
from carbon.reversals.kernels import (
    cover_loss,
    ndvi_loss,
    plot_shares,
    plot_sums,
    season_gap_days,
    tonnes_at_risk,
    unit_removals,
    valid_pixels,
)
from carbon.reversals.models import Composite, CompositeKind
from carbon.reversals.patches import column_map, loss_kind_of, parse_day
from carbon.reversals.thresholds import DEFAULTS, thresholds_from
from core.errors import InvalidInput
from geodata.tiling import tile_windows

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "records"


def test_ndvi_loss_needs_every_threshold_and_is_inclusive() -> None:
    before = np.array([0.80, 0.80, 0.39, 0.80, 0.50, np.nan])
    after = np.array([0.60, 0.61, 0.00, 0.70, 0.34, 0.10])
    lost = ndvi_loss(before, after, min_before_ndvi=0.4, ndvi_drop=0.2, relative_drop=0.3)
    # 0.8→0.6: drop 0.2 but only 25 %; 0.39 before is below the floor; 0.5→0.34: 0.16 < 0.2; NaN: no data
    assert lost.tolist() == [False, False, False, False, False, False]
    lost = ndvi_loss(before, after, min_before_ndvi=0.4, ndvi_drop=0.2, relative_drop=0.25)
    assert lost.tolist() == [True, False, False, False, False, False]


def test_cover_loss_is_vegetated_to_anything_else_with_data() -> None:
    before, after = np.array([1.0, 1.0, 2.0, 1.0]), np.array([4.0, 2.0, 4.0, np.nan])
    assert cover_loss(before, after, [1, 2]).tolist() == [True, False, True, False]


def test_plot_sums_do_not_depend_on_the_tiling() -> None:
    rows, cols = 37, 53
    labels = (np.add.outer(np.arange(rows) // 9, np.arange(cols) // 11) % 4).astype(np.int32)
    before = 0.7 + 0.1 * np.sin(np.add.outer(np.arange(rows), np.arange(cols)) / 5.0)
    after = before.copy()
    after[10:20, 15:40] = 0.1
    after[0, 0] = np.nan
    areas = np.repeat(np.linspace(90.0, 110.0, rows)[:, None], cols, axis=1)
    lost = ndvi_loss(before, after, min_before_ndvi=0.4, ndvi_drop=0.2, relative_drop=0.3)
    whole = plot_sums(labels, lost, valid_pixels(before, after), areas, 3)
    for size in (5, 16, 64):
        parts: dict[int, list[list[float]]] = {k: [[], []] for k in range(4)}
        for col, row, width, height in tile_windows(cols, rows, size):
            cut = np.s_[row : row + height, col : col + width]
            sums = plot_sums(labels[cut], lost[cut], valid_pixels(before[cut], after[cut]), areas[cut], 3)
            for k in range(4):
                parts[k][0].append(sums[k, 0])
                parts[k][1].append(sums[k, 1])
        for k in range(4):
            assert math.fsum(parts[k][0]) == pytest.approx(whole[k, 0], rel=1e-12)
            assert math.fsum(parts[k][1]) == pytest.approx(whole[k, 1], rel=1e-12)
    assert whole[:, 0].sum() == pytest.approx(float((areas * lost).sum()))


def test_tiles_cover_the_grid_once() -> None:
    covered = np.zeros((23, 31), dtype=int)
    for col, row, width, height in tile_windows(31, 23, 8):
        covered[row : row + height, col : col + width] += 1
    assert (covered == 1).all()


@pytest.mark.parametrize(
    ("first", "second", "gap"),
    [
        (date(2024, 7, 31), date(2025, 7, 31), 0),
        (date(2024, 12, 20), date(2025, 1, 10), 21),
        (date(2025, 1, 30), date(2025, 7, 31), 182),
        (date(2024, 2, 29), date(2025, 2, 28), 0),
    ],
)
def test_season_gap_goes_round_the_new_year(first: date, second: date, gap: int) -> None:
    assert season_gap_days(first, second) == gap == season_gap_days(second, first)


def composite(
    name: str, start: date, end: date, *, kind: CompositeKind = CompositeKind.NDVI, region: str = "640424"
) -> Composite:
    return Composite(name=name, kind=kind, region_code=region, acquired_start=start, acquired_end=end)


def test_only_same_season_pairs_are_compared() -> None:
    summer_2024 = composite("s24", date(2024, 7, 1), date(2024, 8, 31))
    summer_2025 = composite("s25", date(2025, 7, 1), date(2025, 8, 31))
    june_2025 = composite("j25", date(2025, 6, 15), date(2025, 7, 15))
    winter_2025 = composite("w25", date(2025, 1, 1), date(2025, 2, 28))
    assert check_pair(summer_2024, summer_2025, 45) == 0
    assert check_pair(summer_2024, june_2025, 45) == middle_gap(summer_2024, june_2025)
    with pytest.raises(InvalidInput) as refused:
        check_pair(summer_2024, winter_2025, 45)
    assert {p["reason"] for p in refused.value.problems} == {"different-seasons"}
    with pytest.raises(InvalidInput) as refused:
        check_pair(summer_2025, summer_2024, 45)
    assert {p["reason"] for p in refused.value.problems} == {"after-not-later"}
    land = composite("lc", date(2025, 7, 1), date(2025, 8, 31), kind=CompositeKind.LAND_COVER, region="640100")
    with pytest.raises(InvalidInput) as refused:
        check_pair(summer_2024, land, 45)
    assert {p["reason"] for p in refused.value.problems} == {"different-kinds", "different-regions"}


def middle_gap(first: Composite, second: Composite) -> int:
    middle = [
        date.fromordinal((c.acquired_start.toordinal() + c.acquired_end.toordinal()) // 2) for c in (first, second)
    ]
    return season_gap_days(*middle)


def test_a_plots_share_comes_from_the_report_trace() -> None:
    record = json.loads((GOLDEN / "fj-ticket.rfc8785.json").read_text())["record"]
    removals = unit_removals(record["trace"])
    assert set(removals) == {"XB-0000", "XB-0001", "XB-0002"}
    shares = plot_shares(removals, {"XB-0000": 1, "XB-0001": 2, "XB-0002": 2})
    assert sum(shares.values()) == 1
    assert shares[1] == removals["XB-0000"] / (removals["XB-0000"] + removals["XB-0001"])
    ccer = json.loads((GOLDEN / "ccer-14-001.rfc8785.json").read_text())["record"]
    assert unit_removals(ccer["trace"])  # strata: end − start stocks


def test_tonnes_at_risk_round_up_and_never_exceed_the_issue() -> None:
    assert tonnes_at_risk(Decimal(1000), Decimal(1), Decimal("0.0601")) == 61
    assert tonnes_at_risk(Decimal(1000), Decimal(1), Decimal("0.06")) == 60
    assert tonnes_at_risk(Decimal(10), Decimal(1), Decimal(2)) == 10
    assert tonnes_at_risk(Decimal(10), Decimal(0), Decimal("0.5")) == 0


def test_patch_attributes_are_recognised_or_mapped() -> None:
    assert column_map(["变化原因", "后时相", "TBBH", "其他"], {}) == {
        "patch_code": "TBBH", "cause": "变化原因", "after_date": "后时相",
    }  # fmt: skip
    with pytest.raises(InvalidInput):
        column_map(["A"], {"cause": "B"})
    assert loss_kind_of("火烧迹地更新", "", {}) == "fire"
    assert loss_kind_of("", "", {}) == "unknown"
    assert parse_day("2025年4月12日") == date(2025, 4, 12)
    assert parse_day(20250412.0) == date(2025, 4, 12)
    assert parse_day("2025-02-30") is None


def test_every_class_has_cited_defaults() -> None:
    for credit_class, defaults in DEFAULTS.classes.items():
        thresholds = thresholds_from(defaults)
        assert thresholds.season_window_days >= 1 and 0 < thresholds.ndvi_drop < 1, credit_class
        for _key, cited in defaults:
            assert cited.citation in DEFAULTS.citations
