"""A small nftables rule model (rules as data), its text for `nft -f`, and set-element updates; pure.

The compiler (compiler.py) builds a `Ruleset` per node; `render` turns it into one atomic
script that recreates the table in a single transaction; the tracer (tracer.py) evaluates the
same data, so what is traced is what is rendered. `set_updates` compares two rulesets of one
node: when only set elements differ (a pod added, removed or relabelled, a namespace
relabelled) it returns the element additions and deletions, applied without reloading.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Union

FAMILY = "inet"
TABLE = "testbed-netpol"
ADDR = "ipv4_addr"
ADDR_PORT = "ipv4_addr . inet_service"
ADDR_ADDR = "ipv4_addr . ipv4_addr"
MAX_COMMENT = 128   # nft's limit on a rule comment


# -- matches -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class CtState:
    states: tuple[str, ...]

    def render(self) -> str:
        return "ct state " + ",".join(self.states)


@dataclass(frozen=True)
class AddrIn:
    """`ip saddr @set` / `ip daddr @set`."""

    field: str      # "saddr" | "daddr"
    set: str

    def render(self) -> str:
        return f"ip {self.field} @{self.set}"


@dataclass(frozen=True)
class L4Proto:
    protocol: str   # TCP | UDP | SCTP

    def render(self) -> str:
        return f"meta l4proto {self.protocol.lower()}"


@dataclass(frozen=True)
class Dport:
    """`tcp dport 80` / `udp dport { 53, 8000-8080 }`: ranges are (first, last) pairs."""

    protocol: str
    ranges: tuple[tuple[int, int], ...]

    def render(self) -> str:
        items = [str(a) if a == b else f"{a}-{b}" for a, b in self.ranges]
        value = items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"
        return f"{self.protocol.lower()} dport {value}"


@dataclass(frozen=True)
class DaddrDportIn:
    """`ip daddr . tcp dport @set`: (pod IP, resolved port) pairs, for named ports."""

    protocol: str
    set: str

    def render(self) -> str:
        return f"ip daddr . {self.protocol.lower()} dport @{self.set}"


@dataclass(frozen=True)
class SaddrDaddrIn:
    """`ip saddr . ip daddr @set`: (source, destination) address pairs."""

    set: str

    def render(self) -> str:
        return f"ip saddr . ip daddr @{self.set}"


Match = Union[CtState, AddrIn, L4Proto, Dport, DaddrDportIn, SaddrDaddrIn]


# -- rules, chains, sets, ruleset ---------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    matches: tuple[Match, ...]
    verdict: str               # "accept" | "drop" | "return" | "jump <chain>"
    comment: str = ""
    counter: bool = False

    def render(self) -> str:
        parts = [m.render() for m in self.matches]
        if self.counter:
            parts.append("counter")
        parts.append(self.verdict)
        if self.comment:
            parts.append(f'comment "{_comment(self.comment)}"')
        return " ".join(parts)


@dataclass(frozen=True)
class Chain:
    name: str
    rules: tuple[Rule, ...]
    hook: str = ""             # "" for a regular chain
    priority: str = "filter"
    policy: str = "accept"

    def render(self) -> list[str]:
        lines = [f"\tchain {self.name} {{"]
        if self.hook:
            lines.append(f"\t\ttype filter hook {self.hook} priority {self.priority}; policy {self.policy};")
        lines += [f"\t\t{r.render()}" for r in self.rules]
        lines.append("\t}")
        return lines


@dataclass(frozen=True)
class NftSet:
    name: str
    type: str                  # ADDR | ADDR_PORT | ADDR_ADDR
    elements: tuple[str, ...]  # as nft writes them: "10.244.1.2", "10.0.0.0/8", "10.244.1.2 . 8080"
    interval: bool = False
    comment: str = ""

    def render(self) -> list[str]:
        lines = [f"\tset {self.name} {{", f"\t\ttype {self.type}"]
        if self.interval:
            lines.append("\t\tflags interval")
        if self.comment:
            lines.append(f'\t\tcomment "{_comment(self.comment)}"')
        if self.elements:
            lines.append("\t\telements = { " + ", ".join(self.elements) + " }")
        lines.append("\t}")
        return lines


@dataclass(frozen=True)
class Ruleset:
    node: str
    sets: tuple[NftSet, ...]
    chains: tuple[Chain, ...]
    family: str = FAMILY
    table: str = TABLE

    def set(self, name: str) -> NftSet:
        for s in self.sets:
            if s.name == name:
                return s
        raise KeyError(name)

    def chain(self, name: str) -> Chain:
        for c in self.chains:
            if c.name == name:
                return c
        raise KeyError(name)

    def rule_count(self) -> int:
        return sum(len(c.rules) for c in self.chains)

    def structure(self) -> tuple:
        """Everything but the elements of the pod-address sets: equal structures can be updated
        element by element. Interval sets (ipBlocks) count as structure: they change only with
        the policies, and interval elements are not safely deleted one by one."""
        return (self.family, self.table, self.chains,
                tuple((s.name, s.type, s.interval, s.comment, s.elements if s.interval else ())
                      for s in self.sets))


def _comment(text: str) -> str:
    text = text.replace('"', "'")
    return text if len(text) <= MAX_COMMENT else text[:MAX_COMMENT - 3] + "..."


def render(ruleset: Ruleset) -> str:
    """The whole table for `nft -f`: one transaction that creates it (if missing), deletes it
    and defines it again, so the node never runs half an old and half a new rule set."""
    head = [f"# NetworkPolicy enforcement on node {ruleset.node}: generated by testbed.netpol, applied with nft -f",
            f"table {ruleset.family} {ruleset.table}",
            f"delete table {ruleset.family} {ruleset.table}",
            f"table {ruleset.family} {ruleset.table} {{"]
    body: list[str] = []
    for s in ruleset.sets:
        body += s.render()
    for c in ruleset.chains:
        body += c.render()
    return "\n".join(head + body + ["}"]) + "\n"


def remove_script(family: str = FAMILY, table: str = TABLE) -> str:
    """Remove the table whether or not it exists (teardown, or a node left with no pods)."""
    return f"table {family} {table}\ndelete table {family} {table}\n"


# -- updates -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SetChange:
    set: str
    add: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()


@dataclass(frozen=True)
class SetUpdate:
    node: str
    changes: tuple[SetChange, ...]
    family: str = FAMILY
    table: str = TABLE

    def __bool__(self) -> bool:
        return bool(self.changes)

    def render(self) -> str:
        """`nft -f` text: deletions first, then additions, in one transaction."""
        lines = [f"# NetworkPolicy set updates on node {self.node}"]
        for c in self.changes:
            if c.delete:
                lines.append(f"delete element {self.family} {self.table} {c.set} {{ {', '.join(c.delete)} }}")
        for c in self.changes:
            if c.add:
                lines.append(f"add element {self.family} {self.table} {c.set} {{ {', '.join(c.add)} }}")
        return "\n".join(lines) + "\n"


def set_updates(old: Ruleset, new: Ruleset) -> SetUpdate | None:
    """The element changes that turn `old` into `new`; None when the rules or the sets
    themselves differ (a policy was added, removed or changed): reload with `render(new)`."""
    if old.structure() != new.structure():
        return None
    changes = []
    for before, after in zip(old.sets, new.sets):
        gone = set(before.elements) - set(after.elements)
        came = set(after.elements) - set(before.elements)
        if gone or came:
            changes.append(SetChange(after.name, sort_elements(came), sort_elements(gone)))
    return SetUpdate(new.node, tuple(changes), new.family, new.table)


def element_key(element: str) -> tuple:
    """Numeric order of addresses, prefixes and concatenations (address . port / address)."""
    key: list[int] = []
    for part in element.split(" . "):
        addr, _, plen = part.partition("/")
        key += [int(ipaddress.ip_address(addr)), int(plen or 0)] if not addr.isdigit() else [int(addr), 0]
    return tuple(key)


def sort_elements(elements) -> tuple[str, ...]:
    return tuple(sorted(set(elements), key=element_key))
