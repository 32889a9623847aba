"""GEP indicators as pure numpy block kernels, one module per indicator.

Regulating services (rasters → physical quantity per pixel):

- :mod:`~gep.indicators.water_conservation` — P − R − ET (m³), negative-balance policy;
- :mod:`~gep.indicators.soil_retention` and :mod:`~gep.indicators.terrain` — RUSLE R·K·LS·(1 − C·P) (t),
  LS from the DEM with a one-pixel halo;
- :mod:`~gep.indicators.sand_fixation` — RWEQ potential − actual (t), cover unit pinned;
- :mod:`~gep.indicators.flood_regulation` — lakes, reservoirs, marshes (m³);
- :mod:`~gep.indicators.carbon_oxygen` — NEP × 44/12 (t CO₂) and × 32/12 (t O₂);
- :mod:`~gep.indicators.climate_regulation` — transpiration and evaporation energy (kWh);
- :mod:`~gep.indicators.air_purification`, :mod:`~gep.indicators.water_purification` — pollutant
  uptake capped by emissions (t), via :mod:`~gep.indicators.purification`.

Provisioning and cultural items (statistical tables → 元): :mod:`~gep.indicators.provisioning`,
:mod:`~gep.indicators.cultural`.

Every kernel takes aligned float arrays (NaN = nodata) and scalars, returns float64 arrays, and does
no I/O. Unit values (元 per physical unit) are in :mod:`gep.valuation`.
"""
