"""Migrations and the CLI on the embedded SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect

from core.db import make_engine
from core.migrate import alembic_config, current_tables, upgrade
from core.settings import get_settings
from shanhai.cli import main

TABLES = {
    "alembic_version",
    "api_key",
    "app_user",
    "audit_head",
    "audit_log",
    "audit_signed_head",
    "audit_cosignature",
    "task_owner",
    "web_session",
    "evidence_attachment",
    "monitoring_report",
    "organisation",
    "plot",
    "plot_import",
    "plot_import_chunk",
    "project",
    "raster_layer",
    "registry_account",
    "issuance_batch",
    "holding_block",
    "registry_movement",
    "trading_instrument",
    "cash_account",
    "cash_entry",
    "trade_order",
    "trade",
    "order_journal",
    "matcher_cursor",
    "idempotency_record",
    "block_trade",
    "auction",
    "auction_bid",
    "retirement",
    "workflow_step",
    "credit_class_policy",
    "pending_transfer",
    "gep_region_layer",
    "gep_region",
    "gep_run",
    "gep_run_tile",
    "region_dataset",
    "region_boundary",
}
RTREE = {"plot_rtree", "plot_rtree_node", "plot_rtree_parent", "plot_rtree_rowid"}


def test_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    assert set(current_tables(url)) == TABLES | RTREE
    command.downgrade(alembic_config(url), "base")
    assert current_tables(url) == ["alembic_version"]
    upgrade(url)
    assert set(current_tables(url)) == TABLES | RTREE


def test_cli_upgrade_seed_is_idempotent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHANHAI_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("SHANHAI_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    samples = str(Path(__file__).resolve().parents[2] / "samples")
    try:
        assert main(["db", "upgrade"]) == 0
        assert main(["seed", "--samples", samples]) == 0
        assert "demo data loaded" in capsys.readouterr().out
        assert main(["seed", "--samples", samples]) == 0
        out = capsys.readouterr().out
        assert "already present" in out and "nx-bureau" in out
        assert main(["audit", "verify"]) == 0
    finally:
        get_settings.cache_clear()
    url = f"sqlite:///{tmp_path / 'var' / 'shanhai.db'}"
    engine = make_engine(url)
    assert "plot" in inspect(engine).get_table_names()
    engine.dispose()
