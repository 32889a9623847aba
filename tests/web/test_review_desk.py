"""The review desk and holdings through TestClient (issue 22): the queue, the report under review, its decision
with separation of duties enforced as the API's, issuance confirmed, then transfer, acceptance, pledge, release
and retirement with its certificate.

Shared with the browser journey: :func:`yongning_report`, :func:`make_own_work`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.models import MonitoringReport, Project, ReportStatus
from core.auth import Organisation, OrgKind
from tests.web.helpers import csrf_of, log_in

Login = Callable[[str], dict[str, str]]


def yongning_report(session: Session) -> int:
    """Return the seeded NX-RESTORATION report (submitted, its project registered): the one to review."""
    report_id = session.scalars(
        select(MonitoringReport.id).where(MonitoringReport.methodology_id == "NX-RESTORATION")
    ).one()
    session.rollback()  # SQLite: the test's session holds no lock while the app writes
    return report_id


def make_own_work(session: Session, report_id: int) -> None:
    """Give the report's project to the verifier's organisation: its verifier is then the proponent."""
    report = session.get(MonitoringReport, report_id)
    assert report is not None
    verifier = session.scalars(select(Organisation.id).where(Organisation.kind == OrgKind.VERIFIER)).one()
    project = session.get(Project, report.project_id)
    assert project is not None
    project.organisation_id = verifier
    session.commit()


def status(session: Session, report_id: int) -> ReportStatus:
    found = session.scalars(select(MonitoringReport.status).where(MonitoringReport.id == report_id)).one()
    session.rollback()
    return found


def text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


def post(client: TestClient, page: str, action: str, data: dict[str, str]) -> object:
    token = csrf_of(client.get(page).text)
    return client.post(action, data={"csrf_token": token, **data}, follow_redirects=False)


def test_the_verifier_verifies_and_the_registry_issues_with_a_confirmation(
    client: TestClient, session: Session
) -> None:
    report_id = yongning_report(session)
    assert log_in(client, "verifier").status_code == 303
    queue = client.get("/review")
    assert queue.status_code == 200, queue.text
    assert f'href="/review/reports/{report_id}"' in queue.text and 'data-testid="to-verify"' in queue.text
    page = client.get(f"/review/reports/{report_id}")
    assert page.status_code == 200, page.text
    body = text(page.text)
    assert "NX-YN-KS-001" in body and 'id="verify-report"' in page.text and "0E-" not in body
    assert 'data-testid="trace"' in page.text and "issuable_units_t" in body
    tile = client.get(f"/review/reports/{report_id}/tiles/0/0/0.mvt")
    assert tile.status_code in (200, 204)
    no_reason = post(client, f"/review/reports/{report_id}", f"/review/reports/{report_id}/reject", {"comment": ""})
    assert no_reason.status_code == 422  # type: ignore[attr-defined]  # a rejection needs its reason
    assert status(session, report_id) is ReportStatus.SUBMITTED
    verified = post(client, f"/review/reports/{report_id}", f"/review/reports/{report_id}/verify", {"comment": "ok"})
    assert verified.status_code == 303, verified.text  # type: ignore[attr-defined]
    assert status(session, report_id) is ReportStatus.VERIFIED
    # the verifier may not issue: read-only, and the server refuses
    page = client.get(f"/review/reports/{report_id}")
    assert 'data-testid="read-only"' in page.text and 'id="issue-report"' not in page.text
    refused = post(client, f"/review/reports/{report_id}", f"/review/reports/{report_id}/issue", {"confirm": "yes"})
    assert refused.status_code == 403  # type: ignore[attr-defined]

    assert log_in(client, "registry").status_code == 303
    page = client.get(f"/review/reports/{report_id}")
    summary = text(page.text)
    assert 'id="confirm-issue"' in page.text and 'data-testid="read-only"' not in page.text
    assert "1,452" in summary and "1,234" in summary and "218" in summary, summary  # tonnes, to the holder, buffer
    assert "SH-ERS-64-000002-2025-000001-000000001-000001234" in summary  # the proponent's serials
    assert "SH-ERS-64-000002-2025-000001-000001235-000001452" in summary  # the buffer pool's
    unconfirmed = post(client, f"/review/reports/{report_id}", f"/review/reports/{report_id}/issue", {})
    assert unconfirmed.status_code == 422  # type: ignore[attr-defined]
    issued = post(client, f"/review/reports/{report_id}", f"/review/reports/{report_id}/issue", {"confirm": "yes"})
    assert issued.status_code == 303, issued.text  # type: ignore[attr-defined]
    assert status(session, report_id) is ReportStatus.ISSUED
    assert log_in(client, "nx-bureau").status_code == 303  # the serials confirmed are the serials issued
    assert "SH-ERS-64-000002-2025-000001-000000001-000001234" in client.get("/holdings").text


def test_a_verifier_of_the_proponents_organisation_sees_it_read_only_and_is_refused(
    client: TestClient, session: Session
) -> None:
    report_id = yongning_report(session)
    make_own_work(session, report_id)
    assert log_in(client, "verifier").status_code == 303
    queue = client.get("/review")
    assert "never the proponent" in queue.text and 'data-testid="read-only"' in queue.text
    page = client.get(f"/review/reports/{report_id}")
    assert "never the proponent" in page.text and 'id="verify-report"' not in page.text
    refused = post(client, f"/review/reports/{report_id}", f"/review/reports/{report_id}/verify", {"comment": "x"})
    assert refused.status_code == 403  # type: ignore[attr-defined]
    assert status(session, report_id) is ReportStatus.SUBMITTED


def test_holders_transfer_accept_pledge_release_and_retire(client: TestClient, session: Session, login: Login) -> None:
    report_id = yongning_report(session)
    assert client.post(f"/api/v1/monitoring-reports/{report_id}/verify", json={"comment": "ok"},
                       headers=login("verifier")).status_code == 200  # fmt: skip
    assert client.post(f"/api/v1/monitoring-reports/{report_id}/issue", json={"comment": "ok"},
                       headers=login("registry")).status_code == 200  # fmt: skip
    enterprise = session.scalars(select(Organisation.id).where(Organisation.kind == OrgKind.ENTERPRISE)).one()
    bank = session.scalars(select(Organisation.id).where(Organisation.kind == OrgKind.BANK)).one()
    bureau = session.scalars(select(Organisation.id).where(Organisation.kind == OrgKind.FORESTRY_BUREAU)).one()
    not_a_holder = session.scalars(select(Organisation.id).where(Organisation.kind == OrgKind.VERIFIER)).one()
    session.rollback()

    assert log_in(client, "nx-bureau").status_code == 303
    page = client.get("/holdings")
    assert page.status_code == 200 and "SH-64-000002" in page.text
    assert (
        post(
            client, "/holdings", "/holdings/transfer", {"to_organisation_id": str(enterprise), "quantity_t": "50"}
        ).status_code
        == 303
    )  # type: ignore[attr-defined]
    assert (
        post(
            client, "/holdings", "/holdings/pledge", {"bank_organisation_id": str(bank), "quantity_t": "10"}
        ).status_code
        == 303
    )  # type: ignore[attr-defined]
    assert "已质押" in client.get("/holdings").text  # the 10 t pledged, in the default language
    too_many = post(client, "/holdings", "/holdings/transfer",
                    {"to_organisation_id": str(enterprise), "quantity_t": str(10**9)})  # fmt: skip
    assert too_many.status_code in (409, 422)  # type: ignore[attr-defined]
    refused = post(
        client, "/holdings", "/holdings/transfer", {"to_organisation_id": str(not_a_holder), "quantity_t": "1"}
    )
    assert refused.status_code in (403, 409, 422)  # type: ignore[attr-defined]

    assert log_in(client, "fj-bank").status_code == 303
    page = client.get("/holdings")
    assert 'data-testid="pledgors"' in page.text and "/holdings/pledges/release" in page.text
    for action, tonnes in (("enforce", "4"), ("release", "6")):  # the bank takes 4 t, gives 6 t back
        data = {"holder_organisation_id": str(bureau), "quantity_t": tonnes}
        assert post(client, "/holdings", f"/holdings/pledges/{action}", data).status_code == 303  # type: ignore[attr-defined]
    page = client.get("/holdings")
    assert "SH-ERS-64-" in page.text and "可交易" in page.text  # the 4 t enforced are the bank's own now

    assert log_in(client, "fj-enterprise").status_code == 303
    page = client.get("/holdings")
    offers = re.findall(r"/holdings/transfers/(\d+)/accept", page.text)
    assert len(offers) == 1, "ERS tonnes wait for the receiver's acceptance"
    for offer in offers:
        assert post(client, "/holdings", f"/holdings/transfers/{offer}/accept", {}).status_code == 303  # type: ignore[attr-defined]
    retired = post(client, "/holdings", "/holdings/retire", {"quantity_t": "20", "beneficiary": "厦门海沧港务",
                   "purpose": "2025 offset", "use": "voluntary", "reporting_year": "2025"})  # fmt: skip
    assert retired.status_code == 303, retired.text  # type: ignore[attr-defined]
    location = retired.headers["location"]  # type: ignore[attr-defined]
    code = location.split("retired=")[1]
    page = client.get(location)
    assert f"/verify/{code}" in page.text and f"/public/v1/retirements/{code}/certificate.pdf" in page.text
    pdf = client.get(f"/public/v1/retirements/{code}/certificate.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert client.get(f"/verify/{code}").status_code == 200


def test_the_desks_refuse_the_wrong_roles(client: TestClient) -> None:
    assert log_in(client, "fj-enterprise").status_code == 303
    assert client.get("/review").status_code in (403, 404)
    assert log_in(client, "verifier").status_code == 303
    assert client.get("/holdings").status_code in (403, 404)


def test_projects_are_validated_and_registered_from_the_queue(
    client: TestClient, session: Session, login: Login
) -> None:
    body = {"name": "泾源东片碳汇林", "scheme": "forestry_carbon_ticket", "province_code": "64",
            "county_code": "640424", "crediting_start": "2021-01-01", "crediting_end": "2051-01-01"}  # fmt: skip
    project_id = client.post("/api/v1/projects", json=body, headers=login("nx-bureau")).json()["id"]
    assert client.post(f"/api/v1/projects/{project_id}/submit", json={}, headers=login("nx-bureau")).status_code == 200
    assert log_in(client, "registry").status_code == 303
    queue = client.get("/review").text
    assert f'data-testid="project-{project_id}"' in queue and "validate is done by verifier" in queue
    refused = post(client, "/review", f"/review/projects/{project_id}/validate", {})
    assert refused.status_code == 403  # type: ignore[attr-defined]
    assert log_in(client, "verifier").status_code == 303
    assert f'action="/review/projects/{project_id}/validate"' in client.get("/review").text
    no_reason = post(client, "/review", f"/review/projects/{project_id}/reject", {"comment": " "})
    assert no_reason.status_code == 422  # type: ignore[attr-defined]
    assert post(client, "/review", f"/review/projects/{project_id}/validate", {"comment": "ok"}).status_code == 303  # type: ignore[attr-defined]
    assert log_in(client, "registry").status_code == 303
    assert post(client, "/review", f"/review/projects/{project_id}/register", {}).status_code == 303  # type: ignore[attr-defined]
    status = session.scalars(select(Project.status).where(Project.id == project_id)).one()
    session.rollback()
    assert status.value == "registered"
