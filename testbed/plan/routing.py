"""Cross-node routing of pod CIDRs, one function per mode (part of plan/).

The scenarios name the ways pod networks of different nodes reach each other (000, 002, 003):

- host-gw (flannel's host-gw backend, scenario 002's "route 10.244.1.0 via 192.168.1.3"): every
  node routes each peer's pod CIDR via that peer's HOST-IP. The next hop must be on the
  node's own L2 segment: across racks there is no such route, and the plan says so.
- cloud-routes (scenario 003's cloud controller manager with --allocate-node-cidrs and
  --configure-cloud-routes): nodes send the cluster CIDR to the cloud's gateway, the underlay
  router, on which a route controller programs one route per node pod CIDR.
- vxlan (flannel's vxlan backend): a VTEP flannel.1 per node (VNI 1, UDP 8472, nolearning);
  per peer a permanent neighbour entry (the peer VTEP's address 10.244.N.0 -> its MAC), a
  forwarding entry (that MAC -> the peer's HOST-IP) and an onlink route of the peer's pod
  CIDR via its VTEP address; pods get MTU 1450 (underlay MTU - 50).
- bgp (Calico): no bridge; a /32 route per pod to its veth, proxy ARP on the node end of the
  veth answering for the pods' gateway 169.254.1.1; bird2 on each node announces its pod
  CIDR to its peers (full mesh, route reflectors, or the top-of-rack router).

Each mode in MODES returns the node routes the testbed programs and its warnings;
`plan_network` adds the rest of what a mode needs (router routes, VTEPs, BGP speakers).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..spec.model import BgpOptions, ClusterSpec, VxlanOptions
from . import bird
from .model import ExternalPlan, NodePlan, RoutePlan
from .network import (
    CALICO_GATEWAY,
    CALICO_GATEWAY6,
    VXLAN_OVERHEAD,
    BgpPeerPlan,
    BgpSpeakerPlan,
    NetworkPlan,
    RouterPlan,
    VtepPlan,
)
from .underlay import ROUTER_NAME, plan_underlay, router_ips

VTEP_DEV = "flannel.1"


@dataclass(frozen=True)
class RoutingContext:
    """What a mode needs beyond the nodes; the default is one L2 segment without a router."""

    rack: Mapping[str, str] = field(default_factory=dict)  # node -> rack ("" everywhere by default)
    gateway: Mapping[str, str] = field(default_factory=dict)  # rack -> router address
    pod_subnet: str = "10.244.0.0/16"
    mtu: int = 1500
    vxlan: VxlanOptions = VxlanOptions()
    bgp: BgpOptions = BgpOptions()

    def same_segment(self, a: NodePlan, b: NodePlan) -> bool:
        return self.rack.get(a.name, "") == self.rack.get(b.name, "")


RouteMode = Callable[..., tuple[list[RoutePlan], list[str]]]


class NodePlanLike(Protocol):
    """A node as a VTEP sees it: a NodePlan, or a dual-stack node's IPv6 half."""

    @property
    def name(self) -> str: ...
    @property
    def host_ip(self) -> str: ...


def _peers(node: NodePlan, nodes: Sequence[NodePlan], chosen: dict[str, str], warnings: list[str]) -> list[NodePlan]:
    """The peers whose pod CIDR this node can route: not its own range, one route per range."""
    own = ipaddress.ip_network(node.pod_cidr)
    out = []
    for peer in nodes:
        if peer.name == node.name:
            continue
        if ipaddress.ip_network(peer.pod_cidr).overlaps(own):
            # The kernel already delivers this range locally: a route to the peer would never
            # be chosen, which is exactly scenario 002's failure.
            warnings.append(
                f"{node.name}: no route to {peer.name}'s pod CIDR {peer.pod_cidr}, it overlaps its own {node.pod_cidr}"
            )
            continue
        if peer.pod_cidr in chosen:
            # One destination, one route: the first peer wins, the other is unreachable.
            warnings.append(
                f"{node.name}: {peer.name}'s pod CIDR {peer.pod_cidr} is already routed to "
                f"{chosen[peer.pod_cidr]}; {peer.name}'s pods are unreachable from here"
            )
            continue
        chosen[peer.pod_cidr] = peer.name
        out.append(peer)
    return out


def host_gw(nodes: Sequence[NodePlan], ctx: RoutingContext | None = None) -> tuple[list[RoutePlan], list[str]]:
    ctx = ctx or RoutingContext()
    routes: list[RoutePlan] = []
    warnings: list[str] = []
    for node in nodes:
        far: list[NodePlan] = []
        for peer in _peers(node, nodes, {}, warnings):
            if not ctx.same_segment(node, peer):
                far.append(peer)  # the next hop would not be on-link: the kernel refuses it
                continue
            routes.append(
                RoutePlan(
                    node.name, peer.pod_cidr, peer.host_ip, "eth0", f"host-gw: pod CIDR of {peer.name} via its HOST-IP"
                )
            )
        if far:
            warnings.append(
                f"{node.name} ({ctx.rack.get(node.name)}): no host-gw route to the pod CIDRs of "
                + ", ".join(f"{p.name} ({ctx.rack.get(p.name)}) {p.pod_cidr}" for p in far)
                + ": their HOST-IPs are not on its L2 segment"
            )
    return routes, warnings


def cloud_routes(nodes: Sequence[NodePlan], ctx: RoutingContext | None = None) -> tuple[list[RoutePlan], list[str]]:
    """Nodes: the cluster CIDR via their rack's gateway (a cloud VM's default route does that)."""
    ctx = ctx or RoutingContext()
    routes = [
        RoutePlan(
            n.name,
            ctx.pod_subnet,
            ctx.gateway.get(ctx.rack.get(n.name, ""), ""),
            "eth0",
            "cloud-routes: the cluster CIDR via the cloud's gateway, which routes each node's pod CIDR",
        )
        for n in nodes
    ]
    return routes, []


def controller_routes(
    nodes: Sequence[NodePlan], router: RouterPlan, rack: Mapping[str, str]
) -> tuple[list[RoutePlan], list[str]]:
    """The route controller: one route per node pod CIDR on the cloud's router (scenario 003)."""
    dev = {i.subnet: i.dev for i in router.interfaces}
    routes: list[RoutePlan] = []
    warnings: list[str] = []
    chosen: dict[str, str] = {}
    for node in nodes:
        if node.pod_cidr in chosen:
            warnings.append(
                f"{router.name}: {node.name}'s pod CIDR {node.pod_cidr} is already routed to "
                f"{chosen[node.pod_cidr]}; {node.name}'s pods are unreachable through the router"
            )
            continue
        chosen[node.pod_cidr] = node.name
        routes.append(
            RoutePlan(
                router.name,
                node.pod_cidr,
                node.host_ip,
                dev[rack[node.name]],
                f"route controller: pod CIDR of {node.name} via its HOST-IP",
            )
        )
    return routes, warnings


def vtep_mac(node: str, dev: str = VTEP_DEV) -> str:
    """A locally administered unicast MAC for a node's VTEP `dev`, stable per node name."""
    digest = hashlib.sha256(f"{dev}/{node}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x0A, *digest[:5]))


def vtep_address(node: NodePlan) -> str:
    return str(ipaddress.ip_network(node.pod_cidr).network_address)


def vxlan(nodes: Sequence[NodePlan], ctx: RoutingContext | None = None) -> tuple[list[RoutePlan], list[str]]:
    routes: list[RoutePlan] = []
    warnings: list[str] = []
    for node in nodes:
        for peer in _peers(node, nodes, {}, warnings):
            routes.append(
                RoutePlan(
                    node.name,
                    peer.pod_cidr,
                    vtep_address(peer),
                    VTEP_DEV,
                    f"vxlan: pod CIDR of {peer.name} via its VTEP (onlink)",
                )
            )
    return routes, warnings


def vtep_plan(
    dev: str,
    options: VxlanOptions,
    mtu: int,
    node: NodePlanLike,
    address: str,
    peers: Sequence[tuple[NodePlanLike, str]],
) -> VtepPlan:
    """A node's VTEP `dev` (flannel.1, or flannel-v6.1 in plan/dualroutes.py): its address and,
    per (peer, peer VTEP address), the neighbour and forwarding entries flanneld programs."""
    return VtepPlan(
        node=node.name,
        dev=dev,
        vni=options.vni,
        port=options.port,
        local=node.host_ip,
        mac=vtep_mac(node.name, dev),
        address=address,
        mtu=mtu,
        neighbours=tuple((ip, vtep_mac(p.name, dev)) for p, ip in peers),
        fdb=tuple((vtep_mac(p.name, dev), p.host_ip) for p, _ in peers),
    )


def vteps(nodes: Sequence[NodePlan], ctx: RoutingContext) -> list[VtepPlan]:
    return [
        vtep_plan(
            VTEP_DEV,
            ctx.vxlan,
            ctx.mtu - VXLAN_OVERHEAD,
            node,
            f"{vtep_address(node)}/32",
            [(p, vtep_address(p)) for p in _peers(node, nodes, {}, [])],
        )
        for node in nodes
    ]


def bgp(nodes: Sequence[NodePlan], ctx: RoutingContext | None = None) -> tuple[list[RoutePlan], list[str]]:
    """The only static node route: the one that lets proxy ARP answer for 169.254.1.1.

    Linux answers an ARP request by proxy only when it routes the target out of another
    interface than the one the request came in on; a real node's default route does that for
    Calico. Emulated nodes have no default route, so this one stands for it. BGP learns the
    rest (see `speakers`).
    """
    routes = [
        RoutePlan(
            n.name,
            f"{CALICO_GATEWAY}/32",
            None,
            "eth0",
            "bgp: lets proxy ARP on the pods' veths answer for their gateway 169.254.1.1",
        )
        for n in nodes
        if ":" not in n.host_ip  # IPv6 only: the host veth holds the pods' gateway itself (no proxy)
    ]
    return routes, []


def _address_key(ip: str) -> int:
    """An underlay address as a number (IPv4 or, in an IPv6-only cluster, IPv6), to compare."""
    return int(ipaddress.ip_address(ip))


def _reflectors(nodes: Sequence[NodePlan], options: BgpOptions) -> list[str]:
    if options.route_reflectors:
        return list(options.route_reflectors)
    cps = [n.name for n in nodes if n.role == "control-plane"]
    return cps or [nodes[0].name]


def speakers(nodes: Sequence[NodePlan], ctx: RoutingContext, router: RouterPlan | None) -> list[BgpSpeakerPlan]:
    """One bird2 per node, plus the router in top-of-rack mode, with their rendered configs."""
    asn, topology = ctx.bgp.as_number, ctx.bgp.topology
    by_name = {n.name: n for n in nodes}
    # an IPv6-only cluster: no IPv4 address to be a router id, Calico's hashed one (plan/bird.py)
    v6only = any(":" in n.host_ip for n in nodes)
    peers: dict[str, list[BgpPeerPlan]] = {n.name: [] for n in nodes}
    cluster_id = ""
    if topology == "full-mesh":
        for n in nodes:
            for p in nodes:
                if p.name != n.name:
                    # One side per session: the node with the higher address waits.
                    passive = _address_key(n.host_ip) > _address_key(p.host_ip)
                    peers[n.name].append(BgpPeerPlan(p.name, p.host_ip, asn, "mesh", passive))
    elif topology == "route-reflector":
        rrs = _reflectors(nodes, ctx.bgp)
        cluster_id = bird.hash_router_id(rrs[0]) if v6only else by_name[rrs[0]].host_ip
        for n in nodes:
            for p in nodes:
                if p.name == n.name:
                    continue
                if n.name in rrs and p.name in rrs:  # reflectors peer with each other as plain iBGP
                    passive = _address_key(n.host_ip) > _address_key(p.host_ip)
                    peers[n.name].append(BgpPeerPlan(p.name, p.host_ip, asn, "mesh", passive))
                elif n.name in rrs:
                    peers[n.name].append(BgpPeerPlan(p.name, p.host_ip, asn, "client", True))
                elif p.name in rrs:
                    peers[n.name].append(BgpPeerPlan(p.name, p.host_ip, asn, "reflector", False))
    out = []
    expected_all = _announced(nodes)
    for n in nodes:
        if topology == "top-of-rack" and router is not None:
            rack = ctx.rack.get(n.name, "")
            peers[n.name].append(BgpPeerPlan(ROUTER_NAME, ctx.gateway[rack], asn, "reflector", False))
        own = ipaddress.ip_network(n.pod_cidr)
        expected = tuple(c for c in expected_all if not ipaddress.ip_network(c).overlaps(own))
        config = bird.node_config(
            n.name, n.host_ip, asn, n.pod_cidr, ctx.pod_subnet, peers[n.name], cluster_id, ctx.bgp.hold_time
        )
        router_id = bird.hash_router_id(n.name) if v6only else n.host_ip
        out.append(BgpSpeakerPlan(n.name, n.key, asn, router_id, (n.pod_cidr,), tuple(peers[n.name]), expected, config))
    if topology == "top-of-rack" and router is not None:
        local = {i.subnet: i.ip for i in router.interfaces}
        rpeers = [(BgpPeerPlan(n.name, n.host_ip, asn, "client", True), local[ctx.rack.get(n.name, "")]) for n in nodes]
        router_id = bird.hash_router_id(router.name) if v6only else router.interfaces[0].ip
        config = bird.router_config(router_id, asn, ctx.pod_subnet, rpeers, ctx.bgp.hold_time)
        out.append(
            BgpSpeakerPlan(
                router.name, router.key, asn, router_id, (), tuple(p for p, _ in rpeers), tuple(expected_all), config
            )
        )
    return out


def _announced(nodes: Sequence[NodePlan]) -> list[str]:
    """Each distinct pod CIDR once (overlapping ones are announced twice, one wins)."""
    return list(dict.fromkeys(n.pod_cidr for n in nodes))


MODES: dict[str, RouteMode] = {"host-gw": host_gw, "cloud-routes": cloud_routes, "vxlan": vxlan, "bgp": bgp}


def pod_bridge(mode: str) -> str:
    """The node's pod bridge: cni0, except with bgp (Calico routes each pod, no bridge)."""
    return "" if mode == "bgp" else "cni0"


def pod_addressing(mode: str, ip: str, node_cidr: str, gateway: str) -> tuple[str, str]:
    """(the pod's address with its prefix, its default gateway).

    Bridge modes: an address of the node CIDR, gateway cni0 (.1). bgp: the same address as a
    /32 and Calico's gateway 169.254.1.1, so that every packet leaves through the node (IPv6:
    a /128 and fe80::ecee:eeff:feee:eeee, which the host end of the pod's veth holds).
    """
    if mode == "bgp":
        if ":" in ip:  # an IPv6-only pod: a /128 behind Calico's link-local gateway (plan/dualroutes.py)
            return f"{ip}/128", CALICO_GATEWAY6
        return f"{ip}/32", CALICO_GATEWAY
    return node_cidr, gateway


def plan_network(
    cluster: ClusterSpec, nodes: Sequence[NodePlan], externals: Sequence[ExternalPlan]
) -> tuple[list[RoutePlan], list[str], NetworkPlan | None]:
    """Node routes, warnings, and everything else the mode and the underlay need.

    The NetworkPlan is None for one L2 segment routed host-gw, the historical default, whose
    plan (and golden file) this leaves unchanged.
    """
    subnets, router, underlay_routes = plan_underlay(cluster, nodes, externals)
    rack = {n.name: s.name for s in subnets for n in nodes if n.name in s.members}
    ctx = RoutingContext(
        rack=rack,
        gateway=router_ips(cluster),
        pod_subnet=cluster.pod_subnet,
        mtu=cluster.mtu,
        vxlan=cluster.vxlan,
        bgp=cluster.bgp,
    )
    mode = cluster.routing
    routes, warnings = MODES[mode](nodes, ctx)
    multi = len(subnets) > 1
    if mode == "host-gw" and multi and any(ctx.rack[a.name] != ctx.rack[b.name] for a in nodes for b in nodes):
        warnings.insert(
            0,
            "routing host-gw across racks: flannel's host-gw backend needs every node on one L2 "
            "segment, but the nodes sit in "
            + "; ".join(f"{s.name} ({', '.join(m for m in s.members if m in rack) or 'no node'})" for s in subnets)
            + ": pods cannot reach pods in another rack (choose cloud-routes, vxlan or bgp)",
        )
    if mode == "bgp" and multi and cluster.bgp.topology != "top-of-rack" and len({ctx.rack[n.name] for n in nodes}) > 1:
        warnings.insert(
            0,
            f"routing bgp ({cluster.bgp.topology}) across racks: the sessions cross the router, "
            "but the router does not speak BGP and has no route to any pod CIDR, so pod traffic "
            "between racks is dropped there (choose bgp.topology: top-of-rack)",
        )
    if mode == "host-gw" and not multi and router is None:
        return routes, warnings, None
    if mode == "cloud-routes" and router is not None:
        router_routes, more = controller_routes(nodes, router, rack)
        warnings += more
        router = RouterPlan(router.name, router.key, router.interfaces, tuple(router_routes))
    network = NetworkPlan(
        subnets=subnets,
        routers=(router,) if router is not None else (),
        underlay_routes=underlay_routes,
        pod_mtu=cluster.mtu - VXLAN_OVERHEAD if mode == "vxlan" else cluster.mtu,
        pod_bridge=mode != "bgp",
        vteps=tuple(vteps(nodes, ctx)) if mode == "vxlan" else (),
        bgp=tuple(speakers(nodes, ctx, router)) if mode == "bgp" else (),
    )
    return routes, warnings, network
