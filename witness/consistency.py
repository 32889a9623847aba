r"""RFC 6962 §2.1.2 consistency proofs, verified by retracing how they were built (the witness's own code).

Deliberately not the platform's verifier (``core.merkle`` follows RFC 9162 §2.1.4.2's bit-walk): this one
mirrors RFC 6962's ``SUBPROOF(m, D[n], b)`` recursion. A proof lists, innermost first, the hashes that
``SUBPROOF`` appended on its way down; walking the same recursion from the outside, each level consumes the
*last* remaining hash and rebuilds two roots at once — of the old tree (``m`` leaves) and of the new one
(``n`` leaves). A differential test runs both verifiers on shared vectors.

>>> import hashlib
>>> leaf = lambda d: hashlib.sha256(b"\x00" + d).digest()
>>> node = lambda l, r: hashlib.sha256(b"\x01" + l + r).digest()
>>> a, b, c = leaf(b"a"), leaf(b"b"), leaf(b"c")
>>> verify_consistency(2, 3, node(a, b), node(node(a, b), c), [c])
True
>>> verify_consistency(2, 3, node(a, c), node(node(a, b), c), [c])
False
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()
#: c2sp.org/tlog-witness: a client sends at most 63 proof lines (a tree below 2**63 needs no more).
MAX_PROOF_HASHES = 63


class _Mismatch(Exception):
    """The proof has the wrong number of hashes for the sizes."""


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _retrace(m: int, n: int, whole_old: bool, proof: list[bytes], old_root: bytes) -> tuple[bytes, bytes]:
    """Return (hash of the old part, hash of the new part) of the subtree ``D[0:n]`` holding ``D[0:m]``.

    ``whole_old`` is RFC 6962's ``b``: the subtree still starts where the old tree does, so when ``m == n``
    it *is* the old tree, whose root the verifier already trusts, and the proof carries nothing for it.
    """
    if m == n:
        if whole_old:
            if proof:
                raise _Mismatch
            return old_root, old_root
        if len(proof) != 1:
            raise _Mismatch
        return proof[0], proof[0]
    if not proof:
        raise _Mismatch
    k = _largest_power_of_two_below(n)
    sibling, rest = proof[-1], proof[:-1]
    if m <= k:  # the old tree lies in the left subtree; the right one (sibling) is new
        old, new = _retrace(m, k, whole_old, rest, old_root)
        return old, _node(new, sibling)
    # the left subtree (sibling) is complete and shared; the old tree continues into the right one
    old, new = _retrace(m - k, n - k, False, rest, old_root)
    return _node(sibling, old), _node(sibling, new)


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """Return whether ``proof`` shows the tree of ``old_size`` leaves is a prefix of the tree of ``new_size``.

    Sizes of zero follow c2sp.org/tlog-witness: the empty tree (root ``SHA-256("")``) is a prefix of every
    tree and needs an empty proof; equal sizes need equal roots and an empty proof.
    """
    if not 0 <= old_size <= new_size or len(proof) > MAX_PROOF_HASHES:
        return False
    if any(len(item) != 32 for item in proof):
        return False
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    try:
        old, new = _retrace(old_size, new_size, True, list(proof), old_root)
    except _Mismatch:
        return False
    return old == old_root and new == new_root
