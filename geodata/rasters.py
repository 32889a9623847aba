"""Raster layers: registration from the server's raster directory, safe opening, windowed block reads.

* A layer is registered by name from a path *relative to the raster directory*; absolute paths, ``..``
  and symlinks leading outside the directory are refused, and only the GeoTIFF driver may open it
  (a COG is a GeoTIFF). Users never supply paths: they name registered layers.
* :func:`iter_windows` yields row-block windows so that a computation over a raster of any size holds
  only one block in memory (the engine that GEP kernels and zonal pre-passes run on).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.bounds import control_characters
from core.clock import Clock
from core.errors import Conflict, InvalidInput, NotFound
from geodata.models import RasterKind, RasterLayer

ALLOWED_DRIVERS = ["GTiff"]
#: GDAL settings for every raster open: no directory scans, no network file systems.
GDAL_ENV = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".none"}


class RegisterRasterLayer(BaseModel):
    """Command: register a raster file of the raster directory as a named layer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_\-.]*$")
    kind: RasterKind
    units: str = Field(min_length=1, max_length=50, examples=["t/ha", "class"])
    path: str = Field(min_length=1, max_length=500, description="Relative to the server's raster directory.")
    description: str = Field(default="", max_length=5000)
    class_names: dict[str, str] = Field(default_factory=dict, description="Class value → name (categorical).")


#: Longest name of one path component in bytes (``NAME_MAX`` of Linux file systems) and of a whole relative path.
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 1024


def raster_path_problems(relative: str) -> list[str]:
    r"""Return why ``relative`` cannot name a file (control characters, a name or path too long), or nothing.

    >>> raster_path_problems("agb/" + "a" * 300 + ".tif")
    ['a path component is longer than 255 bytes']
    >>> raster_path_problems("agb\x00.tif")
    ['the path contains control characters (U+0000)']
    """
    problems: list[str] = []
    found = control_characters(relative)
    if found:
        problems.append(f"the path contains control characters ({', '.join(found)})")
    encoded = relative.encode("utf-8", errors="surrogatepass")
    if len(encoded) > MAX_PATH_BYTES:
        problems.append(f"the path is longer than {MAX_PATH_BYTES} bytes")
    if any(len(part) > MAX_NAME_BYTES for part in encoded.split(b"/")):
        problems.append(f"a path component is longer than {MAX_NAME_BYTES} bytes")
    return problems


def resolve_path(raster_dir: Path, relative: str) -> Path:
    """Return the file ``relative`` inside ``raster_dir``, refusing anything that leaves it.

    >>> import tempfile
    >>> resolve_path(Path(tempfile.gettempdir()), "../etc/passwd")
    Traceback (most recent call last):
    ...
    core.errors.InvalidInput: raster paths are relative to the raster directory and stay inside it
    """
    problems = raster_path_problems(relative)
    if problems:
        raise InvalidInput(f"the raster path is not a usable file name: {'; '.join(problems)}",
                           [{"pointer": "/path", "reason": reason} for reason in problems])  # fmt: skip
    candidate = Path(relative)
    root = raster_dir.resolve()
    if candidate.is_absolute() or ".." in candidate.parts:
        raise InvalidInput(
            "raster paths are relative to the raster directory and stay inside it", [{"pointer": "/path"}]
        )
    resolved = (root / candidate).resolve()
    if not resolved.is_relative_to(root) or not resolved.is_file():
        raise InvalidInput(f"no raster file {relative!r} in the raster directory", [{"pointer": "/path"}])
    return resolved


@contextmanager
def open_raster(path: Path) -> Iterator[Any]:
    """Open a GeoTIFF for reading with the restricted driver list and GDAL settings."""
    import rasterio
    from rasterio.errors import RasterioIOError

    with rasterio.Env(**GDAL_ENV):
        try:
            dataset = rasterio.open(path, driver=ALLOWED_DRIVERS[0])
        except RasterioIOError as error:
            raise InvalidInput(f"not a readable GeoTIFF: {error}", [{"pointer": "/path"}]) from error
        with dataset:
            yield dataset


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def register_layer(
    session: Session, cmd: RegisterRasterLayer, *, raster_dir: Path, actor: str, clock: Clock
) -> RasterLayer:
    """Register a raster layer; commits with its audit entry."""
    if session.scalars(select(RasterLayer).where(RasterLayer.name == cmd.name)).first() is not None:
        raise Conflict(f"a raster layer named {cmd.name!r} exists")
    path = resolve_path(raster_dir, cmd.path)
    with open_raster(path) as dataset:
        if dataset.crs is None:
            raise InvalidInput("the raster has no CRS", [{"pointer": "/path"}])
        layer = RasterLayer(
            name=cmd.name,
            kind=cmd.kind,
            units=cmd.units,
            description=cmd.description,
            path=str(path.relative_to(raster_dir.resolve())),
            crs=dataset.crs.to_string(),
            width=dataset.width,
            height=dataset.height,
            transform=list(dataset.transform)[:6],
            nodata=dataset.nodata,
            class_names=dict(cmd.class_names),
            sha256=_sha256(path),
            created_at=clock.now(),
            created_by=actor,
        )
    session.add(layer)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="raster_layer.registered",
        subject=f"raster_layer:{layer.id}",
        payload={"name": layer.name, "path": layer.path, "sha256": layer.sha256, "crs": layer.crs},
        clock=clock,
    )
    session.commit()
    return layer


def layer_file(raster_dir: Path, layer: RasterLayer) -> Path:
    """Return the file of a registered layer after checking it still has its registered SHA-256.

    Calculations record the layer's name and hash; refusing a changed file keeps them reproducible.

    Raises:
        Conflict: The file changed since the layer was registered.
    """
    path = resolve_path(raster_dir, layer.path)
    if _sha256(path) != layer.sha256:
        raise Conflict(f"raster layer {layer.name!r} changed on disk since it was registered (SHA-256 differs)")
    return path


def get_layer(session: Session, name: str) -> RasterLayer:
    """Return a registered layer by name or raise :class:`NotFound`."""
    layer = session.scalars(select(RasterLayer).where(RasterLayer.name == name)).first()
    if layer is None:
        raise NotFound(f"no raster layer named {name!r}")
    return layer


def list_layers(session: Session) -> list[RasterLayer]:
    """Return every registered layer by name."""
    return list(session.scalars(select(RasterLayer).order_by(RasterLayer.name)))


def iter_windows(width: int, height: int, max_pixels: int = 4_000_000) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(col_off, row_off, width, height)`` row blocks of at most ``max_pixels`` pixels.

    >>> list(iter_windows(4, 5, max_pixels=8))
    [(0, 0, 4, 2), (0, 2, 4, 2), (0, 4, 4, 1)]
    """
    rows = max(1, max_pixels // max(width, 1))
    for row in range(0, height, rows):
        yield 0, row, width, min(rows, height - row)
