"""What a conformance case is: a name, tags, and steps, each a whole desired state (pure).

A step is the **whole desired state** the case wants at that point, not a delta: the policies
in force, and the pods and namespaces whose labels differ from the model (full label sets, not
patches). The state before a case is the model without policies (BASE).
changes.transition() turns two consecutive steps into the changes to make (apply, update or
delete a policy, relabel a pod or a namespace); changes.step_manifests() into the desired
Manifests a controller reconciles to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..spec.netpol import NetworkPolicySpec
from .xyz import model_namespace_labels, model_pod_labels


@dataclass(frozen=True)
class Step:
    """The desired state at one point of a case (not a delta)."""

    policies: tuple[NetworkPolicySpec, ...] = ()
    texts: tuple[str, ...] = ()  # each policy's YAML, same order
    pod_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # "x/a" -> labels
    namespace_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # "x" -> labels
    note: str = ""  # what changed since the previous step
    # The administrator's tiers in force (issue 17, conformance/tiered.py): decoded
    # ClusterNetworkPolicy / AdminNetworkPolicy / BaselineAdminNetworkPolicy objects and their YAML.
    tiers: tuple[Any, ...] = ()
    tier_texts: tuple[str, ...] = ()

    __hash__ = None  # type: ignore[assignment]   # holds dicts

    @property
    def yaml(self) -> str:
        return "---\n".join(self.tier_texts + self.texts)

    def policy_names(self) -> tuple[str, ...]:
        return tuple(p.full_name for p in self.policies)

    def text_of(self, full_name: str) -> str:
        return dict(zip(self.policy_names(), self.texts))[full_name]

    def labels_of_pod(self, ref: str) -> dict[str, str]:
        return dict(self.pod_labels[ref]) if ref in self.pod_labels else model_pod_labels(ref)

    def labels_of_namespace(self, name: str) -> dict[str, str]:
        return dict(self.namespace_labels[name]) if name in self.namespace_labels else model_namespace_labels(name)

    def key(self) -> tuple[Any, ...]:
        """What makes two steps the same state (used to keep cases distinct)."""
        return (
            tuple(sorted(self.texts + self.tier_texts)),
            tuple(sorted((k, tuple(sorted(v.items()))) for k, v in self.pod_labels.items())),
            tuple(sorted((k, tuple(sorted(v.items()))) for k, v in self.namespace_labels.items())),
        )


BASE = Step(note="the model without policies")


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    tags: tuple[str, ...]  # tags[0]: the family; the rest inferred (FEATURES)
    steps: tuple[Step, ...]

    @property
    def family(self) -> str:
        return self.tags[0]

    def key(self) -> tuple[Any, ...]:
        return tuple(s.key() for s in self.steps)


def labels_text(changes: Mapping[str, str | None]) -> str:
    """A label patch as kubectl writes it: `k=v` to set, `k-` to remove."""
    return " ".join(f"{k}-" if v is None else f"{k}={v}" for k, v in changes.items())


def label_patch(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, str | None]:
    """The patch from one full label set to another (None removes the key)."""
    out: dict[str, str | None] = {k: v for k, v in after.items() if before.get(k) != v}
    out.update({k: None for k in before if k not in after})
    return out
