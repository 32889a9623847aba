"""Multiprocess metrics: the matcher child writes its batches where /metrics adds them up (ADR 029, ADR 018)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core import metrics
from core.settings import Settings
from tests.e2e.test_observability import scrape, value
from tests.e2e.test_trading_api import Login, market, order

__all__ = ["market"]  # the fixture, imported from the order-entry tests


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    directory = tmp_path / "prometheus"
    metrics.clean_multiprocess_dir(directory)
    yield settings.model_copy(update={"matcher_process": True, "prometheus_multiproc_dir": directory})
    metrics.configure_multiprocess(None)  # after the app (and its matcher child) stopped
    assert metrics.MULTIPROC_ENV not in os.environ


def test_the_matcher_child_writes_into_the_multiprocess_directory(
    client: TestClient, login: Login, market: dict[str, int], app: FastAPI, settings: Settings
) -> None:
    assert os.environ[metrics.MULTIPROC_ENV] == str(settings.prometheus_multiproc_dir)
    child = app.state.order_entry.matcher.pid()
    assert child != os.getpid()
    before = scrape(client, login)
    assert order(client, login, "enterprise", "buy", "60", 10).status_code == 201
    after = scrape(client, login)
    assert value(after, "shanhai_order_batch_size_count") - value(before, "shanhai_order_batch_size_count") == 1
    assert value(after, "shanhai_matcher_lag_seconds_count") - value(before, "shanhai_matcher_lag_seconds_count") == 1
    assert settings.prometheus_multiproc_dir is not None
    written = {path.name for path in settings.prometheus_multiproc_dir.glob("*.db")}
    assert f"histogram_{child}.db" in written  # the batch was recorded by the child, not by this process
    assert f"histogram_{os.getpid()}.db" in written  # requests and the matcher lag, by the API process
