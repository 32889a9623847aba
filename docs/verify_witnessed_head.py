#!/usr/bin/env python3
"""Check a witnessed tree head of the Shanhai audit log from its published files, without Shanhai's code.

Needs Python 3.11+ and the ``cryptography`` package, nothing else. Usage::

    python verify_witnessed_head.py DIR

``DIR`` holds what ``shanhai audit export --out DIR`` publishes:

* ``entries.jsonl`` — the audit entries, one JSON object per line;
* ``checkpoint.txt`` — the latest witnessed head, a C2SP checkpoint note (c2sp.org/tlog-checkpoint) signed by
  the log and cosigned by witnesses (c2sp.org/tlog-cosignature, ``cosignature/v1``, Ed25519);
* ``log.vkey`` — the log's note verifier key (``origin+hex(key id)+base64(0x01 || Ed25519 key)``);
* ``witnesses.txt`` — ``quorum <k>`` and one witness vkey per line (type ``0x04``).

Take ``log.vkey`` and the witness keys from a source you trust (the registry's publication, the provinces'
own witness operators), not only from the same directory. The script

1. re-hashes every entry under the scheme it names — ``rfc8785`` (RFC 8785 JSON Canonicalization Scheme,
   implemented below) or ``shanhai-json/1`` (the platform's canonical JSON before revision 0019: keys sorted
   by code point, Python's number formatting) — and checks the hash chain;
2. builds the RFC 6962 Merkle tree over the entry hashes (leaf ``i`` = the 32 bytes of entry ``i + 1``'s hash);
3. checks the checkpoint: the log's Ed25519 note signature, and cosignatures of at least ``k`` of the listed
   witnesses;
4. checks that the root of the first ``tree_size`` entries is the checkpoint's root.

Exit status 0 when everything holds, 1 otherwise; a JSON report is printed either way.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
import sys
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS = "0" * 64

# --- RFC 8785 (JCS) ---------------------------------------------------------------------------------------


def jcs_number(value: float | int) -> str:
    """ECMAScript Number::toString (ECMA-262 §7.1.12.1), as RFC 8785 §3.2.2.3 requires."""
    if isinstance(value, bool):
        raise TypeError("booleans are not numbers")
    if isinstance(value, int):
        if abs(value) > 2**53 - 1:
            raise ValueError("integer outside the I-JSON range")
        return str(value)
    if not math.isfinite(value):
        raise ValueError("NaN and infinities have no JSON form")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    digits, exponent = _shortest(abs(value))  # value = 0.digits × 10**exponent
    k, n = len(digits), exponent
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{sign}{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"


def _shortest(value: float) -> tuple[str, int]:
    """Return the shortest round-tripping digits of ``value`` and n with value = 0.d1d2… × 10**n (repr's digits)."""
    mantissa, _, exp_text = f"{value!r}".partition("e")
    whole, _, fraction = mantissa.partition(".")
    exponent = int(exp_text) if exp_text else 0
    digits = (whole + fraction).lstrip("0")
    leading_zeros = len(whole + fraction) - len((whole + fraction).lstrip("0"))
    n = len(whole) + exponent - leading_zeros
    return digits.rstrip("0") or "0", n


def jcs_string(text: str) -> str:
    """A JSON string as ECMAScript JSON.stringify writes it (RFC 8785 §3.2.2.2)."""
    return json.dumps(text, ensure_ascii=False)  # the same escapes: \" \\ \b \f \n \r \t and \u00xx below 0x20


def jcs(value: Any) -> str:
    """Serialise ``value`` under RFC 8785: members sorted by their UTF-16 code units, no whitespace."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float):
        return jcs_number(value)
    if isinstance(value, str):
        return jcs_string(value)
    if isinstance(value, list):
        return "[" + ",".join(jcs(item) for item in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda key: key.encode("utf-16-be"))
        return "{" + ",".join(jcs_string(key) + ":" + jcs(value[key]) for key in keys) + "}"
    raise TypeError(f"no JSON form: {type(value).__name__}")


def legacy(value: Any) -> str:
    """The platform's canonical JSON before revision 0019 (scheme ``shanhai-json/1``)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def entry_hash(entry: dict[str, Any]) -> str:
    """Re-hash one entry under the scheme it names."""
    scheme = entry.get("scheme", "shanhai-json/1")
    content = {
        name: entry[name] for name in ("seq", "recorded_at", "actor", "action", "subject", "payload", "prev_hash")
    }
    if scheme == "rfc8785":
        data = jcs({"scheme": scheme, **content})
    elif scheme == "shanhai-json/1":
        data = legacy(content)
    else:
        raise ValueError(f"unknown scheme {scheme!r}")
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


# --- RFC 6962 Merkle tree ---------------------------------------------------------------------------------


def merkle_root(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 §2.1, over leaf hashes."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + merkle_root(leaves[:k]) + merkle_root(leaves[k:])).digest()


# --- signed notes, checkpoints, cosignatures (C2SP) ------------------------------------------------------


def parse_vkey(text: str, expected_type: int) -> tuple[str, bytes, Ed25519PublicKey]:
    """Return (name, key id, key) of a vkey ``name+hex(id)+base64(type || key)``."""
    name, key_id_hex, material_b64 = text.strip().split("+", 2)
    material = base64.b64decode(material_b64, validate=True)
    key_id = bytes.fromhex(key_id_hex)
    if material[0] != expected_type or len(material) != 33:
        raise ValueError(f"not a vkey of type {expected_type:#04x}: {text}")
    if hashlib.sha256(name.encode() + b"\n" + material).digest()[:4] != key_id:
        raise ValueError(f"the key id does not match the name and key: {text}")
    return name, key_id, Ed25519PublicKey.from_public_bytes(material[1:])


def open_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """Split a signed note into its text and (key name, base64-decoded signature) pairs."""
    cut = note.rindex("\n\n")
    lines = []
    for line in note[cut + 2 :].splitlines():
        dash, name, signature = line.split(" ")
        if dash != "\u2014":
            raise ValueError(f"not a signature line: {line}")
        lines.append((name, base64.b64decode(signature, validate=True)))
    return note[: cut + 1], lines


def verifies(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """Return whether ``signature`` is ``key``'s Ed25519 signature of ``message``."""
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def check(directory: Path) -> dict[str, Any]:
    """Run every check on the files of ``directory``; return the report."""
    problems: list[str] = []
    schemes: dict[str, int] = {}
    leaves: list[bytes] = []
    prev = GENESIS
    for number, line in enumerate((directory / "entries.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        entry = json.loads(line)
        scheme = entry.get("scheme", "shanhai-json/1")
        schemes[scheme] = schemes.get(scheme, 0) + 1
        if entry["seq"] != number or entry["prev_hash"] != prev:
            problems.append(f"entry {number}: breaks the chain")
            break
        if entry_hash(entry) != entry["entry_hash"]:
            problems.append(f"entry {number} ({scheme}): its content does not hash to its entry_hash")
            break
        prev = entry["entry_hash"]
        leaves.append(hashlib.sha256(b"\x00" + bytes.fromhex(prev)).digest())

    origin, log_id, log_key = parse_vkey((directory / "log.vkey").read_text(encoding="utf-8"), 0x01)
    policy = (directory / "witnesses.txt").read_text(encoding="utf-8").split()
    quorum = int(policy[1])
    witnesses = [parse_vkey(vkey, 0x04) for vkey in policy[2:]]
    text, signatures = open_note((directory / "checkpoint.txt").read_text(encoding="utf-8"))
    lines = text.split("\n")
    checkpoint_origin, size, root = lines[0], int(lines[1]), base64.b64decode(lines[2], validate=True)
    if checkpoint_origin != origin:
        problems.append(f"the checkpoint's origin {checkpoint_origin!r} is not the log's {origin!r}")
    signed = any(
        name == origin and blob[:4] == log_id and verifies(log_key, blob[4:], text.encode())
        for name, blob in signatures
    )
    if not signed:
        problems.append("the log's signature on the checkpoint is missing or does not verify")
    cosigned = []
    for name, key_id, key in witnesses:
        for signer, blob in signatures:
            if signer == name and blob[:4] == key_id and len(blob) == 4 + 8 + 64:
                (timestamp,) = struct.unpack(">Q", blob[4:12])
                message = f"cosignature/v1\ntime {timestamp}\n{text}".encode()
                if verifies(key, blob[12:], message):
                    cosigned.append(name)
                else:
                    problems.append(f"the cosignature of {name} does not verify")
    if len(cosigned) < quorum:
        problems.append(f"{len(cosigned)} of the required {quorum} witnesses cosigned the checkpoint")
    if size > len(leaves):
        problems.append(f"the checkpoint covers {size} entries, the file holds {len(leaves)}")
    elif merkle_root(leaves[:size]) != root:
        problems.append(f"the first {size} entries do not hash to the checkpoint's root")
    return {
        "ok": not problems,
        "origin": origin,
        "tree_size": size,
        "root_hash": root.hex(),
        "entries": len(leaves),
        "schemes": schemes,
        "cosigned_by": cosigned,
        "quorum": quorum,
        "problems": problems,
    }


def main(argv: list[str]) -> int:
    """Check ``argv[1]``; print the report; return the exit status."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        report = check(Path(argv[1]))
    except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
        report = {"ok": False, "problems": [f"the published files cannot be read: {error!r}"]}
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
