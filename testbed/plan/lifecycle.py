"""Fold pods' lifecycle into the desired state (pure; plan/, issue 19).

testbed/lifecycle/sim.py says, at each moment, which pods exist, which are not Ready, which are
terminating or have exited, what the EndpointSlice controller has written and what each node's
kube-proxy has synced. `with_views` makes the Plan of that moment: its pods are the ones that
exist (terminating ones included: their sandboxes stay, the agent serves them until they exit),
its EndpointSlices are the controller's (conditions ready, serving, terminating), and
`conditions` carries the rest for emu/'s controllers. Pods are looked up by name among every
pod the change has known (`known`): a node's kube-proxy may still hold an endpoint whose pod
is gone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping, Sequence

from ..lifecycle.sim import View
from ..spec.lifecycle import PodLifecycle
from ..spec.model import Manifests
from .build import desired_pods
from .conditions import PodConditions
from .dualstack import with_known_pods
from .model import Plan, PodPlan
from .service_model import ServicesPlan
from .services import update_endpoints


def services_for(services: ServicesPlan, view: View, known: Mapping[str, PodPlan]) -> ServicesPlan:
    """The EndpointSlices of `view`: its pods, with their conditions."""
    pods = [known[name] for name in sorted(view.present) if name in known]
    pods.sort(key=lambda p: p.full_name)
    return update_endpoints(services, pods, not_ready=view.not_ready, terminating=view.terminating)


def with_views(
    plan: Plan,
    api: View,
    slices: View,
    proxies: Mapping[str, View],
    known: Mapping[str, PodPlan],
) -> Plan:
    """`plan` (whose pods are what the owners want now, as replan made them) at this moment:
    pods the API still has (terminating ones added back), slices as written, each node's view."""
    pods = list(plan.pods)
    names = {p.full_name for p in pods}
    pods += [known[n] for n in sorted(api.present) if n not in names and n in known]
    pods = [p for p in pods if p.full_name in api.present or p.full_name not in known]
    if plan.services is None:
        return dataclasses.replace(plan, pods=tuple(pods))
    services = services_for(plan.services, slices, known)
    views = {node: services_for(plan.services, v, known) for node, v in proxies.items() if v != slices}
    conditions = PodConditions(api.not_ready, api.terminating, api.exited, views)
    plan = with_known_pods(plan, known.values())  # dual-stack: their IPv6 endpoints too
    return dataclasses.replace(plan, pods=tuple(pods), services=services, conditions=conditions)


def nodes_lost(plan: Plan, nodes: Collection[str], evicted: Sequence[PodPlan] = ()) -> Plan:
    """`plan` as the control plane publishes it while `nodes` do not report (a node-down fault;
    lifecycle/sim.py's `set_node_ready(node, False)` reaches the same conditions in time): the
    node lifecycle controller marked their pods not Ready (endpoints ready=false, serving=false);
    the pods the taint manager `evicted` from them are Terminating, as long as no kubelet
    confirms their end (ready=false, serving=false, terminating=true), while their
    replacements, already in `plan`, run elsewhere. The pods of `plan` stay as they are."""
    if plan.services is None or (not nodes and not evicted):
        return plan
    names = {p.full_name for p in plan.pods}
    evicted = [p for p in evicted if p.full_name not in names]  # a StatefulSet's replacement keeps its name
    known = {p.full_name: p for p in (*plan.pods, *evicted)}
    gone = frozenset(p.full_name for p in evicted)
    lost = frozenset(p.full_name for p in plan.pods if p.node in nodes) | gone
    view = View(frozenset(known), lost, gone)
    old = plan.conditions or PodConditions()  # a paced run's own conditions stay
    conditions = PodConditions(old.not_ready | lost, old.terminating | gone, old.exited, old.proxy_views)
    services = services_for(plan.services, view, known)
    plan = with_known_pods(plan, evicted)  # dual-stack: the evicted pods' IPv6 endpoints too
    return dataclasses.replace(plan, services=services, conditions=conditions)


def known_pods(plans: Iterable[Plan]) -> dict[str, PodPlan]:
    """Every pod of these plans by full name (the later plan's wins)."""
    return {p.full_name: p for plan in plans for p in plan.pods}


def owner_lifecycles(manifests: Manifests) -> dict[tuple[str, str], tuple[PodLifecycle, float]]:
    """(namespace, owner) -> the lifecycle its pods get and its minReadySeconds; a bare pod's
    owner is "" and is keyed by (namespace, "Pod/<name>")."""
    out: dict[tuple[str, str], tuple[PodLifecycle, float]] = {}
    for p in manifests.pods:
        out[(p.ref.namespace, f"Pod/{p.ref.name}")] = (p.template.lifecycle, 0.0)
    wishes = desired_pods(manifests)[len(manifests.pods) :]
    for wish, wl in zip(wishes, manifests.workloads):
        out[(wish.namespace, wish.owner)] = (wish.template.lifecycle, float(wl.min_ready_seconds))
    return out


def lifecycle_key(pod: PodPlan) -> tuple[str, str]:
    """The owner_lifecycles key of a pod."""
    return (pod.namespace, pod.owner or f"Pod/{pod.name}")
