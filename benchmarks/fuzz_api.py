"""The longer schemathesis run: every operation, every role's token, on a fresh PostgreSQL database.

Usage::

    SHANHAI_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/shanhai_fuzz \
        .venv/bin/python benchmarks/fuzz_api.py --examples 50 --json /tmp/fuzz.json

A database named after ``SHANHAI_TEST_POSTGRES_URL`` (suffixed with the process id) is created, migrated,
seeded with the demo organisations, projects and rasters, fuzzed and dropped. Each operation of the OpenAPI
document gets ``--examples`` generated cases (positive and negative), each sent anonymously and with the
token of every demo user; ``--seed`` makes a run reproducible. It prints the figures (operations, cases,
requests, statuses, 5xx count and where) and every server error with the request that produced it, and
exits 1 if there was any. The CI run of the same driver is ``tests/fuzz/test_api_fuzz.py`` (fewer examples).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.seed import seed_demo, seed_rasters
from core.clock import SystemClock
from core.db import make_engine, make_session_factory
from core.settings import Settings
from shanhai.app import create_app
from tests.conftest import SAMPLES, TEST_SECRET, fresh_postgres_database
from tests.fuzz.harness import fuzz


def main() -> int:
    """Run the fuzz and report; exit status 1 when any operation answered a 5xx."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=50, help="generated cases per operation")
    parser.add_argument("--seed", type=int, default=16, help="Hypothesis seed")
    parser.add_argument("--only", default="", help="fuzz only operations whose 'METHOD /path' contains this")
    parser.add_argument("--json", type=Path, help="also write the figures and errors here")
    args = parser.parse_args()
    with fresh_postgres_database("_fuzzbench") as url, tempfile.TemporaryDirectory() as data_dir:
        engine = make_engine(url)
        with make_session_factory(engine)() as session:
            seed_demo(session, SAMPLES, clock=SystemClock())
            seed_rasters(session, SAMPLES / "rasters", clock=SystemClock())
        engine.dispose()
        settings = Settings(environment="test", data_dir=Path(data_dir), database_url=url,
                            raster_dir=SAMPLES / "rasters", secret_key=TEST_SECRET)  # type: ignore[arg-type]  # fmt: skip
        app = create_app(settings)
        report = fuzz(
            app,
            examples=args.examples,
            seed=args.seed,
            only=(lambda label: args.only in label) if args.only else None,
            progress=lambda label, errors: print(f"{label}: {errors} server errors so far", file=sys.stderr),
        )
        app.state.engine.dispose()
    summary = report.summary()
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    for error in report.errors:
        print(f"{error.operation} as {error.identity}: {error.status} {error.request}\n    {error.body}")
    if args.json:
        errors = [vars(error) for error in report.errors]
        args.json.write_text(json.dumps({"summary": summary, "errors": errors}, indent=2, ensure_ascii=False))
    return 1 if report.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
