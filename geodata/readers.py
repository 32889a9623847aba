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
* Files are read from a path or a binary stream, never as one more copy of the upload in memory, and
  the limits are enforced *while* reading: features and vertices are counted as they are parsed (GeoJSON
  by a streaming parser that also bounds the nesting depth, KML by an incremental parser, GDAL formats
  batch by batch, CSV row by row), so a hostile file is refused as soon as it crosses a limit, not after
  it has been parsed whole. CSV fields may be as long as the upload itself.

Geometries are returned in the file's own CRS; ``geodata.crs`` reprojects them.
"""

from __future__ import annotations

import codecs
import csv
import enum
import io
import shutil
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any
from xml.etree import ElementTree

import ijson
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from core.errors import InvalidGeometry, InvalidInput, UnreadableFile
from geodata import messages


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
    #: Vertices of one feature; ``geodata.intake`` sets it from the ``GeometryLimits`` it checks with.
    max_vertices: int = 100_000
    #: JSON nesting depth; a GeoJSON FeatureCollection needs 7 levels, properties a few more.
    max_json_depth: int = 64


#: An upload as the readers take it: its bytes (small files, tests), a path, or a binary stream.
Source = bytes | Path | IO[bytes]
#: GDAL formats are read this many features at a time, the limits checked after each batch.
GDAL_BATCH_FEATURES = 2_000


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


@contextmanager
def open_source(source: Source) -> Iterator[IO[bytes]]:
    """Yield a seekable binary stream over ``source`` (a stream given is rewound and left open)."""
    if isinstance(source, bytes):
        yield io.BytesIO(source)
    elif isinstance(source, Path):
        with source.open("rb") as handle:
            yield handle
    else:
        source.seek(0)
        yield source


def check_container(source: Source, filename: str, limits: ReadLimits | None = None) -> PlotFormat:
    """Check, cheaply and without GDAL, that a file is what its name says (run before queueing a job).

    Archives are inspected in full (paths, sizes, ratios, members); GeoPackages and KML by their
    header; the features themselves are read by the job. Reads the stream without keeping it.
    """
    limits = limits or ReadLimits()
    kind = detect_format(filename)
    with open_source(source) as stream:
        head = stream.read(4096)
        if not head:
            raise _refuse("the file is empty")
        if kind is PlotFormat.SHAPEFILE_ZIP:
            with _shapefile_archive(stream, limits):
                pass
        elif kind is PlotFormat.GEOPACKAGE:
            _check_geopackage(head)
        elif kind is PlotFormat.KML:
            _check_kml_head(head)
    return kind


def read_plot_file(source: Source, filename: str, limits: ReadLimits | None = None) -> RawLayer:
    """Read an uploaded Shapefile zip, GeoPackage, KML or CSV file (GeoJSON: :func:`read_geojson_document`).

    Raises:
        UnreadableFile: For anything not exactly what it claims to be, or over a feature limit.
        InvalidGeometry: A feature has more vertices than ``limits.max_vertices``.
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
    with open_source(source) as stream:
        return readers[kind](stream, limits)


def _too_many_features(limits: ReadLimits, count: int | None = None) -> UnreadableFile:
    counted = f"{count} features exceed" if count is not None else "the file holds more features than"
    return _refuse(f"{counted} the limit of {limits.max_features} per upload")


def _too_many_vertices(index: int, limits: ReadLimits, pointer: str | None = None) -> InvalidGeometry:
    reason = messages.TOO_MANY_VERTICES_WHILE_READING.format(limit=limits.max_vertices)
    problem = {"feature_index": index, "plot_code": None, "reason": reason, "location": None, "pointer": pointer}
    return InvalidGeometry(f"feature {index} refused: {reason}; nothing was stored", [problem])


def _check_counts(features: int, vertices: int, limits: ReadLimits) -> None:
    """Refuse the ``features``-th feature (1-based) when it is over the feature or vertex limit."""
    if features > limits.max_features:
        raise _too_many_features(limits)
    if vertices > limits.max_vertices:
        raise _too_many_vertices(features - 1, limits)


# --- GeoJSON ---------------------------------------------------------------------------------------


#: Called with (index, feature) for each element of a FeatureCollection's ``features`` as it is read.
FeatureSink = Callable[[int, Any], None]


def read_geojson_document(
    source: Source, limits: ReadLimits | None = None, on_feature: FeatureSink | None = None
) -> Any:
    """Decode a GeoJSON file; its structure is checked by ``geodata.validation.parse_features``.

    The file is parsed as a stream of events and the document built from them, counting as it goes:
    nesting deeper than ``limits.max_json_depth``, more features than ``limits.max_features`` or a
    feature with more positions than ``limits.max_vertices`` stops the parse at once. With
    ``on_feature``, each element of the top-level ``features`` array is handed to it as soon as it is
    complete and left out of the returned document, so only one feature's JSON is held at a time.

    >>> read_geojson_document(b'{"type": "Feature", "geometry": null, "properties": {"n": [1.5, 2]}}')
    {'type': 'Feature', 'geometry': None, 'properties': {'n': [1.5, 2]}}
    >>> read_geojson_document(b"[" * 100_000 + b"]" * 100_000)
    Traceback (most recent call last):
    ...
    core.errors.UnreadableFile: the JSON nests deeper than 64 levels
    """
    limits = limits or ReadLimits()
    with open_source(source) as stream:
        if stream.read(3) != codecs.BOM_UTF8:
            stream.seek(0)
        try:
            return _GeoJsonBuilder(limits, on_feature).build(ijson.basic_parse(stream, use_float=True))
        except ijson.JSONError as error:
            raise _refuse(f"not a GeoJSON file: {error}") from error


def check_json_depth(document: Any, max_depth: int = ReadLimits.max_json_depth) -> None:
    """Refuse a decoded JSON document nested deeper than ``max_depth`` (checked without recursion).

    A document decoded elsewhere (a request body) may nest up to Python's recursion limit, and the
    recursive code after it (encoders, hashing) would fail on it: it is refused with a clear problem.

    >>> check_json_depth({"a": [[1]]}, max_depth=3)
    >>> check_json_depth({"a": [[[1]]]}, max_depth=3)
    Traceback (most recent call last):
    ...
    core.errors.InvalidInput: the JSON nests deeper than 3 levels
    """
    stack: list[tuple[Any, int]] = [(document, 1)] if isinstance(document, dict | list) else []
    while stack:
        value, depth = stack.pop()
        if depth > max_depth:
            message = f"the JSON nests deeper than {max_depth} levels"
            raise InvalidInput(message, [{"reason": message, "pointer": ""}])
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


class _GeoJsonBuilder:
    """Builds a JSON document from ``ijson`` events, refusing it as soon as it crosses a limit."""

    def __init__(self, limits: ReadLimits, on_feature: FeatureSink | None) -> None:
        self.limits = limits
        self.on_feature = on_feature
        self.stack: list[Any] = []  # open containers, outermost first
        self.key = ""
        self.root: Any = None
        self.feature_list: list[Any] | None = None  # the root object's "features" array
        self.features = 0  # elements of it begun so far
        self.vertices = 0  # positions of the current feature (or of the whole document)

    def begin_feature(self) -> None:
        self.features, self.vertices = self.features + 1, 0
        if self.features > self.limits.max_features:
            limit = self.limits.max_features
            problem = messages.TOO_MANY_FEATURES.format(count=f"more than {limit}", limit=limit)
            raise InvalidGeometry(problem, [{"feature_index": None, "reason": problem, "pointer": "/features"}])

    def attach(self, value: Any) -> None:
        """Put a scalar or a new container into the innermost open container (or make it the root)."""
        if not self.stack:
            self.root = value
            return
        parent = self.stack[-1]
        if parent is self.feature_list:
            self.begin_feature()
            if self.on_feature is None:
                self.stack[-1].append(value)
            elif type(value) is not dict and type(value) is not list:
                self.on_feature(self.features - 1, value)  # a scalar feature is complete at once
        elif type(parent) is list:
            parent.append(value)
        else:
            parent[self.key] = value
            if len(self.stack) == 1 and self.key == "features" and type(value) is list:
                self.feature_list = value

    def open(self, container: Any) -> None:
        if len(self.stack) >= self.limits.max_json_depth:
            raise _refuse(f"the JSON nests deeper than {self.limits.max_json_depth} levels")
        self.attach(container)
        self.stack.append(container)

    def close(self) -> None:
        stack = self.stack
        closed = stack.pop()
        # A position is an array of numbers; each one counts as a vertex of the current feature.
        if type(closed) is list and closed and type(closed[0]) in (float, int):
            self.vertices += 1
            if self.vertices > self.limits.max_vertices:
                index = max(self.features - 1, 0)
                pointer = f"/features/{index}" if self.feature_list is not None else ""
                raise _too_many_vertices(index, self.limits, pointer)
        if self.on_feature is not None and stack and stack[-1] is self.feature_list:
            self.on_feature(self.features - 1, closed)

    def build(self, events: Any) -> Any:
        # The hot path (a number into the position array being filled, a position closed) is inlined:
        # a 1M-vertex polygon is four million events.
        stack = self.stack
        top: Any = None
        for event, value in events:
            if event == "number" and type(top) is list and top is not self.feature_list:
                top.append(value)
            elif event == "end_array" or event == "end_map":
                self.close()
                top = stack[-1] if stack else None
            elif event == "map_key":
                self.key = value
            elif event == "start_map" or event == "start_array":
                top = {} if event == "start_map" else []
                self.open(top)
            else:
                self.attach(value)
        return self.root


# --- Shapefile in a zip ------------------------------------------------------------------------------


#: What reading a zip member can raise: corrupt data, and encrypted or unsupported members (RuntimeError,
#: NotImplementedError) — a hostile archive, never an internal error.
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError)


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


@contextmanager
def _shapefile_archive(
    stream: IO[bytes], limits: ReadLimits
) -> Iterator[tuple[zipfile.ZipFile, dict[str, zipfile.ZipInfo]]]:
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    try:
        archive = zipfile.ZipFile(stream)
    except zipfile.BadZipFile as error:
        raise _refuse(f"not a valid zip archive: {error}") from error
    with archive:
        parts = _check_archive(archive, size, limits)
        try:
            with archive.open(parts[".shp"]) as shp:
                magic = shp.read(4)
        except _ZIP_ERRORS as error:
            raise _refuse(f"corrupt zip archive: {error}") from error
        if magic != b"\x00\x00\x27\x0a":  # file code 9994, big-endian
            raise _refuse("the .shp member is not an ESRI Shapefile")
        yield archive, parts


def _extract_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path) -> None:
    # Copy at most the declared size + 1 byte: a lying header cannot make us expand more than we checked.
    try:
        with archive.open(member) as handle, target.open("wb") as out:
            copied = 0
            while chunk := handle.read(min(1 << 20, member.file_size + 1 - copied)):
                out.write(chunk)
                copied += len(chunk)
                if copied > member.file_size:
                    break
    except _ZIP_ERRORS as error:
        raise _refuse(f"corrupt zip archive: {error}") from error
    if copied != member.file_size:
        raise _refuse(f"{member.filename!r} does not match its declared size")


def _small_member(archive: zipfile.ZipFile, parts: dict[str, zipfile.ZipInfo], suffix: str) -> str | None:
    if suffix not in parts:
        return None
    try:
        with archive.open(parts[suffix]) as handle:
            return handle.read(64 * 1024).decode("utf-8", errors="replace").strip()
    except _ZIP_ERRORS as error:
        raise _refuse(f"corrupt zip archive: {error}") from error


def _read_shapefile_zip(stream: IO[bytes], limits: ReadLimits) -> RawLayer:
    with _shapefile_archive(stream, limits) as (archive, parts):
        crs = _small_member(archive, parts, ".prj")
        declared = _small_member(archive, parts, ".cpg")
        with tempfile.TemporaryDirectory(prefix="shanhai-upload-") as folder:
            for suffix in (".shp", ".shx", ".dbf"):
                _extract_member(archive, parts[suffix], Path(folder) / f"layer{suffix}")
            path = Path(folder) / "layer.shp"
            layer = _read_with_gdal(path, PlotFormat.SHAPEFILE_ZIP, crs, _encodings(declared), limits)
    if crs is None:
        layer.notes.append("no .prj in the archive")
    return layer


def _encodings(declared: str | None) -> list[str]:
    if declared:
        normalised = {"936": "GBK", "CP936": "GBK", "65001": "UTF-8"}.get(declared.upper(), declared)
        return [normalised]
    return ["UTF-8", "GBK"]


# --- GeoPackage ---------------------------------------------------------------------------------------


def _check_geopackage(head: bytes) -> None:
    if not head.startswith(b"SQLite format 3\x00") or head[68:72] not in (b"GPKG", b"GP10", b"GP11"):
        raise _refuse("not a GeoPackage (SQLite header with the GPKG application id expected)")


def _read_geopackage(stream: IO[bytes], limits: ReadLimits) -> RawLayer:
    _check_geopackage(stream.read(100))
    stream.seek(0)
    with tempfile.TemporaryDirectory(prefix="shanhai-upload-") as folder:
        path = Path(folder) / "layer.gpkg"
        with path.open("wb") as out:
            shutil.copyfileobj(stream, out, 1 << 20)
        return _read_with_gdal(path, PlotFormat.GEOPACKAGE, None, [None], limits)


# --- GDAL (pyogrio) -----------------------------------------------------------------------------------


def _read_with_gdal(
    path: Path, kind: PlotFormat, crs: str | None, encodings: Sequence[str | None], limits: ReadLimits
) -> RawLayer:
    # GDAL's warnings (e.g. on a damaged GeoPackage header) are kept as notes, not raised or lost.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer = _gdal_layer(path, kind, crs, encodings, limits)
    layer.notes.extend(str(w.message) for w in caught)
    return layer


def _gdal_layer(
    path: Path, kind: PlotFormat, crs: str | None, encodings: Sequence[str | None], limits: ReadLimits
) -> RawLayer:
    import pyogrio
    from pyogrio.errors import DataLayerError, DataSourceError

    try:
        info = pyogrio.read_info(path)
    except (DataSourceError, DataLayerError) as error:
        raise _refuse(f"GDAL cannot open the file: {error}") from error
    if info["driver"] != GDAL_DRIVERS[kind]:
        raise _refuse(f"the file opened as {info['driver']!r}, not {GDAL_DRIVERS[kind]!r}")
    if info["features"] > limits.max_features:  # counted by the driver from the header, before any is read
        raise _too_many_features(limits, int(info["features"]))
    last_error: Exception | None = None
    for encoding in encodings:
        try:
            features, meta = _gdal_features(path, encoding, limits)
        except (UnicodeDecodeError, DataSourceError, DataLayerError) as error:
            last_error = error
            continue
        return RawLayer(kind, crs or meta.get("crs"), features, encoding or meta.get("encoding"))
    if not isinstance(last_error, UnicodeDecodeError) and "decod" not in str(last_error).lower():
        raise _refuse(f"GDAL cannot read the layer: {last_error}")
    raise _refuse(f"attributes cannot be decoded as {' or '.join(str(e) for e in encodings)}: {last_error}")


def _gdal_features(
    path: Path, encoding: str | None, limits: ReadLimits
) -> tuple[list[tuple[dict[str, Any], BaseGeometry | None]], dict[str, Any]]:
    """Read the layer in batches, refusing a feature over the vertex limit as soon as its batch is read."""
    import pyogrio

    features: list[tuple[dict[str, Any], BaseGeometry | None]] = []
    meta: dict[str, Any] = {}
    while True:
        meta, _fids, wkb, columns = pyogrio.raw.read(
            path, encoding=encoding, force_2d=True, skip_features=len(features), max_features=GDAL_BATCH_FEATURES
        )
        geometries = shapely.from_wkb(wkb, on_invalid="ignore")  # unparsable → missing → refused as empty
        counts = shapely.get_num_coordinates(geometries)
        if len(counts) and counts.max() > limits.max_vertices:
            raise _too_many_vertices(len(features) + int(counts.argmax()), limits)
        names = [str(n) for n in meta["fields"]]
        features.extend(
            ({name: _plain(values[i]) for name, values in zip(names, columns, strict=True)}, geometries[i])
            for i in range(len(geometries))
        )
        _check_counts(len(features), 0, limits)
        if len(geometries) < GDAL_BATCH_FEATURES:
            return features, meta


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
    try:
        return Polygon(shell, [h for h in holes if h])
    except (ValueError, shapely.errors.GEOSException) as error:  # e.g. a ring of fewer than 4 positions
        raise _refuse(f"bad KML polygon: {error}") from error


_KML_FORBIDDEN = (b"<!DOCTYPE", b"<!ENTITY")
_KML_TAG = f"{KML_NS}kml"


def _check_kml_head(head: bytes) -> None:
    """Check the first bytes of a KML file: no DTD, and a ``kml`` root element."""
    if any(word in head.upper() for word in _KML_FORBIDDEN):
        raise _refuse("KML with a DOCTYPE or entity declarations is refused")
    parser: ElementTree.XMLPullParser[Any] = ElementTree.XMLPullParser(events=("start",))
    try:
        parser.feed(head)
        root = next((element for _event, element in _element_events(parser)), None)
    except ElementTree.ParseError as error:
        raise _refuse(f"not a KML file: {error}") from error
    if root is not None and root.tag != _KML_TAG:
        raise _refuse("not a KML 2.2 document")


def _element_events(parser: ElementTree.XMLPullParser[Any]) -> Iterator[tuple[str, ElementTree.Element]]:
    for item in parser.read_events():
        event, element = item[0], item[-1]
        assert isinstance(element, ElementTree.Element)  # only start/end events were asked for
        yield event, element


def _kml_events(stream: IO[bytes]) -> Iterator[tuple[str, ElementTree.Element]]:
    """Yield the parser's start/end events, reading 1 MiB at a time; refuse DTDs and non-KML roots."""
    parser: ElementTree.XMLPullParser[Any] = ElementTree.XMLPullParser(events=("start", "end"))
    tail = b""
    seen_root = False
    try:
        while chunk := stream.read(1 << 20):
            window = (tail + chunk).upper()
            if any(word in window for word in _KML_FORBIDDEN):
                raise _refuse("KML with a DOCTYPE or entity declarations is refused")
            tail = chunk[-16:]
            parser.feed(chunk)
            for event, element in _element_events(parser):
                if not seen_root:
                    if element.tag != _KML_TAG:
                        raise _refuse("not a KML 2.2 document")
                    seen_root = True
                yield event, element
        parser.close()
        yield from _element_events(parser)
    except ElementTree.ParseError as error:
        raise _refuse(f"not a KML file: {error}") from error
    if not seen_root:
        raise _refuse("not a KML 2.2 document")


def _kml_placemark(placemark: ElementTree.Element) -> tuple[dict[str, Any], BaseGeometry | None]:
    properties: dict[str, Any] = {}
    if (name := placemark.findtext(f"{KML_NS}name")) is not None:
        properties["name"] = name.strip()
    for datum in placemark.iter(f"{KML_NS}Data"):
        properties[datum.get("name", "")] = datum.findtext(f"{KML_NS}value")
    for simple in placemark.iter(f"{KML_NS}SimpleData"):
        properties[simple.get("name", "")] = simple.text
    polygons = [_kml_polygon(p) for p in placemark.iter(f"{KML_NS}Polygon")]
    return properties, MultiPolygon(polygons) if polygons else None


def _read_kml(stream: IO[bytes], limits: ReadLimits) -> RawLayer:
    features: list[tuple[dict[str, Any], BaseGeometry | None]] = []
    vertices = 0
    for event, element in _kml_events(stream):
        if event == "start" and element.tag == f"{KML_NS}Placemark":
            vertices = 0
            _check_counts(len(features) + 1, 0, limits)
        elif event == "end" and element.tag == f"{KML_NS}coordinates":
            vertices += len((element.text or "").split())
            _check_counts(len(features) + 1, vertices, limits)
        elif event == "end" and element.tag == f"{KML_NS}Placemark":
            features.append(_kml_placemark(element))
            element.clear()  # the placemark is read: keep its feature, not its XML
    # KML is WGS84 lon/lat by definition (OGC 07-147r2 §6.2).
    return RawLayer(PlotFormat.KML, "EPSG:4326", features)


# --- CSV with WKT ---------------------------------------------------------------------------------------


def _wkt_vertices(wkt: str) -> int:
    """Count the positions of a WKT text without parsing it: one more than its commas.

    A comma separates two positions, or two rings or polygons (which adds one ring's last position).

    >>> _wkt_vertices("POLYGON ((0 0, 1 0, 1 1, 0 0), (0.2 0.2, 0.3 0.2, 0.3 0.3, 0.2 0.2))")
    8
    """
    return wkt.count(",") + 1


def _read_csv(stream: IO[bytes], limits: ReadLimits) -> RawLayer:
    size = stream.seek(0, io.SEEK_END)
    # A WKT field may be as long as the file (a 5,000-vertex polygon is ~140,000 characters, over the
    # csv module's default of 131,072); the file itself is bounded by the upload limit.
    if csv.field_size_limit() < size:
        csv.field_size_limit(min(size, sys.maxsize))
    for encoding in ("utf-8-sig", "gbk"):
        stream.seek(0)
        try:
            return _read_csv_as(stream, encoding, limits)
        except UnicodeDecodeError:
            continue
    raise _refuse("the CSV is neither UTF-8 nor GBK")


def _read_csv_as(stream: IO[bytes], encoding: str, limits: ReadLimits) -> RawLayer:
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    try:
        reader = csv.DictReader(text)
        try:
            fields = list(reader.fieldnames or [])
        except csv.Error as error:
            raise _refuse(f"not a CSV file: {error}") from error
        column = next((f for f in fields if f.strip().lower() in WKT_COLUMNS), None)
        if column is None:
            raise _refuse(f"the CSV needs a WKT column named one of {', '.join(WKT_COLUMNS)}")
        crs_column = next((f for f in fields if f.strip().lower() in ("crs", "srid", "epsg")), None)
        features: list[tuple[dict[str, Any], BaseGeometry | None]] = []
        crs: str | None = None
        try:
            for row in reader:
                wkt = row.pop(column) or ""
                _check_counts(len(features) + 1, _wkt_vertices(wkt) if wkt.strip() else 0, limits)
                if crs_column is not None:
                    value = row.pop(crs_column)
                    crs = value if not features else crs
                geometry = _wkt_geometry(wkt, row)
                features.append((dict(row), geometry))
        except csv.Error as error:
            raise _refuse(f"not a readable CSV file: {error}") from error
    finally:
        text.detach()  # leave the caller's stream open
    if crs and crs.isdigit():
        crs = f"EPSG:{crs}"
    return RawLayer(PlotFormat.CSV_WKT, crs, features, encoding)


def _wkt_geometry(wkt: str, row: dict[str, Any]) -> BaseGeometry | None:
    if not wkt.strip():
        return None
    try:
        return shapely.from_wkt(wkt)
    except shapely.errors.GEOSException:
        row["__problem__"] = "the WKT cannot be parsed"
        return None
