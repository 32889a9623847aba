"""Registry accounts: opening them, the hold rule, and the row locks every taking operation starts with.

Concurrency (ADR 022): an operation that takes from an account locks the account's row first
(``FOR NO KEY UPDATE``, so inserts that merely reference the account never wait) and only then reads and
locks its blocks; whoever closes an account's blocks holds that row, so a reader that got the row sees every
block the previous holder left, remainders included. A receiver's blocks are merged with incoming tonnes only
if its row is free (``SKIP LOCKED``): operations on different accounts never wait on each other. Only
organisations of :data:`HOLDER_KINDS` receive tonnes in a holding account (:func:`check_receiver`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, lazyload

from carbon.ledger.tables import Account, AccountKind
from carbon.ledger.unit_of_work import UnitOfWork
from core.auth import Organisation, OrgKind
from core.clock import FixedClock
from core.errors import InvalidInput, NotFound

#: Organisation kinds that may hold tonnes in a holding account, and so receive them — by issuance, transfer
#: (also a pending one, on acceptance), delivery on the exchange, or a pledge enforced (ADR 022). The verifier,
#: the registry (whose only account is the buffer pool), the operator, the ecology bureau and the auditor never
#: hold: tonnes sent to them would be stranded.
HOLDER_KINDS: frozenset[OrgKind] = frozenset(
    {OrgKind.FORESTRY_BUREAU, OrgKind.FOREST_OWNER, OrgKind.ENTERPRISE, OrgKind.BANK}
)

# Statements of the hot path are built once (bound parameters): building and keying a statement costs more
# CPU than running it on an indexed table.
_ACCOUNTS = (
    select(Account)
    .options(lazyload(Account.organisation))
    .where(Account.organisation_id.in_(bindparam("organisations", expanding=True)), Account.kind == bindparam("kind"))
)
_LOCK_ACCOUNTS = (
    select(Account.id)
    .where(Account.id.in_(bindparam("ids", expanding=True)))
    .order_by(Account.id)
    .with_for_update(key_share=True)
)
_TRY_LOCK_ACCOUNT = (
    select(Account.id).where(Account.id == bindparam("id")).with_for_update(key_share=True, skip_locked=True)
)


def account_in(uow: UnitOfWork, organisation_id: int, kind: AccountKind = AccountKind.HOLDING) -> Account:
    """Return the organisation's account of ``kind``, opening it on first use."""
    [account] = accounts_in(uow, [organisation_id], kind)
    return account


def accounts_in(uow: UnitOfWork, organisation_ids: list[int], kind: AccountKind = AccountKind.HOLDING) -> list[Account]:
    """Return the organisations' accounts of ``kind`` in the order asked (one query), opening missing ones.

    Accounts the unit's transaction has read already are not read again.
    """
    cache = uow.memo().accounts
    found = {i: cache[(i, kind)] for i in organisation_ids if (i, kind) in cache}
    missing = [i for i in organisation_ids if i not in found]
    if missing:
        params = {"organisations": missing, "kind": kind}
        found |= {a.organisation_id: a for a in uow.session.scalars(_ACCOUNTS, params)}
    for organisation_id in missing:
        if organisation_id not in found:
            found[organisation_id] = _open_account(uow, organisation_id, kind)
    cache.update({(i, kind): found[i] for i in missing})
    return [found[i] for i in organisation_ids]


def check_receiver(
    uow: UnitOfWork,
    organisation_id: int,
    kind: AccountKind = AccountKind.HOLDING,
    *,
    pointer: str = "/to_organisation_id",
    organisation_kind: OrgKind | None = None,
) -> None:
    """Refuse tonnes for an organisation that may not hold them (the one place of the hold rule).

    A holding account receives only for :data:`HOLDER_KINDS`; the buffer pool belongs to the registry.
    ``pointer`` names the request field that chose the receiver, for the problem's ``errors``.
    ``organisation_kind``, when the caller already knows it (an order's own organisation, from its verified
    principal; an organisation's kind never changes), spares the read of the organisation's row — the exchange
    checks every buy order in its serial matcher.

    Raises:
        NotFound: The organisation does not exist.
        InvalidInput: Its kind may not hold tonnes in an account of ``kind``.
    """
    checked = uow.memo().receivers
    if (organisation_id, kind) in checked:  # an exchange batch delivers to one buyer many times
        return
    allowed = HOLDER_KINDS if kind is AccountKind.HOLDING else frozenset({OrgKind.REGISTRY})
    if organisation_kind is None or organisation_kind not in allowed:  # a refusal reads the row for its name
        organisation = uow.session.get(Organisation, organisation_id)
        if organisation is None:
            raise NotFound(f"organisation {organisation_id} does not exist")
        if organisation.kind not in allowed:
            kinds = ", ".join(sorted(k.value for k in allowed))
            raise InvalidInput(
                f"{organisation.name} is a {organisation.kind.value} and may not receive tonnes "
                f"in a {kind.value} account (only {kinds})",
                [{"pointer": pointer, "reason": f"a {organisation.kind.value} does not hold tonnes"}],
            )
    checked.add((organisation_id, kind))


def receiving_account(uow: UnitOfWork, organisation_id: int, kind: AccountKind = AccountKind.HOLDING) -> Account:
    """Return the account that receives tonnes for an organisation, after :func:`check_receiver`."""
    check_receiver(uow, organisation_id, kind)
    return account_in(uow, organisation_id, kind)


def buffer_account(uow: UnitOfWork) -> Account:
    """Return the registry's buffer-pool account (the registry organisation must exist)."""
    registry = uow.session.scalars(
        select(Organisation).where(Organisation.kind == OrgKind.REGISTRY).order_by(Organisation.id)
    ).first()
    if registry is None:
        raise NotFound("no registry organisation exists")
    return receiving_account(uow, registry.id, AccountKind.BUFFER)


def lock_accounts(uow: UnitOfWork, accounts: list[Account]) -> None:
    """Lock the rows of accounts the caller will take tonnes from, in id order, until the transaction ends.

    Every operation that closes an account's blocks holds its row (ADR 022), so the blocks read after this
    are exactly those the last holder of the row left. ``FOR NO KEY UPDATE`` does not block the key-share
    lock of a foreign-key check: tonnes may still be *inserted* into the account by others meanwhile.
    """
    held = uow.memo().locked
    ids = sorted({a.id for a in accounts} - held)
    if ids:
        uow.session.execute(_LOCK_ACCOUNTS, {"ids": ids})
        held.update(ids)


def try_lock_account(uow: UnitOfWork, account_id: int) -> bool:
    """Lock an account's row if no other transaction holds it (never waits); whether this transaction holds it."""
    held = uow.memo().locked
    if account_id not in held:
        if uow.session.scalar(_TRY_LOCK_ACCOUNT, {"id": account_id}) is None:
            return False
        held.add(account_id)
    return True


def _open_account(uow: UnitOfWork, organisation_id: int, kind: AccountKind) -> Account:
    """Open an organisation's account, or return the one a concurrent transaction has just opened.

    ``INSERT … ON CONFLICT DO NOTHING`` waits for a concurrent insert of the same account and then reads it:
    twenty first transfers to one new receiver at once all land in its one account, none fails on the unique key.
    """
    session = uow.session
    if session.get(Organisation, organisation_id) is None:
        raise NotFound(f"organisation {organisation_id} does not exist")
    dialect = session.get_bind().dialect.name
    insert_account = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert_account(Account)
        .values(organisation_id=organisation_id, kind=kind, created_at=uow.clock.now())
        .on_conflict_do_nothing(index_elements=["organisation_id", "kind"])
    )
    return session.scalars(_ACCOUNTS, {"organisations": [organisation_id], "kind": kind}).one()


def account_of(
    session: Session, organisation_id: int, kind: AccountKind = AccountKind.HOLDING, *, now: datetime
) -> Account:
    """Return the organisation's account of ``kind``, opening it on first use (in the caller's transaction)."""
    return account_in(UnitOfWork(session, FixedClock(now)), organisation_id, kind)
