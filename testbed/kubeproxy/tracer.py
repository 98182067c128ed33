"""A packet tracer over the rule model: what kube-proxy's rules on one node do to a new connection.

It interprets a `Ruleset` (never its text) with netfilter's semantics: the hooks a packet
crosses (from a pod or the underlay: prerouting, then input if the destination is the node's
own, else forward and postrouting; from the node itself: output then postrouting), the base
chains of each hook in priority order, jump / goto / return, DNAT, marks, masquerade,
verdict maps, iptables' `statistic` and nft's `numgen` spreading (every branch is followed
with its exact probability), and session affinity (`remembered` endpoints are the ones whose
affinity entry holds the client). The packet is the first of its connection (ct state new).

The result lists every possible outcome with its probability: DNAT to which endpoint, whether
the source is masqueraded (and to which node address: cni0's when the endpoint is a pod of
this node, the HOST-IP otherwise), rejected, dropped, or left untouched. Used by the tests and
by an `explain`-like command.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from fractions import Fraction
from typing import Collection

from .model import (Accept, Addr, AddrType, Chain, Comment, CtState, DPort, Dnat, Drop, Goto, InSet, Jump,
                    MarkMatch, Masquerade, NumgenVmap, Part, Proto, Random, RecentCheck, RecentSet, Reject,
                    Return, Ruleset, SetMark, Table, Verdict, Vmap)

ENTRIES = ("pod", "underlay", "local")
MAX_DEPTH = 64


@dataclass(frozen=True)
class Packet:
    src: str
    dst: str
    dport: int
    protocol: str = "TCP"
    entry: str = "pod"      # pod: in on cni0 from a pod of this node; underlay: in on eth0; local: the node itself

    def __str__(self) -> str:
        return f"{self.src} -> {self.dst}:{self.dport}/{self.protocol.upper()} from {self.entry}"


@dataclass(frozen=True)
class Outcome:
    probability: Fraction
    verdict: str            # dnat | accept (untouched) | reject | drop
    endpoint: str | None    # "ip:port" after DNAT
    masqueraded: bool
    source: str             # the source address the destination sees
    destination: str        # "ip:port" the packet leaves with
    delivery: str           # forward | input | output ("" when rejected or dropped)
    chains: tuple[str, ...]  # table/chain traversed, in order


@dataclass(frozen=True)
class Trace:
    packet: Packet
    node: str
    mode: str
    outcomes: tuple[Outcome, ...]

    def endpoints(self) -> dict[str, Fraction]:
        """endpoint -> probability, over the DNAT outcomes."""
        out: dict[str, Fraction] = {}
        for o in self.outcomes:
            if o.endpoint is not None:
                out[o.endpoint] = out.get(o.endpoint, Fraction(0)) + o.probability
        return out

    @property
    def verdicts(self) -> set[str]:
        return {o.verdict for o in self.outcomes}

    def probability(self, verdict: str) -> Fraction:
        return sum((o.probability for o in self.outcomes if o.verdict == verdict), Fraction(0))

    @property
    def masqueraded(self) -> bool | None:
        """True / False when every outcome agrees, None when it depends on the branch."""
        values = {o.masqueraded for o in self.outcomes}
        return values.pop() if len(values) == 1 else None

    def explain(self) -> str:
        lines = [f"{self.node} ({self.mode}): {self.packet}"]
        for o in self.outcomes:
            what = {"dnat": f"DNAT to {o.endpoint}", "accept": f"untouched to {o.destination}",
                    "reject": "REJECT", "drop": "DROP"}[o.verdict]
            if o.verdict in ("dnat", "accept"):
                what += f", source {'masqueraded to ' if o.masqueraded else 'kept '}{o.source}"
                what += f", {o.delivery}"
            lines.append(f"  {str(o.probability):>5}  {what}")
            lines.append(f"         via {' > '.join(o.chains)}")
        return "\n".join(lines)


@dataclass(frozen=True)
class _State:
    src: str
    dst: str
    dport: int
    proto: str
    mark: int = 0
    dnat: str | None = None
    masq: bool = False
    prob: Fraction = Fraction(1)
    chains: tuple[str, ...] = ()


class _Tracer:
    def __init__(self, ruleset: Ruleset, local_ips: Collection[str], remembered: Collection[str]) -> None:
        self.rs = ruleset
        self.local_ips = {ipaddress.ip_address(ip) for ip in local_ips}
        self.remembered = set(remembered)

    def local(self, ip: str) -> bool:
        addr = ipaddress.ip_address(ip)
        return addr in self.local_ips or addr.is_loopback

    # -- matches -----------------------------------------------------------------------------
    def _in(self, ip: str, cidrs: Collection[str]) -> bool:
        addr = ipaddress.ip_address(ip)
        return any(addr in ipaddress.ip_network(c, strict=False) for c in cidrs)

    def _match(self, table: Table, p: Part, st: _State) -> list[tuple[_State, bool]]:
        if isinstance(p, (Comment, RecentSet)):
            return [(st, True)]
        if isinstance(p, Random):
            out = []
            if p.probability > 0:
                out.append((dataclasses.replace(st, prob=st.prob * p.probability), True))
            if p.probability < 1:
                out.append((dataclasses.replace(st, prob=st.prob * (1 - p.probability)), False))
            return out
        if isinstance(p, Proto):
            ok = st.proto == p.name
        elif isinstance(p, DPort):
            ok = st.dport == p.port
        elif isinstance(p, Addr):
            ok = self._in(st.src if p.field == "saddr" else st.dst, p.cidrs) != p.negate
        elif isinstance(p, AddrType):
            ok = self.local(st.src if p.field == "saddr" else st.dst) != p.negate
        elif isinstance(p, MarkMatch):
            ok = ((st.mark & p.mask) == p.value) != p.negate
        elif isinstance(p, CtState):
            ok = ("NEW" in p.states) != p.negate
        elif isinstance(p, RecentCheck):
            ok = p.endpoint in self.remembered
        elif isinstance(p, InSet):
            ok = self._in(st.src if p.field == "saddr" else st.dst, table.set(p.set).elements)
        else:
            raise ValueError(f"cannot trace {type(p).__name__}")
        return [(st, ok)]

    def _rule_branches(self, table: Table, parts: tuple[Part, ...], st: _State) -> list[tuple[_State, bool]]:
        branches = [(st, True)]
        for p in parts:
            nxt: list[tuple[_State, bool]] = []
            for s, ok in branches:
                nxt.extend(self._match(table, p, s) if ok else [(s, False)])
            branches = nxt
        return branches

    # -- verdicts ----------------------------------------------------------------------------
    def _verdict(self, table: Table, v: Verdict | None, st: _State, depth: int) -> list[tuple[_State, str]]:
        if v is None:
            return [(st, "continue")]
        if isinstance(v, SetMark):
            mark = st.mark | v.value if v.op == "or" else st.mark ^ v.value
            return [(dataclasses.replace(st, mark=mark), "continue")]
        if isinstance(v, Jump):
            return [(s, "continue" if r == "return" else r) for s, r in self.chain(table, v.chain, st, depth + 1)]
        if isinstance(v, Goto):
            return self.chain(table, v.chain, st, depth + 1)
        if isinstance(v, Return):
            return [(st, "return")]
        if isinstance(v, Accept):
            return [(st, "accept")]
        if isinstance(v, Drop):
            return [(st, "drop")]
        if isinstance(v, Reject):
            return [(st, "reject")]
        if isinstance(v, Dnat):
            return [(dataclasses.replace(st, dst=v.ip, dport=v.port, dnat=f"{v.ip}:{v.port}"), "accept")]
        if isinstance(v, Masquerade):
            return [(dataclasses.replace(st, masq=True), "accept")]
        if isinstance(v, Vmap):
            values = {"daddr": st.dst, "saddr": st.src, "l4proto": st.proto, "dport": str(st.dport)}
            key = tuple(values[f] for f in v.fields)
            for e in table.map(v.map).elements:
                if e.key == key:
                    return self._verdict(table, e.verdict, st, depth)
            return [(st, "continue")]
        if isinstance(v, NumgenVmap):
            share = Fraction(1, len(v.chains))
            out: list[tuple[_State, str]] = []
            for c in v.chains:
                out += self.chain(table, c, dataclasses.replace(st, prob=st.prob * share), depth + 1)
            return out
        raise ValueError(f"cannot trace {type(v).__name__}")

    def chain(self, table: Table, name: str, st: _State, depth: int = 0) -> list[tuple[_State, str]]:
        """Every (state, result) of running `name`: result is return | accept | drop | reject."""
        if depth > MAX_DEPTH:
            raise RecursionError(f"chain {name}: more than {MAX_DEPTH} nested jumps (a loop?)")
        chain: Chain = table.chain(name)
        st = dataclasses.replace(st, chains=st.chains + (f"{table.name}/{name}",))
        results: list[tuple[_State, str]] = []
        pending: list[tuple[_State, int]] = [(st, 0)]
        while pending:
            s, i = pending.pop(0)
            if i >= len(chain.rules):
                results.append((s, "return"))
                continue
            rule = chain.rules[i]
            for s2, matched in self._rule_branches(table, rule.parts, s):
                if not matched:
                    pending.append((s2, i + 1))
                    continue
                for s3, r in self._verdict(table, rule.verdict, s2, depth):
                    if r == "continue":
                        pending.append((s3, i + 1))
                    else:
                        results.append((s3, r))
        return results

    def hook(self, hook: str, states: list[_State]) -> list[tuple[_State, str]]:
        """Run every base chain of a hook; a drop or reject anywhere ends the packet."""
        results = [(s, "accept") for s in states]
        for table, chain in self.rs.base_chains(hook):
            nxt: list[tuple[_State, str]] = []
            for s, r in results:
                if r != "accept":
                    nxt.append((s, r))
                    continue
                nxt += [(s2, "accept" if r2 == "return" else r2) for s2, r2 in self.chain(table, chain.name, s)]
            results = nxt
        return results


def trace(ruleset: Ruleset, packet: Packet, *, pod_cidr: str | None = None,
          remembered: Collection[str] = (), local_ips: Collection[str] = ()) -> Trace:
    """Every outcome of `packet` on the ruleset's node.

    `pod_cidr` is the node's own pod CIDR: its first address (cni0's) is a local address and
    the masquerade source towards local pods. `remembered` lists "ip:port" endpoints whose
    session-affinity entry already holds the packet's source. `local_ips` are further
    addresses the node holds (a load-balancer IP assigned to it, say); the HOST-IP always is."""
    if packet.entry not in ENTRIES:
        raise ValueError(f"entry must be one of {', '.join(ENTRIES)}, got {packet.entry!r}")
    gateway = str(ipaddress.ip_network(pod_cidr).network_address + 1) if pod_cidr else None
    tracer = _Tracer(ruleset, [ruleset.host_ip, *local_ips] + ([gateway] if gateway else []), remembered)
    start = _State(packet.src, packet.dst, packet.dport, packet.protocol.lower())
    finals: list[tuple[_State, str, str]] = []
    if packet.entry == "local":
        for s, r in tracer.hook("output", [start]):
            if r != "accept":
                finals.append((s, r, ""))
                continue
            delivery = "input" if tracer.local(s.dst) else "output"
            finals += [(s2, r2, delivery if r2 == "accept" else "") for s2, r2 in tracer.hook("postrouting", [s])]
    else:
        for s, r in tracer.hook("prerouting", [start]):
            if r != "accept":
                finals.append((s, r, ""))
            elif tracer.local(s.dst):
                finals += [(s2, r2, "input" if r2 == "accept" else "") for s2, r2 in tracer.hook("input", [s])]
            else:
                for s2, r2 in tracer.hook("forward", [s]):
                    if r2 != "accept":
                        finals.append((s2, r2, ""))
                        continue
                    finals += [(s3, r3, "forward" if r3 == "accept" else "") for s3, r3 in tracer.hook("postrouting", [s2])]

    merged: dict[tuple, Outcome] = {}
    for s, r, delivery in finals:
        if s.prob == 0:
            continue
        verdict = r if r in ("drop", "reject") else ("dnat" if s.dnat else "accept")
        source = s.src
        if s.masq:
            in_pods = pod_cidr is not None and ipaddress.ip_address(s.dst) in ipaddress.ip_network(pod_cidr)
            source = gateway if in_pods and gateway else (s.dst if tracer.local(s.dst) else ruleset.host_ip)
        o = Outcome(s.prob, verdict, s.dnat if verdict == "dnat" else None, s.masq and verdict != "drop",
                    source, f"{s.dst}:{s.dport}", delivery, s.chains)
        key = dataclasses.astuple(dataclasses.replace(o, probability=Fraction(0)))
        if key in merged:
            merged[key] = dataclasses.replace(merged[key], probability=merged[key].probability + o.probability)
        else:
            merged[key] = o
    outcomes = sorted(merged.values(), key=lambda o: (o.verdict, o.endpoint or "", -o.probability))
    return Trace(packet, ruleset.node, ruleset.mode, tuple(outcomes))
