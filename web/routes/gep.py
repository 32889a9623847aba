"""The GEP explorer (issue 24): runs with live progress, results by region, value rasters on the map, year on year.

Every page calls the services the JSON API's ``/api/v1/gep`` routes call (``gep.runs``, ``gep.regions``) and
follows their access rules (``GEP_READERS`` read, ``GEP_RUNNERS`` start runs). A run's progress is a fragment
polled while the run is queued or running: tiles done of total and per worker (``gep_run_tile.worker``). A
finished run shows the GEP and every indicator's physical and monetary value per region as a table and a
choropleth, and each indicator's value raster as map tiles rendered from the run's own COGs by rio-tiler
(:mod:`gep.raster_tiles`, ADR 043); a click reads the COG's pixel. Two runs compare as a table (the API's
comparison) and a difference map (``after − before`` per tile).

On the embedded default (no broker: Celery eager) a new run computes on a background thread, so the page has
progress to show; with a broker it is queued as the API queues it and its tiles spread over the workers.
"""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from pathlib import Path as FilePath
from typing import Annotated, Any, Final

import shapely
from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, Response

from access import permissions
from access.deps import ClockDep, SessionDep, SettingsDep, authorize
from core.auth import Principal
from core.errors import InvalidInput, NotFound
from geodata.models import RasterKind
from geodata.rasters import list_layers
from gep import raster_tiles
from gep.models import GepRun, RunStatus
from gep.plan import RunConfig
from gep.regions import list_region_layers
from gep.runs import (
    FINISHED,
    TABLES,
    CreateRun,
    compare_csv,
    compare_rows,
    create_run,
    get_run,
    list_runs,
    progress_by_worker,
    raster_path,
    table_csv,
    workbook,
)
from gep.spec import DEFAULT_INDICATORS
from gep.tables import ALL_TYPES
from web.i18n import N_
from web.pages import CSRF_FIELD, check_csrf, locale_of, render

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal, Depends(authorize)]
RunId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Indicator = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
TileZ = Annotated[int, Path(ge=0, le=24)]
TileXY = Annotated[int, Path(ge=0, le=2**24)]
CsrfField = Annotated[str, Form(alias=CSRF_FIELD, max_length=100)]
#: The Celery task that starts a run (``api.worker.START_GEP_RUN``; ``web`` does not import ``api``).
START_GEP_RUN: Final = "shanhai.gep.start_run"
#: The price tables a run may name (packaged, ``gep/data/prices_*.toml``).
PRICE_TABLES: Final = ("prices_guyuan_2025", "prices_ganzi_2010")
CLASS_LABELS = {"provisioning": N_("Provisioning"), "regulating": N_("Regulating"), "cultural": N_("Cultural")}
LEVEL_LABELS = {"county": N_("County"), "township": N_("Township")}
PNG: Final = "image/png"


def _indicator_name(code: str, locale: str) -> str:
    spec = DEFAULT_INDICATORS.get(code)
    return spec.name_zh if locale == "zh_CN" else code.replace("_", " ").capitalize()


def _has_raster(run: GepRun, code: str, data_dir: FilePath) -> bool:
    try:
        raster_path(run, code, data_dir)
    except NotFound:  # no raster, or not on this server's data directory (another server's run)
        return False
    return True


def _indicators(run: GepRun, locale: str, data_dir: FilePath) -> list[dict[str, Any]]:
    return [
        {"code": code, "name": _indicator_name(code, locale), "unit": DEFAULT_INDICATORS.get(code).physical_unit,
         "raster": _has_raster(run, code, data_dir)}
        for code in run.config["indicators"]
    ]  # fmt: skip


def _region_rows(run: GepRun, codes: list[str]) -> list[dict[str, Any]]:
    """Return one row per region: GEP and each indicator's quantity and value (all ecosystem types)."""
    result = run.result or {}
    names = {r.code: r.name for r in run.region_layer.regions}
    rows: dict[str, dict[str, Any]] = {}
    for line in result.get("lines", []):
        if line.get("ecosystem_type", "all") != "all":
            continue
        row = rows.setdefault(line["region_code"], {"code": line["region_code"], "cells": {}})
        row["cells"][line["indicator_code"]] = {
            "quantity": Decimal(str(line["quantity"])),
            "yuan": Decimal(str(line["gross_yuan"])) - Decimal(str(line.get("out_of_region_yuan", 0))),
        }
    gep = {row["region_code"]: Decimal(str(row["gep_yuan"])) for row in result.get("summary", [])}
    ordered = []
    for code in sorted(rows):
        row = rows[code]
        ordered.append({**row, "name": names.get(code, code), "gep_yuan": gep.get(code, Decimal(0)),
                        "cells": [row["cells"].get(c) for c in codes]})  # fmt: skip
    return ordered


def _total_gep(run: GepRun) -> Decimal | None:
    summary = (run.result or {}).get("summary") or []
    return Decimal(str(summary[-1]["gep_yuan"])) if summary else None


def _regions_geojson(run: GepRun) -> dict[str, Any]:
    gep = {row["region_code"]: str(row["gep_yuan"]) for row in (run.result or {}).get("summary", [])}
    features = []
    for region in run.region_layer.regions:
        value = gep.get(region.code)
        features.append({
            "type": "Feature", "id": region.id, "geometry": shapely.geometry.mapping(region.geometry),
            "properties": {"code": region.code, "name": region.name, "gep_yuan": value,
                           "gep": float(value) if value is not None else None},
        })  # fmt: skip
    return {"type": "FeatureCollection", "features": features}


def _map_config(run: GepRun, indicators: list[dict[str, Any]], data_dir: FilePath, other: GepRun | None) -> str:
    layers = []
    for item in indicators:
        if not item["raster"] or (other is not None and not _has_raster(other, item["code"], data_dir)):
            continue
        path = raster_path(run, item["code"], data_dir)
        info = raster_tiles.raster_info(path)
        tiles = f"/gep/runs/{run.id}/tiles/{item['code']}/{{z}}/{{x}}/{{y}}.png"
        scale, colours = info.scale, raster_tiles.colour_stops(raster_tiles.VALUE_COLORMAP)
        if other is not None:
            scale = raster_tiles.change_range(raster_path(other, item["code"], data_dir), path)
            tiles = f"/gep/runs/{other.id}/compare/{run.id}/tiles/{item['code']}/{{z}}/{{x}}/{{y}}.png"
            colours = raster_tiles.colour_stops(raster_tiles.CHANGE_COLORMAP)
        layers.append({"code": item["code"], "name": item["name"], "tiles": tiles, "low": scale.low,
                       "high": scale.high, "colours": colours, "bounds": list(info.bounds),
                       "maxzoom": max(info.max_zoom, 6)})  # fmt: skip
    return json.dumps(
        {"run": run.id, "other": other.id if other else None, "layers": layers,
         "regions": f"/gep/runs/{run.id}/regions.geojson"},
        ensure_ascii=False,
    )  # fmt: skip


@router.get("/gep/runs", response_class=HTMLResponse)
def page_gep_runs(request: Request, session: SessionDep, person: Person) -> HTMLResponse:
    """Every accounting run, newest first: status, progress, total GEP; start a new one (ecology bureau)."""
    runs = [{"run": run, "gep": _total_gep(run)} for run in list_runs(session)]
    may_start = permissions.allows("page_gep_run_new", person.role)
    return render(request, "gep_runs.html", {"runs": runs, "may_start": may_start}, principal=person)


def _template_config(session: Session) -> dict[str, Any] | None:
    for run in list_runs(session):
        if run.status is RunStatus.SUCCEEDED:
            return dict(run.config)
    return None


@router.get("/gep/runs/new", response_class=HTMLResponse)
def page_gep_run_new(request: Request, session: SessionDep, person: Person) -> HTMLResponse:
    """Start a run: the regions layer, the raster stack (a layer per role), the price table, the indicators."""
    template = _template_config(session)
    locale = locale_of(request)
    roles = []
    if template is not None:
        config = RunConfig.model_validate(template)
        layers = list_layers(session)
        for role in config.raster_roles:
            kind = RasterKind.CATEGORICAL if role == "land_cover" else RasterKind.CONTINUOUS
            roles.append({"role": role, "chosen": template["inputs"][role],
                          "layers": [layer.name for layer in layers if layer.kind is kind]})  # fmt: skip
    context = {
        "template": template,
        "region_layers": list_region_layers(session),
        "roles": roles,
        "price_tables": PRICE_TABLES,
        "level_labels": LEVEL_LABELS,
        "indicators": [{"code": c, "name": _indicator_name(c, locale)} for c in DEFAULT_INDICATORS.codes()],
    }
    return render(request, "gep_run_new.html", context, principal=person)


def start_gep_run(request: Request, run_id: int) -> None:
    """Queue a run as the API does; on the embedded default (eager Celery) compute it on a background thread."""
    celery = request.app.state.celery
    task = celery.tasks[START_GEP_RUN]
    if celery.conf.task_always_eager:
        threading.Thread(target=task.apply, args=((run_id,),), name=f"gep-run-{run_id}", daemon=True).start()
    else:
        task.delay(run_id)


@router.post("/gep/runs")
def page_gep_run_create(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    person: Person,
    csrf_token: CsrfField = "",
    name: Annotated[str, Form(max_length=200)] = "",
    year: Annotated[int, Form(ge=1990, le=2100)] = 2025,
    region_layer: Annotated[str, Form(max_length=100)] = "",
    prices: Annotated[str, Form(max_length=100)] = "",
    indicators: Annotated[list[str] | None, Form()] = None,
    raster: Annotated[list[str] | None, Form(description="``role=layer`` per raster role")] = None,
) -> Response:
    """Check every input (``gep.runs.create_run``, as the API), record the run and start it."""
    check_csrf(request, settings, csrf_token)
    template = _template_config(session)
    if template is None:
        raise InvalidInput("no finished run to take the coefficients and settings from")
    inputs = dict(template["inputs"])
    roles = set(RunConfig.model_validate(template).raster_roles)
    for choice in raster or []:
        role, _, layer = choice.partition("=")
        if role not in roles or not layer:
            raise InvalidInput(f"no raster role {role!r}", [{"field": "raster", "value": choice}])
        inputs[role] = layer
    body = {**template, "name": name, "year": year, "region_layer": region_layer, "prices": prices,
            "indicators": indicators or [], "inputs": inputs}  # fmt: skip
    cmd = CreateRun.model_validate(body)
    run = create_run(session, cmd, actor=person.actor, clock=clock, raster_dir=settings.raster_dir)
    run_id = run.id
    start_gep_run(request, run_id)
    return RedirectResponse(f"/gep/runs/{run_id}", status_code=303)


def _progress(session: Session, run: GepRun) -> dict[str, Any]:
    return {"run": run, "workers": sorted(progress_by_worker(session, run.id).items()),
            "finished": run.status in FINISHED}  # fmt: skip


@router.get("/gep/runs/{run_id}", response_class=HTMLResponse)
def page_gep_run(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    person: Person,
    run_id: RunId,
    compare: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> HTMLResponse:
    """One run: live progress, then the result by region (table, choropleth), value rasters; year on year."""
    run = get_run(session, run_id)
    locale = locale_of(request)
    indicators = _indicators(run, locale, settings.data_dir)
    context: dict[str, Any] = {**_progress(session, run), "indicators": indicators, "tables": TABLES,
                               "class_labels": CLASS_LABELS}  # fmt: skip
    if run.status is RunStatus.SUCCEEDED:
        others = [r for r in list_runs(session) if r.id != run.id and r.status is RunStatus.SUCCEEDED]
        before = get_run(session, compare) if compare is not None else None
        if before is not None and (before.status is not RunStatus.SUCCEEDED or before.id == run.id):
            raise NotFound(f"GEP run {compare} has no results to compare with")
        context |= {
            "rows": _region_rows(run, [i["code"] for i in indicators]),
            "total_gep": _total_gep(run),
            "others": others,
            "before": before,
            "changes": _changes(before, run) if before is not None else None,
            "names": {i["code"]: i["name"] for i in indicators},
            "map_config": _map_config(run, indicators, settings.data_dir, before),
        }
    return render(request, "gep_run.html", context, principal=person)


def _changes(before: GepRun, after: GepRun) -> list[dict[str, Any]]:
    return [row for row in compare_rows(before, after) if row["ecosystem_type"] == ALL_TYPES]


@router.get("/gep/runs/{run_id}/progress", response_class=HTMLResponse)
def page_gep_run_progress(request: Request, session: SessionDep, person: Person, run_id: RunId) -> HTMLResponse:
    """The progress fragment (polled while the run is queued or running); a finished run reloads the page."""
    run = get_run(session, run_id)
    response = render(request, "_gep_progress.html", _progress(session, run), principal=person)
    if run.status in FINISHED:
        response.headers["HX-Refresh"] = "true"
    return response


@router.get("/gep/runs/{run_id}/regions.geojson")
def page_gep_run_regions(session: SessionDep, person: Person, run_id: RunId) -> JSONResponse:
    """The run's regions with their GEP (元, as text and as a number for the choropleth's colours)."""
    return JSONResponse(_regions_geojson(get_run(session, run_id)), media_type="application/geo+json")


@router.get("/gep/runs/{run_id}/tiles/{indicator}/{z}/{x}/{y}.png")
def page_gep_run_tile(
    session: SessionDep, settings: SettingsDep, person: Person, run_id: RunId, indicator: Indicator,
    z: TileZ, x: TileXY, y: TileXY,
) -> Response:  # fmt: skip
    """A 256-px PNG tile of an indicator's value raster (the run's COG); ``204`` where it has no value."""
    path = raster_path(get_run(session, run_id), indicator, settings.data_dir)
    session.rollback()  # no transaction held while reading the raster
    tile = raster_tiles.value_tile(path, z, x, y)
    return Response(status_code=204) if tile is None else Response(tile, media_type=PNG)


@router.get("/gep/runs/{before_id}/compare/{run_id}/tiles/{indicator}/{z}/{x}/{y}.png")
def page_gep_compare_tile(
    session: SessionDep, settings: SettingsDep, person: Person, before_id: RunId, run_id: RunId,
    indicator: Indicator, z: TileZ, x: TileXY, y: TileXY,
) -> Response:  # fmt: skip
    """A PNG tile of ``run − before`` for an indicator (diverging colours about zero); ``204`` where none."""
    before = raster_path(get_run(session, before_id), indicator, settings.data_dir)
    after = raster_path(get_run(session, run_id), indicator, settings.data_dir)
    session.rollback()
    scale = raster_tiles.change_range(before, after)
    tile = raster_tiles.change_tile(before, after, z, x, y, scale=scale)
    return Response(status_code=204) if tile is None else Response(tile, media_type=PNG)


@router.get("/gep/runs/{run_id}/rasters/{indicator}/value")
def page_gep_run_value(
    session: SessionDep,
    settings: SettingsDep,
    person: Person,
    run_id: RunId,
    indicator: Indicator,
    lon: Annotated[float, Query(ge=-180, le=180)],
    lat: Annotated[float, Query(ge=-85, le=85)],
) -> JSONResponse:
    """The value (元) of the COG's full-resolution pixel at a clicked point; ``null`` outside it or on no value."""
    path = raster_path(get_run(session, run_id), indicator, settings.data_dir)
    session.rollback()
    value = raster_tiles.pixel_value(path, lon, lat)
    return JSONResponse({"indicator": indicator, "lon": lon, "lat": lat, "unit": "CNY per pixel",
                         "value": None if value is None else repr(value)})  # fmt: skip


@router.get("/gep/runs/{run_id}/tables/{table}.csv")
def page_gep_run_table(session: SessionDep, person: Person, run_id: RunId, table: Indicator) -> Response:
    """A SEEA-EA table of a finished run as CSV (the API's)."""
    text = table_csv(get_run(session, run_id), table)
    return _attachment(text.encode("utf-8"), "text/csv; charset=utf-8", f"gep-run-{run_id}-{table}.csv")


@router.get("/gep/runs/{run_id}/tables.xlsx")
def page_gep_run_workbook(session: SessionDep, person: Person, run_id: RunId) -> Response:
    """Every SEEA-EA table of a finished run as an Excel workbook (the API's)."""
    content = workbook(get_run(session, run_id))
    media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return _attachment(content, media, f"gep-run-{run_id}.xlsx")


@router.get("/gep/runs/{run_id}/rasters/{indicator}.tif")
def page_gep_run_raster(
    session: SessionDep, settings: SettingsDep, person: Person, run_id: RunId, indicator: Indicator
) -> FileResponse:
    """An indicator's value raster (元 per pixel, float64 COG with overviews)."""
    path = raster_path(get_run(session, run_id), indicator, settings.data_dir)
    return FileResponse(path, media_type="image/tiff", filename=f"gep-run-{run_id}-{indicator}.tif")


@router.get("/gep/runs/{before_id}/compare/{run_id}.csv")
def page_gep_compare_csv(session: SessionDep, person: Person, before_id: RunId, run_id: RunId) -> Response:
    """The change by region and indicator from ``before_id`` to ``run_id`` as CSV (the API's comparison)."""
    text = compare_csv(get_run(session, before_id), get_run(session, run_id))
    return _attachment(text.encode("utf-8"), "text/csv; charset=utf-8", f"gep-run-{run_id}-vs-{before_id}.csv")


def _attachment(content: bytes, media_type: str, filename: str) -> Response:
    return Response(content, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})  # fmt: skip
