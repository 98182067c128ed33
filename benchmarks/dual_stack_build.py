"""Dual-stack build time against IPv4 (issue 15): the same cluster built alternately as ipv4 and dual.

    sudo .venv/bin/python benchmarks/dual_stack_build.py [PODS] [ROUNDS] [dual|ipv6|v6first]   (defaults: 1000 3 dual)

Builds 10 nodes running one Deployment of PODS pods (bench/workloads.py), once as an IPv4 cluster
and once as a dual-stack one, ROUNDS times interleaved (same run, same machine load), and prints
the median build time of each, the ratio and the dual-stack controller's own share. Issue 15's
target: dual within 1.5x of IPv4. With `ipv6`, the second cluster is a single-stack IPv6 one
(spec/ipv6.py) instead; with `v6first`, an IPv6-first dual-stack one (spec/v6first.py).
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import tempfile
import time

from testbed.bench.workloads import deployment_cluster
from testbed.emu.cluster import EmulatedCluster
from testbed.plan.build import plan_cluster


def main() -> int:
    pods = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with tempfile.TemporaryDirectory() as folder:
        spec, manifests, plan4 = deployment_cluster(folder, 10, pods)
    other = sys.argv[3] if len(sys.argv) > 3 else "dual"
    dual = dataclasses.replace(
        spec, ip_family="dual", pod_subnet_v6="fd00:10:244::/56", service_subnet_v6="fd00:10:96::/112"
    )
    if other == "v6first":  # IPv6 the primary family of the API objects, the same two halves
        dual = dataclasses.replace(dual, primary_family="IPv6")
    if other == "ipv6":  # the IPv6 ranges as the primary (only) ones, as spec/ipv6.py makes them
        dual = dataclasses.replace(
            spec,
            ip_family="ipv6",
            pod_subnet="fd00:10:244::/56",
            service_subnet="fd00:10:96::/112",
            underlay_subnet="fd00:192:168:1::/64",
            node_cidr_prefix=64,
            external_hosts=(),
        )
    plan6 = plan_cluster(dual, manifests)
    times: dict[str, list[float]] = {"ipv4": [], other: []}
    pods_phase: dict[str, list[float]] = {"ipv4": [], other: []}
    for _ in range(rounds):
        for name, plan in (("ipv4", plan4), (other, plan6)):
            start = time.perf_counter()
            with EmulatedCluster(plan) as c:
                times[name].append(c.timings["build"])
                pods_phase[name].append(c.timings.get("pods", 0.0))
            print(
                f"{name}: {len(plan.pods)} pods built in {times[name][-1]:.2f} s ({time.perf_counter() - start:.2f} s with teardown)",
                flush=True,
            )
    m4, m6 = statistics.median(times["ipv4"]), statistics.median(times[other])
    p4, p6 = statistics.median(pods_phase["ipv4"]), statistics.median(pods_phase[other])
    print(f"median build: ipv4 {m4:.2f} s, {other} {m6:.2f} s, ratio {m6 / m4:.2f} (target <= 1.5)")
    print(f"median pods phase (sandboxes + IPv6 half): ipv4 {p4:.2f} s, {other} {p6:.2f} s")
    return 0 if m6 / m4 <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
