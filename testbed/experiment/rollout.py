"""Rolling updates and rollbacks of a Deployment, step by step (pure).

What the Deployment controller does with the default strategy (RollingUpdate, maxSurge 25%
rounded up, maxUnavailable 25% rounded down, scenario 002's "pods replaced one by one"): the new
ReplicaSet scales up by at most maxSurge above the desired count, the old one scales down
while at least (replicas - maxUnavailable) pods stay available. Each intermediate state is a
set of wishes (plan.build.Desired) that replan reconciles and emu applies, so the pods really
come and go one by one, with new names and new IPs, while probes keep running. A rollback
(`kubectl rollout undo`) is a rolling update back to the previous template: the old
ReplicaSet (same pod-template-hash) scales up again, with new pods.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ..errors import Problem, SpecError
from ..plan.build import Desired, desired_pods
from ..spec.model import Manifests, Workload


@dataclass(frozen=True)
class Rollout:
    deployment: str
    namespace: str = "default"
    image: str = ""  # the new image (recorded as a template annotation: images are not emulated)
    undo: bool = False  # kubectl rollout undo: back to the previous template
    max_surge: str = "25%"
    max_unavailable: str = "25%"
    step_delay: float = 0.3  # seconds between steps (a stand-in for readiness and minReadySeconds)


IMAGE_ANNOTATION = "testbed.io/image"


def _amount(value: str, replicas: int, round_up: bool) -> int:
    if value.endswith("%"):
        exact = replicas * int(value[:-1]) / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


def counts(replicas: int, max_surge: str = "25%", max_unavailable: str = "25%") -> list[tuple[int, int]]:
    """The (old, new) replica counts the controller goes through, first to last."""
    surge = _amount(max_surge, replicas, True)
    unavailable = _amount(max_unavailable, replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # the API server rejects both 0; be as lenient as the controller's fallback
    old, new = replicas, 0
    states = [(old, new)]
    while (old, new) != (0, replicas):
        new = min(replicas, max(new, replicas + surge - old))
        states.append((old, new))
        old = max(0, old - max(0, old + new - (replicas - unavailable)))
        states.append((old, new))
        if states[-1] == states[-3]:  # no progress possible: give up rather than loop
            break
    out: list[tuple[int, int]] = []
    for s in states:
        if not out or out[-1] != s:
            out.append(s)
    return out


def find_deployment(manifests: Manifests, rollout: Rollout, source: str) -> Workload:
    for w in manifests.workloads:
        if (w.ref.kind, w.ref.namespace, w.ref.name) == ("Deployment", rollout.namespace, rollout.deployment):
            return w
    raise SpecError([Problem(source, "rollout", f"no Deployment {rollout.namespace}/{rollout.deployment}")])


def updated(manifests: Manifests, old: Workload, new: Workload) -> Manifests:
    return dataclasses.replace(manifests, workloads=tuple(new if w is old else w for w in manifests.workloads))


def new_template_workload(old: Workload, rollout: Rollout, history: dict[tuple[str, str], Any]) -> Workload:
    """The Deployment after `kubectl set image` (or `rollout undo`, from `history`)."""
    key = (old.ref.namespace, old.ref.name)
    if rollout.undo:
        previous = history.get(key)
        if previous is None:
            raise SpecError(
                [
                    Problem(
                        "experiment",
                        "rollout.undo",
                        f"Deployment {key[0]}/{key[1]} has no previous revision to roll back to",
                    )
                ]
            )
        return dataclasses.replace(old, template=previous)
    annotations = {**old.template.annotations, IMAGE_ANNOTATION: rollout.image or "next"}
    return dataclasses.replace(old, template=dataclasses.replace(old.template, annotations=annotations))


def owned_by(owner: str, deployment: str) -> bool:
    """Whether `owner` is a ReplicaSet of Deployment `deployment` (<name>-<pod-template-hash>,
    the hash without dashes: web-prestop's ReplicaSets are not web's)."""
    return owner.rpartition("-")[0] == f"ReplicaSet/{deployment}"


def wishes_between(
    manifests_old: Manifests, manifests_new: Manifests, deployment: tuple[str, str], old_count: int, new_count: int
) -> list[Desired]:
    """Every owner's wish, with the Deployment's two ReplicaSets at the given counts."""
    old_wishes = {(w.owner, w.namespace): w for w in desired_pods(manifests_old)}
    out = []
    for w in desired_pods(manifests_new):
        if w.namespace == deployment[0] and owned_by(w.owner, deployment[1]):
            old = next(
                (
                    o
                    for (owner, ns), o in old_wishes.items()
                    if ns == deployment[0] and owned_by(owner, deployment[1]) and owner != w.owner
                ),
                None,
            )
            if old is not None and old_count:
                out.append(dataclasses.replace(old, count=old_count))
            out.append(dataclasses.replace(w, count=new_count))
        else:
            out.append(w)
    return out
