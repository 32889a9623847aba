"""Server render time of each web page on the demo data: p50 and p95 over N requests (issue 20: ≤ 150 ms p95).

Builds a migrated, demo-seeded SQLite database in a temporary directory, verifies and issues the demo Haicang
report and retires 100 t (so every page has rows and a certificate), then times ``GET`` of each page in-process
(Starlette's TestClient: routing, the page's queries, Jinja2 rendering and the middleware; no network, no
browser). Logged in as the forestry bureau, so the sheet renders too. Run::

    .venv/bin/python benchmarks/web_render.py [--requests 50] [--language zh-CN]

Reference (2 cores shared with five other builds, load ≈ 6, 30 requests each, zh-CN), p50 / p95 ms: ``/`` 10.6 /
30.5; ``/registry/projects`` 18.7 / 37.5; ``/registry/projects/SH-64-000001`` 30.7 / 66.9; ``/registry/retirements``
5.1 / 14.9; ``/registry/retirements.csv`` 8.2 / 142.2 (one outlier under load); ``/verify`` 6.5 / 21.6;
``/verify/{code}`` 18.0 / 30.4; ``/login`` 10.2 / 24.6; ``/reports/1/sheet`` 15.1 / 54.6 — every page under 150 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.seed import DEMO_ORGS, seed_demo  # noqa: E402
from core.auth import Organisation, OrgKind  # noqa: E402
from core.clock import FixedClock  # noqa: E402
from core.db import make_engine, make_session_factory  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from core.settings import Settings  # noqa: E402
from shanhai.app import create_app  # noqa: E402

PASSWORDS = {demo.username: demo.password for demo in DEMO_ORGS}


def prepare(client: TestClient, app: object) -> str:
    """Verify and issue the Haicang report, give 300 t to the enterprise, retire 100 t; return the code."""

    def token(user: str) -> dict[str, str]:
        answer = client.post("/api/v1/auth/token", data={"username": user, "password": PASSWORDS[user]})
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    bureau = token("nx-bureau")
    reports = client.get("/api/v1/projects/1/monitoring-reports", headers=bureau).json()
    report = next(r for r in reports if r["methodology"]["id"] == "FJ-FORESTRY-CARBON-TICKET")
    client.post(f"/api/v1/monitoring-reports/{report['id']}/verify", json={"comment": "ok"}, headers=token("verifier"))
    client.post(f"/api/v1/monitoring-reports/{report['id']}/issue", json={}, headers=token("registry"))
    with app.state.session_factory() as session:  # type: ignore[attr-defined]
        enterprise = session.scalars(select(Organisation.id).where(Organisation.kind == OrgKind.ENTERPRISE)).one()
    client.post("/api/v1/transfers", json={"to_organisation_id": enterprise, "quantity_t": 300}, headers=bureau)
    body = {"quantity_t": 100, "beneficiary": "厦门海沧港务", "purpose": "2025 offset", "reporting_year": 2025}
    retired = client.post("/api/v1/retirements", headers=token("fj-enterprise"), json=body)
    return str(retired.json()["verification_code"])


def main() -> int:
    """Time every page and print a table; exit 1 when a page's p95 is over the budget."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--language", default="zh-CN")
    parser.add_argument("--budget-ms", type=float, default=150.0)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="shanhai-web-bench-"))
    url = f"sqlite:///{data / 'shanhai.db'}"
    upgrade(url)
    engine = make_engine(url)
    clock = FixedClock(datetime(2026, 11, 25, 9, 30, tzinfo=UTC))
    with make_session_factory(engine)() as session:
        seed_demo(session, ROOT / "samples", clock=clock)
    engine.dispose()
    app = create_app(Settings(environment="test", data_dir=data, database_url=url), clock=clock)
    over = []
    with TestClient(app) as client:
        code = prepare(client, app)
        login = client.get("/login").text.split('name="csrf_token" value="')[1][:64]
        client.post("/login", data={"username": "nx-bureau", "password": PASSWORDS["nx-bureau"], "csrf_token": login})
        pages = ["/", "/registry/projects", "/registry/projects/SH-64-000001", "/registry/retirements",
                 "/registry/retirements.csv", "/verify", f"/verify/{code}", "/login", "/reports/1/sheet"]  # fmt: skip
        print(f"{'page':40} {'p50 ms':>8} {'p95 ms':>8}")
        for page in pages:
            times = []
            for _ in range(args.requests):
                start = time.perf_counter()
                answer = client.get(page, headers={"Accept-Language": args.language})
                times.append((time.perf_counter() - start) * 1000)
                assert answer.status_code == 200, (page, answer.status_code)
            p95 = statistics.quantiles(times, n=20)[-1]
            print(f"{page:40} {statistics.median(times):8.1f} {p95:8.1f}")
            if p95 > args.budget_ms:
                over.append(page)
    app.state.engine.dispose()
    if over:
        print(f"over the {args.budget_ms:.0f} ms p95 budget: {', '.join(over)}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
