"""Read uploaded plot files into features, treating GDAL as the attack surface it is.

Formats: GeoJSON (RFC 7946), zipped ESRI Shapefile (``.shp``/``.shx``/``.dbf`` with ``.prj`` and
``.cpg``), GeoPackage, KML, and CSV with a WKT column. Rules:

* The format is decided by the file name *and* confirmed by its content (magic bytes, XML root,
  JSON); a VRT or anything else disguised as a GeoPackage or Shapefile is refused before GDAL sees it.
* Only two formats reach GDAL (via pyogrio): Shapefile and GeoPackage. Their bytes are written under
  names of our choosing into a private temporary directory and opened there, and the driver GDAL
  reports must be the expected one. GeoJSON, KML and CSV are parsed in Python: GDAL's KML drivers can
  follow network links, and the platform does not need them to.
* Archives are inspected before extraction: no absolute or parent paths (zip-slip), a bounded number
  of members and expanded size, a bounded compression ratio (zip bombs), exactly one ``.shp``.
* Shapefile attributes are decoded with the ``.cpg`` when present, else UTF-8, else GBK (the code page
  of most Chinese inventory exports); the encoding used is reported.

Geometries are returned in the file's own CRS; ``geodata.crs`` reprojects them.
"""

from __future__ import annotations

import csv
import enum
import io
import json
import tempfile
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from xml.etree import ElementTree

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from core.errors import UnreadableFile


class PlotFormat(enum.StrEnum):
    """Upload formats."""

    GEOJSON = "geojson"
    SHAPEFILE_ZIP = "shapefile"
    GEOPACKAGE = "gpkg"
    KML = "kml"
    CSV_WKT = "csv"


EXTENSIONS = {
    ".geojson": PlotFormat.GEOJSON,
    ".json": PlotFormat.GEOJSON,
    ".zip": PlotFormat.SHAPEFILE_ZIP,
    ".gpkg": PlotFormat.GEOPACKAGE,
    ".kml": PlotFormat.KML,
    ".csv": PlotFormat.CSV_WKT,
}
SHAPEFILE_PARTS = {".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".xml"}
GDAL_DRIVERS = {PlotFormat.SHAPEFILE_ZIP: "ESRI Shapefile", PlotFormat.GEOPACKAGE: "GPKG"}
WKT_COLUMNS = ("wkt", "geometry", "geom", "the_geom")
KML_NS = "{http://www.opengis.net/kml/2.2}"


@dataclass(frozen=True)
class ReadLimits:
    """Bounds on what one upload may expand to."""

    max_expanded_bytes: int = 512 * 1024 * 1024
    max_archive_members: int = 64
    max_compression_ratio: int = 200
    max_features: int = 100_000


@dataclass
class RawLayer:
    """Features as read: properties and geometry in the file's CRS (``None`` when the file has none)."""

    format: PlotFormat
    crs: str | None
    features: list[tuple[dict[str, Any], BaseGeometry | None]]
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)


def _refuse(reason: str, **extra: Any) -> UnreadableFile:
    return UnreadableFile(reason, [{"reason": reason, **extra}])


def detect_format(filename: str) -> PlotFormat:
    """Return the format named by the file's extension.

    >>> detect_format("plots.GPKG")
    <PlotFormat.GEOPACKAGE: 'gpkg'>
    """
    suffix = PurePosixPath(filename.lower()).suffix
    if suffix not in EXTENSIONS:
        raise _refuse(f"unsupported file type {suffix or '(none)'!r}; use one of {', '.join(sorted(EXTENSIONS))}")
    return EXTENSIONS[suffix]


def check_container(data: bytes, filename: str, limits: ReadLimits | None = None) -> PlotFormat:
    """Check, cheaply and without GDAL, that a file is what its name says (run before queueing a job).

    Archives are inspected in full (paths, sizes, ratios, members); GeoPackages by their header; the
    features themselves are read by the job.
    """
    limits = limits or ReadLimits()
    kind = detect_format(filename)
    if not data:
        raise _refuse("the file is empty")
    if kind is PlotFormat.SHAPEFILE_ZIP:
        _shapefile_parts(data, limits)
    elif kind is PlotFormat.GEOPACKAGE:
        _check_geopackage(data)
    elif kind is PlotFormat.KML:
        _kml_root(data)
    return kind


def read_plot_file(data: bytes, filename: str, limits: ReadLimits | None = None) -> RawLayer:
    """Read an uploaded Shapefile zip, GeoPackage, KML or CSV file (GeoJSON: :func:`read_geojson_document`).

    Raises:
        UnreadableFile: For anything not exactly what it claims to be.
    """
    limits = limits or ReadLimits()
    kind = detect_format(filename)
    if kind is PlotFormat.GEOJSON:
        raise _refuse("GeoJSON files are decoded with read_geojson_document")
    readers = {
        PlotFormat.SHAPEFILE_ZIP: _read_shapefile_zip,
        PlotFormat.GEOPACKAGE: _read_geopackage,
        PlotFormat.KML: _read_kml,
        PlotFormat.CSV_WKT: _read_csv,
    }
    layer = readers[kind](data, limits)
    if len(layer.features) > limits.max_features:
        raise _refuse(f"{len(layer.features)} features exceed the limit of {limits.max_features} per upload")
    return layer


# --- GeoJSON ---------------------------------------------------------------------------------------


def read_geojson_document(data: bytes) -> Any:
    """Decode a GeoJSON file; its structure is checked by ``geodata.validation.parse_features``."""
    try:
        return json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _refuse(f"not a GeoJSON file: {error}") from error


# --- Shapefile in a zip ------------------------------------------------------------------------------


def _check_archive(archive: zipfile.ZipFile, size: int, limits: ReadLimits) -> dict[str, zipfile.ZipInfo]:
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) > limits.max_archive_members:
        raise _refuse(f"the archive holds {len(members)} files; at most {limits.max_archive_members} are allowed")
    expanded = 0
    parts: dict[str, zipfile.ZipInfo] = {}
    for member in members:
        path = PurePosixPath(member.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or member.filename.startswith(("/", "\\")) or ":" in path.parts[0]:
            raise _refuse(f"unsafe path in archive: {member.filename!r}")
        expanded += member.file_size
        if member.compress_size and member.file_size / member.compress_size > limits.max_compression_ratio:
            raise _refuse(
                f"{member.filename!r} expands more than {limits.max_compression_ratio}x: refused as a zip bomb"
            )
        suffix = path.suffix.lower()
        if path.name.startswith(".") or "__MACOSX" in path.parts:
            continue
        if suffix not in SHAPEFILE_PARTS:
            raise _refuse(f"unexpected file {member.filename!r} in a Shapefile archive")
        if suffix in parts:
            raise _refuse(f"the archive holds more than one {suffix} file; upload one layer per archive")
        parts[suffix] = member
    if expanded > limits.max_expanded_bytes or expanded > size * limits.max_compression_ratio:
        raise _refuse(f"the archive expands to {expanded} bytes, over the limit")
    missing = {".shp", ".shx", ".dbf"} - set(parts)
    if missing:
        raise _refuse(f"the Shapefile is incomplete: missing {', '.join(sorted(missing))}")
    return parts


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bytes:
    # Read at most the declared size + 1 byte: a lying header cannot make us expand more than we checked.
    with archive.open(member) as handle:
        content = handle.read(member.file_size + 1)
    if len(content) != member.file_size:
        raise _refuse(f"{member.filename!r} does not match its declared size")
    return content


def _shapefile_parts(data: bytes, limits: ReadLimits) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise _refuse(f"not a valid zip archive: {error}") from error
    with archive:
        parts = _check_archive(archive, len(data), limits)
        try:
            contents = {suffix: _read_member(archive, member) for suffix, member in parts.items()}
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise _refuse(f"corrupt zip archive: {error}") from error
    if contents[".shp"][:4] != b"\x00\x00\x27\x0a":  # file code 9994, big-endian
        raise _refuse("the .shp member is not an ESRI Shapefile")
    return contents


def _read_shapefile_zip(data: bytes, limits: ReadLimits) -> RawLayer:
    contents = _shapefile_parts(data, limits)
    crs = contents[".prj"].decode("utf-8", errors="replace").strip() if ".prj" in contents else None
    declared = contents[".cpg"].decode("ascii", errors="replace").strip() if ".cpg" in contents else None
    with tempfile.TemporaryDirectory(prefix="shanhai-upload-") as folder:
        for suffix in (".shp", ".shx", ".dbf"):
            (Path(folder) / f"layer{suffix}").write_bytes(contents[suffix])
        path = Path(folder) / "layer.shp"
        layer = _read_with_gdal(path, PlotFormat.SHAPEFILE_ZIP, crs, _encodings(declared))
    if crs is None:
        layer.notes.append("no .prj in the archive")
    return layer


def _encodings(declared: str | None) -> list[str]:
    if declared:
        normalised = {"936": "GBK", "CP936": "GBK", "65001": "UTF-8"}.get(declared.upper(), declared)
        return [normalised]
    return ["UTF-8", "GBK"]


# --- GeoPackage ---------------------------------------------------------------------------------------


def _check_geopackage(data: bytes) -> None:
    if not data.startswith(b"SQLite format 3\x00") or data[68:72] not in (b"GPKG", b"GP10", b"GP11"):
        raise _refuse("not a GeoPackage (SQLite header with the GPKG application id expected)")


def _read_geopackage(data: bytes, _limits: ReadLimits) -> RawLayer:
    _check_geopackage(data)
    with tempfile.TemporaryDirectory(prefix="shanhai-upload-") as folder:
        path = Path(folder) / "layer.gpkg"
        path.write_bytes(data)
        return _read_with_gdal(path, PlotFormat.GEOPACKAGE, None, [None])


# --- GDAL (pyogrio) -----------------------------------------------------------------------------------


def _read_with_gdal(path: Path, kind: PlotFormat, crs: str | None, encodings: Sequence[str | None]) -> RawLayer:
    # GDAL's warnings (e.g. on a damaged GeoPackage header) are kept as notes, not raised or lost.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer = _gdal_layer(path, kind, crs, encodings)
    layer.notes.extend(str(w.message) for w in caught)
    return layer


def _gdal_layer(path: Path, kind: PlotFormat, crs: str | None, encodings: Sequence[str | None]) -> RawLayer:
    import pyogrio
    from pyogrio.errors import DataLayerError, DataSourceError

    try:
        info = pyogrio.read_info(path)
    except (DataSourceError, DataLayerError) as error:
        raise _refuse(f"GDAL cannot open the file: {error}") from error
    if info["driver"] != GDAL_DRIVERS[kind]:
        raise _refuse(f"the file opened as {info['driver']!r}, not {GDAL_DRIVERS[kind]!r}")
    last_error: Exception | None = None
    for encoding in encodings:
        try:
            meta, _fids, geometries, columns = pyogrio.raw.read(path, encoding=encoding, force_2d=True)
        except (UnicodeDecodeError, DataSourceError, DataLayerError) as error:
            last_error = error
            continue
        names = [str(n) for n in meta["fields"]]
        features = [
            (
                {name: _plain(values[i]) for name, values in zip(names, columns, strict=True)},
                shapely.from_wkb(geometries[i]) if geometries[i] is not None else None,
            )
            for i in range(len(geometries))
        ]
        return RawLayer(kind, crs or meta.get("crs"), features, encoding or meta.get("encoding"))
    raise _refuse(f"attributes cannot be decoded as {' or '.join(str(e) for e in encodings)}: {last_error}")


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()  # numpy scalar → Python
    if isinstance(value, float) and value != value:  # NaN → missing
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


# --- KML ----------------------------------------------------------------------------------------------


def _kml_ring(element: ElementTree.Element | None) -> list[tuple[float, float]]:
    text = element.findtext(f"{KML_NS}LinearRing/{KML_NS}coordinates") if element is not None else None
    if not text:
        return []
    try:
        return [(float(p.split(",")[0]), float(p.split(",")[1])) for p in text.split()]
    except (ValueError, IndexError) as error:
        raise _refuse(f"bad KML coordinates: {error}") from error


def _kml_polygon(element: ElementTree.Element) -> Polygon:
    shell = _kml_ring(element.find(f"{KML_NS}outerBoundaryIs"))
    holes = [_kml_ring(e) for e in element.findall(f"{KML_NS}innerBoundaryIs")]
    return Polygon(shell, [h for h in holes if h])


def _kml_root(data: bytes) -> ElementTree.Element:
    if b"<!DOCTYPE" in data[:4096].upper() or b"<!ENTITY" in data.upper():
        raise _refuse("KML with a DOCTYPE or entity declarations is refused")
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as error:
        raise _refuse(f"not a KML file: {error}") from error
    if root.tag != f"{KML_NS}kml":
        raise _refuse("not a KML 2.2 document")
    return root


def _read_kml(data: bytes, _limits: ReadLimits) -> RawLayer:
    root = _kml_root(data)
    features: list[tuple[dict[str, Any], BaseGeometry | None]] = []
    for placemark in root.iter(f"{KML_NS}Placemark"):
        properties: dict[str, Any] = {}
        if (name := placemark.findtext(f"{KML_NS}name")) is not None:
            properties["name"] = name.strip()
        for datum in placemark.iter(f"{KML_NS}Data"):
            properties[datum.get("name", "")] = datum.findtext(f"{KML_NS}value")
        for simple in placemark.iter(f"{KML_NS}SimpleData"):
            properties[simple.get("name", "")] = simple.text
        polygons = [_kml_polygon(p) for p in placemark.iter(f"{KML_NS}Polygon")]
        geometry = MultiPolygon(polygons) if polygons else None
        features.append((properties, geometry))
    # KML is WGS84 lon/lat by definition (OGC 07-147r2 §6.2).
    return RawLayer(PlotFormat.KML, "EPSG:4326", features)


# --- CSV with WKT ---------------------------------------------------------------------------------------


def _read_csv(data: bytes, _limits: ReadLimits) -> RawLayer:
    for encoding in ("utf-8-sig", "gbk"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise _refuse("the CSV is neither UTF-8 nor GBK")
    rows = list(csv.DictReader(io.StringIO(text)))
    fields = list(rows[0]) if rows else []
    column = next((f for f in fields if f.strip().lower() in WKT_COLUMNS), None)
    if column is None:
        raise _refuse(f"the CSV needs a WKT column named one of {', '.join(WKT_COLUMNS)}")
    features: list[tuple[dict[str, Any], BaseGeometry | None]] = []
    for row in rows:
        wkt = row.pop(column) or ""
        try:
            geometry = shapely.from_wkt(wkt) if wkt.strip() else None
        except shapely.errors.GEOSException:
            geometry = None
            row["__problem__"] = "the WKT cannot be parsed"
        features.append((dict(row), geometry))
    crs_column = next((f for f in fields if f.strip().lower() in ("crs", "srid", "epsg")), None)
    crs = rows[0][crs_column] if rows and crs_column else None
    if crs and crs.isdigit():
        crs = f"EPSG:{crs}"
    return RawLayer(
        PlotFormat.CSV_WKT, crs, [({k: v for k, v in p.items() if k != crs_column}, g) for p, g in features], encoding
    )
