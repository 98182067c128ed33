"""The placed pods, indexed for the scheduler's questions (pure; plan/scheduling/).

"How many pods matching X run on each node?" is asked for every pod scheduled (topology spread,
inter-pod terms, the default spreading of a controller's replicas). Answering it by scanning
every pod would make planning pods × pods. Instead each distinct matcher's per-node counts are
computed once (from the pods carrying its most selective label) and kept current as pods are
added: a new pod is checked only against the matchers anchored on one of its own labels (plus
the rare matchers with no `key=value` requirement at all). Pods with inter-pod terms are also
grouped by their resolved terms, so the symmetric checks (existing pods' anti-affinity, their
preferences) cost one check per group, not per pod.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .terms import Matcher, PodTerms


@dataclass(frozen=True)
class Placed:
    namespace: str
    labels: Mapping[str, str]
    node: str
    terms: PodTerms = PodTerms()


def _anchors(m: Matcher) -> list[tuple[str, str]] | None:
    """The label pairs one of which every pod `m` matches carries; None: no such pairs."""
    assert m.selector is not None
    if m.selector.match_labels:
        return [m.selector.match_labels[0]]
    for r in m.selector.match_expressions:
        if r.operator == "In":
            return [(r.key, v) for v in r.values]
    return None


class PodIndex:
    def __init__(self, nodes: Sequence[str]) -> None:
        self.load: dict[str, int] = {n: 0 for n in nodes}
        self._pods: list[Placed] = []
        self._by_label: dict[tuple[str, str], list[Placed]] = {}
        self._counts: dict[Matcher, dict[str, int]] = {}
        self._anchored: dict[tuple[str, str], list[Matcher]] = {}
        self._loose: list[Matcher] = []
        #: pods with inter-pod terms: resolved terms -> pods per node
        self.groups: dict[PodTerms, dict[str, int]] = {}

    def add(self, pod: Placed) -> None:
        self.load[pod.node] = self.load.get(pod.node, 0) + 1
        self._pods.append(pod)
        seen: set[Matcher] = set()
        for pair in pod.labels.items():
            self._by_label.setdefault(pair, []).append(pod)
            for m in self._anchored.get(pair, ()):
                if m not in seen:
                    seen.add(m)
                    self._count(m, pod)
        for m in self._loose:
            self._count(m, pod)
        if pod.terms:
            group = self.groups.setdefault(pod.terms, {})
            group[pod.node] = group.get(pod.node, 0) + 1

    def _count(self, m: Matcher, pod: Placed) -> None:
        if m.matches(pod.namespace, pod.labels):
            counts = self._counts[m]
            counts[pod.node] = counts.get(pod.node, 0) + 1

    def counts(self, m: Matcher) -> Mapping[str, int]:
        """Pods matching `m` per node (nodes without any left out)."""
        known = self._counts.get(m)
        if known is not None:
            return known
        if m.matches_nothing():
            return {}
        anchors = _anchors(m)
        if anchors is None:
            candidates: Sequence[Placed] = self._pods
            self._loose.append(m)
        else:
            candidates = [p for a in anchors for p in self._by_label.get(a, ())]
            for a in anchors:
                self._anchored.setdefault(a, []).append(m)
        counts: dict[str, int] = {}
        for p in candidates:
            if m.matches(p.namespace, p.labels):
                counts[p.node] = counts.get(p.node, 0) + 1
        self._counts[m] = counts
        return counts
