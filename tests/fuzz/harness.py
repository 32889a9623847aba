"""Schemathesis over every API operation with every role's token: the shared driver of the CI fuzz test
(``tests/fuzz/test_api_fuzz.py``) and of the longer run (``benchmarks/fuzz_api.py``).

Each operation of the app's OpenAPI document gets ``examples`` generated cases (positive and negative
generation, derandomised by ``seed``); each case is sent once anonymously and once with the access token of
every demo user (one per organisation kind), in-process through the ASGI app. A response is a failure of the
``not_a_server_error`` check when its status is 5xx; every answer is also checked against the document
(schemathesis' ``response_schema_conformance``, ``status_code_conformance`` and ``content_type_conformance``,
issue 17). Failures are collected (no shrinking, so the budget is spent on coverage) with the operation, the
identity and the request that produced them. The server-sent events
stream is fuzzed too: schemathesis reads a bounded number of its events.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.seed import DEMO_ORGS


@dataclass
class ServerError:
    """One 5xx answer: where, as whom, and the request that produced it."""

    operation: str
    identity: str
    status: int
    request: str
    body: str


#: The document checks every answer goes through (issue 17 item 4).
CONFORMANCE = [response_schema_conformance, status_code_conformance, content_type_conformance]


@dataclass
class Nonconformance:
    """One answer that the OpenAPI document does not describe: where, as whom, which check and why."""

    operation: str
    identity: str
    status: int
    check: str
    request: str


@dataclass
class FuzzReport:
    """What a run covered and what it found."""

    examples_per_operation: int
    operations: list[str] = field(default_factory=list)
    cases: int = 0
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[ServerError] = field(default_factory=list)
    nonconformances: list[Nonconformance] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Return the run's figures as JSON-ready values."""
        return {
            "operations": len(self.operations),
            "examples_per_operation": self.examples_per_operation,
            "cases": self.cases,
            "requests": self.requests,
            "server_errors": len(self.errors),
            "operations_with_server_errors": sorted({e.operation for e in self.errors}),
            "nonconformances": len(self.nonconformances),
            "nonconforming_operations": sorted({f"{n.operation}: {n.check}" for n in self.nonconformances}),
            "statuses": dict(sorted(self.statuses.items())),
            "seconds": round(self.seconds, 1),
        }


def identities(client: TestClient) -> dict[str, dict[str, str]]:
    """Return the headers of every identity: anonymous and each demo user's bearer token."""
    result: dict[str, dict[str, str]] = {"anonymous": {}}
    for demo in DEMO_ORGS:
        response = client.post("/api/v1/auth/token", data={"username": demo.username, "password": demo.password})
        response.raise_for_status()
        result[demo.kind.value] = {"Authorization": f"Bearer {response.json()['access_token']}"}
    return result


def _conform(report: FuzzReport, case: Any, response: Any, label: str, identity: str) -> None:
    """Record every way ``response`` departs from the document (at most one record per check and operation)."""
    try:
        case.validate_response(response, checks=CONFORMANCE)
    except (Failure, FailureGroup) as error:
        failures = error.exceptions if isinstance(error, FailureGroup) else (error,)
        seen = {(n.operation, n.check) for n in report.nonconformances}
        for failure in failures:
            check = f"{getattr(failure, 'title', type(failure).__name__)}: {str(failure)[:300]}"
            if (label, check) not in seen:
                report.nonconformances.append(
                    Nonconformance(label, identity, response.status_code, check, _describe(case))
                )


def _describe(case: Any) -> str:
    return f"{case.method} {case.formatted_path} query={case.query!r} body={case.body!r}"[:2000]


def fuzz(
    app: FastAPI,
    *,
    examples: int,
    seed: int = 16,
    only: Callable[[str], bool] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> FuzzReport:
    """Fuzz every operation of ``app`` (``examples`` cases each, every identity) and report.

    Args:
        app: The application, on the database to fuzz (it is written to).
        examples: Generated cases per operation.
        seed: Hypothesis seed; a run is reproducible for a given seed and schema.
        only: Keep the operations (``"METHOD /path"``) for which it is true.
        progress: Called after each operation with its label and the 5xx count so far.
    """
    started = time.perf_counter()
    report = FuzzReport(examples_per_operation=examples)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    with TestClient(app, raise_server_exceptions=False) as client:
        headers_of = identities(client)
        for result in schema.get_all_operations():
            operation = result.ok()
            label = f"{operation.method.upper()} {operation.path}"
            if only is not None and not only(label):
                continue
            report.operations.append(label)
            strategy = st.one_of(
                operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
            )

            @hypothesis.settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=False,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
                report_multiple_bugs=False,
            )
            @hypothesis.seed(seed)
            @hypothesis.given(case=strategy)
            def run(case: Any) -> None:
                case_label = f"{case.method.upper()} {case.path}"
                report.cases += 1
                for identity, headers in headers_of.items():
                    report.requests += 1
                    try:
                        response = case.call(headers=headers)
                    except Exception as error:  # in-process, an unhandled error is the app's 500
                        # Starlette's ServerErrorMiddleware sends the 500, then re-raises: in-process it lands here.
                        report.statuses[500] += 1
                        report.errors.append(ServerError(case_label, identity, 500, _describe(case), repr(error)[:500]))
                        continue
                    report.statuses[response.status_code] += 1
                    _conform(report, case, response, case_label, identity)
                    if response.status_code >= 500:
                        body = response.text[:500]
                        report.errors.append(
                            ServerError(case_label, identity, response.status_code, _describe(case), body)
                        )

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # schemathesis' own deprecation notices are not the app's
                run()
            if progress is not None:
                progress(label, len(report.errors))
    report.seconds = time.perf_counter() - started
    return report
