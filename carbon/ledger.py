"""Service: the registry ledger — issue, transfer, escrow, pledge, retire and cancel serial blocks.

Invariants (checked by :mod:`carbon.invariants` in tests and ``shanhai audit verify``):

* every tonne of a batch is in exactly one *open* block; open blocks of a batch never overlap and together
  cover serials ``1..quantity`` — so issued = Σ accounts (tradable + escrowed + pledged) + retired + cancelled;
* quantities are whole tonnes (integers); a block is split by closing it and opening the pieces;
* only tradable blocks move between accounts; escrow, pledge and their release are changes of state in
  place; retired and cancelled blocks never change again;
* every change is one transaction with its movement rows and audit entry (the caller never commits).

Blocks are taken oldest vintage first, then by batch and serial, unless the caller names blocks.

Concurrency (ADR 022): an operation that takes from an account locks the account's row first
(``FOR NO KEY UPDATE``, so inserts that merely reference the account never wait) and only then reads and
locks its blocks; whoever closes an account's blocks holds that row, so a reader that got the row sees every
block the previous holder left, remainders included. A receiver's blocks are merged with incoming tonnes only
if its row is free (``SKIP LOCKED``): operations on different accounts never wait on each other. Pages of
blocks are read by key (vintage, batch, serial), never by offset, so rows inserted meanwhile cannot shift a
page. Only organisations of :data:`HOLDER_KINDS` receive tonnes in a holding account (:func:`check_receiver`).
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, contains_eager, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from carbon.certificate_font import check_printable
from carbon.invariants import BatchFacts, BlockFacts, Violation, check_invariants
from carbon.models import (
    Account,
    AccountKind,
    Batch,
    BlockState,
    CreditClass,
    CreditClassPolicy,
    HoldingBlock,
    Movement,
    PendingTransfer,
    Project,
    Retirement,
    ReversalRule,
    TransferStatus,
)
from carbon.serials import SerialBlock
from core import audit
from core.audit_tree import Notary
from core.auth import Organisation, OrgKind, Principal
from core.clock import Clock
from core.db import insert_rows
from core.errors import Conflict, InsufficientUnits, InvalidInput, NotFound, PermissionDenied

BLOCK_PAGE = 64
MOVABLE_FROM = {
    "transfer": BlockState.TRADABLE,
    "escrow": BlockState.TRADABLE,
    "release": BlockState.ESCROWED,
    "pledge": BlockState.TRADABLE,
    "unpledge": BlockState.PLEDGED,
    "enforce": BlockState.PLEDGED,
    "retire": BlockState.TRADABLE,
    "cancel": BlockState.TRADABLE,
}


#: Key of ``session.info`` under which a caller may keep a dict of accounts already read in its transaction
#: (the exchange does, per batch, ADR 015); the caller clears it whenever its transaction rolls back.
ACCOUNT_CACHE = "shanhai.registry_accounts"
#: Key of ``session.info`` under which the ledger keeps what its current transaction has locked and checked.
_MEMO = "shanhai.registry_transaction_memo"


def account_of(
    session: Session, organisation_id: int, kind: AccountKind = AccountKind.HOLDING, *, now: datetime
) -> Account:
    """Return the organisation's account of ``kind``, opening it on first use."""
    [account] = accounts_of(session, [organisation_id], kind, now=now)
    return account


def accounts_of(
    session: Session, organisation_ids: list[int], kind: AccountKind = AccountKind.HOLDING, *, now: datetime
) -> list[Account]:
    """Return the organisations' accounts of ``kind`` in the order asked (one query), opening missing ones.

    Accounts already in the caller's :data:`ACCOUNT_CACHE` (``session.info``) are not read again.
    """
    cache: dict[tuple[int, AccountKind], Account] | None = session.info.get(ACCOUNT_CACHE)
    found = {i: cache[(i, kind)] for i in organisation_ids if (i, kind) in cache} if cache is not None else {}
    missing = [i for i in organisation_ids if i not in found]
    if missing:
        params = {"organisations": missing, "kind": kind}
        found |= {a.organisation_id: a for a in session.scalars(_ACCOUNTS, params)}
    for organisation_id in missing:
        if organisation_id not in found:
            found[organisation_id] = _open_account(session, organisation_id, kind, now=now)
    if cache is not None:
        cache.update({(i, kind): found[i] for i in missing})
    return [found[i] for i in organisation_ids]


#: Organisation kinds that may hold tonnes in a holding account, and so receive them — by issuance, transfer
#: (also a pending one, on acceptance), delivery on the exchange, or a pledge enforced (ADR 022). The verifier,
#: the registry (whose only account is the buffer pool), the operator, the ecology bureau and the auditor never
#: hold: tonnes sent to them would be stranded.
HOLDER_KINDS: frozenset[OrgKind] = frozenset(
    {OrgKind.FORESTRY_BUREAU, OrgKind.FOREST_OWNER, OrgKind.ENTERPRISE, OrgKind.BANK}
)


def check_receiver(
    session: Session,
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
    checked = _memo(session).receivers
    if (organisation_id, kind) in checked:  # an exchange batch delivers to one buyer many times
        return
    allowed = HOLDER_KINDS if kind is AccountKind.HOLDING else frozenset({OrgKind.REGISTRY})
    if organisation_kind is None or organisation_kind not in allowed:  # a refusal reads the row for its name
        organisation = session.get(Organisation, organisation_id)
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


def receiving_account(
    session: Session, organisation_id: int, kind: AccountKind = AccountKind.HOLDING, *, now: datetime
) -> Account:
    """Return the account that receives tonnes for an organisation, after :func:`check_receiver`."""
    check_receiver(session, organisation_id, kind)
    return account_of(session, organisation_id, kind, now=now)


@dataclass
class _TransactionMemo:
    """What the current transaction has done that need not be done again before it ends."""

    transaction: object
    locked: set[int] = field(default_factory=set)  # account ids whose rows it holds
    receivers: set[tuple[int, AccountKind]] = field(default_factory=set)  # receivers check_receiver passed


def _memo(session: Session) -> _TransactionMemo:
    """Return the memo of the session's current transaction (a new one after every commit or rollback)."""
    session.connection()  # begin the transaction if none is open, so that it can be told apart from the next
    # The innermost transaction: a savepoint rolled back releases the row locks taken inside it.
    transaction = session.get_nested_transaction() or session.get_transaction()
    memo: _TransactionMemo | None = session.info.get(_MEMO)
    if memo is None or memo.transaction is not transaction:
        memo = _TransactionMemo(transaction)
        session.info[_MEMO] = memo
    return memo


def lock_accounts(session: Session, accounts: list[Account]) -> None:
    """Lock the rows of accounts the caller will take tonnes from, in id order, until the transaction ends.

    Every operation that closes an account's blocks holds its row (ADR 022), so the blocks read after this
    are exactly those the last holder of the row left. ``FOR NO KEY UPDATE`` does not block the key-share
    lock of a foreign-key check: tonnes may still be *inserted* into the account by others meanwhile.
    """
    held = _memo(session).locked
    ids = sorted({a.id for a in accounts} - held)
    if ids:
        session.execute(_LOCK_ACCOUNTS, {"ids": ids})
        held.update(ids)


def _try_lock_account(session: Session, account_id: int) -> bool:
    """Lock an account's row if no other transaction holds it (never waits); whether this transaction holds it."""
    held = _memo(session).locked
    if account_id not in held:
        if session.scalar(_TRY_LOCK_ACCOUNT, {"id": account_id}) is None:
            return False
        held.add(account_id)
    return True


def _open_account(session: Session, organisation_id: int, kind: AccountKind, *, now: datetime) -> Account:
    """Open an organisation's account, or return the one a concurrent transaction has just opened.

    ``INSERT … ON CONFLICT DO NOTHING`` waits for a concurrent insert of the same account and then reads it:
    twenty first transfers to one new receiver at once all land in its one account, none fails on the unique key.
    """
    if session.get(Organisation, organisation_id) is None:
        raise NotFound(f"organisation {organisation_id} does not exist")
    dialect = session.get_bind().dialect.name
    insert_account = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert_account(Account)
        .values(organisation_id=organisation_id, kind=kind, created_at=now)
        .on_conflict_do_nothing(index_elements=["organisation_id", "kind"])
    )
    return session.scalars(_ACCOUNTS, {"organisations": [organisation_id], "kind": kind}).one()


def buffer_account(session: Session, *, now: datetime) -> Account:
    """Return the registry's buffer-pool account (the registry organisation must exist)."""
    registry = session.scalars(
        select(Organisation).where(Organisation.kind == OrgKind.REGISTRY).order_by(Organisation.id)
    ).first()
    if registry is None:
        raise NotFound("no registry organisation exists")
    return receiving_account(session, registry.id, AccountKind.BUFFER, now=now)


@dataclass(frozen=True)
class Piece:
    """Part of an open block taken by an operation."""

    block: HoldingBlock
    quantity: int


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
#: Sorts before every block (vintages, batch ids and serials are positive): the key of the first page.
_FIRST_PAGE = {"after_vintage": 0, "after_batch": 0, "after_serial": 0}
_POLICIES = select(CreditClassPolicy).where(CreditClassPolicy.credit_class.in_(bindparam("classes", expanding=True)))
_BEFORE = (
    select(func.max(HoldingBlock.serial_start))
    .where(
        HoldingBlock.batch_id == bindparam("batch"),
        HoldingBlock.closed_at.is_(None),
        HoldingBlock.serial_start < bindparam("start"),
    )
    .scalar_subquery()
)
_NEIGHBOURS = (
    select(HoldingBlock)
    .options(lazyload(HoldingBlock.batch))
    .where(
        HoldingBlock.closed_at.is_(None),
        HoldingBlock.batch_id == bindparam("batch"),
        HoldingBlock.serial_start.in_([_BEFORE, bindparam("after")]),
        HoldingBlock.account_id == bindparam("account"),  # only a block of the same account can merge
    )
    # A neighbour may belong to another account (the receiver's, whose row this transaction holds, ADR 022):
    # never wait for its lock all the same — a neighbour that a concurrent transaction holds is simply not
    # merged this time — so merging adds no lock wait or deadlock.
    .with_for_update(skip_locked=True)
)
_OPEN_BLOCKS: dict[tuple[bool, bool], Any] = {}
# Plain table statements (no ORM unit of work) for the rows an operation writes.
_BLOCKS = cast(Table, HoldingBlock.__table__)
_CLOSE = update(_BLOCKS).where(_BLOCKS.c.id.in_(bindparam("ids", expanding=True))).values(closed_at=bindparam("now"))
_OPEN = insert(_BLOCKS)
_MOVEMENTS = cast(Table, Movement.__table__)


def _open_blocks_statement(by_batch: bool, by_offer: bool) -> Any:
    key = (by_batch, by_offer)
    if key not in _OPEN_BLOCKS:
        # The partial index ix_holding_block_open_holdings (account, state, batch, serial) finds the rows; the
        # batch is loaded by the same join (no chain of joined eager loads to project and organisation).
        query = (
            select(HoldingBlock)
            .join(HoldingBlock.batch)
            .options(contains_eager(HoldingBlock.batch).lazyload(Batch.project))
            .where(
                HoldingBlock.account_id == bindparam("account"),
                HoldingBlock.state == bindparam("state"),
                HoldingBlock.closed_at.is_(None),
                # The page after the last block read, by key: a block inserted meanwhile cannot shift it.
                tuple_(Batch.vintage_year, Batch.id, HoldingBlock.serial_start)
                > tuple_(bindparam("after_vintage"), bindparam("after_batch"), bindparam("after_serial")),
            )
            .order_by(Batch.vintage_year, Batch.id, HoldingBlock.serial_start)
            .with_for_update(of=HoldingBlock)
            .limit(bindparam("limit"))
        )
        if by_batch:
            query = query.where(HoldingBlock.batch_id.in_(bindparam("batches", expanding=True)))
        if by_offer:
            query = query.where(HoldingBlock.pending_transfer_id == bindparam("offer"))
        _OPEN_BLOCKS[key] = query
    return _OPEN_BLOCKS[key]


def _open_blocks(
    session: Session,
    account: Account,
    state: BlockState,
    batch_ids: list[int] | None,
    *,
    after: HoldingBlock | None,
    limit: int,
    pending_transfer_id: int | None = None,
) -> list[HoldingBlock]:
    query = _open_blocks_statement(batch_ids is not None, pending_transfer_id is not None)
    params: dict[str, Any] = {"account": account.id, "state": state, "limit": limit, **_FIRST_PAGE}
    if after is not None:
        params |= {"after_vintage": after.batch.vintage_year, "after_batch": after.batch_id,
                   "after_serial": after.serial_start}  # fmt: skip
    if batch_ids is not None:
        params["batches"] = batch_ids
    if pending_transfer_id is not None:
        params["offer"] = pending_transfer_id
    return list(session.scalars(query, params))


def _take(
    session: Session,
    account: Account,
    quantity: int | None,
    state: BlockState,
    batch_ids: list[int] | None,
    *,
    pending_transfer_id: int | None = None,
) -> list[Piece]:
    """Take ``quantity`` tonnes (``None``: all of them) of the account's open blocks in ``state``."""
    if quantity is not None and (isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0):
        raise InvalidInput(f"quantities are whole tonnes > 0, got {quantity!r}")
    # The account's row first, then its blocks (ADR 022): under READ COMMITTED a block read without the row
    # could be one a concurrent operation closes while this one waits, and the remainder it opens would be
    # invisible to this statement, so tonnes still held would be refused.
    lock_accounts(session, [account])
    pieces: list[Piece] = []
    needed, after = quantity, None
    # Read (and lock) the account's blocks a page at a time, oldest first, only as far as needed: an account
    # may hold many blocks, and an operation usually needs one or two of them.
    while needed is None or needed > 0:
        page = _open_blocks(
            session, account, state, batch_ids, after=after, limit=BLOCK_PAGE, pending_transfer_id=pending_transfer_id
        )
        for block in page:
            take = block.quantity if needed is None else min(block.quantity, needed)
            pieces.append(Piece(block, take))
            if needed is not None:
                needed -= take
                if needed == 0:
                    break
        if len(page) < BLOCK_PAGE:
            break
        after = page[-1]
    if needed:
        available = quantity - needed if quantity is not None else 0
        raise InsufficientUnits(
            f"{account.organisation.label} holds {available} t {state.value} in its {account.kind.value} account "
            f"{account.id}; {quantity} t needed",
            organisation_id=account.organisation_id, account_id=account.id, state=state.value,
            available_t=available, needed_t=quantity,
        )  # fmt: skip
    return pieces


#: Attributes that must be equal for two adjacent blocks to be one (coalescing, ADR 016).
_BLOCK_KEY = ("batch_id", "account_id", "state", "pledgee_organisation_id", "retirement_id", "pending_transfer_id")
#: States whose adjacent blocks are coalesced. Retired and cancelled blocks are never closed again.
_COALESCED = frozenset({BlockState.TRADABLE, BlockState.ESCROWED, BlockState.PLEDGED})


def _values(block: HoldingBlock) -> dict[str, Any]:
    return {name: getattr(block, name) for name in _BLOCK_KEY}


def _apply(
    session: Session,
    pieces: list[Piece],
    kind: str,
    *,
    actor: str,
    now: datetime,
    reason: str = "",
    **changes: Any,
) -> list[HoldingBlock]:
    """Close each taken block and open the moved piece with ``changes`` and the remainder unchanged.

    Adjacent open blocks with the same batch, account, state and links are one block: a moved piece that
    lands next to such a block is merged with it (the neighbour is closed, the merged block opened), so an
    account's holdings stay few blocks however many transfers cut them (ADR 016). Returns the moved ranges
    (transient blocks, not the merged rows): what the operation did, for its audit entry and response.
    The rows are written with three bulk statements (close, open, journal), not object by object.
    """
    moved: list[HoldingBlock] = []
    fresh: list[tuple[dict[str, Any], int, int]] = []
    closing: list[HoldingBlock] = []
    movements = []
    for piece in pieces:
        block = piece.block
        closing.append(block)
        cut = block.serial_start + piece.quantity - 1
        values = _values(block) | changes
        fresh.append((values, block.serial_start, cut))
        if cut < block.serial_end:
            fresh.append((_values(block), cut + 1, block.serial_end))
        view = HoldingBlock(serial_start=block.serial_start, serial_end=cut, created_at=now, **values)
        view.batch = block.batch
        moved.append(view)
        movements.append(
            {"kind": kind, "batch_id": block.batch_id, "serial_start": block.serial_start, "serial_end": cut,
             "from_account_id": block.account_id, "to_account_id": values["account_id"],
             "from_state": block.state.value, "to_state": values["state"].value, "reason": reason, "actor": actor,
             "created_at": now}
        )  # fmt: skip
    with session.no_autoflush:
        neighbours = _neighbours(session, moved, {b.id for b in closing})
    opened, merged = _coalesce(fresh, neighbours)
    closing.extend(merged)
    if closing:
        session.execute(_CLOSE, {"ids": [b.id for b in closing], "now": now})
        for block in closing:  # keep the loaded objects true to the row without another UPDATE at flush
            set_committed_value(block, "closed_at", now)
    if opened:
        session.execute(_OPEN, [row | {"created_at": now} for row in opened])
    insert_rows(session, _MOVEMENTS, movements)  # at the end of an order-entry batch, with the others (ADR 015)
    return moved


def _neighbours(session: Session, moved: list[HoldingBlock], closing: set[int]) -> list[HoldingBlock]:
    """Return the open blocks just before and just after each moved range that could merge with it."""
    rows: dict[int, HoldingBlock] = {}
    for m in moved:
        # Merging closes the neighbour: only in an account whose row this transaction holds (the source's is;
        # a receiver's is taken if free, never waited for), so no operation of the receiver loses sight of it.
        if m.state in _COALESCED and _try_lock_account(session, m.account_id):
            params = {"batch": m.batch_id, "start": m.serial_start, "after": m.serial_end + 1, "account": m.account_id}
            rows.update((b.id, b) for b in session.scalars(_NEIGHBOURS, params))
    return [b for b in rows.values() if b.id not in closing and b.state in _COALESCED]


def _coalesce(
    fresh: list[tuple[dict[str, Any], int, int]], neighbours: list[HoldingBlock]
) -> tuple[list[dict[str, Any]], list[HoldingBlock]]:
    """Merge the new ranges with each other and with adjacent neighbours of the same key.

    Returns the rows to open and the neighbours they absorb (to close).
    """
    groups: dict[tuple[Any, ...], list[tuple[int, int, HoldingBlock | None, dict[str, Any]]]] = defaultdict(list)
    for values, start, end in fresh:
        groups[tuple(values[k] for k in _BLOCK_KEY)].append((start, end, None, values))
    for block in neighbours:
        key = tuple(getattr(block, k) for k in _BLOCK_KEY)
        if key in groups:
            groups[key].append((block.serial_start, block.serial_end, block, _values(block)))
    opened: list[dict[str, Any]] = []
    absorbed: list[HoldingBlock] = []
    for key, ranges in groups.items():
        mergeable = key[_BLOCK_KEY.index("state")] in _COALESCED
        ranges.sort(key=lambda r: r[0])
        runs: list[list[tuple[int, int, HoldingBlock | None, dict[str, Any]]]] = []
        for r in ranges:
            if mergeable and runs and runs[-1][-1][1] + 1 == r[0]:
                runs[-1].append(r)
            else:
                runs.append([r])
        for run in runs:
            if len(run) == 1 and run[0][2] is not None:
                continue  # a neighbour that touches nothing new stays as it is
            absorbed.extend(old for _, _, old, _ in run if old is not None)
            opened.append({"serial_start": run[0][0], "serial_end": run[-1][1], **run[0][3]})
    return opened, absorbed


def serial_of(block: HoldingBlock) -> SerialBlock:
    """Return the serial range of a block (the one derivation of its serial string)."""
    batch = block.batch
    return SerialBlock(
        batch.credit_class.value, batch.province_code, batch.project_id, batch.vintage_year, batch.batch_number,
        block.serial_start, block.serial_end,
    )  # fmt: skip


def serials(blocks: list[HoldingBlock]) -> list[str]:
    """Return the serial strings of blocks."""
    return [serial_of(b).format() for b in blocks]


def _record(
    session: Session,
    action: str,
    subject: str,
    payload: dict[str, Any],
    actor: str,
    clock: Clock,
    sink: list[audit.Event] | None = None,
) -> None:
    """Append the audit entry now, or to ``sink`` for a caller that appends a whole batch at once."""
    if sink is not None:
        sink.append(audit.Event(actor, action, subject, payload))
        return
    audit.append(session, actor=actor, action=action, subject=subject, payload=payload, clock=clock)


@dataclass(frozen=True)
class IssueBatch:
    """Command: issue whole tonnes for a project; ``buffer_t`` of them go to the registry's buffer pool."""

    project_id: int
    source: str
    credit_class: CreditClass
    vintage_year: int
    quantity_t: int
    buffer_t: int


def issue_batch(session: Session, cmd: IssueBatch, *, actor: Principal, clock: Clock, commit: bool = True) -> Batch:
    """Issue a batch: serials 1..quantity, the buffer share in the buffer pool, the rest to the proponent.

    Raises:
        PermissionDenied: The actor is not the registry.
        Conflict: The source (e.g. a monitoring report) has been issued already.
    """
    if actor.role is not OrgKind.REGISTRY:
        raise PermissionDenied("only the registry issues (rule: issuer is the registry)")
    for name in ("quantity_t", "buffer_t", "vintage_year"):
        value = getattr(cmd, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"{name} must be a whole number, got {value!r}")
    if cmd.quantity_t <= 0 or not 0 <= cmd.buffer_t <= cmd.quantity_t:
        raise InvalidInput("issuance needs quantity > 0 and 0 <= buffer <= quantity")
    if session.scalars(select(Batch).where(Batch.source == cmd.source)).first() is not None:
        raise Conflict(f"{cmd.source} has been issued already (no double issuance)")
    project = session.get(Project, cmd.project_id)
    if project is None:
        raise NotFound(f"project {cmd.project_id} does not exist")
    now = clock.now()
    number = (session.scalar(select(func.max(Batch.batch_number)).where(Batch.project_id == project.id)) or 0) + 1
    batch = Batch(
        project_id=project.id, batch_number=number, source=cmd.source, credit_class=cmd.credit_class,
        province_code=project.province_code, vintage_year=cmd.vintage_year, quantity_t=cmd.quantity_t,
        buffer_t=cmd.buffer_t, issued_at=now, issued_by_user_id=actor.user_id,
    )  # fmt: skip
    session.add(batch)
    session.flush()
    holder = receiving_account(session, project.organisation_id, now=now)
    proponent_t = cmd.quantity_t - cmd.buffer_t
    parts = [(holder, 1, proponent_t), (buffer_account(session, now=now), proponent_t + 1, cmd.quantity_t)]
    blocks = []
    for account, start, end in parts:
        if start > end:
            continue
        block = HoldingBlock(
            batch_id=batch.id, account_id=account.id, serial_start=start, serial_end=end,
            state=BlockState.TRADABLE, created_at=now,
        )  # fmt: skip
        session.add(block)
        session.add(
            Movement(kind="issue", batch_id=batch.id, serial_start=start, serial_end=end, from_account_id=None,
                     to_account_id=account.id, from_state=None, to_state="tradable", actor=actor.actor, created_at=now)
        )  # fmt: skip
        blocks.append(block)
    session.flush()
    payload = {"source": cmd.source, "quantity_t": cmd.quantity_t, "buffer_t": cmd.buffer_t, "serials": serials(blocks)}
    _record(session, "batch.issued", f"batch:{batch.id}", payload, actor.actor, clock)
    if commit:
        session.commit()
    return batch


def class_policies(session: Session, classes: set[CreditClass]) -> dict[CreditClass, CreditClassPolicy]:
    """Return the registry's rules for each credit class (every class has a row, seeded by the migration)."""
    rows = session.scalars(_POLICIES, {"classes": sorted(c.value for c in classes)}).all()
    found = {CreditClass(r.credit_class): r for r in rows}
    missing = classes - set(found)
    if missing:
        raise NotFound(f"no registry rules for credit class(es) {', '.join(sorted(c.value for c in missing))}")
    return found


def transfer(
    session: Session,
    *,
    from_organisation_id: int,
    to_organisation_id: int,
    quantity_t: int,
    actor: Principal,
    clock: Clock,
    batch_ids: list[int] | None = None,
) -> list[HoldingBlock]:
    """Move tradable tonnes (oldest vintage first) from one organisation's holding account to another's.

    When a class of the tonnes taken requires the receiver's acceptance (``credit_class_policy``), the whole
    transfer waits instead: the blocks become ``pending`` in the sender's account, linked to a
    :class:`PendingTransfer` that the receiver accepts or rejects before it expires
    (:func:`decide_transfer`, :func:`expire_transfers`). The returned blocks then have state ``pending``.
    """
    if actor.organisation_id != from_organisation_id:
        raise PermissionDenied("only the holder transfers its units")
    if from_organisation_id == to_organisation_id:
        raise InvalidInput("a transfer needs two different organisations")
    check_receiver(session, to_organisation_id)
    now = clock.now()
    source, target = accounts_of(session, [from_organisation_id, to_organisation_id], now=now)
    pieces = _take(session, source, quantity_t, BlockState.TRADABLE, batch_ids)
    policies = class_policies(session, {p.block.batch.credit_class for p in pieces})
    if any(policy.requires_acceptance for policy in policies.values()):
        days = min(p.acceptance_days for p in policies.values() if p.requires_acceptance)
        offer = PendingTransfer(
            from_account_id=source.id, to_account_id=target.id, quantity_t=quantity_t,
            status=TransferStatus.PENDING, created_at=now, created_by_user_id=actor.user_id,
            expires_at=now + timedelta(days=days),
        )  # fmt: skip
        session.add(offer)
        session.flush()
        moved = _apply(session, pieces, "offer", actor=actor.actor, now=now,
                       state=BlockState.PENDING, pending_transfer_id=offer.id)  # fmt: skip
        payload = {"from": source.id, "to": target.id, "quantity_t": quantity_t, "serials": serials(moved),
                   "pending_transfer": offer.id, "expires_at": offer.expires_at.isoformat()}  # fmt: skip
        _record(session, "units.transfer_offered", f"pending_transfer:{offer.id}", payload, actor.actor, clock)
    else:
        moved = _apply(session, pieces, "transfer", actor=actor.actor, now=now, account_id=target.id)
        payload = {"from": source.id, "to": target.id, "quantity_t": quantity_t, "serials": serials(moved)}
        _record(session, "units.transferred", f"account:{source.id}", payload, actor.actor, clock)
    session.commit()
    return moved


def pending_transfer_of(moved: list[HoldingBlock]) -> int | None:
    """Return the pending transfer the blocks returned by :func:`transfer` wait in, if any."""
    return moved[0].pending_transfer_id if moved else None


def _settle_offer(
    session: Session, offer: PendingTransfer, status: TransferStatus, *, actor: str, now: datetime, reason: str
) -> list[HoldingBlock]:
    source = session.get(Account, offer.from_account_id)
    assert source is not None  # a foreign key
    pieces = _take(session, source, None, BlockState.PENDING, None, pending_transfer_id=offer.id)
    accepted = status is TransferStatus.ACCEPTED
    if accepted:  # an offer made before the hold rule may name a receiver that may not hold
        receiver = session.get(Account, offer.to_account_id)
        assert receiver is not None  # a foreign key
        check_receiver(session, receiver.organisation_id, receiver.kind)
    account_id = offer.to_account_id if accepted else offer.from_account_id
    moved = _apply(session, pieces, "transfer" if accepted else "return", actor=actor, now=now, reason=reason,
                   state=BlockState.TRADABLE, pending_transfer_id=None, account_id=account_id)  # fmt: skip
    offer.status, offer.decided_at, offer.decided_by, offer.reason = status, now, actor, reason
    return moved


def decide_transfer(
    session: Session, transfer_id: int, *, accept: bool, actor: Principal, clock: Clock, reason: str = ""
) -> list[HoldingBlock]:
    """The receiver accepts a pending transfer (the blocks move to it as tradable) or rejects it (they return).

    Raises:
        NotFound: No such transfer, or the actor's organisation is not its receiver.
        Conflict: The transfer was decided already or has expired (its blocks then return to the sender).
    """
    offer = session.scalars(
        select(PendingTransfer).where(PendingTransfer.id == transfer_id).with_for_update()
    ).one_or_none()
    receiver = session.get(Account, offer.to_account_id) if offer is not None else None
    if offer is None or receiver is None or receiver.organisation_id != actor.organisation_id:
        raise NotFound(f"no pending transfer {transfer_id} to your organisation")
    if offer.status is not TransferStatus.PENDING:
        raise Conflict(f"transfer {transfer_id} is {offer.status.value} already")
    now = clock.now()
    if now >= _aware(offer.expires_at):
        raise Conflict(
            f"transfer {transfer_id} expired at {offer.expires_at.isoformat()}; its units return to the sender"
        )
    status = TransferStatus.ACCEPTED if accept else TransferStatus.REJECTED
    moved = _settle_offer(session, offer, status, actor=actor.actor, now=now, reason=reason)
    payload = {"from": offer.from_account_id, "to": offer.to_account_id, "quantity_t": offer.quantity_t,
               "reason": reason, "serials": serials(moved)}  # fmt: skip
    _record(session, f"units.transfer_{status.value}", f"pending_transfer:{offer.id}", payload, actor.actor, clock)
    session.commit()
    return moved


def expire_transfers(session: Session, *, actor: str, clock: Clock) -> list[int]:
    """Return the blocks of every pending transfer past its deadline to its sender; one audit entry each."""
    now = clock.now()
    offers = session.scalars(
        select(PendingTransfer)
        .where(PendingTransfer.status == TransferStatus.PENDING, PendingTransfer.expires_at <= now)
        .order_by(PendingTransfer.id)
        .with_for_update()
    ).all()
    events = []
    for offer in offers:
        moved = _settle_offer(session, offer, TransferStatus.EXPIRED, actor=actor, now=now, reason="expired")
        payload = {"from": offer.from_account_id, "to": offer.to_account_id, "quantity_t": offer.quantity_t,
                   "serials": serials(moved)}  # fmt: skip
        events.append(audit.Event(actor, "units.transfer_expired", f"pending_transfer:{offer.id}", payload))
    if events:
        audit.append_many(session, events, clock=clock)
    session.commit()
    return [o.id for o in offers]


def _aware(moment: datetime) -> datetime:
    # SQLite returns naive datetimes for timezone-aware columns; they were written in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def change_state(
    session: Session,
    kind: str,
    *,
    organisation_id: int,
    quantity_t: int,
    actor: Principal,
    clock: Clock,
    pledgee_organisation_id: int | None = None,
    reason: str = "",
    batch_ids: list[int] | None = None,
    commit: bool = True,
    account_kind: AccountKind = AccountKind.HOLDING,
    audit_events: list[audit.Event] | None = None,
) -> list[HoldingBlock]:
    """Escrow, release, pledge, unpledge, enforce a pledge, or cancel tonnes of an organisation's account.

    ``enforce`` moves pledged tonnes to the pledgee bank as tradable; ``cancel`` (registry only, with a
    reason) takes them out of circulation for good. With ``audit_events`` the audit entry is collected there
    for the caller to append (with :func:`core.audit.append_many`, in the same transaction) instead of now.
    """
    if kind not in MOVABLE_FROM or kind in ("transfer", "retire"):
        raise InvalidInput(f"unknown state change {kind!r}")
    now = clock.now()
    account = account_of(session, organisation_id, account_kind, now=now)
    pieces = _take(session, account, quantity_t, MOVABLE_FROM[kind], batch_ids)
    changes: dict[str, Any] = _state_changes(
        session, kind, account, pieces, actor, pledgee_organisation_id, reason, now
    )
    moved = _apply(session, pieces, kind, actor=actor.actor, now=now, reason=reason, **changes)
    payload = {"account": account.id, "quantity_t": quantity_t, "reason": reason, "serials": serials(moved)}
    _record(session, f"units.{kind}", f"account:{account.id}", payload, actor.actor, clock, audit_events)
    if commit:
        session.commit()
    return moved


def _state_changes(
    session: Session,
    kind: str,
    account: Account,
    pieces: list[Piece],
    actor: Principal,
    pledgee: int | None,
    reason: str,
    now: datetime,
) -> dict[str, Any]:
    if kind == "cancel":
        if actor.role is not OrgKind.REGISTRY or not reason.strip():
            raise PermissionDenied("only the registry cancels units, and always with a reason")
        return {"state": BlockState.CANCELLED}
    if kind in ("enforce", "unpledge"):
        pledgees = {p.block.pledgee_organisation_id for p in pieces}
        if pledgees != {actor.organisation_id}:
            raise PermissionDenied("only the pledgee bank releases or enforces its pledge")
        if kind == "unpledge":
            return {"state": BlockState.TRADABLE, "pledgee_organisation_id": None}
        return {"state": BlockState.TRADABLE, "pledgee_organisation_id": None,
                "account_id": receiving_account(session, actor.organisation_id, now=now).id}  # fmt: skip
    operator_escrow = actor.role is OrgKind.OPERATOR and kind in ("escrow", "release")
    if account.organisation_id != actor.organisation_id and not operator_escrow:
        raise PermissionDenied("only the holder (or the exchange operator, for escrow) changes its units' state")
    if kind == "pledge":
        bank = session.get(Organisation, pledgee) if pledgee is not None else None
        if bank is None or bank.kind is not OrgKind.BANK:
            raise InvalidInput("a pledge names a bank organisation as pledgee")
        return {"state": BlockState.PLEDGED, "pledgee_organisation_id": bank.id}
    return {"state": BlockState.ESCROWED if kind == "escrow" else BlockState.TRADABLE}


@dataclass(frozen=True)
class RetireUnits:
    """Command: retire tonnes for a beneficiary."""

    quantity_t: int
    beneficiary: str
    purpose: str
    reporting_year: int
    use: str = "voluntary"


#: Compliance uses and what they accept (reference registry-trading §4.5: Fujian's market accepts only
#: CCER / FFCER generated in Fujian). Voluntary offsetting accepts every class.
COMPLIANCE_RULES: dict[str, tuple[frozenset[CreditClass], frozenset[str]]] = {
    "compliance:fujian": (
        frozenset({CreditClass.CCER_AFFORESTATION, CreditClass.FORESTRY_CARBON_TICKET}),
        frozenset({"35"}),
    ),
}


def _check_use(use: str, pieces: list[Piece]) -> None:
    if use == "voluntary":
        return
    if use not in COMPLIANCE_RULES:
        raise InvalidInput(f"unknown use {use!r}; use 'voluntary' or one of {', '.join(sorted(COMPLIANCE_RULES))}")
    classes, provinces = COMPLIANCE_RULES[use]
    for piece in pieces:
        batch = piece.block.batch
        if batch.credit_class not in classes or batch.province_code not in provinces:
            raise InvalidInput(
                f"{use} accepts only {', '.join(sorted(c.value for c in classes))} generated in province(s) "
                f"{', '.join(sorted(provinces))}; batch {batch.id} is {batch.credit_class.value} "
                f"from {batch.province_code}"
            )


def retired_payload(retirement: Retirement, moved: list[HoldingBlock]) -> dict[str, Any]:
    """Return the ``units.retired`` entry's payload: what the retirement's certificate says and checks."""
    return {
        "quantity_t": retirement.quantity_t, "beneficiary": retirement.beneficiary, "purpose": retirement.purpose,
        "use": retirement.use, "reporting_year": retirement.reporting_year,
        "verification_code": retirement.verification_code, "serials": serials(moved),
    }  # fmt: skip


def retire_units(
    session: Session, cmd: RetireUnits, *, actor: Principal, clock: Clock, notary: Notary | None = None
) -> Retirement:
    """Retire tonnes of the actor's organisation for good; returns the retirement (with its code).

    With ``notary`` the retirement keeps the signed tree head of the log ending with its audit entry,
    signed in the same transaction (what its certificate shows; ADR 023).
    """
    if not cmd.beneficiary.strip() or not cmd.purpose.strip():
        raise InvalidInput("a retirement names a beneficiary and a purpose")
    check_printable(beneficiary=cmd.beneficiary, purpose=cmd.purpose, use=cmd.use)
    now = clock.now()
    account = account_of(session, actor.organisation_id, now=now)
    pieces = _take(session, account, cmd.quantity_t, BlockState.TRADABLE, None)
    _check_use(cmd.use, pieces)
    retirement = Retirement(
        account_id=account.id, quantity_t=cmd.quantity_t, beneficiary=cmd.beneficiary, purpose=cmd.purpose,
        reporting_year=cmd.reporting_year, use=cmd.use, verification_code=secrets.token_hex(8).upper(),
        created_at=now, created_by_user_id=actor.user_id,
    )  # fmt: skip
    session.add(retirement)
    session.flush()
    moved = _apply(
        session, pieces, "retire", actor=actor.actor, now=now, reason=cmd.purpose,
        state=BlockState.RETIRED, retirement_id=retirement.id,
    )  # fmt: skip
    entry = audit.append(session, actor=actor.actor, action="units.retired", subject=f"retirement:{retirement.id}",
                         payload=retired_payload(retirement, moved), clock=clock)  # fmt: skip
    if notary is not None:
        retirement.keep_tree_head(notary.head_through(session, entry, clock))
    session.commit()
    return retirement


def open_blocks(session: Session, organisation_id: int | None = None) -> list[HoldingBlock]:
    """Return the open blocks (current holdings), of one organisation or of everyone."""
    query = (
        select(HoldingBlock)
        .where(HoldingBlock.closed_at.is_(None))
        .order_by(HoldingBlock.batch_id, HoldingBlock.serial_start)
    )
    if organisation_id is not None:
        query = query.join(Account).where(Account.organisation_id == organisation_id)
    return list(session.scalars(query))


def ledger_violations(session: Session) -> list[Violation]:
    """Check the conservation invariants over the whole ledger (``carbon.invariants``)."""
    # Plain columns, not ORM objects: the check reads every block ever written.
    batches = [BatchFacts(i, q) for i, q in session.execute(select(Batch.id, Batch.quantity_t))]
    rows = session.execute(
        select(
            HoldingBlock.batch_id,
            HoldingBlock.serial_start,
            HoldingBlock.serial_end,
            HoldingBlock.state,
            HoldingBlock.closed_at.is_not(None),
        )
    )
    blocks = [BlockFacts(b, s, e, BlockState(state).value, bool(closed)) for b, s, e, state, closed in rows]
    return check_invariants(batches, blocks)


@dataclass(frozen=True)
class Reversal:
    """What a reversal cancelled: from the buffer pool, and (per class rules) from the proponent's holdings."""

    rule: ReversalRule
    from_buffer: list[HoldingBlock]
    from_proponent: list[HoldingBlock]


def tradable_t(session: Session, account: Account, batch_ids: list[int]) -> int:
    """Return the tonnes of ``batch_ids`` in ``account`` that are tradable now (open blocks)."""
    total = session.scalar(
        select(func.coalesce(func.sum(HoldingBlock.serial_end - HoldingBlock.serial_start + 1), 0)).where(
            HoldingBlock.account_id == account.id, HoldingBlock.state == BlockState.TRADABLE,
            HoldingBlock.closed_at.is_(None), HoldingBlock.batch_id.in_(batch_ids),
        )
    )  # fmt: skip
    return int(total or 0)


def reverse(
    session: Session, project_id: int, quantity_t: int, reason: str, *, actor: Principal, clock: Clock
) -> Reversal:
    """Cover a reversal (fire, logging) of a project by cancelling as many tonnes as were lost, with the reason.

    The tonnes come from the buffer pool (the project's batches, oldest first). When the pool holds too few,
    the class rule (``credit_class_policy.reversal_rule``) decides: ``buffer_then_proponent`` cancels the
    shortfall from the proponent's *tradable* tonnes of the project (escrowed and pledged tonnes are promised
    to others and retired ones are final); ``buffer_only`` refuses. If the tonnes cannot all be covered the
    reversal is refused as a whole and nothing changes. A project whose batches are of several classes takes
    the strictest rule (``buffer_only`` if any class has it).
    """
    if actor.role is not OrgKind.REGISTRY:
        raise PermissionDenied("only the registry records reversals")
    if isinstance(quantity_t, bool) or not isinstance(quantity_t, int) or quantity_t <= 0:
        raise InvalidInput(f"quantities are whole tonnes > 0, got {quantity_t!r}")
    if not reason.strip():
        raise InvalidInput("a reversal states its reason")
    project = session.get(Project, project_id)
    batches = session.execute(select(Batch.id, Batch.credit_class).where(Batch.project_id == project_id)).all()
    if project is None or not batches:
        raise NotFound(f"project {project_id} has no issued batches")
    batch_ids = [b for b, _ in batches]
    policies = class_policies(session, {CreditClass(c) for _, c in batches})
    rules = {p.reversal_rule for p in policies.values()}
    rule = ReversalRule.BUFFER_ONLY if ReversalRule.BUFFER_ONLY in rules else ReversalRule.BUFFER_THEN_PROPONENT
    now = clock.now()
    pool = buffer_account(session, now=now)
    holder = account_of(session, project.organisation_id, now=now)
    lock_accounts(session, [pool, holder])  # before the balances are read, so that they hold until the commit
    from_buffer_t = min(quantity_t, tradable_t(session, pool, batch_ids))
    shortfall_t = quantity_t - from_buffer_t
    if shortfall_t and rule is ReversalRule.BUFFER_ONLY:
        raise InsufficientUnits(
            f"the buffer pool holds {from_buffer_t} t of project {project_id}, {quantity_t} t lost; "
            f"class rule {rule.value} takes nothing from holders"
        )
    if shortfall_t and tradable_t(session, holder, batch_ids) < shortfall_t:
        raise InsufficientUnits(
            f"the buffer pool holds {from_buffer_t} t and the proponent {tradable_t(session, holder, batch_ids)} t "
            f"tradable of project {project_id}; {quantity_t} t lost"
        )
    text = f"reversal: {reason}"
    buffer_pieces = _take(session, pool, from_buffer_t, BlockState.TRADABLE, batch_ids) if from_buffer_t else []
    holder_pieces = _take(session, holder, shortfall_t, BlockState.TRADABLE, batch_ids) if shortfall_t else []
    cancelled = {"state": BlockState.CANCELLED}
    from_buffer = _apply(session, buffer_pieces, "cancel", actor=actor.actor, now=now, reason=text, **cancelled)
    from_holder = _apply(session, holder_pieces, "cancel", actor=actor.actor, now=now, reason=text, **cancelled)
    events = [
        audit.Event(actor.actor, "units.reversed", f"account:{account.id}",
                    {"project": project_id, "account": account.id, "quantity_t": sum(b.quantity for b in moved),
                     "lost_t": quantity_t, "rule": rule.value, "reason": text, "serials": serials(moved)})
        for account, moved in ((pool, from_buffer), (holder, from_holder)) if moved
    ]  # fmt: skip
    audit.append_many(session, events, clock=clock)
    session.commit()
    return Reversal(rule, from_buffer, from_holder)


def settle_escrowed(
    session: Session,
    *,
    organisation_id: int,
    quantity_t: int,
    batch_ids: list[int],
    actor: str,
    clock: Clock,
    to_organisation_id: int | None = None,
    retirement: Retirement | None = None,
    reason: str = "",
    audit_events: list[audit.Event] | None = None,
) -> list[HoldingBlock]:
    """The exchange's side of escrow: deliver escrowed tonnes to a buyer, or release them to their holder.

    With ``to_organisation_id`` the tonnes (oldest eligible batch first) move to the buyer's holding account
    as tradable — or as retired under ``retirement`` (retire on fill); without it they return to tradable
    in place (an order cancelled, expired or left over). Only the exchange calls this, inside the
    transaction that records the trade or the cancellation (the caller commits; with ``audit_events`` the
    audit entry is collected there for the caller's :func:`core.audit.append_many`).
    """
    now = clock.now()
    account = account_of(session, organisation_id, now=now)
    pieces = _take(session, account, quantity_t, BlockState.ESCROWED, batch_ids)
    changes: dict[str, Any] = {"state": BlockState.TRADABLE}
    kind = "release"
    if to_organisation_id is not None:
        kind = "transfer"
        changes["account_id"] = receiving_account(session, to_organisation_id, now=now).id
        if retirement is not None:
            kind = "retire"
            changes |= {"state": BlockState.RETIRED, "retirement_id": retirement.id}
    moved = _apply(session, pieces, kind, actor=actor, now=now, reason=reason, **changes)
    payload = {"account": account.id, "to": changes.get("account_id"), "quantity_t": quantity_t,
               "reason": reason, "serials": serials(moved)}  # fmt: skip
    _record(session, f"units.settled.{kind}", f"account:{account.id}", payload, actor, clock, audit_events)
    if retirement is not None and to_organisation_id is not None:
        # Retire on fill records the retirement as a direct retirement does: its certificate names this entry.
        _record(session, "units.retired", f"retirement:{retirement.id}", retired_payload(retirement, moved), actor,
                clock, audit_events)  # fmt: skip
    return moved
