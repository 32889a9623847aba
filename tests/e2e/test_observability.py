"""Metrics, request ids and JSON logs over HTTP (issue 16 item 6, ADR 029)."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from core import metrics
from core.logs import ShanhaiJsonFormatter, configure_logging
from core.settings import Settings
from shanhai.app import create_app
from tests.e2e.test_plot_imports import new_project, upload
from tests.e2e.test_trading_api import market, order  # noqa: F401 (the fixture)

Login = Callable[[str], dict[str, str]]
SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def scrape(client: TestClient, login: Login) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics", headers=login("operator"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_are_counted_by_route_template(client: TestClient, login: Login) -> None:
    before = scrape(client, login)
    headers = login("registry")
    for project_id in (1, 1, 987654):
        client.get(f"/api/v1/projects/{project_id}", headers=headers)
    after = scrape(client, login)
    route = "/api/v1/projects/{project_id}"
    ok = value(after, "shanhai_http_requests_total", method="GET", route=route, status="200")
    missing = value(after, "shanhai_http_requests_total", method="GET", route=route, status="404")
    assert ok - value(before, "shanhai_http_requests_total", method="GET", route=route, status="200") == 2
    assert missing - value(before, "shanhai_http_requests_total", method="GET", route=route, status="404") == 1
    latency = value(after, "shanhai_http_request_duration_seconds_count", method="GET", route=route)
    assert latency - value(before, "shanhai_http_request_duration_seconds_count", method="GET", route=route) == 3
    labelled = {dict(labels).get("route") for name, labels in after if name == "shanhai_http_requests_total"}
    assert not any(route and "987654" in route for route in labelled)  # never the raw path


def test_metrics_are_not_public_outside_development(client: TestClient, login: Login, settings: Settings) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=login("enterprise")).status_code == 403
    assert client.get("/metrics", headers=login("auditor")).status_code == 200
    public = create_app(settings.model_copy(update={"metrics_public": True}))
    with TestClient(public) as anonymous:
        assert anonymous.get("/metrics").status_code == 200
    public.state.engine.dispose()
    assert Settings(environment="development").resolved_metrics_public
    assert not Settings(environment="test").resolved_metrics_public


def test_an_order_moves_the_batch_metrics(client: TestClient, login: Login, market: dict[str, int]) -> None:  # noqa: F811
    before = scrape(client, login)
    assert order(client, login, "enterprise", "buy", "60", 10).status_code == 201
    after = scrape(client, login)
    for name in ("shanhai_order_batch_size_count", "shanhai_order_batch_duration_seconds_count"):
        assert value(after, name) - value(before, name) == 1, name
    assert value(after, "shanhai_order_batch_size_sum") - value(before, "shanhai_order_batch_size_sum") == 1
    lag = "shanhai_matcher_lag_seconds_count"
    assert value(after, lag) - value(before, lag) == 1


def test_an_import_moves_the_job_metrics(client: TestClient, login: Login) -> None:
    before = scrape(client, login)
    bureau = login("forestry_bureau")
    project_id = new_project(client, bureau)
    response = upload(client, bureau, project_id, "plots_yongning.gpkg", (SAMPLES / "plots_yongning.gpkg").read_bytes())
    assert response.status_code == 202 and response.json()["status"] == "succeeded", response.text
    after = scrape(client, login)
    name = "shanhai_job_duration_seconds_count"
    moved = value(after, name, job="plot_import", outcome="succeeded")
    assert moved - value(before, name, job="plot_import", outcome="succeeded") == 1


def test_the_request_id_is_echoed_or_generated(client: TestClient) -> None:
    echoed = client.get("/health", headers={"X-Request-ID": "trace-42"})
    assert echoed.headers["X-Request-ID"] == "trace-42"
    generated = client.get("/health")
    assert len(generated.headers["X-Request-ID"]) == 32
    unsafe = client.get("/health", headers={"X-Request-ID": "a b\tc"})  # not echoed into logs as sent
    assert unsafe.headers["X-Request-ID"] != "a b\tc"
    assert client.get("/health").headers["X-Request-ID"] != generated.headers["X-Request-ID"]


def test_every_problem_body_carries_the_request_id(
    client: TestClient, login: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = client.get("/api/v1/projects/987654", headers={**login("registry"), "X-Request-ID": "req-404"})
    assert missing.status_code == 404 and missing.json()["request_id"] == "req-404"
    anonymous = client.get("/api/v1/me")
    assert anonymous.status_code == 401
    assert anonymous.json()["request_id"] == anonymous.headers["X-Request-ID"]
    invalid = client.post("/api/v1/projects", json=[], headers=login("forestry_bureau"))
    assert invalid.status_code == 422 and invalid.json()["request_id"] == invalid.headers["X-Request-ID"]

    def boom(_sql: str) -> None:
        raise RuntimeError("unexpected")

    monkeypatch.setattr("api.routers.system.text", boom)
    crashed = client.get("/health", headers={"X-Request-ID": "req-500"})
    assert crashed.status_code == 500
    assert crashed.json()["request_id"] == "req-500" and crashed.headers["X-Request-ID"] == "req-500"
    assert crashed.json()["type"].endswith("core/internal-error") and crashed.json()["reference"]  # both ids


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream, level = io.StringIO(), logging.getLogger().level
    handler = configure_logging("json", "INFO", stream=stream)
    yield stream
    logging.getLogger().removeHandler(handler)
    logging.getLogger().setLevel(level)


def test_a_json_access_log_line_carries_the_request_id(client: TestClient, json_log: io.StringIO) -> None:
    client.get("/api/v1/projects/1", headers={"X-Request-ID": "req-log"})
    records = [json.loads(line) for line in json_log.getvalue().splitlines()]
    access = [r for r in records if r["logger"] == "shanhai.access" and r["request_id"] == "req-log"]
    assert len(access) == 1, records
    line = access[0]
    assert line["route"] == "/api/v1/projects/{project_id}" and line["status"] == 401 and line["method"] == "GET"
    assert line["level"] == "INFO" and line["time"].endswith("Z") and line["latency_ms"] >= 0


def test_shanhai_serve_empties_the_multiprocess_dir_and_serves_the_metrics_port(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import uvicorn

    import shanhai.cli

    directory = tmp_path / "prometheus"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"stale")  # a process of the last run
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda _app, **options: calls.append(options))
    started: list[tuple[str, int]] = []
    monkeypatch.setattr(shanhai.cli, "start_metrics_server", lambda host, port: started.append((host, port)))
    for name, setting in {"DATA_DIR": tmp_path, "ENVIRONMENT": "test", "PROMETHEUS_MULTIPROC_DIR": directory,
                          "METRICS_PORT": 9464, "LOG_FORMAT": "json"}.items():  # fmt: skip
        monkeypatch.setenv(f"SHANHAI_{name}", str(setting))
    shanhai.cli.get_settings.cache_clear()
    root, level = logging.getLogger(), logging.getLogger().level
    try:
        assert shanhai.cli.main(["serve", "--port", "8123"]) == 0
        assert os.environ[metrics.MULTIPROC_ENV] == str(directory)
        handlers = [h for h in root.handlers if h.get_name() == "shanhai"]
        assert len(handlers) == 1 and isinstance(handlers[0].formatter, ShanhaiJsonFormatter)
    finally:
        shanhai.cli.get_settings.cache_clear()
        for handler in [h for h in root.handlers if h.get_name() == "shanhai"]:
            root.removeHandler(handler)
        root.setLevel(level)
        metrics.configure_multiprocess(None)
    assert list(directory.iterdir()) == []  # emptied at start
    assert started == [("127.0.0.1", 9464)]
    assert calls[0]["access_log"] is False and calls[0]["log_config"] is None  # one access log: ours


def test_shanhai_worker_writes_into_the_directory_and_serves_the_metrics_port(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from celery import Celery

    import shanhai.cli

    directory = tmp_path / "prometheus"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"an API process's")  # shared with a running API: kept
    argv: list[list[str]] = []
    monkeypatch.setattr(Celery, "worker_main", lambda _self, args: argv.append(args))
    started: list[tuple[str, int]] = []
    monkeypatch.setattr(shanhai.cli, "start_metrics_server", lambda host, port: started.append((host, port)))
    for name, setting in {"DATA_DIR": tmp_path, "ENVIRONMENT": "test", "PROMETHEUS_MULTIPROC_DIR": directory,
                          "METRICS_PORT": 9465, "BROKER_URL": "memory://"}.items():  # fmt: skip
        monkeypatch.setenv(f"SHANHAI_{name}", str(setting))
    monkeypatch.setenv("GDAL_CACHEMAX", "64")
    shanhai.cli.get_settings.cache_clear()
    root, level = logging.getLogger(), logging.getLogger().level
    try:
        assert shanhai.cli.main(["worker"]) == 0
        assert os.environ[metrics.MULTIPROC_ENV] == str(directory)  # the pool processes it forks inherit it
    finally:
        shanhai.cli.get_settings.cache_clear()
        for handler in [h for h in root.handlers if h.get_name() == "shanhai"]:
            root.removeHandler(handler)
        root.setLevel(level)
        metrics.configure_multiprocess(None)
    assert len(argv) == 1 and started == [("127.0.0.1", 9465)]
    assert (directory / "counter_999999.db").exists()


def test_the_audit_tree_size_is_exposed(client: TestClient, login: Login) -> None:
    head = client.get("/api/v1/audit/tree-head", headers=login("auditor"))
    assert head.status_code == 200, head.text
    assert value(scrape(client, login), "shanhai_audit_tree_size") == head.json()["tree_size"] > 0


def test_the_middleware_passes_a_stream_on_chunk_by_chunk() -> None:
    """Pure ASGI: the first event of a stream reaches the client while the stream is still open."""
    import asyncio

    from api.observability import RequestContext

    release = asyncio.Event()
    received: list[dict[str, object]] = []

    async def stream(scope: dict[str, object], receive: object, send: Callable[..., object]) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await release.wait()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def send(message: dict[str, object]) -> None:
        received.append(message)

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def scenario() -> None:
        scope = {"type": "http", "method": "GET", "path": "/stream", "headers": []}
        task = asyncio.create_task(RequestContext(stream)(scope, receive, send))  # type: ignore[arg-type]
        for _ in range(100):
            if len(received) == 2:
                break
            await asyncio.sleep(0.01)
        assert [m["type"] for m in received] == ["http.response.start", "http.response.body"]  # before the end
        assert (b"x-request-id", received[0]["headers"][-1][1]) == received[0]["headers"][-1]  # type: ignore[index]
        release.set()
        await task
        assert received[-1]["more_body"] is False

    asyncio.run(scenario())
