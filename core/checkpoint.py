"""The audit log's tree heads as C2SP checkpoints, and the witnesses' cosignatures on them (ADR 033).

Pure: keys arrive as objects. Formats, from the C2SP specifications (c2sp.org):

* **signed-note** — a text ending in a newline, a blank line, then signature lines
  ``— <key name> base64(4-byte key id || signature)``. An Ed25519 note key's id is
  ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``; its *vkey* is ``name+hex(key id)+base64(0x01 || key)``.
* **tlog-checkpoint** — the note text is three lines: the log's *origin*, the tree size in decimal, the
  RFC 6962 root hash in base64. The log signs it with its Ed25519 audit key under the key name = origin.
* **tlog-cosignature** (``cosignature/v1``, Ed25519) — a witness signs
  ``"cosignature/v1" LF "time <POSIX seconds>" LF`` followed by the checkpoint text; the signature field is
  ``u64 timestamp (big-endian) || 64-byte Ed25519 signature``; the key id is
  ``SHA-256(name || 0x0A || 0x04 || public key)[:4]`` and the vkey's type byte is ``0x04``.

The platform's own JSON tree head (``core.tree_head``, ``shanhai-sth/1``) stays as it is: a checkpoint is a
second signature by the same key over the same (size, root), readable by tools outside this codebase. Ed25519
is deterministic (RFC 8032), so the log's checkpoint signature over a (size, root) is the same whenever it
is computed and need not be stored.

>>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
>>> log_key = Ed25519PrivateKey.from_private_bytes(bytes(32))
>>> text = checkpoint_text("shanhai.example/audit", 2, bytes(32))
>>> print(text, end="")
shanhai.example/audit
2
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
>>> note = sign_checkpoint(log_key, "shanhai.example/audit", 2, bytes(32))
>>> parse_checkpoint(open_note(note)[0]).tree_size
2
>>> witness = Ed25519PrivateKey.from_private_bytes(bytes([1]) * 32)
>>> line = cosign(witness, "witness.example/w1", text, timestamp=1700000000)
>>> verify_cosignature(line, text, WitnessKey("witness.example/w1", witness.public_key()))
1700000000
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

#: Signature type bytes (c2sp.org/signed-note): plain Ed25519 notes and timestamped Ed25519 cosignatures.
ED25519 = 0x01
COSIGNATURE_V1 = 0x04
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
COSIGNATURE_HEADER = "cosignature/v1\n"
#: Notes longer than this, or with more signature lines than :data:`MAX_SIGNATURES`, are refused unread.
MAX_NOTE_BYTES = 16 * 1024
MAX_SIGNATURES = 64
EMPTY_ROOT = hashlib.sha256(b"").digest()


@dataclass(frozen=True)
class Checkpoint:
    """The three lines of a checkpoint (extension lines are refused: this log writes none)."""

    origin: str
    tree_size: int
    root_hash: bytes


@dataclass(frozen=True)
class SignatureLine:
    """One note signature line: who (name, 4-byte id) and the signature bytes after the id."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """Return the line, with its final newline."""
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(self.key_id + self.signature).decode('ascii')}\n"


@dataclass(frozen=True)
class WitnessKey:
    """A witness as a verifier knows it: its key name and Ed25519 public key (cosignature/v1)."""

    name: str
    public_key: Ed25519PublicKey

    @property
    def key_id(self) -> bytes:
        """Return the 4-byte cosignature/v1 key id."""
        return note_key_id(self.name, COSIGNATURE_V1, raw(self.public_key))

    def vkey(self) -> str:
        """Return the verifier key string ``name+hex(id)+base64(0x04 || key)``."""
        return vkey(self.name, COSIGNATURE_V1, raw(self.public_key))


def raw(public_key: Ed25519PublicKey) -> bytes:
    """Return the 32 raw bytes of an Ed25519 public key."""
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def note_key_id(name: str, signature_type: int, key: bytes) -> bytes:
    """Return ``SHA-256(name || 0x0A || type || key)[:4]`` (c2sp.org/signed-note)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([signature_type]) + key).digest()[:4]


def vkey(name: str, signature_type: int, key: bytes) -> str:
    """Return the verifier key ``name+hex(key id)+base64(type || key)``."""
    material = base64.b64encode(bytes([signature_type]) + key).decode("ascii")
    return f"{name}+{note_key_id(name, signature_type, key).hex()}+{material}"


def parse_vkey(text: str) -> tuple[str, int, Ed25519PublicKey]:
    """Return (name, signature type, public key) of an Ed25519 or cosignature/v1 vkey.

    Raises:
        ValueError: Malformed, another algorithm, or the key id does not match the name and key.
    """
    try:
        name, id_hex, material_b64 = text.strip().split("+", 2)  # base64 may hold '+' too
        material = base64.b64decode(material_b64, validate=True)
        key_id = bytes.fromhex(id_hex)
    except (ValueError, binascii.Error):
        raise ValueError(f"not a verifier key: {text!r}") from None
    if not name or len(material) != 33 or material[0] not in (ED25519, COSIGNATURE_V1):
        raise ValueError(f"not an Ed25519 verifier key: {text!r}")
    if note_key_id(name, material[0], material[1:]) != key_id:
        raise ValueError(f"the verifier key's id does not match its name and key: {text!r}")
    return name, material[0], Ed25519PublicKey.from_public_bytes(material[1:])


def witness_key(text: str) -> WitnessKey:
    """Return the witness of a cosignature/v1 vkey (type ``0x04``); raise ``ValueError`` otherwise."""
    name, signature_type, key = parse_vkey(text)
    if signature_type != COSIGNATURE_V1:
        raise ValueError(f"not a cosignature/v1 verifier key (type 0x04): {text!r}")
    return WitnessKey(name, key)


def log_vkey(origin: str, public_key: Ed25519PublicKey) -> str:
    """Return the log's verifier key: name = origin, type ``0x01``."""
    return vkey(origin, ED25519, raw(public_key))


def checkpoint_text(origin: str, tree_size: int, root_hash: bytes) -> str:
    """Return the note text of a checkpoint (three lines, each ending in a newline)."""
    if not origin or any(char.isspace() or char == "+" for char in origin):
        raise ValueError("a checkpoint origin is non-empty, without spaces or '+'")
    return f"{origin}\n{tree_size}\n{base64.b64encode(root_hash).decode('ascii')}\n"


def sign_checkpoint(key: Ed25519PrivateKey, origin: str, tree_size: int, root_hash: bytes) -> str:
    """Return the checkpoint note of (``tree_size``, ``root_hash``) signed by the log's key (name = origin)."""
    text = checkpoint_text(origin, tree_size, root_hash)
    line = SignatureLine(origin, note_key_id(origin, ED25519, raw(key.public_key())), key.sign(text.encode()))
    return f"{text}\n{line.line()}"


def open_note(note: str) -> tuple[str, list[SignatureLine]]:
    """Split a signed note into its text and signature lines (nothing is verified here).

    Raises:
        ValueError: Not a signed note (size, control characters, no blank line, a malformed signature line).
    """
    if len(note.encode("utf-8")) > MAX_NOTE_BYTES:
        raise ValueError("the note is too large")
    if any(ord(char) < 0x20 and char != "\n" for char in note):
        raise ValueError("a note holds no control characters but newlines")
    if not note.endswith("\n") or "\n\n" not in note:
        raise ValueError("a note is a text, a blank line and signature lines, each ending in a newline")
    split = note.rindex("\n\n")
    text, block = note[: split + 1], note[split + 2 :]
    lines = block.splitlines()
    if not lines or len(lines) > MAX_SIGNATURES:
        raise ValueError("a note carries between 1 and 64 signature lines")
    return text, [parse_signature_line(line) for line in lines]


def parse_signature_line(line: str) -> SignatureLine:
    """Read ``— <name> base64(key id || signature)`` (without its newline); raise ``ValueError`` otherwise."""
    if not line.startswith(SIGNATURE_PREFIX):
        raise ValueError(f"not a signature line: {line!r}")
    parts = line[len(SIGNATURE_PREFIX) :].split(" ")
    if len(parts) != 2 or not parts[0] or "+" in parts[0]:
        raise ValueError(f"not a signature line: {line!r}")
    try:
        data = base64.b64decode(parts[1], validate=True)
    except binascii.Error:
        raise ValueError(f"the signature is not base64: {line!r}") from None
    if len(data) < 5:
        raise ValueError(f"the signature is too short: {line!r}")
    return SignatureLine(parts[0], data[:4], data[4:])


def parse_checkpoint(text: str) -> Checkpoint:
    """Read a checkpoint's note text; raise ``ValueError`` unless it is exactly origin, size and root."""
    lines = text.split("\n")
    if len(lines) != 4 or lines[3] != "":
        raise ValueError("a checkpoint of this log is exactly three lines: origin, tree size, root hash")
    origin, size_text, root_text = lines[:3]
    if not origin or not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise ValueError("malformed checkpoint origin or tree size")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise ValueError("the checkpoint root hash is not base64") from None
    if len(root) != 32:
        raise ValueError("the checkpoint root hash is not 32 bytes")
    return Checkpoint(origin, int(size_text), root)


def verify_log_signature(text: str, signatures: list[SignatureLine], origin: str, public_key: Ed25519PublicKey) -> bool:
    """Return whether the log's key (name ``origin``) signed ``text``; other signature lines are ignored."""
    key_id = note_key_id(origin, ED25519, raw(public_key))
    for signature in signatures:
        if signature.name == origin and signature.key_id == key_id:
            try:
                public_key.verify(signature.signature, text.encode("utf-8"))
            except InvalidSignature:
                return False
            return True
    return False


def cosigned_message(text: str, timestamp: int) -> bytes:
    """Return what a cosignature/v1 signs: header line, time line, checkpoint text."""
    return f"{COSIGNATURE_HEADER}time {timestamp}\n{text}".encode()


def cosign(key: Ed25519PrivateKey, name: str, text: str, *, timestamp: int) -> SignatureLine:
    """Return the cosignature/v1 line of witness ``name`` on checkpoint ``text`` at ``timestamp`` (POSIX s)."""
    if not 0 < timestamp < 2**63:
        raise ValueError("a cosignature's timestamp is a positive POSIX time below 2**63")
    signature = key.sign(cosigned_message(text, timestamp))
    return SignatureLine(
        name, note_key_id(name, COSIGNATURE_V1, raw(key.public_key())), struct.pack(">Q", timestamp) + signature
    )


def verify_cosignature(line: SignatureLine, text: str, witness: WitnessKey) -> int | None:
    """Return the timestamp of ``witness``'s valid cosignature ``line`` on ``text``, else ``None``."""
    if line.name != witness.name or line.key_id != witness.key_id or len(line.signature) != 8 + 64:
        return None
    (timestamp,) = struct.unpack(">Q", line.signature[:8])
    if not 0 < timestamp < 2**63:
        return None
    try:
        witness.public_key.verify(line.signature[8:], cosigned_message(text, timestamp))
    except InvalidSignature:
        return None
    return int(timestamp)


@dataclass(frozen=True)
class WitnessedCheck:
    """Outcome of :func:`check_witnessed`: the checkpoint read, the witnesses that cosigned it, the problems."""

    checkpoint: Checkpoint | None
    cosigned_by: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Return whether nothing is wrong."""
        return not self.problems


def check_witnessed(
    note: str, log_key: tuple[str, Ed25519PublicKey], witnesses: list[WitnessKey], quorum: int
) -> WitnessedCheck:
    """Check a checkpoint note offline: the log's signature and at least ``quorum`` valid cosignatures.

    ``log_key`` is (origin, public key). Signature lines of unknown keys are ignored (signed-note); a line
    that names a configured witness's key and does not verify is a problem.
    """
    origin, public_key = log_key
    try:
        text, lines = open_note(note)
        checkpoint = parse_checkpoint(text)
    except ValueError as error:
        return WitnessedCheck(None, (), (f"not a checkpoint note: {error}",))
    problems = []
    if checkpoint.origin != origin:
        problems.append(f"the checkpoint's origin is {checkpoint.origin!r}, not {origin!r}")
    if not verify_log_signature(text, lines, origin, public_key):
        problems.append("the log's signature on the checkpoint is missing or does not verify")
    cosigned = []
    for witness in witnesses:
        own = [line for line in lines if line.name == witness.name and line.key_id == witness.key_id]
        if not own:
            continue
        if all(verify_cosignature(line, text, witness) is not None for line in own):
            cosigned.append(witness.name)
        else:
            problems.append(f"the cosignature of {witness.name} does not verify")
    if len(cosigned) < quorum:
        problems.append(f"{len(cosigned)} of the required {quorum} witnesses cosigned the checkpoint")
    return WitnessedCheck(checkpoint, tuple(cosigned), tuple(problems))
