"""From an upload to plot features ready to register: read, map attributes, reproject, check, measure.

One pipeline for every format and for the JSON API. Each feature gets a :class:`FeatureReport`
(accepted, repaired or refused, with reasons and locations); an upload with any refused feature is
refused whole — the caller stores nothing.

Checks after reprojection to CGCS2000 lon/lat: validity (``make_valid`` on ``repair=True``, with the
area change reported), emptiness, size and vertex limits, slivers, the national outline; and a warning
when the declared area differs from the measured geodesic area by more than 5 %. A declared area is in mu
or ha: as stated by the uploader (``area_unit``), else as its column's name says, else mu is assumed —
each feature's report and the summary (``declared_area_units``) say which and why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from core.errors import InvalidGeometry
from geodata import messages
from geodata.area import measure
from geodata.attributes import AreaUnit, ColumnMap, map_attributes, suggest_mapping
from geodata.crs import in_china, to_cgcs2000
from geodata.readers import (
    PlotFormat,
    RawLayer,
    ReadLimits,
    Source,
    check_json_depth,
    detect_format,
    read_geojson_document,
    read_plot_file,
)
from geodata.validation import GeometryLimits, GeometryProblem, PlotFeature, check_plot_geometry, parse_features

AREA_MISMATCH_SHARE = 0.05
Progress = Callable[[int, int], None]


@dataclass
class FeatureReport:
    """What happened to one feature of an upload."""

    index: int
    plot_code: str | None
    name: str | None
    status: str = "accepted"  # accepted | repaired | refused
    problems: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    area_m2: float | None = None
    area_mu: float | None = None
    declared_area_mu: float | None = None
    declared_area_unit: str | None = None  # the unit the file gives it in: mu | ha
    declared_area_unit_from: str | None = None  # stated | column | assumed
    repair_area_change_m2: float | None = None

    def refuse(self, reason: str, location: list[float] | None = None, pointer: str | None = None) -> None:
        """Mark the feature refused with one more reason."""
        self.status = "refused"
        self.problems.append({"reason": reason, "location": location, "pointer": pointer})

    def as_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready mapping."""
        return dict(self.__dict__)


@dataclass
class Intake:
    """The outcome of an upload: features to register (only when nothing was refused) and the report."""

    features: list[PlotFeature]
    reports: list[FeatureReport]
    source_crs: str
    crs_assumed: bool
    encoding: str | None = None
    area_unit: AreaUnit | None = None  # as stated by the uploader
    #: Lon/lat geometry of refused features that had one (to show them where they are), by feature index.
    refused_geometries: dict[int, BaseGeometry] = field(default_factory=dict)

    @property
    def refused(self) -> list[FeatureReport]:
        """Return the reports of refused features."""
        return [r for r in self.reports if r.status == "refused"]

    def raise_if_refused(self) -> None:
        """Raise :class:`InvalidGeometry` listing every problem of every refused feature."""
        if not self.refused:
            return
        problems = [{"feature_index": r.index, "plot_code": r.plot_code, **p} for r in self.refused for p in r.problems]
        raise InvalidGeometry(f"{len(self.refused)} feature(s) refused; nothing was stored", problems)

    def summary(self) -> dict[str, Any]:
        """Return counts and the per-feature report."""
        counts = {s: sum(1 for r in self.reports if r.status == s) for s in ("accepted", "repaired", "refused")}
        return {
            "source_crs": self.source_crs,
            "crs_assumed": self.crs_assumed,
            "encoding": self.encoding,
            "area_unit": self.area_unit,
            "declared_area_units": self.declared_area_units(),
            "counts": counts,
            "features": [r.as_dict() for r in self.reports],
        }

    def declared_area_units(self) -> list[dict[str, Any]]:
        """Return how the declared areas' units were decided: unit, why, and how many features.

        ``unit_from`` is ``"stated"`` (the upload's ``area_unit``), ``"column"`` (the column's name says
        it) or ``"assumed"`` (neither: mu, today's default — state ``area_unit`` to be sure).
        """
        counted: dict[tuple[str, str], int] = {}
        for report in self.reports:
            if report.declared_area_unit is not None and report.declared_area_unit_from is not None:
                key = (report.declared_area_unit, report.declared_area_unit_from)
                counted[key] = counted.get(key, 0) + 1
        return [{"unit": unit, "unit_from": basis, "features": n} for (unit, basis), n in sorted(counted.items())]


def _check_declared_area(report: FeatureReport, attributes: dict[str, Any], measured_mu: float) -> None:
    declared = attributes.get("declared_area_mu")
    record = attributes.get("declared_area")
    if not isinstance(declared, float) or not isinstance(record, dict):
        return
    report.declared_area_mu = declared
    report.declared_area_unit, report.declared_area_unit_from = record["unit"], record["unit_from"]
    if declared <= 0 or abs(measured_mu - declared) <= AREA_MISMATCH_SHARE * declared:
        return
    given = f"{record['value']:g} {record['unit']}" + (f" ({declared:g} mu)" if record["unit"] != "mu" else "")
    if record["unit_from"] == "assumed":
        given += f", unit assumed as column {record['column']!r} does not name one"
    report.warnings.append(f"declared area {given} differs from the measured {measured_mu:.2f} mu by more than 5 %")


def _finish(
    report: FeatureReport, feature: PlotFeature, area_unit: AreaUnit | None = None, column_map: ColumnMap | None = None
) -> PlotFeature | None:
    if not in_china(feature.geometry):
        swapped = in_china(shapely.transform(feature.geometry, lambda xy: xy[:, ::-1]))
        message = messages.OUTSIDE_CHINA_SWAPPED if swapped else messages.OUTSIDE_CHINA
        report.refuse(message, list(feature.geometry.representative_point().coords[0]))
        return None
    attributes = map_attributes(feature.properties, area_unit=area_unit, column_map=column_map)
    measured = measure(feature.geometry)
    report.area_m2, report.area_mu = measured.area_m2, measured.area_mu
    _check_declared_area(report, attributes, measured.area_mu)
    if feature.repaired:
        report.status = "repaired"
        report.repair_area_change_m2 = feature.repair_area_change_m2
        report.warnings.append(f"geometry repaired (make_valid), area change {feature.repair_area_change_m2:+.2f} m²")
    code = attributes.get("code")
    name = attributes.get("name")
    return PlotFeature(
        feature.index,
        attributes,
        feature.geometry,
        str(code) if code is not None else feature.plot_code,
        name if isinstance(name, str) else feature.name,
        feature.repaired,
        feature.repair_area_change_m2,
    )


def _properties_of(feature: Any) -> dict[str, Any]:
    """Return a raw feature's properties when they are an object (any other value is reported by validation)."""
    properties = feature.get("properties") if isinstance(feature, dict) else None
    return properties if isinstance(properties, dict) else {}


def _report_for(index: int, properties: dict[str, Any], column_map: ColumnMap | None = None) -> FeatureReport:
    attributes = map_attributes(properties, column_map=column_map)
    code, name = attributes.get("code"), attributes.get("name")
    return FeatureReport(index, str(code) if code is not None else None, name if isinstance(name, str) else None)


def intake_geojson(
    document: Any,
    *,
    repair: bool = False,
    max_features: int = 10_000,
    limits: GeometryLimits | None = None,
    area_unit: AreaUnit | None = None,
    column_map: ColumnMap | None = None,
) -> Intake:
    """Run the pipeline on a GeoJSON document (EPSG:4326/4490 lon/lat); ``area_unit``: the declared areas' unit.

    Raises:
        InvalidInput: The document nests deeper than JSON documents are allowed to.
    """
    check_json_depth(document)
    features, problems = parse_features(document, max_features=max_features, repair=repair, limits=limits)
    raw = (
        document.get("features")
        if isinstance(document, dict) and document.get("type") == "FeatureCollection"
        else [document]
    )
    reports = [_report_for(i, _properties_of(f), column_map) for i, f in enumerate(raw or [])]
    _attach(problems, reports)
    done = [f for f in (_finish(reports[f.index], f, area_unit, column_map) for f in features) if f is not None]
    intake = Intake(done, reports, "EPSG:4490", True, area_unit=area_unit)
    for report in intake.refused:
        if (shape := _raw_shape(raw[report.index] if raw else None)) is not None:
            intake.refused_geometries[report.index] = shape
    return intake


def _raw_shape(feature: Any) -> BaseGeometry | None:
    """Return a raw GeoJSON feature's geometry as shapely, however invalid, or ``None`` when unreadable."""
    try:
        geometry = shapely.geometry.shape(feature["geometry"])
    except Exception:  # any malformed geometry: the report says why; the map shows the reported location only
        return None
    return None if geometry.is_empty else geometry


class _StreamedFeatures:
    """Checks each feature of a GeoJSON FeatureCollection as the reader completes it, keeping only the result.

    The feature's JSON (lists of lists of floats, ~120 bytes a vertex) is dropped once it is checked;
    what stays is its report and, when valid, its shapely geometry (16 bytes a vertex).
    """

    def __init__(
        self,
        repair: bool,
        limits: GeometryLimits | None,
        progress: Progress | None,
        area_unit: AreaUnit | None,
        column_map: ColumnMap | None = None,
    ) -> None:
        self.repair, self.limits, self.progress, self.area_unit = repair, limits, progress, area_unit
        self.column_map = column_map
        self.refused_geometries: dict[int, BaseGeometry] = {}
        self.reports: list[FeatureReport] = []
        self.features: list[PlotFeature] = []
        self.problems: list[GeometryProblem] = []

    def __call__(self, index: int, raw: Any) -> None:
        self.reports.append(_report_for(index, _properties_of(raw), self.column_map))
        collection = {"type": "FeatureCollection", "features": [raw]}
        features, problems = parse_features(collection, max_features=1, repair=self.repair, limits=self.limits)
        if problems and (shape := _raw_shape(raw)) is not None:
            self.refused_geometries[index] = shape
        self.features.extend(replace(f, index=index) for f in features)
        prefix = f"/features/{index}"
        self.problems.extend(
            replace(p, feature_index=index, pointer=prefix + (p.pointer or "").removeprefix("/features/0"))
            for p in problems
        )
        if self.progress is not None and (index + 1) % 500 == 0:
            self.progress(index + 1, index + 1)

    def intake(self) -> Intake:
        _attach(self.problems, self.reports)
        done = [
            f
            for f in (_finish(self.reports[f.index], f, self.area_unit, self.column_map) for f in self.features)
            if f is not None
        ]
        if self.progress is not None:
            self.progress(len(self.reports), len(self.reports))
        intake = Intake(done, self.reports, "EPSG:4490", True, area_unit=self.area_unit)
        intake.refused_geometries = self.refused_geometries
        return intake


def _intake_geojson_file(
    source: Source,
    read_limits: ReadLimits,
    repair: bool,
    limits: GeometryLimits | None,
    progress: Progress | None,
    area_unit: AreaUnit | None,
    column_map: ColumnMap | None = None,
) -> Intake:
    streamed = _StreamedFeatures(repair, limits, progress, area_unit, column_map)
    remainder = read_geojson_document(source, read_limits, on_feature=streamed)
    if streamed.reports and isinstance(remainder, dict) and remainder.get("type") == "FeatureCollection":
        return streamed.intake()
    # A single Feature, an empty collection or not GeoJSON at all: the document is small, or refused.
    return intake_geojson(
        remainder, repair=repair, max_features=read_limits.max_features, limits=limits, area_unit=area_unit,
        column_map=column_map,
    )  # fmt: skip


def _attach(problems: list[GeometryProblem], reports: list[FeatureReport]) -> None:
    for problem in problems:
        if problem.feature_index is None or problem.feature_index >= len(reports):
            raise InvalidGeometry(problem.reason, [problem.as_dict()])
        reports[problem.feature_index].refuse(problem.reason, problem.location, problem.pointer)


def intake_layer(
    layer: RawLayer,
    *,
    repair: bool = False,
    limits: GeometryLimits | None = None,
    progress: Progress | None = None,
    area_unit: AreaUnit | None = None,
    column_map: ColumnMap | None = None,
) -> Intake:
    """Run the pipeline on a layer read from a file (any CRS); ``area_unit``: the declared areas' unit.

    ``column_map``: the person's choice of column for each plot attribute (``geodata.attributes``).
    """
    reports = [_report_for(i, properties, column_map) for i, (properties, _g) in enumerate(layer.features)]
    present = [(i, g) for i, (_p, g) in enumerate(layer.features) if g is not None and not g.is_empty]
    normalised = to_cgcs2000([g for _i, g in present], layer.crs)
    lonlat: dict[int, BaseGeometry] = dict(zip((i for i, _g in present), normalised.geometries, strict=True))
    features: list[PlotFeature] = []
    refused_geometries: dict[int, BaseGeometry] = {}
    total = len(layer.features)
    for index, (properties, _geometry) in enumerate(layer.features):
        report = reports[index]
        if "__problem__" in properties:
            report.refuse(str(properties.pop("__problem__")))
        result = check_plot_geometry(lonlat.get(index), repair=repair, limits=limits)
        for reason, location in result.problems:
            report.refuse(reason, location)
        if report.status == "refused" and (shape := lonlat.get(index)) is not None:
            refused_geometries[index] = shape
        if result.geometry is not None and report.status != "refused":
            feature = PlotFeature(
                index,
                properties,
                result.geometry,
                report.plot_code,
                report.name,
                result.repaired,
                result.area_change_m2,
            )
            if (done := _finish(report, feature, area_unit, column_map)) is not None:
                features.append(done)
        if progress is not None and (index + 1) % 500 == 0:
            progress(index + 1, total)
    if progress is not None:
        progress(total, total)
    intake = Intake(features, reports, normalised.source_crs, normalised.assumed, layer.encoding, area_unit)
    intake.refused_geometries = refused_geometries
    return intake


def intake_file(
    source: Source,
    filename: str,
    *,
    repair: bool = False,
    limits: GeometryLimits | None = None,
    read_limits: ReadLimits | None = None,
    progress: Progress | None = None,
    area_unit: AreaUnit | None = None,
    column_map: ColumnMap | None = None,
) -> Intake:
    """Run the pipeline on an uploaded file of any supported format (its bytes, a path or a stream).

    ``area_unit``: see :func:`intake_layer`. The reader refuses a feature over ``limits.max_vertices``
    while it reads, before any geometry is built or checked.
    """
    read_limits = replace(read_limits or ReadLimits(), max_vertices=(limits or GeometryLimits()).max_vertices)
    if detect_format(filename) is PlotFormat.GEOJSON:
        return _intake_geojson_file(source, read_limits, repair, limits, progress, area_unit, column_map)
    layer = read_plot_file(source, filename, read_limits)
    return intake_layer(
        layer, repair=repair, limits=limits, progress=progress, area_unit=area_unit, column_map=column_map
    )


@dataclass(frozen=True)
class ColumnsPeek:
    """A file's attribute columns, a few sample values of each, and the mapping suggested for them."""

    file_format: str
    features: int
    encoding: str | None
    columns: list[str]
    samples: dict[str, list[str]]
    suggested: dict[str, str | None]


def peek_columns(source: Source, filename: str, read_limits: ReadLimits | None = None, samples: int = 3) -> ColumnsPeek:
    """Read a file's attribute columns (in order of first appearance) for the column-mapping step.

    The whole file is read under the same limits as an import (an unreadable file is refused here already).
    """
    read_limits = read_limits or ReadLimits()
    file_format = detect_format(filename)
    rows: list[dict[str, Any]]
    encoding: str | None = None
    if file_format is PlotFormat.GEOJSON:
        document = read_geojson_document(source, read_limits)
        raw = document.get("features") if isinstance(document, dict) and "features" in document else [document]
        rows = [_properties_of(f) for f in raw or []]
    else:
        layer = read_plot_file(source, filename, read_limits)
        rows, encoding = [properties for properties, _g in layer.features], layer.encoding
    columns: dict[str, list[str]] = {}
    for row in rows:
        for column, value in row.items():
            if column == "__problem__":
                continue
            seen = columns.setdefault(column, [])
            text = "" if value is None else str(value).strip()
            if text and len(seen) < samples and text[:60] not in seen:
                seen.append(text[:60])
    names = list(columns)
    return ColumnsPeek(file_format.value, len(rows), encoding, names, columns, suggest_mapping(names))
