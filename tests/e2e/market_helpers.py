"""Helpers of the market-data tests: a listed instrument with issued tonnes and cash, orders over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.ledger import CreditClass, IssueBatch, issue_batch
from core.auth import OrgKind, User, principal_of
from core.clock import Clock
from trading.order_entry import PlaceOrderRequest, place_order

Login = Callable[[str], dict[str, str]]


def user_of(session: Session, kind: OrgKind) -> User:
    return next(u for u in session.scalars(select(User)) if u.organisation.kind is kind)


def issue(session: Session, clock: Clock, project_id: int, source: str, credit_class: CreditClass,
          quantity_t: int, vintage: int = 2025) -> None:  # fmt: skip
    registry = user_of(session, OrgKind.REGISTRY)
    issue_batch(session, IssueBatch(project_id, source, credit_class, vintage, quantity_t, 0),
                actor=principal_of(registry, "test"), clock=clock)  # fmt: skip
    session.rollback()


def list_instrument(client: TestClient, login: Login, instrument_id: str, credit_class: str, price: str,
                    **extra: Any) -> None:  # fmt: skip
    body = {"instrument_id": instrument_id, "credit_class": credit_class, "vintage_year": 2025,
            "reference_price_cny": price, "always_open": True, **extra}  # fmt: skip
    response = client.post("/api/v1/instruments", json=body, headers=login("operator"))
    assert response.status_code == 201, response.text


def deposit(client: TestClient, login: Login, session: Session, kind: OrgKind, amount_fen: int) -> None:
    organisation_id = user_of(session, kind).organisation_id
    session.rollback()
    body = {"organisation_id": organisation_id, "amount_fen": amount_fen, "reference": f"BANK-{kind.value}"}
    response = client.post("/api/v1/cash/deposits", json=body, headers=login("operator"))
    assert response.status_code == 201, response.text


def order(client: TestClient, login: Login, who: str, instrument_id: str, side: str, price: str,
          quantity_t: int, **extra: Any) -> dict[str, Any]:  # fmt: skip
    body = {"instrument_id": instrument_id, "side": side, "price_cny": price, "quantity_t": quantity_t, **extra}
    response = client.post("/api/v1/orders", json=body, headers=login(who))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def place(session: Session, app: FastAPI, clock: Clock, kind: OrgKind, instrument_id: str, side: str, price: str,
          quantity_t: int) -> dict[str, Any]:  # fmt: skip
    """Place an order through the service (tokens carry a real-time ``iat``, so after a clock jump use this)."""
    actor = principal_of(user_of(session, kind), "test")
    result = place_order(session, PlaceOrderRequest(instrument_id, side, price, quantity_t), actor=actor,
                         clock=clock, cache=app.state.matchers)  # fmt: skip
    session.rollback()
    return result
