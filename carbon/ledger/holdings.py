"""Serial blocks in accounts: take tonnes from an account, move them, and coalesce what lands together.

Invariants (checked by :mod:`carbon.ledger.invariants` in tests and ``shanhai audit verify``):

* every tonne of a batch is in exactly one *open* block; open blocks of a batch never overlap and together
  cover serials ``1..quantity`` — so issued = Σ accounts (tradable + escrowed + pledged) + retired + cancelled;
* quantities are whole tonnes (integers); a block is split by closing it and opening the pieces;
* only tradable blocks move between accounts; escrow, pledge and their release are changes of state in
  place; retired and cancelled blocks never change again.

Blocks are taken oldest vintage first, then by batch and serial, unless the caller names blocks. An operation
takes from an account only after locking its row (:func:`carbon.ledger.accounts.lock_accounts`, ADR 022).
Pages of blocks are read by key (vintage, batch, serial), never by offset, so rows inserted meanwhile cannot
shift a page.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, func, insert, or_, select, text, tuple_, update
from sqlalchemy.orm import Session, contains_eager, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from carbon.ledger.accounts import lock_accounts, try_lock_account
from carbon.ledger.invariants import BatchFacts, BlockFacts, Violation, check_invariants
from carbon.ledger.tables import Account, Batch, BlockState, HoldingBlock, Movement
from carbon.ledger.unit_of_work import UnitOfWork
from core.db import insert_rows
from core.errors import InsufficientUnits, InvalidInput

BLOCK_PAGE = 64


@dataclass(frozen=True)
class Piece:
    """Part of an open block taken by an operation."""

    block: HoldingBlock
    quantity: int


#: Sorts before every block (vintages, batch ids and serials are positive): the key of the first page.
_FIRST_PAGE = {"after_vintage": 0, "after_batch": 0, "after_serial": 0}
_NEIGHBOURS: dict[int, Any] = {}


def _neighbours_statement(ranges: int) -> Any:
    """The open blocks just before and just after each of ``ranges`` moved ranges, in one statement.

    Range ``i``'s parameters are ``batch_i``, ``start_i`` (its first serial), ``after_i`` (its last serial
    + 1) and ``account_i``; the rows are those the same predicate per range would find, read at once.
    """
    if ranges not in _NEIGHBOURS:
        matches = []
        for i in range(ranges):
            before = (
                select(func.max(HoldingBlock.serial_start))
                .where(
                    HoldingBlock.batch_id == bindparam(f"batch_{i}"),
                    HoldingBlock.closed_at.is_(None),
                    HoldingBlock.serial_start < bindparam(f"start_{i}"),
                )
                .scalar_subquery()
            )
            matches.append(
                and_(
                    HoldingBlock.batch_id == bindparam(f"batch_{i}"),
                    HoldingBlock.serial_start.in_([before, bindparam(f"after_{i}")]),
                    HoldingBlock.account_id == bindparam(f"account_{i}"),  # only a block of the same account can merge
                )
            )
        _NEIGHBOURS[ranges] = (
            select(HoldingBlock)
            .options(lazyload(HoldingBlock.batch))
            .where(HoldingBlock.closed_at.is_(None), or_(*matches))
            # A neighbour may belong to another account (the receiver's, whose row this transaction holds, ADR
            # 022): never wait for its lock all the same — a neighbour that a concurrent transaction holds is
            # simply not merged this time — so merging adds no lock wait or deadlock.
            .with_for_update(skip_locked=True)
        )
    return _NEIGHBOURS[ranges]


_OPEN_BLOCKS: dict[tuple[bool, bool], Any] = {}
# Plain table statements (no ORM unit of work) for the rows an operation writes.
_BLOCKS = cast(Table, HoldingBlock.__table__)
_CLOSE = update(_BLOCKS).where(_BLOCKS.c.id.in_(bindparam("ids", expanding=True))).values(closed_at=bindparam("now"))
_OPEN = insert(_BLOCKS)
_MOVEMENTS = cast(Table, Movement.__table__)
# PostgreSQL: the close and the open in one statement of fixed text (:func:`_close_and_open`). The columns are
# those of ``_BLOCK_KEY`` and the range; a test compares them with the table's.
_CLOSE_AND_OPEN = text(
    "WITH closed AS (UPDATE holding_block SET closed_at = :now WHERE id = ANY(CAST(:ids AS INTEGER[]))) "
    "INSERT INTO holding_block (batch_id, account_id, serial_start, serial_end, state, pledgee_organisation_id, "
    "retirement_id, pending_transfer_id, created_at) "
    "SELECT u.*, :now FROM unnest(CAST(:batch AS INTEGER[]), CAST(:account AS INTEGER[]), "
    "CAST(:start AS BIGINT[]), CAST(:end AS BIGINT[]), CAST(:state AS VARCHAR[]), CAST(:pledgee AS INTEGER[]), "
    "CAST(:retirement AS INTEGER[]), CAST(:transfer AS INTEGER[])) AS u"
)


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


def take(
    uow: UnitOfWork,
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
    lock_accounts(uow, [account])
    pieces: list[Piece] = []
    needed, after = quantity, None
    # Read (and lock) the account's blocks a page at a time, oldest first, only as far as needed: an account
    # may hold many blocks, and an operation usually needs one or two of them.
    while needed is None or needed > 0:
        page = _open_blocks(
            uow.session,
            account,
            state,
            batch_ids,
            after=after,
            limit=BLOCK_PAGE,
            pending_transfer_id=pending_transfer_id,
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


def first_tonnes(pieces: list[Piece], quantity: int) -> list[Piece]:
    """Return the first ``quantity`` tonnes of taken pieces (the last piece cut short), in order."""
    out: list[Piece] = []
    for piece in pieces:
        if quantity <= 0:
            break
        out.append(piece if piece.quantity <= quantity else Piece(piece.block, quantity))
        quantity -= piece.quantity
    return out


#: Attributes that must be equal for two adjacent blocks to be one (coalescing, ADR 016).
_BLOCK_KEY = ("batch_id", "account_id", "state", "pledgee_organisation_id", "retirement_id", "pending_transfer_id")
#: States whose adjacent blocks are coalesced. Retired and cancelled blocks are never closed again.
_COALESCED = frozenset({BlockState.TRADABLE, BlockState.ESCROWED, BlockState.PLEDGED})


def _values(block: HoldingBlock) -> dict[str, Any]:
    return {name: getattr(block, name) for name in _BLOCK_KEY}


def move(
    uow: UnitOfWork,
    pieces: list[Piece],
    kind: str,
    *,
    actor: str,
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
    return _move(uow, pieces, kind, actor, reason, changes, coalesce=True)


def move_apart(uow: UnitOfWork, pieces: list[Piece], kind: str, *, actor: str, reason: str = "",
               **changes: Any) -> list[HoldingBlock]:  # fmt: skip
    """:func:`move` without coalescing: the moved pieces stay blocks of their own, no neighbour is read.

    For an order's escrow at entry (ADR 035): its block is split again at delivery, where the receiving
    side merges, or released in place; reading neighbours at entry would only merge what delivery cuts.
    """
    return _move(uow, pieces, kind, actor, reason, changes, coalesce=False)


def _move(uow: UnitOfWork, pieces: list[Piece], kind: str, actor: str, reason: str, changes: dict[str, Any], *,
          coalesce: bool) -> list[HoldingBlock]:  # fmt: skip
    session, now = uow.session, uow.clock.now()
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
        neighbours = _neighbours(uow, moved, {b.id for b in closing}) if coalesce else []
    opened, merged = _coalesce(fresh, neighbours)
    closing.extend(merged)
    _close_and_open(session, [b.id for b in closing], opened, now)
    for block in closing:  # keep the loaded objects true to the row without another UPDATE at flush
        set_committed_value(block, "closed_at", now)
    insert_rows(session, _MOVEMENTS, movements)  # at the end of an order-entry batch, with the others (ADR 015)
    return moved


#: Moved ranges whose neighbours one statement reads.
_NEIGHBOUR_RANGES = 16


def _close_and_open(session: Session, closing: list[int], opened: list[dict[str, Any]], now: Any) -> None:
    """Close the blocks ``closing`` and open the rows ``opened`` (at ``now``): one statement on PostgreSQL.

    On PostgreSQL the close is a data-modifying ``WITH`` of the insert, and the rows come as one array per
    column (``unnest``), so the statement's text is the same for any number of rows: built, and prepared by
    the driver, once. One round trip instead of two, for every escrow, delivery and registry move. The two
    parts touch different rows — the closed ones this transaction has locked already, the opened ones new —
    and ``holding_block`` has no unique key but its id and no trigger, so the order in which PostgreSQL runs
    them cannot change what either does. Elsewhere (SQLite): the two bulk statements.
    """
    if closing and opened and session.get_bind().dialect.name == "postgresql":
        session.execute(
            _CLOSE_AND_OPEN,
            {"ids": closing, "now": now, "batch": [r["batch_id"] for r in opened],
             "account": [r["account_id"] for r in opened], "start": [r["serial_start"] for r in opened],
             "end": [r["serial_end"] for r in opened], "state": [BlockState(r["state"]).value for r in opened],
             "pledgee": [r["pledgee_organisation_id"] for r in opened],
             "retirement": [r["retirement_id"] for r in opened],
             "transfer": [r["pending_transfer_id"] for r in opened]},
        )  # fmt: skip
        return
    if closing:
        session.execute(_CLOSE, {"ids": closing, "now": now})
    if opened:
        session.execute(_OPEN, [row | {"created_at": now} for row in opened])


def _neighbours(uow: UnitOfWork, moved: list[HoldingBlock], closing: set[int]) -> list[HoldingBlock]:
    """Return the open blocks just before and just after each moved range that could merge with it."""
    # Merging closes the neighbour: only in an account whose row this transaction holds (the source's is; a
    # receiver's is taken if free, never waited for), so no operation of the receiver loses sight of it.
    wanted = [m for m in moved if m.state in _COALESCED and try_lock_account(uow, m.account_id)]
    if not wanted:
        return []
    rows: dict[int, HoldingBlock] = {}
    # One statement for up to _NEIGHBOUR_RANGES moved ranges (a delivery often moves pieces of several escrowed
    # blocks); a move of many pieces (a whole account) reads them in chunks, so no statement grows unbounded.
    for first in range(0, len(wanted), _NEIGHBOUR_RANGES):
        chunk = wanted[first : first + _NEIGHBOUR_RANGES]
        params: dict[str, Any] = {}
        for i, m in enumerate(chunk):
            params |= {f"batch_{i}": m.batch_id, f"start_{i}": m.serial_start, f"after_{i}": m.serial_end + 1,
                       f"account_{i}": m.account_id}  # fmt: skip
        rows.update((b.id, b) for b in uow.session.scalars(_neighbours_statement(len(chunk)), params))
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


def tradable_t(session: Session, account: Account, batch_ids: list[int]) -> int:
    """Return the tonnes of ``batch_ids`` in ``account`` that are tradable now (open blocks)."""
    total = session.scalar(
        select(func.coalesce(func.sum(HoldingBlock.serial_end - HoldingBlock.serial_start + 1), 0)).where(
            HoldingBlock.account_id == account.id, HoldingBlock.state == BlockState.TRADABLE,
            HoldingBlock.closed_at.is_(None), HoldingBlock.batch_id.in_(batch_ids),
        )
    )  # fmt: skip
    return int(total or 0)


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
