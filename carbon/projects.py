"""Service: create projects and read them.

Stateless checks (shape, lengths) live in :class:`CreateProject`; stateful checks (the actor's
organisation, division codes) here. Each command commits once with its audit entry.
"""

from __future__ import annotations

import uuid
from datetime import date

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.models import KIND_OF_SCHEME, Project, ProjectKind, ProjectStatus, Scheme
from core import audit
from core.auth import Principal
from core.bounds import Id, MultilineText, Text
from core.clock import Clock
from core.errors import InvalidInput, NotFound, PermissionDenied
from core.regions import validate_division

PROPONENT_ROLES = frozenset({"forestry_bureau", "forest_owner"})


class CreateProject(BaseModel):
    """Command: a proponent creates a project in draft."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Text = Field(min_length=1, max_length=200)
    scheme: Scheme
    kind: ProjectKind | None = Field(
        default=None,
        description="What the project accounts: land plots, aquaculture sea areas or inventory units. "
        "Default: the scheme's kind (ocean_fishery → sea_areas, ipcc_inventory → inventory_units, else plots).",
    )
    province_code: str = Field(pattern=r"^\d{2}$", examples=["64"])
    county_code: str | None = Field(default=None, pattern=r"^\d{6}$", examples=["640424"])
    crediting_start: date = Field(examples=["2021-01-01"], description="First day of the crediting period.")
    crediting_end: date = Field(examples=["2050-12-31"], description="Day after the crediting period ends.")
    description: MultilineText = Field(default="", max_length=10_000)
    organisation_id: Id | None = Field(
        default=None, description="The proponent organisation; defaults to the caller's own."
    )

    @model_validator(mode="after")
    def _period_in_order(self) -> CreateProject:
        if self.crediting_end <= self.crediting_start:
            raise ValueError("crediting_end must be after crediting_start")
        return self

    @model_validator(mode="after")
    def _kind_of_scheme(self) -> CreateProject:
        expected = KIND_OF_SCHEME[self.scheme]
        if self.kind is not None and self.kind is not expected:
            raise ValueError(f"a {self.scheme.value} project accounts {expected.value}, not {self.kind.value}")
        if expected is ProjectKind.SEA_AREAS and self.county_code is None:
            raise ValueError("a sea-area project declares its coastal county (county_code)")
        return self

    @property
    def project_kind(self) -> ProjectKind:
        """Return the kind the project accounts (declared, or its scheme's)."""
        return self.kind or KIND_OF_SCHEME[self.scheme]


def project_code(province_code: str, project_id: int) -> str:
    """Return the public code of a project, derived from its province and id.

    >>> project_code("64", 7)
    'SH-64-000007'
    """
    return f"SH-{province_code}-{project_id:06d}"


def create_project(session: Session, cmd: CreateProject, *, actor: Principal, clock: Clock) -> Project:
    """Create a draft project for the actor's organisation.

    Raises:
        PermissionDenied: The actor asks for another organisation, or cannot propose projects.
        InvalidInput: Unknown province/county codes.
    """
    if actor.role.value not in PROPONENT_ROLES:
        raise PermissionDenied("only forestry bureaus and forest owners propose projects")
    if cmd.organisation_id is not None and cmd.organisation_id != actor.organisation_id:
        raise PermissionDenied("a project can only be created for the caller's own organisation")
    problems = validate_division(cmd.province_code, cmd.county_code)
    if problems:
        raise InvalidInput("invalid administrative division", [{"reason": p} for p in problems])
    project = Project(
        code=f"pending:{uuid.uuid4().hex}",  # replaced by the id-derived code below, in the same transaction
        name=cmd.name,
        description=cmd.description,
        organisation_id=actor.organisation_id,
        scheme=cmd.scheme,
        kind=cmd.project_kind,
        status=ProjectStatus.DRAFT,
        province_code=cmd.province_code,
        county_code=cmd.county_code,
        crediting_start=cmd.crediting_start,
        crediting_end=cmd.crediting_end,
        created_at=clock.now(),
        created_by_user_id=actor.user_id,
    )
    session.add(project)
    session.flush()
    project.code = project_code(project.province_code, project.id)
    audit.append(
        session,
        actor=actor.actor,
        action="project.created",
        subject=f"project:{project.id}",
        payload={
            "code": project.code,
            **cmd.model_dump(mode="json"),
            "kind": project.kind.value,
            "organisation_id": actor.organisation_id,
        },
        clock=clock,
    )
    session.commit()
    return project


def get_project(session: Session, project_id: int) -> Project:
    """Return a project or raise :class:`NotFound`."""
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"project {project_id} does not exist")
    return project


def list_projects(session: Session, *, limit: int = 100, offset: int = 0) -> list[Project]:
    """Return projects in creation order."""
    return list(session.scalars(select(Project).order_by(Project.id).limit(limit).offset(offset)))
