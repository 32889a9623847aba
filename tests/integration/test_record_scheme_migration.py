"""Revision 0021: reports filed before it are named ``shanhai-json/1`` and recompute as before (ADR 033, "Records")."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from alembic import command

from carbon.monitoring_records import check_record
from core.migrate import alembic_config, upgrade

GOLDEN = Path(__file__).parents[1] / "golden" / "records"


def _insert_report(connection: sqlite3.Connection, document: dict[str, object], **extra: str) -> None:
    record = document["record"]
    assert isinstance(record, dict)
    ref = record["parameter_set"]
    columns = {
        "id": 1 + connection.execute("SELECT count(*) FROM monitoring_report").fetchone()[0],
        "project_id": 1,
        "period_start": "2023-03-01",
        "period_end": "2028-03-01",
        "methodology_id": record["methodology"]["id"],
        "methodology_version": record["methodology"]["version"],
        "parameter_set_id": ref["id"],
        "parameter_set_version": ref["version"],
        "parameter_set_sha256": ref["sha256"],
        "provisional": 1,
        "provisional_reason": ref["provisional_reason"],
        "plot_ids": "[1]",
        "inputs": "{}",
        "record": json.dumps(record),
        "record_sha256": document["record_sha256"],
        "status": "submitted",
        "gross_removal_tco2e": "0",
        "net_removal_tco2e": "0",
        "uncertainty_deduction_tco2e": "0",
        "creditable_tco2e": "0",
        "buffer_units_t": 0,
        "issuable_units_t": 0,
        "remainder_tco2e": "0",
        "warnings": "[]",
        "submitted_at": "2026-01-01 00:00:00.000000",
        "submitted_by_user_id": 1,
        **extra,
    }
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    connection.execute(f"INSERT INTO monitoring_report ({names}) VALUES ({marks})", list(columns.values()))


def test_reports_before_0021_are_legacy_and_recompute_unchanged(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reports.db'}"
    upgrade(url)
    command.downgrade(alembic_config(url), "0019")  # the revision goes down and up again cleanly
    upgrade(url)
    legacy = json.loads((GOLDEN / "ccer-14-001.shanhai-json-1.json").read_text(encoding="utf-8"))
    new = json.loads((GOLDEN / "ccer-14-001.rfc8785.json").read_text(encoding="utf-8"))
    # A plain sqlite3 connection: no foreign keys enforced, so a bare report row stands for one filed earlier.
    connection = sqlite3.connect(tmp_path / "reports.db")
    try:
        _insert_report(connection, legacy)  # as every row that existed before 0021: no hash_scheme given
        _insert_report(connection, new, hash_scheme="rfc8785")
        with pytest.raises(sqlite3.IntegrityError):
            _insert_report(connection, new, hash_scheme="sha256-of-whatever")
        rows = connection.execute("SELECT hash_scheme, record, record_sha256 FROM monitoring_report ORDER BY id")
        stored = list(rows)
    finally:
        connection.close()
    assert [scheme for scheme, _, _ in stored] == ["shanhai-json/1", "rfc8785"]
    for scheme, record_text, record_sha256 in stored:
        check = check_record(json.loads(record_text))
        assert check.hash_scheme == scheme and check.matches and check.recomputed_sha256 == record_sha256
