"""Probe groups over IPv6 in a dual-stack cluster (issue 15; pure, experiment loading layer).

A probe group with `family: IPv6` expands like any other (expand.py), then every address of
its probes is swapped for its IPv6 twin: the pods', nodes' (HOST-IP and cni0 gateway) and
external hosts' IPv6 addresses, a Service's IPv6 ClusterIP; the expected source addresses too,
so the NAT-free check compares IPv6 with IPv6. An address with no IPv6 twin (an IPv4 cluster,
a SingleStack Service, container-to-container's 127.0.0.1 becomes ::1) is an error naming it.
Every method but http goes over IPv6: the socket prober (TCP, UDP, SCTP from a raw socket),
scapy (ICMP is ICMPv6 echo there; a crafted source address is the group's own, IPv6) and iperf3.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..errors import Problem, SpecError
from ..plan.model import Plan
from .expand import Party, PlannedProbe

FAMILIES = ("IPv4", "IPv6")


def ipv6_addresses(plan: Plan) -> dict[str, str]:
    """Every IPv4 address of the plan that has an IPv6 twin -> that twin."""
    dual = plan.dual
    if dual is None:
        return {}
    out = {"127.0.0.1": "::1"}
    out.update({p.ip: dual.pods[p.key] for p in plan.pods if p.key in dual.pods})
    for n in plan.nodes:
        v6 = dual.node(n.name)
        out[n.host_ip], out[n.gateway] = v6.host_ip, v6.gateway
    out.update({x.ip: dual.externals[x.name] for x in plan.externals if x.name in dual.externals})
    for s in plan.services.services if plan.services else ():
        fams = dual.services.get(s.key)
        if fams is not None and len(fams.cluster_ips) == 2:
            out[s.cluster_ip] = fams.cluster_ips[1]
    return out


def family_of(ip: str) -> str:
    return "IPv6" if ":" in ip else "IPv4"


def ipv6_probes(plan: Plan, probes: Sequence[PlannedProbe]) -> list[PlannedProbe]:
    """The same probes sent over IPv6; SpecError naming the first address without a twin."""
    if plan.dual is None:
        raise SpecError([Problem("", "family", "IPv6 needs a dual-stack cluster (networking.ipFamily: dual)")])
    twin = ipv6_addresses(plan)

    def v6(ip: str, what: str) -> str:
        if ip not in twin:
            raise SpecError([Problem("", "family", f"{what} {ip} has no IPv6 address (a SingleStack Service?)")])
        return twin[ip]

    def party(p: Party) -> Party:
        return dataclasses.replace(p, ip=v6(p.ip, f"{p.kind} {p.name}")) if p.ip else p

    out = []
    for p in probes:
        if p.method == "http":
            raise SpecError([Problem("", "family", "HTTP probes are not sent over IPv6 yet")])
        what = f"Service {p.service}" if p.service else f"{p.dst.kind} {p.dst.name}"
        out.append(
            dataclasses.replace(
                p,
                src=party(p.src),
                dst=party(p.dst),
                dst_ip=v6(p.dst_ip, what),
                expect_sources=tuple(twin.get(ip, ip) for ip in p.expect_sources),
                source_ip=p.source_ip if p.source_ip is None or ":" in p.source_ip else v6(p.source_ip, "sourceIP"),
            )
        )
    return out
