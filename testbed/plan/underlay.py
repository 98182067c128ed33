"""The underlay's layout: L2 segments (racks), the router joining them, routes between racks.

Part of plan/ (pure). By default the underlay is one subnet, one switch, no router (scenario 002's
192.168.1.0/24). With several subnets each rack is a switch of its own, and one router (a
Mininet host with a port on every rack switch, forwarding) holds the first address of each
subnet, the rack's gateway; every node and external host routes the other racks' subnets via
its rack's gateway. The cloud-routes mode and a top-of-rack BGP peer also need the router,
even on one subnet: it plays the cloud's VPC gateway, or the ToR switch.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from ..spec.model import ClusterSpec
from .ipam import rack_of_ip
from .model import ExternalPlan, NodePlan, RoutePlan
from .network import InterfacePlan, RouterPlan, SubnetPlan

ROUTER_NAME = "router"
ROUTER_KEY = "r0"


def member_racks(cluster: ClusterSpec, external_ips: Mapping[str, str]) -> dict[str, str]:
    """Node and external host name -> its rack (underlay subnet name)."""
    racks = {n.name: cluster.rack_of(n) for n in cluster.nodes}
    for host in cluster.external_hosts:
        if host.rack:
            racks[host.name] = host.rack
        elif host.name in external_ips:
            racks[host.name] = rack_of_ip(cluster, external_ips[host.name])
    return racks


def member_prefixes(cluster: ClusterSpec, external_ips: Mapping[str, str]) -> dict[str, int]:
    """Node and external host name -> prefix length of its rack's subnet."""
    lengths = {s.name: ipaddress.ip_network(s.cidr).prefixlen for s in cluster.subnets()}
    return {name: lengths[rack] for name, rack in member_racks(cluster, external_ips).items()}


def router_ips(cluster: ClusterSpec) -> dict[str, str]:
    """Rack -> the router's address there (the first host address), or {} without a router."""
    if not cluster.needs_router():
        return {}
    return {s.name: str(ipaddress.ip_network(s.cidr).network_address + 1) for s in cluster.subnets()}


def plan_underlay(
    cluster: ClusterSpec, nodes: Sequence[NodePlan], externals: Sequence[ExternalPlan]
) -> tuple[tuple[SubnetPlan, ...], RouterPlan | None, tuple[RoutePlan, ...]]:
    """(subnets with their members, the router or None, routes to the other racks)."""
    racks = member_racks(cluster, {x.name: x.ip for x in externals})
    gateways = router_ips(cluster)
    subnets = tuple(
        SubnetPlan(
            name=s.name,
            cidr=s.cidr,
            key=f"s{i}",
            router_ip=gateways.get(s.name, ""),
            members=tuple(
                m for m in [*(n.name for n in nodes), *(x.name for x in externals)] if racks.get(m) == s.name
            ),
            outside=s.outside,
        )
        for i, s in enumerate(cluster.subnets())
    )
    router = None
    if gateways:
        router = RouterPlan(
            ROUTER_NAME,
            ROUTER_KEY,
            tuple(
                InterfacePlan(f"eth{i}", s.name, gateways[s.name], ipaddress.ip_network(s.cidr).prefixlen)
                for i, s in enumerate(subnets)
            ),
            (),
        )
    routes: list[RoutePlan] = []
    if len(subnets) > 1:
        for sub in subnets:
            for member in sub.members:
                for other in subnets:
                    if other.name != sub.name:
                        routes.append(
                            RoutePlan(
                                member, other.cidr, sub.router_ip, "eth0", f"underlay: rack {other.name} via the router"
                            )
                        )
    return subnets, router, tuple(routes)
