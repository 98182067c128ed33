"""StatefulSet and DaemonSet rolling updates, stage by stage (pure, part of experiment/).

When an `apply` changes the pod template of a StatefulSet or a DaemonSet, their controllers
do not recreate every pod at once. With updateStrategy RollingUpdate (the default):

- StatefulSet: pods are replaced from the highest ordinal down, each recreated under its name
  with the new template before the next (maxUnavailable, beta, replaces that many at once:
  a count, or a percentage of replicas rounded down, at least 1); ordinals below `partition`
  keep the old template.
- DaemonSet: node by node, maxUnavailable nodes at a time (default 1; a percentage of the
  eligible nodes rounded up); with maxUnavailable 0, maxSurge nodes at a time (the emulation
  replaces a node's daemon pod in one change rather than running both side by side).

`kubectl rollout restart|undo` (the `rollout` action naming a statefulset or daemonset) changes
the template as for a Deployment (`rolled`), then the same stages play. With OnDelete, pods keep the old template until they are deleted (plan/controllers.py keeps
them). Each stage is a set of wishes (plan.build.Desired) whose `held` pods (names, or nodes
for a DaemonSet) keep their old revision; the caller reconciles and applies the stages in turn.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ..errors import Problem, SpecError
from ..plan import controllers
from ..plan.build import Desired, desired_pods
from ..plan.model import Plan
from ..spec.model import ClusterSpec, Manifests, NodeSpec, Workload
from .rollout import IMAGE_ANNOTATION, Rollout, history_key

KINDS = ("StatefulSet", "DaemonSet")
# seconds between stages: a stand-in for readiness (each controller waits for its new pods to be
# Ready before it goes on), as experiment/rollout.py's step_delay for Deployments
STEP_DELAY = 0.3


def scaled(value: str, total: int, round_up: bool) -> int:
    """An IntOrString count or percentage of `total`, as intstr.GetScaledValueFromIntOrPercent."""
    if value.endswith("%"):
        exact = total * int(value[:-1]) / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


def batch_size(wl: Workload, total: int) -> int:
    """How many pods (StatefulSet) or nodes (DaemonSet) are replaced at once."""
    fields = wl.controller
    if fields is None:
        return 1
    if wl.ref.kind == "StatefulSet":
        return max(1, scaled(fields.max_unavailable, total, False))
    unavailable = scaled(fields.max_unavailable, total, True)
    return max(1, unavailable or scaled(fields.max_surge, total, True))


def order(wish: Desired, plan: Plan) -> list[str]:
    """What a rolling update replaces, first to last: a StatefulSet's pod names at another
    revision (highest ordinal first, none below the partition), a DaemonSet's nodes."""
    revision = controllers.revision(wish)
    live = [p for p in plan.pods if p.owner == wish.owner and p.namespace == wish.namespace]
    stale = [p for p in live if p.labels.get(controllers.REVISION_LABEL) != revision]
    if wish.per_node:
        return sorted(p.node for p in stale)
    ordinal = {n: i for i, n in enumerate(wish.names)}
    names = [p.name for p in stale if p.name in ordinal and ordinal[p.name] >= wish.partition]
    return sorted(names, key=lambda n: -ordinal[n])


def rolling(before: Manifests, after: Manifests) -> list[Workload]:
    """The StatefulSets and DaemonSets whose template `after` changes, with RollingUpdate."""
    old = {(w.ref.kind, w.ref.namespace, w.ref.name): w.template for w in before.workloads}
    return [
        w
        for w in after.workloads
        if w.ref.kind in KINDS
        and old.get((w.ref.kind, w.ref.namespace, w.ref.name), w.template) != w.template
        and (w.controller is None or w.controller.update_strategy == "RollingUpdate")
    ]


def stages(cluster: ClusterSpec, before: Manifests, after: Manifests, plan: Plan) -> list[list[Desired]]:
    """The wishes of each intermediate state of the rolling updates `after` starts from the live
    `plan` (the last state is `after` itself, left to the caller); [] when nothing rolls. The
    workloads roll in parallel, each at its own pace, as their controllers do."""
    workloads = rolling(before, after)
    if not workloads:
        return []
    keys = {(f"{w.ref.kind}/{w.ref.name}", w.ref.namespace): w for w in workloads}
    plans: list[tuple[Desired, list[str], int]] = []
    for wish in desired_pods(after):
        wl = keys.get((wish.owner, wish.namespace))
        if wl is None:
            continue
        wish = controllers.with_nodes(wish, _nodes(cluster, plan))
        todo = order(wish, plan)
        total = len(wish.nodes) if wish.per_node else len(wish.names)
        plans.append((wish, todo, batch_size(wl, total)))
    rounds = max((math.ceil(len(todo) / size) for _, todo, size in plans), default=0)
    out = []
    for k in range(1, rounds):  # round k has replaced k batches; the last round is `after`
        out.append([dataclasses.replace(w, held=frozenset(todo[k * size :])) for w, todo, size in plans])
    return out


def _nodes(cluster: ClusterSpec, plan: Plan) -> list[NodeSpec]:
    """The live nodes (labels as a running cluster has them now), for DaemonSet eligibility."""
    now = {n.name: n.labels for n in plan.nodes}
    return [dataclasses.replace(n, labels=dict(now[n.name])) for n in cluster.nodes if n.name in now]


def rolled(manifests: Manifests, action: Rollout, history: dict[tuple[str, str], Any], source: str) -> Manifests:
    """The manifests after `kubectl rollout restart` / `set image` (or `rollout undo`) of a
    StatefulSet or DaemonSet; `history` keeps the template it replaces, for a later undo."""
    key = (action.kind, action.namespace, action.deployment)
    old = next((w for w in manifests.workloads if (w.ref.kind, w.ref.namespace, w.ref.name) == key), None)
    if old is None:
        raise SpecError([Problem(source, "rollout", f"no {action.kind} {action.namespace}/{action.deployment}")])
    where = history_key(action)
    if action.undo:
        previous = history.get(where)
        if previous is None:
            message = f"{action.kind} {action.namespace}/{action.deployment} has no previous revision to roll back to"
            raise SpecError([Problem(source, "rollout.undo", message)])
        template = previous
    else:
        annotations = {**old.template.annotations, IMAGE_ANNOTATION: action.image or "next"}
        template = dataclasses.replace(old.template, annotations=annotations)
    history[where] = old.template
    new = dataclasses.replace(old, template=template)
    return dataclasses.replace(manifests, workloads=tuple(new if w is old else w for w in manifests.workloads))
