"""A Service port's rules, computed once and replayed: the cache behind partial syncs (pure).

kube-proxy's syncProxyRules skips the chains of a Service whose Service and endpoints did
not change (`skipServiceUpdate`); here the same idea makes every sync cheap to compute. What
a Service port writes (iptables.py / nftables.py `_service_port`) depends only on the port as
this node sees it (ProxiedPort: the Service, its endpoints, the local ones) and the pod subnet,
and on the node's address only for loadBalancerSourceRanges. So its builder calls are recorded
once per such key and replayed into each node's ruleset: a change to one Service recomputes
that Service alone, nodes with the same view share the work, and the replayed rules share their
parts with the previous sync's, so rules/render_diff.py compares unchanged chains by identity.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import fields
from typing import Any, Generic, TypeVar

from ..rules.model import Chain, Rule, Verdict
from .common import LocalTraffic, ProxiedPort

Call = tuple[str, tuple[Any, ...], tuple[tuple[str, Any], ...]]
T = TypeVar("T")
MAX_FRAGMENTS = 4096  # Service ports x node views kept; past it the cache starts over


class Recorder:
    """Stands in for a ruleset builder: records each method call (lists frozen into tuples)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def __getattr__(self, method: str) -> Callable[..., None]:
        def record(*args: Any, **kwargs: Any) -> None:
            frozen = tuple([tuple(a) if isinstance(a, list) else a for a in args])
            self.calls.append((method, frozen, tuple(sorted(kwargs.items())) if kwargs else ()))

        self.__dict__[method] = record  # found directly from now on, not through __getattr__
        return record


class ChainLists:
    """The part of a ruleset builder (iptables.py's `_Chains`, nftables.py's `_Table`) that
    receives replayed fragments: rules added one by one, rules a fragment built once
    (`prebuilt`), and whole chains it built (`fold_owned`), kept as the same Chain object on
    every node until something writes to them."""

    def __init__(self, lists: dict[str, list[Rule]]) -> None:
        self._lists = lists  # the builder's own rule lists by chain name (the same dict)
        self.placed: dict[str, Chain] = {}  # whole chains built by a fragment (fold_owned)

    def _declare_placed(self, chain: Chain) -> None:
        """Declare a chain `place` hands over whole (the builder knows its chains' metadata)."""
        raise NotImplementedError

    def _open(self, chain: str) -> list[Rule]:
        """The chain's rule list, a placed chain turned back into one (nothing does so today)."""
        placed = self.placed.pop(chain, None)
        if placed is not None:
            self._lists[chain] = list(placed.rules)
        return self._lists[chain]

    def add(self, chain: str, parts: list[Any] | tuple[Any, ...], verdict: Verdict | None) -> None:
        self._open(chain).append(Rule(tuple(parts), verdict))

    def append(self, chain: str, rule: Rule) -> None:
        """A rule built once by a fragment (prebuilt), the same object on every node."""
        self._open(chain).append(rule)

    def place(self, chain: Chain) -> None:
        """A user chain a fragment built whole, the same object on every node (declared here)."""
        if chain.name in self._lists:
            self._open(chain.name).extend(chain.rules)
        else:
            self._declare_placed(chain)
            self.placed[chain.name] = chain


def replay(calls: tuple[Call, ...], builder: Any) -> None:
    """Make the recorded calls on the real builder, in their order."""
    for method, args, kwargs in calls:
        getattr(builder, method)(*args, **dict(kwargs))


def prebuilt(calls: list[Call]) -> tuple[Call, ...]:
    """Each recorded `add(chain, parts, verdict)` turned into `append(chain, rule)` of the Rule it
    makes: built once per fragment instead of once per node and sync (30,000 Rules for a scale at
    1,000 pods on 10 nodes), and shared, so rules/render_diff.py compares them by identity. The
    builders (iptables.py, nftables.py) have both methods; the rules are the same values."""
    out: list[Call] = []
    for method, args, kwargs in calls:
        if method == "add" and not kwargs:
            chain, parts, verdict = args
            out.append(("append", (chain, Rule(tuple(parts), verdict)), ()))
        else:
            out.append((method, args, kwargs))
    return tuple(out)


def fold_owned(
    calls: tuple[Call, ...], declare: str, chain_of: Callable[[Call, tuple[Rule, ...]], Chain | None]
) -> tuple[Call, ...]:
    """The chains a fragment declares (method `declare`) and fills alone, each built once as a
    Chain by `chain_of(declaring call, its rules)` and handed over by one `place(chain)` where it
    was declared: nodes then share the Chain objects themselves (no replay of their 1,000 rules,
    no Chain built per node), and rules/render_diff.py finds an unchanged chain by identity. The
    calls on chains it does not own (KUBE-SERVICES, the maps' elements), and on those chain_of
    gives None for, stay as they were."""
    owned = {args[0] for method, args, _ in calls if method == declare}
    rules: dict[str, list[Rule]] = {name: [] for name in owned}
    for method, args, _ in calls:
        if method == "append" and args[0] in owned:
            rules[args[0]].append(args[1])
        elif method not in ("append", declare) and args and args[0] in owned:
            rules.pop(args[0], None)  # something else writes to it: not a plain chain of rules
    built = {}
    for call in calls:
        if call[0] == declare and call[1][0] in rules:
            chain = chain_of(call, tuple(rules[call[1][0]]))
            if chain is not None:
                built[chain.name] = chain
    out: list[Call] = []
    for call in calls:
        method, args, _ = call
        if method == declare and args[0] in built:
            out.append(("place", (built[args[0]],), ()))
        elif not (method == "append" and args[0] in built):
            out.append(call)
    return tuple(out)


def node_key(sp: ProxiedPort, host_ip: str) -> str:
    """The node's address as far as a Service port's rules depend on it: only through
    loadBalancerSourceRanges (is the node itself an allowed source?)."""
    return host_ip if sp.lb_ips and sp.service.load_balancer_source_ranges else ""


def _port_key(sp: ProxiedPort) -> Hashable:
    """Everything of the port that its rules can depend on (the Service's selector, a dict,
    only chose the endpoints, which are part of the key)."""
    svc = tuple(getattr(sp.service, f.name) for f in fields(sp.service) if f.name != "selector")
    return (svc, sp.port, sp.cluster_endpoints, sp.local_endpoints, sp.reachable, sp.has_endpoints)


class Fragments(Generic[T]):
    """compute(sp, host_ip, local, *extra) cached on the port's key, the node's, the local-traffic
    detector and `extra` (what else of the whole sync the rules depend on: iptables.py's
    largeClusterMode)."""

    def __init__(self, compute: Callable[..., T]) -> None:
        self.compute = compute
        self.cache: dict[Hashable, T] = {}
        # the same ProxiedPort object again (common.py shares one among the nodes of a sync):
        # found by identity, without hashing its 1,000 endpoints once more per node
        self.seen: dict[tuple[int, str, LocalTraffic, tuple[Hashable, ...]], tuple[ProxiedPort, T]] = {}

    def __call__(self, sp: ProxiedPort, host_ip: str, local: LocalTraffic, *extra: Hashable) -> T:
        host = node_key(sp, host_ip)
        again = self.seen.get((id(sp), host, local, extra))
        if again is not None and again[0] is sp:
            return again[1]
        key = (_port_key(sp), host, local, extra)
        found = self.cache.get(key)
        if found is None:
            if len(self.cache) >= MAX_FRAGMENTS:
                self.cache.clear()
                self.seen.clear()
            found = self.cache[key] = self.compute(sp, host, local, *extra)
        if len(self.seen) >= MAX_FRAGMENTS:
            self.seen.clear()
        self.seen[(id(sp), host, local, extra)] = (sp, found)
        return found
