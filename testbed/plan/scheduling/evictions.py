"""The taint manager's NoExecute semantics (pure; plan/scheduling/).

A pod bound to a node with NoExecute taints stays only while every such taint is tolerated:
an untolerated one evicts it at once (a pod placed by spec.nodeName, which bypasses the
scheduler's TaintToleration filter, or one tolerating for 0 s); a toleration with
tolerationSeconds evicts it after the shortest of those times (a negative time counts as 0);
tolerations without a time keep it for good. Kubernetes' GetMatchingTolerations and
getMinTolerationTime: each taint is matched by the first toleration that tolerates it.
The testbed's taints come with the topology, so they are there when the pod starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...spec.model import NodeSpec, PodTemplate, Taint


@dataclass(frozen=True)
class Eviction:
    taint: Taint
    after: int  # seconds after the pod starts (0: at once)

    def describe(self) -> str:
        taint = f"{{{self.taint.key}: {self.taint.value}}} (NoExecute)"
        if self.after == 0:
            return f"the taint manager evicts it at once: taint {taint} is not tolerated"
        return f"the taint manager evicts it after {self.after} s: taint {taint} is tolerated for tolerationSeconds={self.after} only"


def eviction(node: NodeSpec, template: PodTemplate) -> Eviction | None:
    """What the taint manager does to a pod of `template` on `node`: None, it stays."""
    timed: list[tuple[int, Taint]] = []
    for taint in node.taints:
        if taint.effect != "NoExecute":
            continue
        used = next((t for t in template.tolerations if t.tolerates(taint)), None)
        if used is None:
            return Eviction(taint, 0)
        if used.seconds is not None:
            timed.append((max(used.seconds, 0), taint))
    if not timed:
        return None
    after, taint = min(timed, key=lambda item: item[0])
    return Eviction(taint, after)
