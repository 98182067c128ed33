"""A StatefulSet scales one pod at a time unless its podManagementPolicy is Parallel (pure,
part of experiment/).

The StatefulSet controller with podManagementPolicy OrderedReady (the default) creates pod N
only once pods 0..N-1 are Running and Ready, and removes the highest ordinal first, one at a
time; with Parallel it creates or removes them all at once. A scale action is therefore a
list of stages, each applied (and its pod built, or removed) before the next: one stage per
pod for OrderedReady, one for Parallel. Each stage's plan (plan/controllers.py) creates the
lowest missing ordinal or removes the highest. The cluster's first build goes the same way
(`ordered_build`): each ordinal's pods built before the next.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..plan.model import Plan
from ..plan.pod import PodPlan
from ..plan.services import update_endpoints
from ..spec.model import Manifests
from .changes import Scale


def stages(action: Any, manifests: Manifests) -> list[Any]:
    """`action` as the controller carries it out: for an OrderedReady StatefulSet's scale, one
    Scale per replica on the way; otherwise the action itself."""
    if not isinstance(action, Scale) or action.kind != "StatefulSet":
        return [action]
    wl = next(
        (
            w
            for w in manifests.workloads
            if (w.ref.kind, w.ref.namespace, w.ref.name) == ("StatefulSet", action.namespace, action.name)
        ),
        None,
    )
    if wl is None or wl.controller is None or wl.controller.pod_management == "Parallel":
        return [action]
    step = 1 if action.replicas > wl.replicas else -1
    return [
        dataclasses.replace(action, replicas=r) for r in range(wl.replicas + step, action.replicas + step, step)
    ] or [action]


def ordered_build(plan: Plan, manifests: Manifests) -> list[Plan]:
    """The cluster's first build as the StatefulSet controller makes it: with OrderedReady, pod
    N is created only once pods 0..N-1 run, so the build goes through one plan per ordinal (every
    OrderedReady StatefulSet advancing together: each has its own controller loop), each with
    the pods and endpoints of that moment; the last is `plan` itself. Parallel StatefulSets and
    every other pod are there from the first plan."""
    ordered = {
        (w.ref.namespace, f"StatefulSet/{w.ref.name}")
        for w in manifests.workloads
        if w.ref.kind == "StatefulSet" and w.controller is not None and w.controller.pod_management != "Parallel"
    }

    def ordinal(pod: PodPlan) -> int:
        if (pod.namespace, pod.owner) not in ordered:
            return -1
        tail = pod.name.rsplit("-", 1)[-1]
        return int(tail) if tail.isdigit() else -1

    top = max((ordinal(p) for p in plan.pods), default=-1)
    out = []
    for k in range(1, top + 1):  # stage k: ordinals below k
        pods = tuple(p for p in plan.pods if ordinal(p) < k)
        services = update_endpoints(plan.services, pods) if plan.services is not None else None
        out.append(dataclasses.replace(plan, pods=pods, services=services))
    return [*out, plan]
