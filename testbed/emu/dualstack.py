"""The IPv6 half of a dual-stack cluster in the kernel (issue 15; emu/).

A controller beside the others (emu/controllers.py order: right after the pod sandboxes, before
the agent): at its first sync it gives every node and external host its address on the IPv6
underlay, every node's cni0 its /64's gateway and IPv6 forwarding, and the host-gw routes to the
other nodes' /64s (one `ip -batch` per member); at every sync each new pod gets its IPv6 address
on eth0 and a default route via cni0, over one in-process rtnetlink socket (emu/netlink.py's
way: no subprocess per pod). The routing mode's IPv6 objects (plan/dualroutes.py) come with the
first sync too: the router's IPv6 side and routes (cloud-routes, bgp top-of-rack; with racks its
gateway on each rack's segment, and every member's routes to the other racks' segments),
flannel-v6.1 and its entries (vxlan); with bgp each new pod is a /128 whose gateway, Calico's link-local
address, the host end of its veth holds (one `ip -batch` per node and sync). bird2's IPv6
sessions start after this controller (emu/controllers.py's Routing), on addresses present.

Keeping the build fast (issue 15): every address is added with IFA_F_NODAD, so nothing waits
for duplicate address detection (the addresses are planned unique); pods' eth0 still has no
fe80:: address (emu/pods.py), so no router solicitations; the MLD reports a pod sends for its
solicited-node group are not flooded to the node's other pods (mld_filter): the cost stays
linear in the pods.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import socket
import struct
from collections.abc import Mapping, Sequence

from ..errors import KernelError
from ..netns import in_netns
from ..plan import edges6
from ..plan.dualroutes import VTEP6_DEV, RouterV6, pod_addressing6
from ..plan.dualstack import DualStackPlan
from ..plan.model import Plan, PodPlan
from ..plan.network import CALICO_GATEWAY6
from ..plan.service_model import ServicesPlan
from .daemon import Daemon
from .ledger import Ledger, netns_name
from .netlink import (
    IFA_ADDRESS,
    IFA_LOCAL,
    NLM_F_CREATE,
    NLM_F_EXCL,
    RT_SCOPE_UNIVERSE,
    RT_TABLE_MAIN,
    RTA_GATEWAY,
    RTA_OIF,
    RTM_NEWADDR,
    RTM_NEWROUTE,
    RTN_UNICAST,
    RTPROT_STATIC,
    NetlinkError,
    RtnlSocket,
    _attr,
)
from .overlay import apply_fdb, vtep_lines
from .pods import NETNS_DIR, write_sysctls
from .runner import Runner

IFA_F_NODAD = 0x02
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")
NODE_SYSCTLS6 = [
    ("net/ipv6/conf/all/forwarding", "1"),
    # bridged pod-to-pod IPv6 goes through ip6tables too (kube-proxy's DNAT on one node)
    ("net/bridge/bridge-nf-call-ip6tables", "1"),
]


def addr6_add(index: int, address: str, prefix: int) -> tuple[int, int, bytes]:
    """`ip -6 addr add A/P dev X nodad`."""
    raw = socket.inet_pton(socket.AF_INET6, address)
    body = _IFADDRMSG.pack(socket.AF_INET6, prefix, IFA_F_NODAD, RT_SCOPE_UNIVERSE, index)
    return RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body + _attr(IFA_LOCAL, raw) + _attr(IFA_ADDRESS, raw)


def default6_add(oif: int, gateway: str) -> tuple[int, int, bytes]:
    """`ip -6 route add default via GW dev X`."""
    body = _RTMSG.pack(socket.AF_INET6, 0, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
    body += _attr(RTA_GATEWAY, socket.inet_pton(socket.AF_INET6, gateway))
    return RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body + _attr(RTA_OIF, struct.pack("=i", oif))


# A router solicits a neighbour for a packet it forwards from its link-local address, and sends
# nothing while that address is still tentative (its DAD takes a second): every node gets a
# link-local address without DAD on cni0 (the same on every node, each bridge is its own link,
# as Calico gives every host-side veth fe80::ecee:eeff:feee:eeee) and on eth0 (unique on the
# underlay: derived from the member's IPv6 underlay address).
BRIDGE_LINK_LOCAL = "fe80::1"


def link_local(address: str) -> str:
    """fe80:: plus the interface identifier (the low 64 bits) of an underlay address."""
    return str(ipaddress.IPv6Address((0xFE80 << 112) | (int(ipaddress.IPv6Address(address)) & ((1 << 64) - 1))))


def node_lines6(dual: DualStackPlan, node: str, bridge: str) -> list[str]:
    """ip -batch lines inside a node (pure: unit-tested as text). No bridge (bgp): no cni0
    addresses; vxlan: flannel-v6.1 and its neighbours, its routes onlink as flannel sets them."""
    n = dual.node(node)
    prefix = n.pod_cidr.split("/")[1]
    lines = [
        f"addr add {n.host_ip}/{dual.prefix_of(node)} dev eth0 nodad",
        f"addr add {link_local(n.host_ip)}/64 dev eth0 nodad",
    ]
    if bridge:
        lines += [
            f"addr add {n.gateway}/{prefix} dev {bridge} nodad",
            f"addr add {BRIDGE_LINK_LOCAL}/64 dev {bridge} nodad",
        ]
    vtep = dual.vtep(node)
    if vtep is not None:
        lines += vtep_lines(vtep)
    return lines + [
        f"route replace {r.dst} via {r.via} dev {r.dev}" + (" onlink" if r.dev == VTEP6_DEV else "")
        for r in dual.routes
        if r.node == node
    ]


ROUTER_SYSCTLS6 = [("net/ipv6/conf/all/forwarding", "1")]


def router_lines6(router: RouterV6, prefix: int) -> list[str]:
    """ip -batch lines inside the router: its IPv6 address (and link-local) per port, then the
    route controller's IPv6 routes (pure)."""
    lines: list[str] = []
    for dev, address in router.addresses:
        lines += [f"addr add {address}/{prefix} dev {dev} nodad", f"addr add {link_local(address)}/64 dev {dev} nodad"]
    return lines + [f"route replace {r.dst} via {r.via} dev {r.dev}" for r in router.routes]


def rack_router_lines6(plan: Plan, router: RouterV6) -> list[str]:
    """ip -batch lines inside the router of racks (pure): its IPv6 gateway on each rack's segment
    with that segment's prefix and a link-local address (plan/edges6.py), then the routing mode's
    IPv6 routes (cloud-routes' route controller), which need those addresses on-link."""
    dual = plan.dual
    assert dual is not None
    lines = edges6.router_lines6(plan, dual.racks)
    ports = {r.name: r for r in dual.racks}
    for intf in plan.network.routers[0].interfaces if plan.network is not None and plan.network.routers else ():
        rack = ports.get(intf.subnet)
        if rack is not None and rack.router_ip:
            lines.append(f"addr add {link_local(rack.router_ip)}/64 dev {intf.dev} nodad")
    return lines + router_lines6(dataclasses.replace(router, addresses=()), dual.underlay_prefix)


def underlay_lines6(dual: DualStackPlan) -> dict[str, list[str]]:
    """member -> its ip -batch lines routing the other racks' IPv6 segments via its rack's router."""
    out: dict[str, list[str]] = {}
    for r in dual.underlay_routes:
        out.setdefault(r.node, []).append(f"route replace {r.dst} via {r.via} dev {r.dev}")
    return out


def calico_lines6(dual: DualStackPlan, pods: Sequence[PodPlan]) -> list[str]:
    """ip -batch lines inside a bgp node for its new pods (pure): the host end of each pod's
    veth holds Calico's link-local gateway (without DAD), and the pod's /128 is routed to it."""
    lines: list[str] = []
    for pod in pods:
        lines += [
            f"addr add {CALICO_GATEWAY6}/64 dev {pod.host_veth} nodad",
            f"route replace {dual.pods[pod.key]}/128 dev {pod.host_veth}",
        ]
    return lines


# Without a multicast querier a bridge floods every multicast frame: each new pod's MLD reports
# (two per pod, for its solicited-node group) reached every other pod of its node — measured: a
# pod received ~3 frames per later pod, a cost growing with the square of the pods. Nobody here
# queries or routes multicast, so the node's bridge drops pods' MLD reports as they enter it,
# once per frame (bridge prerouting, before snooping and flooding). Neighbour solicitations are
# flooded like IPv4's ARP requests, as before.
MLD_TABLE = "testbed-mld"


def mld_filter() -> str:
    """`nft -f` text of the node's bridge table that drops pods' MLD reports (pure). Its only
    bridge is cni0 (none with bgp, where nothing floods; this kernel's nft cannot match ibrname)."""
    return (
        f"table bridge {MLD_TABLE} {{\n"
        "  chain prerouting {\n"
        "    type filter hook prerouting priority -300; policy accept;\n"
        "    icmpv6 type { mld-listener-report, mld2-listener-report } drop "
        'comment "pods\' MLD reports: no querier here, the bridge would flood them to every pod"\n'
        "  }\n"
        "}\n"
    )


def configure_pod6(netns: str, pod: PodPlan, address: str, gateway: str, prefix: int) -> None:
    """Inside the pod: eth0's IPv6 address (no DAD) and the IPv6 default route via cni0."""
    with in_netns(f"{NETNS_DIR}/{netns}"):
        eth0 = socket.if_nametoindex("eth0")
        rtnl = RtnlSocket()
    with rtnl:
        try:
            rtnl.request_all(
                [addr6_add(eth0, address, prefix), default6_add(eth0, gateway)],
                what=[f"addr add {address}/{prefix} dev eth0 nodad", f"route add default via {gateway} dev eth0"],
                tolerate=[0, errno.EEXIST],
            )
        except NetlinkError as exc:
            raise KernelError(
                ["netlink", f"(pod {pod.namespace}/{pod.name}, netns {netns})"], exc.errno or 1, str(exc)
            ) from None


def agent_ipv6(plan: Plan, tag: str) -> dict[str, str]:
    """netns path -> IPv6 address, for the agent's config (`ip6`: serve the ports on IPv6 too)."""
    if plan.dual is None:
        if ":" in plan.pod_subnet:  # a single-stack IPv6 cluster (plan/ipv6.py): every address is IPv6
            return {f"{NETNS_DIR}/{netns_name(tag, p.key)}": p.ip for p in plan.pods} | {
                f"{NETNS_DIR}/{netns_name(tag, x.key)}": x.ip for x in plan.externals
            }
        return {}
    out = {f"{NETNS_DIR}/{netns_name(tag, p.key)}": plan.dual.pods[p.key] for p in plan.pods if p.key in plan.dual.pods}
    for p in plan.pods:  # hostNetwork pods answer on their node's IPv6 address (plan/edges6.py)
        if p.key in plan.dual.host_network:
            out[f"{NETNS_DIR}/{netns_name(tag, p.key)}"] = plan.dual.host_network[p.key]
    for x in plan.externals:
        if x.name in plan.dual.externals:
            out[f"{NETNS_DIR}/{netns_name(tag, x.key)}"] = plan.dual.externals[x.name]
    return out


def with_ipv6(config: dict, ipv6: Mapping[str, str]) -> dict:
    """The agent's config with `ip6` on the entries that have an IPv6 address."""
    for entry in config["pods"]:
        if entry["netns"] in ipv6:
            entry["ip6"] = ipv6[entry["netns"]]
    return config


class DualStack:
    """Nodes, external hosts and pods get their IPv6 half (nothing to do for an IPv4 plan)."""

    phase = "pods"

    def __init__(self, ledger: Ledger, runner: Runner) -> None:
        self.ledger, self.runner = ledger, runner
        self.built = False
        self.live: set[tuple[str, str]] = set()  # (key, uid) of the pods configured

    def sync(self, desired: Plan) -> None:
        dual = desired.dual
        if dual is None:
            return
        tag = self.ledger.tag
        if not self.built:
            for node in desired.nodes:
                ns = netns_name(tag, node.key)
                write_sysctls(ns, NODE_SYSCTLS6)
                self.runner.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=mld_filter())
                self.runner.ip_batch(node_lines6(dual, node.name, node.bridge), netns=ns)
                vtep = dual.vtep(node.name)
                if vtep is not None:
                    apply_fdb(self.runner, ns, vtep)
            for router in dual.routers:
                ns = netns_name(tag, router.key)
                write_sysctls(ns, ROUTER_SYSCTLS6)
                lines = (
                    rack_router_lines6(desired, router) if dual.racks else router_lines6(router, dual.underlay_prefix)
                )
                if lines:
                    self.runner.ip_batch(lines, netns=ns)
            for x in desired.externals:
                if x.name in dual.externals:
                    self.runner.ip_batch(
                        [
                            f"addr add {dual.externals[x.name]}/{dual.prefix_of(x.name)} dev eth0 nodad",
                            f"addr add {link_local(dual.externals[x.name])}/64 dev eth0 nodad",
                        ],
                        netns=netns_name(tag, x.key),
                    )
            if dual.racks:  # members reach the other racks' IPv6 segments before bird2 peers across them
                keys = {n.name: n.key for n in desired.nodes} | {x.name: x.key for x in desired.externals}
                for member, lines in underlay_lines6(dual).items():
                    self.runner.ip_batch(lines, netns=netns_name(tag, keys[member]))
            self.built = True
        self.add_pods(
            desired, dual, [p for p in desired.pods if (p.key, p.uid) not in self.live and p.key in dual.pods]
        )
        self.live &= {(p.key, p.uid) for p in desired.pods}

    def add_pods(self, desired: Plan, dual: DualStackPlan, pods: Sequence[PodPlan]) -> None:
        tag = self.ledger.tag
        for node in desired.nodes:  # bgp: the node's end first, so the pod's gateway answers
            on_node = [p for p in pods if p.node == node.name]
            if not node.bridge and on_node:
                self.runner.ip_batch(calico_lines6(dual, on_node), netns=netns_name(tag, node.key))
        for pod in pods:
            v6 = dual.node(pod.node)
            prefix, gateway = pod_addressing6(desired.routing, v6, v6.gateway)
            configure_pod6(netns_name(tag, pod.key), pod, dual.pods[pod.key], gateway, prefix)
            self.live.add((pod.key, pod.uid))

    def daemons(self) -> list[Daemon]:
        return []

    def stop(self) -> None:
        """Nothing of its own: the namespaces it configured go with their owners."""


def ipv6_view(plan: Plan) -> Plan | None:
    """The plan as kube-proxy's IPv6 proxier sees it: the nodes' IPv6 HOST-IPs and /64s, the IPv6
    pod and service subnets, the dual-stack Services with their IPv6 ClusterIPs and EndpointSlices.
    A change travelling to the nodes (plan conditions, issue 19) travels to it too: a node whose
    kube-proxy is behind sees the IPv6 side of its own view of the EndpointSlices, conditions
    (ready, serving, terminating) included, as the IPv4 proxier does."""
    dual = plan.dual
    if dual is None or plan.services is None or plan.kube_proxy_mode not in ("iptables", "nftables"):
        return None
    conditions = plan.conditions
    if conditions is not None and conditions.proxy_views:
        converted: dict[int, ServicesPlan] = {}  # nodes that share an IPv4 view share its IPv6 one
        views = {}
        for node, view in conditions.proxy_views.items():
            if id(view) not in converted:
                converted[id(view)] = dual.ipv6_services(view)
            views[node] = converted[id(view)]
        conditions = dataclasses.replace(conditions, proxy_views=views)
    return dataclasses.replace(
        plan,
        nodes=tuple(
            dataclasses.replace(n, host_ip=dual.node(n.name).host_ip, pod_cidr=dual.node(n.name).pod_cidr)
            for n in plan.nodes
        ),
        pod_subnet=dual.pod_subnet,
        service_subnet=dual.service_subnet,
        services=dual.ipv6_services(plan.services),
        dual=None,
        conditions=conditions,
    )
