"""A single-stack IPv6 plan (issue 15, spec/ipv6.py; pure, plan/).

The plan of an `ipFamily: ipv6` cluster has IPv6 primary addresses everywhere (its podSubnet is
IPv6): the kernel-facing code asks `is_ipv6` to pick the IPv6 way of doing the same thing
(emu/ipv6only.py), and the NetworkPolicy table, compiled as always over the policy world (whose
ip_version is then 6), is written with IPv6 address types and `ip6` matches.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import Problem
from ..spec.model import ClusterSpec
from ..spec.services import ServiceSpec
from .dualroutes import VXLAN6_HEADROOM, vxlan6
from .model import NodePlan, RoutePlan
from .network import NetworkPlan

if TYPE_CHECKING:
    from .model import Plan


def is_ipv6(plan: Plan) -> bool:
    """True for a single-stack IPv6 plan: its primary (only) pod range is IPv6."""
    return ":" in plan.pod_subnet and ipaddress.ip_network(plan.pod_subnet).version == 6


def network6(
    cluster: ClusterSpec,
    nodes: Sequence[NodePlan],
    routes: list[RoutePlan],
    network: NetworkPlan | None,
) -> tuple[list[RoutePlan], NetworkPlan | None]:
    """An ipv6 cluster's routes and network (pure). host-gw and cloud-routes route the IPv6 /64s
    as plan/routing.py routes any CIDR (emu/ipv6only.py gives the router its IPv6 side); vxlan is
    flannel's IPv6 backend as in a dual-stack cluster (plan/dualroutes.py vxlan6: the device
    flannel-v6.1 with the node /64's network address as a /128, onlink routes via the peers'),
    and flannel, with no IPv4 device, gives pods that device's MTU (underlay - 70). bgp, racks and
    their router are plan/routing.py's and plan/underlay.py's over IPv6 addresses (each bird2
    daemon IPv6-only under a hashed router id: plan/bird.py)."""
    if cluster.routing != "vxlan" or network is None:
        return routes, network
    routes6, vteps = vxlan6(nodes, cluster)
    mtu = cluster.mtu - VXLAN6_HEADROOM
    return routes6, dataclasses.replace(network, vteps=tuple(vteps), pod_mtu=mtu)


def lb_pool6_of(underlay: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """The emulated cloud's IPv6 load balancer pool: host numbers 200-249 of the IPv6 underlay,
    as a dual-stack cluster's IPv6 pool mirrors the IPv4 one's (plan/edges6.py lb_pool6:
    192.168.1.200-249 -> fd00:192:168:1::c8-f9). A node holds each address on its eth0
    (emu/edges6.py lb_line6), so the laptop on the segment finds it by neighbour discovery."""
    base = underlay.network_address
    return f"{base + 200}-{base + 249}"


def policy_script6(text: str) -> str:
    """The policy table's `nft -f` script (whole, patch or elements) with IPv6 address types and
    `ip6` matches; the table keeps its name (it is the cluster's only policy table)."""
    for old, new in (("ipv4_addr", "ipv6_addr"), ("ip saddr", "ip6 saddr"), ("ip daddr", "ip6 daddr")):
        text = text.replace(old, new)
    return text


def refusals(file: str, plan: Plan, services: Sequence[ServiceSpec]) -> list[Problem]:
    """What a single-stack IPv6 cluster does not build yet, one line each (exit 2): nothing any
    more in the plan. hostPorts are the portmap plugin's IPv6 rules (rules/portmap.py: ip6tables
    or table ip6 cni_hostport), the ingress-nginx controller listens on [::] and proxies to the
    IPv6 endpoints (ingress/nginx.py), LoadBalancer and externalIPs are IPv6 (lb_pool6_of,
    plan/services.py) and the administrator's policy tiers are compiled into the policy table
    over the IPv6 world. Kept as the hook plan/dualstack.py calls; `file` is the topology's."""
    return []
