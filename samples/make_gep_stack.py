"""Regenerate the SYNTHETIC GEP demo stack and townships for Jingyuan county (see samples/README.md).

Writes ``rasters/gep_*.tif`` (200 × 200 cells of 0.0015°, EPSG:4490) and ``gep_townships_jingyuan.geojson``
(four rectangular synthetic townships) from :mod:`gep.synthetic` (seed 2026), and the later years'
precipitation ``rasters/gep_precipitation_mm_2026.tif`` and ``…_2027.tif`` (× 1.08 and × 0.70, for the
eco-compensation demo, ADR 039). Nothing here is data.

Run: ``.venv/bin/python samples/make_gep_stack.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

from gep.synthetic import YEAR_FACTORS, township_collection, write_precipitation_year, write_stack

HERE = Path(__file__).parent
ROWS = COLS = 200
CELL_DEG = 0.0015


def main() -> None:
    """Write the stack and the townships."""
    write_stack(HERE / "rasters", ROWS, COLS, cell_deg=CELL_DEG)
    for year in YEAR_FACTORS:  # later years' precipitation (eco-compensation demo, ADR 039)
        write_precipitation_year(HERE / "rasters", ROWS, COLS, year, cell_deg=CELL_DEG)
    townships = township_collection(ROWS, COLS, cell_deg=CELL_DEG)
    text = json.dumps(townships, ensure_ascii=False, indent=1) + "\n"
    (HERE / "gep_townships_jingyuan.geojson").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
