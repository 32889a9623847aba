"""Service: file monitoring reports, preview them, and recompute a stored record.

A monitoring report applies a registered methodology (``carbon.methods.registry``) to some plots of a
project over a monitoring period, and stores what it computed: the inputs, the full result record
(parameters with citations, every equation step, quantities, deductions, warnings) and the record's
SHA-256. The methodology itself stays pure; this module gathers what it needs from the database:

* **Stateful checks.** Only the project's own organisation (a forestry bureau or forest owner) files or
  previews; the plots must belong to the project and hold an active claim covering the period; the
  period must lie inside the project's crediting period; the reported units' areas may not exceed
  their plots' geodesic areas; no other report of the project covers one of the plots for an
  overlapping period (409, double filing).
* **External registrations.** Each methodology unit (sub-compartment, stratum, polygon) maps to one
  plot. The registrations recorded on that plot (``Plot.external_registrations``, ``{scheme, id}``) are
  added to the methodology's ``external_registrations`` input for the plot's claim period, so the
  methodology's own double-issuance rule refuses them; for a methodology without that input the same
  pure rule (``carbon.methods.registrations``) is applied here.
* **Raster route.** ``raster`` names a registered continuous layer of above-ground biomass density
  (t d.m./ha). Each stratum's density is the area-weighted mean over its plots,
  ``Σ integral / Σ covered area`` of ``geodata.zonal.zonal_statistics`` (t/ha × m² / m² = t/ha),
  quantised to 0.001 t/ha, and enters the methodology's external-density input together with the
  layer's name and SHA-256. The layer file is re-hashed before use, so a record names exactly the
  raster it came from.
* **Warnings, never clipping.** The methodology's sanity warnings are stored and shown as they are.

The raster route is :mod:`carbon.monitoring_raster`; reads of stored reports, their lifecycle warnings and
the recomputation of a record are :mod:`carbon.monitoring_records`.

Invariants: a report row's ``record_sha256`` is the hash of its record under the scheme the record and the
row's ``hash_scheme`` name (``rfc8785`` for new reports; ``carbon.monitoring_records.record_hash``), as is its
``parameter_set_sha256``, and :func:`recompute` of the record reproduces it byte for byte; tonnes are exact
decimals; the report and its audit entry (whose payload holds the SHA-256 and its scheme) are written in one
transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.methods.base import Ineligible, Methodology, Result
from carbon.methods.registrations import ExternalRegistration, double_issuance_problems
from carbon.models import ClaimStatus, MonitoringReport, Plot, Project, ProjectKind, ReportStatus
from carbon.monitoring_adapters import ADAPTERS, Adapter, check_harvests, check_inventory
from carbon.monitoring_raster import RasterDensity, apply_raster
from carbon.monitoring_records import REGISTRY, validated
from carbon.parameters.loader import available_parameter_sets, load_parameter_set
from carbon.parameters.models import ParameterSet
from carbon.projects import PROPONENT_ROLES, get_project
from carbon.sea_areas import refuse_double_harvest
from core import audit
from core.auth import Principal
from core.bounds import Id
from core.canonical import canonical_json
from core.clock import Clock
from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied

#: Units may exceed their plot's geodesic area by this share (declared areas are rounded) plus 1 m².
AREA_TOLERANCE = Decimal("0.001")
REGISTRATION_SCHEMES = ("CCER", "VCS", "FFCER")


class ReportRequest(BaseModel):
    """What a proponent sends to preview or file a report (the project comes from the path)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    methodology_id: str = Field(min_length=1, max_length=100, examples=["FJ-FORESTRY-CARBON-TICKET"])
    methodology_version: str = Field(min_length=1, max_length=40, examples=["1"])
    parameter_set_version: str | None = Field(
        default=None, max_length=40, description="A version of the methodology's parameter set; default: its default."
    )
    period_start: date = Field(examples=["2021-01-01"])
    period_end: date = Field(examples=["2025-12-31"])
    plot_ids: list[Id] = Field(min_length=1, max_length=10_000)
    unit_plots: dict[str, Id] = Field(
        default_factory=dict,
        description="Methodology unit id (sub-compartment, stratum, polygon) → plot id. By default a unit "
        "maps to the plot whose code equals its id, or to the only plot.",
    )
    inputs: dict[str, Any] = Field(description="The methodology's inputs; the period is filled in from above.")
    raster: RasterDensity | None = None

    @field_validator("plot_ids")
    @classmethod
    def _unique(cls, plot_ids: list[int]) -> list[int]:
        if len(set(plot_ids)) != len(plot_ids):
            raise ValueError("plot_ids repeats a plot")
        return sorted(plot_ids)

    @field_validator("period_end")
    @classmethod
    def _after_start(cls, period_end: date, info: Any) -> date:
        start = info.data.get("period_start")
        if start is not None and period_end <= start:
            raise ValueError("period_end must be after period_start")
        return period_end


class FileReport(ReportRequest):
    """Command: file a monitoring report for a project."""

    project_id: int


@dataclass(frozen=True)
class Computed:
    """A computed (not yet stored) report: the service inputs and the methodology result."""

    project: Project
    plots: list[Plot]
    parameters: ParameterSet
    inputs: dict[str, Any]
    result: Result

    @property
    def record(self) -> dict[str, Any]:
        """Return the result record as stored (plain JSON values)."""
        loaded: dict[str, Any] = json.loads(self.result.canonical_json())
        return loaded


def methodology_of(methodology_id: str, version: str) -> tuple[Methodology[Any], Adapter]:
    """Return a registered methodology that monitoring reports support.

    Raises:
        NotFound: No such methodology.
        InvalidInput: The methodology is not plot-based (no report adapter).
    """
    methodology = REGISTRY.get(methodology_id, version)
    adapter = ADAPTERS.get(methodology_id)
    if adapter is None:
        raise InvalidInput(
            f"monitoring reports support {', '.join(sorted(ADAPTERS))}; {methodology_id} is a calculation aid only",
            [{"pointer": "/methodology_id"}],
        )
    return methodology, adapter


def _check_kind(project: Project, methodology: Methodology[Any], adapter: Adapter) -> None:
    """Refuse a methodology that accounts another kind of unit than the project declares."""
    if adapter.kind is not project.kind:
        raise InvalidInput(
            f"{methodology.id} accounts {adapter.kind.value}; project {project.code} accounts {project.kind.value}",
            [{"pointer": "/methodology_id"}],
        )


def parameter_set_of(methodology: Methodology[Any], version: str | None) -> ParameterSet:
    """Return the methodology's default parameter set, or another version of the same set."""
    set_id, default_version = methodology.default_parameter_set
    chosen = version or default_version
    if (set_id, chosen) not in available_parameter_sets():
        raise NotFound(f"parameter set {set_id}@{chosen} does not exist")
    return load_parameter_set(set_id, chosen)


def check_may_file(project: Project, actor: Principal) -> None:
    """Refuse anyone but a proponent of the project's own organisation."""
    if actor.role.value not in PROPONENT_ROLES or project.organisation_id != actor.organisation_id:
        raise PermissionDenied("only the project's own organisation (forestry bureau or forest owner) files reports")


def _load_plots(session: Session, project: Project, request: ReportRequest) -> list[Plot]:
    plots = list(session.scalars(select(Plot).where(Plot.id.in_(request.plot_ids)).order_by(Plot.id)))
    missing = sorted(set(request.plot_ids) - {p.id for p in plots})
    if missing:
        raise NotFound(f"plots {missing} do not exist")
    problems = []
    for plot in plots:
        pointer = f"/plot_ids/{request.plot_ids.index(plot.id)}"
        if plot.project_id != project.id:
            problems.append({"pointer": pointer, "reason": f"plot {plot.id} does not belong to project {project.code}"})
        elif plot.claim_status is not ClaimStatus.ACTIVE:
            problems.append({"pointer": pointer, "reason": f"plot {plot.id}'s claim is {plot.claim_status.value}"})
        elif not plot.claim_start <= request.period_start or request.period_end > plot.claim_end:
            problems.append(
                {
                    "pointer": pointer,
                    "reason": f"plot {plot.id} is claimed for {plot.claim_start}..{plot.claim_end}, "
                    f"not the whole period {request.period_start}..{request.period_end}",
                }
            )
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) with the plots", problems)
    return plots


def _check_period(project: Project, request: ReportRequest) -> None:
    if request.period_start < project.crediting_start or request.period_end > project.crediting_end:
        raise InvalidInput(
            f"the monitoring period {request.period_start}..{request.period_end} is not inside the crediting period "
            f"{project.crediting_start}..{project.crediting_end} of {project.code}",
            [{"pointer": "/period_start"}],
        )


def _with_period(document: dict[str, Any], adapter: Adapter, request: ReportRequest) -> dict[str, Any]:
    filled = dict(document)
    for field, value in ((adapter.start_field, request.period_start), (adapter.end_field, request.period_end)):
        if field is None:
            continue
        given = filled.get(field)
        if given is not None and str(given) != value.isoformat():
            raise InvalidInput(
                f"inputs.{field} {given} differs from the report period ({value}); leave it out",
                [{"pointer": f"/inputs/{field}"}],
            )
        filled[field] = value.isoformat()
    return filled


def _units(document: Mapping[str, Any], adapter: Adapter) -> list[Any]:
    found: Any = document
    for part in adapter.units_field.split("."):
        found = found.get(part) if isinstance(found, Mapping) else None
    return found if isinstance(found, list) else []


def _unit_ids(document: Mapping[str, Any], adapter: Adapter) -> list[str]:
    units = _units(document, adapter)
    return [str(u[adapter.unit_id_field]) for u in units if isinstance(u, dict) and adapter.unit_id_field in u]


def map_units(unit_ids: Sequence[str], plots: Sequence[Plot], explicit: Mapping[str, int]) -> dict[str, Plot]:
    """Map each methodology unit to one plot: explicitly, by plot code, or to the only plot.

    Raises:
        InvalidInput: A unit maps to no covered plot, or a covered plot gets no unit.
    """
    by_id = {p.id: p for p in plots}
    by_code = {p.plot_code: p for p in plots if p.plot_code}
    mapping: dict[str, Plot] = {}
    problems = []
    for unit in unit_ids:
        if unit in explicit:
            plot = by_id.get(explicit[unit])
        else:
            plot = by_code.get(unit) or (plots[0] if len(plots) == 1 else None)
        if plot is None:
            problems.append({"pointer": f"/unit_plots/{unit}", "reason": f"unit {unit} maps to none of the plots"})
        else:
            mapping[unit] = plot
    unknown = sorted(set(explicit) - set(unit_ids))
    problems += [{"pointer": f"/unit_plots/{u}", "reason": f"no unit {u} in the inputs"} for u in unknown]
    unused = sorted(set(by_id) - {p.id for p in mapping.values()})
    problems += [{"pointer": "/plot_ids", "reason": f"plot {p} has no unit in the inputs"} for p in unused]
    if problems:
        raise InvalidInput("every unit must map to one covered plot and every plot must have a unit", problems)
    return mapping


def _model_units(model: BaseModel, adapter: Adapter) -> list[Any]:
    found: Any = model
    for part in adapter.units_field.split("."):
        found = getattr(found, part)
    return list(found)


def _check_areas(model: BaseModel, adapter: Adapter, mapping: Mapping[str, Plot]) -> None:
    if not adapter.areas:
        return
    totals: dict[int, Decimal] = {}
    for unit in _model_units(model, adapter):
        plot = mapping[getattr(unit, adapter.unit_id_field)]
        totals[plot.id] = totals.get(plot.id, Decimal(0)) + unit.area_m2
    problems = []
    for plot_id, total_m2 in sorted(totals.items()):
        plot = next(p for p in mapping.values() if p.id == plot_id)
        limit_m2 = Decimal(repr(plot.area_m2)) * (1 + AREA_TOLERANCE) + 1
        if total_m2 > limit_m2:
            problems.append(
                {
                    "pointer": f"/inputs/{adapter.units_field}",
                    "reason": f"units of plot {plot_id} declare {total_m2} m², more than its geodesic "
                    f"area {plot.area_m2:.1f} m²",
                }
            )
    if problems:
        raise InvalidInput("reported areas exceed the plots' geodesic areas", problems)


def plot_registrations(mapping: Mapping[str, Plot]) -> list[dict[str, str]]:
    """Return the plots' recorded external registrations as methodology inputs, one per unit.

    A plot records ``{scheme, id}`` without a period, so each is taken to cover the plot's whole claim
    period (the conservative reading). Schemes the methodology rule does not name are refused here.
    """
    registrations = []
    unsupported = []
    for unit, plot in sorted(mapping.items()):
        for entry in plot.external_registrations or []:
            scheme, registration_id = str(entry.get("scheme", "")), str(entry.get("id", ""))
            if scheme not in REGISTRATION_SCHEMES:
                unsupported.append(
                    {
                        "rule": "no double issuance",
                        "reason": f"plot {plot.id} is registered under {scheme} ({registration_id}): "
                        "double issuance is refused",
                        "pointer": f"/plot_ids/{plot.id}",
                    }
                )
                continue
            registrations.append(
                {
                    "plot_id": unit,
                    "scheme": scheme,
                    "registration_id": registration_id or "unknown",
                    "period_start": plot.claim_start.isoformat(),
                    "period_end": plot.claim_end.isoformat(),
                }
            )
    if unsupported:
        raise Ineligible(f"{len(unsupported)} plot registration(s) under other schemes", unsupported)
    return registrations


def _merge_registrations(document: dict[str, Any], field: str, recorded: list[dict[str, str]]) -> dict[str, Any]:
    declared = [r for r in document.get(field, []) if isinstance(r, dict)]
    seen = {(r.get("plot_id"), r.get("scheme"), r.get("registration_id")) for r in declared}
    added = [r for r in recorded if (r["plot_id"], r["scheme"], r["registration_id"]) not in seen]
    return {**document, field: [*declared, *added]} if added else document


def _refuse_registered(model: BaseModel, request: ReportRequest, recorded: list[dict[str, str]]) -> None:
    registrations = [ExternalRegistration.model_validate(r) for r in recorded]
    unit_ids = [r.plot_id for r in registrations]
    problems = double_issuance_problems(
        unit_ids, registrations, request.period_start, request.period_end, request.methodology_id
    )
    if problems:
        reasons = "; ".join(p.reason for p in problems)
        raise Ineligible(f"{request.methodology_id}: {reasons}", [p.as_dict() for p in problems])


def compute_report(session: Session, project_id: int, request: ReportRequest, *, raster_dir: Path | None) -> Computed:
    """Check the request against the database and compute it (nothing is written).

    Raises:
        NotFound: Unknown project, plot, methodology, parameter set or raster layer.
        InvalidInput: Period, plots, inputs or raster do not fit (every problem listed).
        Ineligible: The methodology refuses the inputs (double issuance among them).
    """
    project = get_project(session, project_id)
    methodology, adapter = methodology_of(request.methodology_id, request.methodology_version)
    _check_kind(project, methodology, adapter)
    parameters = parameter_set_of(methodology, request.parameter_set_version)
    _check_period(project, request)
    plots = _load_plots(session, project, request)
    document = _with_period(request.inputs, adapter, request)
    if adapter.kind is ProjectKind.SEA_AREAS:
        check_harvests(document)
    elif adapter.kind is ProjectKind.INVENTORY_UNITS:
        check_inventory(document, request.period_start, request.period_end)
    mapping = map_units(_unit_ids(document, adapter), plots, request.unit_plots)
    provenance: dict[str, Any] | None = None
    if request.raster is not None:
        if not adapter.raster_route or raster_dir is None:
            raise InvalidInput(f"{methodology.id} has no external-density input", [{"pointer": "/raster"}])
        document, provenance = apply_raster(session, document, request.raster, mapping, raster_dir)
    recorded = plot_registrations(mapping)
    if adapter.registrations_field is not None:
        document = _merge_registrations(document, adapter.registrations_field, recorded)
    model = validated(methodology, document)
    _check_areas(model, adapter, mapping)
    if adapter.registrations_field is None:
        _refuse_registered(model, request, recorded)
    refuse_double_harvest(session, project, plots, request.period_start, request.period_end)
    result = methodology.compute(model, parameters)
    inputs = {
        "methodology": {"id": methodology.id, "version": methodology.version},
        "parameter_set": dict(result.parameter_set),
        "period": {"start": request.period_start.isoformat(), "end": request.period_end.isoformat()},
        "plot_ids": request.plot_ids,
        "unit_plots": {unit: plot.id for unit, plot in sorted(mapping.items())},
        "raster": provenance,
        "methodology_inputs": json.loads(canonical_json(model.model_dump(mode="json"))),
    }
    return Computed(project, plots, parameters, inputs, result)


def preview(
    session: Session, project_id: int, request: ReportRequest, *, actor: Principal, raster_dir: Path | None = None
) -> Computed:
    """Compute a report as it would be filed, without storing anything."""
    check_may_file(get_project(session, project_id), actor)
    return compute_report(session, project_id, request, raster_dir=raster_dir)


def _refuse_double_filing(session: Session, project: Project, request: ReportRequest) -> None:
    session.execute(select(Project.id).where(Project.id == project.id).with_for_update())
    overlapping = session.scalars(
        select(MonitoringReport).where(
            MonitoringReport.project_id == project.id,
            MonitoringReport.status != ReportStatus.REJECTED,
            MonitoringReport.period_start < request.period_end,
            MonitoringReport.period_end > request.period_start,
        )
    )
    wanted = set(request.plot_ids)
    clashes = {r.id: sorted(set(r.plot_ids) & wanted) for r in overlapping if set(r.plot_ids) & wanted}
    if clashes:
        plots = sorted({p for shared in clashes.values() for p in shared})
        raise Conflict(
            f"plots {plots} are already reported for an overlapping period in report(s) {sorted(clashes)}: "
            "double filing is refused"
        )


def _quantity(result: Result, *names: str, default: Decimal | None = None) -> Decimal:
    """Return the first of ``names`` the result has (methodologies name their headline figures differently)."""
    for name in names:
        if name in result.quantities:
            return result.quantities[name]
    if default is not None:
        return default
    raise KeyError(names[0])


def file_report(
    session: Session, cmd: FileReport, *, actor: Principal, clock: Clock, raster_dir: Path | None = None
) -> MonitoringReport:
    """File a monitoring report: check, compute, store inputs + record + hash, audit; commit once.

    Raises:
        PermissionDenied: The actor is not a proponent of the project's organisation.
        Conflict: Another report covers one of the plots for an overlapping period (double filing).
        NotFound, InvalidInput, Ineligible: As :func:`compute_report`.
    """
    project = get_project(session, cmd.project_id)
    check_may_file(project, actor)
    _refuse_double_filing(session, project, cmd)
    computed = compute_report(session, cmd.project_id, cmd, raster_dir=raster_dir)
    result, ref = computed.result, computed.result.parameter_set
    report = MonitoringReport(
        project_id=project.id,
        period_start=cmd.period_start,
        period_end=cmd.period_end,
        methodology_id=result.methodology_id,
        methodology_version=result.methodology_version,
        parameter_set_id=ref["id"],
        parameter_set_version=ref["version"],
        parameter_set_sha256=ref["sha256"],
        provisional=bool(ref["provisional"]),
        provisional_reason=ref["provisional_reason"],
        plot_ids=cmd.plot_ids,
        inputs=computed.inputs,
        record=computed.record,
        record_sha256=result.sha256,
        hash_scheme=result.hash_scheme,
        status=ReportStatus.SUBMITTED,
        gross_removal_tco2e=_quantity(result, "project_removal_tco2e", "net_removal_tco2e", "removal_tco2e"),
        net_removal_tco2e=_quantity(result, "net_removal_tco2e", "removal_tco2e"),
        uncertainty_deduction_tco2e=_quantity(result, "uncertainty_deduction_tco2e", default=Decimal(0)),
        creditable_tco2e=_quantity(result, "creditable_tco2e"),
        buffer_units_t=int(_quantity(result, "buffer_units_t")),
        issuable_units_t=int(_quantity(result, "issuable_units_t")),
        remainder_tco2e=_quantity(result, "remainder_tco2e"),
        warnings=[w.as_dict() for w in result.warnings],
        submitted_at=clock.now(),
        submitted_by_user_id=actor.user_id,
    )
    session.add(report)
    session.flush()
    audit.append(
        session,
        actor=actor.actor,
        action="monitoring_report.filed",
        subject=f"monitoring_report:{report.id}",
        payload={
            "project": project.code,
            "methodology": f"{report.methodology_id} {report.methodology_version}",
            "parameter_set": f"{report.parameter_set_id}@{report.parameter_set_version}",
            "parameter_set_sha256": report.parameter_set_sha256,
            "provisional": report.provisional,
            "period": [cmd.period_start.isoformat(), cmd.period_end.isoformat()],
            "plot_ids": cmd.plot_ids,
            "record_sha256": report.record_sha256,
            "hash_scheme": report.hash_scheme,
            "net_removal_tco2e": str(report.net_removal_tco2e),
            "issuable_units_t": report.issuable_units_t,
            "raster_layer_sha256": (computed.inputs["raster"] or {}).get("layer_sha256"),
        },
        clock=clock,
    )
    session.commit()
    return report
