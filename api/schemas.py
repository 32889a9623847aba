"""HTTP-only response shapes; domain commands live beside their services."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from carbon.models import (
    ClaimStatus,
    LicenceKind,
    MonitoringReport,
    Plot,
    Project,
    ProjectKind,
    ProjectStatus,
    ReportStatus,
    Scheme,
)
from carbon.monitoring_records import lifecycle_warnings
from core.auth import Organisation, OrgKind, Principal
from geodata.area import Measurement
from geodata.geometry import to_geojson_geometry


class TokenPair(BaseModel):
    """OAuth2 token response with a refresh token."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime


class RefreshRequest(BaseModel):
    """Exchange a refresh token for a new token pair."""

    refresh_token: str = Field(min_length=10)


class Me(BaseModel):
    """The caller."""

    user_id: int
    username: str
    organisation_id: int
    role: OrgKind
    authenticated_via: Literal["token", "api_key"]

    @classmethod
    def of(cls, principal: Principal) -> Me:
        """Build from a principal."""
        return cls(
            user_id=principal.user_id,
            username=principal.username,
            organisation_id=principal.organisation_id,
            role=principal.role,
            authenticated_via=principal.via,
        )


class UnlockRequest(BaseModel):
    """Lift the login lock-out of a user name, a client address, or both."""

    username: str | None = Field(default=None, min_length=1, max_length=100)
    address: str | None = Field(default=None, min_length=1, max_length=64, description="As in the audit entry.")

    @model_validator(mode="after")
    def _names_something(self) -> UnlockRequest:
        if self.username is None and self.address is None:
            raise ValueError("name a username, an address, or both")
        return self


class ApiKeyRequest(BaseModel):
    """Create an API key for a machine client."""

    label: str = Field(min_length=1, max_length=100)


class ApiKeyCreated(BaseModel):
    """A new API key; ``api_key`` is shown this once and never again."""

    id: int
    label: str
    prefix: str
    api_key: str
    created_at: datetime


class OrganisationOut(BaseModel):
    """An organisation."""

    id: int
    name: str
    kind: OrgKind
    province_code: str
    county_code: str | None

    @classmethod
    def of(cls, org: Organisation) -> OrganisationOut:
        """Build from the ORM row."""
        return cls(
            id=org.id, name=org.name, kind=org.kind, province_code=org.province_code, county_code=org.county_code
        )


class ProjectOut(BaseModel):
    """A project."""

    id: int
    code: str
    name: str
    description: str
    scheme: Scheme
    kind: ProjectKind
    status: ProjectStatus
    organisation_id: int
    organisation_name: str
    province_code: str
    county_code: str | None
    crediting_start: date
    crediting_end: date
    created_at: datetime

    @classmethod
    def of(cls, project: Project) -> ProjectOut:
        """Build from the ORM row."""
        return cls(
            id=project.id,
            code=project.code,
            name=project.name,
            description=project.description,
            scheme=project.scheme,
            kind=project.kind,
            status=project.status,
            organisation_id=project.organisation_id,
            organisation_name=project.organisation.name,
            province_code=project.province_code,
            county_code=project.county_code,
            crediting_start=project.crediting_start,
            crediting_end=project.crediting_end,
            created_at=project.created_at,
        )


class Claim(BaseModel):
    """A plot's claim: the period it is claimed for, its status, registrations elsewhere."""

    model_config = ConfigDict(extra="forbid")
    start: str = Field(json_schema_extra={"format": "date"})
    end: str = Field(json_schema_extra={"format": "date"})
    status: ClaimStatus
    external_registrations: list[Any]


class Licence(BaseModel):
    """A sea area's title: 海域使用权证 (sea-use right) or 养殖证 (aquaculture licence) number, normalised."""

    model_config = ConfigDict(extra="forbid")
    number: str
    kind: LicenceKind


class PlotProperties(BaseModel):
    """A plot's facts: geodesic area (m², ha, mu) and perimeter, hash, claim, attributes as uploaded, warnings."""

    model_config = ConfigDict(extra="forbid")
    plot_id: int
    project_id: int
    plot_code: str
    name: str | None
    area_m2: float
    area_ha: float
    area_mu: float
    perimeter_m: float
    geometry_sha256: str
    crs: Literal["EPSG:4490"]
    area_method: str
    measured_at: str = Field(json_schema_extra={"format": "date-time"})
    claim: Claim
    licence: Licence | None = Field(default=None, description="A sea area's licence; none for land plots.")
    attributes: dict[str, Any] = Field(description="The feature's properties as uploaded.")
    warnings: list[dict[str, Any]]


class PlotFeature(BaseModel):
    """A plot as an RFC 7946 Feature (lon/lat, CGCS2000)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["Feature"]
    id: int
    geometry: dict[str, Any] = Field(description="A GeoJSON Polygon or MultiPolygon.")
    properties: PlotProperties


class AreaTotals(BaseModel):
    """The plots' count and total geodesic area."""

    model_config = ConfigDict(extra="forbid")
    count: int
    area_m2: float
    area_ha: float
    area_mu: float


class PlotCollection(BaseModel):
    """Plots as an RFC 7946 FeatureCollection with their area totals (a foreign member)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["FeatureCollection"]
    features: list[PlotFeature]
    totals: AreaTotals


class PlotUpload(PlotCollection):
    """The registered plots and the intake report (source CRS, encoding, area units, every feature's outcome)."""

    report: dict[str, Any] = Field(description="The intake report: `source_crs`, `counts`, `features`… (ADR 008).")


class Overlap(BaseModel):
    """An active claim overlapping a plot in an overlapping period; ``within_tolerance`` flags a sliver."""

    model_config = ConfigDict(extra="forbid")
    plot_code: str | None
    overlap_m2: float
    overlap_mu: float
    overlap_percent_of_new: float
    overlap_percent_of_existing: float
    within_tolerance: bool
    existing_plot_id: int
    existing_plot_code: str
    existing_plot_name: str | None
    existing_project_id: int
    existing_project_code: str
    existing_owner: str
    existing_province_code: str
    existing_claim_period: list[str] = Field(min_length=2, max_length=2, description="Start and end dates.")


def plot_feature(plot: Plot) -> dict[str, Any]:
    """Return a plot as an RFC 7946 Feature with its geodesic measurements."""
    measurement = Measurement(plot.area_m2, plot.perimeter_m)
    return {
        "type": "Feature",
        "id": plot.id,
        "geometry": to_geojson_geometry(plot.geometry),
        "properties": {
            "plot_id": plot.id,
            "project_id": plot.project_id,
            "plot_code": plot.plot_code,
            "name": plot.name,
            "area_m2": round(measurement.area_m2, 2),
            "area_ha": round(measurement.area_ha, 4),
            "area_mu": round(measurement.area_mu, 3),
            "perimeter_m": round(measurement.perimeter_m, 2),
            "geometry_sha256": plot.geometry_sha256,
            "crs": "EPSG:4490",
            "area_method": "geodesic, GRS80 ellipsoid (CGCS2000), pyproj.Geod",
            "measured_at": plot.measured_at.isoformat(),
            "claim": {
                "start": plot.claim_start.isoformat(),
                "end": plot.claim_end.isoformat(),
                "status": plot.claim_status.value,
                "external_registrations": plot.external_registrations,
            },
            "licence": (
                {"number": plot.licence_number, "kind": plot.licence_kind.value}
                if plot.licence_number and plot.licence_kind
                else None
            ),
            "attributes": plot.properties,
            "warnings": plot.warnings,
        },
    }


def plot_row_attributes(plot: Plot) -> dict[str, Any]:
    """Return a plot's attributes as flat scalar columns (for GeoPackage export)."""
    measurement = Measurement(plot.area_m2, plot.perimeter_m)
    attributes = plot.properties
    return {
        "plot_id": plot.id,
        "project_id": plot.project_id,
        "plot_code": plot.plot_code,
        "name": plot.name,
        "species": attributes.get("species"),
        "planting_year": attributes.get("planting_year"),
        "land_use": attributes.get("land_use"),
        "declared_area_mu": plot.declared_area_mu,
        "area_m2": round(measurement.area_m2, 2),
        "area_ha": round(measurement.area_ha, 4),
        "area_mu": round(measurement.area_mu, 3),
        "claim_start": plot.claim_start.isoformat(),
        "claim_end": plot.claim_end.isoformat(),
        "geometry_sha256": plot.geometry_sha256,
    }


def plot_collection(plots: list[Plot]) -> dict[str, Any]:
    """Return plots as a FeatureCollection with area totals."""
    total_m2 = sum(p.area_m2 for p in plots)
    totals = Measurement(total_m2, 0.0)
    return {
        "type": "FeatureCollection",
        "features": [plot_feature(p) for p in plots],
        "totals": {
            "count": len(plots),
            "area_m2": round(total_m2, 2),
            "area_ha": round(totals.area_ha, 4),
            "area_mu": round(totals.area_mu, 3),
        },
    }


def _utc(moment: datetime) -> datetime:
    """Return ``moment`` as aware UTC (SQLite hands stored datetimes back naive, in UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class MonitoringReportOut(BaseModel):
    """A filed monitoring report: headline quantities (exact decimals as strings), labels and links."""

    id: int
    project_id: int
    project_code: str
    status: ReportStatus
    period_start: date
    period_end: date
    methodology: dict[str, str]
    parameter_set: dict[str, Any]
    provisional: bool
    plot_ids: list[int]
    gross_removal_tco2e: str
    net_removal_tco2e: str
    uncertainty_deduction_tco2e: str
    creditable_tco2e: str
    buffer_units_t: int
    issuable_units_t: int
    remainder_tco2e: str
    warnings: list[dict[str, Any]]
    record_sha256: str
    hash_scheme: Literal["shanhai-json/1", "rfc8785"] = Field(
        description="The canonicalization of record_sha256 and the parameter set's sha256: rfc8785 (RFC 8785), "
        "or shanhai-json/1 for reports filed before it (ADR 033)",
        examples=["rfc8785"],
    )
    submitted_at: datetime
    submitted_by_user_id: int
    links: dict[str, str]

    @classmethod
    def of(cls, report: MonitoringReport) -> MonitoringReportOut:
        """Build from the ORM row."""
        base = f"/api/v1/monitoring-reports/{report.id}"
        return cls(
            id=report.id,
            project_id=report.project_id,
            project_code=report.project.code,
            status=report.status,
            period_start=report.period_start,
            period_end=report.period_end,
            methodology={"id": report.methodology_id, "version": report.methodology_version},
            parameter_set={
                "id": report.parameter_set_id,
                "version": report.parameter_set_version,
                "sha256": report.parameter_set_sha256,
                "provisional": report.provisional,
                "provisional_reason": report.provisional_reason,
            },
            provisional=report.provisional,
            plot_ids=list(report.plot_ids),
            gross_removal_tco2e=str(report.gross_removal_tco2e),
            net_removal_tco2e=str(report.net_removal_tco2e),
            uncertainty_deduction_tco2e=str(report.uncertainty_deduction_tco2e),
            creditable_tco2e=str(report.creditable_tco2e),
            buffer_units_t=report.buffer_units_t,
            issuable_units_t=report.issuable_units_t,
            remainder_tco2e=str(report.remainder_tco2e),
            warnings=[*report.warnings, *lifecycle_warnings(report.project)],
            record_sha256=report.record_sha256,
            hash_scheme=report.hash_scheme,
            submitted_at=_utc(report.submitted_at),
            submitted_by_user_id=report.submitted_by_user_id,
            links={"self": base, "trace": f"{base}/trace", "sheet": f"{base}/sheet"},
        )
