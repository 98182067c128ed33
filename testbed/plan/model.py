"""The Plan: everything the emulation will create, as plain data (output of plan/).

emu/ realises a Plan and nothing else; `testbed plan` prints one without root. Names of
kernel objects here are *keys* (e.g. the pod netns key `default_web-7c9f-x2b4z`); emu/
prefixes them with the testbed's prefix and an instance tag so that two emulations on one
machine never share an object name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class PortPlan:
    container: str
    port: int
    protocol: str
    name: str = ""


@dataclass(frozen=True)
class NodePlan:
    name: str
    role: str
    index: int
    host_ip: str            # HOST-IP on the underlay (scenario 001)
    underlay_prefix: int
    pod_cidr: str           # 10.244.N.0/24 (scenario 002)
    gateway: str            # first address of pod_cidr, held by cni0
    labels: Mapping[str, str]
    taints: tuple[str, ...]
    key: str                # short name: Mininet host name and netns key
    bridge: str = "cni0"


@dataclass(frozen=True)
class PodPlan:
    namespace: str
    name: str
    uid: str
    node: str
    ip: str
    prefix: int             # the node CIDR's prefix length, as the bridge CNI assigns
    gateway: str
    labels: Mapping[str, str]
    containers: tuple[str, ...]
    ports: tuple[PortPlan, ...]
    owner: str              # "Deployment/web", "ReplicaSet/web-5d59d67564", "" for bare pods
    key: str                # netns key: <namespace>_<name>
    host_veth: str          # the node-side veth end, vethXXXXXXXX as CNI plugins name it
    served_by: str = ""     # "" = the agent serves the ports; "dnsmasq" for the cluster DNS pods

    @property
    def full_name(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class RoutePlan:
    node: str
    dst: str
    via: str | None
    dev: str
    why: str                # e.g. "host-gw: pod CIDR of kind-worker via its HOST-IP"


@dataclass(frozen=True)
class ExternalPlan:
    name: str
    ip: str
    underlay_prefix: int
    key: str
    ports: tuple[PortPlan, ...] = ()   # served by the agent (an outside web server, say)
    outside: bool = False              # in the emulated outside world: pods reach it through SNAT


@dataclass(frozen=True)
class PendingPod:
    """A pod its owner wants that no node can take (kube-scheduler's reason), or whose node's
    pod CIDR is full: listed as Pending, built nowhere."""

    namespace: str
    name: str
    reason: str


@dataclass(frozen=True)
class Plan:
    cluster: str
    seed: int
    routing: str
    pod_subnet: str
    service_subnet: str
    underlay_subnet: str
    mtu: int
    nodes: tuple[NodePlan, ...]
    pods: tuple[PodPlan, ...]
    routes: tuple[RoutePlan, ...]
    externals: tuple[ExternalPlan, ...]
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    ipam_next: Mapping[str, int] = field(default_factory=dict)  # per node: next host offset (host-local)
    name_draws: Mapping[str, int] = field(default_factory=dict)  # per name stream: names handed out
    generation: int = 0     # 0 for the first plan, +1 at each change (scale, delete, rollout...)
    # plan.network.NetworkPlan: racks, routers, VTEPs, BGP speakers; None (and left out of
    # to_dict) for one L2 segment routed host-gw
    network: Any = None
    services: Any = None    # plan.service_model.ServicesPlan: Services, their addresses, EndpointSlices
    kube_proxy_mode: str = "iptables"
    system: bool = True     # the cluster's own objects (CoreDNS, kube-dns) are planned too
    pending: tuple[PendingPod, ...] = ()   # pods no node took, with the scheduler's reason

    def node(self, name: str) -> NodePlan:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def pods_on(self, node: str) -> tuple[PodPlan, ...]:
        return tuple(p for p in self.pods if p.node == node)

    def find_pod(self, name: str, namespace: str | None = None) -> PodPlan | None:
        """A pod by name, or `ns/name`; namespace None means: unique across namespaces."""
        if namespace is None and "/" in name:
            namespace, name = name.split("/", 1)
        hits = [p for p in self.pods if p.name == name and (namespace is None or p.namespace == namespace)]
        return hits[0] if len(hits) == 1 else None

    def to_dict(self) -> dict[str, Any]:
        def clean(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [clean(v) for v in value]
            return value
        out = clean(asdict(self))
        if out.get("network", 0) is None:
            del out["network"]
        return out
