"""Regenerate the sample plot files (synthetic): a Gauss-Krüger Shapefile with GBK attributes and a GeoPackage.

* ``plots_gk35_gbk.zip`` — three sub-compartments in the west of Jingyuan county (640424), drawn as rectangles in
  CGCS2000 3-degree Gauss-Krüger zone 35 (EPSG:4523, zone prefix in the easting), attributes in Chinese
  column names encoded GBK, with a ``.cpg``; one carries a CCER registration id.
* ``plots_yongning.gpkg`` — three restoration patches south of the Yongning demo plot, EPSG:4490; the third
  declares 450 mu for its ~525 mu on purpose, to show the declared-area warning.

Run: ``.venv/bin/python samples/make_plot_files.py``.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from tempfile import TemporaryDirectory

from shapely.geometry import box

from geodata.writers import write_layer

HERE = Path(__file__).parent

# (easting, northing) of the south-west corner in EPSG:4523, width and height in metres.
GK_PLOTS = [
    ({"小班号": "JY-W-001", "名称": "泾源西片一号小班", "树种": "油松", "造林年度": 2019, "面积_亩": 600.0,
      "地类": "乔木林地", "县代码": "640424"}, (35_618_000, 3_927_000, 1000, 400)),
    ({"小班号": "JY-W-002", "名称": "泾源西片二号小班", "树种": "华北落叶松", "造林年度": 2020, "面积_亩": 450.0,
      "地类": "乔木林地", "县代码": "640424"}, (35_619_500, 3_927_000, 500, 600)),
    ({"小班号": "JY-W-003", "名称": "泾源西片三号小班", "树种": "山杏", "造林年度": 2018, "面积_亩": 300.0,
      "地类": "灌木林地", "县代码": "640424", "CCER": "CCER-14-001-DEMO-0003"}, (35_618_000, 3_928_000, 300, 666.667)),
]  # fmt: skip

GPKG_PLOTS = [
    ({"code": "YN-S-001", "name": "Yongning south patch 1", "species": "Caragana korshinskii", "planting_year": 2023,
      "area_mu": 1020.0, "land_use": "ecological restoration"}, (106.030, 38.220, 106.040, 38.227)),
    ({"code": "YN-S-002", "name": "Yongning south patch 2", "species": "Ulmus pumila", "planting_year": 2023,
      "area_mu": 612.0, "land_use": "ecological restoration"}, (106.045, 38.220, 106.052, 38.226)),
    ({"code": "YN-S-003", "name": "Yongning south patch 3", "species": "Caragana korshinskii", "planting_year": 2024,
      "area_mu": 450.0, "land_use": "ecological restoration"}, (106.030, 38.230, 106.036, 38.236)),
]  # fmt: skip


def shapefile_zip() -> bytes:
    """Return the zipped GK Shapefile."""
    features = [(p, box(x, y, x + w, y + h)) for p, (x, y, w, h) in GK_PLOTS]
    with TemporaryDirectory() as folder:
        write_layer(Path(folder) / "plots.shp", features, crs="EPSG:4523", driver="ESRI Shapefile", encoding="GBK")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for part in sorted(Path(folder).iterdir()):
                archive.write(part, part.name)
    return buffer.getvalue()


def main() -> None:
    """Write both files beside this script."""
    (HERE / "plots_gk35_gbk.zip").write_bytes(shapefile_zip())
    gpkg = HERE / "plots_yongning.gpkg"
    gpkg.unlink(missing_ok=True)
    write_layer(gpkg, [(p, box(*b)) for p, b in GPKG_PLOTS], crs="EPSG:4490", driver="GPKG")


if __name__ == "__main__":
    main()
