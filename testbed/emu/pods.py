"""Pod sandboxes: a network namespace per pod, a veth pair into its node's cni0 bridge.

Part of emu/. This is what the bridge CNI plugin does for each pod (scenario 001's model),
batched for speed (README.md, "How it is built"): the pod namespaces are added in-process (emu/netnsadd.py), one
`ip -n <node> -batch` per node creates cni0 and the node's routes (plus, with vxlan,
flannel.1 and its neighbours; its forwarding entries take one `bridge -batch`), the veth
pairs are rtnetlink requests sent in-process from the node's namespace (emu/veths.py: the pod
end born directly inside the pod namespace as eth0, the node's end enslaved as it is made); then one
in-process rtnetlink socket per pod (emu/netlink.py, opened inside the pod's namespace by
setns — no subprocess, no interpreter per pod, its requests sent in one go) sets the pod's
address and default route. With bgp (Calico) there is no bridge: each pod's veth stays unenslaved, gets a /32
route to the pod and proxy ARP (set in-process, one setns per node), and the pod's
gateway is 169.254.1.1 (IPv6 only: a /128 route, and the veth's host end holds the gateway
fe80::ecee:eeff:feee:eeee itself). Nothing is ever created in the VM's root namespace.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import ipaddress
import socket
import threading
from collections.abc import Sequence
from contextlib import nullcontext
from types import ModuleType

from ..errors import KernelError
from ..kubeproxy import localhost_node_ports
from ..netns import in_netns
from ..plan.model import NodePlan, Plan, PodPlan, RoutePlan
from ..plan.network import CALICO_GATEWAY6, VtepPlan, pod_mtu
from . import rules
from .ledger import Ledger, netns_name
from .netlink import RT_SCOPE_LINK, NetlinkError, RtnlSocket, addr_add, link_up, no_ipv6_link_local, route_add
from .netnsadd import add_netns, shared_run_dir
from .netnsdel import delete_netns
from .overlay import apply_fdb, vtep_lines
from .pod_workers import in_workers
from .procsys import BATCH, PrivateProc
from .runner import Runner
from .veths import PodLink, add_pod_links

NETNS_DIR = "/run/netns"


def node_batch(
    node: NodePlan,
    pods: Sequence[PodPlan],
    routes: Sequence[RoutePlan],
    tag: str,
    mtu: int,
    with_bridge: bool = True,
    vtep: VtepPlan | None = None,
) -> list[str]:
    """ip -batch lines run inside the node's namespace (pure: unit-tested as text). The build
    runs the node's lines (pods=[]); each pod's lines say as `ip` commands what emu/veths.py
    makes in-process, and are the reference its integration test compares against.

    `with_bridge`: the node-level objects too (cni0, the VTEP), as at build time; `mtu` is
    the pods' (both veth ends); a node without a bridge (bgp) routes each pod by a /32.
    """
    lines: list[str] = []
    prefix = node.pod_cidr.split("/")[1]
    routed = not node.bridge
    if with_bridge and not routed:
        # A bridge without an explicit MAC takes its lowest port's and changes it when that
        # pod goes away: older pods' cached gateway MAC goes stale and their traffic is lost.
        # The bridge CNI plugin pins the MAC for this reason; so do we (stable, local).
        lines += [
            f"link add {node.bridge} address {bridge_mac(node.name)} type bridge",
            f"link set {node.bridge} mtu {mtu}",
            *(
                [f"addr add {node.gateway}/{prefix} dev {node.bridge}"]
                if ":" not in node.gateway
                else _ipv6only().bridge_lines6(node.bridge, node.gateway, prefix)  # an IPv6 cluster
            ),
            f"link set {node.bridge} up",
        ]
    if with_bridge and vtep is not None:
        lines += vtep_lines(vtep)
    for pod in pods:
        lines.append(
            f"link add {pod.host_veth} mtu {mtu} type veth peer name eth0 mtu {mtu} netns {netns_name(tag, pod.key)}"
        )
        # The clusters are IPv4 only: without an fe80:: address (set before the link is up) a
        # veth sends no DAD, router solicitation or MLD report; on a bridge, each of those is
        # flooded to every other pod of the node, a cost that grows with the square of the pods.
        # The pod's own end gets the same in configure_pod.
        lines.append(f"link set {pod.host_veth} addrgenmode none")
        if routed and ":" in pod.ip:  # IPv6 only: the host end holds Calico's link-local gateway (no proxy)
            lines += [
                f"addr add {CALICO_GATEWAY6}/64 dev {pod.host_veth} nodad",
                f"link set {pod.host_veth} up",
                f"route replace {pod.ip}/128 dev {pod.host_veth}",
            ]
        elif routed:
            lines += [f"link set {pod.host_veth} up", f"route replace {pod.ip}/32 dev {pod.host_veth} scope link"]
        else:
            # hairpin: a pod reaching itself through a Service (br_netfilter DNATs the bridged
            # frame back to it) needs the frame sent back out of the port it came in on, which
            # the kubelet sets up for the same reason (--hairpin-mode=hairpin-veth).
            lines += [
                f"link set {pod.host_veth} master {node.bridge} up",
                f"link set dev {pod.host_veth} type bridge_slave hairpin on",
            ]
    for route in routes:
        via = f" via {route.via}" if route.via else ""
        onlink = " onlink" if vtep is not None and route.dev == vtep.dev else ""
        lines.append(f"route replace {route.dst}{via} dev {route.dev}{onlink}")
    return lines


def proxy_arp_sysctls(pods: Sequence[PodPlan]) -> list[tuple[str, str]]:
    """Calico's host end of a pod's veth: answer ARP for anything routed elsewhere, at once."""
    out: list[tuple[str, str]] = []
    for pod in pods:
        out += [(f"net/ipv4/conf/{pod.host_veth}/proxy_arp", "1"), (f"net/ipv4/neigh/{pod.host_veth}/proxy_delay", "0")]
    return out


def bridge_mac(node: str) -> str:
    """A locally administered unicast MAC, stable per node name."""
    digest = hashlib.sha256(f"cni0/{node}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


def node_sysctls() -> list[tuple[str, str]]:
    """A node forwards between cni0 and eth0 (the kubelet/CNI prerequisite)."""
    return [
        ("net/ipv4/ip_forward", "1"),
        # br_netfilter: bridged pod-to-pod traffic on one node goes through the node's
        # iptables/nftables, as kube-proxy and NetworkPolicy providers require of a node.
        ("net/bridge/bridge-nf-call-iptables", "1"),
        # Pods' replies may come back by another path in some modes; do not drop them.
        ("net/ipv4/conf/all/rp_filter", "0"),
        ("net/ipv4/conf/default/rp_filter", "0"),
        *POD_SYSCTLS,
    ]


# ICMP errors are rate-limited per namespace by default: a burst of probes to a closed UDP
# port would see a few "refused" and thousands of false "timeouts". Real nodes keep the
# default; an emulator that measures reachability must not.
POD_SYSCTLS = [("net/ipv4/icmp_ratemask", "0")]


def write_sysctls(netns: str, values: Sequence[tuple[str, str]]) -> None:
    """Set per-namespace sysctls: /proc/sys/net is the view of the opening thread's netns
    (written through a procfs of our own: emu/procsys.py says why)."""
    with PrivateProc() as proc, in_netns(f"{NETNS_DIR}/{netns}"):
        for key, value in values:
            proc.write(key, value)


class PodNetwork:
    """Creates and deletes the pod sandboxes of a Plan, node by node."""

    def __init__(self, plan: Plan, ledger: Ledger, runner: Runner) -> None:
        self.plan, self.ledger, self.runner = plan, ledger, runner

    def build(self) -> None:
        tag = self.ledger.tag
        for node in self.plan.nodes:
            write_sysctls(netns_name(tag, node.key), node_sysctls())
            if ":" in node.host_ip:  # a single-stack IPv6 cluster (emu/ipv6only.py)
                _ipv6only().node_setup6(self.runner, netns_name(tag, node.key))
            elif self.plan.kube_proxy_mode == "iptables" and localhost_node_ports(self.plan.kube_proxy, node.host_ip):
                # kube-proxy's own sysctl for NodePorts on 127.0.0.1 (EnsureSysctl route_localnet)
                write_sysctls(netns_name(tag, node.key), [("net/ipv4/conf/all/route_localnet", "1")])
        self.add_pods(self.plan.pods, with_bridges=True)

    def add_pods(self, pods: Sequence[PodPlan], with_bridges: bool = False) -> None:
        tag = self.ledger.tag
        self.ledger.add_netns([netns_name(tag, p.key) for p in pods])
        network, mtu = self.plan.network, pod_mtu(self.plan)
        # The nodes' own objects (cni0, the VTEP, routes) first, while the VM's mount table is
        # small (an `ip -n` copies it into a mount namespace of its own, and each pod namespace
        # adds a mount to it: at 10,000 pods 0.2 s of system time a node). The nodes are
        # independent: all at once, from the loader pool, each batch started inside its node.
        jobs = []
        for node in self.plan.nodes:
            routes = [r for r in self.plan.routes if r.node == node.name] if with_bridges else []
            vtep = network.vtep(node.name) if network is not None else None
            lines = node_batch(node, [], routes, tag, mtu, with_bridge=with_bridges, vtep=vtep)
            if lines or (with_bridges and vtep is not None):
                jobs.append(functools.partial(self._node_job, node, lines, vtep if with_bridges else None))
        rules.in_parallel(jobs)
        shared = [p for p in pods if p.host_network]  # they live in their node's namespace
        pods = [p for p in pods if not p.host_network]
        if pods:  # in-process, as `ip netns add` does but without its per-name cost (netnsadd.py)
            shared_run_dir(NETNS_DIR)  # once: the nodes' batches below add their names unmarked
        if shared:
            host_network_sandboxes(self.runner, tag, shared, {n.name: n.key for n in self.plan.nodes})
        # Each node's pods, from namespace to configured sandbox, are one job; the jobs run on
        # every core at once (pod_workers: the kernel's work of one node's sandboxes runs
        # beside another's, where one thread left a core idle; README "Speed").
        by_node: dict[str, list[PodPlan]] = {}
        for pod in pods:
            by_node.setdefault(pod.node, []).append(pod)
        nodes = [(node, by_node[node.name]) for node in self.plan.nodes if node.name in by_node]
        stop = threading.Event()  # set by the first failure: every node's job ends at its next pod
        in_workers([functools.partial(self._node_pods, node, on_node, mtu, stop) for node, on_node in nodes], stop)

    def _node_pods(self, node: NodePlan, on_node: Sequence[PodPlan], mtu: int, stop: threading.Event) -> None:
        """One node's new sandboxes: their namespaces, veth pairs, then each pod's own setup
        (pods not reached when another node's job failed stay unconfigured, as a build that
        stops at its first failure leaves them; teardown deletes them all)."""
        tag = self.ledger.tag
        add_netns(NETNS_DIR, [netns_name(tag, p.key) for p in on_node], mark=False)
        ns = netns_name(tag, node.key)
        # an IPv6 cluster's routed (bgp) pods: their host ends hold Calico's link-local
        # gateway and a /128 each, which node_batch's lines say (run inside the node)
        six = [p for p in on_node if not node.bridge and ":" in p.ip]
        if six:
            self.runner.ip_batch_in(ns, node_batch(node, six, [], tag, mtu, with_bridge=False))
        # the other pods' pairs, by rtnetlink from the node's namespace (emu/veths.py says why)
        links = [PodLink(p.host_veth, netns_name(tag, p.key), p.ip) for p in on_node if p not in six]
        if links:
            add_pod_links(ns, links, mtu, bridge=node.bridge, folder=NETNS_DIR)
        if not node.bridge and not six:  # IPv6 only: no ARP to proxy
            write_sysctls(ns, proxy_arp_sysctls(on_node))
        for i in range(0, len(on_node), BATCH):  # a procfs per batch: its lookups stay short (procsys.py)
            with PrivateProc() as proc:
                for pod in on_node[i : i + BATCH]:
                    if stop.is_set():
                        return
                    try:
                        configure_pod(netns_name(tag, pod.key), pod, proc=proc)
                    except BaseException:
                        # the other jobs stop now, not once this batch's procfs is closed: that
                        # close waits for the kernel (procsys.py), and they went on meanwhile
                        stop.set()
                        raise

    def _node_job(self, node: NodePlan, lines: Sequence[str], vtep: VtepPlan | None) -> None:
        """One node's own part of add_pods: its batch (inside its namespace: Runner.ip_batch_in)
        and the VTEP's forwarding entries."""
        ns = netns_name(self.ledger.tag, node.key)
        if lines:
            self.runner.ip_batch_in(ns, lines)
        if vtep is not None:
            apply_fdb(self.runner, ns, vtep)

    def delete_pods(self, pods: Sequence[PodPlan]) -> None:
        """Deleting a pod's namespace destroys its veth pair too (the kernel removes the peer).

        The kernel tears a namespace down asynchronously, though; on a node without a bridge
        (bgp) the pod's /32 route would outlive the pod for a while, so its veth is deleted
        first, as Calico's CNI DEL does: one batch per node.
        """
        tag = self.ledger.tag
        for node in self.plan.nodes:
            veths = [p.host_veth for p in pods if p.node == node.name and not p.host_network]
            if veths and not node.bridge:
                self.runner.ip_batch([f"link del {v}" for v in veths], netns=netns_name(tag, node.key), check=False)
        names = [netns_name(tag, p.key) for p in pods]
        if names:  # in-process, as `ip -force netns del` does but sharing its waits (netnsdel.py)
            delete_netns(NETNS_DIR, names)  # what stays is the final sweep's to find and report


def host_network_sandboxes(runner: Runner, tag: str, pods: Sequence[PodPlan], node_keys: dict[str, str]) -> None:
    """hostNetwork pods: their /run/netns name is a bind mount of their node's namespace (what
    `ip netns attach` makes), so everything that enters a pod by its name (the agent, the shell,
    `ip netns exec` with the pod's own /etc/netns files) enters the node's network namespace.
    No veth, no address: the pod's IP is the node's. `netns del` removes only the name."""
    for pod in pods:
        path = f"{NETNS_DIR}/{netns_name(tag, pod.key)}"
        try:
            with open(path, "x", encoding="ascii"):
                pass  # the mount point, as `ip netns add` creates it
        except OSError as exc:
            raise KernelError(["create", path], exc.errno or 1, exc.strerror or str(exc)) from None
        runner.run(["mount", "--bind", f"{NETNS_DIR}/{netns_name(tag, node_keys[pod.node])}", path])


def configure_pod(netns: str, pod: PodPlan, proc: PrivateProc | None = None) -> None:
    """Inside the pod: lo up, eth0 with the pod IP, default route via the node's cni0.

    A gateway outside the pod's own prefix (bgp: a /32 address and 169.254.1.1) is first made
    reachable on eth0 by a link-scope route, as Calico's CNI plugin does. One rtnetlink socket
    opened inside the pod's namespace carries the requests, sent together (emu/netlink.py).
    `proc`: the procfs its sysctls are written through (emu/procsys.py), else a new one.
    """
    with nullcontext(proc) if proc is not None else PrivateProc() as sysctl, in_netns(f"{NETNS_DIR}/{netns}"):
        for key, value in POD_SYSCTLS:
            sysctl.write(key, value)
        lo, eth0 = socket.if_nametoindex("lo"), socket.if_nametoindex("eth0")
        rtnl = RtnlSocket()  # stays bound to the pod's namespace
    with rtnl:
        if ":" in pod.ip:  # a single-stack IPv6 cluster: no IPv4 at all (emu/ipv6only.py)
            v6 = _ipv6only()
            requests = [
                (link_up(lo), "link set lo up", 0),
                (no_ipv6_link_local(eth0), "link set eth0 addrgenmode none", 0),
                (v6.addr6_add(eth0, pod.ip, pod.prefix), f"addr add {pod.ip}/{pod.prefix} dev eth0 nodad", 0),
                (link_up(eth0), "link set eth0 up", 0),
                (v6.default6_add(eth0, pod.gateway), f"route add default via {pod.gateway} dev eth0", errno.EEXIST),
            ]
            _request(rtnl, requests, pod, netns)
            return
        requests = [
            (link_up(lo), "link set lo up", 0),
            (no_ipv6_link_local(eth0), "link set eth0 addrgenmode none", 0),
            (addr_add(eth0, pod.ip, pod.prefix), f"addr add {pod.ip}/{pod.prefix} dev eth0", 0),
            (link_up(eth0), "link set eth0 up", 0),
        ]
        if ipaddress.ip_address(pod.gateway) not in ipaddress.ip_network(f"{pod.ip}/{pod.prefix}", strict=False):
            requests.append(
                (
                    route_add(pod.gateway, 32, eth0, scope=RT_SCOPE_LINK),
                    f"route add {pod.gateway}/32 dev eth0 scope link",
                    0,
                )
            )
        requests.append(
            (
                route_add("0.0.0.0", 0, eth0, gateway=pod.gateway),
                f"route add default via {pod.gateway} dev eth0",
                errno.EEXIST,
            )
        )
        _request(rtnl, requests, pod, netns)


def _request(rtnl: RtnlSocket, requests: list, pod: PodPlan, netns: str) -> None:
    try:
        rtnl.request_all(
            [r for r, _, _ in requests], what=[w for _, w, _ in requests], tolerate=[t for _, _, t in requests]
        )
    except NetlinkError as exc:
        raise KernelError(
            ["netlink", f"(pod {pod.namespace}/{pod.name}, netns {netns})"], exc.errno or 1, str(exc)
        ) from None


def _ipv6only() -> ModuleType:
    """emu/ipv6only.py, imported on use: it builds on emu/dualstack.py, which imports this module."""
    from . import ipv6only

    return ipv6only
