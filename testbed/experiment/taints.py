"""Taint changes on a running cluster and the taint manager's evictions (pure, part of
experiment/; the shell's `kubectl taint nodes` uses it too).

`kubectl taint nodes NODE key=value:Effect` adds a taint (`key:Effect-` or `key-` removes it).
A node's taints live in the cluster spec (faults taint nodes there too), so a change gives a
new ClusterSpec; the caller then reconciles:

- NoSchedule and PreferNoSchedule affect new placements only: pods already on the node stay
  (a DaemonSet's too: its controller keeps a pod where only NoSchedule taints are new).
- NoExecute: the taint manager evicts the node's pods that do not tolerate it at once, and
  those tolerating it with tolerationSeconds once that time is over (plan/scheduling/
  evictions.py has the matching rules); their controllers replace them on the nodes that fit
  (bare pods are gone for good), DaemonSets stop running on the node.

`evictions` says which pods go and when; experiment/run.py and the shell play the timed ones
(scaled by the experiment's `timers.timeScale`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import Problem, SpecError
from ..faults.lifecycle import delete_pods
from ..plan.build import Desired, desired_pods, replan
from ..plan.model import Plan
from ..plan.scheduling.evictions import eviction
from ..plan.system import with_system
from ..spec.model import ClusterSpec, Manifests, PodTemplate, Taint
from ..spec.names import label_key_error, label_value_error

EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


@dataclass(frozen=True)
class TaintChange:
    """One argument of `kubectl taint`: key=value:Effect adds, key[:Effect]- removes."""

    key: str
    value: str = ""
    effect: str = ""  # "" only when removing: every effect of the key
    remove: bool = False

    def describe(self) -> str:
        if self.remove:
            return f"{self.key}{':' + self.effect if self.effect else ''}-"
        return f"{self.key}{'=' + self.value if self.value else ''}:{self.effect}"


@dataclass(frozen=True)
class TaintNodes:
    """The `taint` action: `- taint: {nodes: [kind-worker], taints: ["dedicated=gpu:NoExecute"]}`."""

    nodes: tuple[str, ...]
    changes: tuple[TaintChange, ...]
    overwrite: bool = True  # the shell asks for --overwrite as kubectl does


def parse_taint(text: str) -> TaintChange:
    """kubectl's taint syntax; ValueError with kubectl's kind of message on bad input."""
    if len(text) > 400:
        raise ValueError("invalid taint spec: longer than 400 characters")
    remove = text.endswith("-")
    body = text[:-1] if remove else text
    key_value, _, effect = body.partition(":")
    key, eq, value = key_value.partition("=")
    if remove and eq:
        raise ValueError(f"invalid taint spec: {text[:60]}: a removal names key[:Effect]-, no value")
    if not remove and not effect:
        raise ValueError(f"invalid taint spec: {text[:60]}: expected key=value:Effect")
    if effect and effect not in EFFECTS:
        raise ValueError(f"invalid taint effect: {effect[:40]}, unsupported taint effect (one of {', '.join(EFFECTS)})")
    problem = label_key_error(key) if key else "a taint needs a key"
    if problem is None and value:
        problem = label_value_error(value)
    if problem is not None:
        raise ValueError(f"invalid taint spec: {text[:60]}: {problem}")
    return TaintChange(key, value, effect, remove)


def retaint(cluster: ClusterSpec, action: TaintNodes, source: str = "experiment") -> ClusterSpec:
    """The cluster with the nodes' taints changed, as `kubectl taint` changes them."""
    known = {n.name for n in cluster.nodes}

    def fail(message: str) -> SpecError:
        return SpecError([Problem(source, "taint", message)])

    unknown = [n for n in action.nodes if n not in known]
    if unknown:
        raise fail(f"no node named {unknown[0][:60]!r} (known: {', '.join(sorted(known))})")
    nodes = []
    for node in cluster.nodes:
        if node.name not in action.nodes:
            nodes.append(node)
            continue
        taints = list(node.taints)
        for change in action.changes:
            same = [t for t in taints if t.key == change.key and (not change.effect or t.effect == change.effect)]
            if change.remove:
                if not same:
                    raise fail(f"taint {change.describe()[:-1]!r} not found on node {node.name}")
                taints = [t for t in taints if t not in same]
                continue
            if same and not action.overwrite and any(t.value != change.value for t in same):
                raise fail(
                    f"node {node.name} already has {change.effect} taint(s) with same effect(s) and --overwrite is false"
                )
            taints = [t for t in taints if t not in same] + [Taint(change.key, change.value, change.effect)]
        nodes.append(dataclasses.replace(node, taints=tuple(taints)))
    return dataclasses.replace(cluster, nodes=tuple(nodes))


def _template_of(wishes: list[Desired], owner: str, namespace: str, name: str) -> PodTemplate | None:
    for w in wishes:
        if w.namespace == namespace and w.owner == owner and (owner or w.base == name):
            return w.template
    return None


def evictions(cluster: ClusterSpec, manifests: Manifests, plan: Plan) -> list[tuple[int, str]]:
    """(seconds after the taint, pod full name) for every pod the taint manager evicts from the
    nodes' NoExecute taints, soonest first (0: at once)."""
    nodes = {n.name: n for n in cluster.nodes}
    wishes = desired_pods(with_system(cluster, manifests) if plan.system else manifests)
    out = []
    for pod in plan.pods:
        node = nodes.get(pod.node)
        if node is None or not any(t.effect == "NoExecute" for t in node.taints):
            continue
        template = _template_of(wishes, pod.owner, pod.namespace, pod.name)
        if template is None:
            continue
        evicted = eviction(node, template)
        if evicted is not None:
            out.append((evicted.after, pod.full_name))
    return sorted(out)


def settle(cluster: ClusterSpec, manifests: Manifests, plan: Plan) -> tuple[Manifests, Plan]:
    """The state once the taint manager is done, every timed eviction included (the pre-run
    check's view; the runner plays them in time): `cluster` is the retainted cluster."""
    plan = replan(cluster, manifests, plan.seed, prev=plan)
    doomed = [name for _, name in evictions(cluster, manifests, plan)]
    if doomed:
        manifests, plan = delete_pods(cluster, manifests, plan, doomed)
    return manifests, plan
