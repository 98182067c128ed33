"""The classic NetworkPolicy conformance model (cyclonus / upstream e2e), as the cases see it; pure.

Namespaces x, y, z and bare pods a, b, c in each, serving 80 and 81 on TCP, UDP and SCTP
(ports serve-<port>-<proto>). The same model as data/xyz.yaml (the manifests the runner
builds), whose pods are pinned with nodeName to the default 3-node topology (data/three-nodes.yaml):
three pods per node, one of each namespace, so that every node's pod CIDR (NODE_CIDRS) holds a
known set of pods for the ipBlock cases. A unit test keeps this module and the YAML in step.
"""

from __future__ import annotations

from ..spec.model import Namespace

MODEL_NAMESPACES: dict[str, dict[str, str]] = {
    "x": {"ns": "x", "team": "red"},
    "y": {"ns": "y", "team": "blue"},
    "z": {"ns": "z"},
}
MODEL_POD_LABELS: dict[str, dict[str, str]] = {
    "a": {"pod": "a", "tier": "web"},
    "b": {"pod": "b", "tier": "db"},
    "c": {"pod": "c"},
}
NODES = ("kind-control-plane", "kind-worker", "kind-worker2")
NODE_CIDRS = {"kind-control-plane": "10.244.0.0/24", "kind-worker": "10.244.1.0/24", "kind-worker2": "10.244.2.0/24"}
POD_NETWORK = "10.244.0.0/16"
MODEL_UNDERLAY = "192.168.1.0/24"  # the nodes' network of data/three-nodes.yaml (no pod in it)
PODS = tuple(f"{ns}/{p}" for ns in MODEL_NAMESPACES for p in MODEL_POD_LABELS)
PORTS = (80, 81)
PROTOCOLS = ("TCP", "UDP", "SCTP")
SOURCE = "conformance"  # the file name decoded policies carry: conformance/<case>.yaml


def model_node(ref: str) -> str:
    """The node the model pins pod `ns/name` to (x/a on the control plane, x/b on kind-worker...)."""
    ns, _, name = ref.partition("/")
    return NODES[(list(MODEL_NAMESPACES).index(ns) + list(MODEL_POD_LABELS).index(name)) % len(NODES)]


def model_pod_labels(ref: str) -> dict[str, str]:
    return dict(MODEL_POD_LABELS[ref.partition("/")[2]])


def model_namespace_labels(name: str) -> dict[str, str]:
    return dict(MODEL_NAMESPACES[name])


def model_namespaces() -> tuple[Namespace, ...]:
    return tuple(Namespace(n, dict(labels)) for n, labels in MODEL_NAMESPACES.items())


NAMESPACES = tuple(MODEL_NAMESPACES)
