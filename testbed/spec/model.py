"""Frozen dataclasses for everything a user declares: the cluster and the workloads.

Output of spec/ (topology.py, workloads.py), input of plan/. Nothing here touches the
kernel; these objects are plain data, compared and hashed for deterministic plans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .selectors import LabelSelector

PROTOCOLS = ("TCP", "UDP", "SCTP")
ROUTING_MODES = ("host-gw",)  # more modes (cloud-routes, vxlan, bgp) plug in at plan/routing.py
KUBE_PROXY_MODES = ("iptables", "nftables", "none")


@dataclass(frozen=True)
class Taint:
    key: str
    value: str = ""
    effect: str = "NoSchedule"


@dataclass(frozen=True)
class Toleration:
    key: str = ""          # empty key with operator Exists tolerates everything
    operator: str = "Equal"  # Equal | Exists
    value: str = ""
    effect: str = ""       # empty: every effect

    def tolerates(self, taint: Taint) -> bool:
        """core/v1 Toleration semantics (k8s.io/api/core/v1 ToleratesTaint)."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return self.value == taint.value


@dataclass(frozen=True)
class NodeSpec:
    name: str
    role: str                     # "control-plane" | "worker"
    labels: Mapping[str, str]
    taints: tuple[Taint, ...] = ()
    pod_cidr: str | None = None   # an explicit override from the testbed document


@dataclass(frozen=True)
class ExternalHost:
    """A host outside the cluster on the underlay, e.g. seed 002's laptop at 192.168.1.10."""

    name: str
    ip: str | None = None


@dataclass(frozen=True)
class ClusterSpec:
    """A kind Cluster config plus the testbed document (what kind does not say)."""

    name: str
    file: str
    nodes: tuple[NodeSpec, ...]
    pod_subnet: str = "10.244.0.0/16"
    service_subnet: str = "10.96.0.0/16"   # kind's default (kubeadm's is /12)
    kube_proxy_mode: str = "iptables"
    underlay_subnet: str = "192.168.1.0/24"
    first_node_host: int = 2        # nodes from .2, as in seed 002
    node_cidr_prefix: int = 24
    routing: str = "host-gw"
    mtu: int = 1500
    allow_overlapping_pod_cidrs: bool = False
    external_hosts: tuple[ExternalHost, ...] = ()
    notes: tuple[str, ...] = ()     # kind fields accepted but not applicable here


@dataclass(frozen=True)
class ContainerPort:
    container_port: int
    protocol: str = "TCP"
    name: str = ""


@dataclass(frozen=True)
class Container:
    name: str
    ports: tuple[ContainerPort, ...] = ()


@dataclass(frozen=True)
class PodTemplate:
    """metadata.labels plus the networking-relevant parts of a PodSpec."""

    labels: Mapping[str, str]
    containers: tuple[Container, ...]
    node_name: str = ""
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class ObjectRef:
    """Where an object came from, for messages: file and `Kind ns/name`."""

    file: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True)
class PodSpec:
    """A standalone Pod object."""

    ref: ObjectRef
    template: PodTemplate


@dataclass(frozen=True)
class Workload:
    """A pod controller: Deployment, ReplicaSet or ReplicationController."""

    ref: ObjectRef
    replicas: int
    selector: LabelSelector
    template: PodTemplate


@dataclass(frozen=True)
class Manifests:
    """Everything a `kubectl apply -f` of the workload files would create."""

    namespaces: tuple[Namespace, ...] = ()
    pods: tuple[PodSpec, ...] = ()
    workloads: tuple[Workload, ...] = ()
    files: tuple[str, ...] = ()
    # Decoded by the extension modules registered in workloads.EXTENSIONS
    # (spec/services.py -> ServiceSpec, spec/netpol.py -> NetworkPolicySpec, ...).
    services: tuple[Any, ...] = ()
    policies: tuple[Any, ...] = ()
    ingresses: tuple[Any, ...] = ()

    def namespace_names(self) -> set[str]:
        return {"default", "kube-system", "kube-public", "kube-node-lease"} | {n.name for n in self.namespaces}
