"""Benchmark: build and teardown time of an emulated cluster at a given size (prints figures).

    sudo .venv/bin/python benchmarks/build_scale.py --nodes 10 --pods 1000

Builds a kind-style cluster with one control-plane and N-1 workers and a Deployment of
P replicas (one TCP port each), then tears it down; prints phase timings and pods/s.
Never a timed assertion: the figures are for README.md and the scale issue.
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--pods", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        topo = os.path.join(tmp, "topo.yaml")
        with open(topo, "w") as h:
            h.write(
                "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n"
                + "  - role: worker\n" * (args.nodes - 1)
            )
        app = os.path.join(tmp, "app.yaml")
        with open(app, "w") as h:
            h.write(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bench}\nspec:\n"
                f"  replicas: {args.pods}\n  selector: {{matchLabels: {{app: bench}}}}\n  template:\n"
                "    metadata: {labels: {app: bench}}\n    spec: {containers: [{name: c, ports: "
                "[{containerPort: 80}]}]}\n"
            )
        t0 = time.perf_counter()
        plan = plan_cluster(load_topology(topo), load_manifests([app]), seed=0)
        t_plan = time.perf_counter() - t0
        cluster = EmulatedCluster(plan)
        with cluster:
            pass
    print(f"machine: {os.cpu_count()} cores, kernel {platform.release()}, python {platform.python_version()}")
    print(f"cluster: {len(plan.nodes)} nodes, {len(plan.pods)} pods")
    print(f"plan: {t_plan:.3f} s")
    for name in ("underlay", "pods", "agent", "build", "teardown"):
        print(f"{name}: {cluster.timings.get(name, 0):.3f} s")
    print(f"pods per second (pod sandboxes phase): {len(plan.pods) / max(cluster.timings['pods'], 1e-9):.0f}")


if __name__ == "__main__":
    main()
