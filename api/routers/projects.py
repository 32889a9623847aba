"""Projects and their plots (GeoJSON in, GeoJSON with geodesic areas out)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import Field

from api.deps import CeleryDep, ClockDep, CurrentUser, SessionDep, SettingsDep
from api.downloads import GPKG, attachment
from api.fields import Answer
from api.pagination import Page, PageQuery, page_of, slice_of
from api.params import IdPath
from api.project_gep import project_gep
from api.schemas import (
    Overlap,
    PlotCollection,
    PlotFeature,
    PlotUpload,
    ProjectOut,
    plot_collection,
    plot_feature,
    plot_row_attributes,
)
from api.tasks import TaskRef, enqueue_remeasure
from carbon.claims import overlaps_of_plot
from carbon.plots import get_plot, list_plots, register_plots, request_remeasure
from carbon.projects import CreateProject, create_project, get_project, list_projects
from geodata.attributes import AreaUnit
from geodata.writers import geopackage_bytes

router = APIRouter(prefix="/api/v1", tags=["projects"])


GEOJSON_EXAMPLE = {
    "type": "Feature",
    "properties": {"code": "NX-JY-001", "name": "Haicang carbon forest"},
    "geometry": {
        "type": "Polygon",
        "coordinates": [[[106.32, 35.49], [106.34, 35.49], [106.34, 35.51], [106.32, 35.51], [106.32, 35.49]]],
    },
}


@router.post("/projects", status_code=201, name="create_project")
def create_project_route(
    body: CreateProject, principal: CurrentUser, session: SessionDep, clock: ClockDep
) -> ProjectOut:
    """Create a draft project for the caller's own organisation."""
    return ProjectOut.of(create_project(session, body, actor=principal, clock=clock))


@router.get("/projects", name="list_projects")
def list_projects_route(
    session: SessionDep, _principal: CurrentUser, request: Request, page: PageQuery
) -> Page[ProjectOut]:
    """List projects."""
    found = list_projects(session, limit=page.limit + 1, offset=page.offset)
    projects, following = page_of(request, found, page)
    return Page[ProjectOut](items=[ProjectOut.of(p) for p in projects], limit=page.limit, next=following)


@router.get("/projects/{project_id}")
def read_project(project_id: IdPath, session: SessionDep, _principal: CurrentUser) -> ProjectOut:
    """Return one project."""
    return ProjectOut.of(get_project(session, project_id))


class ProjectGep(Answer):
    """A project's tonnes beside the GEP of the regions its plots lie in, and that GEP's change between years."""

    project_id: int
    project_code: str
    scheme: str
    tonnes: dict[str, Any] = Field(description="Issued and buffer tonnes, batches, net removal of issued reports.")
    gep_runs: list[dict[str, Any]] = Field(
        description="Finished GEP runs meeting the plots: each region met, the plots' area inside, its GEP (元)."
    )
    gep_changes: list[dict[str, Any]] = Field(
        description="Per region layer with runs of two or more years: GEP earliest → latest year by region (元)."
    )
    note: str


@router.get("/projects/{project_id}/gep", name="read_project_gep")
def read_project_gep(project_id: IdPath, session: SessionDep, principal: CurrentUser) -> ProjectGep:
    """Return the project's issued tonnes beside the GEP (and its gain) of the regions its plots lie in.

    The ecology bureau, auditors and the registry read any project's; a proponent its own organisation's.
    """
    return ProjectGep.model_validate(project_gep(session, project_id, actor=principal))


@router.post("/projects/{project_id}/plots", status_code=201)
def upload_plots(
    project_id: IdPath,
    document: Annotated[dict[str, Any], Body(examples=[GEOJSON_EXAMPLE])],
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    repair: Annotated[bool, Query(description="Repair invalid polygons with make_valid and report it.")] = False,
    area_unit: Annotated[
        AreaUnit | None,
        Query(description="Unit of the declared-area property (mu or ha); overrides the property name's."),
    ] = None,
) -> PlotUpload:
    """Register a GeoJSON Feature or FeatureCollection (EPSG:4326/4490 lon/lat) as plots of the project.

    Every feature is validated first; any defect refuses the whole upload with a 422 problem naming
    each feature, reason and location, and nothing is stored.
    """
    plots, intake = register_plots(
        session,
        project_id,
        document,
        actor=principal,
        clock=clock,
        max_features=settings.max_features_per_upload,
        repair=repair,
        area_unit=area_unit,
    )
    return PlotUpload.model_validate(plot_collection(plots) | {"report": intake.summary()})


@router.get("/projects/{project_id}/plots")
def list_project_plots(project_id: IdPath, session: SessionDep, _principal: CurrentUser) -> PlotCollection:
    """Return the project's plots as a GeoJSON FeatureCollection with areas in m², ha and mu."""
    return PlotCollection.model_validate(plot_collection(list_plots(session, project_id)))


@router.get("/plots/{plot_id}")
def read_plot(plot_id: IdPath, session: SessionDep, _principal: CurrentUser) -> PlotFeature:
    """Return one plot as a GeoJSON Feature with its geodesic area in m², ha and mu."""
    return PlotFeature.model_validate(plot_feature(get_plot(session, plot_id)))


@router.get("/plots/{plot_id}/overlaps")
def read_plot_overlaps(
    plot_id: IdPath, session: SessionDep, _principal: CurrentUser, request: Request, page: PageQuery
) -> Page[Overlap]:
    """List active claims overlapping this plot in an overlapping period (slivers within tolerance flagged)."""
    found, following = slice_of(request, overlaps_of_plot(session, get_plot(session, plot_id)), page)
    return Page[Overlap](items=[Overlap.model_validate(o) for o in found], limit=page.limit, next=following)


@router.get(
    "/projects/{project_id}/plots.gpkg",
    response_class=Response,
    responses={200: {"content": {GPKG: {}}, "description": "The project's plots as a GeoPackage."}},
)
def download_project_plots(project_id: IdPath, session: SessionDep, _principal: CurrentUser) -> Response:
    """Download the project's plots as a GeoPackage (EPSG:4490, layer ``plots``) with their areas."""
    plots = list_plots(session, project_id)
    features = [(plot_row_attributes(p), p.geometry) for p in plots]
    return attachment(geopackage_bytes(features), GPKG, f"project-{project_id}-plots.gpkg")


@router.post("/plots/{plot_id}/remeasure", status_code=202)
def remeasure_plot(
    plot_id: IdPath, session: SessionDep, principal: CurrentUser, celery: CeleryDep, clock: ClockDep
) -> TaskRef:
    """Queue a re-validation and re-measurement of the plot (runs in-process without a broker).

    Only the plot's own organisation and the registry may; another organisation's plot is a ``403``.
    """
    return request_remeasure(
        session, plot_id, lambda task_id, pid: enqueue_remeasure(celery, task_id, pid), actor=principal, clock=clock
    )
