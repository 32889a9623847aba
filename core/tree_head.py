"""Signed tree heads (STH) of the audit log: Ed25519 over the canonical JSON of the head.

Pure: keys arrive as objects; reading the key file is ``core.audit_tree``'s job.

A tree head says "the audit log of ``tree_size`` entries has Merkle root ``root_hash``", signed at
``timestamp`` with the key whose id is ``key_id``. The signed bytes are the canonical JSON
(``core.canonical``) of::

    {"format": "shanhai-sth/1", "key_id": …, "root_hash": …, "timestamp": …, "tree_size": …}

so anyone can rebuild them with a JSON library and check the signature with any Ed25519
implementation. ``key_id`` is the hex SHA-256 of the raw 32-byte public key. Hashes and the
signature are lowercase hex.

>>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
>>> key = Ed25519PrivateKey.from_private_bytes(bytes(32))
>>> head = sign_tree_head(key, tree_size=1, root_hash="ab" * 32, timestamp="2026-11-25T09:30:00+00:00")
>>> verify_tree_head(head, key.public_key())
True
>>> verify_tree_head(SignedTreeHead.from_dict({**head.as_dict(), "tree_size": 2}), key.public_key())
False
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.canonical import canonical_json

FORMAT = "shanhai-sth/1"
ALGORITHM = "Ed25519"
_HEX_DIGITS = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class SignedTreeHead:
    """One signed tree head, as published and as kept by auditors."""

    tree_size: int
    root_hash: str
    timestamp: str
    key_id: str
    signature: str

    def signed_bytes(self) -> bytes:
        """Return the bytes the signature covers."""
        return signed_message(self.tree_size, self.root_hash, self.timestamp, self.key_id)

    def as_dict(self) -> dict[str, Any]:
        """Return the head as a JSON-ready mapping (what is published)."""
        return {"format": FORMAT, "algorithm": ALGORITHM, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignedTreeHead:
        """Read a published head; raise ``ValueError`` on a wrong format or a malformed field."""
        if data.get("format", FORMAT) != FORMAT or data.get("algorithm", ALGORITHM) != ALGORITHM:
            raise ValueError(f"not a {FORMAT} {ALGORITHM} tree head")
        try:
            head = cls(
                tree_size=data["tree_size"],
                root_hash=data["root_hash"],
                timestamp=data["timestamp"],
                key_id=data["key_id"],
                signature=data["signature"],
            )
        except KeyError as missing:
            raise ValueError(f"tree head lacks {missing}") from None
        if not isinstance(head.tree_size, int) or isinstance(head.tree_size, bool) or head.tree_size < 0:
            raise ValueError("tree_size must be a non-negative integer")
        if not isinstance(head.timestamp, str):
            raise ValueError("timestamp must be a string")
        for name, length in (("root_hash", 64), ("key_id", 64), ("signature", 128)):
            value = getattr(head, name)
            if not isinstance(value, str) or len(value) != length or not set(value) <= _HEX_DIGITS:
                raise ValueError(f"{name} must be {length} lowercase hex digits")
        return head


def signed_message(tree_size: int, root_hash: str, timestamp: str, key_id: str) -> bytes:
    """Return the canonical bytes of a tree head (what is signed)."""
    return canonical_json(
        {"format": FORMAT, "key_id": key_id, "root_hash": root_hash, "timestamp": timestamp, "tree_size": tree_size}
    )


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    """Return the 32 raw bytes of ``public_key``."""
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """Return the key id: hex SHA-256 of the raw public key."""
    return hashlib.sha256(raw_public_key(public_key)).hexdigest()


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    """Return ``public_key`` as a PEM SubjectPublicKeyInfo (what ``openssl pkey -pubout`` prints)."""
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode("ascii")


def load_public_key_pem(pem: bytes) -> Ed25519PublicKey:
    """Read a PEM public key; raise ``ValueError`` unless it is an Ed25519 key."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the public key is not an Ed25519 key")
    return key


def load_private_key_pem(pem: bytes) -> Ed25519PrivateKey:
    """Read an unencrypted PEM (PKCS#8) private key; raise ``ValueError`` unless it is Ed25519."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the audit signing key is not an Ed25519 key")
    return key


def private_key_pem(private_key: Ed25519PrivateKey) -> bytes:
    """Return ``private_key`` as unencrypted PEM PKCS#8 (what ``openssl genpkey -algorithm ed25519`` writes)."""
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def sign_tree_head(private_key: Ed25519PrivateKey, *, tree_size: int, root_hash: str, timestamp: str) -> SignedTreeHead:
    """Sign the head (``tree_size``, ``root_hash``) at ``timestamp``."""
    kid = key_id(private_key.public_key())
    signature = private_key.sign(signed_message(tree_size, root_hash, timestamp, kid))
    return SignedTreeHead(tree_size, root_hash, timestamp, kid, signature.hex())


def verify_tree_head(head: SignedTreeHead, public_key: Ed25519PublicKey) -> bool:
    """Return whether ``head`` was signed by ``public_key`` and names that key."""
    if head.key_id != key_id(public_key):
        return False
    try:
        public_key.verify(bytes.fromhex(head.signature), head.signed_bytes())
    except (InvalidSignature, ValueError):
        return False
    return True
