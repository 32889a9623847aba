"""Retirement certificates: the facts (from the ledger) and their PDF rendering (Chinese and English).

A certificate lists the retired serial ranges, the project, its plots, vintages and credit classes
(provisional classes are labelled), the beneficiary, purpose, reporting year and use, the audit entry
that recorded the retirement, and a verification code with its URL as a QR code; the public registry
page for that code shows the same facts.
"""

from __future__ import annotations

import io
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.ledger import serial_of
from carbon.models import CreditClass, HoldingBlock, Plot, Retirement
from core.audit import AuditEntry
from core.errors import NotFound

CLASS_LABELS = {
    CreditClass.FORESTRY_CARBON_TICKET: ("林业碳票", "Forestry carbon ticket"),
    CreditClass.CCER_AFFORESTATION: ("造林碳汇(CCER适格)", "CCER-eligible afforestation"),
    CreditClass.ECOLOGICAL_RESTORATION: ("生态修复碳汇(地方,暂行)", "Ecological restoration sink (local, provisional)"),
    CreditClass.OCEAN_FISHERY: ("海洋渔业碳汇", "Ocean fishery carbon sink"),
}
PROVISIONAL_CLASSES = frozenset({CreditClass.ECOLOGICAL_RESTORATION})


def retirement_by_code(session: Session, code: str) -> Retirement:
    """Return the retirement with this verification code, or raise :class:`NotFound`."""
    retirement = session.scalars(select(Retirement).where(Retirement.verification_code == code.upper())).first()
    if retirement is None:
        raise NotFound("no retirement has this verification code")
    return retirement


def _class_facts(credit_class: CreditClass) -> dict[str, Any]:
    zh, en = CLASS_LABELS[credit_class]
    return {"code": credit_class.value, "zh": zh, "en": en, "provisional": credit_class in PROVISIONAL_CLASSES}


def certificate_facts(session: Session, retirement: Retirement, *, verify_url: str) -> dict[str, Any]:
    """Return every fact the certificate states, as JSON-ready values."""
    blocks = list(
        session.scalars(
            select(HoldingBlock)
            .where(HoldingBlock.retirement_id == retirement.id)
            .order_by(HoldingBlock.batch_id, HoldingBlock.serial_start)
        )
    )
    projects = {b.batch.project_id: b.batch.project for b in blocks}
    plots = session.scalars(select(Plot).where(Plot.project_id.in_(projects)).order_by(Plot.id)).all()
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.subject == f"retirement:{retirement.id}").order_by(AuditEntry.seq)
    ).first()
    classes = sorted({b.batch.credit_class for b in blocks}, key=lambda c: c.value)
    return {
        "verification_code": retirement.verification_code,
        "verify_url": verify_url,
        "quantity_t": retirement.quantity_t,
        "beneficiary": retirement.beneficiary,
        "purpose": retirement.purpose,
        "reporting_year": retirement.reporting_year,
        "use": retirement.use,
        "retired_at": retirement.created_at.isoformat(),
        "serials": [serial_of(b).format() for b in blocks],
        "vintages": sorted({b.batch.vintage_year for b in blocks}),
        "credit_classes": [_class_facts(c) for c in classes],
        "projects": [{"code": p.code, "name": p.name, "province_code": p.province_code} for p in projects.values()],
        "plots": [{"code": p.plot_code, "name": p.name, "area_ha": round(p.area_m2 / 10_000, 2)} for p in plots],
        "audit_entry": {"seq": entry.seq, "entry_hash": entry.entry_hash} if entry else None,
    }


def _lines(facts: dict[str, Any]) -> list[tuple[str, str]]:
    classes = "; ".join(
        f"{c['zh']} / {c['en']}{' [PROVISIONAL 暂行]' if c['provisional'] else ''}" for c in facts["credit_classes"]
    )
    entry = facts["audit_entry"]
    rows = [
        ("注销数量 Quantity retired", f"{facts['quantity_t']} t CO2e"),
        ("受益方 Beneficiary", facts["beneficiary"]),
        ("用途 Purpose", facts["purpose"]),
        ("使用方式 Use", facts["use"]),
        ("报告年度 Reporting year", str(facts["reporting_year"])),
        ("注销时间 Retired at", facts["retired_at"]),
        ("类别 Credit class", classes),
        ("年份 Vintage", ", ".join(str(v) for v in facts["vintages"])),
        ("项目 Project", "; ".join(f"{p['code']} {p['name']}" for p in facts["projects"])),
        ("地块 Plots", "; ".join(f"{p['code'] or '-'} {p['name'] or ''} ({p['area_ha']} ha)" for p in facts["plots"])),
        ("审计日志 Audit entry", f"#{entry['seq']} {entry['entry_hash']}" if entry else "-"),
        ("默克尔树 Merkle tree", _tree_line(entry)),
        ("签名 Tree head signature", entry["tree_head"]["signature"][:64] if entry and "tree_head" in entry else "-"),
        ("验证码 Verification code", facts["verification_code"]),
        ("验证网址 Verify at", facts["verify_url"]),
    ]
    rows += [("序列号 Serials", serial) for serial in facts["serials"]]
    return rows


def _tree_line(entry: dict[str, Any] | None) -> str:
    if not entry or "tree_size" not in entry:
        return "-"
    return f"leaf {entry['leaf_index']} of {entry['tree_size']}, root {entry['root_hash']}"


def render_pdf(facts: dict[str, Any]) -> bytes:
    """Render the certificate as a one-or-more-page A4 PDF with a QR code of the verification URL."""
    from reportlab.graphics import renderPDF
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen.canvas import Canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))  # Adobe CJK font: no file to ship or embed
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4)
    width, height = A4
    canvas.setTitle(f"Shanhai retirement certificate {facts['verification_code']}")
    canvas.setFont("STSong-Light", 18)
    canvas.drawString(50, height - 60, "碳汇注销证明  Carbon Credit Retirement Certificate")
    canvas.setFont("Helvetica", 9)
    canvas.drawString(50, height - 78, "Shanhai registry (Fujian-Ningxia cooperation)")
    qr = QrCodeWidget(facts["verify_url"])
    x0, y0, x1, y1 = qr.getBounds()
    drawing = Drawing(90, 90, transform=[90 / (x1 - x0), 0, 0, 90 / (y1 - y0), 0, 0])
    drawing.add(qr)
    renderPDF.draw(drawing, canvas, width - 140, height - 150)
    y = height - 170
    for label, value in _lines(facts):
        if y < 60:
            canvas.showPage()
            y = height - 60
        canvas.setFont("STSong-Light", 10)
        canvas.drawString(50, y, label)
        canvas.setFont("Helvetica", 9)
        canvas.drawString(210, y, value[:95])
        y -= 16
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()
