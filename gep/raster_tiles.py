"""Map tiles and pixel reads of a run's value rasters (the COGs of :mod:`gep.outputs`), by rio-tiler.

A value raster is float64 元 per pixel with NaN for "no value" (outside every region, or no data). A map tile
is a 256-px Web-Mercator PNG: the tile read by ``rio_tiler.io.Reader`` (from the COG's overview nearest the
zoom, so a zoomed-out tile reads a few blocks, not the whole raster), scaled linearly between the raster's
2nd and 98th percentiles (:func:`value_range`, read once from the coarsest overview and kept per file and
modification time) and coloured by a named colour map; NaN is transparent.

A click reads the pixel itself (:func:`pixel_value`: ``Reader.point`` on the full-resolution data of the COG file,
never the coloured tile or an overview), so the value shown is the COG's. Tiles of a CGCS2000 raster read the
same file through a view labelled WGS84 (:data:`CGCS2000`: the same pixels, without PROJ's search per tile).

The difference of two runs (year on year) is read the same way: both runs' tiles at the same Web-Mercator tile,
``after − before`` per screen pixel, on a diverging colour map symmetric about zero.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final

import numpy as np

#: The colour maps of the value layers (rio-tiler's names): sequential for values, diverging for changes.
VALUE_COLORMAP: Final = "ylgn"
CHANGE_COLORMAP: Final = "rdbu"
TILE_SIZE: Final = 256
#: Percentiles bounding the colour scale (outliers do not wash the map out).
LOW_PERCENTILE, HIGH_PERCENTILE = 2.0, 98.0
#: Pixels of the preview read to find the colour scale (the coarsest overview at most this wide).
PREVIEW_SIZE: Final = 512


@dataclass(frozen=True)
class ValueRange:
    """The colour scale of a value raster: ``low`` → first colour, ``high`` → last (元 per pixel)."""

    low: float
    high: float


@dataclass(frozen=True)
class RasterInfo:
    """What the map needs of a value raster: its WGS84 bounds, zoom range and colour scale."""

    bounds: tuple[float, float, float, float]
    min_zoom: int
    max_zoom: int
    scale: ValueRange


def _key(path: Path) -> tuple[str, int]:
    return str(path), os.stat(path).st_mtime_ns


#: CGCS2000 geographic (the grid of the region's runs). PROJ knows no transformation from CGCS2000 to WGS84 and
#: falls back to a "ballpark" one — the identity on coordinates — but only after searching its database for one,
#: each time a warp is set up: 20–60 ms of every tile (measured: 200–500 ms a tile under load against 10–40 ms).
#: Tiles therefore read the COG through a virtual view labelled EPSG:4326 (GDAL's ``vrt://…?a_srs=``): the same
#: file, blocks and overviews, the same pixels on the map (the ballpark transformation is the identity).
CGCS2000: Final = 4490


def _tiling_source(path: Path) -> str:
    return _source(*_key(path))


@lru_cache(maxsize=256)
def _source(path: str, _mtime_ns: int) -> str:
    import rasterio

    with rasterio.open(path) as data:
        same_as_wgs84 = data.crs is not None and data.crs.to_epsg() == CGCS2000
    return f"vrt://{path}?a_srs=EPSG:4326" if same_as_wgs84 else path


def raster_info(path: Path) -> RasterInfo:
    """Return the bounds, zooms and colour scale of a value raster (kept per file and modification time)."""
    return _info(*_key(path))


@lru_cache(maxsize=256)
def _info(path: str, _mtime_ns: int) -> RasterInfo:
    from rio_tiler.io import Reader

    with Reader(_source(path, _mtime_ns)) as src:
        preview = src.preview(max_size=PREVIEW_SIZE)
        west, south, east, north = src.get_geographic_bounds(src.tms.rasterio_geographic_crs)
        with warnings.catch_warnings():  # a raster rio-tiler cannot place on zooms gets the grid's zooms
            warnings.simplefilter("ignore", UserWarning)
            min_zoom, max_zoom = src.minzoom, src.maxzoom
    values = preview.array.compressed() if np.ma.isMaskedArray(preview.array) else preview.array.ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        scale = ValueRange(0.0, 1.0)
    else:
        low, high = np.percentile(values, [LOW_PERCENTILE, HIGH_PERCENTILE])
        scale = ValueRange(float(low), float(high) if high > low else float(low) + 1.0)
    return RasterInfo((west, south, east, north), min_zoom, max_zoom, scale)


def _read_tile(path: Path, z: int, x: int, y: int) -> np.ma.MaskedArray | None:
    from rio_tiler.errors import TileOutsideBounds
    from rio_tiler.io import Reader

    with Reader(_tiling_source(path)) as src:
        if not src.tile_exists(x, y, z):
            return None
        try:
            image = src.tile(x, y, z, tilesize=TILE_SIZE, indexes=1, resampling_method="nearest")
        except TileOutsideBounds:
            return None
    band: np.ma.MaskedArray = np.ma.masked_invalid(image.array[0])
    return band


def _png(band: np.ma.MaskedArray, low: float, high: float, colormap: str) -> bytes:
    """Colour a band through the map's 256-entry table (0: transparent, "no value") and encode it as PNG.

    Encoded by Pillow, not GDAL's PNG driver through a memory file: under concurrent tile requests (the server's
    thread pool) that path failed now and then ("Could not encode array … using PNG driver").
    """
    from PIL import Image

    scaled = np.clip((band.filled(low) - low) / (high - low), 0.0, 1.0) * 254 + 1
    index = np.where(np.ma.getmaskarray(band), 0, scaled).astype(np.uint8)
    rgba = _lookup(colormap)[index]
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


@lru_cache(maxsize=8)
def _lookup(colormap: str) -> np.ndarray:
    table = np.zeros((256, 4), dtype=np.uint8)
    for value, colour in _colours(colormap).items():
        table[value] = colour
    table[0] = (0, 0, 0, 0)
    return table


def value_tile(path: Path, z: int, x: int, y: int, *, colormap: str = VALUE_COLORMAP) -> bytes | None:
    """Return a PNG tile of a value raster, or ``None`` where the raster has no pixel or none with a value."""
    band = _read_tile(path, z, x, y)
    if band is None or band.mask.all():
        return None
    scale = raster_info(path).scale
    return _png(band, scale.low, scale.high, colormap)


def change_range(before: Path, after: Path) -> ValueRange:
    """Return a colour scale symmetric about zero for ``after − before`` (from both rasters' scales)."""
    first, second = raster_info(before).scale, raster_info(after).scale
    reach = max(abs(second.high - first.low), abs(second.low - first.high), abs(second.high - first.high), 1e-9)
    reach = max(abs(first.high - first.low), abs(second.high - second.low), reach) / 4
    return ValueRange(-reach, reach)


def change_tile(before: Path, after: Path, z: int, x: int, y: int, *, scale: ValueRange) -> bytes | None:
    """Return a PNG tile of ``after − before`` per screen pixel, or ``None`` where neither has a value."""
    first, second = _read_tile(before, z, x, y), _read_tile(after, z, x, y)
    if first is None or second is None:
        return None
    difference: np.ma.MaskedArray = second - first
    if np.ma.getmaskarray(difference).all():
        return None
    return _png(difference, scale.low, scale.high, CHANGE_COLORMAP)


def pixel_value(path: Path, lon: float, lat: float) -> float | None:
    """Return the value (元) of the COG's full-resolution pixel at ``lon``/``lat`` (WGS84), ``None`` if none.

    Outside the raster, or on a NaN pixel, there is no value.
    """
    from rio_tiler.errors import PointOutsideBounds
    from rio_tiler.io import Reader

    with Reader(str(path)) as src:
        try:
            point = src.point(lon, lat, indexes=1)
        except PointOutsideBounds:
            return None
    value = float(np.asarray(point.array)[0])
    return None if math.isnan(value) or bool(np.ma.getmaskarray(point.array)[0]) else value


def _colours(colormap: str) -> dict[int, tuple[int, int, int, int]]:
    from rio_tiler.colormap import cmap

    return {int(k): v for k, v in cmap.get(colormap).items()}  # type: ignore[union-attr]


def colour_stops(colormap: str, count: int = 6) -> list[str]:
    """Return ``count`` CSS colours evenly along a colour map (the legend's gradient)."""
    colours = _colours(colormap)
    stops = []
    for i in range(count):
        red, green, blue, _alpha = colours[1 + round(i * 254 / (count - 1))]
        stops.append(f"#{red:02x}{green:02x}{blue:02x}")
    return stops
