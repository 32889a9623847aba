"""Retirement certificates: the facts (from the ledger and the audit log), their PDF, and their offline check.

A certificate states the retired serial ranges and, for exactly those serials, the batches, the monitoring
reports they were issued from and the plots of those reports (never the other plots of the project); the
project, vintages and credit classes (provisional classes are labelled); the beneficiary, purpose,
reporting year and use; the time in Beijing time (``+08:00``); the retirement's audit entry, the signed tree
head kept with the retirement (ADR 023) and the inclusion proof of the entry under that head; and a
verification code with its URL as a QR code.

The same facts are the POST answer, the public JSON and the PDF; the PDF carries them as an embedded file
(``certificate.json``), so :func:`check_certificate` (``shanhai audit verify-certificate FILE.pdf``) checks a
certificate offline: the head's Ed25519 signature, the entry's hash recomputed from its content, the
entry's inclusion under the signed root, and that the entry records what the certificate says.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from carbon.certificate_font import FONT_NAME, certificate_font, printable
from carbon.ledger.serials import serial_of
from carbon.ledger.tables import CLASS_LABELS, PROVISIONAL_CLASSES, Batch, CreditClass, HoldingBlock, Retirement
from carbon.models import MonitoringReport, Plot
from core.audit import LEGACY_SCHEME, AuditEntry, entry_hash
from core.audit_tree import InclusionProof, Notary
from core.clock import Clock
from core.errors import NotFound
from core.merkle import leaf_hash, verify_inclusion
from core.tree_head import SignedTreeHead, key_id, verify_tree_head

FORMAT = "shanhai-retirement-certificate/1"
#: Name of the facts file embedded in the PDF.
ATTACHMENT = "certificate.json"
#: Beijing time (China has no daylight saving time, so a fixed offset is exact).
BEIJING = timezone(timedelta(hours=8), "CST")
REPORT_SOURCE = "monitoring_report:"
#: What the certificate says and the retirement's audit entry must record alike.
RECORDED_FACTS = ("quantity_t", "beneficiary", "purpose", "use", "reporting_year", "verification_code", "serials")


def retirement_by_code(session: Session, code: str) -> Retirement:
    """Return the retirement with this verification code, or raise :class:`NotFound`."""
    retirement = session.scalars(select(Retirement).where(Retirement.verification_code == code.upper())).first()
    if retirement is None:
        raise NotFound("no retirement has this verification code")
    return retirement


def beijing_time(moment: datetime) -> str:
    """Return an aware instant as RFC 3339 in Beijing time.

    >>> from datetime import UTC
    >>> beijing_time(datetime(2026, 11, 25, 9, 30, tzinfo=UTC))
    '2026-11-25T17:30:00+08:00'
    """
    return moment.astimezone(BEIJING).isoformat()


def _class_facts(credit_class: CreditClass) -> dict[str, Any]:
    zh, en = CLASS_LABELS[credit_class]
    return {"code": credit_class.value, "zh": zh, "en": en, "provisional": credit_class in PROVISIONAL_CLASSES}


def _origin(session: Session, batches: list[Batch]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Any]]:
    """Return (batches, monitoring reports, plots) behind the retired serials' batches."""
    report_ids = {
        b.id: int(b.source.removeprefix(REPORT_SOURCE)) for b in batches if b.source.startswith(REPORT_SOURCE)
    }
    reports = {
        r.id: r for r in session.scalars(select(MonitoringReport).where(MonitoringReport.id.in_(report_ids.values())))
    }
    plot_reports: dict[int, list[int]] = {}
    for report in sorted(reports.values(), key=lambda r: r.id):
        for plot_id in report.plot_ids:
            plot_reports.setdefault(plot_id, []).append(report.id)
    plots = session.scalars(select(Plot).where(Plot.id.in_(plot_reports)).order_by(Plot.id)).all()
    projects = {b.project_id: b.project.code for b in batches}
    batch_facts = [
        {"id": b.id, "number": b.batch_number, "source": b.source, "credit_class": b.credit_class.value,
         "vintage_year": b.vintage_year, "monitoring_report_id": report_ids.get(b.id)}
        for b in batches
    ]  # fmt: skip
    report_facts = [
        {"id": r.id, "project_code": projects.get(r.project_id), "period_start": r.period_start.isoformat(),
         "period_end": r.period_end.isoformat(), "methodology": f"{r.methodology_id} {r.methodology_version}",
         "plot_ids": list(r.plot_ids)}
        for r in sorted(reports.values(), key=lambda r: r.id)
    ]  # fmt: skip
    plot_facts = [
        {"id": p.id, "code": p.plot_code, "name": p.name, "project_code": projects.get(p.project_id),
         "area_ha": round(p.area_m2 / 10_000, 2), "monitoring_report_ids": plot_reports[p.id]}
        for p in plots
    ]  # fmt: skip
    return batch_facts, report_facts, plot_facts


def _entry_facts(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq, "recorded_at": entry.recorded_at, "actor": entry.actor, "action": entry.action,
        "subject": entry.subject, "payload": entry.payload_value(), "prev_hash": entry.prev_hash,
        "entry_hash": entry.entry_hash, "scheme": entry.scheme,
    }  # fmt: skip


def audit_entry_of(session: Session, retirement: Retirement) -> AuditEntry | None:
    """Return the retirement's audit entry (the one its kept head ends with, else the first naming it)."""
    if retirement.audit_seq is not None:
        return session.get(AuditEntry, retirement.audit_seq)
    return session.scalars(
        select(AuditEntry).where(AuditEntry.subject == f"retirement:{retirement.id}").order_by(AuditEntry.seq)
    ).first()


def keep_tree_head(session: Session, retirement: Retirement, notary: Notary, clock: Clock) -> None:
    """Keep, once, the signed head of the log ending with the retirement's audit entry, if none is kept yet.

    A direct retirement keeps its head in its own transaction (:func:`carbon.ledger.retirement.retire_units`).
    A retirement on fill is written by the exchange's batch, whose audit entries are appended at the batch's
    end (possibly in the matcher process), and a retirement from before heads were kept has none: for these the
    head of the log's first ``seq`` entries (``seq`` its entry's) is signed the first time the certificate is
    read. The log is append-only, so that head commits to exactly what a head signed right after the entry would;
    only its timestamp is later. Concurrent first readers race on ``audit_seq IS NULL``: one head is kept, and every
    answer, public page and PDF shows that one.
    """
    if retirement.kept_tree_head is not None:
        return
    entry = audit_entry_of(session, retirement)
    if entry is None:
        return
    head = notary.head_at(session, entry.seq, clock)
    session.execute(
        update(Retirement)
        .where(Retirement.id == retirement.id, Retirement.audit_seq.is_(None))
        .values(audit_seq=head.tree_size, tree_head_timestamp=head.timestamp, tree_head_root_hash=head.root_hash,
                tree_head_key_id=head.key_id, tree_head_signature=head.signature)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    session.commit()
    session.refresh(retirement)


def certificate_facts(
    session: Session, retirement: Retirement, *, verify_url: str, proof: InclusionProof | None = None
) -> dict[str, Any]:
    """Return every fact the certificate states, as JSON-ready values.

    Args:
        session: Reads the ledger and the audit log.
        retirement: The retirement.
        verify_url: The public page of the certificate.
        proof: The inclusion proof of the retirement's audit entry in the tree of its kept head
            (``AuditTree.inclusion_proof(seq, tree_size=seq)``); ``None`` when no head was kept.
    """
    blocks = list(
        session.scalars(
            select(HoldingBlock)
            .where(HoldingBlock.retirement_id == retirement.id)
            .order_by(HoldingBlock.batch_id, HoldingBlock.serial_start)
        )
    )
    batches = list({b.batch_id: b.batch for b in blocks}.values())
    projects = {b.project_id: b.project for b in batches}
    batch_facts, report_facts, plot_facts = _origin(session, batches)
    entry = audit_entry_of(session, retirement)
    head = retirement.kept_tree_head
    classes = sorted({b.credit_class for b in batches}, key=lambda c: c.value)
    return {
        "format": FORMAT,
        "verification_code": retirement.verification_code,
        "verify_url": verify_url,
        "quantity_t": retirement.quantity_t,
        "beneficiary": retirement.beneficiary,
        "purpose": retirement.purpose,
        "reporting_year": retirement.reporting_year,
        "use": retirement.use,
        "retired_at": beijing_time(retirement.created_at),
        "serials": [serial_of(b).format() for b in blocks],
        "vintages": sorted({b.vintage_year for b in batches}),
        "credit_classes": [_class_facts(c) for c in classes],
        "projects": [{"code": p.code, "name": p.name, "province_code": p.province_code} for p in projects.values()],
        "batches": batch_facts,
        "monitoring_reports": report_facts,
        "plots": plot_facts,
        "audit_entry": _entry_facts(entry) if entry is not None else None,
        "tree_head_kept": head is not None,
        "tree_head": head.as_dict() if head is not None else None,
        "inclusion_proof": (
            {"leaf_index": proof.leaf_index, "tree_size": proof.tree_size, "audit_path": proof.audit_path}
            if proof is not None and head is not None
            else None
        ),
    }


# Offline check ------------------------------------------------------------------------------------------


def check_certificate(facts: Mapping[str, Any], public_key: Ed25519PublicKey) -> list[str]:
    """Return every reason why ``facts`` (a certificate's embedded JSON) do not verify; empty when they do.

    Checks, with nothing but the facts and the log's public key: the kept tree head's signature and key
    id; the audit entry's hash recomputed from its content; the entry's inclusion proof against the signed
    root; and that the entry records the certificate's quantity, beneficiary, purpose, use, year, code
    and serials.
    """
    if facts.get("format") != FORMAT:
        return [f"not a {FORMAT} document"]
    if not facts.get("tree_head"):
        return ["the certificate keeps no signed tree head (a retirement from before heads were kept)"]
    try:
        head = SignedTreeHead.from_dict(facts["tree_head"])
    except (ValueError, TypeError) as error:
        return [f"the tree head is malformed: {error}"]
    problems = []
    if head.key_id != key_id(public_key):
        problems.append(f"the tree head names key {head.key_id}, not the given public key {key_id(public_key)}")
    elif not verify_tree_head(head, public_key):
        problems.append("the tree head's signature does not verify with the public key")
    problems += _check_entry(facts, head)
    return problems


def _check_entry(facts: Mapping[str, Any], head: SignedTreeHead) -> list[str]:
    entry, proof = facts.get("audit_entry"), facts.get("inclusion_proof")
    if not isinstance(entry, Mapping) or not isinstance(proof, Mapping):
        return ["the certificate lacks its audit entry or inclusion proof"]
    try:
        recomputed = entry_hash(
            seq=entry["seq"], recorded_at=entry["recorded_at"], actor=entry["actor"], action=entry["action"],
            subject=entry["subject"], payload=entry["payload"], prev_hash=entry["prev_hash"],
            scheme=entry.get("scheme", LEGACY_SCHEME),
        )  # fmt: skip
        path = [bytes.fromhex(node) for node in proof["audit_path"]]
        index, size, seq = int(proof["leaf_index"]), int(proof["tree_size"]), int(entry["seq"])
    except (KeyError, TypeError, ValueError) as error:
        return [f"the audit entry or inclusion proof is malformed: {error}"]
    problems = []
    if recomputed != entry.get("entry_hash"):
        problems.append("the audit entry's content does not hash to its entry hash")
    if index != seq - 1 or size != head.tree_size:
        problems.append("the inclusion proof is not for this entry under the kept tree head")
    leaf = leaf_hash(bytes.fromhex(recomputed))
    if not verify_inclusion(leaf, index, size, path, bytes.fromhex(head.root_hash)):
        problems.append("the inclusion proof does not lead to the signed root: the entry is not in that log")
    payload = entry["payload"] if isinstance(entry.get("payload"), Mapping) else {}
    for name in RECORDED_FACTS:
        if payload.get(name) != facts.get(name):
            problems.append(f"{name} differs from what the audit entry records")
    return problems


def facts_of_pdf(pdf: bytes) -> dict[str, Any]:
    """Return the facts embedded in a certificate PDF.

    Raises:
        ValueError: The PDF carries no ``certificate.json``, or it is not a JSON object.
    """
    from pypdf import PdfReader

    files = PdfReader(io.BytesIO(pdf)).attachments.get(ATTACHMENT)
    if not files:
        raise ValueError(f"the PDF embeds no {ATTACHMENT}")
    facts = json.loads(files[0])
    if not isinstance(facts, dict):
        raise ValueError(f"{ATTACHMENT} is not a JSON object")
    return facts


# PDF ----------------------------------------------------------------------------------------------------

_MARGIN = 50.0
_LABEL_WIDTH = 130.0
_VALUE_SIZE = 9.0
_LEADING = 12.5
_GREY = (0.38, 0.38, 0.38)


def wrap(text: str, width: float, size: float) -> list[str]:
    """Break ``text`` into lines no wider than ``width`` points in the certificate font at ``size``.

    Latin words break at spaces (a word wider than the line, such as a hash, breaks anywhere); Chinese
    breaks between any two characters. Newlines are kept.
    """
    from reportlab.pdfbase.pdfmetrics import stringWidth

    certificate_font()
    lines: list[str] = []
    for paragraph in printable_lines(text):
        line = ""
        for token in _tokens(paragraph):
            candidate = line + token
            if stringWidth(candidate, FONT_NAME, size) <= width:
                line = candidate
                continue
            if line.strip():
                lines.append(line.rstrip())
            line = token.lstrip()
            while stringWidth(line, FONT_NAME, size) > width:  # one token wider than the line
                cut = max(1, _fitting(line, width, size))
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line.rstrip())
    return lines


def printable_lines(text: str) -> list[str]:
    """Split on newlines and make each line printable in the certificate font."""
    return [printable(part) for part in text.split("\n")]


def _tokens(text: str) -> Iterator[str]:
    """Yield words with their leading space, and each CJK character on its own."""
    word = ""
    for character in text:
        if character == " " or ord(character) >= 0x2E80:
            if word:
                yield word
            word = character if character == " " else ""
            if character != " ":
                yield character
        else:
            word += character
    if word:
        yield word


def _fitting(text: str, width: float, size: float) -> int:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    count = 0
    while count < len(text) and stringWidth(text[: count + 1], FONT_NAME, size) <= width:
        count += 1
    return count


def _rows(facts: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Return (Chinese label, English label, value) rows, Chinese first."""
    classes = "\n".join(
        f"{c['zh']} / {c['en']}{' [暂行 PROVISIONAL]' if c['provisional'] else ''}" for c in facts["credit_classes"]
    )
    plots = "\n".join(
        f"{p['code'] or '-'} {p['name'] or ''} ({p['area_ha']} ha), 监测报告 report "
        + ", ".join(f"#{r}" for r in p["monitoring_report_ids"])
        for p in facts["plots"]
    )
    reports = "\n".join(
        f"#{r['id']} {r['period_start']} – {r['period_end']}, {r['methodology']}" for r in facts["monitoring_reports"]
    )
    other = [b for b in facts["batches"] if b["monitoring_report_id"] is None]
    if other:
        reports += "\n" + "\n".join(f"批次 batch {b['id']}: {b['source']} (无监测报告 no report)" for b in other)
    entry, head, proof = facts["audit_entry"], facts["tree_head"], facts["inclusion_proof"]
    rows = [
        ("注销数量", "Quantity retired", f"{facts['quantity_t']} t CO2e"),
        ("受益方", "Beneficiary", facts["beneficiary"]),
        ("用途", "Purpose", facts["purpose"]),
        ("使用方式", "Use", facts["use"]),
        ("报告年度", "Reporting year", str(facts["reporting_year"])),
        ("注销时间(北京时间)", "Retired at (Beijing time)", facts["retired_at"]),
        ("类别", "Credit class", classes),
        ("年份", "Vintage", ", ".join(str(v) for v in facts["vintages"])),
        ("项目", "Project", "\n".join(f"{p['code']} {p['name']}" for p in facts["projects"])),
        ("监测报告", "Monitoring reports", reports.strip() or "-"),
        ("地块", "Plots", plots or "-"),
        ("序列号", "Serials", "\n".join(facts["serials"])),
        ("审计日志条目", "Audit entry", f"#{entry['seq']} {entry['entry_hash']}" if entry else "-"),
    ]
    if head is not None:
        rows += [
            ("签名树头", "Signed tree head",
             f"size {head['tree_size']}, signed {head['timestamp']} (北京时间 {_beijing_text(head['timestamp'])})"
             f"\nroot {head['root_hash']}"),
            ("签名 (Ed25519)", "Signature", head["signature"]),
            ("公钥标识", "Key id", head["key_id"]),
            ("包含证明", "Inclusion proof",
             f"leaf {proof['leaf_index']} of {proof['tree_size']}, {len(proof['audit_path'])} hashes (embedded)"
             if proof else "-"),
        ]  # fmt: skip
    else:
        rows.append(("签名树头", "Signed tree head", "未保存 not kept (retired before tree heads were kept)"))
    return rows


def _beijing_text(timestamp: str) -> str:
    try:
        return beijing_time(datetime.fromisoformat(timestamp))
    except ValueError:
        return "?"


class _Pages:
    """A canvas with a cursor that starts a new page when the next block does not fit."""

    def __init__(self, canvas: Any, code: str) -> None:
        from reportlab.lib.pagesizes import A4

        self.canvas, self.code = canvas, code
        self.width, self.height = A4
        self.page = 1
        self.y = self.height - _MARGIN

    def need(self, height: float) -> None:
        """Start a new page unless ``height`` points fit above the bottom margin."""
        if self.y - height < _MARGIN + 20:
            self.new_page()

    def new_page(self) -> None:
        """Finish this page (footer) and start the next with a continuation heading."""
        self.footer()
        self.canvas.showPage()
        self.page += 1
        self.y = self.height - _MARGIN
        self.text(_MARGIN, "碳汇注销证明(续) Carbon Credit Retirement Certificate (continued)", 10)
        self.y -= 22

    def text(self, x: float, text: str, size: float, grey: bool = False, y: float | None = None) -> None:
        self.canvas.setFont(FONT_NAME, size)
        self.canvas.setFillColorRGB(*(_GREY if grey else (0, 0, 0)))
        self.canvas.drawString(x, self.y if y is None else y, text)

    def footer(self) -> None:
        line = (
            f"验证码 {self.code} · 离线验证 verify offline: shanhai audit verify-certificate FILE.pdf"
            f" (embedded {ATTACHMENT}) · 第 {self.page} 页 Page {self.page}"
        )
        self.text(_MARGIN, line, 7.5, grey=True, y=_MARGIN - 10)


def _draw_row(pages: _Pages, zh: str, label_en: list[str], lines: list[str]) -> None:
    """Draw one row: the Chinese label over the English one, the value's lines beside them, then a rule."""
    label_height = 11 + 9 * len(label_en)
    pages.need(min(max(len(lines) * _LEADING, label_height) + 6, pages.height / 2))
    top = y = pages.y
    pages.text(_MARGIN, zh, 9.5)
    for index, part in enumerate(label_en):
        pages.text(_MARGIN, part, 7.5, grey=True, y=top - 11 - 9 * index)
    bottom = top - label_height
    for part in lines:
        if y < _MARGIN + 20:  # a value longer than the page goes on on the next one
            pages.new_page()
            y = bottom = pages.y
        pages.text(_MARGIN + _LABEL_WIDTH, part, _VALUE_SIZE, y=y)
        y -= _LEADING
    pages.y = min(y + _LEADING - 4, bottom) - 3
    pages.canvas.setStrokeColorRGB(0.85, 0.85, 0.85)
    pages.canvas.line(_MARGIN, pages.y + 3, pages.width - _MARGIN, pages.y + 3)
    pages.y -= 9


def _draw_qr(canvas: Any, data: str, x: float, y: float, size: float) -> None:
    """Draw ``data`` as a QR code (level M, 4-module quiet zone) with rectangles: no font is involved.

    ReportLab's ``renderPDF`` would set Helvetica, a font the PDF does not embed, around the drawing.
    """
    from reportlab.graphics.barcode import qrencoder

    code = qrencoder.QRCode(None, qrencoder.QRErrorCorrectLevel.M)
    code.addData(data)
    code.make()
    count = code.getModuleCount()
    module = size / (count + 8)
    canvas.setFillColorRGB(0, 0, 0)
    for row in range(count):
        for column in range(count):
            if code.isDark(row, column):
                left, top = x + (column + 4) * module, y + size - (row + 4) * module
                canvas.rect(left, top - module, module, module, stroke=0, fill=1)


def render_pdf(facts: Mapping[str, Any]) -> bytes:
    """Render the certificate as A4 pages (Chinese first), with a QR code and the facts embedded as JSON."""
    from pypdf import PdfWriter
    from reportlab.pdfgen.canvas import Canvas

    certificate_font()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, invariant=True, initialFontName=FONT_NAME, initialFontSize=_VALUE_SIZE)
    canvas.setTitle(f"碳汇注销证明 Carbon Credit Retirement Certificate {facts['verification_code']}")
    canvas.setAuthor("Shanhai registry")
    pages = _Pages(canvas, facts["verification_code"])
    pages.y -= 14
    pages.text(_MARGIN, "碳汇注销证明", 22)
    pages.y -= 22
    pages.text(_MARGIN, "Carbon Credit Retirement Certificate", 14)
    pages.y -= 16
    pages.text(_MARGIN, "山海碳汇登记簿(闽宁协作)· Shanhai registry (Fujian–Ningxia cooperation)", 9, grey=True)
    pages.y -= 20
    pages.text(_MARGIN, f"验证码 Verification code  {facts['verification_code']}", 10)
    for line in wrap(f"验证网址 Verify at  {facts['verify_url']}", pages.width - 2 * _MARGIN - 100, 8):
        pages.y -= 12
        pages.text(_MARGIN, line, 8)
    _draw_qr(canvas, facts["verify_url"], pages.width - _MARGIN - 92, pages.height - _MARGIN - 92, 92)
    pages.y = min(pages.y - 24, pages.height - _MARGIN - 112)
    value_width = pages.width - 2 * _MARGIN - _LABEL_WIDTH
    for zh, en, value in _rows(facts):
        _draw_row(pages, printable(zh), wrap(en, _LABEL_WIDTH - 8, 7.5), wrap(value, value_width, _VALUE_SIZE))
    pages.footer()
    canvas.showPage()
    canvas.save()
    writer = PdfWriter(clone_from=io.BytesIO(buffer.getvalue()))
    writer.add_attachment(ATTACHMENT, json.dumps(facts, ensure_ascii=False, indent=1).encode("utf-8"))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
