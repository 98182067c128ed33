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

from .common import ProxiedPort

Call = tuple[str, tuple[Any, ...], tuple[tuple[str, Any], ...]]
T = TypeVar("T")
MAX_FRAGMENTS = 4096  # Service ports x node views kept; past it the cache starts over


class Recorder:
    """Stands in for a ruleset builder: records each method call (lists frozen into tuples)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def __getattr__(self, method: str) -> Callable[..., None]:
        def record(*args: Any, **kwargs: Any) -> None:
            frozen = tuple(tuple(a) if isinstance(a, list) else a for a in args)
            self.calls.append((method, frozen, tuple(sorted(kwargs.items()))))

        return record


def replay(calls: tuple[Call, ...], builder: Any) -> None:
    """Make the recorded calls on the real builder, in their order."""
    for method, args, kwargs in calls:
        getattr(builder, method)(*args, **dict(kwargs))


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
    """compute(sp, host_ip, pod_subnet) cached on the port's key, the node's and the subnet."""

    def __init__(self, compute: Callable[[ProxiedPort, str, str], T]) -> None:
        self.compute = compute
        self.cache: dict[Hashable, T] = {}

    def __call__(self, sp: ProxiedPort, host_ip: str, pod_subnet: str) -> T:
        host = node_key(sp, host_ip)
        key = (_port_key(sp), host, pod_subnet)
        found = self.cache.get(key)
        if found is None:
            if len(self.cache) >= MAX_FRAGMENTS:
                self.cache.clear()
            found = self.cache[key] = self.compute(sp, host, pod_subnet)
        return found
