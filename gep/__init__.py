"""GEP: Gross Ecosystem Product accounting — pure kernels, cited prices, SEEA-style tables.

Imports ``geodata`` and ``core``; never ``carbon`` or ``trading``. Everything here is pure (no files
except the packaged parameter tables, no database, clock or randomness):

- :mod:`gep.indicators` — one numpy block kernel per ecosystem service, with units in every name;
- :mod:`gep.invest` — InVEST-compatible Carbon and Annual Water Yield for cross-checking;
- :mod:`gep.arrays` — alignment and nodata checks, exact (``fsum``-identical) totals;
- :mod:`gep.pixel_area` — geodesic pixel areas of lon/lat grids;
- :mod:`gep.prices`, :mod:`gep.coefficients` — versioned, cited price and coefficient tables;
- :mod:`gep.spec` — one :class:`~gep.spec.IndicatorSpec` per indicator (roles and units, kernel, physical unit,
  valuation rule, legend fields), registered once and read by everything below (ADR 032);
- :mod:`gep.kernels` — the run kernels the specs name: an indicator's block kernel bound to the run's settings;
- :mod:`gep.valuation` — Decimal unit values (元 per physical unit) from declared table entries;
- :mod:`gep.tables` — SEEA-EA style accounts with Σ indicators = GEP and Σ regions = total asserted.

Accounting runs call these kernels: :mod:`gep.plan` (configuration and checks) → :mod:`gep.engine` (tiles,
merge) → :mod:`gep.outputs` (value rasters), :mod:`gep.runs` (the service); decisions are in
``docs/adr/006-gep-indicators.md``, ``017-gep-full-indicator-runs.md`` and ``032-gep-indicator-spec.md``.
"""
