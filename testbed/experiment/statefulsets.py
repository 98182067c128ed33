"""A StatefulSet scales one pod at a time unless its podManagementPolicy is Parallel (pure,
part of experiment/).

The StatefulSet controller with podManagementPolicy OrderedReady (the default) creates pod N
only once pods 0..N-1 are Running and Ready, and removes the highest ordinal first, one at a
time; with Parallel it creates or removes them all at once. A scale action is therefore a
list of stages, each applied (and its pod built, or removed) before the next: one stage per
pod for OrderedReady, one for Parallel. Each stage's plan (plan/controllers.py) creates the
lowest missing ordinal or removes the highest.
"""

from __future__ import annotations

import dataclasses
from typing import Any

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
