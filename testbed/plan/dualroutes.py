"""IPv6 routing of a dual-stack cluster, one function per routing mode (part of plan/, pure).

plan/routing.py routes the IPv4 pod CIDRs; this module gives the IPv6 /64s the same treatment,
as each real system does it in a dual-stack cluster, from the IPv4 plan (which it never
changes, except that a bgp speaker's configuration gains its IPv6 half):

- host-gw (flannel): each peer's /64 via the peer's IPv6 HOST-IP.
- cloud-routes (the cloud controller manager's route controller): the router (the cloud's
  gateway) gets an IPv6 address and one route per node /64 via that node's IPv6 address, out of
  the port of the node's rack; nodes send the IPv6 podSubnet to the router's IPv6 address on
  their rack.
- vxlan (flannel's IPv6 backend, pkg/backend/vxlan): a second device `flannel-v6.1` (same VNI 1
  and UDP port, its own MAC) over the IPv6 underlay, holding the node /64's network address as
  a /128; per peer a permanent neighbour entry (peer VTEP address -> its v6 MAC), a forwarding
  entry (that MAC -> the peer's IPv6 HOST-IP) and an onlink route of the /64. Its MTU: flannel
  asks for the underlay's minus 50 as for flannel.1, and the kernel clamps an IPv6 VXLAN device
  to its lower device's MTU minus 70 (VXLAN6_HEADROOM: a 40-byte outer header), so it is 1430
  on a 1500 underlay; pods keep flannel's FLANNEL_MTU (underlay - 50), and an IPv6 packet above
  1430 gets a Packet Too Big from its node, as on a real flannel cluster.
- bgp (Calico): pods get a /128 and the default route via fe80::ecee:eeff:feee:eeee, Calico's
  link-local address of every host-side veth; the node routes each pod's /128 to its veth and
  bird2 announces the node's /64 over IPv6 sessions between the nodes' IPv6 addresses
  (plan/bird.py says why not MP-BGP over the IPv4 sessions).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..spec.model import ClusterSpec
from . import bird
from .model import RoutePlan
from .network import CALICO_GATEWAY6, BgpSpeakerPlan, NetworkPlan, VtepPlan
from .routing import NodePlanLike, vtep_mac, vtep_plan

VTEP6_DEV = "flannel-v6.1"  # flannel: fmt.Sprintf("flannel-v6.%d", cfg.VNI)
VXLAN6_HEADROOM = 70  # Linux: outer IPv6 40 + UDP 8 + VXLAN 8 + inner Ethernet 14


class NodeHalf(NodePlanLike, Protocol):
    """What this module needs of a node's IPv6 half (plan/dualstack.py's NodeV6)."""

    @property
    def pod_cidr(self) -> str: ...


@dataclass(frozen=True)
class RouterV6:
    """The underlay router's IPv6 side: an address per port, the route controller's routes."""

    name: str
    key: str
    addresses: tuple[tuple[str, str], ...]  # (dev, IPv6 address) on the IPv6 underlay
    routes: tuple[RoutePlan, ...] = ()


@dataclass(frozen=True)
class Routes6:
    routes: tuple[RoutePlan, ...]  # on the nodes
    routers: tuple[RouterV6, ...] = ()
    vteps: tuple[VtepPlan, ...] = ()
    network: NetworkPlan | None = None  # bgp: the IPv4 network with each speaker's IPv6 half


def host_gw6(nodes: Sequence[NodeHalf]) -> list[RoutePlan]:
    """Every node: each peer's /64 via the peer's IPv6 HOST-IP (one segment: all on-link)."""
    return [
        RoutePlan(n.name, peer.pod_cidr, peer.host_ip, "eth0", f"host-gw: IPv6 pod CIDR of {peer.name} via its HOST-IP")
        for n in nodes
        for peer in nodes
        if peer.name != n.name
    ]


def vtep6_mac(node: str) -> str:
    """flannel-v6.1's MAC: its own (flannel stores one per device), stable per node name."""
    return vtep_mac(node, VTEP6_DEV)


def vtep6_address(node: NodeHalf) -> str:
    return str(ipaddress.IPv6Network(node.pod_cidr).network_address)


def vxlan6(nodes: Sequence[NodeHalf], cluster: ClusterSpec) -> tuple[list[RoutePlan], list[VtepPlan]]:
    routes = [
        RoutePlan(
            n.name, p.pod_cidr, vtep6_address(p), VTEP6_DEV, f"vxlan: IPv6 pod CIDR of {p.name} via its VTEP (onlink)"
        )
        for n in nodes
        for p in nodes
        if p.name != n.name
    ]
    vteps = [
        vtep_plan(
            VTEP6_DEV,
            cluster.vxlan,
            cluster.mtu - VXLAN6_HEADROOM,
            n,
            f"{vtep6_address(n)}/128",
            [(p, vtep6_address(p)) for p in nodes if p.name != n.name],
        )
        for n in nodes
    ]
    return routes, vteps


def routers6(network: NetworkPlan | None, v6_of: Mapping[str, str]) -> list[RouterV6]:
    """The router's IPv6 addresses: each port keeps its IPv4 host number (v6_of maps them)."""
    if network is None:
        return []
    return [
        RouterV6(r.name, r.key, tuple((i.dev, v6_of[i.ip]) for i in r.interfaces if i.ip in v6_of))
        for r in network.routers
    ]


def cloud_routes6(
    nodes: Sequence[NodeHalf],
    pod_subnet6: str,
    routers: Sequence[RouterV6],
    port_of: Mapping[str, str] | None = None,
) -> tuple[list[RoutePlan], list[RouterV6]]:
    """Nodes: the IPv6 podSubnet via the router; the router: each node's /64 via that node.
    `port_of` (node -> the router's port on its rack; racks only): a node's gateway is the
    router's IPv6 address on that port, and its /64 is routed out of it (the first port on one
    segment)."""
    if not routers or not routers[0].addresses:
        return [], list(routers)
    router = routers[0]
    address = dict(router.addresses)  # port -> the router's IPv6 address there
    first = router.addresses[0][0]

    def port(n: NodeHalf) -> str:
        found = (port_of or {}).get(n.name, first)
        return found if found in address else first

    routes = [
        RoutePlan(
            n.name,
            pod_subnet6,
            address[port(n)],
            "eth0",
            "cloud-routes: the IPv6 cluster CIDR via the cloud's gateway, which routes each node's /64",
        )
        for n in nodes
    ]
    controller = tuple(
        RoutePlan(
            router.name, n.pod_cidr, n.host_ip, port(n), f"route controller: IPv6 pod CIDR of {n.name} via its HOST-IP"
        )
        for n in nodes
    )
    return routes, [dataclasses.replace(router, routes=controller), *routers[1:]]


def bgp6(
    network: NetworkPlan, nodes: Sequence[NodeHalf], cluster: ClusterSpec, pod_subnet6: str, v6_of: Mapping[str, str]
) -> NetworkPlan:
    """Each speaker with its IPv6 half: the same peers (roles, passive sides) at their IPv6
    addresses, the node's /64 announced, every other /64 expected in its kernel."""
    by_name = {n.name: n for n in nodes}
    asn, hold = cluster.bgp.as_number, cluster.bgp.hold_time
    speakers: list[BgpSpeakerPlan] = []
    for s in network.bgp:
        peers6 = tuple(dataclasses.replace(p, ip=v6_of[p.ip]) for p in s.peers if p.ip in v6_of)
        if s.name in by_name:
            me = by_name[s.name]
            own = ipaddress.IPv6Network(me.pod_cidr)
            expected = tuple(n.pod_cidr for n in nodes if not ipaddress.IPv6Network(n.pod_cidr).overlaps(own))
            cluster_id = _cluster_id(s.config) or s.router_id
            text = bird.node_config6(me.host_ip, asn, me.pod_cidr, pod_subnet6, peers6, cluster_id, hold)
            originates = s.originates + (me.pod_cidr,)
        else:  # the top-of-rack router: its local address on each peer's rack
            router = next(r for r in network.routers if r.name == s.name)
            local6 = {i.subnet: v6_of.get(i.ip, "") for i in router.interfaces}
            first = v6_of.get(router.interfaces[0].ip, "")
            rack = {p.ip: network.subnet_of(p.name).name for p in s.peers}
            locals6 = [local6.get(rack[p.ip], first) for p in s.peers if p.ip in v6_of]
            expected = tuple(n.pod_cidr for n in nodes)
            text = bird.router_config6(asn, pod_subnet6, list(zip(peers6, locals6, strict=True)), s.router_id, hold)
            originates = s.originates
        speakers.append(
            dataclasses.replace(
                s,
                originates=originates,
                expected=s.expected + expected,
                config=s.config + "\n" + text,
            )
        )
    return dataclasses.replace(network, bgp=tuple(speakers))


def _ports(network: NetworkPlan | None, nodes: Sequence[NodeHalf]) -> dict[str, str]:
    """node -> the router's port on the node's rack (racks: plan/underlay.py's one port each)."""
    if network is None or not network.routers:
        return {}
    port = {i.subnet: i.dev for i in network.routers[0].interfaces}
    return {n.name: port[network.subnet_of(n.name).name] for n in nodes if network.subnet_of(n.name).name in port}


def _cluster_id(config: str) -> str:
    """The route reflector cluster id the IPv4 half uses (its IPv6 sessions share it)."""
    for line in config.splitlines():
        line = line.strip()
        if line.startswith("rr cluster id "):
            return line.removeprefix("rr cluster id ").rstrip(";")
    return ""


def pod_addressing6(mode: str, node: NodeHalf, gateway: str) -> tuple[int, str]:
    """(a pod's IPv6 prefix length, its IPv6 default gateway): the node's /64 via cni0's
    `gateway`, or with bgp a /128 via Calico's link-local gateway (the host veth holds it)."""
    if mode == "bgp":
        return 128, CALICO_GATEWAY6
    return ipaddress.IPv6Network(node.pod_cidr).prefixlen, gateway


def plan_routes6(
    cluster: ClusterSpec,
    nodes: Sequence[NodeHalf],
    network: NetworkPlan | None,
    pod_subnet6: str,
    v6_of: Mapping[str, str],
) -> Routes6:
    """The IPv6 half of the routing mode. v6_of maps an underlay member's IPv4 address to its
    IPv6 one (nodes, the router)."""
    mode = cluster.routing
    routers = routers6(network, v6_of)
    if mode == "cloud-routes":
        routes, routers = cloud_routes6(nodes, pod_subnet6, routers, _ports(network, nodes))
        return Routes6(tuple(routes), tuple(routers))
    if mode == "vxlan":
        routes, vteps = vxlan6(nodes, cluster)
        return Routes6(tuple(routes), tuple(routers), tuple(vteps))
    if mode == "bgp" and network is not None:
        return Routes6((), tuple(routers), network=bgp6(network, nodes, cluster, pod_subnet6, v6_of))
    return Routes6(tuple(host_gw6(nodes)), tuple(routers))
