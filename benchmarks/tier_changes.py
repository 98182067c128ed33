"""Benchmark: a policy change with the administrator's tiers present against a v1 change (issue 17).

    sudo .venv/bin/python benchmarks/tier_changes.py [--nodes 10] [--pods 1000] [--repeats 5]

Builds a Deployment of P pods on N nodes, then times R applies and R deletes of a v1
NetworkPolicy alone, of the same policy with three ClusterNetworkPolicies in force, and of an
Admin ClusterNetworkPolicy of the same size; every change is checked with real packets
(testbed/bench/tier_changes.py). Prints each figure against the target "within the same time as
a v1 change" (a ratio of medians). `testbed bench` runs the same code. Never a timed assertion.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from testbed.bench.machine import describe_machine, machine_line  # noqa: E402
from testbed.bench.suite import tier_figures  # noqa: E402
from testbed.bench.targets import table  # noqa: E402
from testbed.bench.tier_changes import tier_change_bench  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    result = tier_change_bench(args.nodes, args.pods, args.repeats, progress=lambda m: print(m, file=sys.stderr))
    print(machine_line(describe_machine()))
    print(f"{result.nodes} nodes, {result.pods} pods; {result.probes_per_check} probes after each change")
    for s in result.series:
        print(
            f"{s.name}: "
            + " ".join(f"{x:.3f}" for x in s.seconds)
            + f" s (apply alone: median {sorted(s.apply_seconds)[len(s.apply_seconds) // 2]:.3f} s)"
        )
    print(table(tier_figures(result.to_dict())), end="")


if __name__ == "__main__":
    main()
