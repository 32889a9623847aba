"""Evidence attachments over HTTP: sniffed types and limits, the content-addressed store, audit, row-level reads."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pypdf import PdfWriter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carbon.models import EvidenceAttachment
from core.audit import AuditEntry
from core.settings import Settings
from shanhai.app import create_app

Login = Callable[[str], dict[str, str]]
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
HAICANG = 1  # the demo's Haicang project (api/seed.py)


def pdf_bytes(pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def image_bytes(kind: str, size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 60)).save(out, format=kind)
    return out.getvalue()


def xlsx_bytes() -> bytes:
    book = openpyxl.Workbook()
    book.active.append(["小班号", "面积(亩)"])
    book.active.append(["HC-001", 1500])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def tiff_without_crs(_tmp_path: Path) -> bytes:
    return image_bytes("TIFF")  # a scan's TIFF: no CRS, no geotransform


def upload(
    client: TestClient, headers: dict[str, str], data: bytes, kind: str, *, name: str = "file", target: str = ""
) -> Any:
    target = target or f"/api/v1/projects/{HAICANG}/attachments"
    return client.post(target, headers=headers, files={"file": (name, data)},
                       data={"kind": kind, "description": "demo evidence"})  # fmt: skip


def stored_files(settings: Settings) -> list[Path]:
    return sorted(p for p in settings.resolved_evidence_dir.rglob("*") if p.is_file())


def test_a_certificate_is_stored_by_hash_audited_listed_and_downloaded(
    client: TestClient, login: Login, session: Session, settings: Settings
) -> None:
    data = pdf_bytes(2)
    sha256 = hashlib.sha256(data).hexdigest()
    response = upload(client, login("forestry_bureau"), data, "forest_right_certificate", name="林权证 HC-001.pdf")
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["media_type"], body["sha256"], body["size_bytes"]) == ("application/pdf", sha256, len(data))
    assert body["details"] == {"pages": 2} and body["filename"] == "林权证 HC-001.pdf"
    assert stored_files(settings) == [settings.resolved_evidence_dir / "sha256" / sha256[:2] / sha256]
    entry = session.scalars(select(AuditEntry).where(AuditEntry.subject == f"evidence:{body['id']}")).one()
    assert entry.action == "evidence.attached" and f'"sha256":"{sha256}"' in entry.payload.replace(" ", "")
    session.rollback()  # SQLite: end the read so the API can write

    listed = client.get(f"/api/v1/projects/{HAICANG}/attachments", headers=login("verifier")).json()
    assert [a["id"] for a in listed["items"]] == [body["id"]]
    for reader in ("forestry_bureau", "verifier", "registry", "auditor"):
        got = client.get(f"/api/v1/attachments/{body['id']}/content", headers=login(reader))
        assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["repr-digest"] == f"sha-256=:{base64.b64encode(bytes.fromhex(sha256)).decode()}:"
    assert "attachment;" in got.headers["content-disposition"]


def test_row_level_reads(client: TestClient, login: Login) -> None:
    made = upload(client, login("forestry_bureau"), image_bytes("PNG"), "photo", name="site.png").json()
    for outsider in ("forest_owner",):  # another organisation's proponent: the evidence does not exist for it
        assert client.get(f"/api/v1/attachments/{made['id']}", headers=login(outsider)).status_code == 404
        assert client.get(f"/api/v1/attachments/{made['id']}/content", headers=login(outsider)).status_code == 404
        assert client.get(f"/api/v1/projects/{HAICANG}/attachments", headers=login(outsider)).status_code == 404
    for role in ("enterprise", "bank", "operator", "ecology_bureau"):  # not evidence readers at all
        assert client.get(f"/api/v1/attachments/{made['id']}", headers=login(role)).status_code == 403
    assert client.get(f"/api/v1/attachments/{made['id']}").status_code == 401
    assert upload(client, login("forest_owner"), image_bytes("PNG"), "photo").status_code == 403


@pytest.mark.parametrize(
    ("kind", "make", "status", "media_type"),
    [
        ("forest_right_certificate", lambda _: image_bytes("PNG"), 201, "image/png"),  # named .pdf, sniffed PNG
        ("forest_right_certificate", lambda _: image_bytes("JPEG"), 201, "image/jpeg"),
        (
            "field_sheet",
            lambda _: xlsx_bytes(),
            201,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        ("field_sheet", lambda _: "小班号,面积\nHC-001,1500\n".encode("gbk"), 201, "text/csv"),
        (
            "land_cover_after",
            lambda _: (SAMPLES / "rasters" / "landcover_yongning.tif").read_bytes(),
            201,
            "image/tiff",
        ),
        ("forest_right_certificate", lambda _: b"MZ\x90\x00\x03" + bytes(200), 415, None),  # an executable
        ("photo", lambda _: pdf_bytes(), 415, "application/pdf"),
        ("land_cover_before", lambda _: image_bytes("PNG"), 415, "image/png"),
        ("field_sheet", lambda _: _zip_of({"a.txt": b"x"}), 415, "application/zip"),
        ("forest_right_certificate", lambda _: b"%PDF-1.7\nnot really a pdf", 422, None),
        ("photo", lambda _: b"\x89PNG\r\n\x1a\n" + bytes(64), 422, None),
        ("land_cover_before", tiff_without_crs, 422, None),
    ],
)
def test_types_are_sniffed_from_content(
    kind: str, make: Callable[[Path], bytes], status: int, media_type: str | None,
    client: TestClient, login: Login, session: Session, settings: Settings, tmp_path: Path,
) -> None:  # fmt: skip
    response = upload(client, login("forestry_bureau"), make(tmp_path), kind, name="scan.pdf")
    assert response.status_code == status, response.text
    if status == 201:
        assert response.json()["media_type"] == media_type
        return
    problem = response.json()
    if status == 415:
        assert problem["type"] == "urn:shanhai:problem:core/unsupported-media-type"
        assert problem["media_type"] == media_type and problem["allowed"]
    else:
        assert problem["type"] == "urn:shanhai:problem:geodata/unreadable-file"
    assert session.scalar(select(func.count()).select_from(EvidenceAttachment)) == 0
    session.rollback()
    assert stored_files(settings) == []  # nothing half-written: no file kept, no spooled copy left


def _zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_the_size_limit_refuses_and_keeps_nothing(settings: Settings, login: Login, tmp_path: Path) -> None:
    small = settings.model_copy(update={"max_attachment_bytes": 4096})
    app = create_app(small)
    with TestClient(app, raise_server_exceptions=False) as client:
        token = client.post("/api/v1/auth/token", data={"username": "nx-bureau", "password": "demo-nx-bureau-2026"})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        big = image_bytes("PNG", (400, 400)) + bytes(8192)
        response = upload(client, headers, big, "photo")
        assert response.status_code == 413, response.text
        assert response.json()["type"] == "urn:shanhai:problem:core/payload-too-large"
        assert upload(client, headers, b"", "photo").status_code == 422  # empty
    app.state.engine.dispose()
    assert stored_files(small) == []


def test_same_content_twice_is_a_conflict_but_stored_once(client: TestClient, login: Login, settings: Settings) -> None:
    data = pdf_bytes()
    bureau = login("forestry_bureau")
    assert upload(client, bureau, data, "land_use_document").status_code == 201
    again = upload(client, bureau, data, "forest_right_certificate")
    assert again.status_code == 409 and "already attached" in again.json()["detail"]
    report_id = client.get(f"/api/v1/projects/{HAICANG}/monitoring-reports", headers=bureau).json()["items"][0]["id"]
    on_report = upload(
        client, bureau, data, "field_sheet", target=f"/api/v1/monitoring-reports/{report_id}/attachments"
    )
    assert on_report.status_code == 201, on_report.text
    assert len(stored_files(settings)) == 1  # content-addressed: one file for two attachments


def test_report_evidence_and_the_verifiers_report(client: TestClient, login: Login) -> None:
    bureau, verifier = login("forestry_bureau"), login("verifier")
    report_id = client.get(f"/api/v1/projects/{HAICANG}/monitoring-reports", headers=bureau).json()["items"][0]["id"]
    target = f"/api/v1/monitoring-reports/{report_id}/attachments"
    assert upload(client, bureau, image_bytes("JPEG"), "photo", target=target).status_code == 201
    assert upload(client, bureau, pdf_bytes(), "verification_report", target=target).status_code == 403
    assert upload(client, verifier, image_bytes("JPEG", (9, 9)), "photo", target=target).status_code == 403
    verified = client.post(f"/api/v1/monitoring-reports/{report_id}/verify", json={"comment": "ok"}, headers=verifier)
    assert verified.status_code == 200, verified.text
    late = upload(client, bureau, image_bytes("PNG"), "photo", target=target)
    assert late.status_code == 409  # the proponent's evidence closed with the verifier's decision
    made = upload(client, verifier, pdf_bytes(3), "verification_report", name="核查报告.pdf", target=target)
    assert made.status_code == 201, made.text
    listed = client.get(target, headers=login("auditor")).json()["items"]
    assert [a["kind"] for a in listed] == ["photo", "verification_report"]
    assert client.get(f"/api/v1/projects/{HAICANG}/attachments", headers=bureau).json()["items"] == []
    assert client.get("/api/v1/monitoring-reports/999999/attachments", headers=bureau).status_code == 404
