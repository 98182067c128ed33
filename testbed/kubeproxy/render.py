"""Ruleset -> text: `iptables-restore --noflush` input and `nft -f` input (pure).

iptables: the filter and nat tables, each KUBE-* chain declared (`:CHAIN - [0:0]`, which
under --noflush creates it or flushes it) and then filled, so re-applying the text is
idempotent; chains of a previous ruleset that are gone are flushed and deleted (`-X`), as
upstream does after reading iptables-save. The jumps from the built-in chains (PREROUTING,
INPUT...) are not part of it: `render_iptables_bootstrap` gives them (`-I CHAIN n`), to be
applied once to a fresh node, after the first sync text, the way kube-proxy ensures them
once with `iptables -C/-I`.

nftables: one transaction in knftables' command style. It starts with `add table` + `delete
table` and recreates the whole table (sets, maps, chains, rules, elements), so it is atomic
and idempotent, and nothing stale survives.
"""

from __future__ import annotations

from typing import Iterable

from .iptables import SERVICE_CHAIN_PREFIXES
from .model import (Accept, Addr, AddrType, Comment, CtState, DPort, Dnat, Drop, Goto, InSet, Jump,
                    MapElement, MarkMatch, Masquerade, NftMap, NftSet, NumgenVmap, Part, Proto, Random,
                    RecentCheck, RecentSet, Reject, Return, Rule, Ruleset, SetMark, Verdict, Vmap)


def _quote(text: str) -> str:
    return f'"{text}"' if any(c in text for c in ' \t"') else text


# -- iptables ------------------------------------------------------------------------------------

def _ipt_part(p: Part) -> str:
    if isinstance(p, Comment):
        return f"-m comment --comment {_quote(p.text)}"
    if isinstance(p, Proto):
        return f"-m {p.name} -p {p.name}"
    if isinstance(p, DPort):
        return f"--dport {p.port}"
    if isinstance(p, Addr):
        if len(p.cidrs) != 1:
            raise ValueError(f"iptables takes one address per rule, got {p.cidrs}")
        flag = "-s" if p.field == "saddr" else "-d"
        return f"{'! ' if p.negate else ''}{flag} {p.cidrs[0]}"
    if isinstance(p, AddrType):
        flag = "--src-type" if p.field == "saddr" else "--dst-type"
        return f"-m addrtype {'! ' if p.negate else ''}{flag} LOCAL"
    if isinstance(p, MarkMatch):
        return f"-m mark {'! ' if p.negate else ''}--mark {p.value:#x}/{p.mask:#x}"
    if isinstance(p, CtState):
        return f"-m conntrack {'! ' if p.negate else ''}--ctstate {','.join(p.states)}"
    if isinstance(p, Random):
        return f"-m statistic --mode random --probability {float(p.probability):0.10f}"
    if isinstance(p, RecentCheck):
        return f"-m recent --name {p.name} --rcheck --seconds {p.seconds} --reap"
    if isinstance(p, RecentSet):
        return f"-m recent --name {p.name} --set"
    raise ValueError(f"{type(p).__name__} has no iptables form")


def _ipt_verdict(v: Verdict | None) -> str:
    if v is None:
        return ""
    if isinstance(v, Jump):
        return f"-j {v.chain}"
    if isinstance(v, Goto):
        return f"-g {v.chain}"
    simple = {Return: "-j RETURN", Accept: "-j ACCEPT", Drop: "-j DROP", Reject: "-j REJECT"}
    if type(v) in simple:
        return simple[type(v)]
    if isinstance(v, Dnat):
        return f"-j DNAT --to-destination {v.ip}:{v.port}"
    if isinstance(v, SetMark):
        return f"-j MARK --{v.op}-mark {v.value:#x}"
    if isinstance(v, Masquerade):
        return "-j MASQUERADE" + (" --random-fully" if v.fully_random else "")
    raise ValueError(f"{type(v).__name__} has no iptables form")


def iptables_rule(chain: str, rule: Rule, op: str = "-A") -> str:
    words = [op, chain] + [_ipt_part(p) for p in rule.parts] + [_ipt_verdict(rule.verdict)]
    return " ".join(w for w in words if w)


def stale_chains(ruleset: Ruleset, previous: Ruleset | None) -> dict[str, list[str]]:
    """Per table, the service chains of `previous` that `ruleset` no longer has."""
    out: dict[str, list[str]] = {}
    if previous is None:
        return out
    for table in previous.tables:
        now = set(ruleset.chain_names(table.name)) if table.name in {t.name for t in ruleset.tables} else set()
        gone = [c.name for c in table.chains if c.name not in now and c.name.startswith(SERVICE_CHAIN_PREFIXES)]
        if gone:
            out[table.name] = gone
    return out


def render_iptables_restore(ruleset: Ruleset, previous: Ruleset | None = None, header: bool = True) -> str:
    """Input for `iptables-restore --noflush` (tables filter then nat, as kube-proxy writes them)."""
    if ruleset.mode != "iptables":
        raise ValueError(f"a {ruleset.mode} ruleset has no iptables-restore form")
    stale = stale_chains(ruleset, previous)
    lines: list[str] = []
    if header:
        lines.append(f"# kube-proxy (iptables mode) on node {ruleset.node}, HOST-IP {ruleset.host_ip}: "
                     "iptables-restore --noflush")
    for table in ruleset.tables:
        lines.append(f"*{table.name}")
        chains = [c for c in table.chains if not c.base]
        lines += [f":{c.name} - [0:0]" for c in chains]
        lines += [f":{name} - [0:0]" for name in stale.get(table.name, [])]
        for c in chains:
            lines += [iptables_rule(c.name, r) for r in c.rules]
        lines += [f"-X {name}" for name in stale.get(table.name, [])]
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def render_iptables_bootstrap(ruleset: Ruleset) -> str:
    """The jumps from the built-in chains to kube-proxy's, for `iptables-restore --noflush`, once.

    Apply it after the first `render_iptables_restore` text (which creates the KUBE-* chains);
    `-I CHAIN n` puts the jumps first, in kube-proxy's order, before any other rule there."""
    if ruleset.mode != "iptables":
        raise ValueError(f"a {ruleset.mode} ruleset has no iptables form")
    lines: list[str] = []
    for table in ruleset.tables:
        lines.append(f"*{table.name}")
        for c in table.chains:
            if c.base:
                lines += [iptables_rule(f"{c.name} {i}", r, op="-I") for i, r in enumerate(c.rules, start=1)]
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def jump_rules(ruleset: Ruleset) -> list[tuple[str, str, list[str]]]:
    """(table, built-in chain, argv after the chain) of each jump, for `iptables -C`/`-I` checks."""
    out = []
    for table in ruleset.tables:
        for c in table.chains:
            if c.base:
                for r in c.rules:
                    out.append((table.name, c.name, iptables_rule(c.name, r).split(" ", 2)[2].split()))
    return out


# -- nftables --------------------------------------------------------------------------------------

_NFT_FIELD = {"daddr": "ip daddr", "saddr": "ip saddr", "l4proto": "meta l4proto", "dport": "th dport"}


def _nft_addrs(p: Addr) -> str:
    op = "!= " if p.negate else ""
    if p.literal_set or len(p.cidrs) > 1:
        return f"ip {p.field} {op}{{ {', '.join(p.cidrs)} }}"
    return f"ip {p.field} {op}{p.cidrs[0]}"


def _nft_parts(parts: Iterable[Part]) -> tuple[list[str], list[str]]:
    """(words, comments): nft writes the comment at the end of a rule."""
    words: list[str] = []
    comments: list[str] = []
    parts = list(parts)
    i = 0
    while i < len(parts):
        p = parts[i]
        if isinstance(p, Comment):
            comments.append(p.text)
        elif isinstance(p, Proto):
            if i + 1 < len(parts) and isinstance(parts[i + 1], DPort):
                words.append(f"{p.name} dport {parts[i + 1].port}")  # type: ignore[union-attr]
                i += 1
            else:
                words.append(f"meta l4proto {p.name}")
        elif isinstance(p, DPort):
            words.append(f"th dport {p.port}")
        elif isinstance(p, Addr):
            words.append(_nft_addrs(p))
        elif isinstance(p, AddrType):
            words.append(f"fib {p.field} type {'!= ' if p.negate else ''}local")
        elif isinstance(p, MarkMatch):
            words.append(f"mark and {p.mask:#x} {'!=' if p.negate else '=='} {p.value if p.value == 0 else hex(p.value)}")
        elif isinstance(p, CtState):
            words.append(f"ct state {'!= ' if p.negate else ''}{','.join(s.lower() for s in p.states)}")
        elif isinstance(p, RecentCheck):
            words.append(f"ip saddr @{p.name}")
        elif isinstance(p, InSet):
            words.append(f"ip {p.field} @{p.set}")
        elif isinstance(p, RecentSet):
            words.append(f"update @{p.name} {{ ip saddr }}")
        else:
            raise ValueError(f"{type(p).__name__} has no nftables form")
        i += 1
    return words, comments


def nft_verdict(v: Verdict | None) -> str:
    if v is None:
        return ""
    if isinstance(v, Jump):
        return f"jump {v.chain}"
    if isinstance(v, Goto):
        return f"goto {v.chain}"
    simple = {Return: "return", Accept: "accept", Drop: "drop", Reject: "reject"}
    if type(v) in simple:
        return simple[type(v)]
    if isinstance(v, Dnat):
        return f"dnat to {v.ip}:{v.port}"
    if isinstance(v, SetMark):
        return f"mark set mark {v.op} {v.value:#x}"
    if isinstance(v, Masquerade):
        return "masquerade" + (" fully-random" if v.fully_random else "")
    if isinstance(v, Vmap):
        return " . ".join(_NFT_FIELD[f] for f in v.fields) + f" vmap @{v.map}"
    if isinstance(v, NumgenVmap):
        items = " , ".join(f"{i} : goto {c}" for i, c in enumerate(v.chains))
        return f"numgen random mod {len(v.chains)} vmap {{ {items} }}"
    raise ValueError(f"{type(v).__name__} has no nftables form")


def nft_rule(rule: Rule) -> str:
    words, comments = _nft_parts(rule.parts)
    text = " ".join(w for w in words + [nft_verdict(rule.verdict)] if w)
    for c in comments:
        text += f' comment "{c}"'
    return text


def _nft_set_decl(s: NftSet) -> str:
    opts = [f"type {s.type}"]
    if s.flags:
        opts.append(f"flags {','.join(s.flags)}")
    if s.timeout is not None:
        opts.append(f"timeout {s.timeout}s")
    if s.comment:
        opts.append(f'comment "{s.comment}"')
    return "{ " + " ; ".join(opts) + " ; }"


def _nft_map_decl(m: NftMap) -> str:
    opts = [f"type {m.type}"] + ([f'comment "{m.comment}"'] if m.comment else [])
    return "{ " + " ; ".join(opts) + " ; }"


def _nft_element(e: MapElement) -> str:
    comment = f' comment "{e.comment}"' if e.comment else ""
    return f"{{ {' . '.join(e.key)}{comment} : {nft_verdict(e.verdict)} }}"


def render_nft(ruleset: Ruleset, header: bool = True) -> str:
    """Input for `nft -f`: one atomic transaction that replaces table ip kube-proxy."""
    if ruleset.mode != "nftables":
        raise ValueError(f"a {ruleset.mode} ruleset has no nft form")
    lines: list[str] = []
    if header:
        lines.append(f"# kube-proxy (nftables mode) on node {ruleset.node}, HOST-IP {ruleset.host_ip}: nft -f")
    for t in ruleset.tables:
        ref = f"{t.family} {t.name}"
        table_decl = f'add table {ref} {{ comment "{t.comment}" ; }}' if t.comment else f"add table {ref}"
        lines += [table_decl, f"delete table {ref}", table_decl, ""]
        lines += [f"add set {ref} {s.name} {_nft_set_decl(s)}" for s in t.sets]
        lines += [f"add map {ref} {m.name} {_nft_map_decl(m)}" for m in t.maps]
        lines.append("")
        for c in t.chains:
            if c.base:
                lines.append(f"add chain {ref} {c.name} {{ type {c.type} hook {c.hook} priority {c.priority} ; }}")
            elif c.comment:
                lines.append(f'add chain {ref} {c.name} {{ comment "{c.comment}" ; }}')
            else:
                lines.append(f"add chain {ref} {c.name}")
        lines.append("")
        for c in t.chains:
            lines += [f"add rule {ref} {c.name} {nft_rule(r)}" for r in c.rules]
        lines.append("")
        for s in t.sets:
            lines += [f"add element {ref} {s.name} {{ {e} }}" for e in s.elements]
        for m in t.maps:
            lines += [f"add element {ref} {m.name} {_nft_element(e)}" for e in m.elements]
    return "\n".join(lines).rstrip("\n") + "\n"


def render(ruleset: Ruleset, previous: Ruleset | None = None) -> str:
    """The text for the ruleset's own tool: iptables-restore --noflush or nft -f."""
    if ruleset.mode == "iptables":
        return render_iptables_restore(ruleset, previous)
    return render_nft(ruleset)
