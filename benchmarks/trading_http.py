"""Order entry over HTTP on PostgreSQL: 16 concurrent clients, sustained orders/s, p50/p99, invariants after.

Usage::

    python benchmarks/trading_http.py postgresql+psycopg://postgres@127.0.0.1:5432/shanhai_bench \
        --clients 16 --seconds 20 --processes 2

The database must exist and be empty or previously prepared by this script: it is migrated, seeded with
the demo organisations, and given the market of ``trading_concurrency.prepare``. The script starts
``--processes`` API processes (one ``uvicorn`` each, on consecutive ports; the clients are spread over them
round-robin, as a load balancer in front of them would), logs the demo traders in, and runs ``--clients`` threads that
each POST random crossing limit orders (with an ``Idempotency-Key``) for ``--seconds``. It reports the
acknowledged orders per second and the latency percentiles of the successful (201) answers, then runs the
same invariant checks as ``trading_concurrency.check``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from statistics import quantiles
from typing import Any

import httpx
from sqlalchemy import text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from trading_concurrency import INSTRUMENT, check, prepare  # noqa: E402

from api.seed import DEMO_ORGS, seed_demo  # noqa: E402
from core.clock import SystemClock  # noqa: E402
from core.db import make_engine, make_session_factory  # noqa: E402
from core.migrate import upgrade  # noqa: E402

PORT = 8765
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU seconds a process has used (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def server_pids(root: int) -> list[int]:
    """Return uvicorn's process and its worker processes."""
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            children = (task / "children").read_text().split() if (task / "children").exists() else []
            todo.extend(int(c) for c in children)
    return pids


def backend_pids(url: str) -> list[int]:
    """Return the PostgreSQL backends connected to the benchmark database."""
    engine = make_engine(url)
    with engine.connect() as connection:
        pids = [int(p) for p in connection.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        ).scalars()]  # fmt: skip
    engine.dispose()
    return pids


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    """Start one API process (uvicorn) on the benchmark database and wait until it answers."""
    env = {**os.environ, "SHANHAI_DATABASE_URL": url, "SHANHAI_SECRET_KEY": "bench-" + "x" * 40,
           "SHANHAI_ENVIRONMENT": "development", "SHANHAI_ACCESS_TOKEN_MINUTES": "120"}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "shanhai.app:create_app", "--factory", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=REPO, env=env,
    )  # fmt: skip
    for _ in range(200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the server did not start")


def client(headers: dict[str, dict[str, str]], seed: int, seconds: float, out: list[tuple[float, int, int]],
           port: int) -> None:  # fmt: skip
    """One client: random crossing orders; records (latency s, status, order id)."""
    rng = random.Random(seed)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            side = rng.choice(["buy", "sell"])
            who = rng.choice(["enterprise", "forest_owner"] if side == "buy" else ["forestry_bureau", "enterprise"])
            body = {"instrument_id": INSTRUMENT, "side": side, "price_cny": f"{rng.randint(5950, 6050) / 100:.2f}",
                    "quantity_t": rng.randint(1, 20)}  # fmt: skip
            started = time.perf_counter()
            response = http.post("/api/v1/orders", json=body,
                                 headers=headers[who] | {"Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
            elapsed = time.perf_counter() - started
            order_id = response.json().get("order_id", 0) if response.status_code == 201 else 0
            out.append((elapsed, response.status_code, order_id))


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--processes", type=int, default=2, help="API processes (one uvicorn each)")
    args = parser.parse_args()
    upgrade(args.url)
    engine = make_engine(args.url)
    with make_session_factory(engine)() as session:
        seed_demo(session, REPO / "samples", clock=SystemClock())
    engine.dispose()
    prepare(args.url)
    ports = [PORT + i for i in range(args.processes)]
    servers: list[subprocess.Popen[bytes]] = []
    try:
        servers.extend(start_server(args.url, port) for port in ports)
        users = {demo.kind.value: demo for demo in DEMO_ORGS}
        headers = {}
        for role in ("enterprise", "forest_owner", "forestry_bureau"):
            token = httpx.post(f"http://127.0.0.1:{PORT}/api/v1/auth/token",
                               data={"username": users[role].username, "password": users[role].password})  # fmt: skip
            headers[role] = {"Authorization": f"Bearer {token.json()['access_token']}"}
        results: list[tuple[float, int, int]] = []
        threads = [threading.Thread(target=client,
                                    args=(headers, seed, args.seconds, results, ports[seed % len(ports)]))
                   for seed in range(args.clients)]  # fmt: skip
        started = time.monotonic()
        for thread in threads:
            thread.start()
        time.sleep(min(2.0, args.seconds / 2))
        # CPU is counted from here: the pools and any matcher process (SHANHAI_MATCHER_PROCESS) exist by now.
        counted = time.monotonic()
        count_from = len(results)
        workers = [pid for server in servers for pid in server_pids(server.pid)]
        cpu_before = {pid: cpu_seconds(pid) for pid in workers}
        client_before = time.process_time()
        backends = backend_pids(args.url)
        backend_before = {pid: cpu_seconds(pid) for pid in backends}
        for thread in threads:
            thread.join()
        elapsed, counted = time.monotonic() - started, time.monotonic() - counted
        counted_orders = sum(1 for r in results[count_from:] if r[1] == 201)
        cpu = {
            "server_s": sum(max(0.0, cpu_seconds(pid) - cpu_before[pid]) for pid in workers),
            "postgres_s": sum(max(0.0, cpu_seconds(pid) - backend_before[pid]) for pid in backends),
            "client_s": time.process_time() - client_before,
        }
    finally:
        for server in servers:
            server.terminate()
            server.wait()
    ok = [r for r in results if r[1] == 201]
    cuts = quantiles([r[0] for r in ok], n=100)
    statuses: dict[int, int] = {}
    for _, status, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    figures: dict[str, Any] = {
        "clients": args.clients, "api_processes": args.processes, "seconds": round(elapsed, 1),
        "acknowledged": len(ok), "orders_per_s": round(len(ok) / elapsed, 1), "statuses": statuses,
        "p50_ms": round(cuts[49] * 1000, 1), "p99_ms": round(cuts[98] * 1000, 1),
        "nproc": os.cpu_count(), "load_average_1min": os.getloadavg()[0],
        # CPU per acknowledged order (ms) after the first 2 s: where the two cores went (API processes with
        # their matcher processes, PostgreSQL backends, this client).
        "cpu_ms_per_order": {k.removesuffix("_s"): round(v * 1000 / max(counted_orders, 1), 1) for k, v in cpu.items()},
        "cpu_counted_s": round(counted, 1),
    }  # fmt: skip
    figures["checks"] = check(args.url, {r[2] for r in ok})
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
