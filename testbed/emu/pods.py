"""Pod sandboxes: a network namespace per pod, a veth pair into its node's cni0 bridge.

Part of emu/. This is what the bridge CNI plugin does for each pod (seed 001's model),
batched for speed (design.md §5): one `ip -batch` creates every pod namespace, one
`ip -n <node> -batch` per node creates cni0, the veth pairs (the pod end born directly
inside the pod namespace as eth0), the enslaving and the host-gw routes; then one
in-process netlink session per pod (pyroute2, socket opened inside the pod's namespace
by setns — no subprocess, no interpreter per pod) sets the pod's address and default
route. Nothing is ever created in the VM's root namespace.
"""

from __future__ import annotations

import errno
import hashlib
from typing import Sequence

from ..plan.model import NodePlan, Plan, PodPlan, RoutePlan
from ..traffic.netns import in_netns
from .ledger import Ledger, netns_name
from .runner import Runner

NETNS_DIR = "/run/netns"


def node_batch(node: NodePlan, pods: Sequence[PodPlan], routes: Sequence[RoutePlan], tag: str,
               mtu: int, with_bridge: bool = True) -> list[str]:
    """ip -batch lines run inside the node's namespace (pure: unit-tested as text)."""
    lines: list[str] = []
    prefix = node.pod_cidr.split("/")[1]
    if with_bridge:
        # A bridge without an explicit MAC takes its lowest port's and changes it when that
        # pod goes away: older pods' cached gateway MAC goes stale and their traffic is lost.
        # The bridge CNI plugin pins the MAC for this reason; so do we (stable, local).
        lines += [f"link add {node.bridge} address {bridge_mac(node.name)} type bridge",
                  f"link set {node.bridge} mtu {mtu}",
                  f"addr add {node.gateway}/{prefix} dev {node.bridge}",
                  f"link set {node.bridge} up"]
    for pod in pods:
        lines += [f"link add {pod.host_veth} mtu {mtu} type veth peer name eth0 netns {netns_name(tag, pod.key)}",
                  f"link set {pod.host_veth} master {node.bridge} up"]
    for route in routes:
        via = f" via {route.via}" if route.via else ""
        lines.append(f"route replace {route.dst}{via} dev {route.dev}")
    return lines


def bridge_mac(node: str) -> str:
    """A locally administered unicast MAC, stable per node name."""
    digest = hashlib.sha256(f"cni0/{node}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


def node_sysctls() -> list[tuple[str, str]]:
    """A node forwards between cni0 and eth0 (the kubelet/CNI prerequisite)."""
    return [("net/ipv4/ip_forward", "1"),
            # br_netfilter: bridged pod-to-pod traffic on one node goes through the node's
            # iptables/nftables, as kube-proxy and NetworkPolicy providers require of a node.
            ("net/bridge/bridge-nf-call-iptables", "1"),
            # Pods' replies may come back by another path in some modes; do not drop them.
            ("net/ipv4/conf/all/rp_filter", "0"),
            ("net/ipv4/conf/default/rp_filter", "0"),
            *POD_SYSCTLS]


# ICMP errors are rate-limited per namespace by default: a burst of probes to a closed UDP
# port would see a few "refused" and thousands of false "timeouts". Real nodes keep the
# default; an emulator that measures reachability must not.
POD_SYSCTLS = [("net/ipv4/icmp_ratemask", "0")]


def write_sysctls(netns: str, values: Sequence[tuple[str, str]]) -> None:
    """Set per-namespace sysctls: /proc/sys/net is the view of the opening thread's netns."""
    with in_netns(f"{NETNS_DIR}/{netns}"):
        for key, value in values:
            with open(f"/proc/sys/{key}", "w", encoding="ascii") as handle:
                handle.write(value)


class PodNetwork:
    """Creates and deletes the pod sandboxes of a Plan, node by node."""

    def __init__(self, plan: Plan, ledger: Ledger, runner: Runner) -> None:
        self.plan, self.ledger, self.runner = plan, ledger, runner

    def build(self) -> None:
        tag = self.ledger.tag
        for node in self.plan.nodes:
            write_sysctls(netns_name(tag, node.key), node_sysctls())
        self.add_pods(self.plan.pods, with_bridges=True)

    def add_pods(self, pods: Sequence[PodPlan], with_bridges: bool = False) -> None:
        tag = self.ledger.tag
        names = [netns_name(tag, p.key) for p in pods]
        self.ledger.add_netns(names)
        if names:
            self.runner.ip_batch([f"netns add {n}" for n in names])
        for node in self.plan.nodes:
            on_node = [p for p in pods if p.node == node.name]
            routes = [r for r in self.plan.routes if r.node == node.name] if with_bridges else []
            lines = node_batch(node, on_node, routes, tag, self.plan.mtu, with_bridge=with_bridges)
            if lines:
                self.runner.ip_batch(lines, netns=netns_name(tag, node.key))
        for pod in pods:
            configure_pod(netns_name(tag, pod.key), pod)

    def delete_pods(self, pods: Sequence[PodPlan]) -> None:
        """Deleting a pod's namespace destroys its veth pair too (the kernel removes the peer)."""
        names = [netns_name(self.ledger.tag, p.key) for p in pods]
        if names:
            self.runner.ip_batch([f"netns del {n}" for n in names], check=False)


def configure_pod(netns: str, pod: PodPlan) -> None:
    """Inside the pod: lo up, eth0 with the pod IP, default route via the node's cni0."""
    from pyroute2 import IPRoute  # imported here: the pure layers never need it

    with in_netns(f"{NETNS_DIR}/{netns}"):
        ipr = IPRoute()  # the netlink socket stays bound to the pod's namespace
        for key, value in POD_SYSCTLS:
            with open(f"/proc/sys/{key}", "w", encoding="ascii") as handle:
                handle.write(value)
    try:
        lo = ipr.link_lookup(ifname="lo")[0]
        eth0 = ipr.link_lookup(ifname="eth0")[0]
        ipr.link("set", index=lo, state="up")
        ipr.addr("add", index=eth0, address=pod.ip, prefixlen=pod.prefix)
        ipr.link("set", index=eth0, state="up")
        try:
            ipr.route("add", dst="0.0.0.0/0", gateway=pod.gateway, oif=eth0)
        except Exception as exc:  # pyroute2 raises NetlinkError with an errno
            if getattr(exc, "code", None) != errno.EEXIST:
                raise
    finally:
        ipr.close()
