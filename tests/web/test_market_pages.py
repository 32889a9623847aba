"""The market screen's page routes (issue 23, ADR 042): the ticket's Idempotency-Key, CSRF, roles, refusals.

The browser journey (``tests/browser/test_market_screen.py``) shows the screens; these pin the server's side: the
same ticket submitted twice is one order (whatever the browser does with a double click), a form without its CSRF
token or from a role that does not trade changes nothing, and a refusal is the ticket with the problem's message.
"""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import FixedClock
from tests.e2e.market_setup import INSTRUMENT, list_market
from tests.web.helpers import Login, csrf_of, log_in
from trading.models import TradeOrder

KEY = re.compile(r'name="idempotency_key" value="([0-9a-f-]{36})"')


def orders(session: Session) -> int:
    session.expire_all()
    count = int(session.scalar(select(func.count()).select_from(TradeOrder)) or 0)
    session.rollback()
    return count


def ticket(client: TestClient) -> tuple[str, str]:
    page = client.get(f"/market/{INSTRUMENT}")
    assert page.status_code == 200, page.text
    match = KEY.search(page.text)
    assert match, "no Idempotency-Key on the ticket"
    return csrf_of(page.text), match.group(1)


def test_the_same_ticket_sent_twice_places_one_order(
    client: TestClient, login: Login, session: Session, clock: FixedClock
) -> None:
    list_market(client, login, session, clock, tonnes=1_000, deposits={})
    assert log_in(client, "forestry_bureau").status_code == 303
    page = client.get(f"/market/{INSTRUMENT}").text
    assert "54.00 – 66.00" in page and 'data-testid="sellable">1,000 t' in page
    token, key = ticket(client)
    form = {"csrf_token": token, "idempotency_key": key, "side": "sell", "price": "60.00", "quantity": "100"}
    first = client.post(f"/market/{INSTRUMENT}/orders", data=form)
    second = client.post(f"/market/{INSTRUMENT}/orders", data=form)
    assert first.status_code == second.status_code == 200
    placed = re.findall(r'data-testid="placed">([^<]*)<', first.text + second.text)
    assert len(placed) == 2 and placed[0] == placed[1], placed  # the second answer is the first one's
    assert orders(session) == 1
    assert KEY.search(first.text).group(1) != key  # type: ignore[union-attr]  # the next submission's own key
    mine = client.get(f"/market/{INSTRUMENT}/mine").text
    assert mine.count("data-order=") == 1 and 'data-testid="sellable">900 t' in mine


def test_a_refusal_is_the_ticket_with_the_problem_and_nothing_is_placed(
    client: TestClient, login: Login, session: Session, clock: FixedClock
) -> None:
    list_market(client, login, session, clock, tonnes=1_000, deposits={})
    log_in(client, "enterprise")
    token, key = ticket(client)
    form = {"csrf_token": token, "idempotency_key": key, "side": "buy", "price": "60.00", "quantity": "10"}
    answer = client.post(f"/market/{INSTRUMENT}/orders", data=form)
    assert answer.status_code == 200 and 'data-testid="refusal"' in answer.text, answer.text  # no cash deposited
    assert 'value="60.00"' in answer.text  # the values kept to correct
    assert orders(session) == 0


def test_no_csrf_token_or_a_role_that_does_not_trade_changes_nothing(
    client: TestClient, login: Login, session: Session, clock: FixedClock
) -> None:
    list_market(client, login, session, clock, tonnes=1_000, deposits={})
    log_in(client, "forestry_bureau")
    _, key = ticket(client)
    form = {"idempotency_key": key, "side": "sell", "price": "60.00", "quantity": "100"}
    assert client.post(f"/market/{INSTRUMENT}/orders", data=form).status_code == 403
    client.cookies.clear()
    log_in(client, "verifier")
    page = client.get(f"/market/{INSTRUMENT}")
    assert page.status_code == 200 and 'id="ticket"' not in page.text  # market data is public, the ticket is not
    form["csrf_token"] = csrf_of(page.text)
    assert client.post(f"/market/{INSTRUMENT}/orders", data=form).status_code == 403
    assert orders(session) == 0
