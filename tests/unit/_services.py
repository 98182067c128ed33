"""Helpers shared by the Service and kube-proxy tests (test_services_*.py, test_kubeproxy_*.py).

The fixture cluster (data/services/): three kind nodes on 192.168.1.0/24, a 3-replica
Deployment `web` (two pods on kind-worker, one on kind-worker2), a canary pod on kind-worker2
whose `http` port is 8081 and which has no `metrics` port, and every flavour of Service.
Their golden files live in golden/kubeproxy/ (checked by _golden.check_golden): every change
there is a change in the rules a node holds.
"""

from __future__ import annotations

import functools
import pathlib

from testbed.plan.build import plan_cluster
from testbed.plan.services import plan_services
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
DATA = HERE / "data" / "services"
POOL = "192.168.1.200-192.168.1.250"
SEED = 1
NODES = {
    "kind-control-plane": ("192.168.1.2", "10.244.0.0/24"),
    "kind-worker": ("192.168.1.3", "10.244.1.0/24"),
    "kind-worker2": ("192.168.1.4", "10.244.2.0/24"),
}
LAPTOP = "192.168.1.10"
POD_SUBNET = "10.244.0.0/16"


@functools.cache
def world(seed: int = SEED, lb_pool: str | None = POOL):
    """(cluster, manifests, pods of namespace default, ServicesPlan) of the fixture."""
    cluster = load_topology(str(DATA / "topology.yaml"))
    manifests = load_manifests([str(DATA / "app.yaml")])
    # Only the fixture's own pods: what the cluster adds (CoreDNS) must not move these goldens.
    pods = tuple(p for p in plan_cluster(cluster, manifests, seed).pods if p.namespace == "default")
    return cluster, manifests, pods, plan_services(cluster, manifests, pods, seed, lb_pool)


def pod_ip(pods, prefix: str, node: str) -> list[str]:
    return sorted(
        (p.ip for p in pods if p.name.startswith(prefix) and p.node == node),
        key=lambda ip: tuple(int(x) for x in ip.split(".")),
    )
