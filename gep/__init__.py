"""GEP: Gross Ecosystem Product accounting — pure kernels, cited prices, SEEA-style tables.

Imports ``geodata`` and ``core``; never ``carbon`` or ``trading``. Everything here is pure (no files
except the packaged parameter tables, no database, clock or randomness):

- :mod:`gep.indicators` — one numpy block kernel per ecosystem service, with units in every name;
- :mod:`gep.invest` — InVEST-compatible Carbon and Annual Water Yield for cross-checking;
- :mod:`gep.arrays` — alignment and nodata checks, exact (``fsum``-identical) totals;
- :mod:`gep.pixel_area` — geodesic pixel areas of lon/lat grids;
- :mod:`gep.prices`, :mod:`gep.coefficients` — versioned, cited price and coefficient tables;
- :mod:`gep.valuation` — the indicator registry and Decimal unit values (元 per physical unit);
- :mod:`gep.tables` — SEEA-EA style accounts with Σ indicators = GEP and Σ regions = total asserted.

Accounting runs (regions, raster stacks, tiling, outputs) call these kernels; decisions are in
``docs/adr/006-gep-indicators.md``.
"""
