"""The README's tour runs as written (issue 15): the ``sh`` block between its ``tour:begin``/``tour:end`` markers is
extracted and run with bash and curl against a live server that this test starts as ``make run`` does (migrate,
seed the demo data, serve) on a free port of 127.0.0.1, with its own data directory.

The tour runs in a scratch directory laid out like the repository root (``samples/`` and ``.venv/bin/shanhai``,
the latter running this checkout's CLI) so the files it downloads stay out of the checkout. The whole block must
exit 0 under ``bash -euo pipefail``; then the test checks its key outcomes against the server itself: the
retirement's verification code verifies publicly, the certificate is a PDF, the trades settled, the auction is
announced with the enterprise's bid, the plot file's job succeeded. Skipped, with the reason, only where bash,
curl (7.76+, for ``--fail-with-body``), python3 or GNU date is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- tour:begin", "<!-- tour:end -->"
SERVER_START_S = 180
TOUR_TIMEOUT_S = 300


def tour_block(readme: str) -> str:
    """Return the one ``sh`` block between the tour markers of the README."""
    start = readme.index(BEGIN)
    section = readme[start : readme.index(END, start)]
    blocks = re.findall(r"^```sh\n(.*?)^```$", section, flags=re.DOTALL | re.MULTILINE)
    assert len(blocks) == 1, f"the tour markers must hold exactly one sh block, found {len(blocks)}"
    return str(blocks[0])


def missing_tool() -> str | None:
    """Return why the tour cannot run here (a tool it uses is missing), or ``None``."""
    for tool in ("bash", "curl", "python3", "date"):
        if shutil.which(tool) is None:
            return f"the README tour needs {tool}, which is not on PATH"
    help_text = subprocess.run(["curl", "--help", "all"], capture_output=True, text=True, check=False).stdout
    if "--fail-with-body" not in help_text:
        return "the README tour needs curl 7.76 or later (--fail-with-body)"
    if subprocess.run(["date", "-u", "-d", "+10 minutes"], capture_output=True, check=False).returncode != 0:
        return "the README tour computes its dates with GNU date (date -d), which this date is not"
    return None


def clean_env(**extra: str) -> dict[str, str]:
    """Return the environment without any SHANHAI_ setting of the caller, plus this checkout on PYTHONPATH."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SHANHAI_")}
    return env | {"PYTHONPATH": str(ROOT)} | extra


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """Serve the demo as ``make run`` does (``shanhai run``: upgrade, seed, serve) and yield its base URL."""
    reason = missing_tool()
    if reason is not None:
        pytest.skip(reason)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = clean_env(SHANHAI_DATA_DIR=str(tmp_path / "var"), SHANHAI_RASTER_DIR=str(ROOT / "samples" / "rasters"),
                    SHANHAI_PUBLIC_BASE_URL=url)  # fmt: skip
    command = [sys.executable, "-m", "shanhai.cli", "run", "--host", "127.0.0.1", "--port", str(port),
               "--samples", str(ROOT / "samples")]  # fmt: skip
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + SERVER_START_S
            while True:
                if process.poll() is not None:
                    pytest.fail(f"the server exited ({process.returncode}):\n{log_path.read_text()[-3000:]}")
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"the server did not answer within {SERVER_START_S} s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.3)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def repository_like(folder: Path) -> Path:
    """Lay out ``folder`` like the repository root the README runs from: samples/ and .venv/bin/shanhai."""
    folder.mkdir()
    (folder / "samples").symlink_to(ROOT / "samples", target_is_directory=True)
    shanhai = folder / ".venv" / "bin" / "shanhai"
    shanhai.parent.mkdir(parents=True)
    shanhai.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m shanhai.cli "$@"\n', encoding="utf-8")
    shanhai.chmod(0o755)
    return folder


def test_the_tour_block_is_marked_once() -> None:
    block = tour_block((ROOT / "README.md").read_text(encoding="utf-8"))
    assert "--fail-with-body" in block and "localhost:8000" not in block


def test_the_readme_tour_runs_as_written(server: str, tmp_path: Path) -> None:
    script = tmp_path / "tour.sh"
    script.write_text(tour_block((ROOT / "README.md").read_text(encoding="utf-8")), encoding="utf-8")
    work = repository_like(tmp_path / "checkout")
    done = subprocess.run(["bash", "-euo", "pipefail", str(script)], cwd=work, env=clean_env(API=server),
                          capture_output=True, text=True, timeout=TOUR_TIMEOUT_S, check=False)  # fmt: skip
    assert done.returncode == 0, f"the tour failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    out = done.stdout

    # The file job ran to the end and the report's trace recomputes offline.
    imported = re.search(r"^plot import \d+: succeeded (.*)$", out, flags=re.MULTILINE)
    assert imported is not None and "'accepted': 3" in imported.group(1), out
    assert "matches: the record is reproduced byte for byte" in out

    # The retirement's verification code verifies publicly (no login), and its certificate is a PDF.
    found = re.search(r"^retired: verification code (\S+)$", out, flags=re.MULTILINE)
    assert found is not None, out
    code = found.group(1)
    public = httpx.get(f"{server}/public/v1/retirements/{code}", timeout=10)
    assert public.status_code == 200, public.text
    assert public.json()["verification_code"] == code and public.json()["quantity_t"] == 100
    assert public.json()["beneficiary"] == "Xiamen Haicang port"
    assert (work / "certificate.pdf").read_bytes().startswith(b"%PDF")

    # The book trade settled, and the block trade too unless the tour said the block desk was closed.
    trades = httpx.get(f"{server}/public/v1/market/instruments/FCT-2025/trades", timeout=10).json()["items"]
    modes = sorted(trade["mode"] for trade in trades)
    skipped = "block trade skipped: the block desk is closed at weekends" in out
    assert modes == (["book"] if skipped else ["block", "book"]), trades

    # The auction is announced with one bid; the GEP run's tables came down.
    [auction] = httpx.get(f"{server}/public/v1/auctions", timeout=10).json()["items"]
    assert (auction["status"], auction["bids"], auction["quantity_t"]) == ("announced", 1, 100)
    assert (work / "gep.xlsx").stat().st_size > 0 and (work / "var" / "gep-demo").is_dir()
