"""Rule model -> `nft -f` text (pure), in nft's two layouts.

- Commands (`render_commands`, knftables' style, what kube-proxy's nftables mode writes):
  `add table` + `delete table` + `add table`, then sets, maps, chains, rules and elements,
  one `add` per line.
- Blocks (`render_block`, the layout `nft list ruleset` prints): `table X` + `delete table X`,
  then `table X { set ... { } chain ... { } }`.
Both recreate the whole table in one transaction: atomic, idempotent, nothing stale survives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache

from . import chain_texts
from .droplog import LOG_BURST, LOG_GROUP, LOG_RATE, key_of, log_matches, logged
from .model import (
    KEYWORDS,
    Addr,
    AddrType,
    Chain,
    Comment,
    Counter,
    CtState,
    Dnat,
    DPort,
    Goto,
    InSet,
    Jump,
    Log,
    MapElement,
    MarkMatch,
    Masquerade,
    NftMap,
    NftSet,
    NumgenVmap,
    Part,
    Proto,
    RecentCheck,
    RecentSet,
    Rule,
    SetMark,
    Table,
    Verdict,
    Vmap,
)

MAX_COMMENT = 128  # nft's limit on a comment
# nft's names for the standard hook priorities (ip and inet families)
PRIORITIES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}
_FIELD = {"daddr": "{l3} daddr", "saddr": "{l3} saddr", "l4proto": "meta l4proto", "dport": "th dport"}


def l3_of(family: str) -> str:
    """The address keyword of a table's rules: `ip6 daddr` in an ip6 table (kube-proxy's IPv6
    proxier), `ip daddr` in ip and inet ones."""
    return "ip6" if family == "ip6" else "ip"


def _field(name: str, l3: str) -> str:
    return _FIELD[name].format(l3=l3)


def comment_text(text: str) -> str:
    """A comment nft accepts: no double quote, at most MAX_COMMENT characters."""
    text = text.replace('"', "'")
    return text if len(text) <= MAX_COMMENT else text[: MAX_COMMENT - 3] + "..."


def priority_text(priority: int) -> str:
    """A priority by its standard name: 0 -> filter, 110 -> srcnat + 10."""
    name, value = min(PRIORITIES.items(), key=lambda kv: (abs(priority - kv[1]), kv[1]))
    offset = priority - value
    return name if offset == 0 else f"{name} {'+' if offset > 0 else '-'} {abs(offset)}"


def _ports(p: DPort) -> str:
    items = [str(a) if a == b else f"{a}-{b}" for a, b in p.ranges]
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _addrs(p: Addr, l3: str) -> str:
    op = "!= " if p.negate else ""
    if p.literal_set or len(p.cidrs) > 1:
        return f"{l3} {p.field} {op}{{ {', '.join(p.cidrs)} }}"
    return f"{l3} {p.field} {op}{p.cidrs[0]}"


def _key(field: str, protocol: str, l3: str) -> str:
    return " . ".join(f"{protocol} dport" if f == "dport" and protocol else _field(f, l3) for f in field.split(" . "))


# One writer per part type (a dict lookup: rendering is on the path of every sync). A Proto
# followed by a DPort is written as one expression (`tcp dport 80`), in _parts. Each writer takes
# the part and the table's address keyword (l3_of).
_PARTS: dict[type, Callable[..., str]] = {
    Proto: lambda p, l3: f"meta l4proto {p.name}",
    DPort: lambda p, l3: f"th dport {_ports(p)}",
    Addr: _addrs,
    AddrType: lambda p, l3: f"fib {p.field} type {'!= ' if p.negate else ''}local",
    MarkMatch: lambda p, l3: (
        f"mark and {p.mask:#x} {'!=' if p.negate else '=='} {p.value if p.value == 0 else hex(p.value)}"
    ),
    CtState: lambda p, l3: f"ct state {'!= ' if p.negate else ''}{','.join(s.lower() for s in p.states)}",
    RecentCheck: lambda p, l3: f"{l3} saddr @{p.name}",
    InSet: lambda p, l3: f"{_key(p.field, p.protocol, l3)} @{p.set}",
    RecentSet: lambda p, l3: f"update @{p.name} {{ {l3} saddr }}",
    Counter: lambda p, l3: "counter",
}


def _parts(parts: tuple[Part, ...], l3: str = "ip") -> tuple[list[str], list[str]]:
    """(words, comments): nft writes the comment at the end of a rule."""
    words: list[str] = []
    comments: list[str] = []
    skip = False
    for i, p in enumerate(parts):
        if skip:
            skip = False
            continue
        kind = type(p)
        if kind is Comment:
            comments.append(p.text)  # type: ignore[union-attr]
        elif kind is Log:
            continue  # written as a rule of its own before this one (chain_rules)
        elif kind is Proto and i + 1 < len(parts) and type(parts[i + 1]) is DPort:
            words.append(f"{p.name} dport {_ports(parts[i + 1])}")  # type: ignore[union-attr,arg-type]
            skip = True
        else:
            writer = _PARTS.get(kind)
            if writer is None:
                raise ValueError(f"{kind.__name__} has no nftables form")
            words.append(writer(p, l3))
    return words, comments


def _numgen(v: NumgenVmap) -> str:
    items = " , ".join(f"{i} : goto {c}" for i, c in enumerate(v.chains))
    return f"numgen random mod {len(v.chains)} vmap {{ {items} }}"


_VERDICTS: dict[type, Callable[..., str]] = {
    **{kind: (lambda v, l3, word=word: word) for kind, word in KEYWORDS.items()},
    Jump: lambda v, l3: f"jump {v.chain}",
    Goto: lambda v, l3: f"goto {v.chain}",
    # an IPv6 endpoint (kube-proxy's ip6 table) is written [address]:port
    Dnat: lambda v, l3: f"dnat to {f'[{v.ip}]' if ':' in v.ip else v.ip}:{v.port}",
    SetMark: lambda v, l3: f"mark set mark {v.op} {v.value:#x}",
    Masquerade: lambda v, l3: "masquerade" + (" fully-random" if v.fully_random else ""),
    Vmap: lambda v, l3: " . ".join(_field(f, l3) for f in v.fields) + f" vmap @{v.map}",
    NumgenVmap: lambda v, l3: _numgen(v),
}


def nft_verdict(v: Verdict | None, family: str = "ip") -> str:
    if v is None:
        return ""
    writer = _VERDICTS.get(type(v))
    if writer is None:
        raise ValueError(f"{type(v).__name__} has no nftables form")
    return writer(v, l3_of(family))


@lru_cache(maxsize=1 << 14)
def nft_rule(rule: Rule, family: str = "ip") -> str:
    """One rule as nft writes it in a table of `family`: matches and statements, the verdict,
    then the comment.

    Cached: every node of a cluster holds the same policy and kube-proxy rules, and every sync
    renders them again."""
    words, comments = _parts(rule.parts, l3_of(family))
    text = " ".join(w for w in words + [nft_verdict(rule.verdict, family)] if w)
    for c in comments:
        text += f' comment "{comment_text(c)}"'
    return text


@lru_cache(maxsize=1 << 12)
def nft_log_rule(table: str, chain: str, index: int, rule: Rule, family: str = "ip") -> str:
    """The rule that reports what `rule` drops or rejects (rules/droplog.py): same matches, rate-limited."""
    words, _ = _parts(log_matches(rule), l3_of(family))
    key = key_of(table, chain, index, rule)
    words += [
        f"limit rate {LOG_RATE}/second burst {LOG_BURST} packets",
        f'log prefix "{key.prefix()}" group {LOG_GROUP}',
    ]
    return " ".join(words)


def chain_rules(table: str, c: Chain, family: str = "ip") -> list[str]:
    """A chain's rules as nft writes them in a table of `family`, each logged rule preceded by
    its log rule (rendered once for the nodes of a sync that share the rules: chain_texts.py;
    the family is part of the key: `ip kube-proxy` and `ip6 kube-proxy` share their name)."""

    def render() -> list[str]:
        out: list[str] = []
        for i, r in enumerate(c.rules):
            if logged(r):
                out.append(nft_log_rule(table, c.name, i, r, family))
            out.append(nft_rule(r, family))
        return out

    return chain_texts.lines_of(f"nft-{family}", table, c.name, c.rules, render)


def _set_options(s: NftSet) -> list[str]:
    """A set's declaration, one option a line (blocks) or joined by ` ; ` (commands)."""
    opts = [f"type {s.type}"]
    if s.flags:
        opts.append(f"flags {','.join(s.flags)}")
    if s.timeout is not None:
        opts.append(f"timeout {s.timeout}s")
    if s.comment:
        opts.append(f'comment "{comment_text(s.comment)}"')
    return opts


# -- commands (knftables) ----------------------------------------------------------------------------


def _set_decl(s: NftSet) -> str:
    return "{ " + " ; ".join(_set_options(s)) + " ; }"


def _map_decl(m: NftMap) -> str:
    opts = [f"type {m.type}"] + ([f'comment "{m.comment}"'] if m.comment else [])
    return "{ " + " ; ".join(opts) + " ; }"


def _element(e: MapElement, family: str = "ip") -> str:
    comment = f' comment "{e.comment}"' if e.comment else ""
    return f"{{ {' . '.join(e.key)}{comment} : {nft_verdict(e.verdict, family)} }}"


def _chain_decl(ref: str, c: Chain) -> str:
    if c.base:
        policy = f" policy {c.policy} ;" if c.policy else ""
        return f"add chain {ref} {c.name} {{ type {c.type} hook {c.hook} priority {c.priority} ;{policy} }}"
    if c.comment:
        return f'add chain {ref} {c.name} {{ comment "{c.comment}" ; }}'
    return f"add chain {ref} {c.name}"


def render_commands(tables: Iterable[Table], header: str = "") -> str:
    """`nft -f` input in knftables' command style: each table replaced in one transaction."""
    lines: list[str] = [header] if header else []
    for t in tables:
        ref = t.ref
        table_decl = f'add table {ref} {{ comment "{t.comment}" ; }}' if t.comment else f"add table {ref}"
        lines += [table_decl, f"delete table {ref}", table_decl, ""]
        lines += [f"add set {ref} {s.name} {_set_decl(s)}" for s in t.sets]
        lines += [f"add map {ref} {m.name} {_map_decl(m)}" for m in t.maps]
        lines.append("")
        lines += [_chain_decl(ref, c) for c in t.chains]
        lines.append("")
        for c in t.chains:
            lines += [f"add rule {ref} {c.name} {text}" for text in chain_rules(t.name, c, t.family)]
        lines.append("")
        for s in t.sets:
            lines += [f"add element {ref} {s.name} {{ {e} }}" for e in s.elements]
        for m in t.maps:
            lines += [f"add element {ref} {m.name} {_element(e, t.family)}" for e in m.elements]
    return "\n".join(lines).rstrip("\n") + "\n"


# The command-style pieces render_diff.py writes one by one (a partial sync's transaction).
set_decl, map_element, chain_decl = _set_decl, _element, _chain_decl


# -- blocks ------------------------------------------------------------------------------------------


def set_block(s: NftSet, indent: str = "\t") -> list[str]:
    lines = [f"{indent}set {s.name} {{"] + [f"{indent * 2}{o}" for o in _set_options(s)]
    if s.elements:
        lines.append(f"{indent * 2}elements = {{ " + ", ".join(s.elements) + " }")
    lines.append(f"{indent}}}")
    return lines


def chain_block(c: Chain, indent: str = "\t", table: str = "", family: str = "ip") -> list[str]:
    lines = [f"{indent}chain {c.name} {{"]
    if c.base:
        lines.append(
            f"{indent * 2}type {c.type} hook {c.hook} priority {priority_text(c.priority or 0)}; "
            f"policy {c.policy or 'accept'};"
        )
    if c.comment:
        lines.append(f'{indent * 2}comment "{comment_text(c.comment)}"')
    lines += [f"{indent * 2}{text}" for text in chain_rules(table, c, family)]
    lines.append(f"{indent}}}")
    return lines


def render_block(table: Table, header: str = "", indent: str = "\t", create: str = "table {ref}") -> str:
    """`nft -f` input in block style: create the table if missing (`create`), delete it, define it again."""
    if table.maps:
        raise ValueError(f"table {table.name}: maps have no block form here")
    head = ([header] if header else []) + [
        create.format(ref=table.ref),
        f"delete table {table.ref}",
        f"table {table.ref} {{",
    ]
    body: list[str] = []
    for s in table.sets:
        body += set_block(s, indent)
    for c in table.chains:
        body += chain_block(c, indent, table.name, table.family)
    return "\n".join(head + body + ["}"]) + "\n"


def remove_table(ref: str) -> str:
    """Remove table `ref` ("inet testbed-netpol") whether or not it exists (teardown, or a node left with
    nothing to hold)."""
    return f"table {ref}\ndelete table {ref}\n"
