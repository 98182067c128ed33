"""kubectl-like views of a Plan (pure): the tables `testbed plan` prints, and describe pod|node.

The interactive shell builds every other view from shell/objects.py and shell/output.py,
and reuses `table` and the two describes from here.
"""

from __future__ import annotations

from .experiment.jobs import completions
from .plan.dns import DOMAIN
from .plan.dualstack import external_ip_column, node_ips, pod_ips
from .plan.model import Plan, PodPlan
from .plan.podnet import port_fields
from .plan.v6first import cluster_ip_column, primary_gateway, primary_node_ip, primary_pod_cidr, primary_pod_ip
from .spec.model import Manifests


def table(rows: list[list[str]]) -> str:
    """Columns padded as kubectl's tabwriter does: three spaces between, no trailing blanks."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def get_nodes(plan: Plan, wide: bool) -> str:
    rows = [["NAME", "STATUS", "ROLES", "AGE", "VERSION"] + (["INTERNAL-IP", "POD-CIDR", "TAINTS"] if wide else [])]
    for n in plan.nodes:
        rows.append(
            [n.name, "Ready", n.role, "-", "emulated"]
            + (
                [
                    primary_node_ip(plan, n.name, n.host_ip),
                    primary_pod_cidr(plan, n.name, n.pod_cidr),
                    ",".join(n.taints) or "<none>",
                ]
                if wide
                else []
            )
        )
    return table(rows)


def get_pods(plan: Plan, wide: bool, namespace: str | None) -> str:
    rows = [
        (["NAMESPACE"] if namespace is None else [])
        + ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        + (["IP", "NODE"] if wide else [])
    ]
    for p in plan.pods:
        if namespace is not None and p.namespace != namespace:
            continue
        rows.append(
            ([p.namespace] if namespace is None else [])
            + [p.name, f"{len(p.containers)}/{len(p.containers)}", "Running", "0", "-"]
            + ([primary_pod_ip(plan, p.key, p.ip), p.node] if wide else [])
        )
    for q in plan.pending:  # as kubectl lists them: no IP, no node yet
        if namespace is None or q.namespace == namespace:
            rows.append(
                ([q.namespace] if namespace is None else [])
                + [q.name, "0/1", "Pending", "0", "-"]
                + (["<none>", "<none>"] if wide else [])
            )
    return table(rows) if len(rows) > 1 else f"No resources found in {namespace} namespace."


def describe_pod(plan: Plan, pod: PodPlan) -> str:
    node = plan.node(pod.node)
    lines = [
        f"Name:         {pod.name}",
        f"Namespace:    {pod.namespace}",
        f"Node:         {pod.node}/{node.host_ip}",
        "Labels:       " + (("\n              ".join(f"{k}={v}" for k, v in sorted(pod.labels.items()))) or "<none>"),
        "Status:       Running",
        f"IP:           {primary_pod_ip(plan, pod.key, pod.ip)}",
        *(["IPs:"] + [f"  IP:  {ip}" for ip in pod_ips(plan, pod.key, pod.ip)] if plan.dual is not None else []),
        f"Controlled By:  {pod.owner or '<none>'}",
        f"Network:      eth0 {pod.ip}/{pod.prefix} via {pod.gateway} (cni0 on {pod.node}), host veth {pod.host_veth}"
        if not pod.host_network
        else f"Network:      hostNetwork: the network namespace of {pod.node} ({node.host_ip})",
        "Containers:",
    ]
    for c in pod.containers:
        ports = [
            f"{q.port}/{q.protocol}"
            + (f" ({q.name})" if q.name else "")
            + (f" -> host port {p['hostPort']}" if (p := port_fields(pod, q.port, q.protocol)) else "")
            for q in pod.ports
            if q.container == c
        ]
        lines += [f"  {c}:", f"    Ports:  {', '.join(ports) or '<none>'}"]
    return "\n".join(lines)


def describe_node(plan: Plan, name: str) -> str:
    n = plan.node(name)
    lines = [
        f"Name:         {n.name}",
        f"Roles:        {n.role}",
        "Labels:       " + "\n              ".join(f"{k}={v}" for k, v in sorted(n.labels.items())),
        f"Taints:       {', '.join(n.taints) or '<none>'}",
        *(f"Addresses:    InternalIP {ip}" for ip in node_ips(plan, n.name, n.host_ip)),
        f"PodCIDR:      {primary_pod_cidr(plan, n.name, n.pod_cidr)} "
        f"(gateway {primary_gateway(plan, n.name, n.gateway)} on {n.bridge})",
        "Routes:",
    ]
    lines += [f"  {r.dst} via {r.via} dev {r.dev}   # {r.why}" for r in plan.routes if r.node == name]
    lines += [
        f"  {r.dst} via {r.via} dev {r.dev}   # {r.why}"
        for r in (plan.dual.routes if plan.dual else ())
        if r.node == name
    ]
    pods = plan.pods_on(name)
    lines += [f"Non-terminated Pods: ({len(pods)} in total)"] + [f"  {p.namespace}/{p.name}  {p.ip}" for p in pods]
    return "\n".join(lines)


def get_services(plan: Plan, wide: bool, namespace: str | None) -> str:
    svcs = [
        s for s in (plan.services.services if plan.services else ()) if namespace is None or s.namespace == namespace
    ]
    if not svcs:
        return f"No resources found in {namespace} namespace."
    rows = [
        (["NAMESPACE"] if namespace is None else [])
        + ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
        + (["SELECTOR"] if wide else [])
    ]
    for s in svcs:
        rows.append(
            ([s.namespace] if namespace is None else [])
            + [s.name, s.type, cluster_ip_column(plan, s), external_ip_column(plan, s), s.ports_column(), "-"]
            + ([",".join(f"{k}={v}" for k, v in sorted(s.selector.items())) or "<none>"] if wide else [])
        )
    return table(rows)


def dual_stack_lines(plan: Plan) -> list[str]:
    """`testbed plan`'s IPv6 half of a dual-stack cluster (nothing for an IPv4 cluster)."""
    dual = plan.dual
    if dual is None:
        return []
    lines = [
        "",
        f"ipFamily dual ({', '.join(dual.families)}): IPv6 underlay {dual.underlay_subnet}, "
        f"pods {dual.pod_subnet}, services {dual.service_subnet}",
    ]
    lines += [f"node {n.name}: {n.host_ip}, pod CIDR {n.pod_cidr} (gateway {n.gateway})" for n in dual.nodes]
    lines += [f"pod {p.namespace}/{p.name}: {dual.pods[p.key]}" for p in plan.pods if p.key in dual.pods]
    lines += [f"external host {name}: {ip}" for name, ip in dual.externals.items()]
    lines += [f"route on {r.node}: {r.dst} via {r.via} dev {r.dev}  ({r.why})" for r in dual.routes]
    for router in dual.routers:
        lines += [f"router {router.name}: {address} on {dev}" for dev, address in router.addresses]
        lines += [f"route on {r.node}: {r.dst} via {r.via} dev {r.dev}  ({r.why})" for r in router.routes]
    lines += [
        f"VTEP on {v.node}: {v.dev} {v.address} mac {v.mac} mtu {v.mtu}, local {v.local}, VNI {v.vni}"
        for v in dual.vteps
    ]
    from .plan import edges6  # deferred: only a dual-stack plan's lines need it (start-up time)

    return lines + edges6.describe(plan)  # racks, LoadBalancer and external IPv6 addresses


def get_controllers(plan: Plan, manifests: Manifests) -> str:
    """The StatefulSets, DaemonSets, Jobs and CronJobs and the pods each has ("" when none):
    what `testbed plan` adds under the pods, since their pods follow rules of their own."""
    rows = [["NAMESPACE", "CONTROLLER", "PODS", "HOW"]]
    kinds = {"StatefulSet": "statefulset.apps", "DaemonSet": "daemonset.apps", "Job": "job.batch"}
    kinds["CronJob"] = "cronjob.batch"
    for w in manifests.workloads:
        if w.ref.kind not in kinds or w.controller is None:
            continue
        f, own = w.controller, f"{w.ref.kind}/{w.ref.name}"
        pods = [p for p in plan.pods if p.namespace == w.ref.namespace and p.owner == own]
        count, how = str(len(pods)), ""
        if w.ref.kind == "StatefulSet":
            count = f"{len(pods)}/{w.replicas}"
            how = f"{f.pod_management}; " + (
                f"DNS <pod>.{f.service_name}.{w.ref.namespace}.svc.{DOMAIN}" if f.service_name else "no serviceName"
            )
        elif w.ref.kind == "DaemonSet":
            how = f"one per eligible node: {len(pods)} of {len(plan.nodes)} nodes"
        elif w.ref.kind == "Job":
            how = f"{'complete' if f.complete else 'running until the step ends'}; completions {completions(w)}"
        else:
            how = f"schedule {f.schedule!r}: a Job when triggered"
        rows.append([w.ref.namespace, f"{kinds[w.ref.kind]}/{w.ref.name}", count, how])
    return table(rows) if len(rows) > 1 else ""
