"""The retirement certificate: its plots, its fonts, its kept tree head, its times, and its offline check.

Haicang bureau's forestry-carbon-ticket report (the Haicang plot only) is verified and issued, tonnes go to
the Fujian enterprise, which retires them. The certificate must name the Haicang plot and report — not the
Yongning mine plot of the same project —, draw every character in an embedded TrueType font, show the
signed tree head kept with the retirement (the same in the POST answer, the public JSON and the PDF),
state Beijing time, and verify offline with ``shanhai audit verify-certificate``.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DictionaryObject
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from carbon.ledger import Retirement
from carbon.ledger.certificates import ATTACHMENT, facts_of_pdf, render_pdf
from carbon.models import Plot
from core.audit import AuditEntry, AuditHead
from core.auth import Organisation, OrgKind
from core.clock import FixedClock
from core.tree_head import public_key_pem
from shanhai.cli import main

Login = Callable[[str], dict[str, str]]
HEX128 = re.compile(r"^[0-9a-f]{128}$")


def issue_haicang(client: TestClient, login: Login, session: Session, quantity_t: int = 300) -> None:
    bureau, verifier, registry = login("forestry_bureau"), login("verifier"), login("registry")
    reports = client.get("/api/v1/projects/1/monitoring-reports", headers=bureau).json()["items"]
    report = next(r for r in reports if r["methodology"]["id"] == "FJ-FORESTRY-CARBON-TICKET")
    verified = client.post(
        f"/api/v1/monitoring-reports/{report['id']}/verify", json={"comment": "ok"}, headers=verifier
    )
    assert verified.status_code == 200, verified.text
    issued = client.post(f"/api/v1/monitoring-reports/{report['id']}/issue", json={"comment": "ok"}, headers=registry)
    assert issued.status_code == 200, issued.text
    enterprise_id = session.scalars(select(Organisation.id).where(Organisation.kind == OrgKind.ENTERPRISE)).one()
    session.rollback()
    moved = client.post("/api/v1/transfers", json={"to_organisation_id": enterprise_id, "quantity_t": quantity_t},
                        headers=bureau)  # fmt: skip
    assert moved.status_code == 201, moved.text


def retire(client: TestClient, login: Login, **body: Any) -> Any:
    payload = {"quantity_t": 100, "beneficiary": "厦门海沧港务 Xiamen Haicang port", "purpose": "2025 offset",
               "reporting_year": 2025, **body}  # fmt: skip
    response = client.post("/api/v1/retirements", json=payload, headers=login("enterprise"))
    assert response.status_code == 201, response.text
    return response.json()


def pdf_text(pdf: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def fonts_of(pdf: bytes) -> list[DictionaryObject]:
    found = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        fonts = page["/Resources"].get_object().get("/Font", {}).get_object()
        found += [fonts[name].get_object() for name in fonts]
    return found


@pytest.fixture
def certificate(client: TestClient, login: Login, session: Session, clock: FixedClock) -> dict[str, Any]:
    issue_haicang(client, login, session)
    return retire(client, login)  # type: ignore[no-any-return]


def test_the_certificate_lists_exactly_the_plots_behind_the_retired_serials(
    certificate: dict[str, Any], client: TestClient, session: Session
) -> None:
    plots = {p.plot_code: (p.id, p.name) for p in session.scalars(select(Plot))}  # Yongning: the other project's
    session.rollback()
    haicang, yongning = plots["NX-JY-HC-001"], plots["NX-YN-KS-001"]
    assert [p["id"] for p in certificate["plots"]] == [haicang[0]], (plots, certificate["plots"])
    [report] = certificate["monitoring_reports"]
    assert report["plot_ids"] == [haicang[0]] and certificate["plots"][0]["monitoring_report_ids"] == [report["id"]]
    assert report["methodology"].startswith("FJ-FORESTRY-CARBON-TICKET")
    text = pdf_text(client.get(f"/public/v1/retirements/{certificate['verification_code']}/certificate.pdf").content)
    squeezed = re.sub(r"\s+", "", text)
    assert re.sub(r"\s+", "", haicang[1]) in squeezed and "NX-JY-HC-001" in squeezed
    assert yongning[0] not in [p["id"] for p in certificate["plots"]]
    assert "NX-YN-KS-001" not in squeezed and "永宁" not in squeezed


def test_every_font_is_embedded_truetype_and_chinese_extracts_as_text(
    certificate: dict[str, Any], client: TestClient
) -> None:
    pdf = client.get(f"/public/v1/retirements/{certificate['verification_code']}/certificate.pdf").content
    fonts = fonts_of(pdf)
    assert fonts
    for font in fonts:
        descendants = font.get("/DescendantFonts")
        described = descendants[0].get_object() if descendants else font
        descriptor = described["/FontDescriptor"].get_object()
        assert "/FontFile2" in descriptor, f"{font.get('/BaseFont')} is not an embedded TrueType font"
    text = pdf_text(pdf)
    assert "碳汇注销证明" in text and "林业碳票" in text and "受益方" in text
    assert "闽宁协作海沧碳汇林" in text  # the project name
    assert "厦门海沧港务" in text and "■" not in text


def test_long_values_wrap_instead_of_being_cut(client: TestClient, login: Login, session: Session) -> None:
    issue_haicang(client, login, session)
    purpose = "抵消二〇二五年度港口物流排放。" * 12 + " Offsetting the 2025 logistics emissions of the port. " * 6
    facts = retire(client, login, purpose=purpose.strip())
    text = pdf_text(client.get(f"/public/v1/retirements/{facts['verification_code']}/certificate.pdf").content)
    squeezed = re.sub(r"\s+", "", text)
    assert re.sub(r"\s+", "", purpose) in squeezed  # every character is there, over several lines
    assert facts["tree_head"]["signature"] in squeezed  # all 128 hex digits, not 64


def test_the_kept_tree_head_is_the_same_everywhere_and_first_includes_the_entry(
    certificate: dict[str, Any], client: TestClient, login: Login, session: Session, clock: FixedClock
) -> None:
    head = certificate["tree_head"]
    assert certificate["tree_head_kept"] is True and HEX128.match(head["signature"])
    assert head["tree_size"] == certificate["audit_entry"]["seq"]  # the head that first included the entry
    assert certificate["audit_entry"]["action"] == "units.retired"
    retire(client, login, quantity_t=5)  # the log grows; the kept head must not change
    code = certificate["verification_code"]
    public = client.get(f"/public/v1/retirements/{code}").json()
    pdf = client.get(f"/public/v1/retirements/{code}/certificate.pdf").content
    embedded = facts_of_pdf(pdf)
    assert public["tree_head"] == head and embedded["tree_head"] == head
    assert public["inclusion_proof"] == certificate["inclusion_proof"] == embedded["inclusion_proof"]
    squeezed = re.sub(r"\s+", "", pdf_text(pdf))
    assert head["signature"] in squeezed and head["root_hash"] in squeezed and head["key_id"] in squeezed


def test_times_are_beijing_time_on_the_certificate(certificate: dict[str, Any], client: TestClient) -> None:
    assert certificate["retired_at"] == "2026-11-25T17:30:00+08:00"  # the fixed clock: 09:30 UTC
    pdf = client.get(f"/public/v1/retirements/{certificate['verification_code']}/certificate.pdf").content
    assert "2026-11-25T17:30:00+08:00" in pdf_text(pdf)


def test_characters_outside_the_font_are_refused_at_issuance_and_never_drawn_as_boxes(
    client: TestClient, login: Login, session: Session
) -> None:
    issue_haicang(client, login, session)
    before = client.get("/api/v1/holdings", headers=login("enterprise")).json()["totals_t"]
    body = {"quantity_t": 10, "beneficiary": "朱镕基基金会", "purpose": "offset", "reporting_year": 2025}
    refused = client.post("/api/v1/retirements", json=body, headers=login("enterprise"))
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert "U+9555" in json.dumps(problem) and problem["errors"][0]["pointer"] == "/beneficiary"
    assert client.get("/api/v1/holdings", headers=login("enterprise")).json()["totals_t"] == before
    facts = retire(client, login)
    text = pdf_text(render_pdf({**facts, "beneficiary": "朱镕基基金会"}))  # a row from before the rule
    assert "朱[U+9555]基基金会" in text


def write_key(app: FastAPI, path: Path) -> Path:
    path.write_text(public_key_pem(app.state.audit_signing_key.public_key()))
    return path


def tamper(pdf: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    facts = facts_of_pdf(pdf)
    change(facts)
    reader = PdfReader(io.BytesIO(pdf))
    writer = PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.add_attachment(ATTACHMENT, json.dumps(facts).encode())
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_verify_certificate_offline(
    certificate: dict[str, Any], app: FastAPI, client: TestClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pdf = client.get(f"/public/v1/retirements/{certificate['verification_code']}/certificate.pdf").content
    key = write_key(app, tmp_path / "public.pem")
    good = tmp_path / "good.pdf"
    good.write_bytes(pdf)
    assert main(["audit", "verify-certificate", str(good), "--public-key", str(key)]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True

    def more(facts: dict[str, Any]) -> None:
        facts["quantity_t"] += 1

    def other_serial(facts: dict[str, Any]) -> None:
        facts["serials"][0] = facts["serials"][0].replace("000000100", "000000200")

    def rewritten_entry(facts: dict[str, Any]) -> None:  # entry and facts changed together: the proof catches it
        facts["quantity_t"] = facts["audit_entry"]["payload"]["quantity_t"] = 1000

    def older_head(facts: dict[str, Any]) -> None:
        facts["tree_head"]["timestamp"] = "2020-01-01T00:00:00+00:00"

    for change in (more, other_serial, rewritten_entry, older_head):
        bad = tmp_path / f"{change.__name__}.pdf"
        bad.write_bytes(tamper(pdf, change))
        assert main(["audit", "verify-certificate", str(bad), "--public-key", str(key)]) == 1, change.__name__
        assert json.loads(capsys.readouterr().out)["problems"]

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    wrong = tmp_path / "wrong.pem"
    wrong.write_text(public_key_pem(Ed25519PrivateKey.generate().public_key()))
    assert main(["audit", "verify-certificate", str(good), "--public-key", str(wrong)]) == 1
    assert "not the given public key" in json.loads(capsys.readouterr().out)["problems"][0]


def test_a_retirement_without_a_kept_head_gets_one_at_its_first_read(
    certificate: dict[str, Any], client: TestClient, session: Session, tmp_path: Path, app: FastAPI
) -> None:
    # as migration 0014 leaves retirements made before it: the first read keeps the head of the log's prefix
    # ending with the retirement's entry — the same size and root a head signed right after it had
    columns = ("audit_seq", "tree_head_timestamp", "tree_head_root_hash", "tree_head_key_id", "tree_head_signature")
    session.execute(update(Retirement).values(dict.fromkeys(columns)))
    session.commit()
    code = certificate["verification_code"]
    public = client.get(f"/public/v1/retirements/{code}").json()
    head = public["tree_head"]
    assert public["tree_head_kept"] is True and head["tree_size"] == certificate["audit_entry"]["seq"]
    assert head["root_hash"] == certificate["tree_head"]["root_hash"]
    assert client.get(f"/public/v1/retirements/{code}").json()["tree_head"] == head  # kept once
    path = tmp_path / "old.pdf"
    path.write_bytes(client.get(f"/public/v1/retirements/{code}/certificate.pdf").content)
    key = write_key(app, tmp_path / "public.pem")
    assert main(["audit", "verify-certificate", str(path), "--public-key", str(key)]) == 0


def test_a_certificate_without_a_head_says_so_and_does_not_verify(
    certificate: dict[str, Any], tmp_path: Path, app: FastAPI
) -> None:
    facts = {**certificate, "tree_head": None, "tree_head_kept": False, "inclusion_proof": None}
    pdf = render_pdf(facts)
    assert "not kept" in pdf_text(pdf)
    path = tmp_path / "unkept.pdf"
    path.write_bytes(pdf)
    key = write_key(app, tmp_path / "public.pem")
    assert main(["audit", "verify-certificate", str(path), "--public-key", str(key)]) == 1


def test_a_retirement_over_a_truncated_log_is_a_503_and_writes_nothing(
    client: TestClient, login: Login, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    """The insider removes the last retirement's entry after its head was kept: the next retirement is refused."""
    issue_haicang(client, login, session)
    first = retire(client, login)
    kept_size = first["tree_head"]["tree_size"]
    keep = kept_size - 1
    last_hash = session.scalar(select(AuditEntry.entry_hash).where(AuditEntry.seq == keep))
    session.execute(delete(AuditEntry).where(AuditEntry.seq > keep))
    session.execute(update(AuditHead).values(seq=keep, entry_hash=last_hash))
    session.commit()
    retirements = session.scalar(select(func.count()).select_from(Retirement))
    session.rollback()  # end the read: on SQLite every transaction takes the write lock

    caplog.set_level(logging.ERROR, logger="core.audit_heads")
    payload = {"quantity_t": 10, "beneficiary": "b", "purpose": "p", "reporting_year": 2025}
    response = client.post("/api/v1/retirements", json=payload, headers=login("enterprise"))
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "urn:shanhai:problem:audit/log-inconsistent"
    assert (response.json()["signed_tree_size"], response.json()["log_tree_size"]) == (kept_size, keep)
    assert "entries were removed" in caplog.text and first["tree_head"]["root_hash"] in caplog.text
    assert session.scalar(select(func.count()).select_from(Retirement)) == retirements
    assert session.scalar(select(func.max(AuditEntry.seq))) == keep
    session.rollback()
