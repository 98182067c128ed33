"""Address management: node pod CIDRs, host-local pod IPs, underlay addresses (plan/).

Node CIDRs are carved from podSubnet in node order, as kube-controller-manager's range
allocator does with --allocate-node-cidrs (scenario 003): the first node gets 10.244.0.0/24.
Pod IPs come from the node's CIDR like the host-local IPAM plugin: the gateway (.1) is
cni0's, allocation continues after the last address handed out, so a deleted and recreated
pod gets a new IP (scenario 001), and wraps around to reuse released addresses only when the
range is exhausted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from ..errors import Problem, SpecError
from ..spec.model import ClusterSpec


def node_cidrs(cluster: ClusterSpec) -> tuple[dict[str, str], list[str]]:
    """Per node CIDR, honouring explicit ones; returns (cidrs, warnings).

    Two nodes with overlapping CIDRs are rejected unless allowOverlappingPodCIDRs, which
    reproduces scenario 002's two nodes both on 10.244.0.0 on purpose.
    """
    pod_net = ipaddress.ip_network(cluster.pod_subnet)
    taken = [ipaddress.ip_network(n.pod_cidr) for n in cluster.nodes if n.pod_cidr]
    free = (c for c in pod_net.subnets(new_prefix=cluster.node_cidr_prefix) if not any(c.overlaps(t) for t in taken))
    out: dict[str, str] = {}
    for node in cluster.nodes:
        if node.pod_cidr:
            out[node.name] = node.pod_cidr
        else:
            try:
                out[node.name] = str(next(free))
            except StopIteration:
                raise SpecError(
                    [
                        Problem(
                            cluster.file,
                            "networking.podSubnet",
                            f"no free /{cluster.node_cidr_prefix} left for node {node.name}",
                        )
                    ]
                ) from None
    warnings: list[str] = []
    problems: list[Problem] = []
    names = list(out)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if ipaddress.ip_network(out[a]).overlaps(ipaddress.ip_network(out[b])):
                msg = f"nodes {a} and {b} have overlapping pod CIDRs {out[a]} and {out[b]}"
                if cluster.allow_overlapping_pod_cidrs:
                    warnings.append(msg + ": pods on one cannot reach pods on the other (seed 002)")
                else:
                    problems.append(
                        Problem(
                            cluster.file,
                            f"nodes[{b}].podCIDR",
                            msg + " (set allowOverlappingPodCIDRs: true to demonstrate the clash)",
                            "TestbedConfig",
                        )
                    )
    if problems:
        raise SpecError(problems)
    return out, warnings


class HostLocal:
    """host-local style allocator over every node's CIDR; state is (next offset, in use)."""

    def __init__(
        self, cidrs: Mapping[str, str], next_offset: Mapping[str, int] | None = None, in_use: Iterable[str] = ()
    ) -> None:
        self.nets = {n: ipaddress.ip_network(c) for n, c in cidrs.items()}
        self.next = {n: (next_offset or {}).get(n, 2) for n in cidrs}
        self.used = set(in_use)

    def gateway(self, node: str) -> str:
        return str(self.nets[node].network_address + 1)

    def allocate(self, node: str) -> str | None:
        net = self.nets[node]
        last = net.num_addresses - 2  # broadcast excluded
        start = self.next[node]
        for step in range(last - 1):
            offset = 2 + (start - 2 + step) % (last - 1)
            ip = str(net.network_address + offset)
            if ip not in self.used:
                self.used.add(ip)
                self.next[node] = offset + 1 if offset + 1 <= last else 2
                return ip
        return None  # the node's range is exhausted: the pod stays Pending

    def release(self, ip: str) -> None:
        self.used.discard(ip)


def underlay_addresses(cluster: ClusterSpec) -> tuple[list[str], dict[str, str]]:
    """HOST-IPs of the nodes (from .2 as in scenario 002) and of the external hosts.

    With several subnets (racks), each rack numbers its own nodes from its firstHost, in node
    order; a node without `rack` sits in the first subnet. An external host without an
    explicit IP gets the first free address from .10 up of its rack (scenario 002's laptop is
    192.168.1.10).
    """
    subnets = {s.name: s for s in cluster.subnets()}
    nets = {s.name: ipaddress.ip_network(s.cidr) for s in subnets.values()}
    counts = dict.fromkeys(subnets, 0)
    nodes = []
    for node in cluster.nodes:
        rack = cluster.rack_of(node)
        nodes.append(str(nets[rack].network_address + subnets[rack].first_host + counts[rack]))
        counts[rack] += 1
    used = set(nodes)
    externals: dict[str, str] = {}
    problems = []
    for host in cluster.external_hosts:
        if host.ip:
            if host.ip in used:
                problems.append(
                    Problem(
                        cluster.file,
                        f"externalHosts[{host.name}].ip",
                        f"{host.ip} is already used by a node or another host",
                        "TestbedConfig",
                    )
                )
            externals[host.name] = host.ip
            used.add(host.ip)
    for host in cluster.external_hosts:
        if not host.ip:
            net = nets[host.rack or cluster.subnets()[0].name]
            candidates = (str(a) for a in net.hosts() if int(a) - int(net.network_address) >= 10)
            ip = next((a for a in candidates if a not in used), None)
            if ip is None:
                problems.append(
                    Problem(cluster.file, f"externalHosts[{host.name}]", "no free underlay address", "TestbedConfig")
                )
                continue
            externals[host.name] = ip
            used.add(ip)
    if problems:
        raise SpecError(problems)
    return nodes, externals


def rack_of_ip(cluster: ClusterSpec, ip: str) -> str:
    """The underlay subnet (rack) holding an address; the first subnet if none does."""
    addr = ipaddress.ip_address(ip)
    for sub in cluster.subnets():
        if addr in ipaddress.ip_network(sub.cidr):
            return sub.name
    return cluster.subnets()[0].name
