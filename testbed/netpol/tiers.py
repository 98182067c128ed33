"""The cluster administrator's tiers: which Admin or Baseline rule decides a flow; pure.

Evaluates the decoded ClusterNetworkPolicy / AdminNetworkPolicy / BaselineAdminNetworkPolicy
objects (spec/cnp.py) for one direction of one flow; netpol/oracle.py puts the answer in the
hierarchy (Network Policy API, policy.networking.k8s.io/v1alpha2 ClusterNetworkPolicySpec.Tier):

    Admin tier -> NetworkPolicy tier (v1, namespaced) -> Baseline tier -> default allow

- Within a tier, policies are checked by priority (lower first) and, inside a policy, rules in
  the order written; the first rule whose peers and ports match decides: Accept (v1alpha1:
  Allow) and Deny are final for this direction; Pass skips the rest of the tier.
- Ties in priority: the API lets an implementation "apply any of the matching policies". This
  testbed is deterministic: ClusterNetworkPolicy before AdminNetworkPolicy, then by name
  (BaselineAdminNetworkPolicy sorts after every Baseline ClusterNetworkPolicy).
- The subject selects pods by namespaces (all their pods) or by pods {namespaceSelector,
  podSelector}; ingress rules apply to the destination pod, egress rules to the source pod.
- Peers: namespaces and pods match pods only; networks match the address (pod IPs included,
  as the API says: "cluster-internal traffic will be checked against the rule as well");
  nodes match the addresses of nodes whose labels match.
- Ports: a protocol with a number or range; a destinationNamedPort resolves on the destination
  pod's containerPorts (any protocol); a rule with ports never matches ICMP, a rule without
  ports matches everything, ICMP included.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..spec.cnp import ACCEPT, ADMIN, BASELINE, DENY, PASS, ClusterPolicySpec, TierPeer, TierPort, TierRule

TIER_ORDER = {ADMIN: 0, BASELINE: 1}
_KIND_ORDER = {"ClusterNetworkPolicy": 0, "AdminNetworkPolicy": 1, "BaselineAdminNetworkPolicy": 2}


def tiers_in_order(items: Iterable[ClusterPolicySpec]) -> tuple[ClusterPolicySpec, ...]:
    """Evaluation order: tier, priority, kind, name (see the module docstring on ties)."""
    return tuple(sorted(items, key=lambda p: (TIER_ORDER[p.tier], p.priority, _KIND_ORDER[p.ref.kind], p.ref.name)))


@dataclass(frozen=True)
class TierHit:
    """The rule that decided (or passed) one direction of a flow in one tier."""

    tier: str  # Admin | Baseline
    policy: str  # cnp/name, anp/name, banp/default
    direction: str  # ingress | egress
    index: int  # the rule's position in spec.ingress / spec.egress
    rule_name: str  # as written; "" when unnamed
    action: str  # Accept | Deny | Pass
    priority: int

    @property
    def rule(self) -> str:
        return self.rule_name or f"spec.{self.direction}[{self.index}]"

    def __str__(self) -> str:
        """`Admin cnp/deny-sensitive rule select-all-deny-all: Deny`."""
        return f"{self.tier} {self.policy} rule {self.rule}: {self.action}"


def subject_selects(policy: ClusterPolicySpec, namespace: str, namespace_labels, pod_labels) -> bool:
    if policy.subject_namespaces is not None:
        return policy.subject_namespaces.matches(namespace_labels)
    pods = policy.subject_pods
    return (
        pods is not None and pods.namespace_selector.matches(namespace_labels) and pods.pod_selector.matches(pod_labels)
    )


def peer_matches(world: Any, peer: TierPeer, other: Any) -> bool:
    """Does the other end of the flow (an Endpoint) match this peer?"""
    if peer.networks:
        ip = ipaddress.ip_address(other.ip)
        return any(ip in ipaddress.ip_network(n, strict=False) for n in peer.networks)
    if peer.nodes is not None:
        return bool(other.node) and peer.nodes.matches(world.node_labels.get(other.node, {}))
    pod = other.pod
    if pod is None:
        return False
    ns_labels = world.namespace_labels(pod.namespace)
    if peer.namespaces is not None:
        return peer.namespaces.matches(ns_labels)
    return (
        peer.pods is not None
        and peer.pods.namespace_selector.matches(ns_labels)
        and peer.pods.pod_selector.matches(pod.labels)
    )


def port_matches(port: TierPort, protocol: str, number: int | None, dst: Any) -> bool:
    if number is None:  # ICMP: only a rule without ports matches it
        return False
    if port.name:
        return dst.pod is not None and any(
            p.name == port.name and p.protocol == protocol and p.port == number for p in dst.pod.ports
        )
    return (
        port.protocol == protocol
        and port.first is not None
        and port.last is not None
        and port.first <= number <= port.last
    )


def rule_matches(world: Any, rule: TierRule, other: Any, protocol: str, number: int | None, dst: Any) -> bool:
    if not any(peer_matches(world, p, other) for p in rule.peers):
        return False
    return rule.ports is None or any(port_matches(p, protocol, number, dst) for p in rule.ports)


def first_hit(
    world: Any, tier: str, direction: str, pod: Any, other: Any, protocol: str, number: int | None, dst: Any
) -> TierHit | None:
    """The first rule of `tier` that matches, for `pod` (the subject end) in `direction`."""
    ns_labels = world.namespace_labels(pod.namespace)
    for policy in world.tiers:
        if policy.tier != tier:
            continue
        rules = policy.ingress if direction == "ingress" else policy.egress
        if not rules or not subject_selects(policy, pod.namespace, ns_labels, pod.labels):
            continue
        for rule in rules:
            if rule_matches(world, rule, other, protocol, number, dst):
                return TierHit(tier, policy.full_name, direction, rule.index, rule.name, rule.action, policy.priority)
    return None


def selecting(world: Any, tier: str, direction: str, pod: Any) -> tuple[ClusterPolicySpec, ...]:
    """The policies of `tier` whose subject is the pod and that have `direction` rules."""
    ns_labels = world.namespace_labels(pod.namespace)
    return tuple(
        p
        for p in world.tiers
        if p.tier == tier
        and (p.ingress if direction == "ingress" else p.egress)
        and subject_selects(p, pod.namespace, ns_labels, pod.labels)
    )


__all__ = [
    "ACCEPT",
    "ADMIN",
    "BASELINE",
    "DENY",
    "PASS",
    "TierHit",
    "first_hit",
    "peer_matches",
    "port_matches",
    "rule_matches",
    "selecting",
    "subject_selects",
    "tiers_in_order",
]
