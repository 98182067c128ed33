"""kind's `networking.ipFamily: ipv6`: a single-stack IPv6 cluster (issue 15; spec/, pure).

Design (the seam): the plan has one *primary* family. In an IPv6 cluster the primary ranges ARE
IPv6 — ClusterSpec.pod_subnet, service_subnet, underlay_subnet and node_cidr_prefix hold kind's
IPv6 values (fd00:10:244::/56, fd00:10:96::/112, a /64 per node, the ULA underlay
fd00:192:168:1::/64) — so every planned pod, node, host and Service address is IPv6 and there is
no IPv4 anywhere in the plan, the kernel or what the shell shows (no hidden IPv4 on a pod's or
node's interface: that would be a fake). The planners (ipam, services, DNS, kube-proxy and policy
compilers) already work on any address; the kernel-facing code switches on the address family
(emu/ipv6only.py: pod addresses without DAD, ip6tables-restore, the policy table's IPv6 twin,
the agent's IPv6 sockets, kube-dns's IPv6 ClusterIP in resolv.conf, AAAA-only answers).

What is built: every routing mode — host-gw, cloud-routes, vxlan (plan/ipv6.py) and bgp (bird2
with IPv6-only sessions, plan/bird.py) — over one underlay segment or racks (each subnet's `cidr`
IPv6, or its `cidrIPv6`; the router forwards IPv6 between them), kube-proxy iptables and nftables
mode (the nft renderer writes `ip6 kube-proxy` for an IPv6 Services range, as for a dual-stack
cluster). What is not is refused in one line naming what is missing (exit 2), as the dual-stack
refusals are.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Sequence
from typing import Any

from ..errors import Problem
from .dualstack import DEFAULT_UNDERLAY_V6, KIND, NODE_MASK_V6
from .model import UnderlaySubnet

V6_ROUTING = ("host-gw", "cloud-routes", "vxlan", "bgp")
V6_PROXY_MODES = ("iptables", "nftables", "none")  # nftables: the `ip6 kube-proxy` table
# the cluster's own Services take the 1st and 10th addresses of serviceSubnet (kubernetes, kube-dns)
MAX_SERVICE_PREFIX_V6 = 124


def single(value: str | None, field: str, default: str, file: str) -> tuple[str, list[Problem]]:
    """(the IPv6 CIDR, problems) of an ipv6 cluster's podSubnet/serviceSubnet: one IPv6 CIDR."""
    if not value:
        return default, []
    parts = [p.strip() for p in value.split(",")]
    if len(parts) > 1:
        return "", [Problem(file, field, f"{_cut(value)}: two CIDRs (dual-stack) need ipFamily: dual", KIND)]
    try:
        version = ipaddress.ip_network(parts[0], strict=False).version
    except ValueError:
        return parts[0], []  # the validation names the bad network (spec/dualstack.py check_v6)
    if version != 6:
        return "", [Problem(file, field, f"{_cut(value)}: an IPv4 range needs ipFamily: ipv4 or dual", KIND)]
    return parts[0], []


def primary_fields(pod: str, svc: str, subnet: object, opts: dict[str, Any]) -> dict[str, Any]:
    """ClusterSpec fields of an ipv6 cluster: the IPv6 ranges as the primary (only) ones; the
    `*_v6` fields mirror them, so the dual-stack checks of the IPv6 ranges apply unchanged. The
    underlay is `underlay.subnetIPv6`, or `underlay.subnet` when that is given (it must then be
    IPv6: the validation says so), or the ULA default."""
    opts.pop("underlay_subnet", None)
    under = opts.pop("underlay_subnet_v6", None) or (subnet if isinstance(subnet, str) else "") or DEFAULT_UNDERLAY_V6
    mask = opts.pop("node_cidr_prefix_v6", None) or NODE_MASK_V6
    opts.pop("node_cidr_prefix", None)  # the IPv4 node mask: no IPv4 here
    return {
        "ip_family": "ipv6",
        "pod_subnet": pod,
        "service_subnet": svc,
        "underlay_subnet": under,
        "node_cidr_prefix": mask,
        "pod_subnet_v6": pod,
        "service_subnet_v6": svc,
        "underlay_subnet_v6": under,
        "node_cidr_prefix_v6": mask,
    }


def racks_v6(subnets: Sequence[UnderlaySubnet]) -> tuple[UnderlaySubnet, ...]:
    """An ipv6 cluster's racks: each subnet's `cidrIPv6` when it gives one, else its `cidr`
    (which must then be IPv6: the validation names an IPv4 one), as the primary (only) ranges."""
    return tuple(dataclasses.replace(s, cidr=s.cidr_v6 or s.cidr, cidr_v6="") for s in subnets)


def refusals(file: str, routing: str, kube_proxy_mode: str, racks: int, advertise: bool) -> list[Problem]:
    """What an IPv6 cluster does not have yet, one line each, naming what is missing. Every
    routing mode is built (V6_ROUTING; bgp: bird2's IPv6-only sessions under a hashed router id,
    plan/bird.py), every kube-proxy mode (nftables writes the `ip6 kube-proxy` table) and racks
    (each subnet's IPv6 `cidr` or `cidrIPv6`, the router forwarding IPv6 between them)."""
    out: list[Problem] = []
    if routing not in V6_ROUTING:  # the decoder refuses unknown modes already: kept as a guard
        out.append(Problem(file, "routing", f"{routing!r} with ipFamily ipv6: not planned", "TestbedConfig"))
    # advertiseServiceSubnet: the IPv6 Service range is routed from outside as the IPv4 one
    # (plan/service_routes.py works on any range; `advertise` stays for the callers)
    return out


def _cut(value: str, limit: int = 80) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")
