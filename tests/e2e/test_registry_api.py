"""Registry over HTTP: holdings, transfer, pledge, retirement with a certificate that verifies publicly."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.ledger import CreditClass, IssueBatch, issue_batch
from core.auth import Organisation, OrgKind, User, principal_of
from core.clock import FixedClock

Login = Callable[[str], dict[str, str]]


def org_id(session: Session, kind: OrgKind) -> int:
    try:
        return session.scalars(select(Organisation.id).where(Organisation.kind == kind)).one()
    finally:
        session.rollback()


@pytest.fixture
def issued(session: Session, clock: FixedClock) -> int:
    user = session.scalars(select(User).join(Organisation).where(Organisation.kind == OrgKind.REGISTRY)).one()
    cmd = IssueBatch(1, "test:registry-api", CreditClass.FORESTRY_CARBON_TICKET, 2025, 1500, 150)
    batch_id = issue_batch(session, cmd, actor=principal_of(user, "test"), clock=clock).id
    session.rollback()
    return batch_id


def test_transfer_retire_and_verify_the_certificate(
    issued: int, client: TestClient, login: Login, session: Session
) -> None:
    bureau, enterprise = login("forestry_bureau"), login("enterprise")
    holdings = client.get("/api/v1/holdings", headers=bureau).json()
    assert holdings["totals_t"] == {"tradable": 1350}
    enterprise_id = org_id(session, OrgKind.ENTERPRISE)
    moved = client.post(
        "/api/v1/transfers", json={"to_organisation_id": enterprise_id, "quantity_t": 300}, headers=bureau
    )
    assert moved.status_code == 201, moved.text
    assert moved.json()["blocks"][0]["serial"].endswith("-000000001-000000300")
    body = {
        "quantity_t": 100,
        "beneficiary": "厦门海沧港务 Xiamen Haicang port",
        "purpose": "Offset 2025 logistics emissions",
        "reporting_year": 2025,
    }
    retired = client.post("/api/v1/retirements", json=body, headers=enterprise)
    assert retired.status_code == 201, retired.text
    facts = retired.json()
    assert facts["quantity_t"] == 100 and facts["serials"] == ["SH-FCT-64-000001-2025-000001-000000001-000000100"]
    assert facts["projects"][0]["code"] == "SH-64-000001"
    assert facts["plots"] == [] and facts["batches"][0]["monitoring_report_id"] is None  # issued from no report
    code = facts["verification_code"]
    public = client.get(f"/public/v1/retirements/{code}")  # no login
    assert public.status_code == 200 and public.json()["beneficiary"].startswith("厦门")
    pdf = client.get(f"/public/v1/retirements/{code}/certificate.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert code in text and "SH-FCT-64-000001-2025-000001-000000001-000000100" in text and "100 t CO2e" in text
    own = client.get(f"/api/v1/retirements/{facts['id']}/certificate.pdf", headers=enterprise)
    assert own.status_code == 200
    assert client.get(f"/api/v1/retirements/{facts['id']}/certificate.pdf", headers=bureau).status_code == 404
    assert client.get("/public/v1/retirements/0000000000000000").status_code == 404
    after = client.get("/api/v1/holdings", headers=enterprise).json()["totals_t"]
    assert after == {"tradable": 200, "retired": 100}
    [batch] = client.get("/public/v1/batches").json()["items"]
    assert batch["supply_t"] == {"tradable": 1400, "retired": 100} and batch["buffer_t"] == 150
    assert client.get("/public/v1/buffer").json()["totals_t"] == {"tradable": 150}
    # a fire: the registry cancels 40 t of the project's buffer-pool units, with the reason
    reversal = client.post("/api/v1/reversals", json={"project_id": 1, "quantity_t": 40, "reason": "fire, 3 ha"},
                           headers=login("registry"))  # fmt: skip
    assert reversal.status_code == 201 and reversal.json()["totals_t"] == {"cancelled": 40}
    assert client.get("/public/v1/buffer").json()["totals_t"] == {"tradable": 110, "cancelled": 40}
    too_much = client.post("/api/v1/reversals", json={"project_id": 1, "quantity_t": 50_000, "reason": "flood"},
                           headers=login("registry"))  # fmt: skip
    assert too_much.status_code == 409
    [row] = list(csv.DictReader(io.StringIO(client.get("/public/v1/batches.csv").text)))
    assert (row["tradable_t"], row["retired_t"], row["cancelled_t"], row["quantity_t"]) == ("1360", "100", "40", "1500")
    projects = client.get("/public/v1/projects").json()["features"]
    demo = next(f for f in projects if f["properties"]["code"] == "SH-64-000001")
    assert demo["properties"]["issued_t"] == 1500 and demo["properties"]["geometry"].startswith("generalised")
    assert demo["geometry"]["type"] == "Polygon"  # one site: the Haicang forest (Yongning is the demo's second project)
    yongning = next(f for f in projects if f["properties"]["code"] == "SH-64-000002")
    assert yongning["properties"]["scheme"] == "ecological_restoration" and yongning["geometry"]["type"] == "Polygon"


def test_compliance_use_checks_eligibility(issued: int, client: TestClient, login: Login) -> None:
    body = {"quantity_t": 10, "beneficiary": "x", "purpose": "y", "reporting_year": 2025, "use": "compliance:fujian"}
    refused = client.post("/api/v1/retirements", json=body, headers=login("forestry_bureau"))
    assert refused.status_code == 422 and "generated in province(s) 35" in refused.json()["detail"]
    unknown = client.post(
        "/api/v1/retirements", json={**body, "use": "compliance:mars"}, headers=login("forestry_bureau")
    )
    assert unknown.status_code == 422


def test_pledge_release_and_enforce(issued: int, client: TestClient, login: Login, session: Session) -> None:
    bureau, bank = login("forestry_bureau"), login("bank")
    bank_id, bureau_id = org_id(session, OrgKind.BANK), org_id(session, OrgKind.FORESTRY_BUREAU)
    pledged = client.post("/api/v1/pledges", json={"quantity_t": 500, "bank_organisation_id": bank_id}, headers=bureau)
    assert pledged.status_code == 201 and pledged.json()["totals_t"] == {"pledged": 500}
    too_much = client.post("/api/v1/transfers", json={"to_organisation_id": bank_id, "quantity_t": 900}, headers=bureau)
    assert too_much.status_code == 409 and too_much.json()["type"].endswith("carbon/insufficient-units")
    released = client.post(
        "/api/v1/pledges/release", json={"quantity_t": 200, "holder_organisation_id": bureau_id}, headers=bank
    )
    assert released.status_code == 201
    enforced = client.post(
        "/api/v1/pledges/enforce", json={"quantity_t": 300, "holder_organisation_id": bureau_id}, headers=bank
    )
    assert enforced.status_code == 201
    assert client.get("/api/v1/holdings", headers=bank).json()["totals_t"] == {"tradable": 300}
    assert client.get("/api/v1/holdings", headers=bureau).json()["totals_t"] == {"tradable": 1050}
    fractional = client.post(
        "/api/v1/transfers", json={"to_organisation_id": bank_id, "quantity_t": 1.5}, headers=bureau
    )
    assert fractional.status_code == 422


def test_a_transfer_of_a_class_that_requires_acceptance_over_http(
    client: TestClient, login: Login, session: Session, clock: FixedClock
) -> None:
    user = session.scalars(select(User).join(Organisation).where(Organisation.kind == OrgKind.REGISTRY)).one()
    issue_batch(session, IssueBatch(1, "test:cca", CreditClass.CCER_AFFORESTATION, 2025, 500, 50),
                actor=principal_of(user, "test"), clock=clock)  # fmt: skip
    session.rollback()
    bureau, enterprise, owner = login("forestry_bureau"), login("enterprise"), login("forest_owner")
    enterprise_id = org_id(session, OrgKind.ENTERPRISE)
    offered = client.post("/api/v1/transfers", json={"to_organisation_id": enterprise_id, "quantity_t": 120},
                          headers=bureau)  # fmt: skip
    assert offered.status_code == 201, offered.text
    offer = offered.json()["pending_transfer"]
    assert offer["status"] == "pending" and offered.json()["totals_t"] == {"pending": 120}
    assert client.get("/api/v1/holdings", headers=bureau).json()["totals_t"] == {"tradable": 330, "pending": 120}
    incoming = client.get("/api/v1/transfers/pending", headers=enterprise).json()
    assert [o["id"] for o in incoming["incoming"]] == [offer["id"]] and incoming["outgoing"] == []
    assert client.get("/api/v1/transfers/pending", headers=bureau).json()["outgoing"][0]["quantity_t"] == 120
    stranger = client.post(f"/api/v1/transfers/{offer['id']}/accept", json={}, headers=owner)
    assert stranger.status_code == 404
    accepted = client.post(f"/api/v1/transfers/{offer['id']}/accept", json={}, headers=enterprise)
    assert accepted.status_code == 200 and accepted.json()["pending_transfer"]["status"] == "accepted"
    assert client.get("/api/v1/holdings", headers=enterprise).json()["totals_t"] == {"tradable": 120}
    again = client.post(f"/api/v1/transfers/{offer['id']}/reject", json={"reason": "late"}, headers=enterprise)
    assert again.status_code == 409
    second = client.post("/api/v1/transfers", json={"to_organisation_id": enterprise_id, "quantity_t": 30},
                         headers=bureau).json()["pending_transfer"]  # fmt: skip
    rejected = client.post(f"/api/v1/transfers/{second['id']}/reject", json={"reason": "no"}, headers=enterprise)
    assert rejected.status_code == 200 and rejected.json()["totals_t"] == {"tradable": 30}
    assert client.get("/api/v1/holdings", headers=bureau).json()["totals_t"] == {"tradable": 330}
    expired = client.post("/api/v1/transfers/expire", headers=login("registry"))
    assert expired.status_code == 200 and expired.json() == {"expired": []}


def test_public_retirements_are_listed_filtered_and_exported(
    issued: int, client: TestClient, login: Login, session: Session
) -> None:
    bureau = login("forestry_bureau")
    for year, beneficiary, quantity in [(2024, "Xiamen port", 10), (2025, "Fuzhou metro", 20), (2025, "Xiamen air", 5),
                                        (2025, "=HYPERLINK(evil)", 1)]:  # fmt: skip
        body = {"quantity_t": quantity, "beneficiary": beneficiary, "purpose": "offset", "reporting_year": year}
        assert client.post("/api/v1/retirements", json=body, headers=bureau).status_code == 201
    everything = client.get("/public/v1/retirements")  # no login
    assert everything.status_code == 200 and len(everything.json()["items"]) == 4 and everything.json()["next"] is None
    newest = everything.json()["items"][0]
    assert newest["projects"] == ["SH-64-000001"] and newest["credit_classes"] == ["FCT"]
    assert newest["serials"] == ["SH-FCT-64-000001-2025-000001-000000036-000000036"]
    xiamen = client.get("/public/v1/retirements", params={"beneficiary": "xiamen"}).json()
    assert [r["beneficiary"] for r in xiamen["items"]] == ["Xiamen air", "Xiamen port"]
    y2025 = client.get("/public/v1/retirements", params={"year": 2025, "limit": 2}).json()
    assert [r["beneficiary"] for r in y2025["items"]] == ["=HYPERLINK(evil)", "Xiamen air"]
    assert y2025["next"] == "/public/v1/retirements?year=2025&limit=2&offset=2"
    last = client.get(y2025["next"]).json()
    assert [r["beneficiary"] for r in last["items"]] == ["Fuzhou metro"] and last["next"] is None
    assert (
        len(client.get("/public/v1/retirements", params={"class": "FCT", "project": "SH-64-000001"}).json()["items"])
        == 4
    )
    assert client.get("/public/v1/retirements", params={"class": "OFS"}).json()["items"] == []
    assert client.get("/public/v1/retirements", params={"project": "SH-99-000009"}).json()["items"] == []
    assert client.get("/public/v1/retirements", params={"class": "XYZ"}).status_code == 422
    assert client.get("/public/v1/retirements", params={"limit": 0}).status_code == 422
    exported = client.get("/public/v1/retirements.csv", params={"year": 2025})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["beneficiary"] for r in rows] == ["'=HYPERLINK(evil)", "Xiamen air", "Fuzhou metro"]
    assert rows[2]["quantity_t"] == "20" and rows[2]["serials"].endswith("-000000011-000000030")
