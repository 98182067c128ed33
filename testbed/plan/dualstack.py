"""The IPv6 half of a dual-stack plan (issue 15): node /64s, pod and underlay addresses, routes.

Pure, plan/. build.py plans the cluster as always on its IPv4 (primary) family, then
`extend` adds this half when the topology says `ipFamily: dual`; an IPv4 cluster's plan is
untouched (`Plan.dual` stays None and out of its JSON).

Addresses mirror the IPv4 ones, as the host-local IPAM plugin hands them out with one range
per family (kind's dual-stack CNI config): both ranges start after the gateway and advance
together, so a pod with host offset N in its node's IPv4 CIDR has offset N in the node's IPv6
/64, and a recreated pod's new IPv4 address brings a new IPv6 one. Node /64s are carved in node
order like the IPv4 CIDRs (kube-controller-manager's dual-stack range allocator); underlay
members keep their IPv4 host number in the IPv6 underlay segment.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..spec.model import ClusterSpec
from .model import Plan, RoutePlan


@dataclass(frozen=True)
class NodeV6:
    name: str
    host_ip: str  # the node's address on the IPv6 underlay
    pod_cidr: str  # its /64 of the IPv6 podSubnet
    gateway: str  # first address of pod_cidr, held by cni0


@dataclass(frozen=True)
class DualStackPlan:
    """What a dual-stack cluster adds to the IPv4 plan, in kind's family order."""

    families: tuple[str, ...]  # ("IPv4", "IPv6"): the primary family first
    pod_subnet: str
    service_subnet: str
    underlay_subnet: str
    underlay_prefix: int
    nodes: tuple[NodeV6, ...]
    pods: Mapping[str, str] = field(default_factory=dict)  # pod netns key -> IPv6 address
    externals: Mapping[str, str] = field(default_factory=dict)  # external host name -> IPv6 address
    routes: tuple[RoutePlan, ...] = ()

    def node(self, name: str) -> NodeV6:
        return next(n for n in self.nodes if n.name == name)

    def pod_ips(self, key: str, ip4: str) -> tuple[str, ...]:
        """A pod's status.podIPs, in family order."""
        return (ip4, self.pods[key]) if key in self.pods else (ip4,)


def extend(cluster: ClusterSpec, plan: Plan) -> Plan:
    """`plan` with its IPv6 half when the cluster is dual-stack; else `plan` itself."""
    if cluster.ip_family != "dual":
        return plan
    pods6 = ipaddress.IPv6Network(cluster.pod_subnet_v6)
    under6 = ipaddress.IPv6Network(cluster.underlay_subnet_v6)
    cidrs = pods6.subnets(new_prefix=cluster.node_cidr_prefix_v6)
    nodes: list[NodeV6] = []
    for node in plan.nodes:
        cidr = next(cidrs)
        nodes.append(
            NodeV6(
                node.name,
                str(under6.network_address + _host_number(node.host_ip, node.underlay_prefix)),
                str(cidr),
                str(cidr.network_address + 1),
            )
        )
    by_name = {n.name: n for n in nodes}
    v4_cidr = {n.name: ipaddress.IPv4Network(n.pod_cidr) for n in plan.nodes}
    pods = {
        p.key: str(
            ipaddress.IPv6Network(by_name[p.node].pod_cidr).network_address
            + (int(ipaddress.IPv4Address(p.ip)) - int(v4_cidr[p.node].network_address))
        )
        for p in plan.pods
        if p.node in by_name and ipaddress.ip_address(p.ip) in v4_cidr[p.node]
    }
    externals = {x.name: str(under6.network_address + _host_number(x.ip, x.underlay_prefix)) for x in plan.externals}
    routes = tuple(
        RoutePlan(n.name, peer.pod_cidr, peer.host_ip, "eth0", f"host-gw: IPv6 pod CIDR of {peer.name} via its HOST-IP")
        for n in nodes
        for peer in nodes
        if peer.name != n.name
    )
    dual = DualStackPlan(
        families=("IPv4", "IPv6"),
        pod_subnet=str(pods6),
        service_subnet=cluster.service_subnet_v6,
        underlay_subnet=str(under6),
        underlay_prefix=under6.prefixlen,
        nodes=tuple(nodes),
        pods=pods,
        externals=externals,
        routes=routes,
    )
    return dataclasses.replace(plan, dual=dual)


def _host_number(ip: str, prefix: int) -> int:
    """The host part of an IPv4 underlay address (192.168.1.10/24 -> 10)."""
    return int(ipaddress.IPv4Address(ip)) & ((1 << (32 - prefix)) - 1)


def pod_ips(plan: Plan, key: str, ip: str) -> list[str]:
    """A pod's status.podIPs in family order (just `ip` in an IPv4 cluster)."""
    return list(plan.dual.pod_ips(key, ip)) if plan.dual is not None else [ip]


def node_ips(plan: Plan, name: str, ip: str) -> list[str]:
    """A node's InternalIPs in family order (just its HOST-IP in an IPv4 cluster)."""
    return [ip, plan.dual.node(name).host_ip] if plan.dual is not None else [ip]


def node_pod_cidrs(plan: Plan, name: str, cidr: str) -> list[str]:
    """A node's spec.podCIDRs in family order."""
    return [cidr, plan.dual.node(name).pod_cidr] if plan.dual is not None else [cidr]
