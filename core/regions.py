"""Administrative division codes (GB/T 2260) shipped with the platform.

``core/data/gbt2260.csv`` lists every provincial-level division and, for the two provinces of the
Fujian–Ningxia cooperation, every prefecture and county (see ``docs/data-provenance.md``). Province
codes are the two leading digits (``"64"`` Ningxia, ``"35"`` Fujian); county codes are six digits and
must lie inside their province.

>>> province_name("64")
'宁夏回族自治区'
>>> validate_division("64", "640424")
[]
>>> validate_division("35", "640424")
['county 640424 is not in province 35']
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class Division:
    """One administrative division."""

    code: str
    name_zh: str
    name_en: str
    level: str  # province | prefecture | county


@lru_cache(maxsize=1)
def divisions() -> dict[str, Division]:
    """Return every shipped division keyed by its six-digit code."""
    text = resources.files("core").joinpath("data/gbt2260.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines())
    return {r["code"]: Division(r["code"], r["name_zh"], r["name_en"], r["level"]) for r in rows}


def province_name(province_code: str) -> str | None:
    """Return the Chinese name of a two-digit province code, or ``None``."""
    division = divisions().get(f"{province_code}0000")
    return division.name_zh if division and division.level == "province" else None


def validate_division(province_code: str, county_code: str | None) -> list[str]:
    """Return the problems with a province/county pair (empty when valid)."""
    problems: list[str] = []
    if len(province_code) != 2 or province_name(province_code) is None:
        problems.append(f"unknown province code {province_code!r} (GB/T 2260, two digits)")
    if county_code is None:
        return problems
    county = divisions().get(county_code)
    if county is None or county.level != "county":
        problems.append(f"unknown county code {county_code!r} (GB/T 2260, six digits)")
    elif not county_code.startswith(province_code):
        problems.append(f"county {county_code} is not in province {province_code}")
    return problems
