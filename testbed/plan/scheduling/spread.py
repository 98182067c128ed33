"""kube-scheduler's PodTopologySpread plugin (pure; plan/scheduling/).

Filter (the pod's DoNotSchedule constraints): per topology domain, the matching pods in the
pod's namespace on the nodes the inclusion policies admit (nodeAffinityPolicy Honor: nodes
matching the pod's node affinity; nodeTaintsPolicy Ignore: tainted nodes count too) and that
carry every constraint's key; a node passes when its domain's count + 1 (if the pod matches
itself) - the global minimum <= maxSkew, the minimum being 0 while fewer than minDomains
domains exist. A node missing a key fails unresolvably.

Score (the ScheduleAnyway constraints; with none declared at all, the system defaults: hostname
maxSkew 3 and zone maxSkew 5, selecting the pods of the Services and controller that select
this pod): each node sums, per constraint, its domain's count × log(domains + 2) + maxSkew - 1;
fewer is better once normalized.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ...spec.affinity import TopologySpreadConstraint
from ...spec.model import NodeSpec, PodTemplate
from ...spec.node_labels import ZONE
from ...spec.selectors import LabelSelector, Requirement
from .index import PodIndex
from .nodes import MAX_NODE_SCORE, matches_node_affinity, untolerated_taint
from .terms import Matcher, with_label_keys

HOSTNAME = "kubernetes.io/hostname"
SKEW_REASON = "node(s) didn't match pod topology spread constraints"
LABEL_REASON = SKEW_REASON + " (missing required label)"
#: kube-scheduler's system default constraints (PodTopologySpreadArgs defaultingType System)
SYSTEM_DEFAULTS = (
    TopologySpreadConstraint(3, HOSTNAME, "ScheduleAnyway"),
    TopologySpreadConstraint(5, ZONE, "ScheduleAnyway"),
)


@dataclass(frozen=True)
class Constraint:
    max_skew: int
    key: str
    matcher: Matcher  # empty selector: counts no pod (countPodsMatchSelector)
    self_match: bool
    min_domains: int
    honor_affinity: bool
    honor_taints: bool


@dataclass(frozen=True)
class Spread:
    hard: tuple[Constraint, ...]
    soft: tuple[Constraint, ...]
    system_default: bool


def resolve(
    template: PodTemplate, namespace: str, labels: Mapping[str, str], default_selector: LabelSelector | None
) -> Spread:
    if template.topology_spread:
        hard = tuple(
            _one(c, namespace, labels) for c in template.topology_spread if c.when_unsatisfiable == "DoNotSchedule"
        )
        soft = tuple(
            _one(c, namespace, labels) for c in template.topology_spread if c.when_unsatisfiable != "DoNotSchedule"
        )
        return Spread(hard, soft, False)
    if default_selector is None or default_selector.is_empty():
        return Spread((), (), True)
    soft = tuple(_one(c, namespace, labels, default_selector) for c in SYSTEM_DEFAULTS)
    return Spread((), soft, True)


def _one(
    c: TopologySpreadConstraint, namespace: str, labels: Mapping[str, str], selector: LabelSelector | None = None
) -> Constraint:
    sel = with_label_keys(selector if selector is not None else c.selector, labels, c.match_label_keys)
    counted = None if sel is None or sel.is_empty() else sel
    return Constraint(
        c.max_skew,
        c.topology_key,
        Matcher(frozenset((namespace,)), counted),
        sel is not None and sel.matches(labels),
        c.min_domains or 1,
        c.node_affinity_policy == "Honor",
        c.node_taints_policy == "Honor",
    )


def _included(c: Constraint, node: NodeSpec, template: PodTemplate) -> bool:
    if c.honor_affinity and not matches_node_affinity(node, template):
        return False
    return not (c.honor_taints and untolerated_taint(node.taints, template.tolerations) is not None)


class SpreadFilter:
    """The DoNotSchedule constraints of one pod against the current placement."""

    def __init__(self, spread: Spread, template: PodTemplate, nodes: Sequence[NodeSpec], index: PodIndex) -> None:
        self.constraints = spread.hard
        self.domains: list[dict[str, int]] = [{} for _ in self.constraints]
        for node in nodes:
            if any(c.key not in node.labels for c in self.constraints):
                continue
            for i, c in enumerate(self.constraints):
                if _included(c, node, template):
                    value = node.labels[c.key]
                    count = index.counts(c.matcher).get(node.name, 0)
                    self.domains[i][value] = self.domains[i].get(value, 0) + count
        self.minimum: list[float] = [
            (0 if len(d) < c.min_domains else min(d.values())) if d else math.inf
            for c, d in zip(self.constraints, self.domains)
        ]

    def reason(self, node: NodeSpec) -> tuple[str, bool] | None:
        """(reason, resolvable by preemption) when the node fails, else None."""
        for c, domains, low in zip(self.constraints, self.domains, self.minimum):
            value = node.labels.get(c.key)
            if value is None:
                return LABEL_REASON, False
            if domains.get(value, 0) + int(c.self_match) - low > c.max_skew:
                return SKEW_REASON, True
        return None


def spread_scores(
    spread: Spread,
    template: PodTemplate,
    feasible: Sequence[NodeSpec],
    nodes: Sequence[NodeSpec],
    index: PodIndex,
) -> list[int] | None:
    """Normalized scores of the feasible nodes; None when the pod has no soft constraint."""
    soft = spread.soft
    if not soft:
        return None
    require_all = not spread.system_default

    def has_all(n: NodeSpec) -> bool:
        return all(c.key in n.labels for c in soft)

    ignored = {n.name for n in feasible if require_all and not has_all(n)}
    if not ignored and not any(index.counts(c.matcher) for c in soft):
        return None  # no pod to spread from anywhere: every node scores the same
    scored = [n for n in feasible if n.name not in ignored]
    weights: list[float] = []
    domain_counts: list[dict[str, int]] = []
    for c in soft:
        counts: dict[str, int] = {}
        size = 0
        if c.key == HOSTNAME:
            size = len(scored)
        elif any(c.key in n.labels for n in scored):  # else no node scores by it: skip the counting
            counts = {n.labels.get(c.key, ""): 0 for n in scored}
            size = len(counts)
            per_node = index.counts(c.matcher)
            for n in nodes:
                if (require_all and not has_all(n)) or not _included(c, n, template):
                    continue
                value = n.labels.get(c.key, "")
                if value in counts:
                    counts[value] += per_node.get(n.name, 0)
        weights.append(math.log(size + 2))
        domain_counts.append(counts)
    raw: list[int] = []
    for n in feasible:
        if n.name in ignored:
            raw.append(-1)
            continue
        total = 0.0
        for c, weight, counts in zip(soft, weights, domain_counts):
            if c.key not in n.labels:
                continue
            cnt = index.counts(c.matcher).get(n.name, 0) if c.key == HOSTNAME else counts.get(n.labels[c.key], 0)
            total += cnt * weight + (c.max_skew - 1)
        raw.append(math.floor(total + 0.5))  # math.Round of non-negative values
    valid = [s for s in raw if s >= 0]
    low, high = min(valid, default=0), max(valid, default=0)
    out = []
    for s in raw:
        if s < 0:
            out.append(0)
        elif high == 0:
            out.append(MAX_NODE_SCORE)
        else:
            out.append(MAX_NODE_SCORE * (high + low - s) // high)
    return out


class ServiceSelectors:
    """The Services' selectors, by namespace and one of their label pairs (GetPodServices)."""

    def __init__(self, services: Iterable[tuple[str, Mapping[str, str]]]) -> None:
        self._by_pair: dict[tuple[str, str, str], list[Mapping[str, str]]] = {}
        for namespace, selector in services:
            if selector:  # a Service without a selector selects no pod
                key, value = min(selector.items())
                self._by_pair.setdefault((namespace, key, value), []).append(selector)

    def selecting(self, namespace: str, labels: Mapping[str, str]) -> list[Mapping[str, str]]:
        by_pair = self._by_pair
        if not by_pair:
            return []
        return [
            selector
            for key, value in labels.items()
            for selector in by_pair.get((namespace, key, value), ())
            if all(labels.get(k) == v for k, v in selector.items())
        ]


def default_selector(
    namespace: str, labels: Mapping[str, str], owner: LabelSelector | None, services: ServiceSelectors | None
) -> LabelSelector | None:
    """helper.DefaultSelector: the Services selecting the pod, merged, and its controller's
    selector (a Deployment's ReplicaSet's carries the pod-template-hash); None when empty."""
    merged: dict[str, str] = {}
    for selector in services.selecting(namespace, labels) if services is not None else ():
        merged.update(selector)
    expressions: tuple[Requirement, ...] = ()
    if owner is not None:
        merged.update(owner.match_labels)
        expressions = owner.match_expressions
    if not merged and not expressions:
        return None
    return LabelSelector(tuple(sorted(merged.items())), expressions)
