"""The witness's consistency verifier agrees with the platform's on shared vectors (a differential test).

``witness.consistency`` retraces RFC 6962's SUBPROOF recursion; ``core.merkle`` follows RFC 9162's iterative
algorithm. Shared vectors: the Certificate Transparency consistency proofs (``tests/unit/test_merkle.py``),
every valid proof between sizes 1..40, and each of them corrupted (a byte flipped, a hash dropped or added,
the sizes or roots swapped): both verifiers give the same answer on every one.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import merkle
from tests.unit.test_merkle import CT_CONSISTENCY, CT_ROOTS
from witness import consistency

TREE = merkle.MerkleTree()
for number in range(40):
    TREE.append(f"entry {number}".encode())


def both(first: int, second: int, old: bytes, new: bytes, proof: list[bytes]) -> bool:
    ours = consistency.verify_consistency(first, second, old, new, proof)
    theirs = merkle.verify_consistency(first, second, old, new, proof)
    assert ours == theirs, (first, second, len(proof))
    return ours


@pytest.mark.parametrize(("first", "second", "proof"), CT_CONSISTENCY)
def test_certificate_transparency_vectors(first: int, second: int, proof: list[str]) -> None:
    old, new = bytes.fromhex(CT_ROOTS[first]), bytes.fromhex(CT_ROOTS[second])
    path = [bytes.fromhex(node) for node in proof]
    assert both(first, second, old, new, path)
    if old != new:
        assert not both(first, second, new, old, path)


def corruptions(proof: list[bytes]) -> list[list[bytes]]:
    out = [proof[:-1], [*proof, proof[0] if proof else bytes(32)], list(reversed(proof))]
    for index in range(len(proof)):
        flipped = bytearray(proof[index])
        flipped[index % 32] ^= 1
        out.append([*proof[:index], bytes(flipped), *proof[index + 1 :]])
    return [candidate for candidate in out if candidate != proof]


def test_every_proof_up_to_forty_and_its_corruptions() -> None:
    for second in range(1, 41):
        new = TREE.root(second)
        for first in range(1, second + 1):
            old, proof = TREE.root(first), TREE.consistency_proof(first, second)
            assert both(first, second, old, new, proof)
            for bad in corruptions(proof):
                assert not both(first, second, old, new, bad)
            if first < second:
                assert not both(first, second, TREE.root(first + 1), new, proof)
                assert not both(first + 1, second, old, new, proof)


@given(st.integers(1, 40), st.integers(1, 40), st.lists(st.binary(min_size=32, max_size=32), max_size=8))
def test_arbitrary_proofs_get_the_same_answer(first: int, second: int, proof: list[bytes]) -> None:
    both(first, second, TREE.root(min(first, 40)), TREE.root(second), proof)


def test_sizes_zero_follow_tlog_witness() -> None:
    assert consistency.verify_consistency(0, 5, consistency.EMPTY_ROOT, TREE.root(5), [])
    assert not consistency.verify_consistency(0, 5, consistency.EMPTY_ROOT, TREE.root(5), [bytes(32)])
    assert not consistency.verify_consistency(3, 2, TREE.root(3), TREE.root(2), [])
    assert not consistency.verify_consistency(1, 2, TREE.root(1), TREE.root(2), [bytes(32)] * 64)
