"""Probe groups over IPv6 in a dual-stack cluster (issue 15; pure, experiment loading layer).

A probe group with `family: IPv6` expands like any other (expand.py), then every address of
its probes is swapped for its IPv6 twin: the pods', nodes' (HOST-IP, cni0 gateway, VTEP) and
external hosts' IPv6 addresses, a Service's IPv6 ClusterIP, LoadBalancer and external addresses
(plan/edges6.py); the expected source addresses too, so the NAT-free check compares IPv6 with
IPv6. Then kind's IPv6 masquerade (rules/egress6.py) is applied to what a pod sends out of the
IPv6 pod subnet: the server expects the pod's node (`kind_masquerade6`). An address with no
IPv6 twin (an IPv4 cluster, a SingleStack Service, container-to-container's 127.0.0.1 becomes
::1) is an error naming it.
Every method goes over IPv6: the socket prober (TCP, UDP, SCTP from a raw socket), scapy (ICMP
is ICMPv6 echo there; a crafted source address is the group's own, IPv6), iperf3 and HTTP
(`http://[addr]:port/`, traffic/http.py; a name resolved to its AAAA record).
"""

from __future__ import annotations

import dataclasses
import ipaddress
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
    for vtep6 in dual.vteps:  # vxlan: a node's traffic to other nodes' pods leaves from its VTEP's address
        vtep4 = plan.network.vtep(vtep6.node) if plan.network is not None else None
        if vtep4 is not None:
            out[vtep4.address.split("/")[0]] = vtep6.address.split("/")[0]
    for s in plan.services.services if plan.services else ():
        fams = dual.services.get(s.key)
        ip6 = fams.ip_of("IPv6") if fams is not None and s.proxied else None
        if ip6:  # an IPv6-first cluster's SingleStack IPv6 Service too (plan/v6first.py)
            out[s.cluster_ip] = ip6
        # a LoadBalancer's and an external address's twin: the IPv6 one at the same position
        out.update(zip(s.load_balancer_ingress, dual.lb_ingress.get(s.key, ())))
        out.update(zip(s.external_ips, dual.external_ips.get(s.key, ())))
    for p in plan.pods:  # a hostNetwork pod's address is its node's
        if p.key in dual.host_network:
            out[p.ip] = dual.host_network[p.key]
    return out


def kind_masquerade6(plan: Plan, probes: Sequence[PlannedProbe]) -> list[PlannedProbe]:
    """IPv6 probes as kind's IPv6 masquerade changes them (rules/egress6.py): a pod's packet to
    an address outside the IPv6 pod subnet that is not its node's own, nor a Service address
    its node's kube-proxy DNATs to a pod first, leaves with its node's IPv6 HOST-IP. The sender's
    own address among the expected sources becomes that one, and the communication says so."""
    dual = plan.dual
    assert dual is not None
    pods6 = ipaddress.IPv6Network(dual.pod_subnet)
    dnat = {ip for f in dual.services.values() if (ip := f.ip_of("IPv6"))}
    dnat |= {ip for ips in (*dual.lb_ingress.values(), *dual.external_ips.values()) for ip in ips}
    out = []
    for p in probes:
        node = dual.node(p.src.node) if p.src.kind == "pod" and p.src.node else None
        if (
            node is None
            or ipaddress.ip_address(p.src.ip) not in pods6
            or ipaddress.ip_address(p.dst_ip) in pods6
            or p.dst_ip in dnat
            or p.dst_ip in (node.host_ip, node.gateway)
            or p.src.ip not in p.expect_sources
        ):
            out.append(p)
            continue
        comm = p.communication
        if "SNAT expected" not in comm:
            comm += " (kind's IPv6 masquerade, SNAT expected)"
        sources = tuple(node.host_ip if ip == p.src.ip else ip for ip in p.expect_sources)
        out.append(dataclasses.replace(p, expect_sources=sources, communication=comm))
    return out


def family_of(ip: str) -> str:
    return "IPv6" if ":" in ip else "IPv4"


def default_family(plan: Plan, source_ip: str | None) -> str:
    """A group's family when it names none: a given scapy sourceIP's own, else the cluster's
    primary family as kubectl shows it (a pod's podIP is podIPs[0]): IPv6 in a single-stack IPv6
    cluster and an IPv6-first dual-stack one (plan/v6first.py), IPv4 in every other cluster, so
    IPv4 and IPv4-first experiments send what they always did."""
    if source_ip:
        return family_of(source_ip)
    v6first = plan.dual is not None and plan.dual.families[0] == "IPv6"
    return "IPv6" if ":" in plan.pod_subnet or v6first else "IPv4"


def no_ipv4(family: str) -> None:
    """A single-stack IPv6 cluster has no IPv4 address to send from or to: a group's explicit
    `family: IPv4` (or IPv4 sourceIP) is an error there, as a dual-stack family on an IPv4 one."""
    if family == "IPv4":
        message = "IPv4 (given, or a sourceIP's) in a single-stack IPv6 cluster: it has no IPv4 address"
        raise SpecError([Problem("", "family", message)])


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
    return kind_masquerade6(plan, out)


def ipv4_probes(plan: Plan, probes: Sequence[PlannedProbe]) -> list[PlannedProbe]:
    """An IPv6-first cluster's IPv4 probes (plan/v6first.py): a Service they target must have the
    IPv4 family (its SingleStack default is IPv6 there); SpecError naming the first one without."""
    dual = plan.dual
    if dual is None or dual.families[0] != "IPv6":
        return list(probes)
    for p in probes:
        fams = dual.services.get(p.service) if p.service else None  # ns/name
        if fams is not None and fams.families and "IPv4" not in fams.families:
            raise SpecError(
                [
                    Problem(
                        "",
                        "family",
                        f"Service {p.service} has no IPv4 ClusterIP (SingleStack IPv6, an IPv6-first cluster's "
                        "default): probe it with family: IPv6, or give it PreferDualStack",
                    )
                ]
            )
    return list(probes)


def single_stack_probes(probes: Sequence[PlannedProbe]) -> list[PlannedProbe]:
    """A single-stack IPv6 cluster's probes (spec/ipv6.py): every address is IPv6 already but
    container-to-container's, which goes to ::1. Every method goes over IPv6, as a dual-stack
    cluster's IPv6 probes (the socket prober's TCP, UDP and SCTP, scapy, iperf3, HTTP)."""
    out = []
    for p in probes:
        if p.dst_ip == "127.0.0.1":
            sources = tuple("::1" if ip == "127.0.0.1" else ip for ip in p.expect_sources)
            p = dataclasses.replace(p, dst_ip="::1", expect_sources=sources)
        out.append(p)
    return out
