"""Read and verify the audit log: entries and chain (auditors, registry); tree heads and proofs (public).

Tree heads, proofs and the public key are public so that auditors, the public registry and anyone
holding a certificate can check the log without trusting the operator: fetch a signed head, keep it,
and later ask for an inclusion proof of an entry or a consistency proof from the kept head's size.
They reveal hashes only; the entries themselves stay with auditors and the registry.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import Field
from sqlalchemy import select

from api.deps import AuditSigningKeyDep, AuditTreeDep, ClockDep, CurrentUser, SessionDep, WitnessPolicyDep
from api.fields import Answer, HashScheme, InstantText
from api.pagination import Page, next_link
from core.audit import AuditEntry, verify_chain
from core.audit_tree import publish_tree_head
from core.bounds import INT64_MAX
from core.checkpoint import log_vkey
from core.errors import NotFound
from core.tree_head import ALGORITHM, key_id, public_key_pem, raw_public_key
from core.witnessing import checkpoint_note, cosignatures_for, latest_witnessed

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

CHECKPOINT_MEDIA_TYPE = "text/plain; charset=utf-8"


class WitnessedHeadOut(Answer):
    """The largest head a quorum of witnesses cosigned, as a C2SP checkpoint note with their lines."""

    tree_size: int = Field(description="Entries the head covers.")
    root_hash: str = Field(description="RFC 6962 root, lowercase hex.")
    checkpoint: str = Field(description="C2SP checkpoint: the log's signature line, then the witnesses' lines.")
    cosignatures: int = Field(description="Valid cosignatures of configured witnesses on it.")


class TreeHeadOut(Answer):
    """The signed head of the whole log now (``shanhai-sth/1``), its checkpoint and how far it is witnessed."""

    format: Literal["shanhai-sth/1"]
    algorithm: Literal["Ed25519"]
    tree_size: int
    root_hash: str
    timestamp: str
    key_id: str
    signature: str
    origin: str = Field(description="The checkpoint's origin line (SHANHAI_AUDIT_LOG_ORIGIN).")
    checkpoint: str = Field(description="This head as a C2SP checkpoint note, with the cosignatures collected so far.")
    cosignatures: int = Field(description="Cosignatures of configured witnesses on this head.")
    witnesses_required: int = Field(description="k of the k-of-n witness policy (0: no witnesses configured).")
    witnessed: bool = Field(description="Whether at least k configured witnesses cosigned this head.")
    latest_witnessed: WitnessedHeadOut | None = Field(
        description="The largest witnessed head (witnessing runs asynchronously, so it may be smaller)."
    )


class WitnessOut(Answer):
    """One witness of the log."""

    name: str
    vkey: str = Field(description="cosignature/v1 verifier key: name+hex(key id)+base64(0x04 || Ed25519 key).")
    url: str = Field(description="Its tlog-witness submission prefix (POST <url>/add-checkpoint).")


class WitnessPolicyOut(Answer):
    """The log's checkpoint identity and its witnesses: what an outside verifier configures."""

    origin: str = Field(description="Checkpoint origin line; also the key name of the log's note signature.")
    log_vkey: str = Field(description="The log's Ed25519 note verifier key: origin+hex(key id)+base64(0x01 || key).")
    quorum: int = Field(description="k: cosignatures required for a head to count as witnessed.")
    witnesses: list[WitnessOut]


class AuditEntryOut(Answer):
    """One entry of the hash-chained audit log, as hashed (``entry_hash`` covers every other member)."""

    seq: int
    recorded_at: InstantText
    actor: str
    action: str
    subject: str
    payload: Any = Field(description="The entry's JSON payload (its shape depends on the action).")
    prev_hash: str
    entry_hash: str
    scheme: HashScheme


class ChainReportOut(Answer):
    """The hash chain recomputed: ok, or the first broken entry and why."""

    ok: bool
    entries: int
    head_hash: str
    first_broken_seq: int | None
    reason: str | None


class PublicKey(Answer):
    """The key that verifies tree heads: raw hex and PEM, with its key id."""

    algorithm: Literal["Ed25519"]
    key_id: str
    public_key: str
    pem: str


class InclusionProofOut(Answer):
    """The audit path of entry ``seq`` in the tree of ``tree_size`` entries."""

    seq: int
    leaf_index: int
    tree_size: int
    entry_hash: str
    leaf_hash: str
    audit_path: list[str]
    root_hash: str


class ConsistencyProofOut(Answer):
    """The proof that the log of ``first`` entries is a prefix of the log of ``second`` entries."""

    first: int
    second: int
    first_root_hash: str
    second_root_hash: str
    proof: list[str]


@router.get("/entries")
def list_audit_entries(
    session: SessionDep,
    _principal: CurrentUser,
    request: Request,
    after: Annotated[int, Query(ge=0, le=INT64_MAX, description="Return entries with a greater sequence number.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="Entries per page.")] = 100,
    subject: str | None = None,
    action: Annotated[str | None, Query(description="Only entries of this action, e.g. auth.login_failed.")] = None,
) -> Page[AuditEntryOut]:
    """Return audit entries in sequence order; ``next`` continues after the page's last entry (cursor ``after``)."""
    query = select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(limit + 1)
    if subject is not None:
        query = query.where(AuditEntry.subject == subject)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    found = list(session.scalars(query))
    entries = [
        AuditEntryOut(
            seq=e.seq,
            recorded_at=e.recorded_at,
            actor=e.actor,
            action=e.action,
            subject=e.subject,
            payload=e.payload_value(),
            prev_hash=e.prev_hash,
            entry_hash=e.entry_hash,
            scheme=e.scheme,
        )
        for e in found[:limit]
    ]
    following = next_link(request, after=entries[-1].seq, limit=limit) if len(found) > limit else None
    return Page[AuditEntryOut](items=entries, limit=limit, next=following)


@router.get("/verify")
def verify_audit_log(session: SessionDep, _principal: CurrentUser) -> ChainReportOut:
    """Recompute the hash chain and report the first broken entry, if any."""
    return ChainReportOut.model_validate(verify_chain(session).as_dict())


@router.get("/tree-head")
def read_audit_tree_head(
    session: SessionDep, tree: AuditTreeDep, key: AuditSigningKeyDep, clock: ClockDep, policy: WitnessPolicyDep
) -> TreeHeadOut:
    """Return the signed tree head of the whole log now (RFC 6962 root, Ed25519 signature) and its witnessing.

    The head is also given as a C2SP checkpoint with the cosignatures collected so far; witnessing runs
    asynchronously, so ``latest_witnessed`` is the largest head k of the n witnesses cosigned (ADR 033).
    Answers ``503 audit/log-inconsistent`` (and signs nothing) when the log no longer extends the last
    head signed by any process (ADR 028).
    """
    head = publish_tree_head(session, tree, key, clock)
    count = len(cosignatures_for(session, head.tree_size, head.root_hash, policy))
    witnessed = latest_witnessed(session, key, policy)
    return TreeHeadOut(
        **head.as_dict(),
        origin=policy.origin,
        checkpoint=checkpoint_note(session, key, policy, head.tree_size, head.root_hash),
        cosignatures=count,
        witnesses_required=policy.quorum if policy.witnesses else 0,
        witnessed=bool(policy.witnesses) and count >= policy.quorum,
        latest_witnessed=None if witnessed is None else WitnessedHeadOut(**witnessed.__dict__),
    )


@router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "A C2SP checkpoint note."}},
)
def read_audit_checkpoint(
    session: SessionDep, tree: AuditTreeDep, key: AuditSigningKeyDep, clock: ClockDep, policy: WitnessPolicyDep
) -> PlainTextResponse:
    """Return the head of the whole log now as a C2SP checkpoint, with the cosignatures collected so far."""
    head = publish_tree_head(session, tree, key, clock)
    note = checkpoint_note(session, key, policy, head.tree_size, head.root_hash)
    return PlainTextResponse(note, media_type=CHECKPOINT_MEDIA_TYPE)


@router.get(
    "/checkpoint/witnessed",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "A C2SP checkpoint note with k cosignatures."}},
)
def read_audit_witnessed_checkpoint(
    session: SessionDep, key: AuditSigningKeyDep, policy: WitnessPolicyDep
) -> PlainTextResponse:
    """Return the largest head k of the n witnesses cosigned, as a checkpoint note; ``404`` before the first."""
    witnessed = latest_witnessed(session, key, policy)
    if witnessed is None:
        raise NotFound("no tree head has been cosigned by a quorum of the log's witnesses yet")
    return PlainTextResponse(witnessed.checkpoint, media_type=CHECKPOINT_MEDIA_TYPE)


@router.get("/witnesses")
def read_audit_witness_policy(key: AuditSigningKeyDep, policy: WitnessPolicyDep) -> WitnessPolicyOut:
    """Return the log's origin, its note verifier key, its witnesses and the quorum (k of n)."""
    return WitnessPolicyOut(
        origin=policy.origin,
        log_vkey=log_vkey(policy.origin, key.public_key()),
        quorum=policy.quorum if policy.witnesses else 0,
        witnesses=[WitnessOut(name=w.key.name, vkey=w.key.vkey(), url=w.url) for w in policy.witnesses],
    )


@router.get("/public-key")
def read_audit_public_key(key: AuditSigningKeyDep) -> PublicKey:
    """Return the public key that verifies tree heads (PEM and raw hex) with its key id."""
    public_key = key.public_key()
    return PublicKey.model_validate(
        {
            "algorithm": ALGORITHM,
            "key_id": key_id(public_key),
            "public_key": raw_public_key(public_key).hex(),
            "pem": public_key_pem(public_key),
        }
    )


@router.get("/proofs/inclusion")
def read_audit_inclusion_proof(
    session: SessionDep,
    tree: AuditTreeDep,
    seq: Annotated[int, Query(ge=1, le=INT64_MAX, description="Sequence number of the entry (leaf index = seq - 1).")],
    tree_size: Annotated[
        int | None, Query(ge=1, le=INT64_MAX, description="Size of a tree head you hold; default: now.")
    ] = None,
) -> InclusionProofOut:
    """Return the audit path of entry ``seq`` in the tree of ``tree_size`` entries."""
    return InclusionProofOut.model_validate(tree.inclusion_proof(session, seq, tree_size).as_dict())


@router.get("/proofs/consistency")
def read_audit_consistency_proof(
    session: SessionDep,
    tree: AuditTreeDep,
    first: Annotated[int, Query(ge=1, le=INT64_MAX, description="Size of the older tree head you kept.")],
    second: Annotated[
        int | None, Query(ge=1, le=INT64_MAX, description="Size of the newer tree head; default: now.")
    ] = None,
) -> ConsistencyProofOut:
    """Return the proof that the log of ``first`` entries is a prefix of the log of ``second`` entries."""
    return ConsistencyProofOut.model_validate(tree.consistency_proof(session, first, second).as_dict())
