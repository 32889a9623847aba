"""The Merkle tree over the audit log, its signed tree heads, proofs, and the signing key.

The tree is computed from the log itself — leaf ``i`` is ``entry_hash`` of entry ``seq = i + 1`` (32 raw
bytes, see ``core.merkle``) — and nothing about it is stored in the database, so no tree state can
disagree with the log. :class:`AuditTree` is a process-local cache of it:

* :meth:`AuditTree.sync` reads only the entries it has not seen (``seq > size``) and checks each one as
  :func:`core.audit.verify_chain` does (sequence, ``prev_hash`` link, recomputed hash), so a head is
  never signed over an entry that does not verify;
* before that it compares its last leaf with the log's entry at that sequence number. Because each entry
  hash covers its predecessor, rewriting any earlier row *and* recomputing the chain changes that last
  hash, and the cache is rebuilt from the log; rewriting a row without recomputing the chain leaves the
  entry hashes — the leaves — as they were, and :func:`core.audit.verify_chain` reports the row;
* a rebuilt tree is never signed quietly: every signing path (:meth:`AuditTree.tree_head`,
  :meth:`AuditTree.anchor_entry`, :meth:`AuditTree.head_at`, :meth:`AuditTree.head_through`) first checks
  that the log extends the last head any process signed (``core.audit_heads``, shared in the database)
  and refuses with ``503 audit/log-inconsistent`` when it was rewritten or truncated; each head it signs
  is stored there in the caller's transaction (ADR 028).

Verification never trusts the cache: clients check proofs against heads they kept
(``core.merkle.verify_inclusion`` / ``verify_consistency``), and :func:`check_kept_head` recomputes the
root from the entries.

The Ed25519 signing key is read from ``SHANHAI_AUDIT_SIGNING_KEY_FILE``; in development a key is generated
once into ``data_dir`` (mode 0600), as the JWT secret is. It is never stored in the database.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit_heads
from core.audit import GENESIS_HASH, AuditEntry, check_entry, iter_entries
from core.clock import Clock
from core.errors import AuditChainBroken, InvalidInput, NotFound
from core.merkle import HASH_SIZE, MerkleTree, leaf_hash
from core.metrics import record_audit_tree_size
from core.settings import Settings
from core.tree_head import (
    SignedTreeHead,
    load_private_key_pem,
    private_key_pem,
    sign_tree_head,
    verify_tree_head,
)


def load_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """Return the audit signing key of ``settings``, generating the development key when absent.

    Raises:
        FileNotFoundError: ``SHANHAI_AUDIT_SIGNING_KEY_FILE`` names a file that does not exist.
        ValueError: The file is not an unencrypted PEM Ed25519 private key.
    """
    path = settings.audit_signing_key_path
    if settings.audit_signing_key_file is None and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_bytes(private_key_pem(Ed25519PrivateKey.generate()))
    return load_private_key_pem(path.read_bytes())


@dataclass(frozen=True)
class InclusionProof:
    """Audit path of one entry in the tree of ``tree_size`` entries."""

    seq: int
    leaf_index: int
    tree_size: int
    entry_hash: str
    leaf_hash: str
    audit_path: list[str]
    root_hash: str

    def as_dict(self) -> dict[str, Any]:
        """Return the proof as a JSON-ready mapping."""
        return {
            "seq": self.seq,
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "entry_hash": self.entry_hash,
            "leaf_hash": self.leaf_hash,
            "audit_path": list(self.audit_path),
            "root_hash": self.root_hash,
        }


@dataclass(frozen=True)
class ConsistencyProof:
    """Proof that the tree of ``first`` entries is a prefix of the tree of ``second`` entries."""

    first: int
    second: int
    first_root_hash: str
    second_root_hash: str
    proof: list[str]

    def as_dict(self) -> dict[str, Any]:
        """Return the proof as a JSON-ready mapping."""
        return {
            "first": self.first,
            "second": self.second,
            "first_root_hash": self.first_root_hash,
            "second_root_hash": self.second_root_hash,
            "proof": list(self.proof),
        }


@dataclass(frozen=True)
class EntryPosition:
    """Where an entry sits in the tree, for embedding in certificates (verify offline with a proof)."""

    seq: int
    leaf_index: int
    tree_size: int
    root_hash: str


class AuditTree:
    """Process-local, incrementally synced Merkle tree over ``audit_log`` (thread-safe)."""

    def __init__(self) -> None:
        self._tree = MerkleTree()
        self._entry_hashes = bytearray()  # leaf data, 32 bytes per entry, to answer with the entry hash
        self._last_hash = GENESIS_HASH
        self._lock = threading.Lock()

    @contextmanager
    def _locked(self, session: Session) -> Iterator[None]:
        """Hold the cache's lock, the session's transaction begun first.

        Locks are always taken in one order — the database's, then the cache's: on SQLite a transaction
        begins with ``BEGIN IMMEDIATE`` (the write lock), and a thread beginning one while holding the cache
        would wait for a writer that waits for the cache (``head_through`` runs under the chain-head lock).
        """
        session.connection()
        with self._lock:
            yield

    def sync(self, session: Session) -> int:
        """Bring the tree up to the log; return its size.

        Raises:
            AuditChainBroken: A new entry does not verify; the tree stops before it.
        """
        with self._locked(session):
            return self._sync(session).size

    def _sync(self, session: Session, upto: int | None = None) -> MerkleTree:
        size = self._tree.size
        if size:
            stored = session.scalar(select(AuditEntry.entry_hash).where(AuditEntry.seq == size))
            if stored != self._last_hash:  # rows rewritten or removed: rebuild from the log
                self._tree, self._entry_hashes, self._last_hash = MerkleTree(), bytearray(), GENESIS_HASH
        for entry in iter_entries(session, after=self._tree.size):
            if upto is not None and entry.seq > upto:
                break
            reason = check_entry(entry, self._tree.size + 1, self._last_hash)
            if reason is not None:
                raise AuditChainBroken(f"audit entry {entry.seq} does not verify: {reason}", entry.seq)
            data = bytes.fromhex(entry.entry_hash)
            self._tree.append(data)
            self._entry_hashes += data
            self._last_hash = entry.entry_hash
        record_audit_tree_size(self._tree.size)
        return self._tree

    def _entry_hash_at(self, index: int) -> str:
        return self._entry_hashes[index * HASH_SIZE : (index + 1) * HASH_SIZE].hex()

    def _sync_extending(self, session: Session, upto: int | None = None) -> MerkleTree:
        """Sync (as :meth:`_sync`), then refuse a tree that does not extend the last signed head.

        Every signing path goes through here: the stored head is read before the log (see
        :func:`core.audit_heads.last_head`).

        Raises:
            AuditLogInconsistent: The log was rewritten or truncated since the last signed head.
            AuditChainBroken: An entry does not verify.
        """
        last = audit_heads.last_head(session)
        tree = self._sync(session, upto)
        audit_heads.check_extends(tree, last)
        return tree

    @staticmethod
    def _sign(session: Session, key: Ed25519PrivateKey, size: int, root: str, clock: Clock) -> SignedTreeHead:
        head = sign_tree_head(key, tree_size=size, root_hash=root, timestamp=clock.now().isoformat())
        audit_heads.record(session, head)
        return head

    def tree_head(self, session: Session, key: Ed25519PrivateKey, clock: Clock) -> SignedTreeHead:
        """Sign the head of the whole log as it is now and store it in ``session`` (the caller commits).

        Raises:
            AuditLogInconsistent: The log does not extend the last signed head; nothing is signed.
        """
        with self._locked(session):
            tree = self._sync_extending(session)
            return self._sign(session, key, tree.size, tree.root().hex(), clock)

    def inclusion_proof(self, session: Session, seq: int, tree_size: int | None = None) -> InclusionProof:
        """Return the audit path of entry ``seq`` in the tree of ``tree_size`` entries (default: all).

        Raises:
            InvalidInput: ``tree_size`` is larger than the log.
            NotFound: Entry ``seq`` is not in the tree of ``tree_size`` entries.
        """
        with self._locked(session):
            tree = self._sync(session)
            size = _checked_size(tree, tree_size, "tree_size")
            if not 1 <= seq <= size:
                raise NotFound(f"audit entry {seq} is not in the tree of {size} entries")
            leaf = tree.leaf_hash_at(seq - 1)
            return InclusionProof(
                seq=seq,
                leaf_index=seq - 1,
                tree_size=size,
                entry_hash=self._entry_hash_at(seq - 1),
                leaf_hash=leaf.hex(),
                audit_path=[node.hex() for node in tree.inclusion_proof(seq - 1, size)],
                root_hash=tree.root(size).hex(),
            )

    def consistency_proof(self, session: Session, first: int, second: int | None = None) -> ConsistencyProof:
        """Return the proof that the first ``first`` entries are a prefix of the first ``second`` (default: all).

        Raises:
            InvalidInput: ``second`` is larger than the log, or ``first`` is not in ``1..second``.
        """
        with self._locked(session):
            tree = self._sync(session)
            size = _checked_size(tree, second, "second")
            if not 1 <= first <= size:
                raise InvalidInput(
                    f"first must be between 1 and {size}",
                    [{"pointer": "/query/first", "reason": f"{first} is not in 1..{size}"}],
                )
            return ConsistencyProof(
                first=first,
                second=size,
                first_root_hash=tree.root(first).hex(),
                second_root_hash=tree.root(size).hex(),
                proof=[node.hex() for node in tree.consistency_proof(first, size)],
            )

    def entry_position(self, session: Session, seq: int) -> EntryPosition:
        """Return (leaf index, tree size, root) of entry ``seq`` in the tree of the whole log now.

        Call it after the entry's transaction has committed: a tree that saw uncommitted entries is
        rebuilt on the next sync if they are rolled back, and its root would name a log that never existed.
        :meth:`anchor_entry` returns it together with the signed head of that very size.

        Raises:
            NotFound: No entry ``seq`` in the log.
        """
        with self._locked(session):
            tree = self._sync(session)
            if not 1 <= seq <= tree.size:
                raise NotFound(f"audit entry {seq} is not in the log of {tree.size} entries")
            return EntryPosition(seq=seq, leaf_index=seq - 1, tree_size=tree.size, root_hash=tree.root().hex())

    def anchor_entry(
        self, session: Session, seq: int, key: Ed25519PrivateKey, clock: Clock
    ) -> tuple[EntryPosition, SignedTreeHead]:
        """Return the position of entry ``seq`` and the signed head of the same tree, read under one lock.

        What a certificate embeds: anyone holding it verifies offline with an inclusion proof for
        (``leaf_index``, ``tree_size``) and, later, consistency from that head to any newer one. The head is
        stored in ``session`` (the caller commits).

        Raises:
            AuditLogInconsistent: The log does not extend the last signed head; nothing is signed.
            NotFound: No entry ``seq`` in the log.
        """
        with self._locked(session):
            tree = self._sync_extending(session)
            if not 1 <= seq <= tree.size:
                raise NotFound(f"audit entry {seq} is not in the log of {tree.size} entries")
            root = tree.root().hex()
            head = self._sign(session, key, tree.size, root, clock)
            return EntryPosition(seq=seq, leaf_index=seq - 1, tree_size=tree.size, root_hash=root), head

    def head_at(self, session: Session, size: int, key: Ed25519PrivateKey, clock: Clock) -> SignedTreeHead:
        """Sign the head of the first ``size`` entries of the committed log (signed now, over that prefix).

        The log is append-only, so the root of its first ``size`` entries never changes: a head signed
        later over that prefix commits to exactly what a head signed right after entry ``size`` would. The
        whole log must still extend the last signed head; the head is stored in ``session`` (the caller commits).

        Raises:
            AuditLogInconsistent: The log does not extend the last signed head; nothing is signed.
            NotFound: The log has fewer than ``size`` entries.
        """
        with self._locked(session):
            tree = self._sync_extending(session)
            if not 1 <= size <= tree.size:
                raise NotFound(f"the log has {tree.size} entries, not {size}")
            return self._sign(session, key, size, tree.root(size).hex(), clock)

    def head_through(self, session: Session, entry: AuditEntry, key: Ed25519PrivateKey, clock: Clock) -> SignedTreeHead:
        """Sign the head of the log up to and including ``entry``, appended in ``session``'s open transaction.

        The caller holds the chain head's lock (it just appended ``entry``), so the log before it is committed
        and final. The root is computed as if ``entry`` were appended, without putting it in the cache: if the
        transaction rolls back, the cache holds nothing that never existed (ADR 023). The log before ``entry``
        must extend the last signed head; the head is stored in the same transaction, so it is kept if and only
        if ``entry`` is.

        Raises:
            AuditLogInconsistent: The log does not extend the last signed head; nothing is signed.
            AuditChainBroken: ``entry`` does not follow the log (sequence, link or hash).
        """
        with self._locked(session):
            last = audit_heads.last_head(session)
            tree = self._sync(session, upto=entry.seq - 1)
            if tree.size != entry.seq - 1:  # the cache ran ahead of this transaction: rebuild it from the log
                self._tree, self._entry_hashes, self._last_hash = MerkleTree(), bytearray(), GENESIS_HASH
                tree = self._sync(session, upto=entry.seq - 1)
            audit_heads.check_extends(tree, last)
            reason = check_entry(entry, tree.size + 1, self._last_hash)
            if reason is not None:
                raise AuditChainBroken(f"audit entry {entry.seq} does not verify: {reason}", entry.seq)
            root = tree.root_with_next(leaf_hash(bytes.fromhex(entry.entry_hash)))
            return self._sign(session, key, entry.seq, root.hex(), clock)


@dataclass(frozen=True)
class Notary:
    """The app's audit tree and signing key: what a service needs to sign a tree head in its own transaction."""

    tree: AuditTree
    key: Ed25519PrivateKey

    def head_through(self, session: Session, entry: AuditEntry, clock: Clock) -> SignedTreeHead:
        """Sign the head of the log up to and including ``entry`` (see :meth:`AuditTree.head_through`)."""
        return self.tree.head_through(session, entry, self.key, clock)

    def head_at(self, session: Session, size: int, clock: Clock) -> SignedTreeHead:
        """Sign the head of the first ``size`` entries of the committed log (see :meth:`AuditTree.head_at`)."""
        return self.tree.head_at(session, size, self.key, clock)


def publish_tree_head(session: Session, tree: AuditTree, key: Ed25519PrivateKey, clock: Clock) -> SignedTreeHead:
    """Sign the head of the whole log, store it and commit: the command behind ``GET /audit/tree-head``.

    Raises:
        AuditLogInconsistent: The log does not extend the last signed head; nothing is signed or stored.
        AuditChainBroken: An entry does not verify.
    """
    head = tree.tree_head(session, key, clock)
    session.commit()
    return head


def _checked_size(tree: MerkleTree, requested: int | None, name: str) -> int:
    if requested is None:
        return tree.size
    if not 0 <= requested <= tree.size:
        raise InvalidInput(
            f"{name} must be between 0 and the log's {tree.size} entries",
            [{"pointer": f"/query/{name}", "reason": f"{requested} is not in 0..{tree.size}"}],
        )
    return requested


def check_kept_head(tree: MerkleTree, kept: SignedTreeHead, public_key: Ed25519PublicKey) -> list[str]:
    """Return every reason why ``tree`` (rebuilt from entries) is not an extension of the head ``kept``.

    The kept head is checked on its own (signature and key id) and against the recomputed root of the
    first ``kept.tree_size`` leaves; an empty list means the log still holds exactly what the head
    committed to, with possibly more entries after it.
    """
    problems: list[str] = []
    if not verify_tree_head(kept, public_key):
        problems.append("the kept tree head's signature does not verify with the public key")
    if kept.tree_size > tree.size:
        problems.append(
            f"the log has {tree.size} entries but the kept tree head covers {kept.tree_size}: entries were removed"
        )
    elif tree.root(kept.tree_size).hex() != kept.root_hash:
        problems.append(f"the first {kept.tree_size} entries no longer hash to the kept root: history was rewritten")
    return problems
