"""The tlog-witness ``add-checkpoint`` call, as a function of the request body (c2sp.org/tlog-witness).

Checks, in the specification's order, and the answer to each failure:

* the body is ``old <size>``, up to 63 base64 proof lines, a blank line and a signed checkpoint — else ``400``;
* the origin is a log this witness follows — else ``404``;
* a trusted key of that log signed the checkpoint and no trusted key's signature fails — else ``403``;
* the old size is at most the checkpoint's size — else ``400``;
* the old size is the size this witness last cosigned for the log (``0`` before the first) — else ``409`` with
  that size as ``text/x.tlog.size``;
* a checkpoint of size 0 has the empty tree's root, an old size of 0 comes with no proof, equal sizes have equal
  roots, and otherwise the proof shows the kept tree is a prefix of the new one (:mod:`witness.consistency`) —
  else ``422``.

A ``422`` for a signed checkpoint is the log contradicting itself: the witness keeps the evidence (the checkpoint
it cosigned last and the submission, both signed by the log), logs at ERROR and counts the alarm
(``shanhai_witness_refusals_total{origin, reason}``). Only when every check passes does it cosign, keep the new
checkpoint and answer ``200`` with its cosignature line.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.metrics import record_witness_refusal
from witness.consistency import EMPTY_ROOT, MAX_PROOF_HASHES, verify_consistency
from witness.note import CheckpointBody, LogKey, Note, NoteError, cosignature_line
from witness.store import Kept, WitnessStore

logger = logging.getLogger(__name__)

SIZE_CONTENT_TYPE = "text/x.tlog.size"
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, body and content type."""

    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


@dataclass
class Witness:
    """One witness: its name and key, the logs it follows (origin → trusted keys) and its store."""

    name: str
    key: Ed25519PrivateKey
    logs: dict[str, list[LogKey]]
    store: WitnessStore
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def add_checkpoint(self, body: bytes) -> Answer:
        """Answer one ``add-checkpoint`` request."""
        try:
            old, proof, note, checkpoint = _read_request(body)
        except NoteError as error:
            return Answer(400, f"{error}\n")
        keys = self.logs.get(checkpoint.origin)
        if keys is None:
            return Answer(404, "unknown log origin\n")
        if not note.verified_by(keys):
            return Answer(403, "the checkpoint is not signed by a trusted key of its log\n")
        if old > checkpoint.size:
            return Answer(400, "the old size is larger than the checkpoint's\n")
        with self.store.locked():
            kept = self.store.kept(checkpoint.origin)
            kept_size = kept.tree_size if kept is not None else 0
            if old != kept_size:
                return Answer(409, f"{kept_size}\n", SIZE_CONTENT_TYPE)
            refusal = _refusal(old, proof, checkpoint, kept)
            if refusal is not None:
                self._alarm(refusal, kept, body, checkpoint)
                return Answer(422, f"{refusal}\n")
            timestamp = int(self.now().timestamp())
            line = cosignature_line(self.key, self.name, note.text, timestamp)
            root_b64 = base64.b64encode(checkpoint.root).decode()
            self.store.keep(
                Kept(checkpoint.origin, checkpoint.size, root_b64, body.decode("utf-8").split("\n\n", 1)[1])
            )
        logger.info("cosigned %s at size %d", checkpoint.origin, checkpoint.size)
        return Answer(200, line)

    def _alarm(self, reason: str, kept: Kept | None, body: bytes, checkpoint: CheckpointBody) -> None:
        stamp = self.now().isoformat()
        path = self.store.keep_evidence(
            checkpoint.origin,
            {
                "reason": reason,
                "kept_checkpoint": kept.checkpoint if kept is not None else None,
                "submitted": body.decode("utf-8"),
                "received_at": stamp,
            },
            stamp,
        )
        record_witness_refusal(checkpoint.origin, "inconsistent")
        logger.error(
            "witness %s refuses to cosign %s: %s; kept: tree_size=%s root_hash=%s; submitted: tree_size=%d "
            "root_hash=%s; evidence kept in %s",
            self.name, checkpoint.origin, reason, kept.tree_size if kept else 0, kept.root_hash if kept else "-",
            checkpoint.size, base64.b64encode(checkpoint.root).decode(), path,
        )  # fmt: skip


def _refusal(old: int, proof: list[bytes], checkpoint: CheckpointBody, kept: Kept | None) -> str | None:
    """Return why the checkpoint is not a consistent extension of the kept one, or ``None``."""
    if checkpoint.size == 0 and checkpoint.root != EMPTY_ROOT:
        return "a checkpoint of size 0 must have the empty tree's root"
    if old == 0:
        return "a proof from size 0 must be empty" if proof else None
    assert kept is not None  # old == kept size > 0
    kept_root = base64.b64decode(kept.root_hash)
    if old == checkpoint.size:
        if proof or checkpoint.root != kept_root:
            return f"the log signed two different roots for size {old}: history was rewritten"
        return None
    if not verify_consistency(old, checkpoint.size, kept_root, checkpoint.root, proof):
        return f"the consistency proof from size {old} does not verify: the log is not an extension of the kept one"
    return None


def _read_request(body: bytes) -> tuple[int, list[bytes], Note, CheckpointBody]:
    if len(body) > MAX_BODY_BYTES:
        raise NoteError("the request is too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("the request is not UTF-8") from None
    head, separator, note_text = text.partition("\n\n")
    if not separator:
        raise NoteError("the request is an old size line, proof lines, a blank line and a checkpoint")
    lines = head.split("\n")
    old_line = lines[0]
    if not old_line.startswith("old ") or not old_line[4:].isdigit() or old_line[4:] != str(int(old_line[4:])):
        raise NoteError("the first line is 'old <size>' in decimal without leading zeros")
    if len(lines) - 1 > MAX_PROOF_HASHES:
        raise NoteError("more than 63 proof lines")
    try:
        proof = [base64.b64decode(line, validate=True) for line in lines[1:]]
    except binascii.Error:
        raise NoteError("a proof line is not base64") from None
    if any(len(item) != 32 for item in proof):
        raise NoteError("a proof line is not a 32-byte hash")
    note = Note.parse(note_text)
    return int(old_line[4:]), proof, note, CheckpointBody.parse(note.text)
