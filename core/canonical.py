"""Canonical JSON and its SHA-256, the basis of every hash in the platform.

Canonical form: UTF-8, keys sorted, no insignificant whitespace, no NaN/Infinity, ``Decimal`` written
as its exact string, datetimes as ISO-8601. The same value always yields the same bytes, so the same
hash; this is what the audit log chains and what a verifier recomputes.

>>> canonical_json({"b": 1, "a": [1.5, "x"]})
b'{"a":[1.5,"x"],"b":1}'
>>> sha256_hex(b"")
'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not canonically serialisable: {type(value).__name__}")


def canonical_json(value: Any) -> bytes:
    """Return the canonical JSON bytes of ``value``.

    Raises:
        ValueError: On NaN or infinite floats, which have no JSON form.
        TypeError: On values with no canonical form.
    """
    text = json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_default,
    )
    return text.encode("utf-8")


def sha256_hex(data: bytes) -> str:
    """Return the lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def canonical_hash(value: Any) -> str:
    """Return the SHA-256 of the canonical JSON of ``value``."""
    return sha256_hex(canonical_json(value))
