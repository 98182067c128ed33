"""kube-scheduler's InterPodAffinity plugin (pure; plan/scheduling/).

Filter, in the plugin's order: the pod's required affinity (every term's topology key on the
node, and in the node's domain some pod matching all the terms — or, for the first pod of a
group that selects itself, no such pod anywhere), its required anti-affinity (no matching pod
in the node's domain of any term), then the existing pods' required anti-affinity (no domain
of the node holds a pod whose term matches this pod). Score: per topology domain, the weights
of the pod's preferred terms times the matching pods there (anti-affinity subtracts), plus the
existing pods' preferred terms and required affinity (weight 1) that match this pod; scaled
to [0, 100] between the lowest and the highest node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ...spec.model import NodeSpec
from .index import PodIndex
from .nodes import MAX_NODE_SCORE
from .terms import PodTerms, Term, all_of

AFFINITY_REASON = "node(s) didn't match pod affinity rules"
ANTI_REASON = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_REASON = "node(s) didn't satisfy existing pods anti-affinity rules"

Pair = tuple[str, str]  # (topology key, value)


def _domains(term: Term, counts: Mapping[str, int], labels: Mapping[str, Mapping[str, str]]) -> dict[Pair, int]:
    out: dict[Pair, int] = {}
    for node, count in counts.items():
        value = labels[node].get(term.topology_key)
        if value is not None and count:
            pair = (term.topology_key, value)
            out[pair] = out.get(pair, 0) + count
    return out


class InterPodFilter:
    """The pod's required terms and the existing pods' required anti-affinity, precomputed once."""

    def __init__(
        self,
        terms: PodTerms,
        namespace: str,
        labels: Mapping[str, str],
        node_labels: Mapping[str, Mapping[str, str]],
        index: PodIndex,
    ) -> None:
        self.affinity = terms.required_affinity
        self.anti = terms.required_anti
        self.affinity_pairs: dict[Pair, int] = {}
        self.self_match = False
        if self.affinity:
            both = index.counts(all_of(t.matcher for t in self.affinity))
            for t in self.affinity:
                for pair, n in _domains(t, both, node_labels).items():
                    self.affinity_pairs[pair] = self.affinity_pairs.get(pair, 0) + n
            self.self_match = all(t.matcher.matches(namespace, labels) for t in self.affinity)
        self.anti_pairs: set[Pair] = set()
        for t in self.anti:
            self.anti_pairs |= set(_domains(t, index.counts(t.matcher), node_labels))
        self.blocked: set[Pair] = set()  # existing pods' anti-affinity towards this pod
        for group, per_node in index.groups.items():
            for t in group.required_anti:
                if t.matcher.matches(namespace, labels):
                    self.blocked |= set(_domains(t, per_node, node_labels))

    def active(self) -> bool:
        return bool(self.affinity or self.anti or self.blocked)

    def reason(self, node: NodeSpec) -> tuple[str, bool] | None:
        """(reason, resolvable by preemption) when the node fails, else None."""
        labels = node.labels
        if self.affinity:
            if any(t.topology_key not in labels for t in self.affinity):
                return AFFINITY_REASON, False
            found = all(self.affinity_pairs.get((t.topology_key, labels[t.topology_key]), 0) > 0 for t in self.affinity)
            if not found and not (not self.affinity_pairs and self.self_match):
                return AFFINITY_REASON, False
        for t in self.anti:
            value = labels.get(t.topology_key)
            if value is not None and (t.topology_key, value) in self.anti_pairs:
                return ANTI_REASON, True
        if self.blocked and any(pair in self.blocked for pair in labels.items()):
            return EXISTING_ANTI_REASON, True
        return None


def interpod_scores(
    terms: PodTerms,
    namespace: str,
    labels: Mapping[str, str],
    feasible: Sequence[NodeSpec],
    node_labels: Mapping[str, Mapping[str, str]],
    index: PodIndex,
) -> list[int] | None:
    """Normalized scores of the feasible nodes; None when no term bears on this pod."""
    topology: dict[Pair, int] = {}

    def add(term: Term, counts: Mapping[str, int], sign: int) -> None:
        for pair, n in _domains(term, counts, node_labels).items():
            topology[pair] = topology.get(pair, 0) + sign * term.weight * n

    for t in terms.preferred_affinity:
        add(t, index.counts(t.matcher), 1)
    for t in terms.preferred_anti:
        add(t, index.counts(t.matcher), -1)
    for group, per_node in index.groups.items():
        for t in group.required_affinity:  # hardPodAffinityWeight 1
            if t.matcher.matches(namespace, labels):
                add(Term(t.matcher, t.topology_key, 1), per_node, 1)
        for t in group.preferred_affinity:
            if t.matcher.matches(namespace, labels):
                add(t, per_node, 1)
        for t in group.preferred_anti:
            if t.matcher.matches(namespace, labels):
                add(t, per_node, -1)
    if not topology:
        return None
    keys = {k for k, _ in topology}
    raw = [sum(topology.get((k, n.labels[k]), 0) for k in keys if k in n.labels) for n in feasible]
    low, high = min(raw), max(raw)
    if high == low:
        return [0 for _ in raw]
    return [int(MAX_NODE_SCORE * ((s - low) / (high - low))) for s in raw]
