"""Parameter tables (hash, reference) and geodesic pixel areas against the sphere formula."""

from __future__ import annotations

import math

import numpy as np

from gep.pixel_area import pixel_areas_m2, row_areas_m2
from gep.prices import load_table

AUTHALIC_RADIUS_M = 6_371_007.181


def test_tables_load_with_stable_hash() -> None:
    prices = load_table("prices_ganzi_2010")
    again = load_table("prices_ganzi_2010")
    assert prices.content_hash() == again.content_hash()
    reference = prices.reference()
    assert reference["id"] == "prices_ganzi_2010" and reference["version"] == "1" and len(reference["sha256"]) == 64
    coefficients = load_table("coefficients_default")
    assert coefficients.kind == "coefficients"
    assert all(entry.citation for entry in coefficients.entries.values())
    assert coefficients.content_hash() != prices.content_hash()


def test_sphere_formula_within_0_05_percent() -> None:
    # R² · Δλ · (sin φ₂ − sin φ₁) on the authalic sphere, reference T11
    areas = row_areas_m2(top_latitude_deg=36.01, cell_height_deg=0.01, cell_width_deg=0.01, rows=1)
    sphere = AUTHALIC_RADIUS_M**2 * math.radians(0.01) * (math.sin(math.radians(36.01)) - math.sin(math.radians(36.0)))
    assert abs(areas[0] / sphere - 1) < 5e-4


def test_rows_shrink_poleward_and_blocks_agree() -> None:
    block = pixel_areas_m2(top_latitude_deg=38.5, cell_height_deg=1 / 120, cell_width_deg=1 / 120, shape=(24, 5))
    assert block.shape == (24, 5)
    assert np.all(np.diff(block[:, 0]) > 0)  # southwards the cells grow
    lower = pixel_areas_m2(
        top_latitude_deg=38.5 - 12 / 120, cell_height_deg=1 / 120, cell_width_deg=1 / 120, shape=(12, 5)
    )
    np.testing.assert_allclose(block[12:], lower, rtol=1e-9)
