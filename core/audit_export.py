"""Export the audit log with its signed tree head, and verify an export without the database.

An export directory holds three files:

* ``entries.jsonl`` — one entry per line, the canonical JSON of ``{seq, recorded_at, actor, action,
  subject, payload, prev_hash, entry_hash, scheme}`` (``payload`` decoded, so the line is plain JSON;
  ``scheme`` is the entry's canonicalization, ``rfc8785`` or ``shanhai-json/1``, absent in exports written
  before revision 0019 and then ``shanhai-json/1``);
* ``tree-head.json`` — the signed tree head of exactly those entries;
* ``public-key.pem`` — the Ed25519 public key that signed it (convenience: a verifier should hold the key
  from elsewhere and pass it, or rely on the ``key_id`` of a tree head it kept earlier).

:func:`verify_export` recomputes everything from the lines: the hash chain (as ``verify_chain`` does), the
Merkle root, the export's head signature, and — the check that catches an insider who rewrote rows and
recomputed the chain and the tree — that the first ``tree_size`` entries still hash to the root of a tree
head kept from earlier. No database is opened.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit_heads
from core.audit import GENESIS_HASH, LEGACY_SCHEME, AuditEntry, check_entry, iter_entries, payload_text
from core.audit_tree import check_kept_head
from core.canonical import canonical_json
from core.clock import Clock
from core.errors import AuditChainBroken
from core.merkle import MerkleTree
from core.tree_head import SignedTreeHead, load_public_key_pem, public_key_pem, sign_tree_head, verify_tree_head

ENTRIES_FILE = "entries.jsonl"
TREE_HEAD_FILE = "tree-head.json"
PUBLIC_KEY_FILE = "public-key.pem"


@dataclass
class ExportedEntry:
    """One entry as read back from ``entries.jsonl`` (``payload`` re-encoded to its scheme's canonical text).

    Not frozen: it satisfies ``core.audit.ChainEntry`` exactly as an ORM row does.
    """

    seq: int
    recorded_at: str
    actor: str
    action: str
    subject: str
    payload: str
    prev_hash: str
    entry_hash: str
    scheme: str = LEGACY_SCHEME


def export_line(entry: AuditEntry) -> bytes:
    """Return the canonical JSON line of one entry."""
    return canonical_json(
        {
            "seq": entry.seq,
            "recorded_at": entry.recorded_at,
            "actor": entry.actor,
            "action": entry.action,
            "subject": entry.subject,
            "payload": json.loads(entry.payload),
            "prev_hash": entry.prev_hash,
            "entry_hash": entry.entry_hash,
            "scheme": entry.scheme,
        }
    )


def export_log(session: Session, out_dir: Path, *, key: Ed25519PrivateKey, clock: Clock) -> SignedTreeHead:
    """Write the log as it is now to ``out_dir`` and return the head signed over it.

    The size is fixed first (entries below it never change), each entry is checked on the way, and the
    head is signed only when every exported entry verifies.

    Like every signing path, it refuses a log that does not extend the last signed head, and stores the
    head it signs in ``session`` (the caller commits; ADR 028).

    Raises:
        AuditChainBroken: An entry does not verify; nothing is signed.
        AuditLogInconsistent: The log was rewritten or truncated since the last signed head; nothing is signed.
    """
    last = audit_heads.last_head(session)
    size = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
    out_dir.mkdir(parents=True, exist_ok=True)
    tree, prev_hash = MerkleTree(), GENESIS_HASH
    with (out_dir / ENTRIES_FILE).open("wb") as lines:
        for entry in iter_entries(session):
            if entry.seq > size:
                break
            reason = check_entry(entry, tree.size + 1, prev_hash)
            if reason is not None:
                raise AuditChainBroken(f"audit entry {entry.seq} does not verify: {reason}", entry.seq)
            lines.write(export_line(entry) + b"\n")
            tree.append(bytes.fromhex(entry.entry_hash))
            prev_hash = entry.entry_hash
    audit_heads.check_extends(tree, last)
    head = sign_tree_head(key, tree_size=tree.size, root_hash=tree.root().hex(), timestamp=clock.now().isoformat())
    audit_heads.record(session, head)
    write_tree_head(out_dir / TREE_HEAD_FILE, head)
    (out_dir / PUBLIC_KEY_FILE).write_text(public_key_pem(key.public_key()), encoding="ascii")
    return head


def write_tree_head(path: Path, head: SignedTreeHead) -> None:
    """Write ``head`` as indented JSON."""
    path.write_text(json.dumps(head.as_dict(), indent=2) + "\n", encoding="utf-8")


def read_tree_head(path: Path) -> SignedTreeHead:
    """Read a tree head file; raise ``ValueError`` when it is not one."""
    return SignedTreeHead.from_dict(json.loads(path.read_text(encoding="utf-8")))


@dataclass
class ExportReport:
    """Outcome of :func:`verify_export`."""

    entries: int = 0
    root_hash: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Return whether nothing is wrong."""
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready mapping."""
        return {"ok": self.ok, "entries": self.entries, "root_hash": self.root_hash, "problems": list(self.problems)}


def _read_entries(path: Path, report: ExportReport) -> MerkleTree:
    tree, prev_hash = MerkleTree(), GENESIS_HASH
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                data = json.loads(line)
                scheme = data.get("scheme", LEGACY_SCHEME)
                text = payload_text(data["payload"], scheme if isinstance(scheme, str) else LEGACY_SCHEME)
                entry = ExportedEntry(**{**data, "payload": text})
            except (ValueError, TypeError, KeyError):
                report.problems.append(f"line {number} of {path.name} is not an audit entry")
                break
            reason = check_entry(entry, tree.size + 1, prev_hash)
            if reason is not None:
                report.problems.append(f"entry {entry.seq} (line {number}): {reason}")
                break
            tree.append(bytes.fromhex(entry.entry_hash))
            prev_hash = entry.entry_hash
    report.entries = tree.size
    report.root_hash = tree.root().hex()
    return tree


def verify_export(
    export_dir: Path, *, kept_head: SignedTreeHead | None = None, public_key: Ed25519PublicKey | None = None
) -> ExportReport:
    """Verify an export directory against itself and, when given, a tree head kept from earlier.

    Args:
        export_dir: Directory written by :func:`export_log`.
        kept_head: A head obtained earlier (published, or kept by an auditor). The export must extend it.
        public_key: The log's key; default: the export's ``public-key.pem``, which is then trusted only
            as far as its key id matches ``kept_head``.
    """
    report = ExportReport()
    try:
        key = public_key or load_public_key_pem((export_dir / PUBLIC_KEY_FILE).read_bytes())
        export_head = read_tree_head(export_dir / TREE_HEAD_FILE)
        tree = _read_entries(export_dir / ENTRIES_FILE, report)
    except (OSError, ValueError) as error:
        report.problems.append(f"export is unreadable: {error}")
        return report
    if report.problems:
        return report
    if not verify_tree_head(export_head, key):
        report.problems.append("the export's tree head signature does not verify with the public key")
    if export_head.tree_size != tree.size or export_head.root_hash != report.root_hash:
        report.problems.append(
            f"the export's tree head ({export_head.tree_size} entries, root {export_head.root_hash[:16]}…) "
            f"does not match its entries ({tree.size}, root {report.root_hash[:16]}…)"
        )
    if kept_head is not None:
        report.problems.extend(check_kept_head(tree, kept_head, key))
    return report
