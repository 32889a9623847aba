"""What every desk map answers: a vector tile of a project's plots, and a clicked plot's card.

The bureau's desk (``/projects/{id}``), the review of a report and the review of a reversal each show a project's
plots the same way (ADR 040); each route checks who may see the project, then calls these.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from carbon.claims import overlaps_of_plot
from carbon.models import Plot, Project
from carbon.plot_tiles import plot_tile
from core.auth import Principal
from core.errors import NotFound
from web.pages import render

__all__ = ["TileX", "TileY", "TileZ", "plot_card", "plot_tile_response"]

TileZ = Annotated[int, Path(ge=0, le=22)]
TileX = Annotated[int, Path(ge=0, le=2**22)]
TileY = Annotated[int, Path(ge=0, le=2**22)]


def plot_tile_response(session: Session, project_id: int, z: int, x: int, y: int) -> Response:
    """One vector tile (MVT) of the project's active plots; ``204`` where none lies."""
    tile = plot_tile(session, project_id, z, x, y)
    if not tile:
        return Response(status_code=204)
    return Response(tile, media_type="application/vnd.mapbox-vector-tile")


def plot_card(request: Request, session: Session, person: Principal, project: Project, plot_id: int) -> HTMLResponse:
    """A plot's card for the map's popup: code, name, areas, declared vs measured, claim, overlaps, warnings.

    Raises:
        NotFound: No such plot in ``project``.
    """
    plot = session.get(Plot, plot_id)
    if plot is None or plot.project_id != project.id:
        raise NotFound(f"plot {plot_id} does not exist")
    declared = plot.declared_area_mu
    measured_mu = plot.area_m2 * 15 / 10_000
    difference = None if not declared else round(100 * (measured_mu - declared) / declared, 1)
    context = {"plot": plot, "project": project, "overlaps": overlaps_of_plot(session, plot),
               "difference_percent": difference, "properties": plot.properties}  # fmt: skip
    return render(request, "_plot_card.html", context, principal=person)
