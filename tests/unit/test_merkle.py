"""RFC 6962 Merkle tree: known answers, an independent implementation, and Hypothesis properties.

The reference below is written from the definitions of RFC 6962 §2.1 with ``hashlib`` only — MTH, PATH and
SUBPROOF as recursive functions over the list of leaves, and verifiers that rebuild the roots by the same
recursion — and shares no code with ``core.merkle`` (whose verifiers follow the iterative RFC 9162
algorithms and whose tree reads stored subtree hashes).

Known answers: the Certificate Transparency test vectors (google/certificate-transparency
``cpp/merkletree/merkle_tree_test.cc``, reused by Trillian): eight leaf inputs, the roots of sizes 0..8,
and some audit paths and consistency proofs. The reference computes the same values from the definition,
which the first test checks, so the vectors are not taken on trust.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    leaf_hash,
    root_of,
    split_point,
    verify_consistency,
    verify_inclusion,
)

# --- independent reference (RFC 6962 §2.1, recursive, hashlib only) ---------------------------------


def ref_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def ref_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def ref_k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = ref_k(len(leaves))
    return ref_node(ref_mth(leaves[:k]), ref_mth(leaves[k:]))


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = ref_k(len(leaves))
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [ref_mth(leaves)]
    k = ref_k(n)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], whole), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def ref_root_from_path(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes | None:
    """Rebuild the root by walking PATH's recursion backwards; None when the path has the wrong length."""
    if size == 1:
        return leaf if not path else None
    if not path:
        return None
    k = ref_k(size)
    if index < k:
        inner = ref_root_from_path(index, k, leaf, path[:-1])
        return None if inner is None else ref_node(inner, path[-1])
    inner = ref_root_from_path(index - k, size - k, leaf, path[:-1])
    return None if inner is None else ref_node(path[-1], inner)


def ref_roots_from_subproof(
    m: int, n: int, proof: list[bytes], old_root: bytes, whole: bool
) -> tuple[bytes, bytes] | None:
    """Return (old root, new root) implied by SUBPROOF(m, D[n], whole), or None when malformed."""
    if m == n:
        if whole:
            return (old_root, old_root) if not proof else None
        return (proof[0], proof[0]) if len(proof) == 1 else None
    if not proof:
        return None
    k = ref_k(n)
    if m <= k:
        inner = ref_roots_from_subproof(m, k, proof[:-1], old_root, whole)
        return None if inner is None else (inner[0], ref_node(inner[1], proof[-1]))
    inner = ref_roots_from_subproof(m - k, n - k, proof[:-1], old_root, False)
    return None if inner is None else (ref_node(proof[-1], inner[0]), ref_node(proof[-1], inner[1]))


def ref_verify_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    return 0 <= index < size and ref_root_from_path(index, size, leaf, path) == root


def ref_verify_consistency(m: int, n: int, old: bytes, new: bytes, proof: list[bytes]) -> bool:
    if not 1 <= m <= n:
        return False
    roots = ref_roots_from_subproof(m, n, proof, old, True)
    return roots is not None and roots == (old, new)


# --- known answers --------------------------------------------------------------------------------

CT_INPUTS = [
    bytes.fromhex(h)
    for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size, audit path)
CT_PATHS = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
# (first, second, consistency proof)
CT_CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip

CT_LEAVES = [ref_leaf(d) for d in CT_INPUTS]


def ct_tree() -> MerkleTree:
    tree = MerkleTree()
    for data in CT_INPUTS:
        tree.append(data)
    return tree


def test_reference_reproduces_the_vectors_from_the_definition() -> None:
    assert [ref_mth(CT_LEAVES[:n]).hex() for n in range(9)] == CT_ROOTS
    assert [(i, n, [p.hex() for p in ref_path(i, CT_LEAVES[:n])]) for i, n, _ in CT_PATHS] == CT_PATHS
    for m, n, proof in CT_CONSISTENCY:
        assert [p.hex() for p in ref_subproof(m, CT_LEAVES[:n], True)] == proof


def test_known_roots() -> None:
    tree = ct_tree()
    assert EMPTY_ROOT.hex() == CT_ROOTS[0] == root_of([]).hex()
    assert [tree.root(n).hex() for n in range(9)] == CT_ROOTS
    assert leaf_hash(b"").hex() == CT_ROOTS[1]


@pytest.mark.parametrize(("index", "size", "path"), CT_PATHS)
def test_known_audit_paths(index: int, size: int, path: list[str]) -> None:
    proof = ct_tree().inclusion_proof(index, size)
    assert [p.hex() for p in proof] == path
    root = bytes.fromhex(CT_ROOTS[size])
    assert verify_inclusion(CT_LEAVES[index], index, size, proof, root)
    assert ref_verify_inclusion(index, size, CT_LEAVES[index], proof, root)


@pytest.mark.parametrize(("first", "second", "proof"), CT_CONSISTENCY)
def test_known_consistency_proofs(first: int, second: int, proof: list[str]) -> None:
    computed = ct_tree().consistency_proof(first, second)
    assert [p.hex() for p in computed] == proof
    old, new = bytes.fromhex(CT_ROOTS[first]), bytes.fromhex(CT_ROOTS[second])
    assert verify_consistency(first, second, old, new, computed)
    assert ref_verify_consistency(first, second, old, new, computed)


# --- properties -----------------------------------------------------------------------------------


def leaves_of(n: int, salt: int = 0) -> list[bytes]:
    return [ref_leaf(f"{salt}:{i}".encode()) for i in range(n)]


@st.composite
def sized_index(draw: st.DrawFn) -> tuple[int, int, int]:
    n = draw(st.integers(min_value=1, max_value=300))
    size = draw(st.integers(min_value=1, max_value=n))
    index = draw(st.integers(min_value=0, max_value=size - 1))
    return n, size, index


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int, int]:
    n = draw(st.integers(min_value=1, max_value=300))
    second = draw(st.integers(min_value=1, max_value=n))
    first = draw(st.integers(min_value=1, max_value=second))
    return n, first, second


@given(sized_index(), st.data())
def test_inclusion_proofs_match_the_reference_and_tampering_fails(
    case: tuple[int, int, int], data: st.DataObject
) -> None:
    n, size, index = case
    leaves = leaves_of(n)
    tree = MerkleTree.from_leaf_hashes(leaves)
    root = ref_mth(leaves[:size])
    proof = tree.inclusion_proof(index, size)
    assert tree.root(size) == root
    assert proof == ref_path(index, leaves[:size])
    assert verify_inclusion(leaves[index], index, size, proof, root)
    assert ref_verify_inclusion(index, size, leaves[index], proof, root)
    # Tampering: a flipped bit in the leaf, the root or any path element; a wrong index; a cut path.
    flip = data.draw(st.integers(min_value=0, max_value=255))
    bad_leaf = bytes([leaves[index][0] ^ (flip | 1)]) + leaves[index][1:]
    assert not verify_inclusion(bad_leaf, index, size, proof, root)
    assert not verify_inclusion(leaves[index], index, size, proof, bytes([root[0] ^ 1]) + root[1:])
    if proof:
        at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        bad = [*proof[:at], bytes([proof[at][0] ^ 1]) + proof[at][1:], *proof[at + 1 :]]
        assert not verify_inclusion(leaves[index], index, size, bad, root)
        assert not ref_verify_inclusion(index, size, leaves[index], bad, root)
        assert not verify_inclusion(leaves[index], index, size, proof[:-1], root)
        other = (index + 1) % size
        assert not verify_inclusion(leaves[index], other, size, proof, root)
    assert not verify_inclusion(leaves[index], index, size, [*proof, root], root)
    assert not verify_inclusion(leaves[index], size, size, proof, root)


@given(two_sizes(), st.data())
def test_consistency_proofs_match_the_reference_and_tampering_fails(
    case: tuple[int, int, int], data: st.DataObject
) -> None:
    n, first, second = case
    leaves = leaves_of(n)
    tree = MerkleTree.from_leaf_hashes(leaves)
    old, new = ref_mth(leaves[:first]), ref_mth(leaves[:second])
    proof = tree.consistency_proof(first, second)
    assert proof == ref_subproof(first, leaves[:second], True)
    assert verify_consistency(first, second, old, new, proof)
    assert ref_verify_consistency(first, second, old, new, proof)
    # A history rewritten inside the old tree: internally consistent, but not with the kept old root.
    forged = list(leaves)
    forged[data.draw(st.integers(min_value=0, max_value=first - 1))] = ref_leaf(b"forged")
    forged_tree = MerkleTree.from_leaf_hashes(forged)
    forged_proof = forged_tree.consistency_proof(first, second)
    forged_new = forged_tree.root(second)
    assert verify_consistency(first, second, forged_tree.root(first), forged_new, forged_proof)
    assert not verify_consistency(first, second, old, forged_new, forged_proof)
    assert not ref_verify_consistency(first, second, old, forged_new, forged_proof)
    if proof:
        at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        bad = [*proof[:at], proof[at][:-1] + bytes([proof[at][-1] ^ 1]), *proof[at + 1 :]]
        assert not verify_consistency(first, second, old, new, bad)
        assert not ref_verify_consistency(first, second, old, new, bad)
        assert not verify_consistency(first, second, old, new, proof[1:])
    assert not verify_consistency(first, second, old, new, [*proof, new])
    if first < second:
        assert not verify_consistency(first, second, old, bytes(32), proof)


def test_arguments_out_of_range() -> None:
    tree = MerkleTree.from_leaf_hashes(leaves_of(5))
    with pytest.raises(ValueError, match="leaf index"):
        tree.inclusion_proof(5, 5)
    with pytest.raises(ValueError, match="tree size"):
        tree.root(6)
    with pytest.raises(ValueError, match="1 <= first <= second"):
        tree.consistency_proof(0, 3)
    with pytest.raises(ValueError, match="no split point"):
        split_point(1)
    with pytest.raises(ValueError, match="32 bytes"):
        tree.append_leaf_hash(b"short")
    assert tree.leaf_hash_at(4) == leaves_of(5)[4]
    assert not verify_consistency(0, 3, EMPTY_ROOT, tree.root(3), [])
    assert not verify_consistency(2, 3, tree.root(2), tree.root(3), [b"short"])
    assert not verify_consistency(3, 3, tree.root(3), tree.root(3), [tree.root(3)])
    assert not verify_inclusion(leaves_of(5)[0], 0, 5, [b"short"], tree.root())


def test_root_with_next_is_the_root_after_appending_without_appending() -> None:
    tree = MerkleTree()
    for size in range(70):
        digest = leaf_hash(size.to_bytes(4, "big"))
        expected = root_of([leaf_hash(i.to_bytes(4, "big")) for i in range(size + 1)])
        assert tree.root_with_next(digest) == expected and tree.size == size
        tree.append_leaf_hash(digest)
