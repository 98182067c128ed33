"""A chain's rendered rules, rendered once for all the nodes of one sync (pure).

kube-proxy's caches (kubeproxy/fragments.py) hand every node the very same Rule objects for a
Service port, so a scale at 1,000 endpoints renders the same chain of 1,010 rules for each of 10
nodes: 90 % of a sync's rendering was repeated work. Within `shared()` (one sync of every node),
a chain's lines are rendered once per (renderer, table, chain, identity of each rule) and handed
back to the next node asking for the same. The memo holds the rules it keyed, so their
identities cannot be reused while it lives; it lives as long as the `with` block, so nothing is
kept between syncs. Outside `shared()` every call renders.

The partial sync's comparison of a node's last load with its new rules (render_diff.py) is
shared the same way (`equal`): after a scale, a Service port's endpoint chains are new objects
equal to the last sync's, the same ones on every node, so each (old, new) pair is compared once
per sync instead of once per node (1,000 chains x 10 nodes: 20-40 ms of a scale's own CPU).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from .model import Rule

_Key = tuple[str, str, str, tuple[int, ...]]
_memo: ContextVar[dict[_Key, tuple[Sequence[Rule], list[str]]] | None] = ContextVar("chain_texts", default=None)
_equal: ContextVar[dict[tuple[int, int], tuple[object, object, bool]] | None] = ContextVar("chain_equal", default=None)


@contextmanager
def shared() -> Iterator[None]:
    """Within the block (in this thread), equal chains of shared rules are rendered once, and
    each pair of objects given to `equal` is compared once."""
    token, token_equal = _memo.set({}), _equal.set({})
    try:
        yield
    finally:
        _memo.reset(token)
        _equal.reset(token_equal)


def equal(a: object, b: object) -> bool:
    """a == b, memoized by the pair's identities within shared() (the memo holds both objects,
    so their identities cannot be reused while it lives)."""
    if a is b:
        return True
    memo = _equal.get()
    if memo is None:
        return a == b
    key = (id(a), id(b))
    found = memo.get(key)
    if found is None:
        found = memo[key] = (a, b, a == b)
    return found[2]


def lines_of(
    renderer: str, table: str, chain: str, rules: Sequence[Rule], render: Callable[[], list[str]]
) -> list[str]:
    """render() (a chain's lines; the caller must not change the list), memoized within shared()."""
    memo = _memo.get()
    if memo is None:
        return render()
    key = (renderer, table, chain, tuple(map(id, rules)))
    found = memo.get(key)
    if found is None:
        found = memo[key] = (rules, render())  # the rules stay alive with their key
    return found[1]
