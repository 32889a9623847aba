"""GEP accounting: region layers, runs (created, watched), SEEA-EA tables as CSV, value rasters, comparison."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse
from pydantic import Field

from api.deps import CeleryDep, ClockDep, CurrentUser, SessionDep, SettingsDep
from api.downloads import CSV, XLSX, attachment
from api.fields import Answer, InstantText
from api.pagination import Page, PageQuery, slice_of
from api.params import IdPath
from api.tasks import enqueue_gep_run
from core.bounds import INT32_MAX
from geodata.readers import ReadLimits
from gep.models import RegionLevel, RunStatus
from gep.regions import layer_summary, list_region_layers, upload_region_layer
from gep.runs import (
    CreateRun,
    compare_csv,
    create_run,
    get_run,
    list_runs,
    raster_path,
    summary,
    table_csv,
    workbook,
)

router = APIRouter(prefix="/api/v1/gep", tags=["GEP accounting"])


class Region(Answer):
    """A region of a layer with its geodesic area."""

    code: str
    name: str
    area_m2: float


class RegionLayerOut(Answer):
    """A region layer (no geometries): its regions, source file and hash."""

    id: int
    name: str
    level: RegionLevel
    filename: str
    sha256: str
    regions: list[Region]
    created_at: InstantText


class Progress(Answer):
    """Tiles computed of the run's tiles."""

    done: int
    total: int


class GepRunOut(Answer):
    """An accounting run: status, progress, its configuration and inputs with hashes, valuation and GEP summary.

    ``config``, ``inputs``, ``valuation`` and ``summary`` are the run's records as stored (ADR 017): their members
    depend on the indicators of the run.
    """

    id: int
    name: str
    year: int
    region_layer: str | None
    status: RunStatus
    progress: Progress
    config: dict[str, Any] = Field(description="The run's configuration as given (indicators, tiling, options).")
    inputs: dict[str, Any] = Field(description="Every input layer with its hash.")
    valuation: dict[str, Any] | None = Field(description="Unit values with their citations, once valued.")
    summary: list[dict[str, Any]] | None = Field(description="The GEP headline of a finished run, by region.")
    rasters: list[str]
    error: dict[str, Any] | None = Field(description="Why a failed run failed: a problem's `slug`, `title`, `detail`…")
    created_at: InstantText
    finished_at: InstantText | None


RUN_EXAMPLE = {
    "region_layer": "jingyuan-townships-synthetic",
    "name": "Jingyuan 2025 (synthetic demo stack)",
    "year": 2025,
    "indicators": ["water_conservation", "soil_retention", "oxygen_release"],
    "inputs": {
        "precipitation": "gep-jy-precipitation",
        "evapotranspiration": "gep-jy-evapotranspiration",
        "runoff_coefficient": "gep-jy-runoff-coefficient",
        "nep": "gep-jy-nep",
        "dem": "gep-jy-dem",
        "erosivity": "gep-jy-erosivity",
        "erodibility": "gep-jy-erodibility",
        "cover_factor": "gep-jy-cover-factor",
        "practice_factor": 1.0,
        "land_cover": "gep-jy-land-cover",
    },
    "prices": "prices_ganzi_2010",
    "negative_balance": "clamp-to-zero",
    "tile_size": 128,
}


@router.post("/region-layers", status_code=201)
def upload_gep_region_layer(
    file: Annotated[UploadFile, File(description="County or township polygons (any plot-file format).")],
    name: Annotated[str, Form(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_\-.]*$")],
    level: Annotated[RegionLevel, Form()],
    principal: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> RegionLayerOut:
    """Upload a region layer: every feature needs a unique code; all are stored or none."""
    limits = ReadLimits(max_expanded_bytes=settings.max_expanded_bytes, max_features=settings.max_features_per_file)
    layer = upload_region_layer(
        session,
        name=name,
        level=level,
        filename=file.filename or "regions",
        data=file.file.read(),
        actor=principal.actor,
        clock=clock,
        limits=limits,
    )
    return RegionLayerOut.model_validate(layer_summary(layer))


@router.get("/region-layers")
def list_gep_region_layers(
    session: SessionDep, _principal: CurrentUser, request: Request, page: PageQuery
) -> Page[RegionLayerOut]:
    """List the region layers with their regions (codes, names, geodesic areas)."""
    layers, following = slice_of(request, list_region_layers(session), page)
    items = [RegionLayerOut.model_validate(layer_summary(layer)) for layer in layers]
    return Page[RegionLayerOut](items=items, limit=page.limit, next=following)


@router.post("/runs", status_code=202)
def create_gep_run(
    body: Annotated[CreateRun, Body(examples=[RUN_EXAMPLE])],
    principal: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
    celery: CeleryDep,
    settings: SettingsDep,
) -> GepRunOut:
    """Create an accounting run after checking every input; poll ``GET /api/v1/gep/runs/{id}`` for progress.

    Bad inputs are refused here and nothing is recorded. Without a broker the run has finished when this
    returns; with one, its tiles spread over the workers.
    """
    run = create_run(session, body, actor=principal.actor, clock=clock, raster_dir=settings.raster_dir)
    run_id = run.id
    enqueue_gep_run(celery, run_id)
    session.expire_all()
    return GepRunOut.model_validate(summary(get_run(session, run_id)))


@router.get("/runs")
def list_gep_runs(session: SessionDep, _principal: CurrentUser, request: Request, page: PageQuery) -> Page[GepRunOut]:
    """List the runs, newest first."""
    runs, following = slice_of(request, list_runs(session), page)
    return Page[GepRunOut](items=[GepRunOut.model_validate(summary(r)) for r in runs], limit=page.limit, next=following)


@router.get("/runs/{run_id}")
def read_gep_run(run_id: IdPath, session: SessionDep, _principal: CurrentUser) -> GepRunOut:
    """Return a run: status, progress (tiles done/total), inputs with hashes, valuation record, GEP summary."""
    return GepRunOut.model_validate(summary(get_run(session, run_id)))


@router.get("/runs/{run_id}/tables/{table}.csv", response_class=Response, responses={200: {"content": {CSV: {}}}})
def read_gep_run_table(run_id: IdPath, table: str, session: SessionDep, _principal: CurrentUser) -> Response:
    """Return a SEEA-EA table of a finished run as CSV.

    Tables: ``summary``, ``extent``, ``physical``, ``monetary``, ``physical_by_type``, ``monetary_by_type``.
    """
    text = table_csv(get_run(session, run_id), table)
    return attachment(text, CSV, f"gep-run-{run_id}-{table}.csv")


@router.get("/runs/{run_id}/tables.xlsx", response_class=Response, responses={200: {"content": {XLSX: {}}}})
def read_gep_run_workbook(
    run_id: IdPath,
    session: SessionDep,
    _principal: CurrentUser,
    compare_to: Annotated[
        int | None, Query(ge=1, le=INT32_MAX, description="Another finished run: adds the comparison sheet.")
    ] = None,
) -> Response:
    """Return every SEEA-EA table of a finished run as an Excel workbook (one sheet each; the CSVs are exact).

    Sheets: run identity and table hashes, GEP summary, extent account, physical and monetary supply, the
    supply tables by ecosystem type (Σ types = total), and with ``compare_to`` the change from this run.
    """
    other = get_run(session, compare_to) if compare_to is not None else None
    content = workbook(get_run(session, run_id), other)
    suffix = f"-vs-{compare_to}" if compare_to is not None else ""
    return attachment(content, XLSX, f"gep-run-{run_id}{suffix}.xlsx")


@router.get(
    "/runs/{run_id}/rasters/{indicator}.tif",
    response_class=FileResponse,
    responses={200: {"content": {"image/tiff": {}}}},
)
def read_gep_run_raster(
    run_id: IdPath, indicator: str, session: SessionDep, settings: SettingsDep, _principal: CurrentUser
) -> FileResponse:
    """Return the per-pixel value raster of an indicator (元 per pixel, float64 Cloud-Optimised GeoTIFF)."""
    path = raster_path(get_run(session, run_id), indicator, settings.data_dir)
    return FileResponse(path, media_type="image/tiff", filename=f"gep-run-{run_id}-{indicator}.tif")


@router.get("/runs/{run_id}/compare/{other_id}.csv", response_class=Response, responses={200: {"content": {CSV: {}}}})
def compare_gep_runs(run_id: IdPath, other_id: IdPath, session: SessionDep, _principal: CurrentUser) -> Response:
    """Return the change by region and indicator from run ``run_id`` to run ``other_id``, as CSV."""
    text = compare_csv(get_run(session, run_id), get_run(session, other_id))
    return Response(text, media_type=CSV)
