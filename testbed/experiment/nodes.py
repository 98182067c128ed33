"""`kubectl label node` in a running cluster (pure, part of experiment/).

A node's labels are part of the live desired state: the new labels are written into the
plan's nodes, and every later reconcile (plan/build.replan) schedules against them — so a
DaemonSet gains a pod on a node that now matches it and loses the pod of a node that no
longer does, as the DaemonSet controller does. Pods already running elsewhere stay where
they are (kube-scheduler places pods once). Taints are not changed by any action yet.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import Problem, SpecError
from ..plan.model import Plan


@dataclass(frozen=True)
class LabelNodes:
    nodes: tuple[str, ...]
    labels: Mapping[str, str | None] = field(default_factory=dict)  # None removes the label


def relabel_nodes(action: LabelNodes, plan: Plan, source: str = "experiment") -> Plan:
    """The plan with the nodes' labels changed (replan then follows them)."""
    known = {n.name for n in plan.nodes}
    unknown = [n for n in action.nodes if n not in known]
    if unknown:
        raise SpecError(
            [Problem(source, "label.nodes", f"no node named {unknown[0][:60]!r} (known: {', '.join(sorted(known))})")]
        )

    def relabel(labels: Mapping[str, str]) -> dict[str, str]:
        kept = {k: v for k, v in labels.items() if k not in action.labels}
        return kept | {k: v for k, v in action.labels.items() if v is not None}

    chosen = set(action.nodes)
    nodes = tuple(dataclasses.replace(n, labels=relabel(n.labels)) if n.name in chosen else n for n in plan.nodes)
    return dataclasses.replace(plan, nodes=nodes)
