"""Signed notes, checkpoints and cosignature/v1 — the witness's own reading of the C2SP formats.

Written apart from the platform's ``core.checkpoint`` on purpose: a witness that shared the log's parser
would share its mistakes. The tests cross-check the two (a checkpoint the platform signs is accepted here; a
cosignature made here verifies there).

>>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
>>> key = Ed25519PrivateKey.from_private_bytes(bytes(32))
>>> LogKey.from_vkey(log_vkey("example.com/log", key.public_key())).name
'example.com/log'
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

TYPE_ED25519 = b"\x01"
TYPE_COSIGNATURE_V1 = b"\x04"
DASH = "\u2014"


class NoteError(ValueError):
    """The bytes are not a well-formed signed note or checkpoint."""


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _key_hash(name: str, kind: bytes, key: bytes) -> bytes:
    return hashlib.sha256(b"%s\n%s%s" % (name.encode("utf-8"), kind, key)).digest()[:4]


def log_vkey(name: str, public_key: Ed25519PublicKey) -> str:
    """Return the Ed25519 note vkey of a log key (what the witness is configured with)."""
    key = _raw(public_key)
    return "+".join((name, _key_hash(name, TYPE_ED25519, key).hex(), base64.b64encode(TYPE_ED25519 + key).decode()))


def cosigner_vkey(name: str, public_key: Ed25519PublicKey) -> str:
    """Return the cosignature/v1 vkey of this witness's key (what logs and verifiers are configured with)."""
    key = _raw(public_key)
    return "+".join(
        (name, _key_hash(name, TYPE_COSIGNATURE_V1, key).hex(), base64.b64encode(TYPE_COSIGNATURE_V1 + key).decode())
    )


@dataclass(frozen=True)
class LogKey:
    """One trusted log key: its name (the log's origin), note key id and Ed25519 public key."""

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey

    @classmethod
    def from_vkey(cls, text: str) -> LogKey:
        """Read an Ed25519 (type 0x01) vkey; raise :class:`NoteError` otherwise."""
        fields = text.strip().split("+", 2)  # the base64 key may hold '+' itself
        if len(fields) != 3:
            raise NoteError("a vkey is name+id+key")
        name, key_id_hex, material_b64 = fields
        try:
            key_id, material = bytes.fromhex(key_id_hex), base64.b64decode(material_b64, validate=True)
        except (ValueError, binascii.Error):
            raise NoteError("a vkey's id is hex and its key base64") from None
        if material[:1] != TYPE_ED25519 or len(material) != 33 or _key_hash(name, TYPE_ED25519, material[1:]) != key_id:
            raise NoteError("not an Ed25519 note vkey, or its id does not match")
        return cls(name, key_id, Ed25519PublicKey.from_public_bytes(material[1:]))


@dataclass(frozen=True)
class Note:
    """A signed note split into its text (with the final newline) and (name, key id, signature) triples."""

    text: str
    signatures: tuple[tuple[str, bytes, bytes], ...]

    @classmethod
    def parse(cls, data: str) -> Note:
        """Split ``data``; raise :class:`NoteError` when it is not a signed note."""
        if any(ord(c) < 32 and c != "\n" for c in data) or not data.endswith("\n"):
            raise NoteError("a note is newline-terminated text without control characters")
        cut = data.rfind("\n\n")
        if cut < 0:
            raise NoteError("a note's text and signatures are separated by a blank line")
        signatures = []
        for line in data[cut + 2 :].splitlines():
            head, _, encoded = line.partition(" ")
            name, _, signature_b64 = encoded.partition(" ")
            if head != DASH or not name or "+" in name or " " in signature_b64:
                raise NoteError(f"malformed signature line: {line!r}")
            try:
                blob = base64.b64decode(signature_b64, validate=True)
            except binascii.Error:
                raise NoteError(f"signature is not base64: {line!r}") from None
            if len(blob) < 5:
                raise NoteError(f"signature too short: {line!r}")
            signatures.append((name, blob[:4], blob[4:]))
        if not signatures:
            raise NoteError("a note carries at least one signature")
        return cls(data[: cut + 1], tuple(signatures))

    def verified_by(self, keys: list[LogKey]) -> bool:
        """Return whether a trusted key signed the text and no trusted key's signature fails (signed-note)."""
        good = False
        for name, key_id, signature in self.signatures:
            for key in keys:
                if key.name == name and key.key_id == key_id:
                    try:
                        key.public_key.verify(signature, self.text.encode("utf-8"))
                    except InvalidSignature:
                        return False
                    good = True
        return good


@dataclass(frozen=True)
class CheckpointBody:
    """Origin, size and root of a checkpoint's text."""

    origin: str
    size: int
    root: bytes

    @classmethod
    def parse(cls, text: str) -> CheckpointBody:
        """Read the first three lines (extension lines are kept in the text and signed, not read)."""
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
            raise NoteError("a checkpoint is at least three non-empty lines")
        origin, size_text, root_text = lines[0], lines[1], lines[2]
        if not size_text.isascii() or not size_text.isdigit() or (len(size_text) > 1 and size_text[0] == "0"):
            raise NoteError("the tree size is a decimal without leading zeros")
        try:
            root = base64.b64decode(root_text, validate=True)
        except binascii.Error:
            raise NoteError("the root hash is not base64") from None
        if len(root) != 32:
            raise NoteError("the root hash is not 32 bytes")
        size = int(size_text)
        if size >= 2**63:
            raise NoteError("the tree size is too large")
        return cls(origin, size, root)


def cosignature_line(key: Ed25519PrivateKey, name: str, text: str, timestamp: int) -> str:
    """Return this witness's cosignature/v1 line on checkpoint ``text`` at POSIX ``timestamp``."""
    message = b"cosignature/v1\ntime %d\n%s" % (timestamp, text.encode("utf-8"))
    blob = (
        _key_hash(name, TYPE_COSIGNATURE_V1, _raw(key.public_key())) + struct.pack(">Q", timestamp) + key.sign(message)
    )
    return f"{DASH} {name} {base64.b64encode(blob).decode()}\n"
