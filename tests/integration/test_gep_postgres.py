"""A GEP run on PostgreSQL + PostGIS: regions in a geometry column, tiles recorded once, totals as on SQLite.

Marked ``postgres``: under CI=true this fails if the server is missing; elsewhere it skips.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from api.seed import GEP_DEMO_RUN, GEP_RASTERS
from core.audit import verify_chain
from core.clock import FixedClock
from core.db import make_session_factory
from geodata.rasters import register_layer
from gep.engine import RunConfig, plan_run, run_in_process
from gep.models import GepRun, RegionLevel, RunStatus
from gep.prices import load_table
from gep.regions import region_shapes, upload_region_layer
from gep.runs import CreateRun, create_run, execute_in_process, raster_sources, run_tile
from tests.conftest import SAMPLES

pytestmark = pytest.mark.postgres

CLOCK = FixedClock(datetime(2026, 11, 25, tzinfo=UTC))


def test_a_run_on_postgres(pg_engine: Engine, tmp_path: Path) -> None:
    factory = make_session_factory(pg_engine)
    suffix = uuid.uuid4().hex[:8]
    raster_dir = SAMPLES / "rasters"
    inputs: dict[str, str | float] = {"practice_factor": 1.0}
    with factory() as session:
        for cmd in GEP_RASTERS:
            named = cmd.model_copy(update={"name": f"{cmd.name}-{suffix}"})
            register_layer(session, named, raster_dir=raster_dir, actor="test", clock=CLOCK)
            role = next(r for r, v in GEP_DEMO_RUN.inputs.items() if v == cmd.name)
            inputs[role] = named.name
        layer = upload_region_layer(
            session,
            name=f"townships-{suffix}",
            level=RegionLevel.TOWNSHIP,
            filename="townships.geojson",
            data=(SAMPLES / "gep_townships_jingyuan.geojson").read_bytes(),
            actor="test",
            clock=CLOCK,
        )
        body = GEP_DEMO_RUN.model_dump() | {"inputs": inputs, "region_layer": layer.name, "tile_size": 64}
        run = create_run(session, CreateRun.model_validate(body), actor="test", clock=CLOCK, raster_dir=raster_dir)
        run_id, tiles = run.id, run.tiles_total
        shapes = region_shapes(layer)
    execute_in_process(factory, run_id, raster_dir=raster_dir, data_dir=tmp_path, clock=CLOCK)
    # A retried tile changes nothing.
    assert run_tile(factory, run_id, 0, raster_dir=raster_dir, data_dir=tmp_path, clock=CLOCK)["status"] == "succeeded"
    with factory() as session:
        stored = session.get(GepRun, run_id)
        assert stored is not None and stored.status is RunStatus.SUCCEEDED and stored.tiles_done == tiles == 16
        assert stored.result is not None
        config = RunConfig.model_validate({k: v for k, v in body.items() if k != "region_layer"} | {"tile_size": 200})
        sources = raster_sources(session, config, raster_dir)
        assert verify_chain(session).ok
    plan = plan_run(config, sources, shapes, load_table(config.prices), load_table(config.coefficients))
    whole, _ = run_in_process(plan)
    for code, by_region in whole.totals.items():
        for region, total in by_region.items():
            assert math.isclose(stored.result["totals"][code][region], total, rel_tol=1e-12)
