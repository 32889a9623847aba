"""Order entry over HTTP on PostgreSQL against the bare-stack ceiling, in the same run: orders/s, p50/p99, ratio.

Usage::

    SHANHAI_MATCHER_PROCESS=true python benchmarks/trading_http.py \
        postgresql+psycopg://postgres@127.0.0.1:5432/shanhai_bench \
        --ceiling-url postgresql+psycopg://postgres@127.0.0.1:5432/ceiling \
        --clients 16 --seconds 20 --processes 1 --instruments 1 --instruments 16 --runs 3

Both databases must exist. The Shanhai one is migrated, seeded with the demo organisations and given the
market of ``trading_concurrency.prepare`` (as many instruments as the largest ``--instruments``, one vintage
each); the ceiling's table is made by its app. The script starts ``--processes`` Shanhai API processes and
as many processes of the frozen bare endpoint (``--ceiling-dir``: ``ceiling_app.py``, FastAPI + pydantic +
one SQLAlchemy INSERT, no domain work; its definition is not ours to change), each ``uvicorn`` on its own
port, clients spread over them round-robin as behind a load balancer. Then, ``--runs`` times, it drives each
side in turn for ``--seconds`` with the same ``--clients`` closed-loop threads (the shape of the baseline's
``load.py``: one ``httpx.Client`` per thread, random crossing limit orders, an ``Idempotency-Key`` each) —
the bare endpoint, then Shanhai with the clients on 1 instrument, then on N instruments (client ``i`` trades
instrument ``i mod N``), the order rotated run by run so that neither side always goes first on a shared,
noisy machine (after ``--warmup`` seconds of unmeasured load on each side, so that no run pays for
starting a matcher process or building a book from the journal). Each Shanhai run ends with the invariant
checks of ``trading_concurrency.check`` (no lost
acknowledged order, no double fill, consecutive journals, conserved cash and tonnes, rebuilt books = open
orders). It prints every run, then the medians and the ratios to the bare endpoint's median:
``ratio = shanhai orders/s ÷ bare orders/s`` and ``p99 ratio = shanhai p99 ÷ bare p99``.
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
from statistics import median, quantiles
from typing import Any

import httpx
from sqlalchemy import text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from trading_concurrency import check, prepare  # noqa: E402

from api.seed import DEMO_ORGS, seed_demo  # noqa: E402
from core.clock import SystemClock  # noqa: E402
from core.db import make_engine, make_session_factory  # noqa: E402
from core.migrate import upgrade  # noqa: E402

PORT = 8765  # Shanhai's API processes on PORT, PORT + 1, …; the bare endpoint's from PORT + 50
CEILING_DIR = REPO.parent / "shared" / "peers" / "http"
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


def wait_until_up(server: subprocess.Popen[bytes], url: str) -> subprocess.Popen[bytes]:
    """Wait until a started server answers ``url``; kill it and raise if it never does."""
    for _ in range(300):
        if server.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with {server.returncode}")
        try:
            httpx.get(url)
            return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError(f"the server for {url} did not start")


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    """Start one Shanhai API process (uvicorn) on the benchmark database and wait until it answers."""
    env = {**os.environ, "SHANHAI_DATABASE_URL": url, "SHANHAI_SECRET_KEY": "bench-" + "x" * 40,
           "SHANHAI_ENVIRONMENT": "development", "SHANHAI_ACCESS_TOKEN_MINUTES": "120"}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "shanhai.app:create_app", "--factory", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=REPO, env=env,
    )  # fmt: skip
    return wait_until_up(server, f"http://127.0.0.1:{port}/health")


def start_ceiling(url: str, port: int, directory: Path) -> subprocess.Popen[bytes]:
    """Start one process of the frozen bare endpoint (its ``ceiling_app.py`` as it is) and wait until it answers."""
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "ceiling_app:app", "--app-dir", str(directory), "--port", str(port),
         "--no-access-log", "--log-level", "warning"],
        env={**os.environ, "CEILING_DB": url},
    )  # fmt: skip
    return wait_until_up(server, f"http://127.0.0.1:{port}/docs")


Sample = tuple[float, int, int]  # latency s, status, order id (0 unless a 201 from Shanhai)


def client(base: str, path: str, headers: Any, instrument_id: str, seed: int, seconds: float,
           out: list[Sample]) -> None:  # fmt: skip
    """One closed-loop client (the baseline ``load.py``'s shape): random crossing orders, an Idempotency-Key each.

    ``headers`` maps a side to the traders' headers (Shanhai) or is empty (the bare endpoint has no auth).
    """
    rng = random.Random(seed)
    with httpx.Client(base_url=base, timeout=30) as http:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            side = rng.choice(["buy", "sell"])
            auth = rng.choice(headers[side]) if headers else {}
            body = {"instrument_id": instrument_id, "side": side, "price_cny": f"{rng.randint(5950, 6050) / 100:.2f}",
                    "quantity_t": rng.randint(1, 20)}  # fmt: skip
            started = time.perf_counter()
            try:
                response = http.post(path, json=body, headers=auth | {"Idempotency-Key": uuid.uuid4().hex})
            except httpx.HTTPError:  # a dropped connection counts as status 0; the client goes on
                out.append((time.perf_counter() - started, 0, 0))
                continue
            elapsed = time.perf_counter() - started
            order_id = response.json().get("order_id", 0) if response.status_code == 201 else 0
            out.append((elapsed, response.status_code, order_id))


def drive(servers: list[subprocess.Popen[bytes]], ports: list[int], path: str, headers: Any,
          instrument_ids: list[str], args: argparse.Namespace,
          backends: Any) -> tuple[list[Sample], dict[str, Any]]:  # fmt: skip
    """Run the clients against one side for ``--seconds``; return the samples and the run's figures."""
    results: list[Sample] = []
    threads = [threading.Thread(target=client, args=(f"http://127.0.0.1:{ports[i % len(ports)]}", path, headers,
                                                     instrument_ids[i % len(instrument_ids)], i, args.seconds,
                                                     results))
               for i in range(args.clients)]  # fmt: skip
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
    pg = backends()
    backend_before = {pid: cpu_seconds(pid) for pid in pg}
    for thread in threads:
        thread.join()
    elapsed, counted = time.monotonic() - started, time.monotonic() - counted
    counted_orders = sum(1 for r in results[count_from:] if r[1] == 201)
    cpu = {
        "server_s": sum(max(0.0, cpu_seconds(pid) - cpu_before[pid]) for pid in workers),
        "postgres_s": sum(max(0.0, cpu_seconds(pid) - backend_before[pid]) for pid in pg),
        "client_s": time.process_time() - client_before,
    }
    ok = [r for r in results if r[1] == 201]
    cuts = quantiles([r[0] for r in ok], n=100) if len(ok) > 1 else [0.0] * 99
    statuses: dict[int, int] = {}
    for _, status, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    figures: dict[str, Any] = {
        "seconds": round(elapsed, 1), "acknowledged": len(ok), "orders_per_s": round(len(ok) / elapsed, 1),
        "p50_ms": round(cuts[49] * 1000, 1), "p99_ms": round(cuts[98] * 1000, 1), "statuses": statuses,
        "load_average_1min": round(os.getloadavg()[0], 2),
        # CPU per acknowledged order (ms) after the first 2 s: API processes with their matcher processes,
        # PostgreSQL backends of the side's database, this client process.
        "cpu_ms_per_order": {k.removesuffix("_s"): round(v * 1000 / max(counted_orders, 1), 1) for k, v in cpu.items()},
    }  # fmt: skip
    return results, figures


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the Shanhai benchmark database")
    parser.add_argument("--ceiling-url", required=True, help="the bare endpoint's database (its own)")
    parser.add_argument("--ceiling-dir", type=Path, default=CEILING_DIR, help="where ceiling_app.py is")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--processes", type=int, default=1, help="API processes of each side (one uvicorn each)")
    parser.add_argument("--instruments", type=int, action="append", default=[],
                        help="instruments the clients spread over in a Shanhai run (repeat: one run each)")  # fmt: skip
    parser.add_argument("--runs", type=int, default=3, help="rounds; each side's figures are the median")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds of unmeasured load on each side first")
    parser.add_argument("--port", type=int, default=PORT)
    args = parser.parse_args()
    counts = args.instruments or [1]
    if not (args.ceiling_dir / "ceiling_app.py").exists():
        parser.error(f"no ceiling_app.py in {args.ceiling_dir} (--ceiling-dir)")
    upgrade(args.url)
    engine = make_engine(args.url)
    with make_session_factory(engine)() as session:
        seed_demo(session, REPO / "samples", clock=SystemClock())
    engine.dispose()
    instrument_ids = prepare(args.url, max(counts))
    ports = [args.port + i for i in range(args.processes)]
    ceiling_ports = [args.port + 50 + i for i in range(args.processes)]
    servers: list[subprocess.Popen[bytes]] = []
    ceilings: list[subprocess.Popen[bytes]] = []
    runs: dict[str, list[dict[str, Any]]] = {"bare": [], **{f"shanhai_{n}": [] for n in counts}}
    try:
        servers.extend(start_server(args.url, port) for port in ports)
        ceilings.extend(start_ceiling(args.ceiling_url, port, args.ceiling_dir) for port in ceiling_ports)
        users = {demo.kind.value: demo for demo in DEMO_ORGS}
        auth = {}
        for role in ("enterprise", "forest_owner", "forestry_bureau"):
            token = httpx.post(f"http://127.0.0.1:{ports[0]}/api/v1/auth/token",
                               data={"username": users[role].username, "password": users[role].password})  # fmt: skip
            auth[role] = {"Authorization": f"Bearer {token.json()['access_token']}"}
        headers = {"buy": [auth["enterprise"], auth["forest_owner"]],
                   "sell": [auth["forestry_bureau"], auth["enterprise"]]}  # fmt: skip
        sides = list(runs)
        if args.warmup > 0:  # start the matcher processes, build the engines, fill the pools: not measured
            warm = argparse.Namespace(**{**vars(args), "seconds": args.warmup})
            drive(ceilings, ceiling_ports, "/orders", {}, ["FCT-2025"], warm, list)
            drive(servers, ports, "/api/v1/orders", headers, instrument_ids, warm, list)
        for round_ in range(args.runs):
            for name in sides[round_ % len(sides) :] + sides[: round_ % len(sides)]:  # rotate who goes first
                if name == "bare":
                    _, figures = drive(ceilings, ceiling_ports, "/orders", {}, ["FCT-2025"], args,
                                       lambda: backend_pids(args.ceiling_url))  # fmt: skip
                else:
                    n = int(name.removeprefix("shanhai_"))
                    results, figures = drive(servers, ports, "/api/v1/orders", headers, instrument_ids[:n], args,
                                             lambda: backend_pids(args.url))  # fmt: skip
                    figures["checks"] = check(args.url, {r[2] for r in results if r[1] == 201}, instrument_ids)
                figures["round"] = round_ + 1
                runs[name].append(figures)
                print(json.dumps({name: figures}), flush=True)
    finally:
        for server in [*servers, *ceilings]:
            server.terminate()
            server.wait()
    summary: dict[str, Any] = {"clients": args.clients, "api_processes": args.processes, "seconds": args.seconds,
                               "runs": args.runs, "nproc": os.cpu_count()}  # fmt: skip
    bare = {k: median(r[k] for r in runs["bare"]) for k in ("orders_per_s", "p50_ms", "p99_ms")}
    summary["bare"] = bare
    for n in counts:
        side = {k: median(r[k] for r in runs[f"shanhai_{n}"]) for k in ("orders_per_s", "p50_ms", "p99_ms")}
        side["ratio"] = round(side["orders_per_s"] / bare["orders_per_s"], 3)
        side["p99_ratio"] = round(side["p99_ms"] / bare["p99_ms"], 2)
        # per round, against the bare run of the same round (the machine's speed moves between rounds)
        side["ratios_by_round"] = [round(s["orders_per_s"] / b["orders_per_s"], 3)
                                   for s, b in zip(runs[f"shanhai_{n}"], runs["bare"], strict=True)]  # fmt: skip
        summary[f"shanhai_{n}_instruments"] = side
    if len(counts) > 1:
        one = summary[f"shanhai_{counts[0]}_instruments"]["orders_per_s"]
        for n in counts[1:]:
            summary[f"instruments_{n}_vs_{counts[0]}"] = round(
                summary[f"shanhai_{n}_instruments"]["orders_per_s"] / one, 3
            )
    print(json.dumps({"medians": summary}, indent=2))


if __name__ == "__main__":
    main()
