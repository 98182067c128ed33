"""The node lifecycle controller's answer to a dead node, as pure re-planning.

What kube-controller-manager does when a node stops reporting (pkg/controller/nodelifecycle):
after --node-monitor-grace-period the node's Ready condition becomes Unknown (NotReady) and it
is tainted node.kubernetes.io/unreachable (NoSchedule and NoExecute); the EndpointSlice
controller marks its pods' endpoints not ready, so kube-proxy stops sending them traffic; the
taint manager evicts each pod once its NoExecute toleration runs out (300 s by default, added to
every pod by the DefaultTolerationSeconds admission plugin), and the pods' controllers create
replacements, which the scheduler puts on other nodes (the taint keeps them off this one).
When the node reports again, the taints go and its remaining pods' endpoints are ready again.

`endpoints_not_ready_on` is the one place endpoints of a node become not ready: a small
function so that the pod readiness model (issue 19) can take it over.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from ..plan.build import replan
from ..plan.model import Plan
from ..plan.services import update_endpoints
from ..spec.model import ClusterSpec, Manifests, Taint
from .model import Fault, find_pod

UNREACHABLE = "node.kubernetes.io/unreachable"
UNREACHABLE_TAINTS = (Taint(UNREACHABLE, "", "NoSchedule"), Taint(UNREACHABLE, "", "NoExecute"))


def endpoints_not_ready_on(plan: Plan, nodes: Collection[str]) -> Plan:
    """The same Plan with the endpoints of every pod on `nodes` not ready (EndpointSlice
    conditions ready=false, serving=false): kube-proxy leaves them out of its rules."""
    if plan.services is None or not nodes:
        return plan
    down = {p.full_name for p in plan.pods if p.node in nodes}
    return dataclasses.replace(plan, services=update_endpoints(plan.services, plan.pods, not_ready=down))


def tainted(cluster: ClusterSpec, node: str) -> ClusterSpec:
    """The cluster with `node` tainted unreachable (NoSchedule and NoExecute)."""
    nodes = tuple(
        dataclasses.replace(n, taints=n.taints + tuple(t for t in UNREACHABLE_TAINTS if t not in n.taints))
        if n.name == node
        else n
        for n in cluster.nodes
    )
    return dataclasses.replace(cluster, nodes=nodes)


def untainted(cluster: ClusterSpec, node: str) -> ClusterSpec:
    """The cluster with the unreachable taints of `node` removed (it reports again)."""
    nodes = tuple(
        dataclasses.replace(n, taints=tuple(t for t in n.taints if t.key != UNREACHABLE)) if n.name == node else n
        for n in cluster.nodes
    )
    return dataclasses.replace(cluster, nodes=nodes)


def evictable(plan: Plan, manifests: Manifests, node: str) -> list[str]:
    """Full names of the pods on `node` the taint manager evicts: all but those tolerating the
    unreachable NoExecute taint for ever (an explicit toleration has no tolerationSeconds here)."""
    bare = {(p.ref.namespace, p.ref.name): p.template for p in manifests.pods}
    out = []
    for pod in plan.pods_on(node):
        template = bare.get((pod.namespace, pod.name))
        if template is None and pod.owner:  # ReplicaSet/web-5d59d67564 belongs to Deployment web
            owner = pod.owner.split("/", 1)[1]
            template = next(
                (
                    w.template
                    for w in manifests.workloads
                    if w.ref.namespace == pod.namespace and (owner == w.ref.name or owner.startswith(w.ref.name + "-"))
                ),
                None,
            )
        tolerations = template.tolerations if template is not None else ()
        if not any(t.tolerates(UNREACHABLE_TAINTS[1]) for t in tolerations):
            out.append(pod.full_name)
    return sorted(out)


def evict(cluster: ClusterSpec, manifests: Manifests, plan: Plan, node: str) -> tuple[Manifests, Plan, list[str]]:
    """After the toleration ran out: the evictable pods are deleted (bare pods for good), their
    owners' replacements scheduled on the other nodes. `cluster` is the tainted cluster.
    Returns the new manifests, the new Plan (the remaining pods of `node` still not ready) and
    the evicted pods' full names."""
    doomed = evictable(plan, manifests, node)
    manifests, new = delete_pods(cluster, manifests, plan, doomed)
    return manifests, endpoints_not_ready_on(new, [node]), doomed


def delete_pods(
    cluster: ClusterSpec, manifests: Manifests, plan: Plan, full_names: Collection[str]
) -> tuple[Manifests, Plan]:
    """Pods deleted at once (an eviction, `kubectl delete pod --grace-period=0 --force`): bare
    pods are gone for good, owned ones replaced by their controller with new names and IPs."""
    doomed = set(full_names)
    deleted = frozenset(p.key for p in plan.pods if p.full_name in doomed)
    bare = {(p.namespace, p.name) for p in plan.pods if p.full_name in doomed and not p.owner}
    manifests = dataclasses.replace(
        manifests, pods=tuple(p for p in manifests.pods if (p.ref.namespace, p.ref.name) not in bare)
    )
    return manifests, replan(cluster, manifests, plan.seed, prev=plan, deleted=deleted)


def simulate(
    fault: Fault, cluster: ClusterSpec, manifests: Manifests, plan: Plan, down: Collection[str] = ()
) -> tuple[Manifests, Plan]:
    """The desired state after injecting `fault`, as emu/faults.py reaches it (for validation):
    a node-down that goes on to eviction moves its pods; a deleted pod is replaced. `down`:
    the nodes already down (tainted)."""
    for node in down:
        cluster = tainted(cluster, node)
    if fault.kind == "node-down":
        cluster = tainted(cluster, fault.node)
        if fault.evict:
            manifests, plan, _ = evict(cluster, manifests, plan, fault.node)
        return manifests, endpoints_not_ready_on(plan, [*down, fault.node])
    if fault.kind == "delete-pod":
        pod = find_pod(plan, fault.pod)
        if pod is not None:
            manifests, plan = delete_pods(cluster, manifests, plan, [pod.full_name])
    return manifests, plan
