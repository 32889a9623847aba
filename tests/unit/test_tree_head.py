"""Signed tree heads: the signed bytes are plain canonical JSON, checked here with a fresh encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.audit_tree import load_signing_key
from core.settings import Settings
from core.tree_head import (
    SignedTreeHead,
    key_id,
    load_private_key_pem,
    load_public_key_pem,
    private_key_pem,
    public_key_pem,
    sign_tree_head,
    verify_tree_head,
)

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ROOT = "ab" * 32
STAMP = "2026-11-25T09:30:00+00:00"


def test_signature_covers_the_canonical_json_of_the_head() -> None:
    head = sign_tree_head(KEY, tree_size=7, root_hash=ROOT, timestamp=STAMP)
    message = json.dumps(
        {"format": "shanhai-sth/1", "key_id": head.key_id, "root_hash": ROOT, "timestamp": STAMP, "tree_size": 7},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    KEY.public_key().verify(bytes.fromhex(head.signature), message)  # raises if not
    assert verify_tree_head(head, KEY.public_key())
    assert SignedTreeHead.from_dict(json.loads(json.dumps(head.as_dict()))) == head


@pytest.mark.parametrize(
    "change",
    [{"tree_size": 8}, {"root_hash": "cd" * 32}, {"timestamp": "2026-11-25T09:31:00+00:00"}, {"signature": "00" * 64}],
)
def test_any_changed_field_fails(change: dict[str, object]) -> None:
    head = sign_tree_head(KEY, tree_size=7, root_hash=ROOT, timestamp=STAMP)
    assert not verify_tree_head(SignedTreeHead.from_dict({**head.as_dict(), **change}), KEY.public_key())


def test_another_key_fails_even_with_its_own_key_id() -> None:
    head = sign_tree_head(KEY, tree_size=7, root_hash=ROOT, timestamp=STAMP)
    other = Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key()
    assert not verify_tree_head(head, other)
    assert not verify_tree_head(SignedTreeHead.from_dict({**head.as_dict(), "key_id": key_id(other)}), other)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"format": "other"}, "not a shanhai-sth/1"),
        ({"tree_size": -1}, "non-negative"),
        ({"tree_size": True}, "non-negative"),
        ({"timestamp": 5}, "timestamp"),
        ({"root_hash": "AB" * 32}, "root_hash"),
        ({"signature": "00"}, "signature"),
    ],
)
def test_malformed_heads_are_refused(data: dict[str, object], message: str) -> None:
    head = sign_tree_head(KEY, tree_size=7, root_hash=ROOT, timestamp=STAMP).as_dict()
    with pytest.raises(ValueError, match=message):
        SignedTreeHead.from_dict({**head, **data})
    del head["key_id"]
    with pytest.raises(ValueError, match="lacks"):
        SignedTreeHead.from_dict(head)


def test_pem_round_trips_and_wrong_key_types() -> None:
    assert key_id(load_public_key_pem(public_key_pem(KEY.public_key()).encode())) == key_id(KEY.public_key())
    assert key_id(load_private_key_pem(private_key_pem(KEY)).public_key()) == key_id(KEY.public_key())
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

    ec = generate_private_key(SECP256R1())
    ec_private = ec.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    ec_public = ec.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match="Ed25519"):
        load_private_key_pem(ec_private)
    with pytest.raises(ValueError, match="Ed25519"):
        load_public_key_pem(ec_public)


def test_development_generates_and_keeps_the_signing_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    key = load_signing_key(settings)
    path = tmp_path / "var" / "audit_signing_key.pem"
    assert path.stat().st_mode & 0o077 == 0
    assert key_id(load_signing_key(Settings(data_dir=tmp_path / "var")).public_key()) == key_id(key.public_key())


def test_configured_signing_key_file_is_read_and_never_generated(tmp_path: Path) -> None:
    path = tmp_path / "sth.pem"
    path.write_bytes(private_key_pem(KEY))
    key = load_signing_key(Settings(data_dir=tmp_path, audit_signing_key_file=path))
    assert key_id(key.public_key()) == key_id(KEY.public_key())
    with pytest.raises(FileNotFoundError):
        load_signing_key(Settings(data_dir=tmp_path, audit_signing_key_file=tmp_path / "missing.pem"))
