"""A declared CRS whose area of use does not hold the coordinates: refused, naming the zones that fit."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import CRS, Transformer
from shapely.geometry import box

from core.errors import CrsMismatch
from geodata.crs import area_of_use, fitting_zones, to_cgcs2000

JINGYUAN = (106.3, 35.5)  # Ningxia, 3° zone 35 / CM 105°E, 6° zone 18 / CM 105°E
SANMING = (117.6, 26.3)  # Fujian, 3° zone 39 / CM 117°E, 6° zone 20 / CM 117°E


def plot_in(code: int, lon_lat: tuple[float, float]) -> list:
    """Two 300 m squares at ``lon_lat`` written in EPSG:``code``."""
    to_zone = Transformer.from_crs("EPSG:4490", f"EPSG:{code}", always_xy=True)
    x, y = to_zone.transform(*lon_lat)
    return [box(x, y, x + 300, y + 300), box(x + 1000, y, x + 1300, y + 300)]


@pytest.mark.parametrize(
    ("place", "actual", "declared", "expected"),
    [
        (JINGYUAN, 4523, 4524, [4523]),  # 3°, zone prefix: zone 35 written, zone 36 declared
        (JINGYUAN, 4523, 4527, [4523]),  # 3°, zone prefix, four zones off
        (SANMING, 4527, 4526, [4527]),  # 3°, zone prefix, the zone to the west declared
        (JINGYUAN, 4496, 4497, [4496]),  # 6°, zone prefix: zone 18 written, zone 19 declared
        (SANMING, 4498, 4499, [4498]),  # 6°, zone prefix
    ],
)
def test_a_prefixed_zone_mismatch_names_the_zone(
    place: tuple[float, float], actual: int, declared: int, expected: list[int]
) -> None:
    with pytest.raises(CrsMismatch) as caught:
        to_cgcs2000(plot_in(actual, place), f"EPSG:{declared}")
    [problem] = caught.value.problems
    assert caught.value.slug == "geodata/crs-mismatch"
    assert [label.split()[0] for label in problem["candidate_crs"]] == [f"EPSG:{c}" for c in expected]
    assert problem["declared_crs"].startswith(f"EPSG:{declared} ")
    assert problem["suggested_crs"].startswith(f"EPSG:{expected[0]} ")
    assert f"EPSG:{expected[0]}" in caught.value.detail and "area of use" in caught.value.detail


@pytest.mark.parametrize(
    ("place", "actual", "declared"),
    [
        (JINGYUAN, 4544, 4549),  # 3° CM 105°E written, CM 120°E declared: the plots land in the Yellow Sea
        (JINGYUAN, 4507, 4510),  # 6° CM 105°E written, CM 123°E declared
        (SANMING, 4548, 4549),  # 3° CM 117°E written, CM 120°E declared: off the Fujian coast
    ],
)
def test_a_prefix_free_zone_mismatch_lists_the_zones_that_fit(
    place: tuple[float, float], actual: int, declared: int
) -> None:
    with pytest.raises(CrsMismatch) as caught:
        to_cgcs2000(plot_in(actual, place), f"EPSG:{declared}")
    candidates = [int(label.split()[0].removeprefix("EPSG:")) for label in caught.value.problems[0]["candidate_crs"]]
    assert actual in candidates and declared not in candidates
    declared_is_3_degree = declared >= 4534
    assert (candidates[0] >= 4534) == declared_is_3_degree  # the declared family comes first
    for code in candidates:  # each candidate really puts the plots inside its own area of use, in China
        lon, lat = Transformer.from_crs(f"EPSG:{code}", "EPSG:4490", always_xy=True).transform(
            *plot_in(actual, place)[0].exterior.coords[0]
        )
        zone_area = area_of_use(CRS.from_epsg(code))
        assert zone_area is not None and zone_area.contains(*(np.array([v]) for v in (lon, lat))).all()


def test_a_right_zone_passes_and_a_stray_feature_is_left_to_the_per_feature_checks() -> None:
    good = plot_in(4523, JINGYUAN)
    assert to_cgcs2000(good, "EPSG:4523").geometries[0].bounds[0] == pytest.approx(106.3, abs=1e-6)
    stray = plot_in(4523, (104.0, 20.0))  # zone 35 too, but in the Gulf of Tonkin
    assert len(to_cgcs2000([*good, *stray], "EPSG:4523").geometries) == 4


def test_a_prefixed_easting_fits_only_its_own_zone() -> None:
    [square, _] = plot_in(4496, JINGYUAN)
    x, y = square.exterior.coords.xy
    assert fitting_zones(np.array(x), np.array(y)) == [4496]


@pytest.mark.parametrize(
    ("actual", "declared", "first"),
    [
        (4523, 4544, 4523),  # zone-35 prefixed eastings, prefix-free CM 105°E declared: the prefix names zone 35
        (4524, 4544, 4524),  # zone-36 prefixed eastings under CM 105°E: zone 36, not the declared meridian
        (4496, 4544, 4496),  # 6° zone-18 prefixed eastings under a 3° prefix-free CRS
        (4544, 4523, 4544),  # prefix-free CM 105°E eastings under zone 35 with prefix: its twin comes first
        (4507, 4496, 4507),  # 6° prefix-free under 6° zone 18 with prefix: CM 105°E first
    ],
)
def test_a_prefix_disagreement_is_a_crs_mismatch_naming_the_zone(actual: int, declared: int, first: int) -> None:
    with pytest.raises(CrsMismatch, match="zone prefix") as caught:
        to_cgcs2000(plot_in(actual, JINGYUAN), f"EPSG:{declared}")
    [problem] = caught.value.problems
    assert problem["candidate_crs"][0].startswith(f"EPSG:{first} ")
    assert problem["declared_crs"].startswith(f"EPSG:{declared} ")
