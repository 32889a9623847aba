"""Map the attribute columns of forest-inventory files onto the platform's plot attributes.

Inventory systems ("一张图") name their columns in Chinese or English, in many spellings. Known columns
are mapped onto canonical keys; every other column is kept, unchanged, under its own name.

Canonical keys: ``name``, ``code``, ``species``, ``planting_year``, ``stand_age``, ``declared_area_mu``,
``land_use``, ``county`` (GB/T 2260), and ``external_registrations`` (a list of ``{"scheme", "id"}``
built from CCER / VCS / FFCER columns; the carbon package refuses double issuance with it).

Declared areas come in 亩 (mu) or 公顷 (ha). The column's name often says which (``MJ_MU``, ``面积(公顷)``,
``MJ_GQ``, ``XBMJ_HA``…, see :func:`area_column_unit`); the uploader may state it (``area_unit``), which
overrides the name; otherwise mu is assumed, as inventory files most often use it. The value is kept as
given under ``declared_area`` (``value``, ``unit``, ``column`` and ``unit_from``: ``"stated"``,
``"column"`` or ``"assumed"``) and converted to ``declared_area_mu`` (1 ha = 15 mu exactly).

>>> mapped = map_attributes({"小班号": "A-01", "树种": "油松", "面积_亩": "12.5", "CCER": "CCER-14-001-0007", "x": 1})
>>> mapped["code"], mapped["species"], mapped["declared_area_mu"], mapped["x"]
('A-01', '油松', 12.5, 1)
>>> mapped["external_registrations"]
[{'scheme': 'CCER', 'id': 'CCER-14-001-0007'}]
>>> map_attributes({"MJ_GQ": 2.5})["declared_area"]
{'value': 2.5, 'unit': 'ha', 'column': 'MJ_GQ', 'unit_from': 'column'}
>>> map_attributes({"MJ_GQ": 2.5})["declared_area_mu"]
37.5
>>> map_attributes({"XBMJ": 2.5}, area_unit="ha")["declared_area_mu"]
37.5
>>> map_attributes({"XBMJ": 2.5})["declared_area"]["unit_from"]
'assumed'
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal

AreaUnit = Literal["mu", "ha"]
AREA_UNITS: tuple[AreaUnit, ...] = ("mu", "ha")
#: What mu one declared unit is: 1 ha = 10 000 m² = 10 000 / (10 000/15) mu = 15 mu.
MU_PER_UNIT: dict[AreaUnit, int] = {"mu": 1, "ha": 15}
#: The unit assumed when a declared-area column does not name one and the uploader did not state it.
ASSUMED_AREA_UNIT: AreaUnit = "mu"

ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "plot_name", "名称", "地块名称", "小班名称", "xbmc"),
    "code": ("code", "plot_code", "plot_id", "id", "小班号", "小班编号", "编号", "地块编号", "xbh"),
    "species": ("species", "tree_species", "树种", "优势树种", "sz", "yssz"),
    "planting_year": ("planting_year", "plant_year", "造林年度", "造林年份", "zlnd"),
    "stand_age": ("stand_age", "age", "林龄", "ll"),
    "land_use": ("land_use", "landuse", "land_class", "地类", "dl"),
    "county": ("county", "county_code", "县", "县代码", "县级代码", "xian"),
}
REGISTRATION_SCHEMES = ("CCER", "VCS", "FFCER", "GS")
INTEGER_KEYS = ("planting_year", "stand_age")


#: Declared-area column names without a unit (forest inventory 二类调查 / 一张图 and plain spellings).
_AREA_BASES = ("面积", "mj", "小班面积", "xbmj", "图斑面积", "tbmj", "地块面积", "dkmj", "declaredarea")
#: Unit words that, after or before a base, say the unit; also accepted alone (亩数, 公顷…).
_AREA_UNIT_WORDS: dict[AreaUnit, tuple[str, ...]] = {
    "mu": ("亩", "亩数", "mu", "mus"),
    "ha": ("公顷", "公顷数", "gq", "ha", "hm2", "hectare", "hectares"),
}
_NAME_NOISE = re.compile(r"[\s_\-()（）\[\]【】/.]+")


def _area_columns() -> dict[str, AreaUnit | None]:
    names: dict[str, AreaUnit | None] = dict.fromkeys(_AREA_BASES)
    for unit, words in _AREA_UNIT_WORDS.items():
        for word in words:
            names[word] = unit
            for base in (*_AREA_BASES, "area"):
                names[base + word] = names[word + base] = unit
    return names


_AREA_COLUMNS = _area_columns()


def area_column_unit(column: str) -> tuple[bool, AreaUnit | None]:
    """Return whether ``column`` holds a declared area and, if its name says so, the unit.

    Case, spaces, underscores, hyphens and brackets (ASCII or full-width) are ignored.

    >>> area_column_unit("MJ_MU"), area_column_unit("面积（公顷）"), area_column_unit("XBMJ")
    ((True, 'mu'), (True, 'ha'), (True, None))
    >>> area_column_unit("declared_area_ha"), area_column_unit("species")
    ((True, 'ha'), (False, None))
    """
    name = _NAME_NOISE.sub("", column.casefold())
    if name not in _AREA_COLUMNS:
        return False, None
    return True, _AREA_COLUMNS[name]


def _declared_area(columns: Mapping[str, Any], area_unit: AreaUnit | None) -> tuple[str, dict[str, Any], float] | None:
    """Pick the declared-area column (one naming its unit first) and return it, its record and mu."""
    found = [(column, area_column_unit(column)[1]) for column in columns if area_column_unit(column)[0]]
    found.sort(key=lambda item: item[1] is None)  # stable: the first column naming its unit, else the first
    for column, named_unit in found:
        value = _number(columns[column])
        if value is None:
            continue
        unit = area_unit or named_unit or ASSUMED_AREA_UNIT
        unit_from = "stated" if area_unit else "column" if named_unit else "assumed"
        record = {"value": value, "unit": unit, "column": column, "unit_from": unit_from}
        return column, record, value * MU_PER_UNIT[unit]
    return None


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
    if key in INTEGER_KEYS:
        number = _number(value)
        return int(number) if number is not None and number.is_integer() else value
    if key in ("code", "county") and isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if key in ("code", "county") and value is not None else value


def map_attributes(columns: Mapping[str, Any], *, area_unit: AreaUnit | None = None) -> dict[str, Any]:
    """Return canonical attributes plus every unknown column (empty values dropped).

    Args:
        columns: The feature's attribute columns.
        area_unit: The unit of the declared-area column as stated by the uploader (overrides the
            column name's); ``None`` to infer it from the name, else assume mu.
    """
    mapped: dict[str, Any] = {}
    registrations: list[dict[str, str]] = []
    area_column: str | None = None
    declared = _declared_area(columns, area_unit)
    if declared is not None:
        area_column, mapped["declared_area"], mapped["declared_area_mu"] = declared
    for column, value in columns.items():
        if value is None or (isinstance(value, str) and not value.strip()) or column == area_column:
            continue
        if column in ("declared_area", "declared_area_mu") and column in mapped:
            continue  # a re-uploaded export: the record was rebuilt from the columns above
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
