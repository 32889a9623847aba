"""An enterprise's journey through a Python client generated from ``/openapi.json`` (issue 17 item 4).

``openapi-python-client`` (pinned in the dev extras) generates the client from the app's live document; the
journey then runs through the generated code only — its functions, its models, its parsing of every answer:
API key → holdings → buy order → fills → retire → certificate → public verification. A problem answer comes
back parsed as the shared ``Problem`` model. The client talks to the app in-process (the test client's transport).
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.ledger import CreditClass, IssueBatch, issue_batch
from core.auth import OrgKind, User, principal_of
from core.clock import FixedClock

Login = Callable[[str], dict[str, str]]
PACKAGE = "shanhai_client"
#: Files are bytes to the client (the generator parses JSON and text answers only).
CONFIG = {
    "project_name_override": "shanhai-client",
    "package_name_override": PACKAGE,
    "content_type_overrides": dict.fromkeys(
        (
            "application/pdf",
            "application/geopackage+sqlite3",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "image/tiff",
            "image/png",
        ),
        "application/octet-stream",
    ),
}


@pytest.fixture
def generated(app: FastAPI, tmp_path: Path) -> Iterator[ModuleType]:
    """The client package generated from the app's OpenAPI document, importable for this test."""
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(app.openapi()), encoding="utf-8")
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG), encoding="utf-8")
    out = tmp_path / "client" / PACKAGE
    command = [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(document)]
    command += ["--config", str(config), "--meta", "none", "--output-path", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stdout + done.stderr, done.stdout + done.stderr  # every operation generated
    sys.path.insert(0, str(out.parent))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out.parent))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


class InProcess(httpx.BaseTransport):
    """An ``httpx`` transport that hands each request to the app through the test client (no socket)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` to the app; return its answer as an ``httpx`` response."""
        answer = self.client.request(
            request.method, str(request.url), headers=request.headers.multi_items(), content=request.read()
        )
        return httpx.Response(answer.status_code, headers=answer.headers.multi_items(), content=answer.content)


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def _call(group: str, operation: str, **kwargs: Any) -> Any:
    """Call ``operation`` of the generated client; return its parsed answer (``sync_detailed``)."""
    return _module(f"api.{group}.{operation}").sync_detailed(**kwargs)


def _market(client: TestClient, login: Login, session: Session, clock: FixedClock) -> None:
    """The bureau holds 1,000 t of FCT 2025 and sells 100 t at 60.00; the enterprise has 10,000.00 CNY."""
    registry = next(u for u in session.scalars(select(User)) if u.organisation.kind is OrgKind.REGISTRY)
    issue_batch(session, IssueBatch(1, "test:client", CreditClass.FORESTRY_CARBON_TICKET, 2025, 1000, 0),
                actor=principal_of(registry, "test"), clock=clock)  # fmt: skip
    enterprise = next(
        u.organisation_id for u in session.scalars(select(User)) if u.organisation.kind is OrgKind.ENTERPRISE
    )
    session.rollback()
    listing = {"instrument_id": "FCT-2025", "credit_class": "FCT", "vintage_year": 2025, "reference_price_cny": "60",
               "always_open": True, "buyer_fee_bp": 50}  # fmt: skip
    assert client.post("/api/v1/instruments", json=listing, headers=login("operator")).status_code == 201
    money = {"organisation_id": enterprise, "amount_fen": 1_000_000, "reference": "BANK-CLIENT-1"}
    assert client.post("/api/v1/cash/deposits", json=money, headers=login("operator")).status_code == 201
    sell = {"instrument_id": "FCT-2025", "side": "sell", "price_cny": "60.00", "quantity_t": 100}
    assert client.post("/api/v1/orders", json=sell, headers=login("forestry_bureau")).status_code == 201


def test_the_enterprise_journey_through_the_generated_client(
    generated: ModuleType, client: TestClient, login: Login, session: Session, clock: FixedClock
) -> None:
    _market(client, login, session, clock)
    models = _module("models")
    http = {"transport": InProcess(client)}
    token = login("enterprise")["Authorization"].removeprefix("Bearer ")
    signed_in = generated.AuthenticatedClient(base_url="http://testserver", token=token, httpx_args=http)

    # An API key for the machine client; from here on the journey uses only the key.
    created = _call("auth", "create_api_key", client=signed_in, body=models.ApiKeyRequest(label="erp"))
    assert created.status_code == 201 and isinstance(created.parsed, models.ApiKeyCreated)
    machine = generated.AuthenticatedClient(base_url="http://testserver", token=created.parsed.api_key, prefix="",
                                            auth_header_name="X-API-Key", httpx_args=http)  # fmt: skip

    before = _call("registry", "read_holdings", client=machine).parsed
    assert isinstance(before, models.Holdings) and before.blocks == []

    body = models.OrderRequest(instrument_id="FCT-2025", side="buy", price_cny="60.00", quantity_t=100)
    placed = _call("trading", "place_order", client=machine, body=body, idempotency_key="erp-buy-1")
    assert placed.status_code == 201, placed.content
    order = placed.parsed
    assert isinstance(order, models.OrderOut)
    assert order.status == models.OrderOutStatus.FILLED and order.side == models.Side.BUY
    assert order.fills[0].price_cny == "60.00" and order.fills[0].notional_cny == "6000.00"

    fills = _call("trading", "list_fills", client=machine).parsed
    assert isinstance(fills, models.PageFill) and [f.quantity_t for f in fills.items] == [100]
    assert fills.next_ is None
    cash = _call("trading", "read_cash", client=machine).parsed
    assert cash.available_cny == "3970.00" and cash.available_fen == 397_000  # 10,000 − 6,000 − 30 fee

    holdings = _call("registry", "read_holdings", client=machine).parsed
    assert holdings.totals_t.additional_properties == {"tradable": 100}

    retire = models.RetireRequest(quantity_t=100, beneficiary="Xiamen Haicang port", purpose="2025 offset",
                                  reporting_year=2025)  # fmt: skip
    retired = _call("registry", "create_retirement", client=machine, body=retire)
    assert retired.status_code == 201, retired.content
    certificate = retired.parsed
    assert isinstance(certificate, models.Certificate) and certificate.quantity_t == 100

    pdf = _call("registry", "read_certificate", client=machine, retirement_id=certificate.id)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    anonymous = generated.Client(base_url="http://testserver", httpx_args=http)
    public = _call("public_registry", "verify_retirement", client=anonymous, code=certificate.verification_code)
    assert isinstance(public.parsed, models.Certificate)
    assert public.parsed.verification_code == certificate.verification_code
    assert public.parsed.beneficiary == "Xiamen Haicang port" and public.parsed.serials == certificate.serials

    # A problem comes back typed: the shared Problem schema, with its stable type.
    missing = _call("public_registry", "verify_retirement", client=anonymous, code="NO-SUCH-CODE")
    assert missing.status_code == 404 and isinstance(missing.parsed, models.Problem)
    assert missing.parsed.type_ == "urn:shanhai:problem:core/not-found"
