"""A pod's scheduling terms resolved against the pod itself (pure; plan/scheduling/).

A PodAffinityTerm names namespaces (a list, a selector, or by default the pod's own) and may
take label values from the pod (matchLabelKeys / mismatchLabelKeys, merged into the selector as
the API server does). Resolved once per pod template into a `Matcher` — which pods, in which
namespaces — and the term's topology key, so that the index can count matches by node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ...spec.affinity import Affinity, PodAffinityTerm
from ...spec.selectors import LabelSelector, Requirement

#: the namespaces every cluster has (kube-apiserver creates them)
BUILTIN_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Matcher:
    """Pods in `namespaces` (None: every namespace) whose labels `selector` matches (None: no pod)."""

    namespaces: frozenset[str] | None
    selector: LabelSelector | None

    def matches(self, namespace: str, labels: Mapping[str, str]) -> bool:
        if self.selector is None or (self.namespaces is not None and namespace not in self.namespaces):
            return False
        return self.selector.matches(labels)

    def matches_nothing(self) -> bool:
        return self.selector is None or self.namespaces == frozenset()


@dataclass(frozen=True)
class Term:
    matcher: Matcher
    topology_key: str
    weight: int = 1


@dataclass(frozen=True)
class PodTerms:
    """A pod's inter-pod terms, resolved: what other pods' scheduling reads of it."""

    required_affinity: tuple[Term, ...] = ()
    required_anti: tuple[Term, ...] = ()
    preferred_affinity: tuple[Term, ...] = ()
    preferred_anti: tuple[Term, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.required_affinity or self.required_anti or self.preferred_affinity or self.preferred_anti)


def namespace_labels(declared: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """Every namespace's labels, with the kubernetes.io/metadata.name label the API server adds."""
    out = {name: {NAME_LABEL: name} for name in BUILTIN_NAMESPACES}
    for name, labels in declared.items():
        out[name] = {**labels, NAME_LABEL: name}
    return out


def with_label_keys(
    selector: LabelSelector | None, labels: Mapping[str, str], match: Iterable[str], mismatch: Iterable[str] = ()
) -> LabelSelector | None:
    """matchLabelKeys / mismatchLabelKeys merged into the selector (`key in (v)` / `key notin (v)`
    with the pod's own value; a key the pod lacks adds nothing)."""
    extra = [Requirement(k, "In", (labels[k],)) for k in match if k in labels]
    extra += [Requirement(k, "NotIn", (labels[k],)) for k in mismatch if k in labels]
    if selector is None or not extra:
        return selector
    return LabelSelector(selector.match_labels, selector.match_expressions + tuple(extra))


def resolve_term(
    term: PodAffinityTerm,
    namespace: str,
    labels: Mapping[str, str],
    ns_labels: Mapping[str, Mapping[str, str]],
    weight: int = 1,
) -> Term:
    if not term.namespaces and term.namespace_selector is None:
        namespaces: frozenset[str] | None = frozenset((namespace,))
    elif term.namespace_selector is not None and term.namespace_selector.is_empty():
        namespaces = None  # `namespaceSelector: {}` selects every namespace
    else:
        chosen = set(term.namespaces)
        if term.namespace_selector is not None:
            chosen |= {ns for ns, nl in ns_labels.items() if term.namespace_selector.matches(nl)}
        namespaces = frozenset(chosen)
    selector = with_label_keys(term.selector, labels, term.match_label_keys, term.mismatch_label_keys)
    return Term(Matcher(namespaces, selector), term.topology_key, weight)


def resolve_pod_terms(
    affinity: Affinity | None, namespace: str, labels: Mapping[str, str], ns_labels: Mapping[str, Mapping[str, str]]
) -> PodTerms:
    if affinity is None or not affinity.has_pod_terms():
        return PodTerms()

    def one(t: PodAffinityTerm, w: int = 1) -> Term:
        return resolve_term(t, namespace, labels, ns_labels, w)

    return PodTerms(
        tuple(one(t) for t in affinity.pod_required),
        tuple(one(t) for t in affinity.anti_required),
        tuple(one(w.term, w.weight) for w in affinity.pod_preferred),
        tuple(one(w.term, w.weight) for w in affinity.anti_preferred),
    )


def all_of(matchers: Iterable[Matcher]) -> Matcher:
    """One matcher for pods matching every one of `matchers` (InterPodAffinity counts a pod for
    the required affinity terms only when it matches them all)."""
    namespaces: frozenset[str] | None = None
    match_labels: dict[str, str] = {}
    expressions: list[Requirement] = []
    for m in matchers:
        if m.selector is None:
            return Matcher(frozenset(), None)
        if m.namespaces is not None:
            namespaces = m.namespaces if namespaces is None else namespaces & m.namespaces
        for k, v in m.selector.match_labels:
            if match_labels.get(k, v) != v:
                return Matcher(frozenset(), None)  # app=a and app=b: no pod
            match_labels[k] = v
        expressions.extend(m.selector.match_expressions)
    return Matcher(namespaces, LabelSelector(tuple(sorted(match_labels.items())), tuple(expressions)))
