"""The registry ledger on PostgreSQL: pages of blocks read by key while tonnes arrive (ADR 022).

An operation that needs more blocks than a page reads page after page. Tonnes that another transaction
commits into the account meanwhile (a transfer in: the receiver's row is busy, so they are not merged but
inserted as a block of their own) may sort before the page already read. With ``OFFSET`` paging the next
page then started one block early and handed out a block twice; by key, it starts after the last one read.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

import carbon.ledger.holdings as ledger
from api.seed import seed_demo
from carbon.ledger import (
    BlockState,
    CreditClass,
    IssueBatch,
    RetireUnits,
    issue_batch,
    ledger_violations,
    open_blocks,
    retire_units,
    transfer,
)
from core.auth import Organisation, OrgKind, Principal, User, principal_of
from core.clock import FixedClock
from core.db import make_engine, make_session_factory
from tests.conftest import SAMPLES, fresh_postgres_database

pytestmark = pytest.mark.postgres
NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def factory() -> Iterator[sessionmaker[Session]]:
    with fresh_postgres_database("_ledger_pages") as url:
        engine = make_engine(url)
        session_factory = make_session_factory(engine)
        with session_factory() as session:
            seed_demo(session, SAMPLES, clock=FixedClock(NOW))
        yield session_factory
        engine.dispose()


def test_a_block_arriving_between_two_pages_is_not_taken_twice(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FixedClock(NOW)
    with factory() as session:
        who: dict[OrgKind, Principal] = {
            u.organisation.kind: principal_of(u, "test") for u in session.scalars(select(User))
        }
        registry, bureau = who[OrgKind.REGISTRY], who[OrgKind.FORESTRY_BUREAU]
        batches = {
            source: issue_batch(session, IssueBatch(1, source, CreditClass.FORESTRY_CARBON_TICKET, vintage, 100, 0),
                                actor=registry, clock=clock).id
            for source, vintage in (("pages:2024", 2024), ("pages:a", 2025), ("pages:b", 2025), ("pages:c", 2025))
        }  # fmt: skip
        owner = Organisation(name="Paging owner", kind=OrgKind.FOREST_OWNER, province_code="64", created_at=NOW)
        session.add(owner)
        session.commit()
        owner_id = owner.id
        owner_user = User(organisation_id=owner_id, username="pages-owner", display_name="pages", password_hash="x",
                          created_at=NOW)  # fmt: skip
        session.add(owner_user)
        session.commit()
        for source in ("pages:a", "pages:b", "pages:c"):  # three blocks, one per batch (never adjacent)
            transfer(session, from_organisation_id=bureau.organisation_id, to_organisation_id=owner_id, quantity_t=10,
                     actor=bureau, clock=clock, batch_ids=[batches[source]])  # fmt: skip
        holder = principal_of(session.get(User, owner_user.id), "test")  # type: ignore[arg-type]

    original = ledger._open_blocks
    pages: list[int] = []

    def open_blocks_then_an_older_vintage_arrives(*args: Any, **kwargs: Any) -> list[Any]:
        page = original(*args, **kwargs)
        pages.append(len(page))
        if len(pages) == 1:  # between the first and the second page, another transaction sends older tonnes
            with factory() as other:
                transfer(other, from_organisation_id=bureau.organisation_id, to_organisation_id=owner_id,
                         quantity_t=10, actor=bureau, clock=clock, batch_ids=[batches["pages:2024"]])  # fmt: skip
        return page

    monkeypatch.setattr(ledger, "BLOCK_PAGE", 2)
    monkeypatch.setattr(ledger, "_open_blocks", open_blocks_then_an_older_vintage_arrives)
    with factory() as session:
        retirement = retire_units(session, RetireUnits(30, "Paging Ltd", "pages", 2026), actor=holder, clock=clock)
        assert retirement.quantity_t == 30 and pages[:2] == [2, 1]
    monkeypatch.undo()

    with factory() as session:
        held: dict[BlockState, set[int]] = {}
        for block in open_blocks(session, owner_id):
            held.setdefault(block.state, set()).add(block.batch_id)
        # The three 2025 blocks are retired, each once; the 2024 tonnes that arrived meanwhile are tradable.
        assert held == {BlockState.RETIRED: {batches[s] for s in ("pages:a", "pages:b", "pages:c")},
                        BlockState.TRADABLE: {batches["pages:2024"]}}  # fmt: skip
        assert ledger_violations(session) == []


def test_the_close_and_open_statement_names_every_column_of_a_block() -> None:
    # The one-statement close and open (ADR 035, 2026-12-08) lists the columns by hand: all but the id and
    # closed_at, i.e. the block's key, its range and created_at.
    statement = str(ledger._CLOSE_AND_OPEN)
    listed = statement.split("INSERT INTO holding_block (", 1)[1].split(")", 1)[0]
    columns = {c.name for c in ledger.HoldingBlock.__table__.columns} - {"id", "closed_at"}
    assert {c.strip() for c in listed.split(",")} == columns == set(ledger._BLOCK_KEY) | {
        "serial_start", "serial_end", "created_at"
    }  # fmt: skip


def test_a_move_of_several_pieces_merges_each_with_its_neighbour_in_one_read(
    factory: sessionmaker[Session],
) -> None:
    # Three batches of 20 t; the owner receives serials 1-10 of each, then one transfer of 30 t takes 11-20 of
    # each (three pieces): every piece lands next to the owner's block of its batch and merges with it. The
    # neighbours of the three pieces are read with one statement, the closes and opens written with one.
    clock = FixedClock(NOW)
    with factory() as session:
        who = {u.organisation.kind: principal_of(u, "test") for u in session.scalars(select(User))}
        registry, bureau = who[OrgKind.REGISTRY], who[OrgKind.FORESTRY_BUREAU]
        batches = [
            issue_batch(session, IssueBatch(1, f"moves:{n}", CreditClass.FORESTRY_CARBON_TICKET, 2019, 20, 0),
                        actor=registry, clock=clock).id
            for n in range(3)
        ]  # fmt: skip
        owner = Organisation(name="Moves owner", kind=OrgKind.FOREST_OWNER, province_code="64", created_at=NOW)
        session.add(owner)
        session.commit()
        owner_id = owner.id
        for batch in batches:
            transfer(session, from_organisation_id=bureau.organisation_id, to_organisation_id=owner_id, quantity_t=10,
                     actor=bureau, clock=clock, batch_ids=[batch])  # fmt: skip
        statements: list[str] = []
        engine = session.get_bind()
        record = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", record)
        try:
            transfer(session, from_organisation_id=bureau.organisation_id, to_organisation_id=owner_id, quantity_t=30,
                     actor=bureau, clock=clock, batch_ids=batches)  # fmt: skip
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert sum("SKIP LOCKED" in s and "holding_block" in s for s in statements) == 1
        assert sum(s.startswith("WITH closed AS") for s in statements) == 1
        held = sorted((b.batch_id, b.serial_start, b.serial_end, b.state) for b in open_blocks(session, owner_id))
        assert held == [(batch, 1, 20, BlockState.TRADABLE) for batch in batches]
        assert ledger_violations(session) == []
