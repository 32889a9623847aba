"""ORM models of carbon projects and their plots.

Invariants:

* A plot belongs to exactly one project; its geometry is a valid MultiPolygon in EPSG:4490 lon/lat.
* ``area_m2`` and ``perimeter_m`` are geodesic on GRS80 (``geodata.area``); ``geometry_sha256`` is the
  hash of the normalised WKB, so the same polygon always has the same hash.
* ``plot_code`` is unique within its project when given.
* The bounding-box columns equal the geometry's bounds (they feed the R-tree ``plot_rtree`` on SQLite).
* A monitoring report stores the canonical JSON of its methodology result (inputs, parameters with
  citations, trace) and its SHA-256 under the canonicalization scheme ``hash_scheme`` names (``rfc8785`` for
  new reports, ``shanhai-json/1`` for every report before revision 0021; ADR 033); recomputing the record
  under that scheme reproduces the hash. Tonnes are exact
  decimals (``NUMERIC``) and whole units integers, never floats. Reports of one project never cover the
  same plot for overlapping periods unless rejected (``carbon.monitoring``).
* A project accounts one kind of unit (``ProjectKind``): land plots, aquaculture sea areas (stored as plots
  with their licence number) or inventory units (stored as plots); its scheme fixes the kind.
* A plot is a *claim*: plot × project × crediting period (``claim_start``–``claim_end``) × the project's
  scheme. No two active claims whose periods overlap may overlap in area beyond the tolerance of
  ``carbon.claims`` (the double-counting guard), whatever their projects, owners or provinces.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from carbon.evidence_types import EvidenceKind
from core.auth import Organisation
from core.canonical import JCS_SCHEME, LEGACY_SCHEME
from core.db import Base
from core.sqltypes import ExactDecimal, UtcDateTime
from geodata.sqltypes import MultiPolygonGeometry


class Scheme(enum.StrEnum):
    """The crediting scheme a project is developed under."""

    FORESTRY_CARBON_TICKET = "forestry_carbon_ticket"
    CCER_AFFORESTATION = "ccer_afforestation"
    ECOLOGICAL_RESTORATION = "ecological_restoration"
    OCEAN_FISHERY = "ocean_fishery"
    IPCC_INVENTORY = "ipcc_inventory"


class ProjectKind(enum.StrEnum):
    """What a project accounts (issue 26; ADR 036).

    * ``plots``: forest or restoration plots on land (the plot-based methodologies);
    * ``sea_areas``: aquaculture sea areas, each with its sea-use or aquaculture licence (海域使用权证 / 养殖证),
      credited by their harvest (HY/T 0305-2021);
    * ``inventory_units``: inventory strata on land, credited by IPCC stock difference.
    """

    PLOTS = "plots"
    SEA_AREAS = "sea_areas"
    INVENTORY_UNITS = "inventory_units"


#: The kind a scheme's projects account; a project declaring another kind is refused.
KIND_OF_SCHEME = {
    Scheme.FORESTRY_CARBON_TICKET: ProjectKind.PLOTS,
    Scheme.CCER_AFFORESTATION: ProjectKind.PLOTS,
    Scheme.ECOLOGICAL_RESTORATION: ProjectKind.PLOTS,
    Scheme.OCEAN_FISHERY: ProjectKind.SEA_AREAS,
    Scheme.IPCC_INVENTORY: ProjectKind.INVENTORY_UNITS,
}


class LicenceKind(enum.StrEnum):
    """The title a sea area is farmed under."""

    SEA_USE_RIGHT = "sea_use_right"  # 海域使用权证书
    AQUACULTURE = "aquaculture"  # 水域滩涂养殖证


class ProjectStatus(enum.StrEnum):
    """Lifecycle state of a project."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    VALIDATED = "validated"
    REGISTERED = "registered"
    REJECTED = "rejected"


class ClaimStatus(enum.StrEnum):
    """Whether a plot's claim counts for double-counting checks."""

    ACTIVE = "active"
    WITHDRAWN = "withdrawn"


def _values(kind: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in kind]


class Project(Base):
    """A carbon project of a proponent organisation."""

    __tablename__ = "project"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    scheme: Mapped[Scheme] = mapped_column(
        Enum(Scheme, name="scheme", native_enum=False, length=40, values_callable=_values)
    )
    kind: Mapped[ProjectKind] = mapped_column(
        Enum(ProjectKind, name="project_kind", native_enum=False, length=20, values_callable=_values),
        default=ProjectKind.PLOTS,
        server_default=ProjectKind.PLOTS.value,
    )
    status: Mapped[ProjectStatus] = mapped_column(
        Enum(ProjectStatus, name="project_status", native_enum=False, length=20, values_callable=_values)
    )
    province_code: Mapped[str] = mapped_column(String(2))
    county_code: Mapped[str | None] = mapped_column(String(6))
    crediting_start: Mapped[date] = mapped_column(Date)
    crediting_end: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))

    __table_args__ = (CheckConstraint("crediting_end > crediting_start", name="crediting_period_order"),)

    organisation: Mapped[Organisation] = relationship(lazy="joined")
    plots: Mapped[list[Plot]] = relationship(back_populates="project", order_by="Plot.id")


class Plot(Base):
    """A plot polygon registered in a project."""

    __tablename__ = "plot"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"), index=True)
    plot_code: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str | None] = mapped_column(String(200))
    properties: Mapped[dict[str, Any]] = mapped_column(JSON)
    geometry: Mapped[BaseGeometry] = mapped_column(MultiPolygonGeometry())
    geometry_sha256: Mapped[str] = mapped_column(String(64), index=True)
    min_lon: Mapped[float] = mapped_column(Float)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
    area_m2: Mapped[float] = mapped_column(Float)
    perimeter_m: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    measured_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # The claim: this plot is claimed by its project under the project's scheme for this period.
    claim_start: Mapped[date] = mapped_column(Date)
    claim_end: Mapped[date] = mapped_column(Date)
    claim_status: Mapped[ClaimStatus] = mapped_column(
        Enum(ClaimStatus, name="claim_status", native_enum=False, length=20, values_callable=_values), index=True
    )
    external_registrations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    declared_area_mu: Mapped[float | None] = mapped_column(Float)
    #: A sea area's licence (海域使用权证 / 养殖证 number, normalised: no spaces, upper case) and its kind.
    licence_number: Mapped[str | None] = mapped_column(String(60), index=True)
    licence_kind: Mapped[LicenceKind | None] = mapped_column(
        Enum(LicenceKind, name="licence_kind", native_enum=False, length=20, values_callable=_values)
    )
    #: Warnings the verifier sees, such as ``geodata/outside-county`` (``carbon.plots``); never a refusal.
    warnings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, server_default=text("'[]'"))

    project: Mapped[Project] = relationship(back_populates="plots")

    __table_args__ = (
        CheckConstraint("area_m2 > 0", name="area_positive"),
        CheckConstraint("claim_end > claim_start", name="claim_period_order"),
        Index("uq_plot_project_code", "project_id", "plot_code", unique=True),
        # PostgreSQL only (ADR 002): SQLite searches the R-tree ``plot_rtree`` instead (geodata.overlap).
        Index("ix_plot_geometry", "geometry", postgresql_using="gist").ddl_if(dialect="postgresql"),
    )


class ImportStatus(enum.StrEnum):
    """Lifecycle of a plot-file import job."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PlotImport(Base):
    """A plot file uploaded to a project, processed as a job: all its plots are stored, or none.

    The file's bytes are kept, as :class:`PlotImportChunk` rows, until the job ends (so any worker can
    process it) and then dropped; ``sha256`` stays as the record of what was uploaded. ``heartbeat_at``
    is when a worker last showed it was working on the job: a job silent for too long is ended.
    """

    __tablename__ = "plot_import"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    file_format: Mapped[str] = mapped_column(String(20))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    repair: Mapped[bool] = mapped_column(default=False)
    #: The declared-area unit stated by the uploader (mu | ha); ``None``: from the column names, else mu.
    area_unit: Mapped[str | None] = mapped_column(String(2))
    #: The column chosen for each plot attribute (``geodata.attributes.MAPPABLE_KEYS``); ``None``: guessed.
    column_map: Mapped[dict[str, str | None] | None] = mapped_column(JSON)
    #: GeoJSON features (lon/lat) of the features the report speaks of, for the upload page's map.
    outlines: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[ImportStatus] = mapped_column(
        Enum(ImportStatus, name="import_status", native_enum=False, length=20, values_callable=_values)
    )
    features_total: Mapped[int | None] = mapped_column(Integer)
    features_done: Mapped[int] = mapped_column(Integer, default=0)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    plot_ids: Mapped[list[int] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    project: Mapped[Project] = relationship()


class PlotImportChunk(Base):
    """One piece (at most ``carbon.imports.CHUNK_BYTES``) of an import job's uploaded file, in order.

    Stored in pieces so that neither the API storing an upload nor the worker reading it back ever
    holds more than one piece of it in memory.
    """

    __tablename__ = "plot_import_chunk"

    import_id: Mapped[int] = mapped_column(ForeignKey("plot_import.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ReportStatus(enum.StrEnum):
    """Lifecycle of a monitoring report: submitted → verified | rejected (verifier) → issued (registry)."""

    SUBMITTED = "submitted"
    VERIFIED = "verified"
    REJECTED = "rejected"
    ISSUED = "issued"


class MonitoringReport(Base):
    """A monitoring report: a methodology result for some plots of a project over a period, with its trace.

    ``inputs`` are the methodology inputs as computed (canonical JSON, after the service added the plots'
    external registrations and any raster densities); ``record`` is the full result record (trace,
    parameters with citations, quantities, warnings) and ``record_sha256`` its canonical hash under
    ``hash_scheme`` (which also governs ``parameter_set_sha256``; the record names the same scheme).
    """

    __tablename__ = "monitoring_report"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"), index=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    methodology_id: Mapped[str] = mapped_column(String(100))
    methodology_version: Mapped[str] = mapped_column(String(40))
    parameter_set_id: Mapped[str] = mapped_column(String(100))
    parameter_set_version: Mapped[str] = mapped_column(String(40))
    parameter_set_sha256: Mapped[str] = mapped_column(String(64))
    provisional: Mapped[bool] = mapped_column()
    provisional_reason: Mapped[str] = mapped_column(Text, default="")
    plot_ids: Mapped[list[int]] = mapped_column(JSON)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    record_sha256: Mapped[str] = mapped_column(String(64), index=True)
    hash_scheme: Mapped[str] = mapped_column(String(20), server_default=LEGACY_SCHEME)
    status: Mapped[ReportStatus] = mapped_column(
        Enum(ReportStatus, name="report_status", native_enum=False, length=20, values_callable=_values)
    )
    gross_removal_tco2e: Mapped[Decimal] = mapped_column(ExactDecimal(20, 3))
    net_removal_tco2e: Mapped[Decimal] = mapped_column(ExactDecimal(20, 3))
    uncertainty_deduction_tco2e: Mapped[Decimal] = mapped_column(ExactDecimal(20, 3))
    creditable_tco2e: Mapped[Decimal] = mapped_column(ExactDecimal(20, 3))
    buffer_units_t: Mapped[int] = mapped_column(BigInteger)
    issuable_units_t: Mapped[int] = mapped_column(BigInteger)
    remainder_tco2e: Mapped[Decimal] = mapped_column(ExactDecimal(20, 3))
    warnings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    submitted_at: Mapped[datetime] = mapped_column(UtcDateTime())
    submitted_by_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))

    project: Mapped[Project] = relationship()

    __table_args__ = (
        CheckConstraint("period_end > period_start", name="period_order"),
        CheckConstraint("buffer_units_t >= 0 AND issuable_units_t >= 0", name="units_not_negative"),
        CheckConstraint(f"hash_scheme IN ('{LEGACY_SCHEME}', '{JCS_SCHEME}')", name="hash_scheme_known"),
        Index("ix_monitoring_report_project_period", "project_id", "period_start", "period_end"),
    )


class WorkflowStep(Base):
    """One step of a project's or a monitoring report's lifecycle, with its comment and evidence.

    Steps are only ever inserted. Separation of duties is checked against them: no user performs two
    steps on the same item.
    """

    __tablename__ = "workflow_step"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(30))
    subject_id: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(30))
    from_status: Mapped[str] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    comment: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_workflow_step_subject", "subject_kind", "subject_id"),)


class EvidenceAttachment(Base):
    """A file attached as evidence to a project or to one of its monitoring reports (``report_id``).

    The bytes are stored once per content, by SHA-256, outside the database (``carbon.evidence``); this row
    says what they are evidence of, who attached them, and their sniffed media type. Rows are only ever
    inserted: evidence is not edited, a corrected scan is a new attachment.
    """

    __tablename__ = "evidence_attachment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"), index=True)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("monitoring_report.id"), index=True)
    kind: Mapped[EvidenceKind] = mapped_column(
        Enum(EvidenceKind, name="evidence_kind", native_enum=False, length=40, values_callable=_values)
    )
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (CheckConstraint("size_bytes > 0", name="size_positive"),)

    project: Mapped[Project] = relationship()
