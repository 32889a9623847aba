"""Sea areas against the shipped land outlines: mostly outside land, near the declared coastal county (ADR 036)."""

from __future__ import annotations

import pytest
from shapely.geometry import box

from geodata.regions import shipped_index
from geodata.sea import INTERTIDAL_TOLERANCE_SHARE, MAX_DISTANCE_FROM_COUNTY_M, assess_sea_area, distance_m

LIANJIANG, XIAPU = "350122", "350921"


@pytest.mark.parametrize(
    ("county", "area"),
    [
        (LIANJIANG, (119.860, 26.285, 119.868, 26.292)),  # Huangqi bay
        (XIAPU, (119.92, 26.63, 119.93, 26.64)),  # Sandu bay side of Xiapu
    ],
)
def test_open_water_near_its_county_is_accepted(county: str, area: tuple[float, float, float, float]) -> None:
    found = assess_sea_area(shipped_index(), box(*area), county)
    assert found.land_share == 0.0 and found.distance_to_county_m is not None
    assert found.distance_to_county_m < 5_000 and found.problems() == []


def test_a_farm_straddling_the_shore_within_the_intertidal_tolerance_is_accepted() -> None:
    index = shipped_index()
    # slide a 1-km box from open water towards the shore until part of it is on land
    shares = [assess_sea_area(index, box(x, 26.285, x + 0.01, 26.295), LIANJIANG) for x in (119.86, 119.84, 119.82)]
    straddling = [s for s in shares if 0 < s.land_share <= INTERTIDAL_TOLERANCE_SHARE]
    assert straddling, [s.land_share for s in shares]
    assert all(s.problems() == [] for s in straddling)


def test_land_and_a_wrong_county_are_refused_with_the_measures() -> None:
    index = shipped_index()
    hills = assess_sea_area(index, box(119.30, 26.30, 119.31, 26.31), LIANJIANG)
    assert hills.land_share == 1.0 and "lies on land" in hills.problems()[0]
    # Huangqi bay declared against Xiapu, about 40 km north
    wrong = assess_sea_area(index, box(119.860, 26.285, 119.868, 26.292), XIAPU)
    assert wrong.distance_to_county_m is not None and wrong.distance_to_county_m > MAX_DISTANCE_FROM_COUNTY_M
    assert "right coastal county" in wrong.problems()[0]
    unknown = assess_sea_area(index, box(119.860, 26.285, 119.868, 26.292), "130102")  # no Hebei counties shipped
    assert unknown.distance_to_county_m is None and "no boundary" in unknown.problems()[0]


def test_distances_are_metres_in_a_local_plane() -> None:
    # 0.1° of latitude is 11.13 km (mean degree); 0.1° of longitude at 26.3° N is 9.98 km
    assert distance_m(box(119.0, 26.0, 119.01, 26.01), box(119.0, 26.11, 119.01, 26.12)) == pytest.approx(11_132, 1)
    assert distance_m(box(119.0, 26.3, 119.01, 26.31), box(119.11, 26.3, 119.2, 26.31)) == pytest.approx(
        9_978, rel=0.01
    )
