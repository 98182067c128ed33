"""NetworkPolicy flows through the cluster, traced over the compiled rules (not over nft text); pure.

`trace_packet` runs one packet through one hook of one node's NetworkPolicy table with the one
tracer (rules/tracer.py), which records every rule it looked at, whether it matched, and which
set decided. `trace_flow` first works out where a flow's first packet meets the policy rules
(the path a packet takes through the emulated nodes), then traces each hop; its verdict must
equal the oracle's (tests/unit/test_netpol_tracer.py checks many random flows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..rules.model import Ruleset
from ..rules.packet import Packet
from ..rules.tracer import HookTrace, trace_hook
from .oracle import Flow
from .world import Endpoint, World


@dataclass(frozen=True)
class FlowTrace:
    flow: Flow
    path: tuple[str, ...]  # where the first packet goes, in words
    hops: tuple[HookTrace, ...]
    allowed: bool


def trace_packet(ruleset: Ruleset, packet: Packet, hook: str = "forward") -> HookTrace:
    """Evaluate one packet at one hook of a node's policy table."""
    return trace_hook(ruleset, packet, hook)


# -- flows through the cluster ---------------------------------------------------------------


def packet_path(src: Endpoint, dst: Endpoint) -> tuple[list[str], list[str]]:
    """(nodes whose forward hook the first packet crosses, in order; the path in words)."""
    if src.pod is not None and dst.pod is not None:
        if src.pod.full_name == dst.pod.full_name:
            return [], ["inside the pod's own network namespace (loopback): no node hook"]
        if src.pod.node == dst.pod.node:
            return [src.pod.node], [f"bridged by cni0 on {src.pod.node}: forward hook (br_netfilter)"]
        return [src.pod.node, dst.pod.node], [
            f"routed by {src.pod.node}: forward hook",
            f"routed by {dst.pod.node} to cni0: forward hook",
        ]
    if src.pod is not None:
        if dst.node and dst.node == src.pod.node:
            return [], [f"to its own node {dst.node}: input hook, not filtered"]
        return [src.pod.node], [f"routed by {src.pod.node} out of the pod network: forward hook"]
    if dst.pod is not None:
        if src.node and src.node == dst.pod.node:
            return [], [f"from the pod's own node {src.node}: output hook, not filtered"]
        return [dst.pod.node], [f"routed by {dst.pod.node} to cni0: forward hook"]
    return [], ["no pod at either end: no NetworkPolicy rules on the way"]


def trace_flow(world: World, rulesets: Mapping[str, Ruleset], flow: Flow) -> FlowTrace:
    src, dst = world.endpoint(flow.src), world.endpoint(flow.dst)
    nodes, words = packet_path(src, dst)
    packet = Packet(src.ip, dst.ip, flow.port, flow.protocol)
    hops = []
    for node in nodes:
        hop = trace_packet(rulesets[node], packet)
        hops.append(hop)
        if not hop.accepted:
            break
    return FlowTrace(flow, tuple(words), tuple(hops), all(h.accepted for h in hops))


def render_trace(trace: FlowTrace) -> str:
    f = trace.flow
    lines = [f"trace {f.src} -> {f.dst} {f.service()}: {'ACCEPT' if trace.allowed else 'DROP'}"]
    lines += [f"  path: {w}" for w in trace.path]
    for hop in trace.hops:
        lines.append(f"  node {hop.node}, hook {hop.hook}: {hop.verdict} by {hop.decided_by}")
        for s in hop.steps:
            mark = "match" if s.matched else "skip "
            lines.append(f"    {mark} {s.chain}[{s.index}] {s.text}")
            if s.why:
                lines.append(f"          ({s.why})")
    return "\n".join(lines) + "\n"
