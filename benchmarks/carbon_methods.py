"""Benchmark: one forestry-carbon-ticket monitoring report over 10,000 sub-compartments.

Each run validates the serialised inputs (JSON → pydantic), computes the report with its full trace
(every sub-compartment's increment and removal, deductions, buffer, flooring) and hashes the canonical
record. The target is ≤ 2 s per report. Prints the machine, every run and the median.

Run: ``.venv/bin/python benchmarks/carbon_methods.py [--sub-compartments N] [--runs R]``.
The inputs are synthetic (deterministic pseudo-random volumes, six species groups).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Any

from carbon.methods.fujian_ticket import FORESTRY_CARBON_TICKET, TicketInputs
from carbon.parameters.loader import load_parameter_set

SPECIES = ("pinus", "populus", "larix", "picea", "betula", "quercus")
TARGET_S = 2.0


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def report_document(count: int) -> dict[str, Any]:
    """Return a deterministic ticket report with ``count`` sub-compartments and a few registrations."""
    sub_compartments = []
    for i in range(count):
        start = 40 + (i * 37) % 160
        sub_compartments.append(
            {
                "sub_compartment_id": f"XB-{i:06d}",
                "area_m2": str(2_000 + (i * 7_919) % 120_000),
                "owner": f"village-{i % 97}",
                "species": SPECIES[i % len(SPECIES)],
                "start": {"stock_volume_m3_per_ha": f"{start}.{i % 10}"},
                "end": {"stock_volume_m3_per_ha": f"{start + 5 + (i * 13) % 40}.{(i * 3) % 10}"},
                "baseline_volume_increment_m3_per_ha": str((i % 5) / 2),
            }
        )
    registrations = [
        {
            "plot_id": f"XB-{i:06d}",
            "scheme": "FFCER",
            "registration_id": f"F-{i}",
            "period_start": "2012-01-01",
            "period_end": "2020-12-31",
        }
        for i in range(0, count, 100)
    ]
    return {
        "monitoring_start": "2021-01-01",
        "monitoring_end": "2025-12-31",
        "sub_compartments": sub_compartments,
        "external_registrations": registrations,
        "relative_uncertainty": "0.12",
        "buffer": {"risk_rating": "medium"},
    }


def main() -> None:
    """Time the report and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sub-compartments", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    parameters = load_parameter_set(*FORESTRY_CARBON_TICKET.default_parameter_set)
    serialised = json.dumps(report_document(args.sub_compartments))
    print(f"machine: nproc={os.cpu_count()}, cpu={cpu_model()}, python={platform.python_version()}")
    print(f"report: forestry carbon ticket, {args.sub_compartments} sub-compartments, {args.runs} runs")
    timings = []
    digest = ""
    for run in range(args.runs):
        began = time.perf_counter()
        inputs = TicketInputs.model_validate_json(serialised)
        result = FORESTRY_CARBON_TICKET.compute(inputs, parameters)
        digest = result.sha256
        timings.append(time.perf_counter() - began)
        print(f"  run {run + 1}: {timings[-1]:.3f} s")
    median = statistics.median(timings)
    print(f"issuable units: {result.quantities['issuable_units_t']} t; trace steps: {len(result.steps)}")
    print(f"record sha256: {digest}")
    print(f"median: {median:.3f} s (target ≤ {TARGET_S:.1f} s) — {'OK' if median <= TARGET_S else 'TOO SLOW'}")


if __name__ == "__main__":
    main()
