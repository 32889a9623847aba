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
from collections.abc import Mapping, Sequence
from typing import Any, Literal

AreaUnit = Literal["mu", "ha"]
AREA_UNITS: tuple[AreaUnit, ...] = ("mu", "ha")
#: What mu one declared unit is: 1 ha = 10 000 m² = 10 000 / (10 000/15) mu = 15 mu.
MU_PER_UNIT: dict[AreaUnit, int] = {"mu": 1, "ha": 15}
#: The unit assumed when a declared-area column does not name one and the uploader did not state it.
ASSUMED_AREA_UNIT: AreaUnit = "mu"

ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "plot_name", "名称", "地块名称", "小班名称", "xbmc", "xiao_ban_mc"),
    "code": ("code", "plot_code", "plot_id", "id", "小班号", "小班编号", "编号", "地块编号", "xbh", "xiao_ban",
             "xiaoban", "小班"),
    "species": ("species", "tree_species", "树种", "优势树种", "sz", "yssz", "you_shi_sz", "youshisz"),
    "planting_year": ("planting_year", "plant_year", "造林年度", "造林年份", "zlnd", "zao_lin_nd"),
    "stand_age": ("stand_age", "age", "林龄", "ll", "平均年龄", "pingjun_nl", "pjnl"),
    "land_use": ("land_use", "landuse", "land_class", "地类", "dl", "di_lei"),
    "county": ("county", "county_code", "县", "县代码", "县级代码", "xian"),
}  # fmt: skip
#: The attributes a person maps columns onto in the upload page's column-mapping step, in its order.
MAPPABLE_KEYS: tuple[str, ...] = (
    "code", "name", "declared_area", "species", "planting_year", "stand_age", "land_use", "county",
)  # fmt: skip
#: A column mapping: attribute (one of :data:`MAPPABLE_KEYS`) → the file's column, or ``None`` for none.
ColumnMap = Mapping[str, str | None]
REGISTRATION_SCHEMES = ("CCER", "VCS", "FFCER", "GS")
INTEGER_KEYS = ("planting_year", "stand_age")


#: Declared-area column names without a unit (forest inventory 二类调查 / 一张图 and plain spellings).
_AREA_BASES = ("面积", "mj", "mianji", "小班面积", "xbmj", "图斑面积", "tbmj", "地块面积", "dkmj", "declaredarea")
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


def _declared_area(
    columns: Mapping[str, Any], area_unit: AreaUnit | None, chosen: str | None = None, *, explicit: bool = False
) -> tuple[str, dict[str, Any], float] | None:
    """Pick the declared-area column (the chosen one, else one naming its unit first); its record and mu."""
    if explicit:
        found = [(chosen, area_column_unit(chosen)[1])] if chosen is not None and chosen in columns else []
    else:
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


def suggest_mapping(columns: Sequence[str]) -> dict[str, str | None]:
    """Return the column a person most likely means for each of :data:`MAPPABLE_KEYS` (``None``: none).

    The same rules as :func:`map_attributes` without a mapping: known names (二类调查 / 一张图 spellings,
    any case), and for the declared area the first column naming its unit, else the first area column.

    >>> suggest_mapping(["XIAO_BAN", "YOU_SHI_SZ", "XBMJ", "MJ_GQ", "备注"])["code"]
    'XIAO_BAN'
    >>> suggest_mapping(["XIAO_BAN", "YOU_SHI_SZ", "XBMJ", "MJ_GQ", "备注"])["declared_area"]
    'MJ_GQ'
    """
    chosen: dict[str, str | None] = dict.fromkeys(MAPPABLE_KEYS)
    for column in columns:
        key = _ALIAS_TO_KEY.get(column.casefold())
        if key is not None and chosen[key] is None:
            chosen[key] = column
    areas = [(column, area_column_unit(column)[1]) for column in columns if area_column_unit(column)[0]]
    areas.sort(key=lambda item: item[1] is None)
    chosen["declared_area"] = areas[0][0] if areas else None
    return chosen


def check_column_map(column_map: Mapping[str, Any]) -> dict[str, str | None]:
    """Return a column mapping with every key of :data:`MAPPABLE_KEYS`, or raise ``ValueError``.

    >>> check_column_map({"code": "XBH"})["name"] is None
    True
    """
    unknown = sorted(set(column_map) - set(MAPPABLE_KEYS))
    if unknown:
        raise ValueError(f"unknown attributes in the column mapping: {', '.join(unknown)}")
    checked: dict[str, str | None] = {}
    for key in MAPPABLE_KEYS:
        column = column_map.get(key)
        if column is not None and (not isinstance(column, str) or not 0 < len(column) <= 255):
            raise ValueError(f"the column mapped to {key} must be a column name")
        checked[key] = column or None
    used = [c for c in checked.values() if c is not None]
    if len(used) != len(set(used)):
        raise ValueError("a column is mapped to more than one attribute")
    return checked


def map_attributes(
    columns: Mapping[str, Any], *, area_unit: AreaUnit | None = None, column_map: ColumnMap | None = None
) -> dict[str, Any]:
    """Return canonical attributes plus every unknown column (empty values dropped).

    Args:
        columns: The feature's attribute columns.
        area_unit: The unit of the declared-area column as stated by the uploader (overrides the
            column name's); ``None`` to infer it from the name, else assume mu.
        column_map: The person's choice of column for each of :data:`MAPPABLE_KEYS` (``None``: that
            attribute is in no column); then column names are not guessed for those attributes. Every
            other column is kept under its own name (``file:NAME`` when that name is a chosen attribute's).

    >>> mapped = map_attributes({"XBH2": "7", "小班号": "x"}, column_map={"code": "XBH2"})
    >>> mapped["code"], mapped["小班号"]
    ('7', 'x')
    """
    mapped: dict[str, Any] = {}
    registrations: list[dict[str, str]] = []
    area_column: str | None = None
    explicit = column_map is not None
    chosen = dict(column_map or {})
    declared = _declared_area(columns, area_unit, chosen.get("declared_area"), explicit=explicit)
    if declared is not None:
        area_column, mapped["declared_area"], mapped["declared_area_mu"] = declared
    if explicit:
        by_column = {column: name for name, column in chosen.items() if column is not None and name != "declared_area"}
        for column, name in by_column.items():
            value = columns.get(column)
            if value is not None and not (isinstance(value, str) and not value.strip()):
                mapped[name] = _clean(name, value)
    for column, value in columns.items():
        if value is None or (isinstance(value, str) and not value.strip()) or column == area_column:
            continue
        if explicit and column in by_column:
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
        key = None if explicit else _ALIAS_TO_KEY.get(folded)
        if key is not None and key not in mapped:
            mapped[key] = _clean(key, value)
        elif explicit and column in mapped:
            mapped["file:" + column] = value
        else:
            mapped[column] = value
    if registrations:
        mapped["external_registrations"] = registrations
    return mapped
