"""The witness's ``add-checkpoint``: every answer of c2sp.org/tlog-witness, the kept state and the evidence."""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core import checkpoint
from core.merkle import MerkleTree
from core.metrics import metrics
from witness.server import build_witness
from witness.service import Witness

ORIGIN = "shanhai.test/audit-log"
LOG = Ed25519PrivateKey.generate()
NAME = "witness.fujian.test/shanhai"


def tree_of(labels: list[str]) -> MerkleTree:
    tree = MerkleTree()
    for label in labels:
        tree.append(label.encode())
    return tree


def body(old: int, proof: list[bytes], size: int, root: bytes, key: Ed25519PrivateKey = LOG) -> bytes:
    lines = [f"old {old}", *(base64.b64encode(node).decode() for node in proof)]
    return ("\n".join(lines) + "\n\n" + checkpoint.sign_checkpoint(key, ORIGIN, size, root)).encode()


@pytest.fixture
def witness(tmp_path: Path) -> Witness:
    made = build_witness(NAME, tmp_path, [checkpoint.log_vkey(ORIGIN, LOG.public_key())])
    made.now = lambda: datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    return made


def cosigned(witness: Witness, answer_body: str, size: int, root: bytes) -> bool:
    line = checkpoint.parse_signature_line(answer_body.rstrip("\n"))
    key = checkpoint.WitnessKey(NAME, witness.key.public_key())
    return checkpoint.verify_cosignature(line, checkpoint.checkpoint_text(ORIGIN, size, root), key) is not None


def test_cosigns_consistent_growth_and_keeps_the_latest(witness: Witness) -> None:
    tree = tree_of([f"e{i}" for i in range(9)])
    first = witness.add_checkpoint(body(0, [], 3, tree.root(3)))
    assert first.status == 200 and cosigned(witness, first.body, 3, tree.root(3))
    second = witness.add_checkpoint(body(3, tree.consistency_proof(3, 9), 9, tree.root()))
    assert second.status == 200 and cosigned(witness, second.body, 9, tree.root())
    kept = witness.store.kept(ORIGIN)
    assert kept is not None and kept.tree_size == 9
    again = witness.add_checkpoint(body(9, [], 9, tree.root()))
    assert again.status == 200


def test_answers_of_the_specification(witness: Witness) -> None:
    tree = tree_of(["a", "b", "c", "d"])
    assert witness.add_checkpoint(b"not a request").status == 400
    stranger = Ed25519PrivateKey.generate()
    unknown = checkpoint.sign_checkpoint(stranger, "other.test/log", 1, tree.root(1))
    assert witness.add_checkpoint(f"old 0\n\n{unknown}".encode()).status == 404
    assert witness.add_checkpoint(body(0, [], 2, tree.root(2), key=stranger)).status == 403
    assert witness.add_checkpoint(body(3, [], 2, tree.root(2))).status == 400
    assert witness.add_checkpoint(body(0, [], 2, tree.root(2))).status == 200
    stale = witness.add_checkpoint(body(0, [], 4, tree.root()))
    assert (stale.status, stale.body, stale.content_type) == (409, "2\n", "text/x.tlog.size")
    assert witness.add_checkpoint(body(0, [], 0, bytes(32))).status in (409, 422)
    assert witness.add_checkpoint(body(2, [], 2, tree.root(3))).status == 422


def test_refuses_a_rewritten_history_and_keeps_the_evidence(witness: Witness, caplog: pytest.LogCaptureFixture) -> None:
    honest = tree_of(["a", "b", "c"])
    assert witness.add_checkpoint(body(0, [], 3, honest.root())).status == 200
    forged = tree_of(["a", "B", "c", "d", "e"])
    counter = metrics().witness_refusals.labels(origin=ORIGIN, reason="inconsistent")
    before = counter._value.get()
    with caplog.at_level(logging.ERROR, logger="witness.service"):
        answer = witness.add_checkpoint(body(3, forged.consistency_proof(3, 5), 5, forged.root()))
    assert answer.status == 422
    assert counter._value.get() == before + 1
    assert "refuses to cosign" in caplog.text
    kept = witness.store.kept(ORIGIN)
    assert kept is not None and kept.tree_size == 3  # nothing moved
    [evidence] = witness.store.evidence(ORIGIN)
    assert evidence["kept_checkpoint"].startswith(f"{ORIGIN}\n3\n")
    assert f"{ORIGIN}\n5\n" in evidence["submitted"] and evidence["submitted"].startswith("old 3\n")
