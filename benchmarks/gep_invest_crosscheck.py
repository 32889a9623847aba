"""Cross-check gep's InVEST-compatible kernels against natcap.invest 3.20.2 itself.

Runs in the peers' virtualenv (``../shared/peers``: rasterio, pandas and natcap.invest built by
``setup_venv.sh``), with this repository on ``PYTHONPATH``; gep itself needs neither rasterio nor
InVEST. Two modes:

``--worked-examples``
    Builds the reference's T13 (Carbon) and T14 (Annual Water Yield) 4 × 4 inputs in EPSG:32648,
    runs InVEST on them and prints InVEST's figures next to gep's.
``--size small|medium|large``
    Reads the peers' synthetic rasters (``make_data.py``) block by block, runs gep's kernels and
    compares with the outputs of the peers' ``invest_carbon.py`` / ``invest_awy.py`` runs (Z = 1):
    totals, and the largest per-pixel difference of the water yield.

    PYTHONPATH=. $PEERS/.venv/bin/python benchmarks/gep_invest_crosscheck.py --peers $PEERS --size small
    PYTHONPATH=. $PEERS/.venv/bin/python benchmarks/gep_invest_crosscheck.py --peers $PEERS --worked-examples

``--export-golden PATH`` (with ``--size``) writes a 64 × 64 window of the inputs and of InVEST's
``c_storage_bas.tif`` and ``wyield.tif`` to an ``.npz`` for ``tests/golden/gep/`` (see its README).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import tempfile
import time

import numpy as np
import rasterio

from gep.arrays import exact_sum
from gep.invest import carbon, water_yield


def read_pools(path: str) -> carbon.CarbonPools:
    """Return InVEST's carbon pools CSV as a gep table."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return carbon.CarbonPools(
        rows={
            int(r["lucode"]): carbon.CarbonPool(
                above=float(r["c_above"]), below=float(r["c_below"]), soil=float(r["c_soil"]), dead=float(r["c_dead"])
            )
            for r in rows
        }
    )


def read_biophysical(path: str) -> water_yield.BiophysicalTable:
    """Return InVEST's biophysical CSV as a gep table."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return water_yield.BiophysicalTable(
        rows={
            int(r["lucode"]): water_yield.BiophysicalRow(
                vegetated=r["lulc_veg"] == "1", root_depth_mm=float(r["root_depth"]), kc=float(r["kc"])
            )
            for r in rows
        }
    )


def read_block(path: str, window: rasterio.windows.Window) -> np.ndarray:
    """Return one block as float64 with nodata as NaN."""
    with rasterio.open(path) as dataset:
        block = dataset.read(1, window=window).astype(np.float64)
        if dataset.nodata is not None:
            block[block == dataset.nodata] = np.nan
    return block


def synthetic(peers: str, size: str, z: float) -> dict[str, object]:
    """Compare gep with the peers' InVEST outputs on make_data.py rasters."""
    data, out = os.path.join(peers, "data", size), os.path.join(peers, "out", size)
    pools = read_pools(os.path.join(data, "carbon_pools.csv"))
    table = read_biophysical(os.path.join(data, "biophysical_table.csv"))
    with rasterio.open(os.path.join(data, "lulc.tif")) as dataset:
        windows = [window for _, window in dataset.block_windows(1)]
        pixel_area_m2 = abs(dataset.transform.a * dataset.transform.e)
    carbon_parts, yield_parts, invest_yield_parts, max_diff = [], [], [], 0.0
    seconds = 0.0
    for window in windows:
        x = {
            k: read_block(os.path.join(data, f"{k}.tif"), window)
            for k in ("lulc", "precip", "et0", "root_depth", "pawc")
        }
        t0 = time.perf_counter()
        storage = carbon.carbon_storage_t_per_ha(x["lulc"], pools)
        carbon_parts.append(carbon.total_t(storage, pixel_area_m2))
        wyield = water_yield.water_yield_mm(
            x["lulc"],
            precipitation_mm=x["precip"],
            eto_mm=x["et0"],
            restricting_depth_mm=x["root_depth"],
            pawc=x["pawc"],
            table=table,
            seasonality_z=z,
        )
        yield_parts.append(water_yield.water_yield_volume_m3(wyield, pixel_area_m2))
        seconds += time.perf_counter() - t0
        theirs = read_block(os.path.join(out, "awy", "output", "per_pixel", "wyield.tif"), window)
        invest_yield_parts.append(exact_sum(theirs) * pixel_area_m2 / 1000.0)
        max_diff = max(max_diff, float(np.nanmax(np.abs(wyield - theirs))))
    invest_carbon = 0.0
    with rasterio.open(os.path.join(out, "carbon", "c_storage_bas.tif")) as dataset:
        for window in windows:
            invest_carbon += exact_sum(read_block(dataset.name, window)) * pixel_area_m2 / 1e4
    ours_carbon, ours_yield, theirs_yield = (
        math.fsum(carbon_parts),
        math.fsum(yield_parts),
        math.fsum(invest_yield_parts),
    )
    return {
        "size": size,
        "gep_kernel_s": round(seconds, 3),
        "carbon_t": {"gep": ours_carbon, "invest": invest_carbon, "rel_diff": abs(ours_carbon / invest_carbon - 1)},
        "water_yield_m3": {"gep": ours_yield, "invest": theirs_yield, "rel_diff": abs(ours_yield / theirs_yield - 1)},
        "water_yield_max_abs_pixel_diff_mm": max_diff,
    }


def write(path: str, array: np.ndarray, dtype: str) -> None:
    """Write a 4 × 4 GeoTIFF in EPSG:32648 with 30 m pixels."""
    profile = {"driver": "GTiff", "width": 4, "height": 4, "count": 1, "crs": "EPSG:32648", "dtype": dtype}
    profile |= {"transform": rasterio.transform.from_origin(500000, 4000000, 30, 30), "nodata": -1}
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(np.broadcast_to(np.asarray(array, dtype), (4, 4))[None])


def worked_examples() -> dict[str, object]:
    """Run InVEST on the reference's T13 and T14 inputs and return its figures next to gep's."""
    import geopandas as gpd
    import pandas as pd
    from natcap.invest import annual_water_yield
    from natcap.invest import carbon as invest_carbon
    from shapely.geometry import box

    work = tempfile.mkdtemp(prefix="gep-invest-")
    try:
        p = lambda name: os.path.join(work, name)  # noqa: E731
        for name, value in (("precip", 500), ("eto", 1000), ("rest", 800), ("pawc", 0.15)):
            write(p(f"{name}.tif"), value, "float32")
        write(p("lulc.tif"), 1, "int32")
        with open(p("bio.csv"), "w") as handle:
            handle.write("lucode,lulc_veg,root_depth,kc\n1,1,1000,0.8\n")
        gpd.GeoDataFrame({"ws_id": [1]}, geometry=[box(500000, 3999880, 500120, 4000000)], crs=32648).to_file(
            p("ws.gpkg")
        )
        annual_water_yield.execute(
            {"workspace_dir": p("awy"), "lulc_path": p("lulc.tif"), "depth_to_root_rest_layer_path": p("rest.tif"),
             "precipitation_path": p("precip.tif"), "pawc_path": p("pawc.tif"), "eto_path": p("eto.tif"),
             "watersheds_path": p("ws.gpkg"), "biophysical_table_path": p("bio.csv"), "seasonality_constant": 5,
             "n_workers": -1}
        )  # fmt: skip
        ws = pd.read_csv(p("awy/output/watershed_results_wyield.csv")).iloc[0]
        with rasterio.open(p("awy/output/per_pixel/wyield.tif")) as dataset:
            invest_pixel = float(dataset.read(1)[0, 0])
        bas = np.array([1] * 4 + [2] * 4 + [3] * 8).reshape(4, 4)
        alt = np.array([1] * 8 + [2] * 4 + [3] * 4).reshape(4, 4)
        write(p("bas.tif"), bas, "int32")
        write(p("alt.tif"), alt, "int32")
        with open(p("pools.csv"), "w") as handle:
            handle.write("lucode,c_above,c_below,c_soil,c_dead\n1,80,20,100,5\n2,5,5,60,0\n3,10,2,40,1\n")
        invest_carbon.execute(
            {"workspace_dir": p("carbon"), "lulc_bas_path": p("bas.tif"), "lulc_alt_path": p("alt.tif"),
             "carbon_pools_path": p("pools.csv"), "calc_sequestration": True, "do_valuation": True,
             "lulc_bas_year": 2020, "lulc_alt_year": 2030, "price_per_metric_ton_of_c": 100.0, "discount_rate": 7.0,
             "rate_change": 0.0, "n_workers": -1}
        )  # fmt: skip
        summary = pd.read_csv(p("carbon/raster_values_summary.csv")).set_index("Filename")["Total"].to_dict()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = water_yield.BiophysicalTable(
        rows={1: water_yield.BiophysicalRow(vegetated=True, root_depth_mm=1000, kc=0.8)}
    )
    ours = water_yield.water_yield_mm(
        np.ones(16), precipitation_mm=np.full(16, 500.0), eto_mm=1000.0, restricting_depth_mm=800.0, pawc=0.15,
        table=table, seasonality_z=5.0,
    )  # fmt: skip
    pools = read_pools_text("1,80,20,100,5\n2,5,5,60,0\n3,10,2,40,1")
    change = carbon.carbon_sequestration_t_per_ha(bas.astype(float), alt.astype(float), pools)
    constant = carbon.valuation_constant(
        price_per_t=100, discount_rate_percent=7, rate_change_percent=0, year_bas=2020, year_alt=2030
    )
    return {
        "T14_wyield_pixel_mm": {"invest": invest_pixel, "gep": float(ours[0])},
        "T14_wyield_vol_m3": {"invest": float(ws["wyield_vol"]), "gep": water_yield.water_yield_volume_m3(ours, 900.0)},
        "T13_totals_t": {
            "invest": [summary["c_storage_bas.tif"], summary["c_storage_alt.tif"], summary["c_change_bas_alt.tif"]],
            "gep": [
                carbon.total_t(carbon.carbon_storage_t_per_ha(bas.astype(float), pools), 900.0),
                carbon.total_t(carbon.carbon_storage_t_per_ha(alt.astype(float), pools), 900.0),
                carbon.total_t(change, 900.0),
            ],
        },
        "T13_npv_total": {
            "invest": summary["npv_alt.tif"],
            "gep": carbon.total_t(carbon.npv_per_ha(change, constant), 900.0),
        },
    }


def read_pools_text(rows: str) -> carbon.CarbonPools:
    """Return pools from ``lucode,above,below,soil,dead`` lines."""
    parsed = [[float(v) for v in line.split(",")] for line in rows.splitlines()]
    return carbon.CarbonPools(
        rows={int(r[0]): carbon.CarbonPool(above=r[1], below=r[2], soil=r[3], dead=r[4]) for r in parsed}
    )


#: Window of the small grid for the golden file: rows 208–271, cols 488–551 hold six of the seven classes
#: (all but built), including the non-vegetated water and bare.
GOLDEN_WINDOW = rasterio.windows.Window(col_off=488, row_off=208, width=64, height=64)


def export_golden(peers: str, size: str, path: str) -> dict[str, object]:
    """Write the golden window (inputs as stored, InVEST outputs) to ``path``."""
    data, out = os.path.join(peers, "data", size), os.path.join(peers, "out", size)
    arrays = {}
    for name in ("lulc", "precip", "et0", "root_depth", "pawc"):
        with rasterio.open(os.path.join(data, f"{name}.tif")) as dataset:
            arrays[name] = dataset.read(1, window=GOLDEN_WINDOW)
    with rasterio.open(os.path.join(out, "carbon", "c_storage_bas.tif")) as dataset:
        arrays["invest_c_storage_bas"] = dataset.read(1, window=GOLDEN_WINDOW)
    with rasterio.open(os.path.join(out, "awy", "output", "per_pixel", "wyield.tif")) as dataset:
        arrays["invest_wyield"] = dataset.read(1, window=GOLDEN_WINDOW)
    np.savez_compressed(path, **arrays)
    return {"path": path, "classes": sorted(int(c) for c in np.unique(arrays["lulc"]))}


def main() -> None:
    """Parse the arguments, run one mode, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default=os.environ.get("PEERS", "../shared/peers"))
    parser.add_argument("--size", choices=("small", "medium", "large"))
    parser.add_argument("--z", type=float, default=1.0)
    parser.add_argument("--worked-examples", action="store_true")
    parser.add_argument("--export-golden", metavar="PATH")
    args = parser.parse_args()
    if args.export_golden:
        result = export_golden(args.peers, args.size or "small", args.export_golden)
    elif args.worked_examples:
        result = worked_examples()
    else:
        result = synthetic(args.peers, args.size or "small", args.z)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
