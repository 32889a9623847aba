#!/usr/bin/env python3
"""Re-hash Shanhai's published records, without Shanhai's code, under the scheme each record names.

Needs Python 3.11+, ``verify_witnessed_head.py`` beside this file (its RFC 8785 code, which is tested against
the ``rfc8785`` package) and so the ``cryptography`` package that script imports. Usage::

    python verify_record.py FILE [FILE ...]

Each ``FILE`` is one of

* a monitoring report's trace (``GET /api/v1/monitoring-reports/{id}/trace``) or any JSON object with
  ``record`` and ``record_sha256``: the methodology calculation record is re-hashed and compared with
  ``record_sha256``;
* a GEP run's valuation record (the ``valuation`` member of ``GET /api/v1/gep/runs/{id}``), bare or as
  ``{"valuation": ...}``: everything but its ``sha256`` is re-hashed and compared with ``sha256``.

A record names its canonicalization scheme in ``hash_scheme`` (ADR 033, "Records"):

* ``rfc8785`` — RFC 8785 JSON Canonicalization Scheme (members sorted by UTF-16 code units, numbers as
  ECMAScript writes them); ``hash_scheme`` itself is part of the hashed object;
* none — ``shanhai-json/1``, the platform's canonical JSON before revision 0021 (Python's ``json.dumps`` with
  sorted keys, no whitespace, ``ensure_ascii=False``): every record written before, and a new record holding
  an integer beyond ±(2⁵³−1), which RFC 8785 cannot write.

The content references inside a record (a parameter set, a price or coefficient table) must be under the
record's own scheme: a reference under ``rfc8785`` names it, one under ``shanhai-json/1`` names none.

This re-hashes what was published; it does not recompute the calculation (``shanhai carbon compute FILE``
does, from the packaged methodologies). Exit status 0 when every file holds, 1 otherwise; a JSON report is
printed either way.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The sibling script's RFC 8785 (tested against the rfc8785 package) and shanhai-json/1.
from verify_witnessed_head import jcs, legacy

LEGACY = "shanhai-json/1"
JCS = "rfc8785"


def scheme_hash(value: Any, scheme: str) -> str:
    """SHA-256 of ``value``'s canonical JSON under ``scheme``."""
    if scheme == JCS:
        text = jcs(value)
    elif scheme == LEGACY:
        text = legacy(value)
    else:
        raise ValueError(f"unknown scheme {scheme!r}")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _references(record: dict[str, Any], names: tuple[str, ...], scheme: str) -> list[str]:
    problems = []
    for name in names:
        reference = record.get(name)
        if isinstance(reference, dict) and reference.get("hash_scheme", LEGACY) != scheme:
            problems.append(f"{name} is hashed under {reference.get('hash_scheme', LEGACY)}, the record under {scheme}")
    return problems


def check(document: dict[str, Any]) -> dict[str, Any]:
    """Re-hash one published record; return the report."""
    if "record" in document:
        kind, record, stated = "calculation record", document["record"], document.get("record_sha256")
        content, references = record, ("parameter_set",)
    else:
        record = document.get("valuation", document)
        kind, stated = "valuation record", record.get("sha256")
        content = {key: value for key, value in record.items() if key != "sha256"}
        references = ("prices", "coefficients")
    scheme = record.get("hash_scheme", LEGACY)
    recomputed = scheme_hash(content, scheme)
    problems = _references(record, references, scheme)
    if recomputed != stated:
        problems.append(f"the {kind} re-hashes to {recomputed}, not {stated}")
    return {"ok": not problems, "kind": kind, "scheme": scheme, "sha256": recomputed, "problems": problems}


def main(argv: list[str]) -> int:
    """Check every file of ``argv[1:]``; print the report; return the exit status."""
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    reports = {}
    for name in argv[1:]:
        try:
            document = json.loads(Path(name).read_text(encoding="utf-8"))
            reports[name] = check(document)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            reports[name] = {"ok": False, "problems": [f"the file cannot be read as a record: {error!r}"]}
    print(json.dumps(reports, indent=2, ensure_ascii=False))
    return 0 if all(report["ok"] for report in reports.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
