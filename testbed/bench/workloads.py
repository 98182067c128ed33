"""Generated inputs for the benchmarks: a kind topology of N nodes, a Deployment of P pods.

Written as YAML files (the benchmarks go through the same loaders as a user's files) into a
folder the caller owns, typically a TemporaryDirectory.
"""

from __future__ import annotations

import os

from ..conformance.resources import TOPOLOGY
from ..plan.build import plan_cluster
from ..plan.model import Plan
from ..spec.model import ClusterSpec, Manifests
from ..spec.topology import load_topology
from ..spec.workloads import load_manifests

THREE_NODES = TOPOLOGY  # the conformance model's 3-node topology, shipped with the package


def topology_yaml(nodes: int, kube_proxy_mode: str = "iptables") -> str:
    """One control-plane and nodes-1 workers (kind's names), host-gw, kube-proxy in iptables mode
    (or the mode given, as kind's networking.kubeProxyMode)."""
    return (
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"
        + (f"networking: {{kubeProxyMode: {kube_proxy_mode}}}\n" if kube_proxy_mode != "iptables" else "")
        + "nodes:\n  - role: control-plane\n"
        + "  - role: worker\n" * max(0, nodes - 1)
    )


def deployment_yaml(name: str, replicas: int, service: bool = False) -> str:
    """A Deployment of `replicas` pods (label app=<name>, TCP 80), and optionally its ClusterIP Service."""
    text = (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n"
        f"  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n"
        f"    metadata: {{labels: {{app: {name}}}}}\n    spec: {{containers: [{{name: c, ports: "
        "[{containerPort: 80}]}]}\n"
    )
    if service:
        text += (
            f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n"
            f"  selector: {{app: {name}}}\n  ports: [{{port: 80, targetPort: 80}}]\n"
        )
    return text


def write(folder: str, name: str, text: str) -> str:
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def deployment_cluster(
    folder: str, nodes: int, pods: int, service: bool = False, seed: int = 0, kube_proxy_mode: str = "iptables"
) -> tuple[ClusterSpec, Manifests, Plan]:
    """(spec, manifests, plan) of `nodes` nodes running one Deployment `bench` of `pods` pods."""
    spec = load_topology(write(folder, "topology.yaml", topology_yaml(nodes, kube_proxy_mode)))
    manifests = load_manifests([write(folder, "bench.yaml", deployment_yaml("bench", pods, service))])
    return spec, manifests, plan_cluster(spec, manifests, seed=seed)
