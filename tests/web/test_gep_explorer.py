"""The GEP explorer through TestClient (issue 24): a run started from the form, its progress per worker, its
result by region, value tiles from its COGs, a clicked pixel equal to the COG's, two runs compared, downloads,
and who may see it (the GEP API's rules). The browser journey with a real worker is tests/browser."""

from __future__ import annotations

import io
import re
import time
from html import unescape
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from PIL import Image

from core.settings import Settings
from gep import raster_tiles
from gep.outputs import COG_OVERVIEWS
from tests.conftest import PASSWORDS, USER_OF_ROLE
from tests.web.helpers import csrf_of, log_in

#: A point inside the demo townships (Jingyuan, synthetic stack 106.2–106.5° E, 35.35–35.65° N).
POINT = (106.3123, 35.4871)
#: The Web-Mercator tile holding it at zoom 12.
TILE = (12, 3257, 1615)


def start_run(client: TestClient, **fields: Any) -> int:
    page = client.get("/gep/runs/new")
    assert page.status_code == 200, page.text
    html = page.text
    codes = re.findall(r'name="indicators" value="([a-z_]+)" checked', html)
    rasters = [unescape(v) for v in re.findall(r'<option value="([a-z_]+=[^"]+)" selected', html)]
    form = {"csrf_token": csrf_of(html), "name": "Jingyuan 2025 (page)", "year": "2025",
            "region_layer": "jingyuan-townships-synthetic", "prices": "prices_guyuan_2025",
            "indicators": codes, "raster": rasters} | fields  # fmt: skip
    answer = client.post("/gep/runs", data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    run_id = int(answer.headers["location"].rsplit("/", 1)[1])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        progress = client.get(f"/gep/runs/{run_id}/progress")
        if progress.headers.get("HX-Refresh") == "true":
            assert 'data-status="succeeded"' in progress.text, progress.text
            return run_id
        time.sleep(0.3)
    raise AssertionError("the run did not finish")


def wetter_2026(client: TestClient, run_page: str) -> list[str]:
    """Register the synthetic 2026 precipitation (the registry registers rasters) and return the stack with it."""
    token = client.post("/api/v1/auth/token", data={"username": USER_OF_ROLE["registry"],
                        "password": PASSWORDS[USER_OF_ROLE["registry"]]}).json()["access_token"]  # fmt: skip
    body = {
        "name": "gep-jy-precipitation-2026",
        "kind": "continuous",
        "units": "mm",
        "path": "gep_precipitation_mm_2026.tif",
        "description": "SYNTHETIC 2026 precipitation (x1.08)",
    }
    answer = client.post("/api/v1/raster-layers", json=body, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 201, answer.text
    rasters = [
        unescape(v) for v in re.findall(r'<option value="([a-z_]+=[^"]+)" selected', client.get("/gep/runs/new").text)
    ]
    return [r if not r.startswith("precipitation=") else "precipitation=gep-jy-precipitation-2026" for r in rasters]


@pytest.fixture
def bureau(client: TestClient) -> TestClient:
    assert log_in(client, "ecology_bureau").status_code == 303
    return client


def test_a_run_from_the_form_to_the_map(bureau: TestClient, settings: Settings) -> None:
    run_id = start_run(bureau)
    page = bureau.get(f"/gep/runs/{run_id}")
    assert page.status_code == 200
    html = page.text
    assert 'data-testid="region-table"' in html and "SYN-JY-01" in html and 'data-testid="total-gep"' in html
    assert re.search(r"process:[^<]+</td><td class=\"num\">4</td>", html), "every tile recorded with its worker"
    # a tile of the water-conservation value raster, rendered from the run's COG
    z, x, y = TILE
    tile = bureau.get(f"/gep/runs/{run_id}/tiles/water_conservation/{z}/{x}/{y}.png")
    assert tile.status_code == 200 and tile.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(tile.content))
    assert image.size == (256, 256) and image.mode == "RGBA"
    assert bureau.get(f"/gep/runs/{run_id}/tiles/water_conservation/12/0/0.png").status_code == 204
    # the clicked pixel is the COG's
    answer = bureau.get(
        f"/gep/runs/{run_id}/rasters/water_conservation/value", params={"lon": POINT[0], "lat": POINT[1]}
    )
    assert answer.status_code == 200
    cog = bureau.get(f"/gep/runs/{run_id}/rasters/water_conservation.tif")
    assert cog.status_code == 200
    path = settings.data_dir / "cog.tif"
    path.write_bytes(cog.content)
    with rasterio.open(path) as data:
        expected = float(next(data.sample([POINT]))[0])
    assert float(answer.json()["value"]) == expected
    # downloads: SEEA tables as CSV and XLSX
    csv = bureau.get(f"/gep/runs/{run_id}/tables/summary.csv")
    assert csv.status_code == 200 and "region_code" in csv.text
    book = load_workbook(io.BytesIO(bureau.get(f"/gep/runs/{run_id}/tables.xlsx").content))
    assert len(book.sheetnames) >= 5
    # year on year: a 2026 run on the wetter synthetic precipitation, compared
    other = start_run(bureau, name="Jingyuan 2026", year="2026", raster=wetter_2026(bureau, html))
    compared = bureau.get(f"/gep/runs/{other}", params={"compare": run_id})
    assert compared.status_code == 200 and 'data-testid="change-table"' in compared.text
    change = bureau.get(f"/gep/runs/{run_id}/compare/{other}/tiles/water_conservation/{z}/{x}/{y}.png")
    assert change.status_code == 200 and change.headers["content-type"] == "image/png"
    assert bureau.get(f"/gep/runs/{run_id}/compare/{other}.csv").status_code == 200
    listing = bureau.get("/gep/runs").text
    assert f"/gep/runs/{run_id}" in listing and f"/gep/runs/{other}" in listing


def test_bad_input_is_a_problem_page_and_nothing_is_recorded(bureau: TestClient) -> None:
    before = bureau.get("/gep/runs").text.count('href="/gep/runs/')
    html = bureau.get("/gep/runs/new").text
    form = {
        "csrf_token": csrf_of(html),
        "name": "x",
        "year": "2025",
        "region_layer": "jingyuan-townships-synthetic",
        "prices": "prices_guyuan_2025",
        "indicators": ["water_conservation"],
        "raster": ["precipitation=nope"],
    }
    answer = bureau.post("/gep/runs", data=form, follow_redirects=False)
    assert answer.status_code == 422, answer.text
    assert bureau.get("/gep/runs").text.count('href="/gep/runs/') == before


def test_who_may_see_the_explorer(client: TestClient) -> None:
    assert log_in(client, "auditor").status_code == 303
    assert client.get("/gep/runs").status_code == 200
    assert client.get("/gep/runs/new").status_code == 403
    client.cookies.clear()
    assert log_in(client, "forestry_bureau").status_code == 303
    assert client.get("/gep/runs").status_code == 403


def test_value_cogs_have_overviews_and_tiles_at_every_zoom(tmp_path: Path) -> None:
    from affine import Affine
    from rasterio.shutil import copy as rio_copy

    size = 2048
    values = np.random.default_rng(24).random((size, size)) * 100
    values[:64] = np.nan
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 1, "dtype": "float64", "nodata": np.nan,
               "crs": "EPSG:4490", "transform": Affine(0.3 / size, 0, 106.2, 0, -0.3 / size, 35.65),
               "tiled": True, "blockxsize": 256, "blockysize": 256}  # fmt: skip
    with rasterio.open(tmp_path / "staging.tif", "w", **profile) as out:
        out.write(values, 1)
    cog = tmp_path / "value.tif"
    rio_copy(tmp_path / "staging.tif", cog, driver="COG", compress="DEFLATE", predictor="3", **COG_OVERVIEWS)
    with rasterio.open(cog) as data:
        assert data.overviews(1) == [2, 4, 8]
        expected = float(next(data.sample([POINT]))[0])
    info = raster_tiles.raster_info(cog)
    assert 0 <= info.scale.low < info.scale.high <= 100
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    from rio_tiler.io import Reader

    for zoom in range(info.min_zoom, info.max_zoom + 1):
        tile = tms.tile(POINT[0], POINT[1], zoom)
        assert raster_tiles.value_tile(cog, tile.z, tile.x, tile.y) is not None, zoom
        # the WGS84-labelled view of the CGCS2000 file gives the very pixels of the file warped as CGCS2000
        with Reader(str(cog)) as src:
            direct = src.tile(tile.x, tile.y, tile.z, tilesize=256, indexes=1, resampling_method="nearest").array[0]
        viewed = raster_tiles._read_tile(cog, tile.z, tile.x, tile.y)
        assert viewed is not None
        assert np.array_equal(np.ma.filled(np.ma.masked_invalid(direct), -1.0), viewed.filled(-1.0)), zoom
    assert raster_tiles.pixel_value(cog, *POINT) == expected
    assert raster_tiles.pixel_value(cog, 100.0, 30.0) is None
    assert raster_tiles.pixel_value(cog, 106.25, 35.649) is None  # a NaN row
