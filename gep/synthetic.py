"""SYNTHETIC GEP raster stacks and townships, for the demo, the tests and the benchmark (not data).

Every value here is invented: smooth fields of plausible magnitude for the Liupan mountains around
Jingyuan county (Guyuan, Ningxia) so that a run has something to account. Nothing here is a
measurement; the townships are rectangles named "synthetic".

:func:`write_stack` writes one GeoTIFF per role (EPSG:4490, float32, nodata −9999, a small nodata
patch; land cover uint8, nodata 0) and returns role → file name. :func:`township_collection` returns a
GeoJSON FeatureCollection of ``n × n`` rectangular townships covering the stack's interior.

Land cover follows the synthetic legend ``gep/data/legend_synthetic_jingyuan.toml`` (1 forest,
2 shrubland, 3 grassland, 4 bare, 5 cropland, 6 lake, 7 reservoir, 8 marsh, 9 built-up). One reservoir
block sits near the north-west corner, inside township 1 of both the 2 × 2 and the 3 × 3 layouts, so
:func:`demo_tables` can give township 1 a reservoir capacity. The RWEQ factors, vegetation cover,
transpiration heat, water-surface evaporation and pollutant uptake rates are invented per class too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: West and north edges of the demo stack (degrees), in Jingyuan county.
WEST, NORTH = 106.20, 35.65
NODATA = -9999.0
#: Cover-management factor C by land-cover class (1 forest … 9 built-up), synthetic.
#: Open water (6, 7) has C = 1: no vegetation, so no soil retained (1 − C·P = 0).
COVER_C = {1: 0.02, 2: 0.08, 3: 0.15, 4: 0.6, 5: 0.3, 6: 1.0, 7: 1.0, 8: 0.05, 9: 0.9}
#: Per-class synthetic values, indexed by class code (index 0 = nodata).
BY_CLASS: dict[str, list[float]] = {
    "runoff_coefficient": [np.nan, 0.05, 0.08, 0.12, 0.25, 0.18, 0.0, 0.0, 0.02, 0.7],
    "nep": [np.nan, 320.0, 180.0, 110.0, 5.0, 150.0, 20.0, 20.0, 200.0, 0.0],
    "vegetation_cover": [np.nan, 75.0, 50.0, 40.0, 8.0, 30.0, 0.0, 0.0, 60.0, 5.0],  # percent
    "transpiration_heat": [np.nan, 1200.0, 900.0, 700.0, 50.0, 800.0, 0.0, 0.0, 1000.0, 0.0],  # kJ/(m²·d)
    "water_evaporation": [np.nan, 0.0, 0.0, 0.0, 0.0, 0.0, 950.0, 900.0, 0.0, 0.0],  # mm
    "uptake_so2": [np.nan, 8.0, 4.0, 2.0, 0.0, 2.0, 0.0, 0.0, 3.0, 0.0],  # t/km²
    "uptake_nox": [np.nan, 5.0, 3.0, 2.0, 0.0, 2.0, 0.0, 0.0, 2.0, 0.0],
    "uptake_dust": [np.nan, 300.0, 200.0, 100.0, 0.0, 80.0, 0.0, 0.0, 120.0, 0.0],
    "uptake_cod": [np.nan, 0.0, 0.0, 0.0, 0.0, 0.0, 30.0, 30.0, 50.0, 0.0],
    "uptake_nh3n": [np.nan, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 3.0, 5.0, 0.0],
}
#: Units per role, as the run expects them (gep.spec.ROLES).
FILES = {
    "precipitation": "precipitation_mm",
    "evapotranspiration": "evapotranspiration_mm",
    "runoff_coefficient": "runoff_coefficient",
    "nep": "nep_gc_m2",
    "dem": "dem_m",
    "erosivity": "erosivity",
    "erodibility": "erodibility",
    "cover_factor": "cover_factor",
    "land_cover": "land_cover",
    "wind_weather_factor": "rweq_weather_factor_kg_m",
    "erodible_fraction": "rweq_erodible_fraction",
    "crust_factor": "rweq_crust_factor",
    "roughness_factor": "rweq_roughness_factor",
    "vegetation_cover": "vegetation_cover_percent",
    "transpiration_heat": "transpiration_heat_kj_m2_d",
    "water_evaporation": "water_evaporation_mm",
    "uptake_so2": "uptake_so2_t_km2",
    "uptake_nox": "uptake_nox_t_km2",
    "uptake_dust": "uptake_dust_t_km2",
    "uptake_cod": "uptake_cod_t_km2",
    "uptake_nh3n": "uptake_nh3n_t_km2",
}
#: Synthetic regional tables of the demo: total emission (t) of every township, per purification indicator.
EMISSIONS_T = {
    "air_purification_so2": 40.0,
    "air_purification_nox": 30.0,
    "air_purification_dust": 900.0,
    "water_purification_cod": 20.0,
    "water_purification_nh3n": 1.0,
}
#: Synthetic capacity of the one demo reservoir (in township 1), m³.
RESERVOIR_CAPACITY_M3 = 2.4e6


def raster_profile(rows: int, cols: int, cell_deg: float, dtype: str, nodata: float) -> dict[str, Any]:
    """Return the GeoTIFF profile of a synthetic layer: EPSG:4490 from (WEST, NORTH), 256² deflate tiles."""
    from affine import Affine

    return {
        "driver": "GTiff",
        "width": cols,
        "height": rows,
        "count": 1,
        "dtype": dtype,
        "crs": "EPSG:4490",
        "transform": Affine(cell_deg, 0.0, WEST, 0.0, -cell_deg, NORTH),
        "nodata": nodata,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
    }


def fields(rows: int, cols: int, *, seed: int = 2026) -> dict[str, np.ndarray]:
    """Return the synthetic fields (float64, NaN = nodata; land cover as float codes)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    u, v = x / max(cols - 1, 1), y / max(rows - 1, 1)
    ridge = np.exp(-(((u - 0.45) / 0.25) ** 2)) * (0.6 + 0.4 * np.sin(3 * np.pi * v))
    dem = 1700.0 + 1100.0 * ridge + 40.0 * np.sin(17 * u) * np.cos(13 * v)
    coarse = rng.integers(1, 6, size=(rows // 20 + 1, cols // 20 + 1)).astype(np.float64)
    # Water, marsh and built-up blocks from a second generator, so the other fields keep their values.
    extra = np.random.default_rng(seed + 1).uniform(size=coarse.shape)
    coarse = np.select([extra < 0.06, extra < 0.12, extra < 0.16], [6.0, 8.0, 9.0], coarse)
    coarse[coarse.shape[0] // 6, coarse.shape[1] // 6] = 7.0  # the reservoir, inside township 1
    land = np.kron(coarse, np.ones((20, 20)))[:rows, :cols]
    noise = rng.uniform(0.9, 1.1, size=(rows, cols))
    precipitation = (480.0 + 260.0 * ridge + 60.0 * v) * noise
    evapotranspiration = (330.0 + 120.0 * ridge) * rng.uniform(0.9, 1.1, size=(rows, cols))
    codes = land.astype(np.int64)
    per_class = {role: np.array(values)[codes] for role, values in BY_CLASS.items()}
    runoff = per_class.pop("runoff_coefficient")
    nep = per_class.pop("nep") * noise
    cover = np.array([np.nan, *(COVER_C[k] for k in range(1, 10))])[codes]
    per_class["vegetation_cover"] = np.clip(per_class["vegetation_cover"] * noise, 0.0, 100.0)
    erosivity = 1600.0 + 900.0 * v + 300.0 * ridge
    erodibility = 0.028 + 0.01 * u
    out = {
        "precipitation": precipitation,
        "evapotranspiration": evapotranspiration,
        "runoff_coefficient": runoff,
        "nep": nep,
        "dem": dem,
        "erosivity": erosivity,
        "erodibility": erodibility,
        "cover_factor": cover,
        "land_cover": land,
        "wind_weather_factor": 9.0 + 8.0 * (1.0 - v) + 4.0 * ridge,  # kg/m: windier to the north, on ridges
        "erodible_fraction": 0.35 + 0.2 * u,
        "crust_factor": 0.6 + 0.2 * v,
        "roughness_factor": 0.95 - 0.25 * ridge,
        **per_class,
    }
    hole = (slice(rows // 3, rows // 3 + max(1, rows // 20)), slice(cols // 2, cols // 2 + max(1, cols // 15)))
    for role in ("precipitation", "nep", "dem"):
        out[role][hole] = np.nan  # a synthetic nodata patch (a reservoir, say)
    return out


def demo_tables(region_codes: list[str]) -> dict[str, Any]:
    """Return the SYNTHETIC regional tables of a demo run: reservoir capacity (township 1 only) and emissions.

    >>> demo_tables(["SYN-JY-01", "SYN-JY-02"])["reservoir_capacity_m3"]
    {'SYN-JY-01': 2400000.0, 'SYN-JY-02': 0.0}
    """
    first = sorted(region_codes)[0]
    return {
        "reservoir_capacity_m3": {c: RESERVOIR_CAPACITY_M3 if c == first else 0.0 for c in region_codes},
        "emissions_t": {code: dict.fromkeys(region_codes, t) for code, t in EMISSIONS_T.items()},
    }


def write_stack(directory: Path, rows: int, cols: int, *, cell_deg: float = 0.001, seed: int = 2026) -> dict[str, str]:
    """Write the synthetic stack into ``directory``; return role → file name."""
    import rasterio

    directory.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    for role, array in fields(rows, cols, seed=seed).items():
        name = f"gep_{FILES[role]}.tif"
        if role == "land_cover":
            data = np.nan_to_num(array, nan=0.0).astype("uint8")
            profile = raster_profile(rows, cols, cell_deg, "uint8", 0)
        else:
            data = np.where(np.isnan(array), NODATA, array).astype("float32")
            profile = raster_profile(rows, cols, cell_deg, "float32", NODATA)
        with rasterio.open(directory / name, "w", **profile) as out:
            out.write(data, 1)
        names[role] = name
    return names


def township_collection(rows: int, cols: int, *, cell_deg: float = 0.001, n: int = 2) -> dict[str, Any]:
    """Return ``n × n`` synthetic rectangular townships inside the stack (a 2 % margin left uncovered)."""
    width, height = cols * cell_deg, rows * cell_deg
    west, north = WEST + 0.02 * width, NORTH - 0.02 * height
    step_x, step_y = 0.96 * width / n, 0.96 * height / n
    features = []
    for j in range(n):
        for i in range(n):
            x0, y1 = west + i * step_x, north - j * step_y
            x1, y0 = x0 + step_x, y1 - step_y
            ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
            number = j * n + i + 1
            features.append(
                {
                    "type": "Feature",
                    "properties": {"code": f"SYN-JY-{number:02d}", "name": f"Synthetic township {number} (Jingyuan)"},
                    "geometry": {"type": "Polygon", "coordinates": [[[round(a, 7), round(b, 7)] for a, b in ring]]},
                }
            )
    return {"type": "FeatureCollection", "features": features}


#: SYNTHETIC later years of the demo stack: precipitation × factor (a wetter 2026, a drought in 2027), so that
#: runs a year apart differ (the eco-compensation and collateral demo, ADR 039). Nothing here is data.
YEAR_FACTORS = {2026: 1.08, 2027: 0.70}


def precipitation_file(year: int) -> str:
    """Return the file name of a later year's synthetic precipitation."""
    return f"gep_{FILES['precipitation']}_{year}.tif"


def write_precipitation_year(
    directory: Path, rows: int, cols: int, year: int, *, cell_deg: float = 0.001, seed: int = 2026
) -> str:
    """Write the stack's precipitation × :data:`YEAR_FACTORS` of ``year`` into ``directory``; return its name."""
    import rasterio

    array = fields(rows, cols, seed=seed)["precipitation"] * YEAR_FACTORS[year]
    data = np.where(np.isnan(array), NODATA, array).astype("float32")
    name = precipitation_file(year)
    with rasterio.open(directory / name, "w", **raster_profile(rows, cols, cell_deg, "float32", NODATA)) as out:
        out.write(data, 1)
    return name
