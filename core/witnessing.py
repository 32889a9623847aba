"""Witnessed tree heads: submit the audit log's checkpoints to independent witnesses and keep their cosignatures.

The log (this platform) is the client of c2sp.org/tlog-witness: :func:`witness_round` signs the head of the
whole log (through ``AuditTree.tree_head``, so the ADR 028 check runs first and the head is stored), turns it
into a C2SP checkpoint (``core.checkpoint``) and, for each configured witness that has not cosigned that size,
sends (``POST``) ``old <size>``, the consistency proof from the size that witness last cosigned, and the checkpoint
to ``<prefix>/add-checkpoint``. A ``409`` names the witness's size, and the round retries once from it. Each
returned cosignature is verified with the witness's configured key before it is stored (``audit_cosignature``).

A head is **witnessed** once ``quorum`` (k) of the n configured witnesses cosigned it. A witness refusing a
head (``422``: the proof from its kept head does not verify; ``400`` after a ``409`` naming a size larger
than the log: entries were removed) is the outside alarm ADR 028 could not raise on its own: logged at ERROR,
counted as ``shanhai_audit_alarms_total{kind="witness-refused"}``, and that head stays unwitnessed.

Witnessing is asynchronous: rounds run on the Celery beat schedule (``shanhai.audit.witness``), or in a
thread of the API process in the embedded default; a retirement keeps the head signed in its own transaction
(ADR 023) and ``/public/v1/retirements/{code}/witnessed`` links it to the latest witnessed head by a
consistency proof.

**Anchors.** A deployment may also hand each newly witnessed checkpoint to a :class:`HeadAnchor` — for example
a blockchain evidence-preservation service (存证). None is built in: the interface is the contract, and an
anchor's failure never blocks witnessing.
"""

from __future__ import annotations

import base64
import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import BigInteger, CheckConstraint, Integer, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.audit_tree import AuditTree
from core.checkpoint import (
    SignatureLine,
    WitnessKey,
    checkpoint_text,
    log_vkey,
    parse_signature_line,
    sign_checkpoint,
    verify_cosignature,
    witness_key,
)
from core.clock import Clock
from core.db import Base
from core.metrics import record_audit_alarm, record_audit_witnessed_size
from core.settings import Settings

logger = logging.getLogger(__name__)

SIZE_CONTENT_TYPE = "text/x.tlog.size"


class AuditCosignature(Base):
    """One witness's verified cosignature/v1 on the log's checkpoint of ``tree_size`` entries."""

    __tablename__ = "audit_cosignature"

    tree_size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    witness: Mapped[str] = mapped_column(String(200), primary_key=True)
    root_hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(8))
    timestamp: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[str] = mapped_column(String(200))  # base64(key id || u64 timestamp || Ed25519 signature)

    __table_args__ = (CheckConstraint("tree_size >= 0", name="tree_size_not_negative"),)

    def line(self) -> str:
        """Return the cosignature as a note signature line (with its newline)."""
        return f"\u2014 {self.witness} {self.signature}\n"


@dataclass(frozen=True)
class ConfiguredWitness:
    """A witness the log submits to: its key (name, cosignature/v1 public key) and URL prefix."""

    key: WitnessKey
    url: str


@dataclass(frozen=True)
class AnchorReceipt:
    """What an anchoring service answers: where the checkpoint now lives outside the operator's hands."""

    service: str
    reference: str


class HeadAnchor(Protocol):
    """A place outside the operator that keeps witnessed checkpoints (a blockchain evidence service, …).

    ``anchor`` receives the checkpoint note with its cosignatures exactly as published and returns the
    service's receipt; it raises ``OSError`` (or a subclass) when the service cannot be reached.
    """

    name: str

    def anchor(self, checkpoint_note: str) -> AnchorReceipt:
        """Keep ``checkpoint_note`` and return the receipt."""
        ...


class WitnessTransport(Protocol):
    """Sends an ``add-checkpoint`` body to a witness; returns (status, content type, body text)."""

    def add_checkpoint(self, url: str, body: bytes) -> tuple[int, str, str]:
        """``POST <url>/add-checkpoint``; raise ``OSError`` when the witness cannot be reached."""
        ...


class UrllibTransport:
    """:class:`WitnessTransport` over the standard library's HTTP client (no dependency added)."""

    def __init__(self, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s

    def add_checkpoint(self, url: str, body: bytes) -> tuple[int, str, str]:
        """``POST <url>/add-checkpoint``."""
        request = urllib.request.Request(
            url.rstrip("/") + "/add-checkpoint", data=body, method="POST", headers={"Content-Type": "text/plain"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read().decode("utf-8")
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Content-Type", ""), error.read().decode("utf-8", "replace")


@dataclass(frozen=True)
class WitnessPolicy:
    """The log's origin, its witnesses and how many must cosign (k of n)."""

    origin: str
    witnesses: tuple[ConfiguredWitness, ...]
    quorum: int
    anchors: tuple[HeadAnchor, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings, anchors: Sequence[HeadAnchor] = ()) -> WitnessPolicy:
        """Read ``SHANHAI_AUDIT_LOG_ORIGIN``, ``SHANHAI_AUDIT_WITNESSES`` and ``SHANHAI_AUDIT_WITNESS_QUORUM``."""
        witnesses = []
        for item in settings.audit_witnesses:
            vkey, url = item.split()
            witnesses.append(ConfiguredWitness(witness_key(vkey), url))
        quorum = settings.audit_witness_quorum or len(witnesses)
        return cls(settings.audit_log_origin, tuple(witnesses), quorum, tuple(anchors))

    @property
    def keys(self) -> tuple[WitnessKey, ...]:
        """Return the witnesses' keys."""
        return tuple(witness.key for witness in self.witnesses)


@dataclass
class WitnessOutcome:
    """What one witness answered in a round."""

    witness: str
    cosigned: bool
    status: int | None = None
    detail: str = ""


@dataclass
class WitnessRound:
    """Outcome of :func:`witness_round`."""

    tree_size: int
    root_hash: str
    cosignatures: int
    witnessed: bool
    outcomes: list[WitnessOutcome] = field(default_factory=list)
    anchored: list[AnchorReceipt] = field(default_factory=list)


def cosignatures_for(session: Session, tree_size: int, root_hash: str, policy: WitnessPolicy) -> list[AuditCosignature]:
    """Return the stored cosignatures of the configured witnesses on (``tree_size``, ``root_hash``)."""
    names = [witness.key.name for witness in policy.witnesses]
    rows = session.scalars(
        select(AuditCosignature)
        .where(AuditCosignature.tree_size == tree_size, AuditCosignature.root_hash == root_hash)
        .where(AuditCosignature.witness.in_(names))
        .order_by(AuditCosignature.witness)
    )
    return list(rows)


@dataclass(frozen=True)
class WitnessedHead:
    """A head cosigned by a quorum: its size, root and checkpoint note carrying the log's and witnesses' lines."""

    tree_size: int
    root_hash: str
    checkpoint: str
    cosignatures: int


def latest_witnessed(session: Session, key: Ed25519PrivateKey, policy: WitnessPolicy) -> WitnessedHead | None:
    """Return the largest head cosigned by at least ``quorum`` configured witnesses, or ``None``."""
    found = _latest_witnessed(session, policy)
    if found is None:
        return None
    size, root = found
    rows = cosignatures_for(session, size, root, policy)
    return WitnessedHead(size, root, checkpoint_note(session, key, policy, size, root), len(rows))


def latest_witnessed_size(session: Session, policy: WitnessPolicy) -> int | None:
    """Return the largest tree size cosigned by at least ``quorum`` configured witnesses, or ``None``."""
    found = _latest_witnessed(session, policy)
    return None if found is None else found[0]


def _latest_witnessed(session: Session, policy: WitnessPolicy) -> tuple[int, str] | None:
    if not policy.witnesses:
        return None
    names = [witness.key.name for witness in policy.witnesses]
    query = (
        select(AuditCosignature.tree_size, AuditCosignature.root_hash)
        .where(AuditCosignature.witness.in_(names))
        .group_by(AuditCosignature.tree_size, AuditCosignature.root_hash)
        .having(func.count(AuditCosignature.witness) >= policy.quorum)
        .order_by(AuditCosignature.tree_size.desc())
        .limit(1)
    )
    row = session.execute(query).first()
    return None if row is None else (row[0], row[1])


def _last_cosigned_size(session: Session, witness: str) -> int:
    size = session.scalar(select(func.max(AuditCosignature.tree_size)).where(AuditCosignature.witness == witness))
    return size or 0


def checkpoint_note(
    session: Session,
    key: Ed25519PrivateKey,
    policy: WitnessPolicy,
    tree_size: int,
    root_hash: str,
) -> str:
    """Return the log's signed checkpoint of (``tree_size``, ``root_hash``) with every stored cosignature on it."""
    note = sign_checkpoint(key, policy.origin, tree_size, bytes.fromhex(root_hash))
    return note + "".join(row.line() for row in cosignatures_for(session, tree_size, root_hash, policy))


def add_checkpoint_body(old_size: int, proof: Sequence[str], note: str) -> bytes:
    """Return the ``add-checkpoint`` request body (proof hashes given in hex)."""
    lines = [f"old {old_size}"] + [base64.b64encode(bytes.fromhex(node)).decode("ascii") for node in proof]
    return ("\n".join(lines) + "\n\n" + note).encode("utf-8")


def witness_round(
    session: Session,
    tree: AuditTree,
    key: Ed25519PrivateKey,
    clock: Clock,
    policy: WitnessPolicy,
    transport: WitnessTransport,
) -> WitnessRound:
    """Sign the head of the whole log, submit it to every witness that has not cosigned it, keep what they sign.

    Commits twice: the signed head first (so the head exists whatever the witnesses answer), then the
    cosignatures. Safe to run twice, and concurrently: a witness answers ``409`` to a stale submission.

    Raises:
        AuditLogInconsistent: The log does not extend the last signed head (ADR 028); nothing is submitted.
    """
    head = tree.tree_head(session, key, clock)
    session.commit()
    size, root = head.tree_size, head.root_hash
    note = sign_checkpoint(key, policy.origin, size, bytes.fromhex(root))
    text = checkpoint_text(policy.origin, size, bytes.fromhex(root))
    done = {row.witness for row in cosignatures_for(session, size, root, policy)}
    outcomes = []
    for witness in policy.witnesses:
        if witness.key.name in done:
            outcomes.append(WitnessOutcome(witness.key.name, True, None, "already cosigned"))
            continue
        outcome = _submit(session, tree, witness, transport, size, root, note, text)
        outcomes.append(outcome)
    session.commit()
    count = len(cosignatures_for(session, size, root, policy))
    witnessed = bool(policy.witnesses) and count >= policy.quorum
    result = WitnessRound(size, root, count, witnessed, outcomes)
    latest = latest_witnessed_size(session, policy)
    if latest is not None:
        record_audit_witnessed_size(latest)
    if witnessed and any(outcome.cosigned and outcome.status == 200 for outcome in outcomes):
        result.anchored = _anchor(policy, checkpoint_note(session, key, policy, size, root))
    return result


def _submit(
    session: Session,
    tree: AuditTree,
    witness: ConfiguredWitness,
    transport: WitnessTransport,
    size: int,
    root: str,
    note: str,
    text: str,
) -> WitnessOutcome:
    name = witness.key.name
    old = _last_cosigned_size(session, name)
    for _attempt in range(2):
        if old > size:
            return _refused(name, 409, f"the witness cosigned {old} entries, the log has {size}: entries were removed")
        proof = tree.consistency_proof(session, old, size).proof if 0 < old < size else []
        try:
            status, content_type, answer = transport.add_checkpoint(witness.url, add_checkpoint_body(old, proof, note))
        except OSError as error:
            logger.warning("witness %s unreachable: %s", name, error)
            return WitnessOutcome(name, False, None, f"unreachable: {error}")
        if status == 409 and content_type.startswith(SIZE_CONTENT_TYPE) and answer.strip().isdigit():
            old = int(answer.strip())  # the witness kept another size (its state, or a concurrent round)
            continue
        break
    if status != 200:
        if status in (400, 422):
            return _refused(name, status, answer.strip())
        logger.warning("witness %s answered %d: %s", name, status, answer.strip()[:200])
        return WitnessOutcome(name, False, status, answer.strip()[:200])
    return _keep(session, witness, size, root, text, answer)


def _keep(session: Session, witness: ConfiguredWitness, size: int, root: str, text: str, answer: str) -> WitnessOutcome:
    name = witness.key.name
    for raw_line in answer.splitlines():
        try:
            line: SignatureLine = parse_signature_line(raw_line)
        except ValueError:
            continue
        timestamp = verify_cosignature(line, text, witness.key)
        if timestamp is None:
            continue
        session.merge(
            AuditCosignature(
                tree_size=size,
                witness=name,
                root_hash=root,
                key_id=line.key_id.hex(),
                timestamp=timestamp,
                signature=base64.b64encode(line.key_id + line.signature).decode("ascii"),
            )
        )
        return WitnessOutcome(name, True, 200)
    logger.error("witness %s answered 200 without a valid cosignature from its configured key", name)
    return WitnessOutcome(name, False, 200, "no valid cosignature from the configured key")


def _refused(name: str, status: int, detail: str) -> WitnessOutcome:
    record_audit_alarm("witness-refused")
    logger.error("witness %s refused to cosign the audit log's checkpoint (%d): %s", name, status, detail[:500])
    return WitnessOutcome(name, False, status, detail[:500])


def _anchor(policy: WitnessPolicy, note: str) -> list[AnchorReceipt]:
    receipts = []
    for anchor in policy.anchors:
        try:
            receipts.append(anchor.anchor(note))
        except OSError as error:
            logger.warning("anchor %s failed: %s", anchor.name, error)
    return receipts


#: Files :func:`publish_witness_files` writes beside an export (``shanhai audit export``).
CHECKPOINT_FILE = "checkpoint.txt"
LOG_VKEY_FILE = "log.vkey"
WITNESSES_FILE = "witnesses.txt"


def publish_witness_files(session: Session, out_dir: Path, key: Ed25519PrivateKey, policy: WitnessPolicy) -> int | None:
    """Write the latest witnessed checkpoint, the log's vkey and the witness policy to ``out_dir``.

    ``checkpoint.txt`` is the largest head k witnesses cosigned (absent before the first); ``log.vkey`` the
    log's note verifier key (its name is the origin); ``witnesses.txt`` a line ``quorum <k>`` and one
    cosignature/v1 vkey per line. Returns the witnessed size, or ``None``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / LOG_VKEY_FILE).write_text(log_vkey(policy.origin, key.public_key()) + "\n", encoding="utf-8")
    lines = [f"quorum {policy.quorum}"] + [witness.key.vkey() for witness in policy.witnesses]
    (out_dir / WITNESSES_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    witnessed = latest_witnessed(session, key, policy)
    if witnessed is None:
        return None
    (out_dir / CHECKPOINT_FILE).write_text(witnessed.checkpoint, encoding="utf-8")
    return witnessed.tree_size


def read_witness_files(directory: Path) -> tuple[str, list[WitnessKey], int]:
    """Read ``witnesses.txt`` and ``log.vkey`` back: (log vkey, witnesses, quorum); ``ValueError`` if malformed."""
    lines = (directory / WITNESSES_FILE).read_text(encoding="utf-8").split()
    if len(lines) < 2 or lines[0] != "quorum" or not lines[1].isdigit():
        raise ValueError(f"{WITNESSES_FILE} starts with 'quorum <k>'")
    witnesses = [witness_key(line) for line in lines[2:]]
    return (directory / LOG_VKEY_FILE).read_text(encoding="utf-8").strip(), witnesses, int(lines[1])
