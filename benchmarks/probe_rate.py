"""Benchmark: probe throughput through a real emulated cluster (prints figures, asserts nothing).

    sudo .venv/bin/python benchmarks/probe_rate.py [--pods 100]

1. The classic NetworkPolicy truth table: namespaces x, y, z with pods a, b, c, each serving
   80 and 81 over TCP, UDP and SCTP: 9 x 9 x 2 x 3 = 486 probes (self included), timed.
2. An all-pairs TCP matrix among --pods pods spread over 3 workers, timed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from testbed.emu.cluster import EmulatedCluster  # noqa: E402
from testbed.plan.build import plan_cluster  # noqa: E402
from testbed.spec.topology import load_topology  # noqa: E402
from testbed.spec.workloads import load_manifests  # noqa: E402
from testbed.traffic.prober import Probe, run_probes  # noqa: E402

TOPO = """kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes: [{role: control-plane}, {role: worker}, {role: worker}, {role: worker}]
"""
PORTS = (
    "["
    + ", ".join(
        f"{{name: {p}-{n}, containerPort: {n}, protocol: {p.upper()}}}"
        for n in (80, 81)
        for p in ("tcp", "udp", "sctp")
    )
    + "]"
)


def xyz() -> str:
    docs = []
    for ns in "xyz":
        docs.append(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {{ns: {ns}}}}}\n")
        for pod in "abc":
            docs.append(
                f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {pod}, namespace: {ns}, labels: {{pod: {pod}}}}}\n"
                f"spec: {{containers: [{{name: cont, ports: {PORTS}}}]}}\n"
            )
    return "---\n".join(docs)


def bulk(n: int) -> str:
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: bulk}}\nspec:\n  replicas: {n}\n"
        "  selector: {matchLabels: {app: bulk}}\n  template:\n    metadata: {labels: {app: bulk}}\n"
        "    spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}\n"
    )


def timed(cluster: EmulatedCluster, probes: list[Probe]) -> tuple[float, dict[str, int]]:
    t0 = time.perf_counter()
    results = run_probes(probes)
    elapsed = time.perf_counter() - t0
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    return elapsed, counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=100)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, kernel {platform.release()}, python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        topo, app = os.path.join(tmp, "topo.yaml"), os.path.join(tmp, "app.yaml")
        open(topo, "w").write(TOPO)
        for name, text in (
            ("truth table (9 pods, 2 ports, 3 protocols)", xyz()),
            (f"all-pairs TCP, {args.pods} pods", bulk(args.pods)),
        ):
            open(app, "w").write(text)
            plan = plan_cluster(load_topology(topo), load_manifests([app]), seed=0)
            with EmulatedCluster(plan) as cluster:
                probes = [
                    Probe(len(probes_i), cluster.netns_path(s.key), d.ip, port.port, port.protocol, 1.0)
                    for probes_i in [[]]
                    for s in plan.pods
                    for d in plan.pods
                    for port in d.ports
                    if s.key != d.key or "truth" in name
                    for _ in [probes_i.append(0)]
                ]
                probes = [Probe(i, p.src_netns, p.dst_ip, p.port, p.protocol, p.timeout) for i, p in enumerate(probes)]
                elapsed, counts = timed(cluster, probes)
            print(
                f"{name}: {len(probes)} probes in {elapsed:.2f} s = {len(probes) / elapsed:.0f} probes/s; {counts}; "
                f"build {cluster.timings['build']:.2f} s, teardown {cluster.timings['teardown']:.2f} s"
            )


if __name__ == "__main__":
    main()
