"""Pod placement as kube-scheduler does it: the front door of plan/scheduling/ (pure).

Part of plan/: build.py keeps one `Scheduler` per plan — the nodes, and every pod placed so
far — and asks it for each new pod. `eligible` / `unfit_reason` answer for one node and a
template alone (nodeSelector, required node affinity, NoSchedule/NoExecute taints): the
DaemonSet controller's test. `schedule` places one pod on nodes with anonymous load, as the
scheduler did before it knew about other pods. The plugins, their order and weights, and the
Pending reason's wording are kube-scheduler's (plan/scheduling/framework.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..spec.model import NodeSpec, PodTemplate
from .scheduling.evictions import Eviction, eviction
from .scheduling.framework import Prepared, Scheduler, fit_error
from .scheduling.nodes import eligible, node_filter
from .scheduling.spread import ServiceSelectors, default_selector

__all__ = [
    "Eviction",
    "Prepared",
    "Scheduler",
    "ServiceSelectors",
    "default_selector",
    "eligible",
    "eviction",
    "fit_error",
    "schedule",
    "unfit_reason",
]


def unfit_reason(node: NodeSpec, template: PodTemplate) -> str | None:
    """Why `template` cannot run on `node` by the node alone (kube-scheduler's words), or None."""
    return node_filter(node, template)


def schedule(template: PodTemplate, nodes: Sequence[NodeSpec], load: Mapping[str, int]) -> tuple[str | None, str]:
    """Return (node name, "") or (None, reason the pod stays Pending); `load` counts pods per node."""
    scheduler = Scheduler(nodes)
    scheduler.index.load.update(load)
    return scheduler.schedule(scheduler.prepare(template))
