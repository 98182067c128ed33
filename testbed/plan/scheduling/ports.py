"""kube-scheduler's NodePorts filter (pure; plan/scheduling/).

A pod's hostPorts (a hostNetwork pod's container ports included: the API server makes each a
hostPort of the same number) may not overlap those of a pod already on the node: same protocol
and port, and host addresses that overlap (0.0.0.0, or none, overlaps every address). Such a
node is unschedulable for the pod, resolvably (preemption could free the port).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ...spec.model import PodTemplate
from ..pod import HostPortPlan

NO_FREE_PORTS = "node(s) didn't have free ports for the requested pod ports"  # NodePorts' ErrReason
_WILDCARD = ("", "0.0.0.0")


def host_ports(template: PodTemplate) -> tuple[HostPortPlan, ...]:
    """Every hostPort the pods of `template` ask for."""
    return tuple(
        HostPortPlan(p.host_port, p.container_port, p.protocol, p.host_ip)
        for c in template.containers
        for p in c.ports
        if p.host_port
    )


def _overlaps(a: HostPortPlan, b: HostPortPlan) -> bool:
    if a.protocol != b.protocol or a.host_port != b.host_port:
        return False
    return a.host_ip in _WILDCARD or b.host_ip in _WILDCARD or a.host_ip == b.host_ip


def conflicts(used: Iterable[HostPortPlan], wanted: Sequence[HostPortPlan]) -> bool:
    """Whether any wanted hostPort is taken on a node already holding `used`."""
    return any(_overlaps(u, w) for u in used for w in wanted)
