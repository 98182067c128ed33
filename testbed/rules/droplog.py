"""Drop evidence: how a dropping or rejecting rule tells the testbed about a packet (pure).

Where it sits: beside the renderers. A rule carrying the `Log` part (rules/model.py) — the
NetworkPolicy drops (netpol/), kube-proxy's no-endpoint REJECT and firewall DROP (kubeproxy/) —
is written with a rule of the same matches just before it:

    nft:       <matches> limit rate 5000/second burst 2000 packets log prefix "tb drop T C 3" group 7401
    iptables:  <matches> -m limit --limit 5000/sec --limit-burst 2000 -j NFLOG --nflog-group 7401 ...

so the kernel hands the packet's headers to nfnetlink_log (group LOG_GROUP of the node's
namespace), where traffic/droplog.py reads them. The log rule has no verdict: it never changes
what happens to the packet, and over its rate (a flood) packets are still dropped, just not
reported (their probes then wait for their timeout). The prefix is the key of the rule that
decides: the verdict, the table, the chain and the rule's index in the model, which is the index
`testbed explain --trace` prints; `locate` finds the rule again from a node's ruleset.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from .model import Comment, Counter, Drop, Log, Part, RecentSet, Reject, Rule, Ruleset, Table

LOG_GROUP = 7401  # nfnetlink_log group, per network namespace: each node's is the testbed's own
LOG_RATE = 5000  # packets per second per rule reported at most...
LOG_BURST = 2000  # ...after a burst of this many (a 486-probe table blocks at most 486 at once)
PREFIX = "tb"
MAX_PREFIX = 63  # iptables' NFLOG prefix holds 64 bytes with its NUL (nft: 128)
_STATEMENTS = (Comment, Counter, Log, RecentSet)


@dataclass(frozen=True)
class RuleKey:
    """Which rule of a node's tables dropped or rejected a packet."""

    verdict: str  # "drop" | "reject"
    table: str
    chain: str  # the chain's name, or "#<crc32 hex>" when the name is too long for a prefix
    index: int

    def prefix(self) -> str:
        return f"{PREFIX} {self.verdict} {self.table} {self.chain} {self.index}"


def logged(rule: Rule) -> bool:
    return any(type(p) is Log for p in rule.parts)


def verdict_word(rule: Rule) -> str:
    if isinstance(rule.verdict, Reject):
        return "reject"
    if isinstance(rule.verdict, Drop):
        return "drop"
    raise ValueError(f"a logged rule must drop or reject, not {type(rule.verdict).__name__}")


def chain_ref(table: str, chain: str) -> str:
    """The chain as a prefix names it: itself, or a checksum when the prefix would be too long."""
    if len(f"{PREFIX} reject {table} {chain} 9999") <= MAX_PREFIX:
        return chain
    return f"#{zlib.crc32(chain.encode()):08x}"


def key_of(table: str, chain: str, index: int, rule: Rule) -> RuleKey:
    return RuleKey(verdict_word(rule), table, chain_ref(table, chain), index)


def log_matches(rule: Rule) -> tuple[Part, ...]:
    """The matches of the log rule: the rule's own, without its statements and comment."""
    return tuple(p for p in rule.parts if not isinstance(p, _STATEMENTS))


def parse_prefix(prefix: str) -> RuleKey | None:
    """The key a prefix names, or None for anything that is not the testbed's."""
    words = prefix.split(" ")
    if len(words) != 5 or words[0] != PREFIX or words[1] not in ("drop", "reject") or not words[4].isdigit():
        return None
    return RuleKey(words[1], words[2], words[3], int(words[4]))


@dataclass(frozen=True)
class Located:
    """The rule a key names in a node's tables."""

    table: Table
    chain: str
    index: int
    rule: Rule


def locate(ruleset: Ruleset, key: RuleKey) -> Located | None:
    """The rule of `ruleset` that `key` names, if it is still there (the tables may have changed
    since the packet was logged: then None)."""
    for t in ruleset.tables:
        if t.name != key.table:
            continue
        for c in t.chains:
            if chain_ref(t.name, c.name) != key.chain or key.index >= len(c.rules):
                continue
            rule = c.rules[key.index]
            if logged(rule):
                return Located(t, c.name, key.index, rule)
    return None
