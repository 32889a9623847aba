"""Offline runs: a YAML/JSON configuration naming files, computed in this process, written to a folder.

The configuration is a :class:`~gep.engine.RunConfig` plus ``regions`` (a polygon file with a ``code``
per feature); raster inputs are file paths relative to the configuration file. Outputs: the SEEA-EA
tables (``summary.csv``, ``physical.csv``, ``monetary.csv``, ``extent.csv``), one value raster per
indicator (``value_<indicator>.tif``, float64 元 per pixel, COG) and ``run.json`` (configuration,
inputs with SHA-256, valuation record with the tables' hashes). Raster units are not checked offline
(files carry none); the run's roles fix them (:data:`gep.engine.ROLES`).
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic_core import to_jsonable_python

from core.errors import InvalidInput
from geodata.intake import intake_file
from gep import tables
from gep.engine import Merged, RegionShape, RunConfig, Source, plan_run, run_in_process
from gep.prices import load_table
from gep.regions import REGION_LIMITS


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_config(path: Path) -> tuple[RunConfig, Path]:
    """Read a YAML or JSON run configuration; return it and its regions file (resolved)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or "regions" not in document:
        raise InvalidInput(f"{path}: a run configuration is a mapping with 'regions'", [{"reason": "bad-config"}])
    regions = path.parent / str(document.pop("regions"))
    return RunConfig.model_validate(document), regions


def run_offline(config_path: Path, out_dir: Path) -> tuple[Merged, list[tables.SummaryRow]]:
    """Run the configuration at ``config_path`` and write its outputs to ``out_dir``."""
    config, regions_path = load_config(config_path)
    intake = intake_file(regions_path.read_bytes(), regions_path.name, limits=REGION_LIMITS)
    intake.raise_if_refused()
    regions = [RegionShape(str(f.plot_code), f.name or str(f.plot_code), f.geometry) for f in intake.features]
    sources = {}
    for role in config.raster_roles:
        file = config_path.parent / str(config.inputs[role])
        if not file.is_file():
            raise InvalidInput(f"no raster file {file}", [{"role": role, "reason": "file-missing"}])
        sources[role] = Source(role, str(config.inputs[role]), file, _sha256(file))
    plan = plan_run(config, sources, regions, load_table(config.prices), load_table(config.coefficients))
    out_dir.mkdir(parents=True, exist_ok=True)
    merged, rasters = run_in_process(plan, out_dir)
    summary = tables.gep_summary(merged.lines)
    files = {
        "summary.csv": tables.to_csv([row.model_dump() for row in summary]),
        "physical.csv": tables.to_csv(tables.physical_supply_rows(merged.lines)),
        "monetary.csv": tables.to_csv(tables.monetary_supply_rows(merged.lines)),
        "extent.csv": tables.to_csv(_extent(merged)),
    }
    for name, text in files.items():
        (out_dir / name).write_text(text, encoding="utf-8")
    record: dict[str, Any] = {
        "config": config.model_dump(mode="json"),
        "regions": {"file": regions_path.name, "sha256": _sha256(regions_path)},
        "inputs": {role: {"file": s.name, "sha256": s.sha256} for role, s in sources.items()},
        "warp": plan.warp,
        "valuation": plan.valuation,
        "rasters": rasters,
    }
    text = json.dumps(to_jsonable_python(record), ensure_ascii=False, indent=1, sort_keys=True)
    (out_dir / "run.json").write_text(text + "\n", encoding="utf-8")
    return merged, summary


def _extent(merged: Merged) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for region, by_class in sorted(merged.extent.items()):
        for klass, area in by_class.items():
            km2 = tables.decimal_from_total("area", area) / Decimal(1_000_000)
            rows.append({"region_code": region, "land_cover_class": klass, "area_km2": km2.quantize(Decimal("1e-6"))})
    return rows
