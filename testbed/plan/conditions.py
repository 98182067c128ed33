"""Pods' conditions beside the desired state (pure; plan/, issue 19).

What the Plan cannot say by itself once pods have a lifecycle: which pods are not Ready, which
are terminating (still there, still served until they exit), which have exited (their process
is gone, their sandbox not yet), and, while a change travels, what each node's kube-proxy has
synced so far (its own view of the Services' EndpointSlices). testbed/lifecycle/ decides them
over time; plan/lifecycle.py folds them into a Plan; emu/'s controllers read them from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .service_model import ServicesPlan


@dataclass(frozen=True)
class PodConditions:
    not_ready: frozenset[str] = frozenset()  # pod full names `ns/name` whose Ready condition is False
    terminating: frozenset[str] = frozenset()  # deleted, within their grace period
    exited: frozenset[str] = frozenset()  # their containers exited: nothing answers in them any more
    # node -> the Services and EndpointSlices its kube-proxy has synced, for the nodes that are
    # behind the EndpointSlice controller (a node not listed has synced the Plan's own)
    proxy_views: Mapping[str, ServicesPlan] = field(default_factory=dict)

    def services_of(self, node: str, services: ServicesPlan) -> ServicesPlan:
        """What `node`'s kube-proxy programs: its own view while behind, else `services`."""
        return self.proxy_views.get(node, services)
