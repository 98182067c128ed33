"""Which node announces each LoadBalancer address (pure; part of the desired state, plan/).

The emulated cloud's load balancer: each LoadBalancer ingress IP is held by one node that may
take its traffic — any node with policy Cluster, a node with a local endpoint with policy
Local — the way MetalLB's layer-2 mode and a cloud LB's health checks pick nodes. emu/ puts
the address on that node (emu/controllers.py, LoadBalancerAnnouncer).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..spec.node_labels import EXCLUDE_FROM_LB
from .service_model import ServicesPlan

if TYPE_CHECKING:  # the Plan gives its assignments (Plan.lb_announcers)
    from .model import NodePlan


def announcer_for(ip: str, targets: tuple[str, ...]) -> str | None:
    """The node that answers ARP for a LoadBalancer IP: stable per IP, among the eligible nodes."""
    if not targets:
        return None
    ordered = sorted(targets)
    return ordered[int(hashlib.sha256(ip.encode()).hexdigest(), 16) % len(ordered)]


def load_balancer_nodes(nodes: Sequence[NodePlan]) -> list[str]:
    """Nodes a load balancer may use: as MetalLB and the cloud providers' service controller do,
    not those labelled node.kubernetes.io/exclude-from-external-load-balancers (kubeadm puts it
    on control-plane nodes). Where that leaves none (a single-node cluster, whose only node is
    the control plane) every node is used, so that kind's default cluster keeps a reachable
    LoadBalancer instead of needing `kubectl label node ... exclude-from-external-load-balancers-`."""
    names = [n.name for n in nodes if EXCLUDE_FROM_LB not in n.labels]
    return names or [n.name for n in nodes]


def lb_announcers(services: ServicesPlan | None, nodes: Sequence[NodePlan]) -> dict[str, str]:
    """LoadBalancer ingress IP -> the node that holds it."""
    if services is None:
        return {}
    eligible = load_balancer_nodes(nodes)
    out: dict[str, str] = {}
    for svc in services.services:
        for ip in svc.load_balancer_ingress:
            node = announcer_for(ip, services.load_balancer_targets(svc.namespace, svc.name, eligible))
            if node is not None:
                out[ip] = node
    return out
