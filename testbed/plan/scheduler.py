"""Pod placement, the way kube-scheduler's default filters and a spreading score would.

Part of plan/: given the nodes and how many pods each already runs, choose a node for a
pod template. Filters (kube-scheduler plugins): NodeName (spec.nodeName binds directly,
bypassing the scheduler as in Kubernetes), NodeAffinity's nodeSelector, TaintToleration
(NoSchedule / NoExecute taints, e.g. the control-plane's). Score: fewest pods first, so
replicas spread evenly; ties go to the earlier node, which keeps plans deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..spec.model import NodeSpec, PodTemplate


def unfit_reason(node: NodeSpec, template: PodTemplate) -> str | None:
    """Why `template` cannot run on `node`, or None if it can."""
    for key, value in template.node_selector.items():
        if node.labels.get(key) != value:
            return f"nodeSelector {key}={value} does not match"
    for taint in node.taints:
        if taint.effect not in ("NoSchedule", "NoExecute"):
            continue  # PreferNoSchedule only lowers the score
        if not any(t.tolerates(taint) for t in template.tolerations):
            return f"untolerated taint {taint.key}:{taint.effect}"
    return None


def schedule(template: PodTemplate, nodes: Sequence[NodeSpec], load: Mapping[str, int]) -> tuple[str | None, str]:
    """Return (node name, "") or (None, reason the pod stays Pending)."""
    if template.node_name:
        # spec.nodeName skips the scheduler entirely: the kubelet admits it, taints or not.
        if any(n.name == template.node_name for n in nodes):
            return template.node_name, ""
        return None, f"nodeName {template.node_name!r} is not a node of this cluster"
    fits: list[NodeSpec] = []
    reasons: dict[str, int] = {}
    for node in nodes:
        why = unfit_reason(node, template)
        if why is None:
            fits.append(node)
        else:
            reasons[why] = reasons.get(why, 0) + 1
    if not fits:
        detail = ", ".join(f"{count} node(s): {why}" for why, count in sorted(reasons.items()))
        return None, f"0/{len(nodes)} nodes are available: {detail}"
    prefer = [n for n in fits if not _prefer_not(n, template)] or fits
    best = min(prefer, key=lambda n: (load.get(n.name, 0), nodes.index(n)))
    return best.name, ""


def _prefer_not(node: NodeSpec, template: PodTemplate) -> bool:
    return any(
        t.effect == "PreferNoSchedule" and not any(x.tolerates(t) for x in template.tolerations) for t in node.taints
    )
