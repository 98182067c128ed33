"""The rule path of one flow across the cluster (`testbed explain --trace`); pure, no root.

Every node's netfilter tables are read from the desired state, as emu/ loads them — kube-proxy's
(iptables or nftables mode), the NetworkPolicy table, the egress masquerade — merged into one
ruleset per node (Plan.rulesets, plan/rulesets.py). The flow's first packet is then followed with the one tracer
(rules/tracer.py) on each node it crosses: the sender's node (from a pod: prerouting with
kube-proxy's DNAT, forward with the policy's egress check, postrouting with masquerade; from
the node itself: output), then, after routing to wherever the (translated) destination lives,
the receiver's node (from the underlay: prerouting, forward with the policy's ingress check,
or input for the node's own addresses). Random spreading gives several branches, each with its
probability. A --to of `svc/NAME` or `svc/NAMESPACE/NAME` stands for the Service's ClusterIP.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from .netpol.oracle import Flow
from .netpol.world import Endpoint, UnknownEndpoint, World
from .plan.model import Plan
from .rules.model import Ruleset
from .rules.packet import Packet
from .rules.tracer import Outcome, describe, trace

MAX_NODES = 4  # hops through nodes on one branch (a routing loop would stop here)


@dataclass(frozen=True)
class Hop:
    node: str
    packet: Packet
    outcome: Outcome


@dataclass(frozen=True)
class Branch:
    probability: Fraction
    hops: tuple[Hop, ...]
    end: str  # where the packet ends, in words
    delivered: bool


@dataclass(frozen=True)
class PathTrace:
    flow: Flow
    destination: str  # the address the client sends to
    branches: tuple[Branch, ...]

    @property
    def delivered(self) -> bool:
        return all(b.delivered for b in self.branches)


def node_rulesets(plan: Plan) -> Mapping[str, Ruleset]:
    """Every node's tables, as emu/ loads them, merged per node in hook-priority order."""
    return plan.rulesets


def resolve(plan: Plan, world: World, ref: str) -> Endpoint:
    """A flow end: what World.endpoint takes, or svc/[NAMESPACE/]NAME for a Service's ClusterIP."""
    if not ref.startswith("svc/"):
        return world.endpoint(ref)
    ns, _, name = ref[4:].rpartition("/")
    hits = [
        s
        for s in (plan.services.services if plan.services is not None else ())
        if s.name == name and ns in ("", s.namespace)
    ]
    if len(hits) != 1 or not hits[0].cluster_ip or hits[0].cluster_ip == "None":
        raise UnknownEndpoint(
            f"no Service with a ClusterIP called {ref[4:]!r}"
            if not hits
            else f"Service {ref[4:]!r} is ambiguous or has no ClusterIP"
        )
    return world.endpoint_of_ip(hits[0].cluster_ip)


def trace_path(plan: Plan, world: World, flow: Flow) -> PathTrace:
    src, dst = resolve(plan, world, flow.src), resolve(plan, world, flow.dst)
    rulesets = node_rulesets(plan)
    nodes = {n.name: n for n in plan.nodes}
    if src.pod is not None and dst.pod is not None and src.pod.full_name == dst.pod.full_name:
        end = "inside the pod's own network namespace (loopback): no node hook"
        return PathTrace(flow, dst.ip, (Branch(Fraction(1), (), end, True),))
    if src.pod is not None:
        first, entry = src.pod.node, "pod"
    elif src.node:
        first, entry = src.node, "local"
    else:
        first, entry = _holder(world, dst.ip), "underlay"
    if not first or first not in nodes:
        end = f"{dst.label()} is not reached through a node of the cluster: no rules on the way"
        return PathTrace(flow, dst.ip, (Branch(Fraction(1), (), end, False),))
    packet = Packet(src.ip, dst.ip, flow.port, flow.protocol, entry)
    branches = _walk(plan, world, rulesets, first, packet, Fraction(1), ())
    return PathTrace(flow, dst.ip, tuple(branches))


def _holder(world: World, ip: str) -> str:
    """The node an address lives on: its own address, or a pod's."""
    ep = world.endpoint_of_ip(ip)
    return ep.pod.node if ep.pod is not None else ep.node


def _walk(
    plan: Plan,
    world: World,
    rulesets: Mapping[str, Ruleset],
    node: str,
    packet: Packet,
    prob: Fraction,
    hops: tuple[Hop, ...],
) -> list[Branch]:
    n = plan.node(node)
    t = trace(rulesets[node], packet, pod_cidr=n.pod_cidr, local_ips=[n.gateway])
    out: list[Branch] = []
    for o in t.outcomes:
        p = prob * o.probability
        path = hops + (Hop(node, packet, o),)
        if o.verdict in ("drop", "reject"):
            out.append(Branch(p, path, f"{o.verdict.upper()} on {node}", False))
            continue
        ip, _, port = o.destination.rpartition(":")
        ip = ip.strip("[]")  # an IPv6 destination is written [fd00::2]:80
        ep = world.endpoint_of_ip(ip)
        if o.delivery == "input":
            out.append(Branch(p, path, f"delivered to node {node} itself ({ip})", True))
            continue
        holder = ep.pod.node if ep.pod is not None else ep.node
        if ep.pod is not None and holder == node:
            out.append(Branch(p, path, f"delivered to {ep.label()} on {node}", True))
        elif holder and holder != node and len(path) < MAX_NODES:
            nxt = Packet(o.source, ip, int(port) if port != "None" else None, packet.protocol, "underlay")
            out += _walk(plan, world, rulesets, holder, nxt, p, path)
        elif ep.host:
            out.append(Branch(p, path, f"leaves the cluster to {ep.label()}", True))
        elif _in(ip, plan.service_subnet):
            out.append(Branch(p, path, f"a Service address no rule translated ({ip}): routed to nowhere", False))
        else:
            out.append(Branch(p, path, f"leaves {node} towards {ip}, outside the emulated cluster", False))
    return out


def _in(ip: str, cidr: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)


def render_path(pt: PathTrace) -> str:
    """The branches, then per node crossed: what happened, and per hook the rules that matched."""
    f = pt.flow
    verdict = "DELIVERED" if pt.delivered else ("BLOCKED" if not any(b.delivered for b in pt.branches) else "MIXED")
    lines = [f"trace {f.src} -> {f.dst} ({pt.destination}) {f.service()}: {verdict}"]
    for i, b in enumerate(pt.branches, start=1):
        lines.append(f"branch {i} of {len(pt.branches)}, probability {b.probability}: {b.end}")
        for hop in b.hops:
            lines.append(f"  node {hop.node}: {hop.packet}: {describe(hop.outcome)}")
            for h in hop.outcome.hooks:
                matched = [s for s in h.steps if s.matched]
                lines.append(
                    f"    {h.hook}: {h.verdict} by {h.decided_by}"
                    + (f" ({len(h.steps) - len(matched)} rules skipped)" if len(h.steps) > len(matched) else "")
                )
                for s in matched:
                    lines.append(f"      {s.table}/{s.chain}[{s.index}] {s.text}")
                    if " vmap @" in s.text:  # a lookup: say what it found
                        lines.append(f"        ({s.why})")
    return "\n".join(lines) + "\n"
