"""Public: how a retirement's certificate stands against the latest witnessed tree head (ADR 033).

Witnessing is asynchronous, so a certificate keeps the head signed with its retirement (ADR 023), which no
witness may have seen yet. This answer links the two: the latest head k of the n witnesses cosigned, as a
checkpoint note, and the RFC 6962 consistency proof from the certificate's head to it. A verifier checks the
cosignatures with the witnesses' keys, the proof against both roots, and then trusts the certificate's head
as much as the witnesses' — with no request to the platform needed afterwards.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import Field

from api.deps import AuditSigningKeyDep, AuditTreeDep, ClockDep, SessionDep, WitnessPolicyDep
from api.fields import Answer
from api.routers.audit import WitnessedHeadOut
from carbon.ledger.certificates import keep_tree_head, retirement_by_code
from core.audit_tree import Notary
from core.witnessing import latest_witnessed

public = APIRouter(prefix="/public/v1", tags=["public registry"])


class KeptHeadOut(Answer):
    """The signed head kept with the retirement (the one its certificate carries)."""

    tree_size: int
    root_hash: str
    timestamp: str
    key_id: str


class ConsistencyOut(Answer):
    """RFC 6962 consistency proof from the certificate's head (``first``) to the witnessed head (``second``)."""

    first: int
    second: int
    first_root_hash: str
    second_root_hash: str
    proof: list[str] = Field(description="Hashes, lowercase hex, in RFC 6962 §2.1.2 order.")


class RetirementWitnessingOut(Answer):
    """A certificate's head, the latest witnessed head and the proof that the second extends the first."""

    verification_code: str
    kept_head: KeptHeadOut | None = Field(description="Absent only when the retirement's audit entry is missing.")
    witnessed_head: WitnessedHeadOut | None = Field(description="Absent before any head was witnessed.")
    covered: bool = Field(description="Whether the witnessed head includes the retirement (and is consistent).")
    consistency_proof: ConsistencyOut | None = Field(
        description="From the kept head to the witnessed head, when the witnessed head covers it."
    )


@public.get("/retirements/{code}/witnessed")
def read_retirement_witnessing(
    code: str,
    session: SessionDep,
    tree: AuditTreeDep,
    key: AuditSigningKeyDep,
    clock: ClockDep,
    policy: WitnessPolicyDep,
    request: Request,
) -> RetirementWitnessingOut:
    """Public: the latest witnessed head and the consistency proof from this certificate's kept head to it."""
    retirement = retirement_by_code(session, code)
    keep_tree_head(session, retirement, Notary(request.app.state.audit_tree, key), clock)
    head = retirement.kept_tree_head
    witnessed = latest_witnessed(session, key, policy)
    proof = None
    if head is not None and witnessed is not None and witnessed.tree_size >= head.tree_size:
        found = tree.consistency_proof(session, head.tree_size, witnessed.tree_size)
        if found.first_root_hash == head.root_hash and found.second_root_hash == witnessed.root_hash:
            proof = ConsistencyOut(**found.as_dict())
    return RetirementWitnessingOut(
        verification_code=retirement.verification_code,
        kept_head=None
        if head is None
        else KeptHeadOut(
            tree_size=head.tree_size, root_hash=head.root_hash, timestamp=head.timestamp, key_id=head.key_id
        ),
        witnessed_head=None if witnessed is None else WitnessedHeadOut(**witnessed.__dict__),
        covered=proof is not None,
        consistency_proof=proof,
    )
