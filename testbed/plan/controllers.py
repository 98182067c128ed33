"""What the StatefulSet, DaemonSet, Job and CronJob controllers want (pure, part of plan/).

build.py's reconcile works on wishes (`Desired`): `count` pods of a template for an owner.
Deployments, ReplicaSets and bare pods need nothing more; these four controllers add:

- StatefulSet: fixed pod names <name>-0..N-1 (`Desired.names`, in creation order), each pod
  with hostname = its name, subdomain = serviceName (hence the DNS name
  <pod>.<service>.<ns>.svc.cluster.local, plan/dns.py) and the labels the controller sets
  (statefulset.kubernetes.io/pod-name, apps.kubernetes.io/pod-index). A pod that goes is
  recreated with the same name (and a new UID and IP); scaling down removes the highest
  ordinals, scaling up adds the lowest missing ones first.
- DaemonSet: one pod per eligible node (`Desired.nodes`), eligibility being the scheduler's
  own filters (plan/scheduler.unfit_reason: nodeSelector, affinity, taints and tolerations —
  so the control-plane only when its taint is tolerated), re-evaluated at every reconcile, so
  a relabelled node gains or loses its daemon pod. Pods are bound to their node, as the
  DaemonSet controller's node affinity does, and named <name>-<5 random chars>.
- Job: min(parallelism, completions) pods while it runs, none once complete
  (experiment/jobs.py decides when: at the end of the step it started in).
- CronJob: nothing until triggered (it becomes a Job).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..errors import Problem, SpecError
from ..spec.model import Manifests, NodeSpec, PodTemplate, Workload
from ..spec.workloads import MAX_PODS
from .naming import template_hash
from .scheduler import unfit_reason

if TYPE_CHECKING:  # build.py defines Desired and imports this module
    from .build import Desired

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"


def count_and_names(wl: Workload) -> tuple[int, tuple[str, ...], bool]:
    """(pods wanted, fixed names, one pod per eligible node) for a workload of these kinds."""
    kind, fields = wl.ref.kind, wl.controller
    if kind == "StatefulSet":
        return wl.replicas, tuple(f"{wl.ref.name}-{i}" for i in range(wl.replicas)), False
    if kind == "DaemonSet":
        return 0, (), True
    if kind == "CronJob" or (fields is not None and fields.complete):
        return 0, (), False
    return wl.replicas, (), False


def service_name(wl: Workload) -> str:
    return wl.controller.service_name if wl.controller is not None else ""


def with_nodes(wish: Desired, nodes: Sequence[NodeSpec]) -> Desired:
    """A DaemonSet's wish made concrete: the nodes that take its template, now."""
    if not wish.per_node:
        return wish
    eligible = tuple(n.name for n in nodes if unfit_reason(n, wish.template) is None)
    return dataclasses.replace(wish, nodes=eligible, count=len(eligible))


def keeps(wish: Desired, name: str, node: str, labels: Mapping[str, str], taken_nodes: set[str]) -> bool:
    """Whether a live pod of this owner still fits its wish (a StatefulSet ordinal still wanted,
    a daemon pod on a node still eligible and not already served, made from the current template:
    a changed template recreates the pod, under the same name for a StatefulSet)."""
    if labels.get(REVISION_LABEL) != revision(wish):
        return False
    if wish.names and name not in wish.names:
        return False
    if wish.per_node:
        if node not in wish.nodes or node in taken_nodes:
            return False
        taken_nodes.add(node)
    return True


def slots(wish: Desired, have: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The pods to create, as (fixed name or "", fixed node or ""), given the kept pods'
    (name, node): StatefulSet ordinals in order, one per uncovered node, or plain counts."""
    if wish.names:
        names = {n for n, _ in have}
        return [(n, "") for n in wish.names if n not in names]
    if wish.per_node:
        covered = {node for _, node in have}
        return [("", n) for n in wish.nodes if n not in covered]
    return [("", "")] * max(0, wish.count - len(have))


def revision(wish: Desired) -> str:
    """controller-revision-hash: <name>-<hash of the template>, as both controllers label pods."""
    return f"{wish.base}-{template_hash(wish.template)}"


def pod_template(wish: Desired, name: str) -> PodTemplate:
    """A StatefulSet pod's own template (its hostname, subdomain and identity labels), a daemon
    pod's; both carry the template's revision."""
    if not (wish.names or wish.per_node):
        return wish.template
    labels = {**wish.template.labels, REVISION_LABEL: revision(wish)}
    if wish.per_node:
        return dataclasses.replace(wish.template, labels=labels)
    ordinal = name.rsplit("-", 1)[1]
    return dataclasses.replace(
        wish.template,
        hostname=name,
        subdomain=wish.service_name or wish.template.subdomain,
        labels={**labels, POD_NAME_LABEL: name, POD_INDEX_LABEL: ordinal},
    )


def check_bound(wishes: Sequence[Desired], manifests: Manifests) -> None:
    """DaemonSets multiply with the nodes, which spec/ does not know: the cluster's pod bound
    (spec/workloads.MAX_PODS) is checked here, once their nodes are known, before any pod is made."""
    daemons = [w for w in wishes if w.per_node]
    total = sum(w.count for w in wishes)
    if not daemons or total <= MAX_PODS:
        return
    big = max(daemons, key=lambda w: w.count)
    ref = next(
        (
            w.ref
            for w in manifests.workloads
            if (w.ref.kind, w.ref.namespace, w.ref.name) == ("DaemonSet", big.namespace, big.base)
        ),
        None,
    )
    where = (ref.file, str(ref)) if ref is not None else ("", f"DaemonSet {big.namespace}/{big.base}")
    raise SpecError(
        [
            Problem(
                where[0],
                "spec.template",
                f"{total:,} pods in all with the DaemonSets' pods on every eligible node: "
                f"the testbed emulates at most {MAX_PODS:,}",
                where[1],
            )
        ]
    )
