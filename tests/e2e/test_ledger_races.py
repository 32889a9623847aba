"""Concurrent operations on one holding, through two real API processes on PostgreSQL (issue 15 item 1).

Twenty HTTP clients at once each ask for 10 t of a holding of exactly 100 t, half through each of two uvicorn
processes: exactly ten succeed and ten get a clean ``409`` — for retirements, transfers, pledges and the
exchange's sell escrow (sell orders; auction announcements racing retirements). And twenty 5 t operations of
every kind at once, which all fit, all succeed. Before the account row was locked first (ADR 022), a waiter
re-checked the block it had waited for, found it closed, never saw the remainder the winner had opened, and
was refused while tonnes remained (1–3 of 20 retirements, transfers or pledges went through; 5 of the 20
operations that fit). The ledger's invariants and the audit chain hold afterwards.

A second test pins the other half of the rule: operations on *different* accounts never wait on each other —
one account's row and blocks are held locked by an open transaction while another account retires,
transfers (also *into* the locked account) and pledges, each under a short ``lock_timeout``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from api.seed import seed_demo
from carbon.ledger import (
    Account,
    Batch,
    BlockState,
    CreditClass,
    HoldingBlock,
    IssueBatch,
    RetireUnits,
    change_state,
    issue_batch,
    ledger_violations,
    open_blocks,
    retire_units,
    transfer,
)
from core.audit import verify_chain
from core.auth import Organisation, OrgKind, User, hash_password, principal_of
from core.clock import SystemClock
from core.db import make_engine, make_session_factory
from tests.conftest import (
    REPO,
    SAMPLES,
    TEST_SECRET,
    fresh_postgres_database,
    start_uvicorn,
    stop_uvicorn,
    wait_healthy,
)
from trading.cash import cash_violations
from trading.listing import CreateInstrument, create_instrument

pytestmark = pytest.mark.postgres

CLIENTS = 20
EACH_T = 10
HOLDING_T = 100
WAIT_S = 60.0


@pytest.fixture(scope="module")
def race_url() -> Iterator[str]:
    with fresh_postgres_database("_races") as url:
        engine = make_engine(url)
        with make_session_factory(engine)() as session:
            seed_demo(session, SAMPLES, clock=SystemClock())
        engine.dispose()
        yield url


@pytest.fixture(scope="module")
def servers(race_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Two uvicorn processes of the app on the same PostgreSQL database; their base URLs."""
    data_dir = tmp_path_factory.mktemp("races")
    started = [start_uvicorn(race_url, data_dir, f"api-{i}") for i in range(2)]
    try:
        for process, base, log_path in started:
            wait_healthy(process, base, log_path)
        yield [base for _, base, _ in started]
    finally:
        for process, _, _ in started:
            stop_uvicorn(process)


@pytest.fixture
def db(race_url: str) -> Iterator[Session]:
    engine = make_engine(race_url)
    with make_session_factory(engine)() as session:
        yield session
    engine.dispose()


def _principal(session: Session, kind: OrgKind) -> Any:
    user = session.scalars(select(User).join(User.organisation).where(Organisation.kind == kind)
                           .order_by(User.id)).first()  # fmt: skip
    assert user is not None
    return principal_of(user, "test")


def _holder_with_100_t(session: Session, name: str, vintage_year: int = 2025) -> tuple[int, str, str]:
    """A new forest owner holding exactly 100 t of a new batch; its (organisation id, username, password)."""
    clock = SystemClock()
    registry, bureau = _principal(session, OrgKind.REGISTRY), _principal(session, OrgKind.FORESTRY_BUREAU)
    batch = issue_batch(session, IssueBatch(1, f"race:{name}", CreditClass.FORESTRY_CARBON_TICKET, vintage_year,
                                            HOLDING_T, 0), actor=registry, clock=clock)  # fmt: skip
    now = datetime.now(UTC)
    org = Organisation(name=f"Race holder {name}", kind=OrgKind.FOREST_OWNER, province_code="64", created_at=now)
    username, password = f"race-{name}", f"pw-race-{name}"
    session.add_all([org, User(organisation=org, username=username, display_name=username,
                               password_hash=hash_password(password), created_at=now)])  # fmt: skip
    session.commit()
    transfer(session, from_organisation_id=bureau.organisation_id, to_organisation_id=org.id, quantity_t=HOLDING_T,
             actor=bureau, clock=clock, batch_ids=[batch.id])  # fmt: skip
    assert _tonnes(session, org.id) == {BlockState.TRADABLE: HOLDING_T}
    return org.id, username, password


def _tonnes(session: Session, organisation_id: int) -> dict[BlockState, int]:
    session.expire_all()
    totals: dict[BlockState, int] = {}
    for block in open_blocks(session, organisation_id):
        totals[block.state] = totals.get(block.state, 0) + block.quantity
    session.rollback()
    return totals


def _token(base: str, username: str, password: str) -> dict[str, str]:
    response = httpx.post(f"{base}/api/v1/auth/token", data={"username": username, "password": password}, timeout=30)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _race(servers: list[str], username: str, password: str, requests: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """POST every (path, body) at once (one thread each, alternating between the servers); the responses."""
    headers = [_token(base, username, password) for base in servers]
    start = threading.Barrier(len(requests))
    results: list[Any] = [None] * len(requests)

    def run(index: int) -> None:
        server = index % len(servers)
        with httpx.Client(base_url=servers[server], headers=headers[server], timeout=WAIT_S) as client:
            start.wait(timeout=WAIT_S)
            try:
                results[index] = client.post(requests[index][0], json=requests[index][1])
            except Exception as error:  # reported below, never lost in the thread
                results[index] = error

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT_S + 10)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    return results


def _assert_ten_of_twenty(results: list[Any], success: int) -> None:
    codes = [r.status_code if isinstance(r, httpx.Response) else repr(r) for r in results]
    details = [r.json().get("detail") for r in results if isinstance(r, httpx.Response) and r.status_code != success]
    assert codes.count(success) == CLIENTS // 2 and codes.count(409) == CLIENTS // 2, (sorted(map(str, codes)), details)
    for refused in (r for r in results if r.status_code == 409):
        assert refused.headers["content-type"].startswith("application/problem+json"), refused.text
        assert refused.json()["type"].endswith("carbon/insufficient-units"), refused.text


def _assert_whole(session: Session) -> None:
    session.expire_all()
    assert ledger_violations(session) == []
    assert cash_violations(session) == []
    assert verify_chain(session).ok
    session.rollback()


def test_twenty_parallel_retirements_of_a_100_t_holding_retire_exactly_100_t(servers: list[str], db: Session) -> None:
    holder, username, password = _holder_with_100_t(db, "retire")
    body = {"quantity_t": EACH_T, "beneficiary": "Race Ltd", "purpose": "race test", "reporting_year": 2026}
    results = _race(servers, username, password, [("/api/v1/retirements", body)] * CLIENTS)
    _assert_ten_of_twenty(results, 201)
    assert _tonnes(db, holder) == {BlockState.RETIRED: HOLDING_T}
    _assert_whole(db)


def test_twenty_parallel_transfers_of_a_100_t_holding_move_exactly_100_t(servers: list[str], db: Session) -> None:
    holder, username, password = _holder_with_100_t(db, "transfer")
    enterprise = _principal(db, OrgKind.ENTERPRISE).organisation_id
    before = _tonnes(db, enterprise).get(BlockState.TRADABLE, 0)
    body = {"to_organisation_id": enterprise, "quantity_t": EACH_T}
    results = _race(servers, username, password, [("/api/v1/transfers", body)] * CLIENTS)
    _assert_ten_of_twenty(results, 201)
    assert _tonnes(db, holder) == {}
    assert _tonnes(db, enterprise).get(BlockState.TRADABLE, 0) == before + HOLDING_T
    _assert_whole(db)


def test_twenty_parallel_pledges_of_a_100_t_holding_pledge_exactly_100_t(servers: list[str], db: Session) -> None:
    holder, username, password = _holder_with_100_t(db, "pledge")
    bank = _principal(db, OrgKind.BANK).organisation_id
    body = {"quantity_t": EACH_T, "bank_organisation_id": bank}
    results = _race(servers, username, password, [("/api/v1/pledges", body)] * CLIENTS)
    _assert_ten_of_twenty(results, 201)
    assert _tonnes(db, holder) == {BlockState.PLEDGED: HOLDING_T}
    _assert_whole(db)


def test_twenty_parallel_sell_orders_of_a_100_t_holding_escrow_exactly_100_t(servers: list[str], db: Session) -> None:
    """Sell orders on two instruments that deliver the same batch (any province, and its own province)."""
    holder, username, password = _holder_with_100_t(db, "escrow", vintage_year=2023)
    operator, clock = _principal(db, OrgKind.OPERATOR), SystemClock()
    province = db.scalars(select(Batch.province_code).where(Batch.source == "race:escrow")).one()
    for instrument_id, province_code in (("FCT-2023", None), (f"FCT-2023-{province}", province)):
        listing = CreateInstrument(instrument_id, "FCT", 2023, "60", province_code=province_code,
                                            always_open=True)  # fmt: skip
        create_instrument(db, listing, actor=operator, clock=clock)
    instruments = ["FCT-2023", f"FCT-2023-{province}"]
    bodies = [{"instrument_id": instruments[(i // 2) % 2], "side": "sell", "price_cny": "60.00", "quantity_t": EACH_T}
              for i in range(CLIENTS)]  # fmt: skip
    results = _race(servers, username, password, [("/api/v1/orders", body) for body in bodies])
    _assert_ten_of_twenty(results, 201)
    assert _tonnes(db, holder) == {BlockState.ESCROWED: HOLDING_T}
    _assert_whole(db)


def test_auction_escrow_racing_retirements_of_one_holding_takes_exactly_100_t(servers: list[str], db: Session) -> None:
    """Ten auction announcements (escrow under the instrument's lock, outside the order batches, so a refused
    one is not rerun) and ten retirements (no instrument lock) of one 100 t holding at once."""
    holder, username, password = _holder_with_100_t(db, "mixed", vintage_year=2022)
    listing = CreateInstrument("FCT-2022", "FCT", 2022, "60", always_open=True)
    create_instrument(db, listing, actor=_principal(db, OrgKind.OPERATOR), clock=SystemClock())
    now = datetime.now(UTC)
    auction = {"instrument_id": "FCT-2022", "quantity_t": EACH_T, "reserve_price_cny": "50.00",
               "starts_at": now.isoformat(), "ends_at": (now + timedelta(days=1)).isoformat()}  # fmt: skip
    retire = {"quantity_t": EACH_T, "beneficiary": "Race Ltd", "purpose": "race test", "reporting_year": 2026}
    requests = [("/api/v1/auctions", auction) if i % 4 < 2 else ("/api/v1/retirements", retire) for i in range(CLIENTS)]
    results = _race(servers, username, password, requests)
    _assert_ten_of_twenty(results, 201)
    announced = sum(EACH_T for (path, _), r in zip(requests, results, strict=True)
                    if path == "/api/v1/auctions" and r.status_code == 201)  # fmt: skip
    expected = {BlockState.ESCROWED: announced, BlockState.RETIRED: HOLDING_T - announced}
    assert _tonnes(db, holder) == {state: t for state, t in expected.items() if t}
    _assert_whole(db)


def test_twenty_parallel_operations_of_every_kind_that_fit_all_succeed(servers: list[str], db: Session) -> None:
    """Twenty 5 t operations on one 100 t holding, four of each kind: retirements, transfers, pledges, sell
    orders and auction announcements on two instruments that deliver the same batch (so the two instruments'
    escrows race each other too). They all fit, so all succeed, and the holding is used up exactly."""
    holder, username, password = _holder_with_100_t(db, "fit", vintage_year=2021)
    operator, clock = _principal(db, OrgKind.OPERATOR), SystemClock()
    province = db.scalars(select(Batch.province_code).where(Batch.source == "race:fit")).one()
    instruments = ["FCT-2021", f"FCT-2021-{province}"]
    for instrument_id, province_code in zip(instruments, (None, province), strict=True):
        listing = CreateInstrument(instrument_id, "FCT", 2021, "60", province_code=province_code,
                                            always_open=True)  # fmt: skip
        create_instrument(db, listing, actor=operator, clock=clock)
    enterprise = _principal(db, OrgKind.ENTERPRISE).organisation_id
    bank = _principal(db, OrgKind.BANK).organisation_id
    now = datetime.now(UTC)
    window = {"starts_at": now.isoformat(), "ends_at": (now + timedelta(days=1)).isoformat()}
    kinds = [
        (
            "/api/v1/retirements",
            {"quantity_t": 5, "beneficiary": "Race Ltd", "purpose": "race", "reporting_year": 2026},
        ),
        ("/api/v1/transfers", {"to_organisation_id": enterprise, "quantity_t": 5}),
        ("/api/v1/pledges", {"quantity_t": 5, "bank_organisation_id": bank}),
        ("/api/v1/orders", {"instrument_id": instruments[0], "side": "sell", "price_cny": "60.00", "quantity_t": 5}),
        (
            "/api/v1/auctions",
            {"instrument_id": instruments[1], "quantity_t": 5, "reserve_price_cny": "50.00", **window},
        ),
    ]
    requests = [kinds[i % len(kinds)] for i in range(CLIENTS)]
    results = _race(servers, username, password, requests)
    codes = [r.status_code if isinstance(r, httpx.Response) else repr(r) for r in results]
    details = [r.text for r in results if isinstance(r, httpx.Response) and r.status_code != 201]
    assert codes == [201] * CLIENTS, (f"{codes.count(201)} of {CLIENTS} succeeded", codes, details)
    assert _tonnes(db, holder) == {BlockState.RETIRED: 20, BlockState.PLEDGED: 20, BlockState.ESCROWED: 40}
    _assert_whole(db)


def test_the_ledger_passes_shanhai_audit_verify_after_the_races(race_url: str, tmp_path: Path) -> None:
    env = os.environ | {"SHANHAI_ENVIRONMENT": "test", "SHANHAI_DATABASE_URL": race_url,
                        "SHANHAI_SECRET_KEY": TEST_SECRET, "SHANHAI_DATA_DIR": str(tmp_path)}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "shanhai.cli", "audit", "verify"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


# Different accounts never wait on each other ---------------------------------------------------------------


def _no_wait(session: Session, action: Callable[[], object]) -> None:
    """Run ``action`` in ``session`` with a short lock timeout: any lock wait fails it."""
    session.execute(text("SET lock_timeout = '2s'"))
    started = time.monotonic()
    action()
    assert time.monotonic() - started < 2.0


def test_operations_on_another_account_never_wait_for_a_busy_account(race_url: str) -> None:
    engine = make_engine(race_url)
    factory = make_session_factory(engine)
    clock = SystemClock()
    with factory() as setup:
        busy, _, _ = _holder_with_100_t(setup, "busy")
        free, _, _ = _holder_with_100_t(setup, "free")
        owners = {u.organisation_id: principal_of(u, "test") for u in setup.scalars(
            select(User).where(User.organisation_id.in_([busy, free])))}  # fmt: skip
        enterprise = _principal(setup, OrgKind.ENTERPRISE).organisation_id
        bank = _principal(setup, OrgKind.BANK).organisation_id
    free_owner = owners[free]

    with factory() as in_flight, factory() as other:
        # An operation on the busy account in flight: it holds every lock the ledger takes, and has not committed.
        # (Its audit entry is not appended yet: the audit chain's head is every writer's last lock, ADR 015.)
        change_state(in_flight, "pledge", organisation_id=busy, quantity_t=10, pledgee_organisation_id=bank,
                     actor=owners[busy], clock=clock, commit=False, audit_events=[])  # fmt: skip
        in_flight.execute(select(HoldingBlock.id).where(HoldingBlock.closed_at.is_(None)).join(Account)
                          .where(Account.organisation_id == busy).with_for_update(of=HoldingBlock))  # fmt: skip
        try:
            _no_wait(other, lambda: retire_units(other, RetireUnits(10, "Free Ltd", "no wait", 2026),
                                                 actor=free_owner, clock=clock))  # fmt: skip
            _no_wait(other, lambda: transfer(other, from_organisation_id=free, to_organisation_id=enterprise,
                                             quantity_t=10, actor=free_owner, clock=clock))  # fmt: skip
            _no_wait(other, lambda: change_state(other, "pledge", organisation_id=free, quantity_t=10,
                                                 pledgee_organisation_id=bank, actor=free_owner,
                                                 clock=clock))  # fmt: skip
            # Into the busy account: the tonnes land there without waiting (they are not merged with its blocks).
            _no_wait(other, lambda: transfer(other, from_organisation_id=free, to_organisation_id=busy,
                                             quantity_t=10, actor=free_owner, clock=clock))  # fmt: skip
        finally:
            in_flight.rollback()
        assert _tonnes(other, free) == {BlockState.TRADABLE: 60, BlockState.PLEDGED: 10, BlockState.RETIRED: 10}
        assert _tonnes(other, busy) == {BlockState.TRADABLE: 110}
        _assert_whole(other)
    engine.dispose()
