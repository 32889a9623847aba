"""InVEST-compatible models for cross-checking with the field's reference tool (pure).

:mod:`~gep.invest.carbon` (Carbon storage and sequestration, t/ha as in InVEST ≥ 3.15) and
:mod:`~gep.invest.water_yield` (Annual Water Yield, Budyko–Fu/Zhang) reproduce InVEST 3.20's
per-pixel arithmetic on numpy blocks, so the same inputs give the same numbers.
"""
