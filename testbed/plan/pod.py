"""The planned pod: the one pod type of the testbed (pure; plan/, no imports beyond the stdlib).

plan/ makes them (build.py), the Plan holds them (model.py, which every layer imports them
from), the policy world uses them as they are (netpol.World), EndpointSlices reference them
(by name, with their conditions), and the agent serves their ports (agent/config.py reads
PortPlan from this module without loading the rest of the pure core).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PortPlan:
    container: str
    port: int
    protocol: str
    name: str = ""


@dataclass(frozen=True)
class HostPortPlan:
    """A hostPort: the node's `host_ip:host_port` (host_ip "" = every node address) forwarded to
    the pod's container_port (the portmap CNI plugin's DNAT; on a hostNetwork pod, the port itself)."""

    host_port: int
    container_port: int
    protocol: str
    host_ip: str = ""


@dataclass(frozen=True)
class PodDnsPlan:
    """spec.dnsPolicy and spec.dnsConfig, as the kubelet reads them (plan/podnet.py writes resolv.conf)."""

    policy: str = "ClusterFirst"
    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True)
class PodPlan:
    namespace: str
    name: str
    uid: str
    node: str
    ip: str
    prefix: int  # the node CIDR's prefix length, as the bridge CNI assigns
    gateway: str
    labels: Mapping[str, str]
    containers: tuple[str, ...]
    ports: tuple[PortPlan, ...]
    owner: str  # "Deployment/web", "ReplicaSet/web-5d59d67564", "" for bare pods
    key: str  # netns key: <namespace>_<name>
    host_veth: str  # the node-side veth end, vethXXXXXXXX as CNI plugins name it
    served_by: str = ""  # "" = the agent serves the ports; "dnsmasq" for the cluster DNS pods
    # spec.hostname ("" = the pod's name; a StatefulSet pod's is its name) and spec.subdomain
    # (with a headless Service of that name, a DNS name: plan/dns.py); left out of plan JSON at
    # their default (the literal of spec.model.OMIT_AT_DEFAULT: this module imports only the stdlib)
    hostname: str = field(default="", metadata={"omit_at_default": True})
    subdomain: str = field(default="", metadata={"omit_at_default": True})
    # Pod networking (plan/podnet.py): in the node's namespace with its HOST-IP; hostPorts;
    # the resolver and /etc/hosts the kubelet writes.
    host_network: bool = False
    host_ports: tuple[HostPortPlan, ...] = ()
    dns: PodDnsPlan = PodDnsPlan()
    host_aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (ip, hostnames)

    @property
    def full_name(self) -> str:
        return f"{self.namespace}/{self.name}"

    def resolve(self, name: str, protocol: str) -> int | None:
        """The number of the container port called `name` for `protocol`, if the pod has one
        (a NetworkPolicy's or a Service's named port)."""
        for p in self.ports:
            if p.name == name and p.protocol == protocol:
                return p.port
        return None
