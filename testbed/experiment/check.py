"""Validate a decoded experiment against its cluster, step by step, before anything is built (pure).

Sits after experiment/load.py's decoding and before experiment/run.py: it loads the topology,
the manifests and every file the steps name, plans the cluster, and then replays the steps'
actions exactly as the runner will (plan.build.replan is pure and seeded, so the pods, names
and Services it sees at each step are those the run will have). At each step it checks that
every action finds what it acts on and every probe group selects a sender and a target and
expands to at least one probe: a typo (`names: [web-typo]`, an unknown namespace, Service,
port name or node, `via: nodePort` on a ClusterIP Service) is an error naming the experiment
file, the step, the probe group and the field, never a group that silently vanishes.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

from ..errors import Problem, SpecError, excerpt, shorten
from ..faults.lifecycle import simulate
from ..faults.model import Fault, FaultState, Recover, problems, resolve
from ..plan.build import plan_cluster, replan
from ..plan.model import Plan
from ..spec.decode import Problems
from ..spec.model import ClusterSpec, Manifests
from ..spec.topology import load_topology
from ..spec.workloads import MAX_PODS, load_manifests, total_pods
from .changes import Apply, Delete, DeletePods, Label, LabelNamespace, Scale, SetProbe, apply_action
from .expand import expand, select_pods, sources
from .jobs import finish as finish_jobs
from .model import Endpoints, Experiment, PodSelection, ProbeGroup
from .rollout import Rollout, counts, find_deployment, new_template_workload, updated, wishes_between

Add = Callable[[str, str], None]  # (field path, message)
# Probes one group may send in one step (all rounds): the 100-pod all-pairs benchmark sends
# 9,900; a group of 10,000 pods to 10,000 pods would be 10^8 before any repeat.
MAX_PROBES = 1_000_000


def check_experiment(exp: Experiment) -> None:
    """Raise SpecError with every problem found, or return when the experiment can run."""
    problems = Problems()
    top = f"Experiment {exp.name}"
    _check_file(problems, exp, exp.topology, "spec.topology", top)
    for i, path in enumerate(exp.manifests):
        _check_file(problems, exp, path, f"spec.manifests[{i}]", top)
    for i, step in enumerate(exp.steps):
        for k, action in enumerate(step.actions):
            verb = "apply" if isinstance(action, Apply) else "delete"
            for j, path in enumerate(getattr(action, "files", ())):
                _check_file(problems, exp, path, f"spec.steps[{i}].actions[{k}].{verb}[{j}]", _step_doc(exp, step))
    problems.raise_if_any()
    cluster = load_topology(exp.topology)  # their own problems name their own files
    manifests = load_manifests(exp.manifests)
    plan = plan_cluster(cluster, manifests, seed=exp.seed)
    history: dict[tuple[str, str], Any] = {}
    for i, step in enumerate(exp.steps):
        where = _step_doc(exp, step)
        base = f"spec.steps[{i}]"
        if step.during is not None:  # planned once, before the step's actions (experiment/run.py)
            for j, group in enumerate(step.during.probes):
                _check_group(
                    group,
                    plan,
                    manifests,
                    _adder(problems, exp, f"{base}.during.probes[{j}]", f"{where}, probe group {excerpt(group.name)}"),
                )
        for k, action in enumerate(step.actions):
            add = _adder(problems, exp, f"{base}.actions[{k}]", where)
            before = len(problems.items)
            try:
                _check_action(action, plan, manifests, history, add)
                if len(problems.items) > before:
                    problems.raise_if_any()  # the later steps' state is unknown: stop here
                manifests, plan = _simulate(action, cluster, manifests, plan, history, exp.file)
            except SpecError as exc:  # e.g. an apply file's own problems: they name that file
                if exc.problems is not tuple(problems.items):
                    problems.items = list(
                        dict.fromkeys([*problems.items, *_located(exc, exp, f"{base}.actions[{k}]", where)])
                    )
                problems.raise_if_any()
            if total_pods(manifests) > MAX_PODS:
                add("", f"{total_pods(manifests):,} pods after this action: the testbed emulates at most {MAX_PODS:,}")
                problems.raise_if_any()
        for j, group in enumerate(step.probes):
            _check_group(
                group,
                plan,
                manifests,
                _adder(problems, exp, f"{base}.probes[{j}]", f"{where}, probe group {excerpt(group.name)}"),
            )
        for c, capture in enumerate(step.captures):
            _check_capture(capture.at, capture.interface, plan, _adder(problems, exp, f"{base}.capture[{c}]", where))
        finished = finish_jobs(cluster, manifests, plan)  # the step's Jobs complete, as the runner has them
        if finished is not None:
            manifests, plan, _ = finished
    problems.raise_if_any()


def _step_doc(exp: Experiment, step: Any) -> str:
    return f"Experiment {exp.name}, step {excerpt(step.name)}"


def _adder(problems: Problems, exp: Experiment, base: str, document: str) -> Add:
    def add(field: str, message: str) -> None:
        path = f"{base}.{field}" if field else base
        problems.add(Problem(exp.file, path, message, document))

    return add


def _check_file(problems: Problems, exp: Experiment, path: str, field: str, document: str) -> None:
    """A file the experiment names exists and is a regular file (named as the experiment wrote it)."""
    shown = os.path.relpath(path, os.path.dirname(os.path.abspath(exp.file)))
    if not os.path.exists(path):
        problems.add(Problem(exp.file, field, f"no such file {excerpt(shown)}", document))
    elif not os.path.isfile(path):
        problems.add(Problem(exp.file, field, f"{excerpt(shown)} is not a regular file (a directory?)", document))
    elif not os.access(path, os.R_OK):
        problems.add(Problem(exp.file, field, f"{excerpt(shown)} is not readable", document))


def _located(exc: SpecError, exp: Experiment, path: str, document: str) -> list[Problem]:
    """Problems raised while replaying an action: those of a named file stand as they are; the
    others (raised with a placeholder source) get the experiment file and the action's path."""
    out = []
    for p in exc.problems:
        if p.file in ("experiment", exp.file, "") or not os.path.exists(p.file):
            out.append(Problem(exp.file, path, p.message, document))
        else:
            out.append(p)
    return out


def _simulate(
    action: Any,
    cluster: ClusterSpec,
    manifests: Manifests,
    plan: Plan,
    history: dict[tuple[str, str], Any],
    source: str,
) -> tuple[Manifests, Plan]:
    """The state after `action`, computed as experiment/run.py's runner computes it."""
    if isinstance(action, Rollout):  # every intermediate state of the rolling update, in turn
        old = find_deployment(manifests, action, source)
        new = new_template_workload(old, action, history)
        history[(old.ref.namespace, old.ref.name)] = old.template
        after = updated(manifests, old, new)
        for old_count, new_count in counts(old.replicas, action.max_surge, action.max_unavailable)[1:]:
            wishes = wishes_between(manifests, after, (old.ref.namespace, old.ref.name), old_count, new_count)
            plan = replan(cluster, after, plan.seed, prev=plan, desired=wishes)
        return after, plan
    if isinstance(action, Fault):
        down = [f.node for f in _faults(history).active.values() if f.kind == "node-down" and f is not action]
        return simulate(resolve(action, plan), cluster, manifests, plan, down)
    if isinstance(action, Recover):
        return manifests, plan
    return apply_action(action, cluster, manifests, plan, source)


def _faults(history: dict[tuple[str, str], Any]) -> FaultState:
    """The faults active at this step (kept beside the rollout history)."""
    state = history.setdefault(("", "faults"), FaultState())
    assert isinstance(state, FaultState)
    return state


def _check_fault(action: Fault | Recover, plan: Plan, history: dict[tuple[str, str], Any], add: Add) -> None:
    """A fault's target must exist at its step; a fault is injected once and recovered once."""
    verb = "fault" if isinstance(action, Fault) else "recover"
    fault = action if isinstance(action, Fault) else action.fault
    if fault is not None:
        bad = problems(fault, plan, recovering=isinstance(action, Recover))
        for field, message in bad:
            add(f"{verb}.{field}".rstrip("."), message)
        if bad:
            return
    if isinstance(action, Fault):
        error = _faults(history).inject(resolve(action, plan))
    else:
        recover = Recover(resolve(action.fault, plan)) if action.fault is not None else action
        error = _faults(history).recover(recover)[1]
    if error:
        add(verb, error)


def _check_action(action: Any, plan: Plan, manifests: Manifests, history: dict[tuple[str, str], Any], add: Add) -> None:
    """Each action must find what it acts on at its step."""
    if isinstance(action, Scale):
        if not any(
            (w.ref.kind, w.ref.namespace, w.ref.name) == (action.kind, action.namespace, action.name)
            for w in manifests.workloads
        ):
            add(
                f"scale.{action.kind.lower()}",
                f"no {action.kind} {_s(action.namespace)}/{_s(action.name)} at this step"
                + _known(f"{w.ref.kind} {w.ref.namespace}/{w.ref.name}" for w in manifests.workloads),
            )
    elif isinstance(action, DeletePods):
        _check_pods(action.pods, plan, manifests, "deletePods", add)
    elif isinstance(action, SetProbe):
        _check_pods(action.pods, plan, manifests, "probe.pods", add)
    elif isinstance(action, Label):
        _check_pods(action.pods, plan, manifests, "label.pods", add)
    elif isinstance(action, LabelNamespace):
        if action.namespace not in manifests.namespace_names():
            add(
                "label.namespace",
                f"no namespace {excerpt(action.namespace)} at this step" + _known(sorted(manifests.namespace_names())),
            )
    elif isinstance(action, Rollout):
        verb = "rollback" if action.undo else "rollout"
        key = (action.namespace, action.deployment)
        if not any((w.ref.kind, w.ref.namespace, w.ref.name) == ("Deployment", *key) for w in manifests.workloads):
            add(
                f"{verb}.deployment",
                f"no Deployment {_s(action.namespace)}/{_s(action.deployment)} at this step"
                + _known(f"{w.ref.namespace}/{w.ref.name}" for w in manifests.workloads if w.ref.kind == "Deployment"),
            )
        elif action.undo and key not in history:
            add(
                verb,
                f"Deployment {action.namespace}/{action.deployment} has no previous revision at this step: "
                "a rollback needs an earlier rollout",
            )
    elif isinstance(action, (Fault, Recover)):
        _check_fault(action, plan, history, add)
    elif isinstance(action, Delete):
        present = {
            (o.ref.kind, o.ref.namespace, o.ref.name)
            for o in (
                *manifests.pods,
                *manifests.workloads,
                *manifests.services,
                *manifests.policies,
                *manifests.ingresses,
                *manifests.cluster_policies,
            )
            if getattr(o, "ref", None) is not None
        }
        present |= {("Namespace", "", n.name) for n in manifests.namespaces}
        gone = load_manifests(action.files, namespaces=manifests.namespace_names())
        for o in (*gone.pods, *gone.workloads, *gone.services, *gone.policies, *gone.ingresses, *gone.cluster_policies):
            ref = getattr(o, "ref", None)
            if ref is not None and (ref.kind, ref.namespace, ref.name) not in present:
                add(
                    "delete",
                    f"{ref.kind} {ref.namespace + '/' if ref.namespace else ''}{ref.name} "
                    f"(from {os.path.basename(ref.file)}) does not exist at this step",
                )


def _s(name: str) -> str:
    """A user-given name inside a longer reference (ns/name), cut short."""
    return shorten(name, 60)


def _known(names: Any, limit: int = 6) -> str:
    items = list(dict.fromkeys(names))
    if not items:
        return " (there are none)"
    shown = ", ".join(excerpt(str(n))[1:-1] for n in items[:limit])
    return f" (known: {shown}{', ...' if len(items) > limit else ''})"


def _check_pods(sel: PodSelection, plan: Plan, manifests: Manifests, field: str, add: Add) -> None:
    """Every name, the namespace and the labels of a pod selection select something at this step."""
    found = True
    if sel.namespace is not None and sel.namespace not in manifests.namespace_names():
        add(
            f"{field}.namespace",
            f"no namespace {excerpt(sel.namespace)} at this step" + _known(sorted(manifests.namespace_names())),
        )
        return
    in_ns = [p for p in plan.pods if sel.namespace is None or p.namespace == sel.namespace]
    for n, name in enumerate(sel.names):
        if not any(p.name == name or p.full_name == name for p in in_ns):
            found = False
            where = f" in namespace {sel.namespace}" if sel.namespace is not None else ""
            add(
                f"{field}.names[{n}]",
                f"no pod named {excerpt(name)}{where} at this step"
                + _known(p.name if sel.namespace is not None else p.full_name for p in in_ns),
            )
    if found and not select_pods(plan, sel):
        what = []
        if sel.names:
            what.append("these names")
        if not sel.selector.is_empty():
            what.append(f"labels `{excerpt(str(sel.selector))[1:-1]}`")
        if sel.namespace is not None:
            what.append(f"namespace {sel.namespace}")
        hint = "" if sel.namespace is not None else " (kube-system's pods are selected only with `namespace`)"
        add(field, f"selects no pod at this step: {' and '.join(what) or 'no pods'} match nothing{hint}")


def _check_nodes_hosts(names: tuple[str, ...], known: list[str], kind: str, field: str, add: Add) -> None:
    if not known:
        add(field, f"the cluster has no {kind}")
    for n, name in enumerate(names):
        if name not in known:
            add(
                f"{field}[{n}]", f"no {kind[:-1] if kind.endswith('s') else kind} named {excerpt(name)}" + _known(known)
            )


def _check_endpoints(ep: Endpoints, side: str, plan: Plan, manifests: Manifests, add: Add) -> None:
    if ep.pods is not None:
        _check_pods(ep.pods, plan, manifests, f"{side}.pods", add)
    elif ep.nodes is not None:
        _check_nodes_hosts(ep.nodes, [n.name for n in plan.nodes], "nodes", f"{side}.nodes", add)
    elif ep.hosts is not None:
        _check_nodes_hosts(ep.hosts, [x.name for x in plan.externals], "external hosts", f"{side}.hosts", add)


def _check_service(group: ProbeGroup, plan: Plan, add: Add) -> bool:
    target = group.target.service
    assert target is not None
    svc = plan.services.find(f"{target.namespace}/{target.name}") if plan.services else None
    if svc is None:
        add(
            "to.service.name",
            f"no Service {_s(target.namespace)}/{_s(target.name)} at this step"
            + _known(
                f"{s.namespace}/{s.name}"
                for s in (plan.services.services if plan.services else ())
                if s.namespace != "kube-system"
            ),
        )
        return False
    ok = True
    for n, name in enumerate(target.nodes):
        if name not in {x.name for x in plan.nodes}:
            add(f"to.service.nodes[{n}]", f"no node named {excerpt(name)}" + _known(x.name for x in plan.nodes))
            ok = False
    if target.via == "nodePort" and not any(p.node_port for p in svc.ports):
        add("to.service.via", f"Service {svc.namespace}/{svc.name} is of type {svc.type}: it has no NodePort")
        ok = False
    if target.via == "loadBalancer" and not svc.load_balancer_ingress:
        add(
            "to.service.via",
            f"Service {svc.namespace}/{svc.name} is of type {svc.type}: it has no load-balancer address",
        )
        ok = False
    if target.hostname:  # <hostname>.<service>: a record of a headless Service's endpoint (plan/dns.py)
        name = f"{target.hostname}.{svc.name}.{svc.namespace}.svc.cluster.local"
        if svc.cluster_ip != "None" or name not in {n for n, _ in plan.dns_records[0]}:
            add(
                "to.service.hostname",
                f"no DNS name {excerpt(name)} at this step: a headless Service's endpoint with that "
                "hostname and subdomain has one (a StatefulSet's pods, by their names)",
            )
            ok = False
    elif target.via in ("clusterIP", "dns") and svc.cluster_ip in ("", "None"):
        kind = "ExternalName" if svc.type == "ExternalName" else "headless"
        add("to.service.via", f"Service {svc.namespace}/{svc.name} is {kind}: it has no ClusterIP to probe")
        ok = False
    for n, port in enumerate(group.ports):
        if not any(p.port == port or p.name == port for p in svc.ports):
            add(
                f"ports[{n}]",
                f"Service {svc.namespace}/{svc.name} has no port {excerpt(port)}"
                + _known(f"{p.name or p.port}" for p in svc.ports),
            )
            ok = False
    return ok


def _check_group(group: ProbeGroup, plan: Plan, manifests: Manifests, add: Add) -> None:
    """A group selects a sender and a target and expands to at least one probe at its step."""
    problems: list[tuple[str, str]] = []

    def note(field: str, message: str) -> None:
        problems.append((field, message))
        add(field, message)

    _check_endpoints(group.source, "from", plan, manifests, note)
    target = group.target
    if target.service is not None:
        _check_service(group, plan, note)
    elif target.hosts is not None:
        _check_nodes_hosts(target.hosts, [x.name for x in plan.externals], "external hosts", "to.hosts", note)
    elif target.host_port is not None:
        _check_pods(target.host_port, plan, manifests, "to.hostPort", note)
    elif target.pods is not None:
        _check_pods(target.pods, plan, manifests, "to.pods", note)
        if not problems:
            pods = select_pods(plan, target.pods)
            for n, port in enumerate(group.ports):
                if isinstance(port, str) and not any(q.name == port for p in pods for q in p.ports):
                    note(
                        f"ports[{n}]",
                        f"no selected pod declares a port named {excerpt(port)}"
                        + _known(q.name for p in pods for q in p.ports if q.name),
                    )
    if problems:
        return
    senders = len(sources(plan, group.source))
    ports = max(1, len(group.ports)) * max(1, len(group.protocols))
    if target.pods is not None:
        chosen = select_pods(plan, target.pods)
        receivers = len(chosen)
        if not group.ports:
            ports = max([len(p.ports) for p in chosen] + [1])
    elif target.hosts is not None:
        receivers = len([x for x in plan.externals if not target.hosts or x.name in target.hosts])
    else:
        receivers = max(1, len(plan.nodes))  # a Service: at most one destination per node (NodePort)
    if senders * receivers * ports * group.repeat > MAX_PROBES:
        add(
            "",
            f"would send about {senders * receivers * ports * group.repeat:,} probes ({senders:,} senders x "
            f"{receivers:,} targets x repeat {group.repeat:,}): at most {MAX_PROBES:,} per group",
        )
        return
    # Everything it names exists: it must still send something (one round is enough to know).
    light = dataclasses.replace(group, repeat=1, expect=dataclasses.replace(group.expect, outcome="any"))
    try:
        probes = expand(plan, light)
    except SpecError as exc:
        for p in exc.problems:
            add("", p.message)
        return
    if not probes:
        add(
            "",
            "sends no probe at this step: no port of the selected targets matches its ports and protocols"
            if group.ports or group.protocols
            else "sends no probe at this step: the only target is the sender itself, or the targets declare no port",
        )


# Interfaces every namespace has; nodes also have their bridge, VTEP and pods' host-side veths.
_ALWAYS = ("eth0", "lo", "any")


def _check_capture(at: str, interface: str, plan: Plan, add: Add) -> None:
    pod = plan.find_pod(at)
    nodes = {n.name: n for n in plan.nodes}
    hosts = {x.name for x in plan.externals}
    if pod is None and at not in nodes and at not in hosts:
        add(
            "at",
            f"no pod, node or external host named {excerpt(at)} at this step (a pod name must be "
            "unique, or given as namespace/name)",
        )
        return
    known = set(_ALWAYS)
    if at in nodes and pod is None:
        known |= {p.host_veth for p in plan.pods if p.node == at}
        known |= {"cni0"} if plan.routing != "bgp" else set()
        known |= {"flannel.1"} if plan.routing == "vxlan" else set()
    if interface not in known:
        add(
            "interface",
            f"{excerpt(interface)} is not an interface of {at}"
            + _known(sorted(known - {p.host_veth for p in plan.pods})),
        )
