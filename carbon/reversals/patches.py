"""Import change-patch files (森林督查变化图斑): polygons with a change type, a cause and a date.

Forest-supervision change patches come from the provinces as Shapefiles, GeoPackages or GeoJSON whose
columns are spelled in Chinese or in pinyin initials. Known spellings are recognised (:data:`ALIASES`:
``图斑号``/``TBH``, ``变化类型``/``BHLX``, ``变化原因``/``BHYY``, ``变化日期``/``BHSJ``, ``后时相``/``HSX``…);
any other column is named by the uploader's ``mapping`` (canonical key → column). The cause (or, failing it,
the change type) decides the *loss kind* by keyword (:data:`LOSS_KEYWORDS`: 火灾 → fire, 采伐 → harvest,
造林 → gain…); coded causes are given by ``cause_kinds`` (value → kind). Gains never raise an event; an
unrecognised cause is kept as ``unknown`` and does raise one, marked so, for the registry to judge.

Every feature is checked (CRS to EPSG:4490, geometry validity, a date to the day, a cause or type) and the file
is refused as a whole, listing every problem, or stored as a whole with its audit entry.

>>> loss_kind_of("森林火灾", "", {})
'fire'
>>> loss_kind_of("", "人工造林", {})
'gain'
>>> loss_kind_of("21", "", {"21": "harvest"})
'harvest'
>>> parse_day("20250817"), parse_day("2025/8/17"), parse_day("2025-08")
(datetime.date(2025, 8, 17), datetime.date(2025, 8, 17), None)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.reversals.models import ChangePatch, ChangePatchFile
from core import audit
from core.auth import Principal
from core.clock import Clock
from core.errors import Conflict, InvalidInput, UnreadableFile
from geodata.area import measure
from geodata.crs import to_cgcs2000
from geodata.readers import PlotFormat, ReadLimits, detect_format, read_geojson_document, read_plot_file
from geodata.validation import check_plot_geometry

LossKind = Literal["fire", "harvest", "pests", "disaster", "conversion", "unknown", "gain"]
LOSS_KINDS: tuple[str, ...] = ("fire", "harvest", "pests", "disaster", "conversion", "unknown", "gain")
CANONICAL_KEYS = ("patch_code", "change_type", "cause", "change_date", "after_date", "before_date")

#: Column spellings recognised per canonical key (compared without case, spaces, underscores or brackets).
ALIASES: dict[str, tuple[str, ...]] = {
    "patch_code": (
        "patch_code",
        "code",
        "id",
        "图斑号",
        "图斑编号",
        "变化图斑号",
        "监测图斑号",
        "tbh",
        "tbbh",
        "jcbh",
        "bh",
    ),
    "change_type": ("change_type", "变化类型", "变化类别", "图斑类型", "bhlx", "bhlb", "tblx"),
    "cause": ("cause", "change_cause", "变化原因", "变更原因", "原因", "bhyy", "bgyy"),
    "change_date": ("change_date", "变化日期", "变化时间", "发现日期", "bhrq", "bhsj"),
    "after_date": ("after_date", "后时相", "后时相日期", "后期影像日期", "hsx", "hsxrq"),
    "before_date": ("before_date", "前时相", "前时相日期", "前期影像日期", "qsx", "qsxrq"),
}
#: Keywords of each loss kind, tried in this order (gain last: "火烧迹地更新" is a fire first).
LOSS_KEYWORDS: dict[str, tuple[str, ...]] = {
    "fire": ("火灾", "火烧", "过火", "fire", "burn"),
    "harvest": ("采伐", "皆伐", "择伐", "盗伐", "滥伐", "间伐", "harvest", "logging", "felling", "clearcut"),
    "pests": ("病虫害", "虫害", "病害", "松材线虫", "pest", "disease"),
    "disaster": (
        "自然灾害",
        "地质灾害",
        "滑坡",
        "泥石流",
        "风灾",
        "雪灾",
        "冰冻",
        "干旱",
        "disaster",
        "landslide",
        "storm",
    ),
    "conversion": (
        "毁林",
        "开垦",
        "征占用",
        "占用",
        "建设",
        "工程",
        "采矿",
        "修路",
        "conversion",
        "construction",
        "mining",
    ),
    "gain": ("造林", "更新", "封山育林", "恢复", "afforestation", "planting", "regrowth"),
}
_NOISE = re.compile(r"[\s_\-()（）\[\]【】/.]+")


class ImportChangePatches(BaseModel):
    """Command: import a change-patch file under a name, for a region and a survey year."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-.]*$")
    region_code: str = Field(pattern=r"^\d{2}(\d{4})?$", description="GB/T 2260 province or county code.")
    survey_year: int = Field(ge=2000, le=2100)
    mapping: dict[str, str] = Field(
        default_factory=dict, description="Canonical key → the file's column, for columns not recognised."
    )
    cause_kinds: dict[str, LossKind] = Field(
        default_factory=dict, description="A cause value (e.g. a code) → its loss kind, before keywords."
    )


def _key(name: str) -> str:
    return _NOISE.sub("", name).lower()


def column_map(columns: list[str], mapping: Mapping[str, str]) -> dict[str, str]:
    """Return canonical key → column: the uploader's mapping first, then the recognised spellings.

    >>> column_map(["BHYY", "HSX", "TBH"], {})
    {'patch_code': 'TBH', 'cause': 'BHYY', 'after_date': 'HSX'}
    """
    unknown = sorted(set(mapping) - set(CANONICAL_KEYS))
    if unknown:
        raise InvalidInput(f"unknown mapping keys {unknown}; use {', '.join(CANONICAL_KEYS)}",
                           [{"pointer": f"/mapping/{k}", "reason": "unknown-key"} for k in unknown])  # fmt: skip
    missing = sorted(c for c in mapping.values() if c not in columns)
    if missing:
        problems = [{"pointer": "/mapping", "reason": "column-not-in-file", "column": c} for c in missing]
        raise InvalidInput(f"mapped columns {missing} are not in the file (columns: {columns})", problems)
    by_key = {_key(c): c for c in columns}
    found: dict[str, str] = {}
    for canonical in CANONICAL_KEYS:
        if canonical in mapping:
            found[canonical] = mapping[canonical]
            continue
        column = next((by_key[_key(a)] for a in ALIASES[canonical] if _key(a) in by_key), None)
        if column is not None:
            found[canonical] = column
    return found


def loss_kind_of(cause: str, change_type: str, cause_kinds: Mapping[str, str]) -> str:
    """Return the loss kind of a patch from its cause, else its change type (``unknown`` when neither says)."""
    for text in (cause.strip(), change_type.strip()):
        if text in cause_kinds:
            return cause_kinds[text]
    for text in (cause.lower(), change_type.lower()):
        for kind, words in LOSS_KEYWORDS.items():
            if any(word in text for word in words):
                return kind
    return "unknown"


def parse_day(value: Any) -> dt.date | None:
    """Return the day a cell names (``YYYY-MM-DD``, ``YYYY/M/D``, ``YYYYMMDD``, ``YYYY.MM.DD``, a date), or None."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip() if value is not None else ""
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    found = re.fullmatch(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T].*)?", text) or re.fullmatch(
        r"(\d{4})(\d{2})(\d{2})", text
    )
    if not found:
        return None
    try:
        return dt.date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        return None


def _features(filename: str, data: bytes, limits: ReadLimits) -> tuple[list[tuple[dict[str, Any], Any]], str | None]:
    if detect_format(filename) is PlotFormat.GEOJSON:
        document = read_geojson_document(data, limits)
        if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
            raise UnreadableFile("a change-patch GeoJSON file is a FeatureCollection", [{"reason": "not-a-collection"}])
        crs = ((document.get("crs") or {}).get("properties") or {}).get("name")
        rows = []
        for feature in document.get("features") or []:
            geometry = feature.get("geometry") if isinstance(feature, dict) else None
            properties = feature.get("properties") if isinstance(feature, dict) else None
            properties = properties if isinstance(properties, dict) else {}
            try:
                rows.append((dict(properties), shape(geometry) if geometry else None))
            except (ValueError, TypeError, AttributeError):
                rows.append((dict(properties), None))
        return rows, crs
    layer = read_plot_file(data, filename, limits)
    return [(dict(p), g) for p, g in layer.features], layer.crs


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _plain(value: Any) -> Any:
    """Return a cell as a JSON value every database stores: no control characters, no NaN or infinity."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**63 - 1:
        return str(value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return _CONTROL.sub("", str(value))


def import_patches(
    session: Session,
    cmd: ImportChangePatches,
    *,
    filename: str,
    data: bytes,
    actor: Principal,
    clock: Clock,
    limits: ReadLimits | None = None,
) -> ChangePatchFile:
    """Check every feature of a change-patch file and store the file and its patches, audited; commits.

    Raises:
        Conflict: A file of that name was imported already.
        UnreadableFile: The file is not what its name says.
        InvalidInput: Any feature lacks a geometry, a day or a cause/type (every problem listed; nothing written).
    """
    if session.scalars(select(ChangePatchFile.id).where(ChangePatchFile.name == cmd.name)).first() is not None:
        raise Conflict(f"a change-patch file named {cmd.name!r} exists")
    rows, crs = _features(filename, data, limits or ReadLimits())
    if not rows:
        raise InvalidInput("the file holds no change patch", [{"reason": "no-features"}])
    columns = sorted({str(k) for properties, _ in rows for k in properties})
    columns_of = column_map(columns, cmd.mapping)
    problems: list[dict[str, Any]] = []
    if "cause" not in columns_of and "change_type" not in columns_of:
        problems.append({"reason": "no-cause-or-type-column", "columns": columns, "hint": "map cause or change_type"})
    if "change_date" not in columns_of and "after_date" not in columns_of:
        problems.append({"reason": "no-date-column", "columns": columns, "hint": "map change_date or after_date"})
    if problems:
        raise InvalidInput("the change-patch file lacks required columns; nothing was written", problems)
    present = [(i, g) for i, (_p, g) in enumerate(rows) if g is not None and not g.is_empty]
    normalised = to_cgcs2000([g for _i, g in present], crs)
    geometries: dict[int, BaseGeometry] = dict(zip([i for i, _g in present], normalised.geometries, strict=True))
    patches: list[ChangePatch] = []
    for index, (properties, _geometry) in enumerate(rows):
        patch, found = _patch_of(index, properties, geometries.get(index), columns_of, cmd)
        problems += found
        if patch is not None:
            patches.append(patch)
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) in the change-patch file; nothing was written", problems)
    record = ChangePatchFile(
        name=cmd.name, filename=filename[:255], sha256=hashlib.sha256(data).hexdigest(), region_code=cmd.region_code,
        survey_year=cmd.survey_year, source_crs=normalised.source_crs,
        mapping={"columns": columns_of, "cause_kinds": dict(cmd.cause_kinds)}, patch_count=len(patches),
        created_at=clock.now(), created_by_user_id=actor.user_id,
    )  # fmt: skip
    session.add(record)
    session.flush()
    for patch in patches:
        patch.file_id = record.id
    session.add_all(patches)
    kinds: dict[str, int] = {}
    for patch in patches:
        kinds[patch.loss_kind] = kinds.get(patch.loss_kind, 0) + 1
    payload = {"name": record.name, "sha256": record.sha256, "region_code": record.region_code,
               "survey_year": record.survey_year, "patches": len(patches), "loss_kinds": kinds,
               "mapping": record.mapping, "source_crs": record.source_crs}  # fmt: skip
    audit.append(session, actor=actor.actor, action="change_patches.imported", subject=f"change_patch_file:{record.id}",
                 payload=payload, clock=clock)  # fmt: skip
    session.commit()
    return record


def _patch_of(
    index: int,
    properties: dict[str, Any],
    geometry: BaseGeometry | None,
    columns_of: Mapping[str, str],
    cmd: ImportChangePatches,
) -> tuple[ChangePatch | None, list[dict[str, Any]]]:
    def cell(key: str) -> Any:
        column = columns_of.get(key)
        return properties.get(column) if column is not None else None

    problems: list[dict[str, Any]] = []
    checked = check_plot_geometry(geometry, repair=True)
    if checked.geometry is None:
        problems += [
            {"feature_index": index, "reason": reason, "location": where} for reason, where in checked.problems
        ]
    day = parse_day(cell("change_date")) or parse_day(cell("after_date"))
    if day is None:
        problems.append({"feature_index": index, "reason": "no-day",
                         "detail": "the change date (or the later image's date) must name a day",
                         "value": _plain(cell("change_date") or cell("after_date"))})  # fmt: skip
    cause, change_type = str(_plain(cell("cause")) or "").strip(), str(_plain(cell("change_type")) or "").strip()
    if not cause and not change_type:
        problems.append({"feature_index": index, "reason": "no-cause-or-type"})
    if problems or checked.geometry is None or day is None:
        return None, problems
    polygon = checked.geometry
    min_lon, min_lat, max_lon, max_lat = polygon.bounds
    code = str(_plain(cell("patch_code")) or f"#{index + 1}")[:100]
    return ChangePatch(
        patch_code=code, change_type=change_type[:100], cause=cause[:200],
        loss_kind=loss_kind_of(cause, change_type, cmd.cause_kinds), change_date=day,
        area_m2=measure(polygon).area_m2, geometry=polygon, min_lon=min_lon, min_lat=min_lat, max_lon=max_lon,
        max_lat=max_lat, properties={str(k): _plain(v) for k, v in properties.items()},
    ), []  # fmt: skip
