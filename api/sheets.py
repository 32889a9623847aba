"""The human-readable calculation sheet of a monitoring report (one self-contained HTML page).

Every value on the page comes from the stored record: the methodology and parameter set (with the
provisional label and its reason), the inputs, each parameter with its unit, class and citation, each
equation step in order with its terms and unit, the results, the warnings, and the SHA-256 with the
command that recomputes it. Everything is HTML-escaped.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from carbon.models import MonitoringReport

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;max-width:80rem}"
    "table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}"
    "th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}"
    "th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".provisional{background:#fff3cd;border:1px solid #e0b000;padding:.75rem;margin:1rem 0}"
    ".warning{background:#fde2e1;border:1px solid #d33;padding:.5rem;margin:.25rem 0}"
    "code,pre{font-family:ui-monospace,monospace;font-size:.85rem}pre{background:#f7f7f7;padding:.75rem;overflow:auto}"
)


def _table(headers: list[str], rows: list[list[str]], numeric: frozenset[int] = frozenset()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{escape(c)}</td>' if i in numeric else f"<td>{escape(c)}</td>" for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _terms(terms: dict[str, Any]) -> str:
    return "; ".join(f"{k} = {v}" for k, v in terms.items())


def _parameters(record: dict[str, Any]) -> str:
    rows = [
        [
            key,
            str(p.get("value", "")),
            str(p.get("unit", "")),
            str(p.get("class", "")),
            str(p.get("valid_from", "")),
            str(p.get("confirmation", "")),
            str(p.get("citation", "")),
        ]
        for key, p in sorted(record.get("parameters", {}).items())
    ]
    return _table(
        ["Parameter", "Value", "Unit", "Class", "Valid from", "Confirmation", "Citation"], rows, frozenset({1})
    )


def _steps(record: dict[str, Any]) -> str:
    rows = [
        [str(i), s["name"], s["equation"], _terms(s.get("terms", {})), s["value"], s["unit"]]
        for i, s in enumerate(record.get("trace", []), start=1)
    ]
    return _table(["#", "Variable", "Equation", "Terms", "Value", "Unit"], rows, frozenset({0, 4}))


def _provisional(record: dict[str, Any]) -> str:
    ref = record.get("parameter_set", {})
    if not record.get("provisional"):
        return "<p>Parameter set: confirmed values only (not provisional).</p>"
    return (
        '<div class="provisional"><strong>PROVISIONAL.</strong> Parameter set '
        f"<code>{escape(str(ref.get('id')))}@{escape(str(ref.get('version')))}</code> holds values not confirmed in "
        f"their primary source: {escape(str(ref.get('provisional_reason', '')))}</div>"
    )


def calculation_sheet(report: MonitoringReport) -> str:
    """Return the calculation sheet of ``report`` as a complete HTML document."""
    record = report.record
    ref = record.get("parameter_set", {})
    results = [[k, str(v)] for k, v in record.get("result", {}).items()]
    details = [
        [k, json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v]
        for k, v in record.get("details", {}).items()
    ]
    warnings = (
        "".join(
            f'<div class="warning"><code>{escape(w["code"])}</code> {escape(w["message"])}</div>'
            for w in record.get("warnings", [])
        )
        or "<p>No sanity warnings.</p>"
    )
    raster = report.inputs.get("raster")
    raster_html = (
        f"<h2>Raster route</h2><pre>{escape(json.dumps(raster, ensure_ascii=False, indent=2))}</pre>" if raster else ""
    )
    title = f"Monitoring report {report.id} — {report.project.code}"
    summary = [
        ["Project", f"{report.project.code} {report.project.name}"],
        ["Status", report.status.value],
        ["Monitoring period", f"{report.period_start} .. {report.period_end}"],
        ["Plots", ", ".join(str(p) for p in report.plot_ids)],
        ["Methodology", f"{record['methodology']['id']} {record['methodology']['version']}"],
        ["Parameter set", f"{ref.get('id')}@{ref.get('version')} (sha256 {ref.get('sha256')})"],
        ["Submitted", f"{report.submitted_at.isoformat()} by user {report.submitted_by_user_id}"],
        ["Record SHA-256", report.record_sha256],
        ["Hash scheme", report.hash_scheme],
    ]
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f"{_table(['', ''], summary)}{_provisional(record)}"
        f"<h2>Results</h2>{_table(['Quantity', 'Value'], results, frozenset({1}))}"
        f"<h2>Sanity warnings</h2>{warnings}"
        f"<h2>Calculation steps</h2>{_steps(record)}"
        f"<h2>Parameters and citations</h2>{_parameters(record)}"
        f"<h2>Details</h2>{_table(['Detail', 'Value'], details)}"
        f"{raster_html}"
        f"<h2>Inputs</h2><pre>{escape(json.dumps(record.get('inputs', {}), ensure_ascii=False, indent=2))}</pre>"
        "<h2>Verify</h2><p>Download the trace (<code>GET /api/v1/monitoring-reports/"
        f"{report.id}/trace</code>) and run <code>shanhai carbon compute trace.json</code>: it recomputes the record "
        f"offline and must print <code>{escape(report.record_sha256)}</code>.</p></body></html>"
    )
