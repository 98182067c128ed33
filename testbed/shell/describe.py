"""`kubectl describe` for the shell (pure): kubectl's "Key:  value" layout ending in Events.

Events are the shell's record of what it saw happen to the object (scheduled, IP assigned,
endpoints changed, policy applied), kept by shell/core.py as the cluster changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..experiment.jobs import completions
from ..plan.model import Plan
from ..views import describe_node, describe_pod
from .objects import Catalog, Obj

Event = tuple[str, str, str, str]  # (age, reason, from, message)


def _labels(labels: Any, indent: int = 14) -> str:
    items = [f"{k}={v}" for k, v in sorted(dict(labels).items())]
    return ("\n" + " " * indent).join(items) if items else "<none>"


def _events(events: Sequence[Event]) -> list[str]:
    if not events:
        return ["Events:            <none>"]
    rows = [("Type", "Reason", "Age", "From", "Message"), ("----", "------", "----", "----", "-------")]
    rows += [("Normal", reason, age, source, msg) for age, reason, source, msg in events]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return ["Events:"] + ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def describe(cat: Catalog, plan: Plan, obj: Obj, events: Sequence[Event]) -> str:
    pod = (
        next((p for p in plan.pods if p.namespace == obj.namespace and p.name == obj.name), None)
        if obj.plural == "pods"
        else None
    )
    if pod is not None:
        head = describe_pod(plan, pod).splitlines()
        head.insert(4, f"Annotations:  {_labels(obj.annotations)}")
    elif obj.plural == "nodes":
        head = describe_node(plan, obj.name).splitlines()
    else:
        body = obj.body()
        head = [f"Name:         {obj.name}"] + ([f"Namespace:    {obj.namespace}"] if obj.namespace else [])
        head.append(f"Labels:       {_labels(obj.labels)}")
        head.append(f"Annotations:  {_labels(obj.annotations)}")
        spec = body.get("spec", {})
        if obj.plural == "services":
            head += [
                f"Selector:     {_labels(spec.get('selector', {}))}",
                f"Type:         {spec.get('type')}",
                f"IP:           {spec.get('clusterIP') or '<none>'}",
            ]
            for q in spec.get("ports", []):
                head += [
                    f"Port:         {q.get('name', '<unset>')}  {q['port']}/{q['protocol']}",
                    f"TargetPort:   {q.get('targetPort')}/{q['protocol']}",
                ]
                if q.get("nodePort"):
                    head.append(f"NodePort:     {q.get('name', '<unset>')}  {q['nodePort']}/{q['protocol']}")
            ep = cat.find("endpoints", obj.namespace, obj.name)
            head.append(f"Endpoints:    {ep.cols[0] if ep else '<none>'}")
        elif obj.plural == "networkpolicies":
            pol = next(p for p in cat.manifests.policies if (p.ref.namespace, p.ref.name) == (obj.namespace, obj.name))
            head += [
                "Spec:",
                f"  PodSelector:     {pol.pod_selector if not pol.pod_selector.is_empty() else '<none> (Allowing the specific traffic to all pods in this namespace)'}",
            ]
            for kind, rules in (("Ingress", pol.ingress), ("Egress", pol.egress)):
                if kind not in pol.policy_types:
                    head.append(f"  Not affecting {kind} traffic")
                    continue
                head.append(
                    f"  Allowing {kind.lower()} traffic:"
                    if rules
                    else f"  Allowing {kind.lower()} traffic:\n    <none> (Selected pods are isolated for {kind.lower()} connectivity)"
                )
                word = "From" if kind == "Ingress" else "To"
                for r in rules:
                    ports = ", ".join(f"{p.port if p.port is not None else '<any>'}/{p.protocol}" for p in r.ports)
                    head.append(f"    To Port: {ports or '<any> (traffic allowed to all ports)'}")
                    head.append(f"    {word}:" + ("" if r.peers else " <any> (traffic not restricted by source)"))
                    for peer in r.peers:
                        if peer.pod_selector is not None:
                            head.append(f"      PodSelector: {peer.pod_selector}")
                        if peer.namespace_selector is not None:
                            head.append(f"      NamespaceSelector: {peer.namespace_selector}")
                        if peer.ip_block is not None:
                            head.append(f"      IPBlock:\n        CIDR: {peer.ip_block.cidr}")
                head.append("    ----------")
            head.append(f"  Policy Types: {', '.join(pol.policy_types)}")
        elif obj.plural in ("deployments", "replicasets", "statefulsets", "daemonsets", "replicationcontrollers"):
            st = body.get("status", {})
            selector = spec.get("selector", {}).get("matchLabels", {})
            head += [
                f"Selector:     {obj.wide[2] if len(obj.wide) > 2 else ','.join(f'{k}={v}' for k, v in selector.items())}",
                f"Replicas:     {spec.get('replicas')} desired | {st.get('replicas', 0)} updated | "
                f"{st.get('replicas', 0)} total | {st.get('readyReplicas', 0)} available | 0 unavailable",
                "Pod Template:",
                f"  Labels:  {_labels(spec.get('template', {}).get('metadata', {}).get('labels', {}), 11)}",
                "  Containers:",
            ] + [f"   {c['name']}:" for c in spec.get("template", {}).get("spec", {}).get("containers", [])]
            if obj.plural == "daemonsets":  # no replicas: its own counts follow (_controller_lines)
                head = [line for line in head if not line.startswith("Replicas:")]
            head += _controller_lines(cat, obj)
        elif obj.plural in ("jobs", "cronjobs"):
            head += _controller_lines(cat, obj)
        elif obj.plural == "endpointslices":  # kubectl's EndpointSliceDescriber, conditions included
            head.append(f"AddressType:  {body.get('addressType', 'IPv4')}")
            head += ["Ports:", "  Name     Port  Protocol", "  ----     ----  --------"]
            sl = next(
                x
                for x in (plan.services.slices if plan.services else ())
                if (x.namespace, x.name) == (obj.namespace, obj.name)
            )
            head += [f"  {p.name or '<unset>':<8} {p.port:<5} {p.protocol}" for p in sl.ports] or [
                "  <unset>  <unset>  <unset>"
            ]
            head.append("Endpoints:")
            for e in sl.endpoints:
                head += [
                    f"  - Addresses:  {e.ip}",
                    "    Conditions:",
                    f"      Ready:        {str(e.ready).lower()}",
                    f"      Serving:      {str(e.serving).lower()}",
                    f"      Terminating:  {str(e.terminating).lower()}",
                    f"    TargetRef:    Pod/{e.pod}" if e.pod else "    TargetRef:    <unset>",
                    f"    NodeName:     {e.node or '<unset>'}",
                ]
        elif obj.plural == "endpoints":
            head.append("Subsets:")
            for s in body.get("subsets", []):
                head.append("  Addresses:  " + (",".join(a["ip"] for a in s["addresses"]) or "<none>"))
                head.append("  Ports:      " + ", ".join(f"{p['port']}/{p['protocol']}" for p in s["ports"]))
        elif obj.plural == "ingresses":
            head.append(f"Ingress Class:  {obj.cols[0]}")
            if "defaultBackend" in spec:
                head.append(f"Default backend:  {spec['defaultBackend']}")
            head += ["Rules:", "  Host        Path  Backends", "  ----        ----  --------"]
            for r in spec.get("rules", []):
                head.append(f"  {r['host']}")
                head += [f"              {p['path']}   {p['backend']}" for p in r["paths"]]
        elif obj.plural == "pods":  # Pending: no node took it
            reason = body["status"]["conditions"][0]["message"]
            head += ["Node:         <none>", "Status:       Pending", "IP:           "]
            events = list(events) + [("0s", "FailedScheduling", "default-scheduler", reason)]
        elif obj.plural == "namespaces":
            head += ["Status:       Active", "", "No resource quota.", "", "No LimitRange resource."]
    return "\n".join(head + _events(events))


def _controller_lines(cat: Catalog, obj: Obj) -> list[str]:
    """What kubectl describe adds for StatefulSets, DaemonSets, Jobs and CronJobs."""
    w = next(
        (
            w
            for w in cat.manifests.workloads
            if (w.ref.kind, w.ref.namespace, w.ref.name) == (obj.kind, obj.namespace, obj.name)
        ),
        None,
    )
    if w is None or w.controller is None:
        return []
    f, n = w.controller, len(cat.pods_of(w.ref.kind, w.ref.namespace, w.ref.name))
    running = f"{n} Running / 0 Waiting / 0 Succeeded / 0 Failed"
    if obj.plural == "statefulsets":
        return [
            f"Service Name:        {f.service_name or '<none>'}",
            f"Pod Management Policy:  {f.pod_management}",
            f"Pods Status:         {running}",
        ]
    if obj.plural == "daemonsets":
        return [
            f"Node-Selector:       {','.join(f'{k}={v}' for k, v in sorted(w.template.node_selector.items())) or '<none>'}",
            f"Desired Number of Nodes Scheduled: {n}",
            f"Current Number of Nodes Scheduled: {n}",
            f"Pods Status:         {running}",
        ]
    if obj.plural == "jobs":
        done = completions(w).split("/")[0]
        lines = [
            f"Parallelism:         {f.parallelism}",
            f"Completions:         {f.completions if f.completions is not None else '<unset>'}",
            f"Active Deadline Seconds:  {f.active_deadline}s" if f.active_deadline else "",
            f"Pods Statuses:       {n} Active ({n} Ready) / {done} Succeeded / 0 Failed",
            f"Controlled By:       {f.owner}" if f.owner else "",
            "Pod Template:",
            f"  Labels:  {_labels(w.template.labels, 11)}",
        ]
        return [line for line in lines if line]
    return [
        f"Schedule:                      {f.schedule}",
        f"Suspend:                       {f.suspend}",
        f"Parallelism:                   {f.parallelism}",
        f"Completions:                   {f.completions if f.completions is not None else '<unset>'}",
        "Last Schedule Time:            <unset> (runs when triggered: kubectl create job NAME --from=cronjob/"
        + w.ref.name
        + ")",
        "Active Jobs:         "
        + (
            ", ".join(
                j.ref.name
                for j in cat.manifests.workloads
                if j.ref.kind == "Job"
                and j.controller is not None
                and j.controller.owner == f"CronJob/{w.ref.name}"
                and not j.controller.complete
            )
            or "<none>"
        ),
    ]
