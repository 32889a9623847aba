"""Benchmark: peak memory of a 60 MB plot-file upload, and the time to refuse a 1-million-vertex file.

Memory: serves the API (``python -m shanhai.cli serve``, a real uvicorn process on 127.0.0.1) on a fresh
seeded SQLite database, logs in as the demo forestry bureau, creates a project and uploads a synthetic
GeoJSON (or CSV-WKT) file of ``--size-mb`` MB (10^6 bytes): non-overlapping ~1 km circles of ~1,000
vertices in northern Ningxia (inside its boundary, as the province rule requires), streamed from disk by
this process. It waits for the job to end and prints the peak RSS (``VmHWM``, reset just before the
upload so that the login's Argon2 hash does not count) of the API process and its growth over the RSS
before the upload; with ``--broker`` the job runs in a separate Celery worker (``python -m shanhai.cli worker
--pool solo``), whose peak RSS is printed too; without it the job runs inside the API process (the
embedded default).

Refusal: times ``geodata.intake.intake_file`` on a 1,000,000-vertex single-polygon GeoJSON (31 MB)
with the default 100,000-vertex limit, in a fresh process.

``--code`` selects the source tree to measure (default: this one), so the same script measures the
code before a change from a git worktree of it::

    git worktree add --detach /tmp/shanhai-main main
    .venv/bin/python benchmarks/plot_import_memory.py --code /tmp/shanhai-main [--broker redis://127.0.0.1:6379/2]
    .venv/bin/python benchmarks/plot_import_memory.py [--broker redis://127.0.0.1:6379/2]

Options: ``--runs 3`` (the median is printed), ``--format geojson|csv``, ``--skip-refusal``,
``--skip-memory``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parents[1]
BUREAU = ("nx-bureau", "demo-nx-bureau-2026")
SECRET = "benchmark-secret-key-that-is-long-enough-0123456789"
PROJECT = {
    "name": "Memory benchmark",
    "scheme": "forestry_carbon_ticket",
    "province_code": "64",
    "crediting_start": "2026-01-01",
    "crediting_end": "2046-01-01",
}


def circles(vertices: int = 1_000) -> Iterator[tuple[str, list[tuple[float, float]]]]:
    """Yield (code, ring) of non-overlapping ~1 km circles of ``vertices`` vertices on a 0.02° grid."""
    for i in range(100_000):
        x0, y0 = 105.9 + (i % 60) * 0.02, 37.3 + (i // 60) * 0.02  # inside Ningxia, clear of the demo plots
        ring = [
            (round(x0 + 0.005 * math.cos(2 * math.pi * k / vertices), 9),
             round(y0 + 0.005 * math.sin(2 * math.pi * k / vertices), 9))
            for k in range(vertices)
        ]  # fmt: skip
        yield f"M-{i:05d}", [*ring, ring[0]]


def write_upload(path: Path, size_mb: int, kind: str) -> None:
    """Write the synthetic upload of ``size_mb`` MB (10^6 bytes), streamed to disk, never whole in memory."""
    target = size_mb * 1_000_000
    with path.open("w", encoding="utf-8") as out:
        if kind == "csv":
            out.write("code,wkt\n")
            for code, ring in circles():
                out.write(f'{code},"POLYGON (({", ".join(f"{x} {y}" for x, y in ring)}))"\n')
                if out.tell() >= target:
                    return
        out.write('{"type": "FeatureCollection", "features": [')
        for n, (code, ring) in enumerate(circles()):
            geometry = {"type": "Polygon", "coordinates": [ring]}
            feature = {"type": "Feature", "properties": {"code": code}, "geometry": geometry}
            out.write(("," if n else "") + json.dumps(feature))
            if out.tell() >= target:
                break
        out.write("]}")


def env_for(data_dir: Path, broker: str | None, code: Path) -> dict[str, str]:
    """Return the environment of the API, worker and CLI processes of one run."""
    env = {
        **os.environ,
        "PYTHONPATH": str(code),
        "SHANHAI_ENVIRONMENT": "development",
        "SHANHAI_DATA_DIR": str(data_dir),
        "SHANHAI_DATABASE_URL": f"sqlite:///{data_dir / 'shanhai.db'}",
        "SHANHAI_SECRET_KEY": SECRET,
        "SHANHAI_RASTER_DIR": str(code / "samples" / "rasters"),
    }
    env.pop("SHANHAI_BROKER_URL", None)
    if broker is not None:
        env["SHANHAI_BROKER_URL"] = broker
        env["SHANHAI_TASK_QUEUE"] = f"bench-{uuid.uuid4().hex[:8]}"
    return env


def rss_kb(pid: int, field: str) -> int:
    """Return a ``/proc/<pid>/status`` memory field (``VmRSS``, ``VmHWM``) in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def reset_peak(pid: int) -> None:
    """Reset the process's peak RSS to its current RSS (Linux ``clear_refs`` 5).

    Logging in hashes a password with Argon2id (64 MiB): without the reset, that peak hides the upload's.
    """
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def process(argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` as a child process for the block, logging to ``log``; stop it afterwards."""
    with log.open("wb") as out:
        child = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield child
        finally:
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()


def wait_for(url: str, seconds: float = 60) -> None:
    """Wait until ``url`` answers."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in {seconds} s")


def one_memory_run(code: Path, template: Path, upload: Path, broker: str | None, name: str) -> dict[str, Any]:
    """Serve, upload, wait for the job; return the peak RSS figures (MB)."""
    with tempfile.TemporaryDirectory(prefix="shanhai-mem-") as folder:
        data_dir = Path(folder)
        for item in template.iterdir():
            shutil.copy2(item, data_dir / item.name) if item.is_file() else shutil.copytree(item, data_dir / item.name)
        env = env_for(data_dir, broker, code)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        serve = [sys.executable, "-m", "shanhai.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
        with process(serve, env, code, data_dir / "api.log") as api:
            worker_argv = [sys.executable, "-m", "shanhai.cli", "worker", "--pool", "solo", "--loglevel", "WARNING"]
            worker_process = process(worker_argv, env, code, data_dir / "worker.log") if broker else _nothing()
            with worker_process as worker:
                wait_for(f"{base}/api/v1/health")
                with httpx.Client(base_url=base, timeout=600) as client:
                    token = client.post(
                        "/api/v1/auth/token", data={"username": BUREAU[0], "password": BUREAU[1]}
                    ).json()["access_token"]
                    headers = {"Authorization": f"Bearer {token}"}
                    project = client.post("/api/v1/projects", json=PROJECT, headers=headers).json()["id"]
                    time.sleep(1.0)
                    if worker is not None:
                        time.sleep(4.0)  # the worker has connected to the broker
                    for pid in (api.pid, worker.pid if worker is not None else None):
                        if pid is not None:
                            reset_peak(pid)
                    before_kb = rss_kb(api.pid, "VmRSS")
                    worker_before_kb = rss_kb(worker.pid, "VmRSS") if worker is not None else None
                    started = time.perf_counter()
                    with upload.open("rb") as handle:
                        response = client.post(
                            f"/api/v1/projects/{project}/plot-imports",
                            files={"file": (name, handle, "application/octet-stream")},
                            headers=headers,
                        )
                    assert response.status_code == 202, response.text
                    job = response.json()
                    while job["status"] in ("queued", "running"):
                        time.sleep(0.5)
                        job = client.get(f"/api/v1/plot-imports/{job['id']}", headers=headers).json()
                    elapsed_s = time.perf_counter() - started
                api_peak_kb = rss_kb(api.pid, "VmHWM")
                worker_peak_kb = rss_kb(worker.pid, "VmHWM") if worker is not None else None
    return {
        "status": job["status"],
        "error": (job.get("error") or {}).get("detail"),
        "seconds": elapsed_s,
        "api_before_mb": before_kb / 1024,
        "api_peak_mb": api_peak_kb / 1024,
        "api_growth_mb": (api_peak_kb - before_kb) / 1024,
        "worker_before_mb": worker_before_kb / 1024 if worker_before_kb is not None else None,
        "worker_peak_mb": worker_peak_kb / 1024 if worker_peak_kb is not None else None,
    }


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def seeded_template(code: Path, folder: Path) -> Path:
    """Migrate and seed a database once; each run copies it."""
    template = folder / "template"
    template.mkdir()
    env = env_for(template, None, code)
    for argv in (["db", "upgrade"], ["seed"]):
        subprocess.run([sys.executable, "-m", "shanhai.cli", *argv], env=env, cwd=code, check=True, capture_output=True)
    return template


REFUSAL_CHILD = """
import sys, time
from pathlib import Path
from core.errors import ShanhaiError
from geodata.intake import intake_file
data = Path(sys.argv[1]).read_bytes()
started = time.perf_counter()
try:
    intake = intake_file(data, "huge.geojson")
    outcome = f"{len(intake.refused)} refused: " + (intake.refused[0].problems[0]["reason"] if intake.refused else "")
except ShanhaiError as error:
    outcome = f"{error.slug}: {error.detail}"
print(f"{time.perf_counter() - started:.3f}\\t{outcome}")
"""


def refusal_runs(code: Path, folder: Path, runs: int) -> list[tuple[float, str]]:
    """Time the refusal of a 1,000,000-vertex GeoJSON polygon (each run in a fresh process)."""
    path = folder / "huge.geojson"
    count = 1_000_000
    with path.open("w") as out:
        out.write('{"type": "Feature", "properties": {"code": "HUGE"}, "geometry": {"type": "Polygon", ')
        out.write('"coordinates": [[')
        for k in range(count - 1):
            a = 2 * math.pi * k / (count - 1)
            out.write(f"[{106.5 + 0.05 * math.cos(a):.9f}, {35.6 + 0.05 * math.sin(a):.9f}], ")
        out.write("[106.550000000, 35.600000000]]]}}")
    results = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", REFUSAL_CHILD, str(path)],
            env={**os.environ, "PYTHONPATH": str(code)},
            cwd=code,
            check=True,
            capture_output=True,
            text=True,
        )
        seconds, outcome = done.stdout.strip().split("\t", 1)
        results.append((float(seconds), outcome))
    print(f"1M-vertex file: {path.stat().st_size / 1e6:.1f} MB")
    return results


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--code", type=Path, default=HERE, help="source tree to measure (default: this one)")
    parser.add_argument("--size-mb", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--format", choices=("geojson", "csv"), default="geojson")
    parser.add_argument("--broker", default=None, help="e.g. redis://127.0.0.1:6379/2: run the job in a worker")
    parser.add_argument("--skip-refusal", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    code = args.code.resolve()
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=code, capture_output=True, text=True)
    print(f"machine: nproc={os.cpu_count()} {platform.machine()} python {platform.python_version()}")
    print(f"code: {code} at {revision.stdout.strip()}")
    with tempfile.TemporaryDirectory(prefix="shanhai-bench-") as scratch:
        folder = Path(scratch)
        if not args.skip_memory:
            upload = folder / f"upload.{args.format}"
            write_upload(upload, args.size_mb, args.format)
            template = seeded_template(code, folder)
            mode = f"worker via {args.broker}" if args.broker else "job inside the API process (no broker)"
            print(f"upload: {upload.stat().st_size / 1e6:.1f} MB {args.format}; {mode}")
            results = [one_memory_run(code, template, upload, args.broker, upload.name) for _ in range(args.runs)]
            for result in results:
                print("run:", {k: round(v, 1) if isinstance(v, float) else v for k, v in result.items()})
            for key in ("api_peak_mb", "api_growth_mb", "worker_before_mb", "worker_peak_mb", "seconds"):
                values = [r[key] for r in results if r[key] is not None]
                if values:
                    print(f"{key}: median {statistics.median(values):.1f} ({', '.join(f'{v:.1f}' for v in values)})")
        if not args.skip_refusal:
            timings = refusal_runs(code, folder, args.runs)
            print(f"refusal outcome: {timings[0][1][:160]}")
            seconds = [t for t, _ in timings]
            listed = ", ".join(f"{s:.2f}" for s in seconds)
            print(f"1M-vertex refusal (s): median {statistics.median(seconds):.2f} ({listed})")


if __name__ == "__main__":
    main()
