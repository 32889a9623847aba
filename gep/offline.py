"""Offline runs: a YAML/JSON configuration naming files, computed in this process, written to a folder.

The configuration is a :class:`~gep.plan.RunConfig` plus ``regions`` (a polygon file with a ``code``
per feature); raster inputs are file paths relative to the configuration file. Outputs: the SEEA-EA
tables (``summary.csv``, ``extent.csv``, ``physical.csv``, ``monetary.csv``, ``physical_by_type.csv``,
``monetary_by_type.csv``; with ``xlsx`` also ``tables.xlsx``), one value raster per
indicator (``value_<indicator>.tif``, float64 元 per pixel, COG) and ``run.json`` (configuration,
inputs with SHA-256, valuation record with the tables' hashes). Raster units are not checked offline
(files carry none); the run's roles fix them (:data:`gep.spec.ROLES`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic_core import to_jsonable_python

from core.errors import InvalidInput
from geodata.intake import intake_file
from gep import tables
from gep.engine import Merged, class_types, run_in_process
from gep.plan import RegionShape, RunConfig, Source, plan_run
from gep.prices import load_table
from gep.regions import REGION_LIMITS
from gep.workbook import workbook_bytes


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


def run_offline(config_path: Path, out_dir: Path, *, xlsx: bool = False) -> tuple[Merged, list[tables.SummaryRow]]:
    """Run the configuration at ``config_path`` and write its outputs to ``out_dir`` (and ``tables.xlsx``)."""
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
    seea = tables.seea_tables(
        merged.lines,
        by_type=merged.by_type,
        unit_values={code: value.yuan_per_unit for code, value in plan.unit_values.items()},
        extent_m2=merged.extent,
        class_types=class_types(plan, merged),
    )
    for name, rows in seea.items():
        (out_dir / f"{name}.csv").write_text(tables.to_csv(rows), encoding="utf-8")
    if xlsx:
        about = {
            "run": config.name,
            "year": config.year,
            "prices": plan.valuation["prices"],
            "coefficients": plan.valuation["coefficients"],
            "land-cover legend": plan.legend.reference() if plan.legend else "",
            "valuation sha256": plan.valuation["sha256"],
        }
        (out_dir / "tables.xlsx").write_bytes(workbook_bytes(seea, about=about))
    record: dict[str, Any] = {
        "config": config.model_dump(mode="json"),
        "regions": {"file": regions_path.name, "sha256": _sha256(regions_path)},
        "inputs": {role: {"file": s.name, "sha256": s.sha256} for role, s in sources.items()},
        "warp": plan.warp,
        "legend": plan.legend.reference() if plan.legend else None,
        "valuation": plan.valuation,
        "rasters": rasters,
    }
    text = json.dumps(to_jsonable_python(record), ensure_ascii=False, indent=1, sort_keys=True)
    (out_dir / "run.json").write_text(text + "\n", encoding="utf-8")
    return merged, summary
