"""kube-proxy rules as data: tables, chains, rules made of typed matches and a verdict.

One vocabulary for both modes. iptables.py and nftables.py build a `Ruleset` with upstream's
layout; render.py turns it into `iptables-restore` or `nft -f` text; tracer.py interprets it
(netfilter semantics: hooks, base chains by priority, jump/goto/return, DNAT, marks,
masquerade, random spreading) without ever parsing text. Nothing here touches the kernel.

A rule is `parts` (matches, statements and a comment, in the order iptables writes them) and a
verdict (None for a rule that only has statements). Matches that exist in one mode only
(Random for iptables' statistic, InSet for nft's @set) are refused by the other renderer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterator, Union

MASQ_MARK = 0x4000      # kube-proxy --masquerade-bit 14


# -- matches ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Comment:
    text: str


@dataclass(frozen=True)
class Proto:
    """Layer-4 protocol, lower case: tcp, udp or sctp."""

    name: str


@dataclass(frozen=True)
class DPort:
    port: int


@dataclass(frozen=True)
class Addr:
    """Source or destination address in one of `cidrs` (or in none of them when negated).

    `literal_set` renders nft's `{ a, b }` set syntax (iptables takes a single address)."""

    field: str                    # "saddr" | "daddr"
    cidrs: tuple[str, ...]
    negate: bool = False
    literal_set: bool = False


@dataclass(frozen=True)
class AddrType:
    """The address is one of the node's own (iptables `-m addrtype LOCAL`, nft `fib ... type local`)."""

    field: str                    # "saddr" | "daddr"
    negate: bool = False


@dataclass(frozen=True)
class MarkMatch:
    """(packet mark & mask) == value, or != when negated."""

    mask: int
    value: int
    negate: bool = False


@dataclass(frozen=True)
class CtState:
    states: tuple[str, ...]       # upper case: NEW, ESTABLISHED, RELATED, INVALID
    negate: bool = False


@dataclass(frozen=True)
class Random:
    """iptables `-m statistic --mode random --probability p`."""

    probability: Fraction


@dataclass(frozen=True)
class RecentCheck:
    """Session affinity lookup: the client's source address was recently sent to `endpoint`.

    iptables `-m recent --name <SEP chain> --rcheck --seconds T --reap`; nft `ip saddr @<set>`."""

    name: str
    seconds: int
    endpoint: str                 # "ip:port", what the tracer compares with remembered endpoints


@dataclass(frozen=True)
class InSet:
    """nft `ip daddr @set`."""

    field: str
    set: str


# -- statements (no verdict) -----------------------------------------------------------------------

@dataclass(frozen=True)
class RecentSet:
    """Remember the client for affinity: iptables `-m recent --name X --set`, nft `update @X { ip saddr }`."""

    name: str
    endpoint: str


Part = Union[Comment, Proto, DPort, Addr, AddrType, MarkMatch, CtState, Random, RecentCheck, InSet, RecentSet]


# -- verdicts --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Jump:
    chain: str


@dataclass(frozen=True)
class Goto:
    chain: str


@dataclass(frozen=True)
class Return:
    pass


@dataclass(frozen=True)
class Accept:
    pass


@dataclass(frozen=True)
class Drop:
    pass


@dataclass(frozen=True)
class Reject:
    pass


@dataclass(frozen=True)
class Dnat:
    ip: str
    port: int


@dataclass(frozen=True)
class SetMark:
    """Non-terminal: iptables `-j MARK --or-mark/--xor-mark`, nft `mark set mark or/xor`."""

    op: str                       # "or" | "xor"
    value: int = MASQ_MARK


@dataclass(frozen=True)
class Masquerade:
    fully_random: bool = True


@dataclass(frozen=True)
class Vmap:
    """nft verdict-map lookup: `ip daddr . meta l4proto . th dport vmap @map`; no element: next rule."""

    fields: tuple[str, ...]       # of "daddr", "l4proto", "dport"
    map: str


@dataclass(frozen=True)
class NumgenVmap:
    """nft `numgen random mod N vmap { 0 : goto A , 1 : goto B ... }`: each chain with probability 1/N."""

    chains: tuple[str, ...]


Verdict = Union[Jump, Goto, Return, Accept, Drop, Reject, Dnat, SetMark, Masquerade, Vmap, NumgenVmap]


# -- structure -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    parts: tuple[Part, ...] = ()
    verdict: Verdict | None = None

    @property
    def comment(self) -> str:
        return next((p.text for p in self.parts if isinstance(p, Comment)), "")

    def targets(self) -> tuple[str, ...]:
        """Chains this rule can continue in."""
        v = self.verdict
        if isinstance(v, (Jump, Goto)):
            return (v.chain,)
        if isinstance(v, NumgenVmap):
            return v.chains
        return ()


@dataclass(frozen=True)
class Chain:
    name: str
    rules: tuple[Rule, ...] = ()
    hook: str | None = None       # base chain: prerouting | input | forward | output | postrouting
    type: str | None = None       # base chain type: nat | filter
    priority: int | None = None   # base chain priority (iptables: the table's)
    comment: str = ""

    @property
    def base(self) -> bool:
        return self.hook is not None


@dataclass(frozen=True)
class MapElement:
    key: tuple[str, ...]          # e.g. ("10.96.0.1", "tcp", "443")
    verdict: Verdict
    comment: str = ""


@dataclass(frozen=True)
class NftSet:
    name: str
    type: str = "ipv4_addr"
    comment: str = ""
    flags: tuple[str, ...] = ()
    timeout: int | None = None    # seconds
    elements: tuple[str, ...] = ()


@dataclass(frozen=True)
class NftMap:
    name: str
    type: str
    comment: str = ""
    elements: tuple[MapElement, ...] = ()


@dataclass(frozen=True)
class Table:
    name: str                     # iptables: "nat" | "filter"; nft: "kube-proxy"
    chains: tuple[Chain, ...]
    family: str = "ip"
    sets: tuple[NftSet, ...] = ()
    maps: tuple[NftMap, ...] = ()
    comment: str = ""

    def chain(self, name: str) -> Chain:
        for c in self.chains:
            if c.name == name:
                return c
        raise KeyError(f"no chain {name!r} in table {self.name}")

    def has_chain(self, name: str) -> bool:
        return any(c.name == name for c in self.chains)

    def set(self, name: str) -> NftSet:
        for s in self.sets:
            if s.name == name:
                return s
        raise KeyError(f"no set {name!r} in table {self.name}")

    def map(self, name: str) -> NftMap:
        for m in self.maps:
            if m.name == name:
                return m
        raise KeyError(f"no map {name!r} in table {self.name}")


@dataclass(frozen=True)
class Ruleset:
    """Every rule kube-proxy would hold on one node, in one mode."""

    mode: str                     # "iptables" | "nftables"
    node: str
    host_ip: str
    pod_subnet: str               # the cluster CIDR (kube-proxy's local-traffic detector)
    service_subnet: str
    tables: tuple[Table, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(f"no table {name!r}")

    def base_chains(self, hook: str) -> list[tuple[Table, Chain]]:
        """The base chains on a hook in the order netfilter runs them (priority, then declaration)."""
        found = [(c.priority or 0, i, t, c) for t in self.tables for i, c in enumerate(t.chains) if c.hook == hook]
        return [(t, c) for _, _, t, c in sorted(found, key=lambda x: (x[0], x[1]))]

    def chain_names(self, table: str | None = None) -> tuple[str, ...]:
        return tuple(c.name for t in self.tables if table in (None, t.name) for c in t.chains)

    def rules(self) -> Iterator[tuple[Table, Chain, Rule]]:
        for t in self.tables:
            for c in t.chains:
                for r in c.rules:
                    yield t, c, r


def check(ruleset: Ruleset) -> list[str]:
    """Structural problems: a jump, goto, map verdict or @set to something that does not exist."""
    problems: list[str] = []
    for t in ruleset.tables:
        names = {c.name for c in t.chains}
        sets = {s.name for s in t.sets}
        maps = {m.name for m in t.maps}
        for c in t.chains:
            for r in c.rules:
                for target in r.targets():
                    if target not in names:
                        problems.append(f"{t.name}/{c.name}: target chain {target} does not exist")
                if isinstance(r.verdict, Vmap) and r.verdict.map not in maps:
                    problems.append(f"{t.name}/{c.name}: map {r.verdict.map} does not exist")
                for p in r.parts:
                    if isinstance(p, InSet) and p.set not in sets:
                        problems.append(f"{t.name}/{c.name}: set {p.set} does not exist")
                    if isinstance(p, (RecentCheck, RecentSet)) and ruleset.mode == "nftables" and p.name not in sets:
                        problems.append(f"{t.name}/{c.name}: affinity set {p.name} does not exist")
        for m in t.maps:
            for e in m.elements:
                if isinstance(e.verdict, (Jump, Goto)) and e.verdict.chain not in names:
                    problems.append(f"{t.name}/map {m.name}: element {' . '.join(e.key)} goes to missing "
                                    f"chain {e.verdict.chain}")
    return problems
