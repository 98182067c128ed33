"""kube-scheduler's node-only plugins: TaintToleration and NodeAffinity (pure; plan/scheduling/).

What a node's labels and taints alone say about a pod template: the filters (an untolerated
NoSchedule/NoExecute taint; nodeSelector plus required node affinity), NodeAffinity's
PreFilter (`metadata.name In` fields narrow the nodes evaluated), and the two scores
(intolerable PreferNoSchedule taints, fewer is better; the weights of matching preferred node
terms). `eligible` is the DaemonSet controller's test, which is these two filters.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...spec.model import NodeSpec, PodTemplate, Taint, Toleration

MAX_NODE_SCORE = 100
TAINT_REASON = "node(s) had untolerated taint {{{key}: {value}}}"
AFFINITY_REASON = "node(s) didn't match Pod's node affinity/selector"
PREFILTERED_REASON = "node is filtered out by the prefilter result"
CONFLICT_REASON = "pod affinity terms conflict"


def untolerated_taint(
    taints: Sequence[Taint], tolerations: Sequence[Toleration], effects: tuple[str, ...] = ("NoSchedule", "NoExecute")
) -> Taint | None:
    """The first taint with one of `effects` that no toleration tolerates (FindMatchingUntoleratedTaint)."""
    for taint in taints:
        if taint.effect in effects and not any(t.tolerates(taint) for t in tolerations):
            return taint
    return None


def matches_node_affinity(node: NodeSpec, template: PodTemplate) -> bool:
    """nodeSelector and required node affinity (GetRequiredNodeAffinity(pod).Match(node))."""
    labels = node.labels
    if any(labels.get(k) != v for k, v in template.node_selector.items()):
        return False
    terms = template.affinity.node_required if template.affinity is not None else None
    return terms is None or any(t.matches(node.name, labels) for t in terms)


def taint_reason(taint: Taint) -> str:
    return TAINT_REASON.format(key=taint.key, value=taint.value)


def node_filter(node: NodeSpec, template: PodTemplate) -> str | None:
    """TaintToleration then NodeAffinity, as the filters run: the first one's reason, or None."""
    taint = untolerated_taint(node.taints, template.tolerations) if node.taints else None
    if taint is not None:
        return taint_reason(taint)
    if (template.node_selector or template.affinity is not None) and not matches_node_affinity(node, template):
        return AFFINITY_REASON
    return None


def eligible(node: NodeSpec, template: PodTemplate) -> bool:
    """May a pod of this template run on this node? The DaemonSet controller's test
    (nodeShouldRunDaemonPod): nodeSelector, required node affinity, NoSchedule/NoExecute taints."""
    return node_filter(node, template) is None


def prefilter_names(template: PodTemplate) -> frozenset[str] | None:
    """NodeAffinity's PreFilter: when every required term names nodes (`metadata.name In`), only
    those nodes are evaluated; None when it does not narrow."""
    terms = template.affinity.node_required if template.affinity is not None else None
    if not terms:
        return None
    names: frozenset[str] = frozenset()
    for term in terms:
        allowed = term.node_names()
        if allowed is None:
            return None  # terms are ORed: one without names allows every node
        names |= allowed
    return names


def taint_scores(nodes: Sequence[NodeSpec], template: PodTemplate) -> list[int]:
    """TaintToleration's normalized score: fewer intolerable PreferNoSchedule taints is better."""
    tolerations = [t for t in template.tolerations if t.effect in ("", "PreferNoSchedule")]
    raw = [
        sum(
            1
            for taint in n.taints
            if taint.effect == "PreferNoSchedule" and not any(t.tolerates(taint) for t in tolerations)
        )
        for n in nodes
    ]
    return normalize(raw, reverse=True)


def affinity_scores(nodes: Sequence[NodeSpec], template: PodTemplate) -> list[int] | None:
    """NodeAffinity's normalized score (sum of matching preferred terms' weights); None: no terms."""
    preferred = template.affinity.node_preferred if template.affinity is not None else ()
    if not preferred:
        return None
    raw = [sum(p.weight for p in preferred if p.preference.matches(n.name, n.labels)) for n in nodes]
    return normalize(raw)


def normalize(scores: list[int], reverse: bool = False) -> list[int]:
    """helper.DefaultNormalizeScore: scale to [0, 100] by the maximum, reversed if asked."""
    top = max(scores, default=0)
    if top == 0:
        return [MAX_NODE_SCORE if reverse else 0 for _ in scores]
    out = [MAX_NODE_SCORE * s // top for s in scores]
    return [MAX_NODE_SCORE - s for s in out] if reverse else out
