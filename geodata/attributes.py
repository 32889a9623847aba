"""Map the attribute columns of forest-inventory files onto the platform's plot attributes.

Inventory systems ("一张图") name their columns in Chinese or English, in many spellings. Known columns
are mapped onto canonical keys; every other column is kept, unchanged, under its own name.

Canonical keys: ``name``, ``code``, ``species``, ``planting_year``, ``stand_age``, ``declared_area_mu``,
``land_use``, ``county`` (GB/T 2260), and ``external_registrations`` (a list of ``{"scheme", "id"}``
built from CCER / VCS / FFCER columns; the carbon package refuses double issuance with it).

>>> mapped = map_attributes({"小班号": "A-01", "树种": "油松", "面积_亩": "12.5", "CCER": "CCER-14-001-0007", "x": 1})
>>> mapped["code"], mapped["species"], mapped["declared_area_mu"], mapped["x"]
('A-01', '油松', 12.5, 1)
>>> mapped["external_registrations"]
[{'scheme': 'CCER', 'id': 'CCER-14-001-0007'}]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "plot_name", "名称", "地块名称", "小班名称", "xbmc"),
    "code": ("code", "plot_code", "plot_id", "id", "小班号", "小班编号", "编号", "地块编号", "xbh"),
    "species": ("species", "tree_species", "树种", "优势树种", "sz", "yssz"),
    "planting_year": ("planting_year", "plant_year", "造林年度", "造林年份", "zlnd"),
    "stand_age": ("stand_age", "age", "林龄", "ll"),
    "declared_area_mu": ("declared_area_mu", "area_mu", "mu", "面积_亩", "面积亩", "面积(亩)", "面积", "mj"),
    "land_use": ("land_use", "landuse", "land_class", "地类", "dl"),
    "county": ("county", "county_code", "县", "县代码", "县级代码", "xian"),
}
REGISTRATION_SCHEMES = ("CCER", "VCS", "FFCER", "GS")
INTEGER_KEYS = ("planting_year", "stand_age")


def _lookup() -> dict[str, str]:
    return {alias.casefold(): key for key, aliases in ALIASES.items() for alias in aliases}


_ALIAS_TO_KEY = _lookup()


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _clean(key: str, value: Any) -> Any:
    if key == "declared_area_mu":
        return _number(value)
    if key in INTEGER_KEYS:
        number = _number(value)
        return int(number) if number is not None and number.is_integer() else value
    if key in ("code", "county") and isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if key in ("code", "county") and value is not None else value


def map_attributes(columns: Mapping[str, Any]) -> dict[str, Any]:
    """Return canonical attributes plus every unknown column (empty values dropped)."""
    mapped: dict[str, Any] = {}
    registrations: list[dict[str, str]] = []
    for column, value in columns.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        folded = column.casefold()
        scheme = next((s for s in REGISTRATION_SCHEMES if folded in (s.casefold(), f"{s.casefold()}_id")), None)
        if scheme is not None:
            registrations.extend(
                {"scheme": scheme, "id": part.strip()} for part in str(value).split(";") if part.strip()
            )
            continue
        key = _ALIAS_TO_KEY.get(folded)
        if key is not None and key not in mapped:
            mapped[key] = _clean(key, value)
        else:
            mapped[column] = value
    if registrations:
        mapped["external_registrations"] = registrations
    return mapped
