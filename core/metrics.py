"""Prometheus metrics of every Shanhai process: API processes, the matcher child and Celery workers (ADR 029).

The metric objects live here, in ``core``, so that the domain packages that know a duration or a size (order
entry, import and GEP jobs, the audit tree) record it themselves without importing a web or task framework.
They are created on first use, in a registry of their own, after :func:`configure_multiprocess` chose the mode:

* without a directory, values live in this process and ``/metrics`` renders :func:`metrics`'s registry;
* with ``SHANHAI_PROMETHEUS_MULTIPROC_DIR`` every process (the API's workers, its matcher child, Celery's
  pool processes) writes its values into memory-mapped files there (``PROMETHEUS_MULTIPROC_DIR``, inherited by
  child processes), and ``/metrics`` adds them up with a ``MultiProcessCollector`` (:func:`render`).

Hooks for other parts of the code: :func:`record_throttled_login` (a login refused by the throttle) and
:func:`record_audit_alarm` (an audit alarm raised, by kind), :func:`record_witness_refusal` (a witness refused an
inconsistent checkpoint) and :func:`record_audit_witnessed_size`.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Metric,
    generate_latest,
    start_http_server,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds: from a fast read (1 ms) to a slow import or GEP tile (10 min).
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_BUCKETS_S = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


@dataclass(frozen=True)
class Metrics:
    """The metric objects of one process, in their own registry."""

    registry: CollectorRegistry
    http_requests: Counter
    http_request_duration_s: Histogram
    order_batch_size: Histogram
    order_batch_duration_s: Histogram
    matcher_lag_s: Histogram
    job_duration_s: Histogram
    audit_tree_size: Gauge
    audit_alarms: Counter
    throttled_logins: Counter
    witness_refusals: Counter
    audit_witnessed_size: Gauge


_metrics: Metrics | None = None
_configured = False  # whether configure_multiprocess set PROMETHEUS_MULTIPROC_DIR


def _build() -> Metrics:
    registry = CollectorRegistry(auto_describe=True)
    return Metrics(
        registry=registry,
        http_requests=Counter(
            "shanhai_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        ),
        http_request_duration_s=Histogram(
            "shanhai_http_request_duration_seconds",
            "Time to the end of the answer, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        ),
        order_batch_size=Histogram(
            "shanhai_order_batch_size",
            "Order-entry commands per batch (one transaction of one instrument, ADR 015).",
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        ),
        order_batch_duration_s=Histogram(
            "shanhai_order_batch_duration_seconds",
            "Time to run and commit one order-entry batch, in the process that ran it.",
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        ),
        matcher_lag_s=Histogram(
            "shanhai_matcher_lag_seconds",
            "Time an order command waited for its batch to start (queued behind the batch committing).",
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        ),
        job_duration_s=Histogram(
            "shanhai_job_duration_seconds",
            "Background jobs (plot imports, GEP runs and tiles, remeasures, sweeps) by job and outcome.",
            ["job", "outcome"],
            buckets=JOB_BUCKETS_S,
            registry=registry,
        ),
        audit_tree_size=Gauge(
            "shanhai_audit_tree_size",
            "Entries in the audit Merkle tree last synchronised (largest over the processes).",
            registry=registry,
            multiprocess_mode="max",
        ),
        audit_alarms=Counter("shanhai_audit_alarms", "Audit alarms raised, by kind.", ["kind"], registry=registry),
        throttled_logins=Counter(
            "shanhai_throttled_logins", "Login attempts refused by the login throttle.", registry=registry
        ),
        witness_refusals=Counter(
            "shanhai_witness_refusals",
            "Checkpoints a witness refused to cosign because the log contradicted itself, by origin (ADR 033).",
            ["origin", "reason"],
            registry=registry,
        ),
        audit_witnessed_size=Gauge(
            "shanhai_audit_witnessed_tree_size",
            "Size of the largest tree head cosigned by a quorum of the configured witnesses (ADR 033).",
            registry=registry,
            multiprocess_mode="max",
        ),
    )


def metrics() -> Metrics:
    """Return this process's metric objects, creating them on first use."""
    global _metrics
    if _metrics is None:
        _metrics = _build()
    return _metrics


def configure_multiprocess(directory: Path | None) -> None:
    """Choose where this process (and the processes it starts) keep their values; call before recording.

    With a directory, ``PROMETHEUS_MULTIPROC_DIR`` is exported (spawned children such as the matcher read it when
    they import ``prometheus_client``) and this process switches to memory-mapped values; without one, nothing
    changes, unless an earlier call chose a directory: then this process goes back to its own values. The metric
    objects are made anew either way the mode changes, so values recorded before in this process are dropped.
    """
    global _metrics, _configured
    if directory is None:
        if _configured:  # back to this process's own values (tests that built an app with a directory)
            os.environ.pop(MULTIPROC_ENV, None)
            values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
            _metrics, _configured = None, False
        return
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]  # decided at import; again
    _metrics, _configured = None, True


def clean_multiprocess_dir(directory: Path) -> None:
    """Empty (or create) the multiprocess directory: at service start, the files of dead processes go."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)


def process_exited(pid: int) -> None:
    """Drop a dead process's live gauges (Celery pool processes that exit); a no-op without a directory."""
    if os.environ.get(MULTIPROC_ENV):
        mark_process_dead(pid)  # type: ignore[no-untyped-call]


class _Exposed(Collector):
    """What a scrape sees: all processes' values when multiprocess, this process's otherwise (read per scrape)."""

    def collect(self) -> Iterable[Metric]:
        """Yield the metric families of the current mode."""
        directory = os.environ.get(MULTIPROC_ENV)
        if directory:
            collector = MultiProcessCollector(None, path=directory)  # type: ignore[no-untyped-call]
            yield from collector.collect()  # type: ignore[no-untyped-call]
        else:
            yield from metrics().registry.collect()


EXPOSED = _Exposed()


def render() -> bytes:
    """Return the Prometheus text exposition of :data:`EXPOSED`."""
    return generate_latest(EXPOSED)


def start_metrics_server(host: str, port: int) -> WSGIServer:
    """Serve :data:`EXPOSED` on a separate ``host:port`` from a daemon thread (``SHANHAI_METRICS_PORT``).

    The address is the access rule: bind it to a private interface that only the scraper reaches.
    """
    server, _thread = start_http_server(port, addr=host, registry=EXPOSED)
    return server


def record_throttled_login() -> None:
    """Count one login attempt refused by the throttle."""
    metrics().throttled_logins.inc()


def record_audit_alarm(kind: str) -> None:
    """Count one audit alarm of ``kind`` (a short, fixed name such as ``chain-broken``)."""
    metrics().audit_alarms.labels(kind=kind).inc()


def record_witness_refusal(origin: str, reason: str) -> None:
    """Count one checkpoint a witness refused (``reason`` a short, fixed name such as ``inconsistent``)."""
    metrics().witness_refusals.labels(origin=origin, reason=reason).inc()


def record_audit_witnessed_size(size: int) -> None:
    """Record the size of the largest head a quorum of witnesses cosigned."""
    metrics().audit_witnessed_size.set(size)


def record_audit_tree_size(size: int) -> None:
    """Record the size of the audit tree a process just synchronised."""
    metrics().audit_tree_size.set(size)


def record_order_batch(size: int, duration_s: float) -> None:
    """Record one order-entry batch: its commands and how long it took to run and commit."""
    recorded = metrics()
    recorded.order_batch_size.observe(size)
    recorded.order_batch_duration_s.observe(duration_s)


def record_matcher_lag(wait_s: float) -> None:
    """Record how long one order command waited for its batch to start."""
    metrics().matcher_lag_s.observe(wait_s)


@dataclass
class JobOutcome:
    """The outcome a timed job reports; ``None`` means ``ok`` (the body may set ``failed``, ``partial``…)."""

    value: str | None = None


@contextmanager
def timed_job(job: str) -> Iterator[JobOutcome]:
    """Time the ``with`` body as one run of ``job``.

    Its outcome is ``error`` if it raises, else what the body set on the yielded :class:`JobOutcome`, else ``ok``.
    """
    started = time.perf_counter()
    outcome = JobOutcome()
    raised = True
    try:
        yield outcome
        raised = False
    finally:
        label = "error" if raised else outcome.value or "ok"
        metrics().job_duration_s.labels(job=job, outcome=label).observe(time.perf_counter() - started)
