"""A packet tracer over the compiled rule model (nft.Ruleset), not over nft text; pure.

`trace_packet` runs one packet through the base chains of one hook of one node's ruleset,
following jumps and returns as nftables does, and records every rule it looked at, whether it
matched, and which set decided. `trace_flow` first works out where a flow's first packet meets
the rules (the path a packet takes through the emulated nodes), then traces each hop; its
verdict must equal the oracle's (tests/unit/test_netpol_tracer.py checks many random flows).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

from .nft import AddrIn, CtState, DaddrDportIn, Dport, L4Proto, Match, NftSet, Ruleset, SaddrDaddrIn
from .oracle import Flow
from .world import Endpoint, World


@dataclass(frozen=True)
class Packet:
    saddr: str
    daddr: str
    protocol: str              # TCP | UDP | SCTP | ICMP
    dport: int | None = None
    ct_state: str = "new"      # new | established | related


@dataclass(frozen=True)
class Step:
    chain: str
    index: int                 # rule index in the chain
    rule: str                  # the rule as rendered for nft
    matched: bool
    why: str                   # the first match that failed, or what the matching sets held


@dataclass(frozen=True)
class HookTrace:
    node: str
    hook: str
    packet: Packet
    steps: tuple[Step, ...]
    verdict: str               # "accept" | "drop"
    decided_by: str            # "<chain>[<index>]: <rule>" or "policy accept of chain <name>"

    @property
    def accepted(self) -> bool:
        return self.verdict == "accept"


@dataclass(frozen=True)
class FlowTrace:
    flow: Flow
    path: tuple[str, ...]      # where the first packet goes, in words
    hops: tuple[HookTrace, ...]
    allowed: bool


# -- sets and matches ----------------------------------------------------------------------------

@lru_cache(maxsize=4096)
def _parsed(elements: tuple[str, ...], interval: bool):
    if interval:
        return tuple(ipaddress.ip_network(e) for e in elements)
    return frozenset(elements)


def in_set(s: NftSet, value: str) -> bool:
    """Membership as the kernel decides it: exact elements, or prefixes for interval sets."""
    if s.interval:
        ip = ipaddress.ip_address(value.split(" . ")[0])
        return any(ip in net for net in _parsed(s.elements, True))
    return value in _parsed(s.elements, False)


def _match(m: Match, p: Packet, sets: Mapping[str, NftSet]) -> tuple[bool, str]:
    if isinstance(m, CtState):
        return p.ct_state in m.states, f"ct state is {p.ct_state}"
    if isinstance(m, AddrIn):
        addr = p.saddr if m.field == "saddr" else p.daddr
        hit = in_set(sets[m.set], addr)
        return hit, f"{addr} is {'' if hit else 'not '}in @{m.set}"
    if isinstance(m, L4Proto):
        return p.protocol == m.protocol, f"protocol is {p.protocol}"
    if isinstance(m, Dport):
        hit = p.protocol == m.protocol and p.dport is not None and any(a <= p.dport <= b for a, b in m.ranges)
        return hit, f"{p.protocol} {p.dport if p.dport is not None else ''}".strip() + (" matches" if hit else " does not match")
    if isinstance(m, DaddrDportIn):
        key = f"{p.daddr} . {p.dport}"
        hit = p.protocol == m.protocol and p.dport is not None and in_set(sets[m.set], key)
        return hit, f"{p.protocol} {key} is {'' if hit else 'not '}in @{m.set}"
    if isinstance(m, SaddrDaddrIn):
        key = f"{p.saddr} . {p.daddr}"
        hit = in_set(sets[m.set], key)
        return hit, f"{key} is {'' if hit else 'not '}in @{m.set}"
    raise TypeError(f"unknown match {m!r}")


def trace_packet(ruleset: Ruleset, packet: Packet, hook: str = "forward") -> HookTrace:
    """Evaluate one packet at one hook: base chains in priority order (all here use `filter`)."""
    sets = {s.name: s for s in ruleset.sets}
    steps: list[Step] = []
    base = [c for c in ruleset.chains if c.hook == hook]
    if not base:
        return HookTrace(ruleset.node, hook, packet, (), "accept", f"no chain of table {ruleset.table} "
                         f"is attached to the {hook} hook")
    for chain in base:
        verdict, decided = _run(ruleset, chain.name, packet, sets, steps, depth=0)
        if verdict in ("accept", "drop"):
            return HookTrace(ruleset.node, hook, packet, tuple(steps), verdict, decided)
        if chain.policy == "drop":
            return HookTrace(ruleset.node, hook, packet, tuple(steps), "drop", f"policy drop of chain {chain.name}")
    return HookTrace(ruleset.node, hook, packet, tuple(steps), "accept", f"policy accept of chain {base[-1].name}")


def _run(ruleset: Ruleset, name: str, packet: Packet, sets: Mapping[str, NftSet], steps: list[Step],
         depth: int) -> tuple[str, str]:
    if depth > 16:
        raise RuntimeError("jump loop in the rule model")
    for index, rule in enumerate(ruleset.chain(name).rules):
        matched, why = True, ""
        notes = []
        for m in rule.matches:
            ok, text = _match(m, packet, sets)
            if not ok:
                matched, why = False, text
                break
            notes.append(text)
        steps.append(Step(name, index, rule.render(), matched, why if not matched else "; ".join(notes)))
        if not matched:
            continue
        where = f"{name}[{index}]: {rule.render()}"
        if rule.verdict in ("accept", "drop"):
            return rule.verdict, where
        if rule.verdict == "return":
            return "return", where
        if rule.verdict.startswith("jump "):
            verdict, decided = _run(ruleset, rule.verdict.split()[1], packet, sets, steps, depth + 1)
            if verdict in ("accept", "drop"):
                return verdict, decided
            continue   # returned (explicitly or at the end of the chain): go on with the next rule
        raise ValueError(f"unknown verdict {rule.verdict!r}")
    return "continue", ""


# -- flows through the cluster ---------------------------------------------------------------

def packet_path(src: Endpoint, dst: Endpoint) -> tuple[list[str], list[str]]:
    """(nodes whose forward hook the first packet crosses, in order; the path in words)."""
    if src.pod is not None and dst.pod is not None:
        if src.pod.full_name == dst.pod.full_name:
            return [], ["inside the pod's own network namespace (loopback): no node hook"]
        if src.pod.node == dst.pod.node:
            return [src.pod.node], [f"bridged by cni0 on {src.pod.node}: forward hook (br_netfilter)"]
        return [src.pod.node, dst.pod.node], [f"routed by {src.pod.node}: forward hook",
                                              f"routed by {dst.pod.node} to cni0: forward hook"]
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
    packet = Packet(src.ip, dst.ip, flow.protocol, flow.port)
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
            lines.append(f"    {mark} {s.chain}[{s.index}] {s.rule}")
            if s.why:
                lines.append(f"          ({s.why})")
    return "\n".join(lines) + "\n"
