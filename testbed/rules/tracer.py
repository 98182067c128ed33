"""The packet tracer: what a node's netfilter tables do to one packet (pure, over the rule model).

It interprets a `Ruleset` (never its text) with netfilter's semantics: the hooks a packet
crosses (from a pod or the underlay: prerouting, then input if the destination is the node's
own, else forward and postrouting; from the node itself: output then postrouting), the base
chains of each hook in priority order whichever tool holds their table (iptables' nat and
filter, kube-proxy's nft table, the NetworkPolicy table, the egress masquerade), base-chain
policies, jump / goto / return, DNAT, marks, masquerade, sets, verdict maps, iptables'
`statistic` and nft's `numgen` spreading (every branch is followed with its exact
probability), and session affinity (`remembered` endpoints are the ones whose affinity entry
holds the client). An accept ends one base chain only; a drop or reject ends the packet.

The result lists every possible outcome with its probability: DNAT to which endpoint, whether
the source is masqueraded (and to which node address: cni0's when the destination is a pod of
this node, the HOST-IP otherwise), rejected, dropped, or left untouched; and per hook, the rule
path (every rule looked at, whether it matched and why) and the rule that decided.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Collection
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

from .model import (
    Accept,
    Addr,
    AddrType,
    Comment,
    Counter,
    CtState,
    Dnat,
    DPort,
    Drop,
    Goto,
    InSet,
    Jump,
    Log,
    MarkMatch,
    Masquerade,
    NftSet,
    NumgenVmap,
    Part,
    Proto,
    Random,
    RecentCheck,
    RecentSet,
    Reject,
    Return,
    Rule,
    Ruleset,
    SetMark,
    Table,
    Verdict,
    Vmap,
)
from .packet import Packet
from .render_iptables import iptables_rule
from .render_nft import nft_rule

MAX_DEPTH = 64


@dataclass(frozen=True)
class Step:
    """One rule the packet was held against."""

    table: str
    chain: str
    index: int  # rule index in the chain
    rule: Rule
    kind: str  # the table's tool: iptables | nft (how the rule is written)
    matched: bool
    why: str  # the first match that failed, or what the matches found
    family: str = "ip"  # the table's (an nft rule of an ip6 table reads `ip6 daddr`)

    @property
    def text(self) -> str:
        return iptables_rule(self.chain, self.rule) if self.kind == "iptables" else nft_rule(self.rule, self.family)

    def where(self) -> str:
        return f"{self.chain}[{self.index}]: {self.text}"


@dataclass(frozen=True)
class HookTrace:
    """The packet at one hook of one node: the rules on its path, the verdict, who decided."""

    node: str
    hook: str
    packet: Packet
    steps: tuple[Step, ...]
    verdict: str  # accept | drop | reject
    decided_by: str  # "<chain>[<index>]: <rule>", or "policy accept of chain <name>"...

    @property
    def accepted(self) -> bool:
        return self.verdict == "accept"


@dataclass(frozen=True)
class Outcome:
    probability: Fraction
    verdict: str  # dnat | accept (untouched) | reject | drop
    endpoint: str | None  # "ip:port" after DNAT
    masqueraded: bool
    source: str  # the source address the destination sees
    destination: str  # "ip:port" the packet leaves with
    delivery: str  # forward | input | output ("" when rejected or dropped)
    chains: tuple[str, ...]  # table/chain traversed, in order
    hooks: tuple[HookTrace, ...] = ()  # per hook crossed: the rule path


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
            lines.append(f"  {str(o.probability):>5}  {describe(o)}")
            lines.append(f"         via {' > '.join(o.chains)}")
        return "\n".join(lines)


def describe(o: Outcome) -> str:
    """What the outcome did to the packet, in words."""
    what = {
        "dnat": f"DNAT to {o.endpoint}",
        "accept": f"untouched to {o.destination}",
        "reject": "REJECT",
        "drop": "DROP",
    }[o.verdict]
    if o.verdict in ("dnat", "accept"):
        what += f", source {'masqueraded to ' if o.masqueraded else 'kept '}{o.source}"
        what += f", {o.delivery}"
    return what


class _State:
    """The packet on one branch of its path. Not a dataclass: the tracer copies one per rule
    (`but`), and dataclasses.replace would dominate its time."""

    def __init__(self, src: str, dst: str, dport: int | None, proto: str, ct: str) -> None:
        self.src, self.dst, self.dport = src, dst, dport
        self.proto = proto  # lower case
        self.ct = ct  # lower case
        self.mark = 0
        self.dnat: str | None = None
        self.masq = False
        self.prob = Fraction(1)
        self.chains: tuple[str, ...] = ()
        self.steps: tuple[Any, ...] | None = None  # the hook's steps, newest first, as (step, rest) pairs
        self.decided: Step | str = ""
        self.hooks: tuple[HookTrace, ...] = ()

    def but(self, **changes: object) -> _State:
        new = object.__new__(_State)
        new.__dict__ = {**self.__dict__, **changes}
        return new


@lru_cache(maxsize=4096)
def _members(elements: tuple[str, ...], interval: bool) -> tuple[Any, ...] | frozenset[Any]:
    if interval:
        return tuple(ipaddress.ip_network(e, strict=False) for e in elements)
    return frozenset(elements)


def in_set(s: NftSet, value: str) -> bool:
    """Membership as the kernel decides it: exact elements, or prefixes for interval sets."""
    if s.interval:
        ip = ipaddress.ip_address(value.split(" . ")[0])
        return any(ip in net for net in _members(s.elements, True))
    return value in _members(s.elements, False)


def host_port(ip: str, port: int | None) -> str:
    """ "ip:port", an IPv6 address in brackets ("[fd00::1]:80"), as Go's net.JoinHostPort writes it."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def sees(table: Table, version: int) -> bool:
    """Whether netfilter shows a packet of IP `version` to `table`: an nft table of family ip
    sees IPv4 only, ip6 IPv6 only (inet both); iptables tables are one tool's per family."""
    if table.kind != "nft" or table.family not in ("ip", "ip6"):
        return True
    return (table.family == "ip6") == (version == 6)


@lru_cache(maxsize=4096)
def _networks(cidrs: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


class _Tracer:
    def __init__(
        self, ruleset: Ruleset, packet: Packet, local_ips: Collection[str], remembered: Collection[str]
    ) -> None:
        self.rs = ruleset
        self.packet = packet
        self.local_ips = {ipaddress.ip_address(ip) for ip in local_ips}
        self.remembered = set(remembered)
        self.version = ipaddress.ip_address(packet.dst).version

    def local(self, ip: str) -> bool:
        addr = ipaddress.ip_address(ip)
        return addr in self.local_ips or addr.is_loopback

    # -- matches -----------------------------------------------------------------------------
    def _match(self, table: Table, p: Part, st: _State) -> tuple[bool, str]:
        if isinstance(p, Proto):
            return st.proto == p.name, f"protocol is {st.proto.upper()}"
        if isinstance(p, DPort):
            ok = st.dport in p
            port = f" {st.dport}" if st.dport is not None else ""
            return ok, f"{st.proto.upper()}{port} {'matches' if ok else 'does not match'}"
        if isinstance(p, Addr):
            addr = st.src if p.field == "saddr" else st.dst
            inside = any(ipaddress.ip_address(addr) in n for n in _networks(p.cidrs))
            return inside != p.negate, f"{addr} is {'' if inside else 'not '}in {', '.join(p.cidrs)}"
        if isinstance(p, AddrType):
            addr = st.src if p.field == "saddr" else st.dst
            local = self.local(addr)
            return local != p.negate, f"{addr} is {'' if local else 'not '}a local address"
        if isinstance(p, MarkMatch):
            return ((st.mark & p.mask) == p.value) != p.negate, f"mark is {st.mark:#x}"
        if isinstance(p, CtState):
            return (st.ct.upper() in p.states) != p.negate, f"ct state is {st.ct}"
        if isinstance(p, RecentCheck):
            ok = p.endpoint in self.remembered
            return ok, f"{st.src} was {'' if ok else 'not '}recently sent to {p.endpoint}"
        if isinstance(p, InSet):
            values = {"saddr": st.src, "daddr": st.dst, "dport": str(st.dport)}
            key = " . ".join(values[f] for f in p.field.split(" . "))
            hit = (not p.protocol or (st.proto == p.protocol and st.dport is not None)) and in_set(
                table.set(p.set), key
            )
            proto = f"{st.proto.upper()} " if p.protocol else ""
            return hit, f"{proto}{key} is {'' if hit else 'not '}in @{p.set}"
        raise ValueError(f"cannot trace {type(p).__name__}")

    def _rule_branches(self, table: Table, rule: Rule, st: _State) -> list[tuple[_State, bool, str]]:
        """(state, matched, why) of each branch: one, or two after a random match."""
        branches: list[tuple[_State, bool, list[str]]] = [(st, True, [])]
        for p in rule.parts:
            if isinstance(p, (Comment, RecentSet, Counter, Log)):
                continue
            nxt: list[tuple[_State, bool, list[str]]] = []
            for s, ok, notes in branches:
                if not ok:
                    nxt.append((s, ok, notes))
                elif isinstance(p, Random):
                    if p.probability > 0:
                        nxt.append(
                            (s.but(prob=s.prob * p.probability), True, notes + [f"random {p.probability}: drawn"])
                        )
                    if p.probability < 1:
                        nxt.append(
                            (s.but(prob=s.prob * (1 - p.probability)), False, [f"random {p.probability}: not drawn"])
                        )
                else:
                    hit, text = self._match(table, p, s)
                    nxt.append((s, hit, notes + [text] if hit else [text]))
            branches = nxt
        return [(s, ok, "; ".join(notes)) for s, ok, notes in branches]

    # -- verdicts ----------------------------------------------------------------------------
    @staticmethod
    def _key(v: Vmap, st: _State) -> tuple[str, ...]:
        values = {"daddr": st.dst, "saddr": st.src, "l4proto": st.proto, "dport": str(st.dport)}
        return tuple(values[f] for f in v.fields)

    def _lookup(self, table: Table, v: Vmap, st: _State) -> str:
        """What a verdict-map lookup found, in words (a miss goes on with the next rule)."""
        key = self._key(v, st)
        hit = next((e for e in table.map(v.map).elements if e.key == key), None)
        return f"{' . '.join(key)} is {'' if hit else 'not '}in @{v.map}"

    def _verdict(self, table: Table, v: Verdict | None, st: _State, step: Step, depth: int) -> list[tuple[_State, str]]:
        if v is None:
            return [(st, "continue")]
        if isinstance(v, SetMark):
            mark = st.mark | v.value if v.op == "or" else st.mark ^ v.value
            return [(st.but(mark=mark), "continue")]
        if isinstance(v, Jump):
            return [(s, "continue" if r == "return" else r) for s, r in self.chain(table, v.chain, st, depth + 1)]
        if isinstance(v, Goto):
            return self.chain(table, v.chain, st, depth + 1)
        if isinstance(v, Return):
            return [(st, "return")]
        if isinstance(v, (Accept, Drop, Reject)):
            return [(st.but(decided=step), type(v).__name__.lower())]
        if isinstance(v, Dnat):
            return [(st.but(dst=v.ip, dport=v.port, dnat=host_port(v.ip, v.port), decided=step), "accept")]
        if isinstance(v, Masquerade):
            return [(st.but(masq=True, decided=step), "accept")]
        if isinstance(v, Vmap):
            key = self._key(v, st)
            for e in table.map(v.map).elements:
                if e.key == key:
                    return self._verdict(table, e.verdict, st, step, depth)
            return [(st, "continue")]
        if isinstance(v, NumgenVmap):
            share = Fraction(1, len(v.chains))
            out: list[tuple[_State, str]] = []
            for c in v.chains:
                out += self.chain(table, c, st.but(prob=st.prob * share), depth + 1)
            return out
        raise ValueError(f"cannot trace {type(v).__name__}")

    def chain(self, table: Table, name: str, st: _State, depth: int = 0) -> list[tuple[_State, str]]:
        """Every (state, result) of running `name`: result is return | accept | drop | reject."""
        if depth > MAX_DEPTH:
            raise RecursionError(f"chain {name}: more than {MAX_DEPTH} nested jumps (a loop?)")
        chain = table.chain(name)
        st = st.but(chains=st.chains + (f"{table.name}/{name}",))
        results: list[tuple[_State, str]] = []
        pending: list[tuple[_State, int]] = [(st, 0)]
        while pending:
            s, i = pending.pop(0)
            if i >= len(chain.rules):
                results.append((s, "return"))
                continue
            rule = chain.rules[i]
            for s2, matched, why in self._rule_branches(table, rule, s):
                if matched and isinstance(rule.verdict, Vmap):
                    why = "; ".join(w for w in (why, self._lookup(table, rule.verdict, s2)) if w)
                step = Step(table.name, name, i, rule, table.kind, matched, why, table.family)
                s2 = s2.but(steps=(step, s2.steps))
                if not matched:
                    pending.append((s2, i + 1))
                    continue
                for s3, r in self._verdict(table, rule.verdict, s2, step, depth):
                    if r == "continue":
                        pending.append((s3, i + 1))
                    else:
                        results.append((s3, r))
        return results

    def hook(self, hook: str, states: list[_State]) -> list[tuple[_State, str]]:
        """Run every base chain of a hook; an accept ends one base chain, a drop or reject the packet."""
        base = [(t, c) for t, c in self.rs.base_chains(hook) if sees(t, self.version)]
        results = [(s.but(steps=None, decided=""), "accept") for s in states]
        if not base:
            names = ", ".join(t.name for t in self.rs.tables)
            results = [
                (s.but(decided=f"no chain of table {names} is attached to the {hook} hook"), r) for s, r in results
            ]
        for table, chain in base:
            nxt: list[tuple[_State, str]] = []
            for s, r in results:
                if r != "accept":
                    nxt.append((s, r))
                    continue
                for s2, r2 in self.chain(table, chain.name, s):
                    if r2 == "return":  # fell off the end of a base chain: its policy decides
                        r2 = "drop" if chain.policy == "drop" else "accept"
                        s2 = s2.but(decided=f"policy {r2} of chain {chain.name}")
                    nxt.append((s2, r2))
            results = nxt
        return [(s.but(hooks=s.hooks + (self._hook_trace(hook, s, r),)), r) for s, r in results]

    def _hook_trace(self, hook: str, s: _State, verdict: str) -> HookTrace:
        steps: list[Step] = []
        cell = s.steps
        while cell is not None:
            steps.append(cell[0])
            cell = cell[1]
        decided = s.decided.where() if isinstance(s.decided, Step) else s.decided
        return HookTrace(self.rs.node, hook, self.packet, tuple(reversed(steps)), verdict, decided)


def _start(packet: Packet) -> _State:
    return _State(packet.src, packet.dst, packet.dport, packet.protocol.lower(), packet.ct_state.lower())


def trace_hook(ruleset: Ruleset, packet: Packet, hook: str = "forward", local_ips: Collection[str] = ()) -> HookTrace:
    """The packet at one hook only (no NAT on the way there): the rule path and the verdict.

    For tables without random spreading (a NetworkPolicy table), there is exactly one path."""
    tracer = _Tracer(ruleset, packet, [*([ruleset.host_ip] if ruleset.host_ip else []), *local_ips], ())
    results = tracer.hook(hook, [_start(packet)])
    if len(results) != 1:
        raise ValueError(f"{len(results)} paths through the {hook} hook: use trace() for random spreading")
    return results[0][0].hooks[-1]


def trace(
    ruleset: Ruleset,
    packet: Packet,
    *,
    pod_cidr: str | None = None,
    remembered: Collection[str] = (),
    local_ips: Collection[str] = (),
) -> Trace:
    """Every outcome of `packet` on the ruleset's node, through every hook it crosses.

    `pod_cidr` is the node's own pod CIDR: its first address (cni0's) is a local address and
    the masquerade source towards local pods. `remembered` lists "ip:port" endpoints whose
    session-affinity entry already holds the packet's source. `local_ips` are further
    addresses the node holds (a load-balancer IP assigned to it, say); the HOST-IP always is."""
    gateway = str(ipaddress.ip_network(pod_cidr).network_address + 1) if pod_cidr else None
    tracer = _Tracer(ruleset, packet, [ruleset.host_ip, *local_ips] + ([gateway] if gateway else []), remembered)
    finals: list[tuple[_State, str, str]] = []
    if packet.entry == "local":
        for s, r in tracer.hook("output", [_start(packet)]):
            if r != "accept":
                finals.append((s, r, ""))
                continue
            delivery = "input" if tracer.local(s.dst) else "output"
            finals += [(s2, r2, delivery if r2 == "accept" else "") for s2, r2 in tracer.hook("postrouting", [s])]
    else:
        for s, r in tracer.hook("prerouting", [_start(packet)]):
            if r != "accept":
                finals.append((s, r, ""))
            elif tracer.local(s.dst):
                finals += [(s2, r2, "input" if r2 == "accept" else "") for s2, r2 in tracer.hook("input", [s])]
            else:
                for s2, r2 in tracer.hook("forward", [s]):
                    if r2 != "accept":
                        finals.append((s2, r2, ""))
                        continue
                    finals += [
                        (s3, r3, "forward" if r3 == "accept" else "") for s3, r3 in tracer.hook("postrouting", [s2])
                    ]

    merged: dict[tuple[Any, ...], Outcome] = {}
    for s, r, delivery in finals:
        if s.prob == 0:
            continue
        verdict = r if r in ("drop", "reject") else ("dnat" if s.dnat else "accept")
        source = s.src
        if s.masq:
            in_pods = pod_cidr is not None and ipaddress.ip_address(s.dst) in ipaddress.ip_network(pod_cidr)
            source = gateway if in_pods and gateway else (s.dst if tracer.local(s.dst) else ruleset.host_ip)
        o = Outcome(
            s.prob,
            verdict,
            s.dnat if verdict == "dnat" else None,
            s.masq and verdict != "drop",
            source,
            host_port(s.dst, s.dport),
            delivery,
            s.chains,
            s.hooks,
        )
        key = (o.verdict, o.endpoint, o.masqueraded, o.source, o.destination, o.delivery, o.chains)
        if key in merged:
            merged[key] = dataclasses.replace(merged[key], probability=merged[key].probability + o.probability)
        else:
            merged[key] = o
    outcomes = sorted(merged.values(), key=lambda o: (o.verdict, o.endpoint or "", -o.probability))
    return Trace(packet, ruleset.node, ruleset.mode, tuple(outcomes))
