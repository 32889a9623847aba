"""The registry's whole flow on the demo data, over the API, with separation of duties.

Haicang bureau's report (seeded, submitted) → verifier verifies → registry issues → bureau transfers to the
Fujian enterprise → enterprise retires 100 t → the certificate PDF verifies publicly.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.ledger import ledger_violations
from carbon.ledger.invariants import check_invariants
from carbon.workflow import StepRequest, project_step
from core.auth import Organisation, OrgKind, Principal, User
from core.clock import FixedClock
from core.errors import PermissionDenied

Login = Callable[[str], dict[str, str]]
PROJECT = {
    "name": "P",
    "scheme": "forestry_carbon_ticket",
    "province_code": "64",
    "crediting_start": "2026-01-01",
    "crediting_end": "2046-01-01",
}


def haicang_report(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    reports = client.get("/api/v1/projects/1/monitoring-reports", headers=headers).json()["items"]
    return next(r for r in reports if r["methodology"]["id"] == "FJ-FORESTRY-CARBON-TICKET")


def test_the_whole_flow(client: TestClient, login: Login, session: Session) -> None:
    bureau, verifier, registry, enterprise = (
        login(r) for r in ("forestry_bureau", "verifier", "registry", "enterprise")
    )
    assert client.get("/api/v1/projects/1", headers=bureau).json()["status"] == "registered"
    report = haicang_report(client, bureau)
    evidence = [
        {
            "name": "site visit.jpg",
            "sha256": "a" * 64,
            "media_type": "image/jpeg",
            "longitude": 106.33,
            "latitude": 35.50,
        }
    ]
    verified = client.post(
        f"/api/v1/monitoring-reports/{report['id']}/verify",
        json={"comment": "Sample plots re-measured.", "evidence": evidence},
        headers=verifier,
    )
    assert verified.status_code == 200, verified.text
    issued = client.post(
        f"/api/v1/monitoring-reports/{report['id']}/issue", json={"comment": "Issued."}, headers=registry
    )
    assert issued.status_code == 200, issued.text
    assert issued.json()["status"] == "issued" and issued.json()["batch_id"]
    again = client.post(f"/api/v1/monitoring-reports/{report['id']}/issue", json={}, headers=registry)
    assert again.status_code == 409  # issued once
    holdings = client.get("/api/v1/holdings", headers=bureau).json()["totals_t"]
    assert holdings["tradable"] == report["issuable_units_t"]
    enterprise_id = session.scalars(select(Organisation.id).where(Organisation.kind == OrgKind.ENTERPRISE)).one()
    session.rollback()
    moved = client.post(
        "/api/v1/transfers", json={"to_organisation_id": enterprise_id, "quantity_t": 300}, headers=bureau
    )
    assert moved.status_code == 201, moved.text
    retirement = client.post(
        "/api/v1/retirements",
        json={
            "quantity_t": 100,
            "beneficiary": "Xiamen Haicang port",
            "purpose": "2025 offset",
            "reporting_year": 2025,
        },
        headers=enterprise,
    ).json()
    pdf = client.get(f"/public/v1/retirements/{retirement['verification_code']}/certificate.pdf")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert retirement["verification_code"] in text and retirement["serials"][0] in text
    assert client.get(f"/public/v1/retirements/{retirement['verification_code']}").json()["quantity_t"] == 100
    entry, head, proof = retirement["audit_entry"], retirement["tree_head"], retirement["inclusion_proof"]
    assert proof["leaf_index"] == entry["seq"] - 1 and proof["tree_size"] == head["tree_size"] == entry["seq"]
    assert head["root_hash"] in text
    steps = client.get(f"/api/v1/monitoring-reports/{report['id']}/workflow", headers=bureau).json()["items"]
    assert [s["step"] for s in steps] == ["verify", "issue"] and steps[0]["evidence"][0]["latitude"] == 35.5
    assert ledger_violations(session) == [] and check_invariants([], []) == []
    session.rollback()  # end the read: SQLite writers wait for it
    audit = client.get("/api/v1/audit/verify", headers=login("auditor")).json()
    assert audit["ok"] is True


def test_separation_of_duties(client: TestClient, login: Login, session: Session, clock: FixedClock) -> None:
    bureau, verifier, registry = login("forestry_bureau"), login("verifier"), login("registry")
    report = haicang_report(client, bureau)
    # the proponent issuing (or verifying) is refused by the role rule, which the problem names
    for step in ("issue", "verify"):
        refused = client.post(f"/api/v1/monitoring-reports/{report['id']}/{step}", json={}, headers=bureau)
        assert refused.status_code == 403 and "forestry_bureau" in refused.json()["detail"]
    # out of order: issuing before verification
    assert client.post(f"/api/v1/monitoring-reports/{report['id']}/issue", json={}, headers=registry).status_code == 409
    # one person never performs two steps on the same item
    project = client.post("/api/v1/projects", json=PROJECT, headers=bureau).json()
    assert client.post(f"/api/v1/projects/{project['id']}/submit", json={}, headers=bureau).status_code == 200
    assert client.post(f"/api/v1/projects/{project['id']}/validate", json={}, headers=verifier).status_code == 200
    twice = client.post(
        f"/api/v1/projects/{project['id']}/reject", json={"comment": "second thoughts"}, headers=verifier
    )
    assert twice.status_code == 403 and "one person never performs two steps" in twice.json()["detail"]
    assert client.post(f"/api/v1/projects/{project['id']}/reject", json={}, headers=registry).status_code == 422
    rejected = client.post(
        f"/api/v1/projects/{project['id']}/reject", json={"comment": "boundary unclear"}, headers=registry
    )
    assert rejected.json()["status"] == "rejected"
    assert (
        client.post(f"/api/v1/projects/{project['id']}/submit", json={"comment": "fixed"}, headers=bureau).status_code
        == 200
    )
    # a verifier of the proponent's own organisation is refused, naming the rule
    user = session.scalars(select(User).join(Organisation).where(Organisation.kind == OrgKind.VERIFIER)).one()
    inhouse = Principal(user.id + 1000, "inhouse", project["organisation_id"], OrgKind.VERIFIER, "token")
    with pytest.raises(PermissionDenied, match="never the proponent's organisation"):
        project_step(session, project["id"], "validate", StepRequest(), actor=inhouse, clock=clock)
