"""kind's `networking.ipFamily` and the IPv6 half of a dual-stack topology (spec/, pure).

kind takes `ipFamily: ipv4 | ipv6 | dual` and, for dual, comma-separated podSubnet and
serviceSubnet pairs (one CIDR per family, the primary family first); its defaults are
10.244.0.0/16 and 10.96.0.0/16 for IPv4, fd00:10:244::/56 and fd00:10:96::/112 for IPv6.
kube-controller-manager gives each node a /64 of the IPv6 podSubnet (node-cidr-mask-size-ipv6)
and refuses a node mask more than 16 bits longer than the cluster's.

What is emulated so far (issue 15): `dual` with IPv4 as the primary family — every existing part
of the testbed keeps working on the IPv4 addresses, and nodes, pods and the underlay's members
get an IPv6 address beside them, routed in every routing mode (plan/dualroutes.py); racks get
an IPv6 segment each (spec/underlay6.py), routed in every mode too (the route controller's /64s
and the top-of-rack speaker's sessions out of each rack's port). `dual` with IPv6 first makes
IPv6 the primary family of the API objects over the same two halves (spec/v6first.py).
Single-stack IPv6 is spec/ipv6.py's.
"""

from __future__ import annotations

import ipaddress

from ..errors import Problem

FAMILIES = ("ipv4", "ipv6", "dual")
DEFAULT_POD_SUBNET_V6 = "fd00:10:244::/56"
DEFAULT_SERVICE_SUBNET_V6 = "fd00:10:96::/112"
# The underlay's IPv6 (ULA) segment beside the IPv4 one: members keep their IPv4 host number
# (192.168.1.2 is fd00:192:168:1::2), so the two families read alike.
DEFAULT_UNDERLAY_V6 = "fd00:192:168:1::/64"
NODE_MASK_V6 = 64  # kube-controller-manager's --node-cidr-mask-size-ipv6 default
MAX_MASK_GAP = 16  # kube-controller-manager: node mask at most 16 bits longer than the cluster's
DUAL_ROUTING = ("host-gw", "cloud-routes", "vxlan", "bgp")  # routing modes planned for IPv6
KIND = "kind Cluster"


def split_pair(value: str, field: str, family: str, default_v6: str, file: str) -> tuple[str, str, list[Problem]]:
    """(IPv4 CIDR, IPv6 CIDR, problems) of a podSubnet/serviceSubnet for this ipFamily.

    ipv4: one IPv4 CIDR (the value as it is; topology.py checks it further, as before);
    dual: `v4,v6` (kind: IPv4 first makes IPv4 the primary family) or `v6,v4` (IPv6 primary:
    spec/v6first.py says which came first), or one IPv4 CIDR with the IPv6 default added. Errors are the API server's kind of message, one per problem.
    """
    parts = [p.strip() for p in value.split(",")] if value else []
    if family == "ipv4":
        if len(parts) > 1 or (parts and _version(parts[0]) == 6):
            return (
                value,
                "",
                [Problem(file, field, f"{_cut(value)}: an IPv6 or dual-stack range needs ipFamily: dual", KIND)],
            )
        return value, "", []
    if len(parts) > 2:
        return "", "", [Problem(file, field, f"{_cut(value)}: at most one CIDR per IP family (two)", KIND)]
    if len(parts) == 1 and _version(parts[0]) == 4:
        parts.append(default_v6)
    if len(parts) != 2:
        return (
            "",
            "",
            [
                Problem(
                    file, field, f"{_cut(value)}: ipFamily dual needs an IPv4 and an IPv6 CIDR, comma-separated", KIND
                )
            ],
        )
    versions = (_version(parts[0]), _version(parts[1]))
    if versions == (6, 4):  # IPv6 first: the IPv6-primary cluster (spec/v6first.py)
        return parts[1], parts[0], []
    if versions == (6, None):
        return "", "", [Problem(file, field, f"{_cut(parts[1])} is not a valid IPv4 CIDR", KIND)]
    if versions[0] == versions[1]:
        return "", "", [Problem(file, field, f"{_cut(value)}: the two CIDRs must be of different IP families", KIND)]
    if versions[1] != 6:
        return "", "", [Problem(file, field, f"{_cut(parts[1])} is not a valid IPv6 CIDR", KIND)]
    return parts[0], parts[1], []


def check_v6(
    file: str,
    pod6: str,
    svc6: str,
    under6: str,
    node_mask: int,
    nodes: int,
    routing: str,
    racks: int,
    kube_proxy_mode: str = "iptables",
) -> list[Problem]:
    """The IPv6 half of a dual-stack topology: valid ULA/global ranges, disjoint, room per node."""
    problems: list[Problem] = []
    nets: list[tuple[ipaddress.IPv6Network, str, str]] = []
    for value, field, doc in (
        (pod6, "networking.podSubnet", KIND),
        (svc6, "networking.serviceSubnet", KIND),
        (under6, "underlay.subnetIPv6", "TestbedConfig"),
    ):
        net = _network6(value, field, doc, file, problems)
        if net is not None:
            nets.append((net, field, doc))
    for i, (a, fa, da) in enumerate(nets):
        for b, fb, _ in nets[i + 1 :]:
            if a.overlaps(b):
                problems.append(Problem(file, fa, f"{a} overlaps {fb} {b}", da))
    pods = next((n for n, f, _ in nets if f == "networking.podSubnet"), None)
    svcs = next((n for n, f, _ in nets if f == "networking.serviceSubnet"), None)
    under = next((n for n, f, _ in nets if f == "underlay.subnetIPv6"), None)
    if pods is not None:
        if node_mask < pods.prefixlen:
            problems.append(
                Problem(file, "podCIDRPrefixIPv6", f"/{node_mask} is larger than podSubnet {pods}", "TestbedConfig")
            )
        elif node_mask - pods.prefixlen > MAX_MASK_GAP:
            problems.append(
                Problem(
                    file,
                    "podCIDRPrefixIPv6",
                    f"/{node_mask} is more than {MAX_MASK_GAP} bits longer than podSubnet {pods} "
                    f"(kube-controller-manager's node-cidr-mask-size-ipv6 limit)",
                    "TestbedConfig",
                )
            )
        elif 2 ** (node_mask - pods.prefixlen) < nodes:
            problems.append(
                Problem(
                    file,
                    "networking.podSubnet",
                    f"{pods} holds fewer /{node_mask} node CIDRs than the {nodes} nodes",
                    KIND,
                )
            )
    if svcs is not None and svcs.prefixlen < 108:
        # the API server's limit: an IPv6 service range is at most 20 bits of hosts (/108)
        problems.append(
            Problem(
                file, "networking.serviceSubnet", f"{svcs} is too large: an IPv6 serviceSubnet is /108 or smaller", KIND
            )
        )
    if under is not None and under.prefixlen > 120:
        problems.append(Problem(file, "underlay.subnetIPv6", f"{under} is too small for the nodes", "TestbedConfig"))
    if routing not in DUAL_ROUTING:
        problems.append(
            Problem(
                file,
                "routing",
                f"{routing!r} with ipFamily dual: no IPv6 routing is planned for it "
                f"(choose one of {', '.join(DUAL_ROUTING)})",
                "TestbedConfig",
            )
        )
    # kube_proxy_mode: both modes have their IPv6 proxier (nftables: table ip6 kube-proxy)
    # racks (several underlay subnets) get their IPv6 segments in spec/underlay6.py
    return problems


def _network6(value: str, field: str, doc: str, file: str, problems: list[Problem]) -> ipaddress.IPv6Network | None:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        problems.append(Problem(file, field, f"{_cut(value)} is not a valid network: {exc}", doc))
        return None
    if not isinstance(net, ipaddress.IPv6Network):
        problems.append(Problem(file, field, f"{_cut(value)} is not an IPv6 network", doc))
        return None
    for special, what in _UNUSABLE_V6:
        if net.overlaps(special):
            problems.append(
                Problem(
                    file, field, f"{net} overlaps {special} ({what}): it cannot be given to interfaces or routed", doc
                )
            )
            return None
    return net


_UNUSABLE_V6 = tuple(
    (ipaddress.IPv6Network(n), what)
    for n, what in (
        ("::/8", "unspecified, loopback, IPv4-mapped"),
        ("fe80::/10", "link-local"),
        ("ff00::/8", "multicast"),
    )
)


def _version(text: str) -> int | None:
    try:
        return ipaddress.ip_network(text, strict=False).version
    except ValueError:
        return None


def _cut(value: str, limit: int = 80) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")
