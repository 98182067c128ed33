"""Rule model -> the text that turns a loaded table into another one, touching only what differs (pure).

What kube-proxy's partial syncs write (kubeproxy/partial.py decides when): given the tables
of the last load and the wanted ones,

- iptables (`iptables-restore --noflush`): per table, only the user chains whose rules changed
  or that are new (`:CHAIN - [0:0]` flushes or creates one, then its rules), and the chains that
  are gone (declared, so flushed, then `-X`). A table without change is not named at all, so
  its other chains are not even flushed. Built-in chains are never written (render_iptables'
  bootstrap put their jumps once).
- nft (`nft -f`, one transaction): new sets, maps and chains added; changed chains flushed and
  refilled; set and map elements deleted and added one by one (a map element whose verdict
  changed is deleted and added again); gone chains flushed and deleted, gone sets deleted.
  Sets keep their dynamic elements (ClientIP affinity), which a full reload would drop.

Both return None when the difference is not of that kind (a table or base chain that changed,
a map or set declaration that changed...): the caller loads the whole table then. Comparisons
are of frozen model objects; rules shared between the two (kubeproxy's caches hand the same
objects back) compare by identity, so an unchanged chain of 1,000 rules costs almost nothing.
"""

from __future__ import annotations

from . import chain_texts
from .model import Chain, MapElement, NftMap, NftSet, Table
from .render_iptables import chain_rules
from .render_nft import chain_decl, map_element, set_decl
from .render_nft import chain_rules as nft_chain_rules


def _user_chains(table: Table) -> dict[str, Chain]:
    return {c.name: c for c in table.chains if not c.base}


def _same_base(old: Table, new: Table) -> bool:
    return [c for c in old.chains if c.base] == [c for c in new.chains if c.base]


def iptables_diff(old: tuple[Table, ...], new: tuple[Table, ...]) -> str | None:
    """`iptables-restore --noflush` input from tables `old` (loaded) to `new`; "" when equal."""
    if [t.name for t in old] != [t.name for t in new]:
        return None
    lines: list[str] = []
    for before, after in zip(old, new):
        if not _same_base(before, after):
            return None
        was, now = _user_chains(before), _user_chains(after)
        # most are the same objects, and the nodes of a sync share the rest (chain_texts.equal)
        changed = [c for name, c in now.items() if not chain_texts.equal(was.get(name), c)]
        gone = [name for name in was if name not in now]
        if not changed and not gone:
            continue
        lines.append(f"*{after.name}")
        lines += [f":{c.name} - [0:0]" for c in changed]
        lines += [f":{name} - [0:0]" for name in gone]
        for c in changed:
            lines += chain_rules(after.name, c.name, c.rules)  # with their drop-log rules (droplog.py)
        lines += [f"-X {name}" for name in gone]
        lines.append("COMMIT")
    return "\n".join(lines) + "\n" if lines else ""


def _elements(s: NftSet | NftMap) -> dict[tuple[str, ...], str | MapElement]:
    if isinstance(s, NftSet):
        return {(e,): e for e in s.elements}
    return {e.key: e for e in s.elements}


def nft_diff(old: Table, new: Table) -> str | None:
    """`nft -f` input (one transaction) from table `old` (loaded) to `new`; "" when equal."""
    if (old.name, old.family, old.comment, old.kind) != (new.name, new.family, new.comment, new.kind):
        return None
    if not _same_base(old, new):
        return None
    ref = new.ref
    old_maps, new_maps = {m.name: m for m in old.maps}, {m.name: m for m in new.maps}
    if old_maps.keys() != new_maps.keys() or any(
        (old_maps[n].type, old_maps[n].comment) != (new_maps[n].type, new_maps[n].comment) for n in new_maps
    ):
        return None  # kube-proxy's maps are fixed: a change there is a new layout
    old_sets, new_sets = {s.name: s for s in old.sets}, {s.name: s for s in new.sets}
    redeclared = [n for n in new_sets if n in old_sets and _set_shape(old_sets[n]) != _set_shape(new_sets[n])]
    if any(new_sets[n].elements or old_sets[n].elements for n in redeclared):
        return None  # only element-less (dynamic) sets are redeclared here
    was, now = _user_chains(old), _user_chains(new)
    added = [c for name, c in now.items() if name not in was]
    changed = [c for name, c in now.items() if name in was and not chain_texts.equal(was[name], c)]
    gone = [name for name in was if name not in now]

    adds: list[str] = []
    deletes: list[str] = []
    for name, s in list(new_sets.items()) + list(new_maps.items()):
        before = old_sets.get(name) if isinstance(s, NftSet) else old_maps.get(name)
        if before is None:
            continue
        was_el, now_el = _elements(before), _elements(s)
        if was_el == now_el:
            continue
        for key, el in was_el.items():
            if now_el.get(key) != el:
                deletes.append(f"delete element {ref} {name} {{ {' . '.join(key)} }}")
        for key, el in now_el.items():
            if was_el.get(key) != el:
                adds.append(_add_element(ref, name, el, new.family))
    gone_sets = [n for n in old_sets if n not in new_sets] + redeclared
    new_set_decls = [new_sets[n] for n in new_sets if n not in old_sets] + [new_sets[n] for n in redeclared]
    if not (added or changed or gone or deletes or adds or gone_sets or new_set_decls):
        return ""

    lines = [chain_decl(ref, c) for c in added]
    lines += [f"flush chain {ref} {c.name}" for c in changed]
    lines += [f"flush chain {ref} {name}" for name in gone]
    lines += deletes
    lines += [f"delete set {ref} {n}" for n in gone_sets]
    lines += [f"add set {ref} {s.name} {set_decl(s)}" for s in new_set_decls]
    lines += [f"add element {ref} {s.name} {{ {e} }}" for s in new_set_decls for e in s.elements]
    for c in added + changed:
        lines += [f"add rule {ref} {c.name} {text}" for text in nft_chain_rules(new.name, c, new.family)]
    lines += adds
    lines += [f"delete chain {ref} {name}" for name in gone]
    return "\n".join(lines) + "\n"


def _set_shape(s: NftSet) -> tuple[object, ...]:
    return (s.type, s.flags, s.timeout, s.comment)


def _add_element(ref: str, container: str, element: str | MapElement, family: str) -> str:
    if isinstance(element, str):
        return f"add element {ref} {container} {{ {element} }}"
    return f"add element {ref} {container} {map_element(element, family)}"
