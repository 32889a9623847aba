"""Reversals found from the land (ADR 038): change patches and composites in, loss events out, decided by the registry.

* :mod:`~carbon.reversals.patches` — change-patch files (森林督查变化图斑) in;
* :mod:`~carbon.reversals.composites` — NDVI / land-cover composites by date per region; same-season pairs only;
* :mod:`~carbon.reversals.thresholds` — loss thresholds per credit class (cited defaults, registry overrides);
* :mod:`~carbon.reversals.kernels` (pure) — loss pixels, per-plot sums, shares of reports, tonnes at risk;
* :mod:`~carbon.reversals.watch` — the tiled monitoring job (tiles from :mod:`geodata.tiling`);
* :mod:`~carbon.reversals.proposals` — loss events as reversal proposals, confirmed through
  :func:`carbon.ledger.reversal.cover` or rejected with a reason; :mod:`~carbon.reversals.evidence` — maps.
"""
