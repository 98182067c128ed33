"""Rule model -> `iptables-restore --noflush` text (pure).

Each table's user chains are declared (`:CHAIN - [0:0]`, which under --noflush creates the
chain or flushes it) and then filled, so re-applying the text is idempotent; chains named in
`stale` are declared, flushed and deleted (`-X`). The rules of the built-in chains (PREROUTING,
INPUT...) are not part of it: `render_bootstrap` gives them (`-I CHAIN n`), to be applied once,
after the first text has created the chains they jump to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from . import chain_texts
from .droplog import LOG_BURST, LOG_GROUP, LOG_RATE, key_of, log_matches, logged
from .model import (
    KEYWORDS,
    Addr,
    AddrType,
    Comment,
    CtState,
    Dnat,
    DPort,
    Goto,
    Jump,
    Log,
    MarkMatch,
    Masquerade,
    Part,
    Proto,
    Random,
    RecentCheck,
    RecentSet,
    Rule,
    SetMark,
    Table,
    Verdict,
)


def _quote(text: str) -> str:
    if not any(c in text for c in ' \t"'):
        return text
    # iptables-restore reads \" inside a quoted word as a quote (the portmap plugin's comments hold some)
    return '"' + text.replace('"', '\\"') + '"'


def _dport(p: DPort) -> str:
    if len(p.ranges) != 1:
        raise ValueError(f"iptables takes one port or range per rule, got {p.ranges}")
    first, last = p.ranges[0]
    return f"--dport {first}" if first == last else f"--dport {first}:{last}"


def _addr(p: Addr) -> str:
    if len(p.cidrs) != 1:
        raise ValueError(f"iptables takes one address per rule, got {p.cidrs}")
    return f"{'! ' if p.negate else ''}{'-s' if p.field == 'saddr' else '-d'} {p.cidrs[0]}"


# One writer per part type (a dict lookup: rendering is on the path of every sync).
_PARTS: dict[type, Callable[..., str]] = {
    Comment: lambda p: f"-m comment --comment {_quote(p.text)}",
    Proto: lambda p: f"-m {p.name} -p {p.name}",
    DPort: _dport,
    Addr: _addr,
    AddrType: lambda p: (
        f"-m addrtype {'! ' if p.negate else ''}{'--src-type' if p.field == 'saddr' else '--dst-type'} LOCAL"
    ),
    MarkMatch: lambda p: f"-m mark {'! ' if p.negate else ''}--mark {p.value:#x}/{p.mask:#x}",
    CtState: lambda p: f"-m conntrack {'! ' if p.negate else ''}--ctstate {','.join(p.states)}",
    Random: lambda p: f"-m statistic --mode random --probability {float(p.probability):0.10f}",
    RecentCheck: lambda p: f"-m recent --name {p.name} --rcheck --seconds {p.seconds} --reap",
    RecentSet: lambda p: f"-m recent --name {p.name} --set",
    Log: lambda p: "",  # written as a rule of its own before this one (chain_rules)
}
_VERDICTS: dict[type, Callable[..., str]] = {
    **{
        kind: (lambda v, word=word.upper(): f"-j {word}")  # noqa: B008 -- binds this word
        for kind, word in KEYWORDS.items()
    },
    Jump: lambda v: f"-j {v.chain}",
    Goto: lambda v: f"-g {v.chain}",
    # an IPv6 endpoint (ip6tables, dual-stack) is written [address]:port
    Dnat: lambda v: f"-j DNAT --to-destination {f'[{v.ip}]' if ':' in v.ip else v.ip}:{v.port}",
    SetMark: lambda v: f"-j MARK --{v.op}-mark {v.value:#x}",
    Masquerade: lambda v: "-j MASQUERADE" + (" --random-fully" if v.fully_random else ""),
}


def _part(p: Part) -> str:
    writer = _PARTS.get(type(p))
    if writer is None:
        raise ValueError(f"{type(p).__name__} has no iptables form")
    return writer(p)


def _verdict(v: Verdict | None) -> str:
    if v is None:
        return ""
    writer = _VERDICTS.get(type(v))
    if writer is None:
        raise ValueError(f"{type(v).__name__} has no iptables form")
    return writer(v)


def iptables_rule(chain: str, rule: Rule, op: str = "-A") -> str:
    words = [op, chain] + [_part(p) for p in rule.parts] + [_verdict(rule.verdict)]
    return " ".join(w for w in words if w)


def iptables_log_rule(table: str, chain: str, index: int, rule: Rule) -> str:
    """The rule that reports what `rule` drops or rejects (rules/droplog.py): same matches, rate-limited."""
    key = key_of(table, chain, index, rule)
    words = ["-A", chain] + [_part(p) for p in log_matches(rule)]
    words += [
        f"-m limit --limit {LOG_RATE}/sec --limit-burst {LOG_BURST}",
        f'-j NFLOG --nflog-group {LOG_GROUP} --nflog-prefix "{key.prefix()}"',
    ]
    return " ".join(w for w in words if w)


def chain_rules(table: str, chain: str, rules: Sequence[Rule]) -> list[str]:
    """A user chain's `-A` lines, each logged rule preceded by its log rule (rendered once for
    the nodes of a sync that share the rules: chain_texts.py)."""

    def render() -> list[str]:
        out: list[str] = []
        for i, r in enumerate(rules):
            if logged(r):
                out.append(iptables_log_rule(table, chain, i, r))
            out.append(iptables_rule(chain, r))
        return out

    return chain_texts.lines_of("iptables", table, chain, rules, render)


def render_restore(tables: Iterable[Table], header: str = "", stale: Mapping[str, list[str]] | None = None) -> str:
    """Input for `iptables-restore --noflush`: the user chains of each table, then COMMIT."""
    stale = stale or {}
    lines: list[str] = [header] if header else []
    for table in tables:
        lines.append(f"*{table.name}")
        chains = [c for c in table.chains if not c.base]
        lines += [f":{c.name} - [0:0]" for c in chains]
        lines += [f":{name} - [0:0]" for name in stale.get(table.name, [])]
        for c in chains:
            lines += chain_rules(table.name, c.name, c.rules)
        lines += [f"-X {name}" for name in stale.get(table.name, [])]
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def render_bootstrap(tables: Iterable[Table]) -> str:
    """The rules of the built-in chains, inserted first (`-I CHAIN n`) in their order, once."""
    lines: list[str] = []
    for table in tables:
        lines.append(f"*{table.name}")
        for c in table.chains:
            if c.base:
                lines += [iptables_rule(f"{c.name} {i}", r, op="-I") for i, r in enumerate(c.rules, start=1)]
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def jump_rules(tables: Iterable[Table]) -> list[tuple[str, str, list[str]]]:
    """(table, built-in chain, argv after the chain) of each built-in chain's rule, for `iptables -C`/`-I`."""
    out = []
    for table in tables:
        for c in table.chains:
            if c.base:
                for r in c.rules:
                    out.append((table.name, c.name, iptables_rule(c.name, r).split(" ", 2)[2].split()))
    return out
