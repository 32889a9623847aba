"""Canonical JSON and its SHA-256, the basis of every hash in the platform.

Canonical form: UTF-8, keys sorted, no insignificant whitespace, no NaN/Infinity, ``Decimal`` written
as its exact string, datetimes as ISO-8601. The same value always yields the same bytes, so the same
hash; this is what the audit log chains and what a verifier recomputes.

This is scheme ``shanhai-json/1``: it sorts keys by code point and writes numbers as Python does, which an
outside verifier in another language cannot reproduce with confidence. New audit entries and new records
(calculation records, parameter-set, price-table and legend hashes, GEP valuation records) use RFC 8785
(:func:`jcs_json`, scheme ``rfc8785``) instead; each names its scheme, so those written before verify
under this one unchanged (ADR 033). :func:`scheme_json` and :func:`scheme_hash` take the scheme by name.

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

import rfc8785


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


#: The platform's own canonical JSON (:func:`canonical_json`): audit entries before revision 0019 and records
#: before revision 0021; a hashed object or reference that names no scheme is under this one.
LEGACY_SCHEME = "shanhai-json/1"
#: RFC 8785 JSON Canonicalization Scheme (:func:`jcs_json`): every new audit entry and record (ADR 033).
JCS_SCHEME = "rfc8785"
SCHEMES = (LEGACY_SCHEME, JCS_SCHEME)

# RFC 8785 (JSON Canonicalization Scheme) ------------------------------------------------------------------

#: The largest integer magnitude RFC 8785 writes exactly (I-JSON, RFC 7493 §2.2: IEEE 754 doubles).
JCS_MAX_SAFE_INTEGER = 2**53 - 1


def jcs_ready(value: Any) -> Any:
    """Return ``value`` with ``Decimal`` and dates written as strings, as :func:`canonical_json` writes them.

    The two schemes then agree on what a payload *is*; they differ only in how it is spelled.

    >>> jcs_ready({"q": Decimal("1.50"), "on": date(2026, 1, 2), "xs": (1, 2)})
    {'q': '1.50', 'on': '2026-01-02', 'xs': [1, 2]}
    """
    if isinstance(value, dict):
        return {key: jcs_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jcs_ready(item) for item in value]
    if isinstance(value, Decimal | datetime | date):
        return _default(value)
    return value


def jcs_representable(value: Any) -> bool:
    """Return whether RFC 8785 can write ``value`` exactly (no integer beyond ±(2**53 - 1)).

    >>> jcs_representable({"a": [2**53 - 1]}), jcs_representable({"a": [2**53]})
    (True, False)
    """
    if isinstance(value, dict):
        return all(jcs_representable(item) for item in value.values())
    if isinstance(value, list | tuple):
        return all(jcs_representable(item) for item in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) <= JCS_MAX_SAFE_INTEGER
    return True


def jcs_json(value: Any) -> bytes:
    """Return the RFC 8785 canonical JSON bytes of ``value`` (after :func:`jcs_ready`).

    Keys are sorted by their UTF-16 code units and numbers are written as ECMAScript does, so any
    RFC 8785 implementation, in any language, produces the same bytes.

    >>> jcs_json({"b": 1, "a": [1.0, 1e21, "x"]})
    b'{"a":[1,1e+21,"x"],"b":1}'

    Raises:
        ValueError: On NaN, infinite floats or an integer beyond ±(2**53 - 1), which RFC 8785 cannot write.
        TypeError: On values with no JSON form.
    """
    try:
        return rfc8785.dumps(jcs_ready(value))
    except rfc8785.IntegerDomainError as error:
        raise ValueError(str(error)) from None
    except rfc8785.FloatDomainError as error:
        raise ValueError(str(error)) from None
    except rfc8785.CanonicalizationError as error:
        raise TypeError(str(error)) from None


# Either scheme, by name ----------------------------------------------------------------------------------


def scheme_json(value: Any, scheme: str) -> bytes:
    """Return the canonical JSON bytes of ``value`` under ``scheme`` (``shanhai-json/1`` or ``rfc8785``).

    >>> scheme_json({"b": 1.0, "a": "x"}, LEGACY_SCHEME), scheme_json({"b": 1.0, "a": "x"}, JCS_SCHEME)
    (b'{"a":"x","b":1.0}', b'{"a":"x","b":1}')

    Raises:
        ValueError: ``scheme`` is unknown, or ``value`` has no form in it.
        TypeError: On values with no JSON form.
    """
    if scheme == JCS_SCHEME:
        return jcs_json(value)
    if scheme == LEGACY_SCHEME:
        return canonical_json(value)
    raise ValueError(f"unknown canonicalization scheme {scheme!r}")


def scheme_hash(value: Any, scheme: str) -> str:
    """Return the SHA-256 of the canonical JSON of ``value`` under ``scheme``."""
    return sha256_hex(scheme_json(value, scheme))


def record_scheme(value: Any) -> str:
    """Return the scheme a new record holding ``value`` is hashed under: RFC 8785 whenever it can write it.

    A value with an integer beyond ±(2**53 - 1), which RFC 8785 (I-JSON) cannot write exactly, stays under
    ``shanhai-json/1`` rather than being refused; the record then names no scheme (ADR 033).

    >>> record_scheme({"n": 2**53 - 1}), record_scheme({"n": [2**53]})
    ('rfc8785', 'shanhai-json/1')
    """
    return JCS_SCHEME if jcs_representable(jcs_ready(value)) else LEGACY_SCHEME


def scheme_reference(identifier: str, version: str, sha256: str, scheme: str) -> dict[str, str]:
    """Return a content reference ``{id, version, sha256}`` naming its scheme unless ``shanhai-json/1``.

    A reference without ``hash_scheme`` is read under ``shanhai-json/1``, as every reference written before.

    >>> scheme_reference("t", "1", "ab", JCS_SCHEME)
    {'id': 't', 'version': '1', 'sha256': 'ab', 'hash_scheme': 'rfc8785'}
    >>> scheme_reference("t", "1", "ab", LEGACY_SCHEME)
    {'id': 't', 'version': '1', 'sha256': 'ab'}
    """
    named = {"hash_scheme": scheme} if scheme != LEGACY_SCHEME else {}
    return {"id": identifier, "version": version, "sha256": sha256, **named}
