"""Netfilter rules as data: tables, chains, rules, sets, maps and verdict maps (pure core).

The one rule model of the testbed. kube-proxy (kubeproxy/, both modes), NetworkPolicy
(netpol/compiler.py) and the egress masquerade (rules/egress.py) compile into it;
render_iptables.py and render_nft.py turn it into `iptables-restore` or `nft -f` text;
tracer.py interprets it with netfilter's semantics without ever parsing text. Nothing here
touches the kernel, and nothing here counts packets (no counter values, only the `counter`
statement nft is asked to keep).

A rule is `parts` (matches, statements and a comment, in the order iptables writes them) and a
verdict (None for a rule that only has statements). A table is either an iptables table
(`kind` "iptables": nat, filter) or an nft table (`kind` "nft", of family ip or inet). Matches
that exist in one tool only (Random for iptables' statistic, InSet for nft's @set) are refused
by the other renderer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction

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
    """Destination port in one of `ranges` ((first, last) pairs). After a Proto, nft writes the
    pair as `tcp dport 80` or `tcp dport { 53, 8000-8080 }`; iptables takes a single port."""

    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, port: int) -> DPort:
        return cls(((port, port),))

    def __contains__(self, port: int | None) -> bool:
        return port is not None and any(a <= port <= b for a, b in self.ranges)


@dataclass(frozen=True)
class Addr:
    """Source or destination address in one of `cidrs` (or in none of them when negated).

    `literal_set` renders nft's `{ a, b }` set syntax (iptables takes a single address)."""

    field: str  # "saddr" | "daddr"
    cidrs: tuple[str, ...]
    negate: bool = False
    literal_set: bool = False


@dataclass(frozen=True)
class AddrType:
    """The address is one of the node's own (iptables `-m addrtype LOCAL`, nft `fib ... type local`)."""

    field: str  # "saddr" | "daddr"
    negate: bool = False


@dataclass(frozen=True)
class MarkMatch:
    """(packet mark & mask) == value, or != when negated."""

    mask: int
    value: int
    negate: bool = False


@dataclass(frozen=True)
class CtState:
    states: tuple[str, ...]  # upper case: NEW, ESTABLISHED, RELATED, INVALID
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
    endpoint: str  # "ip:port", what the tracer compares with remembered endpoints


@dataclass(frozen=True)
class InSet:
    """nft `ip daddr @set`, or a concatenation: `ip saddr . ip daddr @set`, `ip daddr . tcp dport @set`.

    `field` is one of saddr, daddr, "saddr . daddr", "daddr . dport"; a dport key needs `protocol`."""

    field: str
    set: str
    protocol: str = ""  # lower case, for a key with dport


# -- statements (no verdict) -----------------------------------------------------------------------


@dataclass(frozen=True)
class RecentSet:
    """Remember the client for affinity: iptables `-m recent --name X --set`, nft `update @X { ip saddr }`."""

    name: str
    endpoint: str


@dataclass(frozen=True)
class Counter:
    """nft's `counter` statement: the kernel counts the rule's packets (nothing here reads them)."""


@dataclass(frozen=True)
class Log:
    """Tell the testbed about the packets this rule drops or rejects (rules/droplog.py).

    Not a statement of the rule itself: the renderers write a rule with the same matches just
    before it, rate-limited, that sends the packet to nfnetlink_log (nft `log group`, iptables
    `-j NFLOG`) with a prefix naming table, chain and rule. A rule of its own because a `limit`
    over its rate must skip the log only, never the drop; the tracer ignores it."""


Part = (
    Comment
    | Proto
    | DPort
    | Addr
    | AddrType
    | MarkMatch
    | CtState
    | Random
    | RecentCheck
    | InSet
    | RecentSet
    | Counter
    | Log
)


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

    op: str  # "or" | "xor"
    value: int


@dataclass(frozen=True)
class Masquerade:
    fully_random: bool = True


@dataclass(frozen=True)
class Vmap:
    """nft verdict-map lookup: `ip daddr . meta l4proto . th dport vmap @map`; no element: next rule."""

    fields: tuple[str, ...]  # of "daddr", "l4proto", "dport"
    map: str


@dataclass(frozen=True)
class NumgenVmap:
    """nft `numgen random mod N vmap { 0 : goto A , 1 : goto B ... }`: each chain with probability 1/N."""

    chains: tuple[str, ...]


Verdict = Jump | Goto | Return | Accept | Drop | Reject | Dnat | SetMark | Masquerade | Vmap | NumgenVmap
# The verdicts that are one word in both tools (iptables writes them `-j WORD`).
KEYWORDS: dict[type, str] = {Return: "return", Accept: "accept", Drop: "drop", Reject: "reject"}


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
    hook: str | None = None  # base chain: prerouting | input | forward | output | postrouting
    type: str | None = None  # base chain type: nat | filter
    priority: int | None = None  # base chain priority (iptables: the table's)
    policy: str | None = None  # base chain policy (accept when None, as iptables' built-ins here)
    comment: str = ""

    @property
    def base(self) -> bool:
        return self.hook is not None


@dataclass(frozen=True)
class MapElement:
    key: tuple[str, ...]  # e.g. ("10.96.0.1", "tcp", "443")
    verdict: Verdict
    comment: str = ""


@dataclass(frozen=True)
class NftSet:
    name: str
    type: str = "ipv4_addr"
    elements: tuple[str, ...] = ()  # as nft writes them: "10.244.1.2", "10.0.0.0/8", "10.244.1.2 . 8080"
    flags: tuple[str, ...] = ()
    timeout: int | None = None  # seconds
    comment: str = ""

    @property
    def interval(self) -> bool:
        """Elements are prefixes (flags interval): membership is by prefix, not by equality."""
        return "interval" in self.flags


@dataclass(frozen=True)
class NftMap:
    name: str
    type: str
    comment: str = ""
    elements: tuple[MapElement, ...] = ()


@dataclass(frozen=True)
class Table:
    name: str  # iptables: "nat" | "filter"; nft: "kube-proxy", "testbed-netpol"...
    chains: tuple[Chain, ...]
    family: str = "ip"
    sets: tuple[NftSet, ...] = ()
    maps: tuple[NftMap, ...] = ()
    comment: str = ""
    kind: str = "nft"  # "nft" | "iptables": which tool holds the table

    @property
    def ref(self) -> str:
        return f"{self.family} {self.name}"

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
    """Tables held by one node: one program's (kube-proxy, the policy provider...) or, merged, all."""

    node: str
    tables: tuple[Table, ...]
    mode: str = "nftables"  # kube-proxy's: "iptables" | "nftables" (the tool of its tables)
    host_ip: str = ""  # the node's primary address (a local address for the tracer)
    pod_subnet: str = ""  # the cluster CIDR (kube-proxy's local-traffic detector)
    service_subnet: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(f"no table {name!r}")

    @property
    def sets(self) -> tuple[NftSet, ...]:
        return tuple(s for t in self.tables for s in t.sets)

    @property
    def chains(self) -> tuple[Chain, ...]:
        return tuple(c for t in self.tables for c in t.chains)

    def set(self, name: str) -> NftSet:
        for t in self.tables:
            if any(s.name == name for s in t.sets):
                return t.set(name)
        raise KeyError(name)

    def chain(self, name: str) -> Chain:
        """The first chain called `name` (iptables' nat and filter both have KUBE-SERVICES: use table())."""
        for t in self.tables:
            if t.has_chain(name):
                return t.chain(name)
        raise KeyError(name)

    def rule_count(self) -> int:
        return sum(len(c.rules) for t in self.tables for c in t.chains)

    def base_chains(self, hook: str) -> list[tuple[Table, Chain]]:
        """The base chains on a hook in the order netfilter runs them (priority, then declaration)."""
        found = [
            (c.priority or 0, i, j, t, c)
            for i, t in enumerate(self.tables)
            for j, c in enumerate(t.chains)
            if c.hook == hook
        ]
        return [(t, c) for *_, t, c in sorted(found, key=lambda x: x[:3])]

    def chain_names(self, table: str | None = None) -> tuple[str, ...]:
        return tuple(c.name for t in self.tables if table in (None, t.name) for c in t.chains)

    def rules(self) -> Iterator[tuple[Table, Chain, Rule]]:
        for t in self.tables:
            for c in t.chains:
                for r in c.rules:
                    yield t, c, r


def merge(node: str, *rulesets: Ruleset) -> Ruleset:
    """Every table of a node in one ruleset (what its kernel holds), addresses from the first that has them."""
    first = next((r for r in rulesets if r.host_ip), rulesets[0] if rulesets else Ruleset(node, ()))
    return Ruleset(
        node,
        tuple(t for r in rulesets for t in r.tables),
        first.mode,
        first.host_ip,
        first.pod_subnet,
        first.service_subnet,
    )


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
                    if isinstance(p, (RecentCheck, RecentSet)) and t.kind == "nft" and p.name not in sets:
                        problems.append(f"{t.name}/{c.name}: affinity set {p.name} does not exist")
        for m in t.maps:
            for e in m.elements:
                if isinstance(e.verdict, (Jump, Goto)) and e.verdict.chain not in names:
                    problems.append(
                        f"{t.name}/map {m.name}: element {' . '.join(e.key)} goes to missing chain {e.verdict.chain}"
                    )
    return problems
