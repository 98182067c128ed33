"""Changes between experiment steps, as a controller would see them (pure).

Each action turns the current desired state (Manifests + the live Plan) into a new one:
scale a workload, delete pods (their controller replaces them with new names and IPs),
relabel pods, apply or delete manifest files. The runner re-plans with plan.build.replan and
lets emu apply only the difference, the way a controller reconciles.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import Problem, SpecError
from ..faults.model import Fault, Recover
from ..plan.build import replan
from ..plan.model import Plan
from ..spec.model import ClusterSpec, Manifests, Namespace
from ..spec.workloads import load_manifests
from .expand import select_pods
from .jobs import Trigger, job_name, trigger
from .model import PodSelection
from .nodes import LabelNodes, relabel_nodes
from .rollout import Rollout


@dataclass(frozen=True)
class Scale:
    kind: str  # Deployment | ReplicaSet | ReplicationController
    name: str
    replicas: int
    namespace: str = "default"


@dataclass(frozen=True)
class DeletePods:
    pods: PodSelection


@dataclass(frozen=True)
class Label:
    pods: PodSelection
    labels: Mapping[str, str | None] = field(default_factory=dict)  # None removes the label


@dataclass(frozen=True)
class LabelNamespace:
    namespace: str
    labels: Mapping[str, str | None] = field(default_factory=dict)  # None removes the label


@dataclass(frozen=True)
class Apply:
    files: tuple[str, ...]


@dataclass(frozen=True)
class Delete:
    files: tuple[str, ...]


@dataclass(frozen=True)
class SetProbe:
    """The selected pods' application starts failing (or passes again) a probe (issue 19):
    kubelet notices at its next probe ticks (testbed/lifecycle/), the desired state is the same."""

    pods: PodSelection
    probe: str = "readiness"  # readiness | liveness | startup
    passes: bool = False


Action = (
    Scale
    | DeletePods
    | Label
    | LabelNamespace
    | Apply
    | Delete
    | Rollout
    | Trigger
    | LabelNodes
    | Fault
    | Recover
    | SetProbe
)  # Rollout, SetProbe: experiment/run.py; Trigger: experiment/jobs.py; LabelNodes: experiment/nodes.py;
# Fault and Recover are played by experiment/run.py (emu/faults.py)


def describe(action: Action) -> str:
    if isinstance(action, (Fault, Recover)):
        return action.describe()
    if isinstance(action, Scale):
        return f"scale {action.kind} {action.namespace}/{action.name} to {action.replicas}"
    if isinstance(action, DeletePods):
        return f"delete pods {_sel(action.pods)}"
    if isinstance(action, SetProbe):
        return f"{action.probe} probe of pods {_sel(action.pods)} {'passes' if action.passes else 'fails'}"
    if isinstance(action, Rollout):
        what = "rollout undo" if action.undo else f"set image ({action.image or 'next'}) and roll out"
        return f"{what} Deployment {action.namespace}/{action.deployment}"
    if isinstance(action, Trigger):
        return f"create job {job_name(action)} --from=cronjob/{action.cronjob} -n {action.namespace}"
    if isinstance(action, LabelNodes):
        return f"label nodes {' '.join(action.nodes)} " + " ".join(
            f"{k}-" if v is None else f"{k}={v}" for k, v in action.labels.items()
        )
    if isinstance(action, LabelNamespace):
        return f"label namespace {action.namespace} " + " ".join(
            f"{k}-" if v is None else f"{k}={v}" for k, v in action.labels.items()
        )
    if isinstance(action, Label):
        return f"label pods {_sel(action.pods)} " + " ".join(
            f"{k}-" if v is None else f"{k}={v}" for k, v in action.labels.items()
        )
    verb = "apply" if isinstance(action, Apply) else "delete"
    return f"{verb} -f {' -f '.join(os.path.relpath(f) for f in action.files)}"


def _sel(sel: PodSelection) -> str:
    parts = ([f"-n {sel.namespace}"] if sel.namespace else []) + list(sel.names)
    if not sel.selector.is_empty():
        parts.append(f"-l {sel.selector}")
    return " ".join(parts) or "--all"


def _key(obj: Any) -> tuple[str, str, str]:
    return (obj.ref.kind, obj.ref.namespace, obj.ref.name)


def merge(base: Manifests, extra: Manifests) -> Manifests:
    """`kubectl apply`: objects of `extra` replace those of `base` with the same kind/ns/name."""

    def combine(
        a: tuple[Any, ...], b: tuple[Any, ...], key: Callable[[Any], tuple[str, str, str]] = _key
    ) -> tuple[Any, ...]:
        replaced = {key(o) for o in b}
        return tuple(o for o in a if key(o) not in replaced) + tuple(b)

    by_name = lambda n: n.name  # noqa: E731
    return Manifests(
        namespaces=combine(base.namespaces, extra.namespaces, by_name),
        pods=combine(base.pods, extra.pods),
        workloads=combine(base.workloads, extra.workloads),
        files=base.files + tuple(f for f in extra.files if f not in base.files),
        services=combine(base.services, extra.services),
        policies=combine(base.policies, extra.policies),
        ingresses=combine(base.ingresses, extra.ingresses),
        cluster_policies=combine(base.cluster_policies, extra.cluster_policies),
        others=combine(base.others, extra.others),
    )


def remove(base: Manifests, gone: Manifests) -> Manifests:
    """`kubectl delete -f`: drop the objects the files name."""

    def drop(
        a: tuple[Any, ...], b: tuple[Any, ...], key: Callable[[Any], tuple[str, str, str]] = _key
    ) -> tuple[Any, ...]:
        names = {key(o) for o in b}
        return tuple(o for o in a if key(o) not in names)

    by_name = lambda n: n.name  # noqa: E731
    # Deleting a Namespace deletes everything in it (the namespace controller empties it).
    emptied = {n.name for n in gone.namespaces}

    def drop_in(a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(o for o in drop(a, b) if o.ref.namespace not in emptied)

    return Manifests(
        namespaces=drop(base.namespaces, gone.namespaces, by_name),
        pods=drop_in(base.pods, gone.pods),
        workloads=drop_in(base.workloads, gone.workloads),
        files=base.files,
        services=drop_in(base.services, gone.services),
        policies=drop_in(base.policies, gone.policies),
        ingresses=drop_in(base.ingresses, gone.ingresses),
        others=drop_in(base.others, gone.others),
        cluster_policies=drop(base.cluster_policies, gone.cluster_policies),
    )


def apply_action(
    action: Action, cluster: ClusterSpec, manifests: Manifests, plan: Plan, source: str = "experiment"
) -> tuple[Manifests, Plan]:
    """The desired state after `action`: new manifests and the reconciled plan."""
    deleted: frozenset[str] = frozenset()
    if isinstance(action, SetProbe):  # pods' conditions change, not what is wanted
        return manifests, plan
    if isinstance(action, Scale):
        hits = [
            w
            for w in manifests.workloads
            if (w.ref.kind, w.ref.namespace, w.ref.name) == (action.kind, action.namespace, action.name)
        ]
        if not hits:
            raise SpecError(
                [Problem(source, "scale", f"no {action.kind} {action.namespace}/{action.name} in the manifests")]
            )
        workloads = tuple(
            dataclasses.replace(w, replicas=action.replicas) if w in hits else w for w in manifests.workloads
        )
        manifests = dataclasses.replace(manifests, workloads=workloads)
    elif isinstance(action, DeletePods):
        doomed = select_pods(plan, action.pods)
        deleted = frozenset(p.key for p in doomed)
        bare = {(p.namespace, p.name) for p in doomed if not p.owner}
        manifests = dataclasses.replace(
            manifests, pods=tuple(p for p in manifests.pods if (p.ref.namespace, p.ref.name) not in bare)
        )
    elif isinstance(action, Label):
        plan, manifests = _relabel(action, plan, manifests)
    elif isinstance(action, LabelNamespace):
        manifests = _relabel_namespace(action, manifests)
    elif isinstance(action, Trigger):
        manifests = trigger(action, manifests, source)
    elif isinstance(action, LabelNodes):
        plan = relabel_nodes(action, plan, source)
    elif isinstance(action, Apply):
        # namespaces resolve against the cluster as it is now (a file may hold just a policy for x)
        manifests = merge(manifests, load_manifests(action.files, namespaces=manifests.namespace_names()))
    elif isinstance(action, Delete):
        manifests = remove(manifests, load_manifests(action.files, namespaces=manifests.namespace_names()))
    new_plan = replan(cluster, manifests, plan.seed, prev=plan, deleted=deleted)
    return manifests, new_plan


def _relabel_namespace(action: LabelNamespace, manifests: Manifests) -> Manifests:
    """`kubectl label namespace`: NetworkPolicies' namespaceSelectors see the new labels."""
    current = next((n for n in manifests.namespaces if n.name == action.namespace), None)
    if current is None:
        if action.namespace not in manifests.namespace_names():
            raise SpecError([Problem("experiment", "label.namespace", f"no namespace {action.namespace!r}")])
        current = Namespace(action.namespace, {})  # default, kube-system...: implicit until labelled
    labels = dict(current.labels)
    for k, v in action.labels.items():
        if v is None:
            labels.pop(k, None)
        else:
            labels[k] = v
    others = tuple(n for n in manifests.namespaces if n.name != action.namespace)
    return dataclasses.replace(manifests, namespaces=others + (Namespace(action.namespace, labels),))


def _relabel(action: Label, plan: Plan, manifests: Manifests) -> tuple[Plan, Manifests]:
    """`kubectl label pod`: labels change in place; a bare pod's manifest follows."""

    def relabel(labels: Mapping[str, str]) -> dict[str, str]:
        out = dict(labels)
        for k, v in action.labels.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = v
        return out

    targets = {p.key for p in select_pods(plan, action.pods)}
    pods = tuple(dataclasses.replace(p, labels=relabel(p.labels)) if p.key in targets else p for p in plan.pods)
    bare = {(p.namespace, p.name) for p in plan.pods if p.key in targets and not p.owner}
    manifest_pods = tuple(
        dataclasses.replace(p, template=dataclasses.replace(p.template, labels=relabel(p.template.labels)))
        if (p.ref.namespace, p.ref.name) in bare
        else p
        for p in manifests.pods
    )
    return dataclasses.replace(plan, pods=pods), dataclasses.replace(manifests, pods=manifest_pods)
