"""Benchmark: a 48-case NetworkPolicy suite as 48 `testbed run --no-report` processes (issue 18).

    sudo .venv/bin/python benchmarks/netpol48.py [--cases a,b,...] [--results DIR] [--rows] [--against DIR]

Runs upstream Kubernetes' e2e NetworkPolicy cases (restated by scripts/netpol_e2e_port.py into
benchmarks/netpol48/cases/) one process after another, as a user's script would, and prints the
total against the target (≤ 60 s for the 48), the passed/failed counts and how the blocked
verdicts were known (drop log vs timeout). `testbed bench` runs the same code. Never a timed
assertion.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from testbed.bench.machine import describe_machine, machine_line  # noqa: E402
from testbed.bench.netpol48 import run_suite  # noqa: E402
from testbed.bench.suite import netpol48_figure  # noqa: E402
from testbed.bench.targets import table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", default="", help="comma-separated case names (default: all 48)")
    parser.add_argument("--results", default=None, help="keep each run's folder here")
    parser.add_argument("--rows", action="store_true", help="print one line per case")
    parser.add_argument(
        "--against",
        default=None,
        help="a folder holding another revision's testbed package (`git archive REV testbed | tar -x -C DIR`): "
        "each case runs with it too, right after, so both totals meet the same load",
    )
    args = parser.parse_args()
    names = [n for n in args.cases.split(",") if n] or None
    result = run_suite(names, args.results, progress=lambda m: print(m, file=sys.stderr), against=args.against)
    print(machine_line(describe_machine()))
    if args.rows:
        for r in result["rows"]:
            print(f"{r['case']}: exit {r['exit']} {r['seconds']:.2f} s {r['evidence']} {r['error']}")
    for name in result["failed"]:
        print(f"failed: {name}")
    figures = [netpol48_figure(result)]
    if args.against:
        other = result["against"]
        for name in other["failed"]:
            print(f"failed with {args.against}: {name}")
        figures.append(replace(netpol48_figure(other), what=f"the same, alternated, with the code in {args.against}"))
    print(table(figures), end="")
    with open("/proc/loadavg", encoding="utf-8") as handle:
        print(f"load average at the end: {' '.join(handle.read().split()[:3])}")


if __name__ == "__main__":
    main()
