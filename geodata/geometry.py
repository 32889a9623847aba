"""Small pure helpers on shapely geometries: stable hashes and bounds.

>>> from shapely.geometry import box
>>> a, b = box(0, 0, 1, 1), box(0, 0, 1, 1).reverse()
>>> geometry_sha256(a) == geometry_sha256(b)
True
"""

from __future__ import annotations

import hashlib

import shapely
from shapely.geometry.base import BaseGeometry


def geometry_sha256(geometry: BaseGeometry) -> str:
    """Return the SHA-256 of the normalised little-endian WKB of ``geometry``.

    Normalisation orders rings, vertices and parts canonically, so orientation and starting vertex
    do not change the hash.
    """
    wkb = shapely.to_wkb(shapely.normalize(geometry), byte_order=1, output_dimension=2)
    return hashlib.sha256(bytes(wkb)).hexdigest()


def to_geojson_geometry(geometry: BaseGeometry) -> dict[str, object]:
    """Return the RFC 7946 geometry mapping of ``geometry``."""
    mapping: dict[str, object] = shapely.geometry.mapping(geometry)
    return mapping
