"""The network part of a Plan beyond pods: racks, routers, VTEPs, BGP speakers (plain data).

Output of plan/underlay.py and plan/routing.py, input of emu/ (underlay.py builds the racks
and routers, pods.py and overlay.py program the VTEPs, bgp.py runs bird2 with the rendered
configs). `Plan.network` is None for the historical default — one L2 segment routed host-gw —
so that plan stays byte for byte what it was.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .model import RoutePlan

if TYPE_CHECKING:
    from .model import Plan

# Calico's trick: every pod's default gateway is this link-local address, answered by proxy
# ARP on the node's end of the pod's veth; the pod's /32 address needs no on-link subnet.
CALICO_GATEWAY = "169.254.1.1"
CALICO_GATEWAY6 = "fe80::ecee:eeff:feee:eeee"  # the EUI-64 link-local of Calico's ee:ee:ee:ee:ee:ee
VXLAN_OVERHEAD = 50  # outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14 (flannel: MTU - 50)


@dataclass(frozen=True)
class SubnetPlan:
    """One L2 segment (a rack): its switch, its members, the router's address on it."""

    name: str
    cidr: str
    key: str  # switch key: s0, s1, ...
    router_ip: str  # "" when no router is attached
    members: tuple[str, ...]  # nodes and external hosts on this segment
    outside: bool = False  # the emulated outside world (203.0.113.0/24...): pods reach it via SNAT


@dataclass(frozen=True)
class InterfacePlan:
    dev: str  # eth0, eth1, ... one per subnet
    subnet: str
    ip: str
    prefix: int


@dataclass(frozen=True)
class RouterPlan:
    """The underlay router joining the racks (a Mininet host forwarding between its ports)."""

    name: str
    key: str  # Mininet host and netns key: r0
    interfaces: tuple[InterfacePlan, ...]
    routes: tuple[RoutePlan, ...]  # cloud-routes: one per node pod CIDR, set by the route controller


@dataclass(frozen=True)
class VtepPlan:
    """flannel's VXLAN device on one node and the entries flanneld programs for its peers."""

    node: str
    dev: str  # flannel.1
    vni: int
    port: int  # UDP 8472 (Linux's historical VXLAN port, flannel's default)
    local: str  # the node's HOST-IP: outer source address
    mac: str  # the VTEP's MAC, as published in flannel's node annotation
    address: str  # 10.244.N.0/32: the pod CIDR's network address
    mtu: int  # underlay MTU - 50
    neighbours: tuple[tuple[str, str], ...]  # (peer VTEP address, peer VTEP MAC): permanent ARP
    fdb: tuple[tuple[str, str], ...]  # (peer VTEP MAC, peer HOST-IP): where to tunnel to


@dataclass(frozen=True)
class BgpPeerPlan:
    name: str  # the peer node, or "router"
    ip: str
    asn: int
    role: str  # mesh | reflector (it reflects routes to us) | client (we reflect to it)
    passive: bool  # wait for the peer to connect (one side per session)


@dataclass(frozen=True)
class BgpSpeakerPlan:
    """One bird2 daemon: on a node (Calico's BIRD) or on the top-of-rack router."""

    name: str
    key: str  # netns key where bird runs: n0, r0
    asn: int
    router_id: str
    originates: tuple[str, ...]  # prefixes it announces (its node's pod CIDR)
    peers: tuple[BgpPeerPlan, ...]
    expected: tuple[str, ...]  # prefixes bird must have installed in its kernel once converged
    config: str  # bird.conf, rendered by plan/bird.py


@dataclass(frozen=True)
class NetworkPlan:
    subnets: tuple[SubnetPlan, ...]
    routers: tuple[RouterPlan, ...]
    underlay_routes: tuple[RoutePlan, ...]  # on nodes and external hosts: the other racks via the router
    pod_mtu: int  # MTU of the pods' eth0 and their veth peers (vxlan: underlay - 50)
    pod_bridge: bool  # False for bgp: no cni0, a /32 route per pod to its veth
    vteps: tuple[VtepPlan, ...] = ()
    bgp: tuple[BgpSpeakerPlan, ...] = ()

    def subnet_of(self, member: str) -> SubnetPlan:
        for s in self.subnets:
            if member in s.members:
                return s
        raise KeyError(member)

    def vtep(self, node: str) -> VtepPlan | None:
        return next((v for v in self.vteps if v.node == node), None)


def pod_mtu(plan: Plan) -> int:
    return plan.network.pod_mtu if plan.network is not None else plan.mtu


def node_source_ip(plan: Plan, node: str, dst_node: str) -> str:
    """The source address a node's own traffic to a pod on `dst_node` carries (no NAT involved).

    Its own pods: cni0's gateway address (bgp: no cni0, the route to the pod's veth has no
    address, so the kernel picks the HOST-IP). Other nodes' pods: the HOST-IP, but with vxlan
    the route leaves by flannel.1, whose address (10.244.N.0) the kernel picks.
    """
    n = plan.node(node)
    if node == dst_node:
        return n.host_ip if plan.routing == "bgp" else n.gateway
    if plan.routing == "vxlan":
        return str(ipaddress.ip_network(n.pod_cidr).network_address)
    return n.host_ip
