"""RFC 6962 / RFC 9162 Merkle tree: roots, inclusion and consistency proofs, and their verifiers.

Pure: no database, files or clock. Hashing follows RFC 6962 §2.1 (restated in RFC 9162 §2.1):

* ``leaf_hash(d) = SHA-256(0x00 || d)``, ``node_hash(l, r) = SHA-256(0x01 || l || r)``;
* the root of an empty tree is ``SHA-256("")``;
* a tree of ``n > 1`` leaves splits at ``k``, the largest power of two strictly less than ``n``.

The audit log's leaf data is the 32 raw bytes of each entry's ``entry_hash`` (see ``core.audit``), in
sequence order: leaf index ``i`` is entry ``seq = i + 1``.

:class:`MerkleTree` is append-only and keeps the hash of every *complete* subtree (``2**level`` leaves
starting at a multiple of ``2**level``), one ``bytearray`` of 32-byte slots per level. Any root, audit
path or consistency proof then costs ``O(log² n)`` hashes at most, never a pass over the leaves. The
verifiers (:func:`verify_inclusion`, :func:`verify_consistency`) are RFC 9162 §2.1.3.2 and §2.1.4.2
literally; they take only the proof and the hashes a client already trusts, never the tree.

>>> tree = MerkleTree()
>>> for data in (b"a", b"b", b"c"):
...     _ = tree.append(data)
>>> root = tree.root()
>>> path = tree.inclusion_proof(2, 3)
>>> verify_inclusion(leaf_hash(b"c"), 2, 3, path, root)
True
>>> verify_consistency(2, 3, tree.root(2), root, tree.consistency_proof(2, 3))
True
>>> verify_consistency(2, 3, tree.root(1), root, tree.consistency_proof(2, 3))
False
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """Return ``SHA-256(0x00 || data)``.

    >>> leaf_hash(b"").hex()[:16]
    '6e340b9cffb37a98'
    """
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def split_point(size: int) -> int:
    """Return the largest power of two strictly less than ``size`` (``size >= 2``).

    >>> [split_point(n) for n in (2, 3, 4, 5, 8, 9)]
    [1, 2, 2, 4, 4, 8]
    """
    if size < 2:
        raise ValueError(f"a tree of {size} leaves has no split point")
    return 1 << ((size - 1).bit_length() - 1)


class MerkleTree:
    """An append-only RFC 6962 tree that keeps every complete-subtree hash.

    Memory: two 32-byte slots per leaf (64 MB at one million leaves). Appending is amortised
    ``O(1)`` hashes. Queries about any earlier size ``n <= size`` are answered too, since a tree of
    ``n`` leaves is made of complete subtrees that never change once full.
    """

    def __init__(self) -> None:
        self._levels: list[bytearray] = [bytearray()]

    @classmethod
    def from_leaf_hashes(cls, hashes: Iterable[bytes]) -> MerkleTree:
        """Return a tree holding ``hashes`` (already leaf hashes) in order."""
        tree = cls()
        for digest in hashes:
            tree.append_leaf_hash(digest)
        return tree

    @property
    def size(self) -> int:
        """Return the number of leaves."""
        return len(self._levels[0]) // HASH_SIZE

    def append(self, data: bytes) -> int:
        """Append the leaf for ``data``; return its index."""
        return self.append_leaf_hash(leaf_hash(data))

    def append_leaf_hash(self, digest: bytes) -> int:
        """Append a leaf given its leaf hash; return its index."""
        if len(digest) != HASH_SIZE:
            raise ValueError(f"a leaf hash has {HASH_SIZE} bytes, not {len(digest)}")
        index = self.size
        self._levels[0] += digest
        level, position, current = 0, index, digest
        while position & 1:  # a right child completes its parent
            left = self._slot(level, position - 1)
            current = node_hash(left, current)
            level, position = level + 1, position >> 1
            if level == len(self._levels):
                self._levels.append(bytearray())
            self._levels[level] += current
        return index

    def leaf_hash_at(self, index: int) -> bytes:
        """Return the leaf hash at ``index``."""
        self._check_index(index, self.size)
        return self._slot(0, index)

    def root(self, size: int | None = None) -> bytes:
        """Return the root of the first ``size`` leaves (default: all)."""
        size = self.size if size is None else size
        self._check_size(size)
        return EMPTY_ROOT if size == 0 else self._range_hash(0, size)

    def root_with_next(self, digest: bytes) -> bytes:
        """Return the root the tree would have after appending the leaf hash ``digest``, without appending it.

        What a transaction that appends an entry signs before it commits: the cache never holds a leaf
        that might still be rolled back.

        >>> tree = MerkleTree.from_leaf_hashes([leaf_hash(b"a")])
        >>> tree.root_with_next(leaf_hash(b"b")) == root_of([leaf_hash(b"a"), leaf_hash(b"b")])
        True
        """
        if len(digest) != HASH_SIZE:
            raise ValueError(f"a leaf hash has {HASH_SIZE} bytes, not {len(digest)}")
        size = self.size + 1

        def mth(start: int) -> bytes:  # MTH(D[start:size]), whose last leaf is the new one
            if size - start == 1:
                return digest
            k = split_point(size - start)
            return node_hash(self._range_hash(start, start + k), mth(start + k))

        return mth(0)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Return the audit path of leaf ``index`` in the tree of the first ``size`` leaves.

        The path is ordered from the leaf's sibling up to the root's child (RFC 6962 §2.1.1 ``PATH``).
        """
        size = self.size if size is None else size
        self._check_size(size)
        self._check_index(index, size)
        path: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            k = split_point(end - start)
            if index < start + k:
                path.append(self._range_hash(start + k, end))
                end = start + k
            else:
                path.append(self._range_hash(start, start + k))
                start += k
        path.reverse()
        return path

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """Return the proof that the first ``first`` leaves are a prefix of the first ``second``.

        RFC 6962 §2.1.2 ``PROOF(m, D[n])``: empty when ``first == second``; ``1 <= first <= second``.
        """
        second = self.size if second is None else second
        self._check_size(second)
        if not 1 <= first <= second:
            raise ValueError(f"a consistency proof needs 1 <= first <= second, not {first} and {second}")
        proof: list[bytes] = []
        start, end, whole = 0, second, True  # ``whole``: the old tree is this very subtree (b in the RFC)
        while first != end - start:
            k = split_point(end - start)
            if first <= k:
                proof.append(self._range_hash(start + k, end))
                end = start + k
            else:
                proof.append(self._range_hash(start, start + k))
                first -= k
                start += k
                whole = False
        if not whole:
            proof.append(self._range_hash(start, end))
        proof.reverse()
        return proof

    def _slot(self, level: int, index: int) -> bytes:
        offset = index * HASH_SIZE
        return bytes(self._levels[level][offset : offset + HASH_SIZE])

    def _range_hash(self, start: int, end: int) -> bytes:
        # MTH(D[start:end]); every range the RFC recursion visits starts at a multiple of the largest
        # power of two not above its length, so its left part is always one stored complete subtree.
        size = end - start
        if size & (size - 1) == 0:
            level = size.bit_length() - 1
            return self._slot(level, start >> level)
        k = split_point(size)
        return node_hash(self._range_hash(start, start + k), self._range_hash(start + k, end))

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} is outside 0..{self.size}")

    @staticmethod
    def _check_index(index: int, size: int) -> None:
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is outside a tree of {size} leaves")


def root_of(hashes: Sequence[bytes]) -> bytes:
    """Return the root of a tree over ``hashes`` (leaf hashes).

    >>> root_of([]) == EMPTY_ROOT
    True
    """
    return MerkleTree.from_leaf_hashes(hashes).root()


def _shift_until_odd_or_zero(fn: int, sn: int) -> tuple[int, int]:
    while fn and not fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> bool:
    """Return whether ``path`` proves leaf hash ``leaf`` at ``index`` in the tree of ``size`` with ``root``.

    RFC 9162 §2.1.3.2, step by step; a malformed proof is ``False``, never an exception.
    """
    if not 0 <= index < size or any(len(p) != HASH_SIZE for p in path):
        return False
    fn, sn, result = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            if not fn & 1:
                fn, sn = _shift_until_odd_or_zero(fn, sn)
        else:
            result = node_hash(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and result == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> bool:
    """Return whether ``proof`` shows the tree (``first``, ``first_root``) is a prefix of (``second``, ``second_root``).

    RFC 9162 §2.1.4.2, step by step; equal sizes need an empty proof and equal roots.
    """
    if not 1 <= first <= second or any(len(p) != HASH_SIZE for p in proof):
        return False
    if first == second:
        return not proof and first_root == second_root
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    first_result = second_result = path[0]
    for sibling in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            first_result = node_hash(sibling, first_result)
            second_result = node_hash(sibling, second_result)
            if not fn & 1:
                fn, sn = _shift_until_odd_or_zero(fn, sn)
        else:
            second_result = node_hash(second_result, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and first_result == first_root and second_result == second_root
