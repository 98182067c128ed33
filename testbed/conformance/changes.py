"""From one step of a case to the next on a live cluster: kubectl-like changes, desired manifests (pure).

`transition(before, after)` says what changes between two steps in kubectl terms (apply /
delete a policy, label a pod or a namespace) for logs and for a runner that applies deltas.
Steps are whole states, so a runner may go straight from the last step of one case to the first
step of the next (the policies and labels of the old case are undone by the same reconcile);
`transition(last, BASE)` / step_manifests(base, BASE) return to the bare model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..spec.model import Manifests, Namespace
from .steps import BASE, Step, label_patch, labels_text
from .xyz import MODEL_NAMESPACES, PODS


@dataclass(frozen=True)
class Transition:
    """What to change on a live cluster to go from one step to the next.

    `apply`: policies new or changed (kubectl apply); `delete`: (namespace, name) of policies no
    longer in force; `pod_labels` / `namespace_labels`: label patches (`None` removes the key),
    as `kubectl label pod|namespace ... k=v k-` would do them. `texts` holds the YAML of each
    applied policy, in the same order as `apply`.
    """

    apply: tuple[Any, ...] = ()
    texts: tuple[str, ...] = ()
    delete: tuple[tuple[str, str], ...] = ()
    pod_labels: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)
    namespace_labels: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.apply or self.delete or self.pod_labels or self.namespace_labels)

    def describe(self) -> list[str]:
        """The changes as kubectl commands (for logs and reports)."""
        lines = [f"kubectl apply -f <{p.namespace}/{p.name}>  # NetworkPolicy" for p in self.apply]
        lines += [f"kubectl delete networkpolicy -n {ns} {name}" for ns, name in self.delete]
        lines += [
            f"kubectl label pod -n {ref.split('/')[0]} {ref.split('/')[1]} {labels_text(ch)} --overwrite"
            for ref, ch in self.pod_labels.items()
        ]
        lines += [
            f"kubectl label namespace {ns} {labels_text(ch)} --overwrite" for ns, ch in self.namespace_labels.items()
        ]
        return lines


def transition(before: Step | None, after: Step) -> Transition:
    """The changes from `before` (None: the model without policies) to `after`."""
    before = before or BASE
    old = dict(zip(before.policy_names(), before.texts))
    new_texts = dict(zip(after.policy_names(), after.texts))
    apply = [(p, new_texts[p.full_name]) for p in after.policies if old.get(p.full_name) != new_texts[p.full_name]]
    delete = tuple(tuple(n.split("/", 1)) for n in before.policy_names() if n not in new_texts)
    pods = {ref: label_patch(before.labels_of_pod(ref), after.labels_of_pod(ref)) for ref in PODS}
    nss = {ns: label_patch(before.labels_of_namespace(ns), after.labels_of_namespace(ns)) for ns in MODEL_NAMESPACES}
    return Transition(
        tuple(p for p, _ in apply),
        tuple(t for _, t in apply),
        delete,  # type: ignore[arg-type]
        {k: v for k, v in pods.items() if v},
        {k: v for k, v in nss.items() if v},
    )


def step_manifests(base: Manifests, step: Step) -> Manifests:
    """The desired Manifests at `step`: `base` (the model, e.g. load_manifests of
    resources.MODEL) with the step's policies instead of base's, and the model's
    bare pods and namespaces carrying the step's labels. Replan from it with prev= the live
    plan: bare pods keep their names and IPs, their labels follow (plan.build._kept)."""
    pods = []
    for p in base.pods:
        ref = f"{p.ref.namespace}/{p.ref.name}"
        if ref in PODS and dict(p.template.labels) != step.labels_of_pod(ref):
            p = dataclasses.replace(p, template=dataclasses.replace(p.template, labels=step.labels_of_pod(ref)))
        pods.append(p)
    namespaces = tuple(
        Namespace(n.name, step.labels_of_namespace(n.name)) if n.name in MODEL_NAMESPACES else n
        for n in base.namespaces
    )
    return dataclasses.replace(
        base, pods=tuple(pods), namespaces=namespaces, policies=tuple(step.policies), cluster_policies=tuple(step.tiers)
    )
