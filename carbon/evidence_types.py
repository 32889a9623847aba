r"""What evidence may be attached, and what a file's first bytes say it is (pure).

Evidence is what a bureau, a verifier or an auditor opens beside a project or a monitoring report: the
forest-right certificate (林权证), field sheets, photos, the land cover before and after a restoration, the
verifier's report. Each kind accepts a few media types, and a file's type is *sniffed* from its content — a
name ending ``.pdf`` proves nothing. :func:`sniff` reads the signature at the start of the file (the magic
numbers of the formats' own specifications); the service then opens the file with the format's reader to
refuse one that only starts right.

>>> sniff(b"%PDF-1.7\n...")
'application/pdf'
>>> sniff(b"\x89PNG\r\n\x1a\n....")
'image/png'
>>> sniff(b"MZ\x90\x00") is None
True
>>> sorted(ALLOWED[EvidenceKind.LAND_COVER_AFTER])
['image/tiff']
"""

from __future__ import annotations

import enum
from typing import Final

PDF: Final = "application/pdf"
JPEG: Final = "image/jpeg"
PNG: Final = "image/png"
TIFF: Final = "image/tiff"  # GeoTIFF included: a TIFF with geo-keys (a land-cover raster)
XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV: Final = "text/csv"
ZIP: Final = "application/zip"  # only ever an intermediate answer of sniff: an XLSX is a ZIP


class EvidenceKind(enum.StrEnum):
    """What an attachment is evidence of."""

    FOREST_RIGHT_CERTIFICATE = "forest_right_certificate"  # 林权证 (or 不动产权证书 with forest rights), a scan
    LAND_USE_DOCUMENT = "land_use_document"  # land-use or restoration approval, contract, licence
    FIELD_SHEET = "field_sheet"  # 外业调查表: sample-plot tallies, 小班 survey sheets
    PHOTO = "photo"  # site photographs
    LAND_COVER_BEFORE = "land_cover_before"  # a land-cover raster of the site before the activity (GeoTIFF)
    LAND_COVER_AFTER = "land_cover_after"  # the same after it (GeoTIFF)
    VERIFICATION_REPORT = "verification_report"  # the verifier's report (核查报告); only a verifier attaches it
    OTHER = "other"


SCANS: Final = frozenset({PDF, JPEG, PNG, TIFF})
#: The media types each kind accepts.
ALLOWED: Final[dict[EvidenceKind, frozenset[str]]] = {
    EvidenceKind.FOREST_RIGHT_CERTIFICATE: SCANS,
    EvidenceKind.LAND_USE_DOCUMENT: SCANS,
    EvidenceKind.FIELD_SHEET: SCANS | {XLSX, CSV},
    EvidenceKind.PHOTO: frozenset({JPEG, PNG}),
    EvidenceKind.LAND_COVER_BEFORE: frozenset({TIFF}),
    EvidenceKind.LAND_COVER_AFTER: frozenset({TIFF}),
    EvidenceKind.VERIFICATION_REPORT: frozenset({PDF}),
    EvidenceKind.OTHER: SCANS | {XLSX, CSV},
}
#: Kinds that must be a georeferenced raster (a CRS and a geotransform), not any TIFF.
RASTER_KINDS: Final = frozenset({EvidenceKind.LAND_COVER_BEFORE, EvidenceKind.LAND_COVER_AFTER})
#: Kinds only a verifier attaches (and a verifier attaches only these).
VERIFIER_KINDS: Final = frozenset({EvidenceKind.VERIFICATION_REPORT})
#: File name extensions of each media type (the first one is added to a download's name that has none of them).
EXTENSIONS: Final = {
    PDF: (".pdf",),
    JPEG: (".jpg", ".jpeg"),
    PNG: (".png",),
    TIFF: (".tif", ".tiff"),
    XLSX: (".xlsx",),
    CSV: (".csv", ".txt"),
}

_SIGNATURES: Final = (
    (b"%PDF-", PDF),
    (b"\xff\xd8\xff", JPEG),
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"II*\x00", TIFF),  # little-endian TIFF
    (b"MM\x00*", TIFF),  # big-endian TIFF
    (b"II+\x00", TIFF),  # BigTIFF
    (b"MM\x00+", TIFF),
    (b"PK\x03\x04", ZIP),
)
#: How many bytes :func:`sniff` needs at most.
HEAD_BYTES: Final = 4096


def sniff(head: bytes) -> str | None:
    r"""Return the media type the first bytes of a file announce, ``None`` when none is recognised.

    Text is recognised as CSV when the head decodes as UTF-8 or GB18030 (the national superset of GBK that
    forestry inventory exports use) without control characters other than tab, CR and LF.

    >>> sniff("小班号,面积\n1,2.5\n".encode("gbk"))
    'text/csv'
    >>> sniff(b"") is None
    True
    """
    for signature, media_type in _SIGNATURES:
        if head.startswith(signature):
            return media_type
    return CSV if _is_text(head) else None


def _decoded(head: bytes, encoding: str) -> str | None:
    try:
        return head.decode(encoding)
    except UnicodeDecodeError as error:
        # A multi-byte character cut by the end of the head is no reason to refuse the file.
        if len(head) >= HEAD_BYTES and error.start >= len(head) - 4:
            return head[: error.start].decode(encoding, errors="strict")
        return None


def _is_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    for encoding in ("utf-8", "gb18030"):
        try:
            text = _decoded(head, encoding)
        except UnicodeDecodeError:
            continue
        if text is not None:
            return all(ch in "\t\r\n" or (32 <= ord(ch) != 127) for ch in text)
    return False
