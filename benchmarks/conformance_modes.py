"""Campaign: the NetworkPolicy conformance suite over IPv6 in every cluster variant (issue 15).

    sudo .venv/bin/python benchmarks/conformance_modes.py [--limit N] [--family ipv6|dual]...
        [--routing MODE]... [--proxy iptables|nftables]... [--tiered]

For ipFamily ipv6 (a single-stack IPv6 cluster, `testbed conformance --family ipv6`) and dual
(`--family dual`: both truth tables of every step) x routing host-gw, cloud-routes, vxlan, bgp
x kube-proxy iptables, nftables (testbed/conformance/modes.py), builds the model cluster, runs
the generated suite (all 325 cases unless --limit) with real packets and prints one line per
combination: cases, probes, mismatches, how the blocked verdicts were known (drop log vs
timeout), seconds. `--tiered` runs the tiered suite instead (`testbed conformance --tiered`:
the ClusterNetworkPolicy tiers' 40 cases, over IPv6 or both families the same way) in each
variant. Never a timed assertion: the figures are for README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from testbed.conformance.modes import FAMILIES, PROXIES, ROUTINGS, mode_topology  # noqa: E402
from testbed.conformance.run import run_conformance  # noqa: E402
from testbed.errors import TestbedError  # noqa: E402


def run_one(tmp: str, family: str, routing: str, proxy: str, limit: int | None, tiered: bool = False) -> str:
    """One combination's line (its error in one line if it could not run)."""
    name = f"{family:<5} {routing:<12} {proxy:<9}" + (" tiered" if tiered else "")
    topology = os.path.join(tmp, f"{family}-{routing}-{proxy}.yaml")
    with open(topology, "w", encoding="utf-8") as handle:
        handle.write(mode_topology(family, routing, proxy))
    started = time.perf_counter()
    try:
        run_dir, passed = run_conformance(
            topology, os.path.join(tmp, "results"), limit=limit, family=family, tiered=tiered
        )
    except TestbedError as exc:
        return f"{name} ERROR {str(exc)[:160]} ({time.perf_counter() - started:.0f} s)"
    with open(os.path.join(run_dir, "conformance.json"), encoding="utf-8") as handle:
        meta = json.load(handle)
    c, ev = meta["counts"], meta["evidence"]
    return (
        f"{name} {'PASS' if passed else 'FAIL'} {c['cases']} cases, {c['probes']} probes, "
        f"{c['mismatches']} mismatches, {c['failed'] + c['error']} failed; blocked: "
        f"{ev.get('drop-log', 0)} drop-logged, {ev.get('timeout', 0)} timeout; {meta['seconds']:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="the first N cases (default: all 325, tiered 40)")
    parser.add_argument("--tiered", action="store_true", help="the tiered (ClusterNetworkPolicy) suite instead")
    parser.add_argument("--family", action="append", choices=FAMILIES)
    parser.add_argument("--routing", action="append", choices=ROUTINGS)
    parser.add_argument("--proxy", action="append", choices=PROXIES)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    suite = "tiered conformance" if args.tiered else "conformance"
    print(f"# {suite} over IPv6, {os.cpu_count()} CPUs, load average {load:.1f} at start", flush=True)
    with tempfile.TemporaryDirectory(prefix="conformance-modes-") as tmp:
        for family in args.family or FAMILIES:
            for routing in args.routing or ROUTINGS:
                for proxy in args.proxy or PROXIES:
                    print(run_one(tmp, family, routing, proxy, args.limit, args.tiered), flush=True)
    print(f"# load average {os.getloadavg()[0]:.1f} at the end", flush=True)


if __name__ == "__main__":
    main()
