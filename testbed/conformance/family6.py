"""The conformance cases over IPv6 (`testbed conformance --family ipv6|dual`, issue 15); pure.

The generated cases are written against the IPv4 model (ipBlocks on the nodes' /24s, the pod
network, the underlay, 0.0.0.0/0, pods' /32s in the ported Network Policy API tests). On a
dual-stack cluster each CIDR has an IPv6 twin, as the upstream e2e suite writes its ipBlocks on
IPv6 clusters (a pod's /128 for its /32, its node's /64 for the /24):

    0.0.0.0/0                -> ::/0
    the pod network (/16)    -> the IPv6 pod network (kind's /56)
    nodes' pod CIDRs (/24)   -> their /64s; a union of them (10.244.0.0/23) -> the union of the /64s
    a part of one node's /24 -> the same host offsets in its /64 (a /32 -> the pod's /128)
    the underlay (/24)       -> the IPv6 underlay (/64); a member's /32 -> its /128

`ipv6` replaces every IPv4 CIDR of a case by its twin (IPv6 CIDRs already there, like the Network
Policy API's `::/0`, stay); `dual` keeps the IPv4 peer and adds its twin beside it (an ipBlock peer
gets a twin peer, a `networks` list its twin CIDRs), so one policy applies to both families, each
measured against its own oracle. A twin in the other family matches nothing, so neither changes
the other family's verdicts.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable
from typing import Any

import yaml

from ..errors import UsageError
from ..plan.ipv6 import is_ipv6
from ..plan.model import Plan
from .decode import decode_text, dump
from .steps import Case
from .xyz import MODEL_UNDERLAY, NODE_CIDRS, POD_NETWORK, model_namespaces

FAMILIES = ("ipv4", "ipv6", "dual")
Net = ipaddress.IPv4Network | ipaddress.IPv6Network


class NoTwin(ValueError):
    """A CIDR of a case with no IPv6 twin in this cluster."""


def cidr_twins(plan: Plan) -> Callable[[str], str]:
    """The IPv6 twin of an IPv4 CIDR of the conformance cases, on `plan`'s dual-stack cluster or
    its single-stack IPv6 one (whose IPv4 side is the model the cases are written against:
    xyz.py's pod network and node /24s, the underlay 192.168.1.0/24)."""
    dual = plan.dual
    if is_ipv6(plan):
        pods4 = ipaddress.IPv4Network(POD_NETWORK)
        pods6 = ipaddress.IPv6Network(plan.pod_subnet)
        nodes = [
            (ipaddress.IPv4Network(NODE_CIDRS[n.name]), ipaddress.IPv6Network(n.pod_cidr))
            for n in plan.nodes
            if n.name in NODE_CIDRS
        ]
        under4 = ipaddress.IPv4Network(MODEL_UNDERLAY)
        under6 = ipaddress.IPv6Network(f"{plan.nodes[0].host_ip}/{plan.nodes[0].underlay_prefix}", strict=False)
        return _twins(pods4, pods6, nodes, under4, under6)
    if dual is None:
        raise NoTwin("IPv6 needs a dual-stack or IPv6 cluster (networking.ipFamily: dual or ipv6)")
    pods4 = ipaddress.IPv4Network(plan.pod_subnet)
    pods6 = ipaddress.IPv6Network(dual.pod_subnet)
    nodes = [(ipaddress.IPv4Network(n.pod_cidr), ipaddress.IPv6Network(dual.node(n.name).pod_cidr)) for n in plan.nodes]
    under4 = ipaddress.IPv4Network(f"{plan.nodes[0].host_ip}/{plan.nodes[0].underlay_prefix}", strict=False)
    under6 = ipaddress.IPv6Network(dual.underlay_subnet)
    return _twins(pods4, pods6, nodes, under4, under6)


def _twins(
    pods4: ipaddress.IPv4Network,
    pods6: ipaddress.IPv6Network,
    nodes: list[tuple[ipaddress.IPv4Network, ipaddress.IPv6Network]],
    under4: ipaddress.IPv4Network,
    under6: ipaddress.IPv6Network,
) -> Callable[[str], str]:
    """The twin function of an IPv4 side (pod network, node CIDRs, underlay) and its IPv6 one."""
    node4 = nodes[0][0].prefixlen if nodes else 24
    node6 = nodes[0][1].prefixlen if nodes else 64

    def twin(cidr: str) -> str:
        net = ipaddress.ip_network(cidr, strict=False)
        if net.version == 6:
            return str(net)
        if net.prefixlen == 0:
            return "::/0"
        for v4, v6 in nodes:
            if net == v4:
                return str(v6)
            if net.subnet_of(v4):  # the same host offsets in the node's /64
                first = v6.network_address + (int(net.network_address) - int(v4.network_address))
                return str(ipaddress.IPv6Network(f"{first}/{128 - (32 - net.prefixlen)}"))
        if net == pods4:
            return str(pods6)
        if net.subnet_of(pods4) and net.prefixlen < node4:  # a union of node CIDRs: of their /64s
            index = (int(net.network_address) - int(pods4.network_address)) >> (32 - node4)
            first = pods6.network_address + (index << (128 - node6))
            return str(ipaddress.IPv6Network(f"{first}/{node6 - (node4 - net.prefixlen)}"))
        if net == under4:
            return str(under6)
        if net.subnet_of(under4):
            first = under6.network_address + (int(net.network_address) - int(under4.network_address))
            return str(ipaddress.IPv6Network(f"{first}/{128 - (32 - net.prefixlen)}"))
        raise NoTwin(f"{cidr}: no IPv6 twin in this cluster (not the pod network, a node's part of it or the underlay)")

    return twin


def _walk(doc: Any, twin: Callable[[str], str], dual: bool) -> Any:
    """A policy document with its CIDRs twinned (ipBlock cidr/except, tier `networks`)."""
    if isinstance(doc, list):
        out: list[Any] = []
        for item in doc:
            new = _walk(item, twin, dual)
            out.append(item if dual and isinstance(item, dict) and "ipBlock" in item else new)
            if dual and isinstance(item, dict) and "ipBlock" in item and new != item:
                out.append(new)  # the IPv4 peer stays, its IPv6 twin beside it
        return out
    if not isinstance(doc, dict):
        return doc
    out_doc: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "ipBlock" and isinstance(value, dict):
            out_doc[key] = {
                **value,
                "cidr": twin(value["cidr"]),
                **({"except": [twin(e) for e in value["except"]]} if value.get("except") else {}),
            }
        elif key == "networks" and isinstance(value, list):
            mapped = [twin(str(n)) for n in value]
            out_doc[key] = list(dict.fromkeys([*value, *mapped] if dual else mapped))
        else:
            out_doc[key] = _walk(value, twin, dual)
    return out_doc


def _texts(texts: tuple[str, ...], twin: Callable[[str], str], dual: bool) -> tuple[str, ...]:
    return tuple(dump(_walk(yaml.safe_load(t), twin, dual)).rstrip("\n") + "\n" for t in texts)


def family_case(case: Case, family: str, twin: Callable[[str], str]) -> Case:
    """`case` for `family` (FAMILIES): itself for ipv4; its CIDRs twinned (ipv6) or doubled (dual),
    decoded again through the manifest loader, so a twinned case is valid per the API."""
    if family == "ipv4":
        return case
    steps = []
    for i, step in enumerate(case.steps):
        texts, tier_texts = _texts(step.texts, twin, family == "dual"), _texts(step.tier_texts, twin, family == "dual")
        both = texts + tier_texts
        m = (
            decode_text("---\n".join(both), f"conformance/{case.name}-{family}-{i}", model_namespaces())
            if both
            else None
        )
        steps.append(
            dataclasses.replace(
                step,
                policies=m.policies if m else (),
                texts=texts,
                tiers=m.cluster_policies if m else (),
                tier_texts=tier_texts,
            )
        )
    return dataclasses.replace(case, steps=tuple(steps))


def resolve_family(family: str | None, ip_family: str, topology: str) -> str:
    """The suite's family on a cluster of `ip_family` (the topology's networking.ipFamily):
    `family` None follows the cluster (ipv6 on an IPv6 cluster, else ipv4); a family the cluster
    lacks is a UsageError naming the topology. ipv4 and ipv6 run on a dual-stack cluster's half."""
    if family is None:
        return "ipv6" if ip_family == "ipv6" else "ipv4"
    if family not in FAMILIES:
        raise UsageError(f"--family {family[:20]!r}: expected one of {', '.join(FAMILIES)}")
    has = {"ipv4": ("ipv4",), "ipv6": ("ipv6",), "dual": ("ipv4", "ipv6", "dual")}[ip_family]
    if family not in has:
        raise UsageError(
            f"--family {family}: {topology[:200]}: networking.ipFamily is {ip_family}, "
            f"which has no {'IPv4' if family == 'ipv4' else 'IPv6' if family == 'ipv6' else 'dual-stack'} "
            f"(use --family {' or '.join(has)})"
        )
    return family


def measured_families(family: str) -> tuple[int, ...]:
    """The IP versions whose truth tables a step measures."""
    return {"ipv4": (4,), "ipv6": (6,), "dual": (4, 6)}[family]
