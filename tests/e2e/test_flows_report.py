"""The cross-province flows report on the demo data, against a table computed by hand; JSON, CSV and Excel.

Demo organisations: nx-bureau (Ningxia 64, Jinfeng 640106), jy-coop (64, Jingyuan 640424), fj-enterprise
(Fujian 35, Haicang 350205). Both projects lie in Jingyuan (640424), so every origin is 64/640424.

Trades (origin: the project; destination: the buyer):

    when (Asia/Shanghai)  seller      buyer          project         class  t    price   CNY
    2026-11-25 17:30      nx-bureau   fj-enterprise  1 SH-64-000001  FCT    100  60.00   6000.00
    2026-11-25 17:30      jy-coop     fj-enterprise  3 SH-64-000003  ERS    50   45.50   2275.00
    2026-12-01 01:00      nx-bureau   fj-enterprise  1               FCT    30   61.00   1830.00
    2026-12-01 01:00      jy-coop     nx-bureau      2               ERS    20   45.00    900.00

The third and fourth trades happen on 2026-11-30 at 17:00 UTC, which is already December in Shanghai.
Ningxia → Fujian: 180 t, 10,105.00 CNY; all pairs: 200 t, 11,005.00 CNY (fees are not part of the value).

Registry (``registry`` fixture, 2026-11-25 17:30 Shanghai): nx-bureau transfers 300 t of project 1 to
fj-enterprise, and fj-enterprise retires 120 t of them: a transfer 64/640424 → 35/350205 of 300 t and a
retirement 64/640424 → 35/350205 of 120 t, both without a CNY value.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carbon.ledger import CreditClass
from carbon.models import Scheme
from carbon.projects import CreateProject, create_project
from core.auth import OrgKind, principal_of
from core.clock import FixedClock
from trading.models import Trade

from .market_helpers import Login, deposit, issue, list_instrument, order, place, user_of

NX, FJ = "宁夏回族自治区", "福建省"
JINGYUAN = {"origin_province": "64", "origin_province_name": NX, "origin_county": "640424",
            "origin_county_name": "泾源县"}  # fmt: skip
TO_HAICANG = {"destination_province": "35", "destination_province_name": FJ, "destination_county": "350205",
              "destination_county_name": "海沧区"}  # fmt: skip
TO_JINFENG = {"destination_province": "64", "destination_province_name": NX, "destination_county": "640106",
              "destination_county_name": "金凤区"}  # fmt: skip
P1 = {"project_id": 1, "project_code": "SH-64-000001"}
P2 = {"project_id": 3, "project_code": "SH-64-000003"}  # after the two demo projects
NX_FJ = {**JINGYUAN, **TO_HAICANG}
ROWS_NX_FJ = [
    {"kind": "trade", "month": "2026-11", **NX_FJ, **P1, "credit_class": "FCT", "tonnes": 100, "cny": "6000.00"},
    {"kind": "trade", "month": "2026-11", **NX_FJ, **P2, "credit_class": "ERS", "tonnes": 50, "cny": "2275.00"},
    {"kind": "trade", "month": "2026-12", **NX_FJ, **P1, "credit_class": "FCT", "tonnes": 30, "cny": "1830.00"},
]
ROW_NX_NX = {"kind": "trade", "month": "2026-12", **JINGYUAN, **TO_JINFENG, **P2, "credit_class": "ERS",
             "tonnes": 20, "cny": "900.00"}  # fmt: skip
TRANSFER = {"kind": "transfer", "month": "2026-11", **NX_FJ, **P1, "credit_class": "FCT", "tonnes": 300, "cny": None}
RETIREMENT = {"kind": "retirement", "month": "2026-11", **NX_FJ, **P1, "credit_class": "FCT", "tonnes": 120,
              "cny": None}  # fmt: skip
REPORT = "/api/v1/reports/flows"


@pytest.fixture
def trades(app: FastAPI, client: TestClient, login: Login, session: Session, clock: FixedClock) -> None:
    coop = principal_of(user_of(session, OrgKind.FOREST_OWNER), "test")
    project = create_project(
        session,
        CreateProject(name="Jingyuan restoration (test)", scheme=Scheme.ECOLOGICAL_RESTORATION, province_code="64",
                      county_code="640424", crediting_start=date(2021, 1, 1), crediting_end=date(2051, 1, 1)),
        actor=coop, clock=clock,
    )  # fmt: skip
    assert project.id == 3
    session.rollback()
    issue(session, clock, 1, "test:flows:fct", CreditClass.FORESTRY_CARBON_TICKET, 1000)
    issue(session, clock, 3, "test:flows:ers", CreditClass.ECOLOGICAL_RESTORATION, 500)
    list_instrument(client, login, "FCT-2025", "FCT", "60", buyer_fee_bp=50, seller_fee_bp=30)
    list_instrument(client, login, "ERS-2025", "ERS", "45")
    deposit(client, login, session, OrgKind.ENTERPRISE, 10_000_000)
    deposit(client, login, session, OrgKind.FORESTRY_BUREAU, 1_000_000)
    order(client, login, "nx-bureau", "FCT-2025", "sell", "60.00", 100)
    order(client, login, "fj-enterprise", "FCT-2025", "buy", "60.00", 100)
    order(client, login, "jy-coop", "ERS-2025", "sell", "45.50", 50)
    order(client, login, "fj-enterprise", "ERS-2025", "buy", "45.50", 50)
    jump = datetime(2026, 11, 30, 17, tzinfo=clock.now().tzinfo) - clock.now()
    clock.advance(jump)
    place(session, app, clock, OrgKind.FORESTRY_BUREAU, "FCT-2025", "sell", "61.00", 30)
    place(session, app, clock, OrgKind.ENTERPRISE, "FCT-2025", "buy", "61.00", 30)
    place(session, app, clock, OrgKind.FOREST_OWNER, "ERS-2025", "sell", "45.00", 20)
    place(session, app, clock, OrgKind.FORESTRY_BUREAU, "ERS-2025", "buy", "45.00", 20)
    clock.advance(-jump)  # back: tokens carry a real-time "issued at" that must not lie in the future
    assert session.scalar(select(func.count()).select_from(Trade)) == 4
    session.rollback()


def report(client: TestClient, login: Login, **params: Any) -> dict[str, Any]:
    response = client.get(REPORT, params=params, headers=login("auditor"))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture
def registry(trades: None, client: TestClient, login: Login, session: Session) -> None:
    """nx-bureau transfers 300 t of project 1 to fj-enterprise, which retires 120 t (after its trades)."""
    enterprise = user_of(session, OrgKind.ENTERPRISE).organisation_id
    session.rollback()
    body = {"to_organisation_id": enterprise, "quantity_t": 300}
    response = client.post("/api/v1/transfers", json=body, headers=login("nx-bureau"))
    assert response.status_code == 201, response.text
    if (offer := response.json()["pending_transfer"]) is not None:  # the class may require acceptance
        accepted = client.post(f"/api/v1/transfers/{offer['id']}/accept", headers=login("fj-enterprise"))
        assert accepted.status_code == 200, accepted.text
    retire = {"quantity_t": 120, "beneficiary": "Xiamen Haicang port logistics", "purpose": "2026 offsetting",
              "reporting_year": 2026}  # fmt: skip
    response = client.post("/api/v1/retirements", json=retire, headers=login("fj-enterprise"))
    assert response.status_code == 201, response.text


def test_ningxia_to_fujian_matches_the_hand_computed_table(trades: None, client: TestClient, login: Login) -> None:
    flows = report(client, login, origin_province="64", destination_province="35")
    assert flows["rows"] == ROWS_NX_FJ
    assert flows["total"] == {"tonnes": 180, "cny": "10105.00"}
    assert flows["totals"]["month"] == [
        {"month": "2026-11", "tonnes": 150, "cny": "8275.00"},
        {"month": "2026-12", "tonnes": 30, "cny": "1830.00"},
    ]
    assert flows["totals"]["project"] == [
        {**P1, "tonnes": 130, "cny": "7830.00"},
        {**P2, "tonnes": 50, "cny": "2275.00"},
    ]
    assert flows["totals"]["county_pair"] == [
        {"origin_county": "640424", "destination_county": "350205", "tonnes": 180, "cny": "10105.00"}
    ]
    assert flows["totals"]["credit_class"] == [
        {"credit_class": "ERS", "tonnes": 50, "cny": "2275.00"},
        {"credit_class": "FCT", "tonnes": 130, "cny": "7830.00"},
    ]
    assert flows["totals"]["pair"] == [{"origin_province": "64", "destination_province": "35", "tonnes": 180,
                                        "cny": "10105.00"}]  # fmt: skip
    assert flows["totals"]["kind"] == [{"kind": "trade", "tonnes": 180, "cny": "10105.00"}]
    assert flows["currency"] == "CNY" and flows["timezone"] == "Asia/Shanghai"


def test_transfers_and_retirements_count_beside_trades(registry: None, client: TestClient, login: Login) -> None:
    flows = report(client, login, origin_province="64", destination_province="35")
    assert flows["rows"] == [*ROWS_NX_FJ, TRANSFER, RETIREMENT]
    assert flows["totals"]["kind"] == [
        {"kind": "retirement", "tonnes": 120, "cny": None},
        {"kind": "trade", "tonnes": 180, "cny": "10105.00"},
        {"kind": "transfer", "tonnes": 300, "cny": None},
    ]
    assert flows["totals"]["county_pair"] == [
        {"origin_county": "640424", "destination_county": "350205", "tonnes": 600, "cny": "10105.00"}
    ]
    assert flows["total"] == {"tonnes": 600, "cny": "10105.00"}
    assert report(client, login, kind="transfer")["rows"] == [TRANSFER]
    assert report(client, login, kind="retirement", destination_province="35")["rows"] == [RETIREMENT]
    assert report(client, login, kind="trade")["rows"] == [*ROWS_NX_FJ, ROW_NX_NX]
    assert report(client, login, destination_province="64")["rows"] == [ROW_NX_NX]  # no transfer to Ningxia
    # The older parameter names still select the same pair.
    assert report(client, login, seller_province="64", buyer_province="35")["rows"] == flows["rows"]


def test_exchange_deliveries_are_not_counted_again_as_transfers(
    registry: None, client: TestClient, login: Login
) -> None:
    flows = report(client, login)
    by_kind = {t["kind"]: t["tonnes"] for t in flows["totals"]["kind"]}
    assert by_kind == {"trade": 200, "transfer": 300, "retirement": 120}


def test_any_pair_and_date_window(trades: None, client: TestClient, login: Login) -> None:
    every = report(client, login)
    assert every["rows"] == [*ROWS_NX_FJ, ROW_NX_NX]
    assert every["total"] == {"tonnes": 200, "cny": "11005.00"}
    december = report(client, login, start="2026-12-01", end="2026-12-31")
    assert december["rows"] == [ROWS_NX_FJ[2], ROW_NX_NX]
    assert report(client, login, origin_province="35")["rows"] == []
    assert report(client, login, origin_province="35")["total"] == {"tonnes": 0, "cny": None}


def test_csv_and_excel_carry_the_same_table(registry: None, client: TestClient, login: Login) -> None:
    params = {"origin_province": "64", "destination_province": "35"}
    expected = [*ROWS_NX_FJ, TRANSFER, RETIREMENT]
    response = client.get(f"{REPORT}.csv", params=params, headers=login("fj-enterprise"))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    as_text = [{k: "" if v is None else str(v) for k, v in row.items()} for row in expected]
    assert rows == as_text

    response = client.get(f"{REPORT}.xlsx", params=params, headers=login("nx-bureau"))
    assert response.status_code == 200
    workbook = load_workbook(io.BytesIO(response.content), read_only=True)
    assert workbook.sheetnames == ["flows", "by kind", "by pair", "by county_pair", "by kind_pair", "by month",
                                   "by project", "by credit_class", "total"]  # fmt: skip
    sheet = list(workbook["flows"].iter_rows(values_only=True))
    header, body = sheet[0], sheet[1:]
    read_back = [dict(zip(header, row, strict=True)) for row in body]
    for row in read_back:
        row["cny"] = None if row["cny"] is None else f"{row['cny']:.2f}"  # a number in Excel, #,##0.00
    assert read_back == expected
    kinds = list(workbook["by kind"].iter_rows(values_only=True))
    assert kinds == [("kind", "tonnes", "cny"), ("retirement", 120, None), ("trade", 180, 10105),
                     ("transfer", 300, None)]  # fmt: skip
    assert list(workbook["total"].iter_rows(values_only=True)) == [("tonnes", "cny"), (600, 10105)]
    workbook.close()


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"origin_province": "99"}, 422),
        ({"destination_province": "6"}, 422),
        ({"kind": "gift"}, 422),
        ({"seller_province": "64", "origin_province": "35"}, 422),
        ({"start": "2026-12-02", "end": "2026-12-01"}, 422),
        ({"start": "December"}, 422),
    ],
)
@pytest.mark.parametrize("suffix", ["", ".csv", ".xlsx"])
def test_bad_queries_are_problems(
    client: TestClient, login: Login, params: dict[str, str], status: int, suffix: str
) -> None:
    response = client.get(f"{REPORT}{suffix}", params=params, headers=login("auditor"))
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")


def test_an_empty_market_reports_zero(client: TestClient, login: Login) -> None:
    flows = report(client, login, origin_province="64", destination_province="35")
    assert flows["rows"] == [] and flows["total"] == {"tonnes": 0, "cny": None}
    assert all(totals == [] for totals in flows["totals"].values())
