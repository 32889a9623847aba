"""Metrics across processes, job timing and the JSON log format (ADR 029)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core import metrics
from core.logs import ShanhaiJsonFormatter, configure_logging, request_id_var

ROOT = Path(__file__).resolve().parents[2]
WRITER = """
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from core.metrics import (configure_multiprocess, record_audit_tree_size, record_order_batch,
                          record_throttled_login, record_audit_alarm)
configure_multiprocess(Path(sys.argv[1]))
size = int(sys.argv[2])
record_order_batch(size, 0.01)
record_throttled_login()
record_audit_alarm("chain-broken")
record_audit_tree_size(size * 100)
"""


def samples(text: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


def test_two_processes_writing_are_added_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "prometheus"
    metrics.clean_multiprocess_dir(directory)
    for size in (3, 5):
        subprocess.run([sys.executable, "-c", WRITER, str(directory), str(size)], cwd=ROOT, check=True)
    assert len(list(directory.glob("*.db"))) >= 2  # one file per process and kind
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(directory))
    scraped = samples(metrics.render())
    assert scraped[("shanhai_order_batch_size_count", frozenset())] == 2
    assert scraped[("shanhai_order_batch_size_sum", frozenset())] == 8
    assert scraped[("shanhai_throttled_logins_total", frozenset())] == 2
    assert scraped[("shanhai_audit_alarms_total", frozenset({("kind", "chain-broken")}))] == 2
    assert scraped[("shanhai_audit_tree_size", frozenset())] == 500  # the largest, not the sum

    metrics.clean_multiprocess_dir(directory)  # `shanhai run` starts afresh
    assert list(directory.iterdir()) == []


def test_a_timed_job_reports_its_outcome() -> None:
    def count(outcome: str) -> float:
        labels = {"job": "unit", "outcome": outcome}
        return metrics.metrics().registry.get_sample_value("shanhai_job_duration_seconds_count", labels) or 0.0

    before = {outcome: count(outcome) for outcome in ("ok", "failed", "error")}
    with metrics.timed_job("unit"):
        pass
    with metrics.timed_job("unit") as outcome:
        outcome.value = "failed"
    with pytest.raises(RuntimeError), metrics.timed_job("unit"):
        raise RuntimeError("boom")
    for label in ("ok", "failed", "error"):
        assert count(label) - before[label] == 1, label


@pytest.fixture(autouse=True)
def _root_level() -> Iterator[None]:
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


def test_a_json_log_line_parses_and_carries_the_request_id() -> None:
    stream = io.StringIO()
    handler = configure_logging("json", "INFO", stream=stream)
    try:
        token = request_id_var.set("req-7")
        logging.getLogger("shanhai.test").info("hello %s", "world", extra={"route": "/x/{id}", "status": 200})
        request_id_var.reset(token)
        logging.getLogger("shanhai.test").warning("outside a request")
    finally:
        logging.getLogger().removeHandler(handler)
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["message"] == "hello world" and inside["request_id"] == "req-7"
    assert inside["route"] == "/x/{id}" and inside["status"] == 200 and inside["logger"] == "shanhai.test"
    assert inside["level"] == "INFO" and inside["time"].endswith("Z")
    assert outside["request_id"] is None and outside["level"] == "WARNING"
    assert isinstance(handler.formatter, ShanhaiJsonFormatter)


def test_configuring_logging_twice_keeps_one_handler() -> None:
    first = configure_logging("text", "INFO", stream=io.StringIO())
    second = configure_logging("text", "INFO", stream=io.StringIO())
    try:
        assert first not in logging.getLogger().handlers and second in logging.getLogger().handlers
    finally:
        logging.getLogger().removeHandler(second)


def test_the_metrics_port_serves_without_credentials() -> None:
    metrics.record_throttled_login()
    server = metrics.start_metrics_server("127.0.0.1", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5) as answer:
            scraped = samples(answer.read())
    finally:
        server.shutdown()
        server.server_close()
    assert scraped[("shanhai_throttled_logins_total", frozenset())] >= 1


def test_an_audit_alarm_is_counted_by_kind() -> None:
    from core import audit_heads
    from core.errors import AuditLogInconsistent
    from core.merkle import MerkleTree
    from core.tree_head import SignedTreeHead

    tree = MerkleTree()
    for data in (b"a", b"b"):
        tree.append(data)

    def alarms(kind: str) -> float:
        return metrics.metrics().registry.get_sample_value("shanhai_audit_alarms_total", {"kind": kind}) or 0.0

    before = {kind: alarms(kind) for kind in ("truncated", "rewritten")}
    longer = SignedTreeHead(3, "00" * 32, "2026-12-07T00:00:00Z", "k", "s")
    rewritten = SignedTreeHead(2, "00" * 32, "2026-12-07T00:00:00Z", "k", "s")
    for head in (longer, rewritten, rewritten):
        with pytest.raises(AuditLogInconsistent):
            audit_heads.check_extends(tree, head)
    audit_heads.check_extends(tree, SignedTreeHead(2, tree.root().hex(), "2026-12-07T00:00:00Z", "k", "s"))
    assert alarms("truncated") - before["truncated"] == 1
    assert alarms("rewritten") - before["rewritten"] == 2
