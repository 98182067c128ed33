"""A policy change as a patch of the loaded table: only the chains and sets that differ; pure.

nft.render reloads the whole table inet testbed-netpol, every set with every element. With the
administrator's tiers in force the table holds their subject and peer sets (often every pod of
the cluster), so reloading it for a v1 NetworkPolicy change would cost time growing with the
tiers, not with the change (issue 17's target: a change with tiers present is enforced within
the time of a v1 change; benchmarks/tier_changes.py). `patch` writes one `nft -f` transaction
that turns the loaded `old` table into `new` touching only what differs, as kube-proxy's partial
syncs do:

    flush chain   every chain whose rules changed, and every chain that goes
    delete chain  the chains that go (nothing jumps to them any more: those rules were flushed)
    delete set    the sets that go (their rules were flushed above)
    add set       new sets, with their elements
    elements      kept sets: element deletions and additions (interval sets: flush, then add all)
    add chain     new chains
    add rule      the rules of new and changed chains, in order

The kernel applies the transaction atomically, as it does the full reload. `patch` returns None
(reload) where a patch would not be the same table: a base chain's hook, type, priority or policy
changed, a set's declaration changed under the same name, or the table itself differs.
"""

from __future__ import annotations

from ..rules.model import Chain, NftSet, Ruleset, Table
from ..rules.render_nft import chain_rules, set_block
from .nft import TABLE, sort_elements


def _chain_head(c: Chain) -> tuple[object, ...]:
    return (c.hook, c.type, c.priority, c.policy, c.comment)


def _set_head(s: NftSet) -> tuple[object, ...]:
    return (s.type, s.flags, s.timeout, s.comment)


def _add_chain(ref: str, c: Chain) -> str:
    # Never a base chain: base chains exist in both tables or the patch is refused.
    return f'add chain {ref} {c.name} {{ comment "{c.comment}" ; }}' if c.comment else f"add chain {ref} {c.name}"


def _add_set(ref: str, s: NftSet) -> list[str]:
    # The block form (set_block) without its elements, wrapped as `add set`; elements follow.
    options = [line.strip() for line in set_block(NftSet(s.name, s.type, (), s.flags, s.timeout, s.comment))[1:-1]]
    lines = [f"add set {ref} {s.name} {{ {' ; '.join(options)} ; }}"]
    if s.elements:
        lines.append(f"add element {ref} {s.name} {{ {', '.join(s.elements)} }}")
    return lines


def _same_table(o: Table, n: Table) -> bool:
    return (o.family, o.name, o.comment, o.kind, o.maps) == (n.family, n.name, n.comment, n.kind, n.maps)


def patch(old: Ruleset, new: Ruleset) -> str | None:
    """`nft -f` text turning the loaded `old` table into `new` (one transaction), or None when
    only a reload gives the same table. Assumes `old` is what the node holds."""
    o, n = old.table(TABLE), new.table(TABLE)
    if not _same_table(o, n):
        return None
    ref = n.ref
    oc, nc = {c.name: c for c in o.chains}, {c.name: c for c in n.chains}
    os_, ns_ = {s.name: s for s in o.sets}, {s.name: s for s in n.sets}
    if any(_chain_head(oc[k]) != _chain_head(nc[k]) for k in oc.keys() & nc.keys()):
        return None
    if any(c.base for c in n.chains if c.name not in oc) or any(c.base for c in o.chains if c.name not in nc):
        return None  # a hook appears or goes: reload
    if any(_set_head(os_[k]) != _set_head(ns_[k]) for k in os_.keys() & ns_.keys()):
        return None

    changed = [c.name for c in n.chains if c.name in oc and oc[c.name].rules != c.rules]
    gone_chains = [c.name for c in o.chains if c.name not in nc]
    new_chains = [c for c in n.chains if c.name not in oc]
    gone_sets = [s.name for s in o.sets if s.name not in ns_]
    new_sets = [s for s in n.sets if s.name not in os_]

    lines = [f"# NetworkPolicy patch on node {new.node}: only the chains and sets that changed"]
    lines += [f"flush chain {ref} {name}" for name in changed + gone_chains]
    lines += [f"delete chain {ref} {name}" for name in gone_chains]
    lines += [f"delete set {ref} {name}" for name in gone_sets]
    for s in new_sets:
        lines += _add_set(ref, s)
    for s in n.sets:
        before = os_.get(s.name)
        if before is None or before.elements == s.elements:
            continue
        if s.interval:  # prefixes are not safely deleted one by one: refill the set
            lines.append(f"flush set {ref} {s.name}")
            if s.elements:
                lines.append(f"add element {ref} {s.name} {{ {', '.join(s.elements)} }}")
            continue
        gone = sort_elements(set(before.elements) - set(s.elements))
        came = sort_elements(set(s.elements) - set(before.elements))
        if gone:
            lines.append(f"delete element {ref} {s.name} {{ {', '.join(gone)} }}")
        if came:
            lines.append(f"add element {ref} {s.name} {{ {', '.join(came)} }}")
    lines += [_add_chain(ref, c) for c in new_chains]
    for c in n.chains:
        if c.name in changed or c.name not in oc:
            lines += [f"add rule {ref} {c.name} {text}" for text in chain_rules(TABLE, c)]
    return "\n".join(lines) + "\n"
