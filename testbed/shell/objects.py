"""The cluster as kubectl's objects (pure): one record per pod, Service, workload, policy...
built from the live Plan and Manifests, with its table columns and its API body.

Sits between the desired state (plan/, spec/) and shell/output.py. Bodies are built only for
`-o yaml|json|jsonpath`, so `get pods -A` at 1,000 pods stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ParamSpec

from ..experiment.jobs import completions
from ..plan.dualstack import external_ip_column, node_ips, node_pod_cidrs, pod_ips, service_family_fields
from ..plan.model import Plan, PodPlan
from ..plan.podnet import port_fields, spec_fields
from ..plan.v6first import (
    cluster_ip_column,
    ipv4_side,
    primary_cluster_ip,
    primary_node_ip,
    primary_pod_cidr,
    primary_pod_ip,
    primary_slices,
)

HEADERS: dict[str, tuple[list[str], list[str]]] = {  # plural -> (columns, extra -o wide columns)
    "pods": (["NAME", "READY", "STATUS", "RESTARTS", "AGE"], ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]),
    "services": (["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"], ["SELECTOR"]),
    "deployments": (["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"], ["CONTAINERS", "IMAGES", "SELECTOR"]),
    "replicasets": (["NAME", "DESIRED", "CURRENT", "READY", "AGE"], ["CONTAINERS", "IMAGES", "SELECTOR"]),
    "statefulsets": (["NAME", "READY", "AGE"], ["CONTAINERS", "IMAGES"]),
    "daemonsets": (
        ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"],
        ["CONTAINERS", "IMAGES", "SELECTOR"],
    ),
    "replicationcontrollers": (["NAME", "DESIRED", "CURRENT", "READY", "AGE"], ["CONTAINERS", "IMAGES", "SELECTOR"]),
    "jobs": (["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"], ["CONTAINERS", "IMAGES", "SELECTOR"]),
    "cronjobs": (
        ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"],
        ["CONTAINERS", "IMAGES", "SELECTOR"],
    ),
    "endpoints": (["NAME", "ENDPOINTS", "AGE"], []),
    "endpointslices": (["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"], ["CONDITIONS"]),
    "networkpolicies": (["NAME", "POD-SELECTOR", "AGE"], []),
    "ingresses": (["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"], []),
    "namespaces": (["NAME", "STATUS", "AGE"], []),
    "nodes": (["NAME", "STATUS", "ROLES", "AGE", "VERSION"], ["INTERNAL-IP", "EXTERNAL-IP", "POD-CIDR", "TAINTS"]),
}
VERSION = "v1.29.0-emulated"
IMAGE = "testbed.io/image"  # the template annotation experiment/rollout.py records images in

P = ParamSpec("P")
Body = Callable[[], dict[str, Any]]  # an object's API body, built when asked for


@dataclass
class Obj:
    plural: str
    namespace: str  # "" for cluster-scoped objects
    name: str
    labels: Mapping[str, str]
    cols: list[str]  # the columns after NAME, AGE marked as "{age}"
    wide: list[str]
    fields: dict[str, str] = field(default_factory=dict)  # for --field-selector
    body: Body = dict  # the API object, for -o yaml|json
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        from .grammar import RESOURCES

        return RESOURCES[self.plural][0]


def _sel(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


def _meta(kind: str, api: str, ns: str, name: str, labels: Mapping[str, str], **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    if labels:
        meta["labels"] = dict(labels)
    return {"apiVersion": api, "kind": kind, "metadata": meta, **extra}


def _later(build: Callable[P, dict[str, Any]], *args: P.args, **kwargs: P.kwargs) -> Body:
    """`build(*args)`, when the body is asked for (-o yaml|json): the arguments are this loop
    turn's objects, bound now, so each body is its own object's (and typed, unlike a lambda's
    `x=x` defaults)."""
    return lambda: build(*args, **kwargs)


def _annotated(body: Body, extra: Mapping[str, str]) -> Body:
    def with_annotations() -> dict[str, Any]:
        doc = body()
        doc.setdefault("metadata", {})["annotations"] = dict(extra)
        return doc

    return with_annotations


def _backend(b: Any) -> str:
    if b is None or b.service is None:
        return getattr(b, "resource", "") or "<default>"
    return f"{b.service.name}:{b.service.port_number or b.service.port_name}"


def _images(template: Any) -> str:
    image = dict(getattr(template, "annotations", {}) or {}).get(IMAGE, "")
    return image.split("#")[0] if image else "<emulated>"  # "#restart-N": rollout restart's mark


class Catalog:
    """Every object of the cluster by plural, built once per (plan, manifests)."""

    def __init__(
        self, plan: Plan, manifests: Any, annotations: Mapping[tuple[str, str, str], Mapping[str, str]] | None = None
    ) -> None:
        self.plan, self.manifests = plan, manifests
        self.annotations = annotations or {}  # (plural, namespace, name) -> `kubectl annotate`'s
        self._cache: dict[str, list[Obj]] = {}

    def objects(self, plural: str) -> list[Obj]:
        if plural not in self._cache:
            objs = getattr(self, "_" + plural)()
            for o in objs:
                extra = self.annotations.get((plural, o.namespace, o.name))
                if extra:
                    o.annotations = dict(extra)
                    o.body = _annotated(o.body, extra)
            self._cache[plural] = objs
        return self._cache[plural]

    def find(self, plural: str, namespace: str, name: str) -> Obj | None:
        for o in self.objects(plural):
            if o.name == name and (o.namespace == namespace or not o.namespace):
                return o
        return None

    # -- one builder per resource --------------------------------------------------------
    def _pods(self) -> list[Obj]:
        out = []
        for p in self.plan.pods:
            n = len(p.containers)
            out.append(
                Obj(
                    "pods",
                    p.namespace,
                    p.name,
                    p.labels,
                    [f"{n}/{n}", "Running", "0", "{age}"],
                    [primary_pod_ip(self.plan, p.key, p.ip), p.node, "<none>", "<none>"],
                    {
                        "metadata.name": p.name,
                        "metadata.namespace": p.namespace,
                        "spec.nodeName": p.node,
                        "status.podIP": primary_pod_ip(self.plan, p.key, p.ip),
                        "status.phase": "Running",
                    },
                    _later(
                        lambda p: _meta(
                            "Pod",
                            "v1",
                            p.namespace,
                            p.name,
                            p.labels,
                            spec={
                                "nodeName": p.node,
                                "containers": [
                                    {
                                        "name": c,
                                        "ports": [
                                            {
                                                "containerPort": q.port,
                                                "protocol": q.protocol,
                                                **port_fields(p, q.port, q.protocol),
                                            }
                                            for q in p.ports
                                            if q.container == c
                                        ],
                                    }
                                    for c in p.containers
                                ],
                                **spec_fields(p),
                            },
                            status={
                                "phase": "Running",
                                "hostIP": primary_node_ip(self.plan, p.node, self.plan.node(p.node).host_ip),
                                "podIP": primary_pod_ip(self.plan, p.key, p.ip),
                                "podIPs": [{"ip": ip} for ip in pod_ips(self.plan, p.key, p.ip)],
                            },
                        ),
                        p,
                    ),
                )
            )
        for q in getattr(self.plan, "pending", ()):  # no node took them: no IP, no node, as kubectl shows
            out.append(
                Obj(
                    "pods",
                    q.namespace,
                    q.name,
                    {},
                    ["0/1", "Pending", "0", "{age}"],
                    ["<none>", "<none>", "<none>", "<none>"],
                    {
                        "metadata.name": q.name,
                        "metadata.namespace": q.namespace,
                        "spec.nodeName": "",
                        "status.podIP": "",
                        "status.phase": "Pending",
                    },
                    _later(
                        lambda q: _meta(
                            "Pod",
                            "v1",
                            q.namespace,
                            q.name,
                            {},
                            status={
                                "phase": "Pending",
                                "conditions": [
                                    {
                                        "type": "PodScheduled",
                                        "status": "False",
                                        "reason": "Unschedulable",
                                        "message": q.reason,
                                    }
                                ],
                            },
                        ),
                        q,
                    ),
                )
            )
        return out

    def _services(self) -> list[Obj]:
        out = []
        for s in self.plan.services.services if self.plan.services else ():
            out.append(
                Obj(
                    "services",
                    s.namespace,
                    s.name,
                    getattr(s, "labels", {}) or {},
                    [
                        s.type,
                        cluster_ip_column(self.plan, s),
                        external_ip_column(self.plan, s),
                        s.ports_column(),
                        "{age}",
                    ],
                    [_sel(s.selector)],
                    {"metadata.name": s.name, "metadata.namespace": s.namespace},
                    _later(
                        lambda s: _meta(
                            "Service",
                            "v1",
                            s.namespace,
                            s.name,
                            {},
                            spec={
                                "type": s.type,
                                "clusterIP": primary_cluster_ip(self.plan, s),
                                **service_family_fields(self.plan, s.key),  # dual-stack (issue 15)
                                "selector": dict(s.selector),
                                "ports": [
                                    {
                                        k: v
                                        for k, v in (
                                            ("name", q.name),
                                            ("port", q.port),
                                            ("protocol", q.protocol),
                                            ("targetPort", q.target_port),
                                            ("nodePort", q.node_port),
                                        )
                                        if v not in ("", None)
                                    }
                                    for q in s.ports
                                ],
                            },
                        ),
                        s,
                    ),
                )
            )
        return out

    def pods_of(self, kind: str, namespace: str, name: str) -> list[PodPlan]:
        """The pods a controller owns (a Deployment's through its ReplicaSets)."""
        own = f"{kind}/{name}"
        rs = f"ReplicaSet/{name}-"
        return [
            p
            for p in self.plan.pods
            if p.namespace == namespace and (p.owner == own or (kind == "Deployment" and p.owner.startswith(rs)))
        ]

    def _workloads(self, kind: str, plural: str) -> list[Obj]:
        out = []
        for w in self.manifests.workloads if self.manifests else ():
            if w.ref.kind != kind:
                continue
            n, want = len(self.pods_of(kind, w.ref.namespace, w.ref.name)), w.replicas
            if kind == "DaemonSet":
                want = n
            batch = _batch_columns(w, self.manifests.workloads)
            cols = {
                **batch,
                "Deployment": [f"{n}/{want}", str(n), str(n), "{age}"],
                "StatefulSet": [f"{n}/{want}", "{age}"],
                "DaemonSet": [str(want), str(n), str(n), str(n), str(n), _sel(w.template.node_selector), "{age}"],
            }.get(kind, [str(want), str(n), str(n), "{age}"])
            wide = [",".join(c.name for c in w.template.containers), _images(w.template), str(w.selector)]
            api = {"ReplicationController": "v1", "Job": "batch/v1", "CronJob": "batch/v1"}.get(kind, "apps/v1")
            out.append(
                Obj(
                    plural,
                    w.ref.namespace,
                    w.ref.name,
                    dict(getattr(w.ref, "labels", {}) or w.template.labels),
                    cols,
                    wide[: len(HEADERS[plural][1])],
                    {"metadata.name": w.ref.name, "metadata.namespace": w.ref.namespace},
                    _later(
                        lambda w, api, n: _meta(
                            kind,
                            api,
                            w.ref.namespace,
                            w.ref.name,
                            {},
                            spec={
                                "replicas": w.replicas,
                                "selector": {"matchLabels": dict(w.selector.match_labels)},
                                "template": {
                                    "metadata": {"labels": dict(w.template.labels)},
                                    "spec": {"containers": [{"name": c.name} for c in w.template.containers]},
                                },
                            },
                            status={"replicas": n, "readyReplicas": n},
                        ),
                        w,
                        api,
                        n,
                    ),
                )
            )
        return out

    def _deployments(self) -> list[Obj]:
        return self._workloads("Deployment", "deployments")

    def _statefulsets(self) -> list[Obj]:
        return self._workloads("StatefulSet", "statefulsets")

    def _daemonsets(self) -> list[Obj]:
        return self._workloads("DaemonSet", "daemonsets")

    def _jobs(self) -> list[Obj]:
        return self._workloads("Job", "jobs")

    def _cronjobs(self) -> list[Obj]:
        return self._workloads("CronJob", "cronjobs")

    def _replicationcontrollers(self) -> list[Obj]:
        return self._workloads("ReplicationController", "replicationcontrollers")

    def _replicasets(self) -> list[Obj]:
        out = self._workloads("ReplicaSet", "replicasets")
        seen: dict[tuple[str, str], int] = {}
        for p in self.plan.pods:  # a Deployment's ReplicaSets, named by its pods' owner
            if p.owner.startswith("ReplicaSet/") and not any(
                o.name == p.owner[11:] and o.namespace == p.namespace for o in out
            ):
                key = (p.namespace, p.owner[11:])
                seen[key] = seen.get(key, 0) + 1
        deployments = {(o.namespace, o.name): o for o in self.objects("deployments")}
        for (ns, name), n in sorted(seen.items()):
            owner = deployments.get((ns, name.rsplit("-", 1)[0]))
            wide = (
                [owner.wide[0], owner.wide[1], f"{owner.wide[2]},pod-template-hash={name.rsplit('-', 1)[1]}"]
                if owner
                else ["", "", ""]
            )
            out.append(
                Obj(
                    "replicasets",
                    ns,
                    name,
                    {},
                    [str(n), str(n), str(n), "{age}"],
                    wide,
                    {"metadata.name": name, "metadata.namespace": ns},
                    _later(
                        lambda ns, name, n: _meta("ReplicaSet", "apps/v1", ns, name, {}, spec={"replicas": n}),
                        ns,
                        name,
                        n,
                    ),
                )
            )
        return out

    def _endpoints(self) -> list[Obj]:
        out = []
        for s in primary_slices(self.plan):  # the primary family's (plan/v6first.py)
            eps = [f"{e.ip}:{q.port}" for e in s.endpoints if e.ready for q in s.ports] or ["<none>"]
            more = f" + {len(eps) - 3} more..." if len(eps) > 3 else ""
            out.append(
                Obj(
                    "endpoints",
                    s.namespace,
                    s.service,
                    {},
                    [",".join(eps[:3]) + more, "{age}"],
                    [],
                    {"metadata.name": s.service, "metadata.namespace": s.namespace},
                    _later(
                        lambda s: _meta(
                            "Endpoints",
                            "v1",
                            s.namespace,
                            s.service,
                            {},
                            subsets=[
                                {
                                    "addresses": [{"ip": e.ip, "nodeName": e.node} for e in s.endpoints if e.ready],
                                    "ports": [{"port": q.port, "protocol": q.protocol} for q in s.ports],
                                }
                            ],
                        ),
                        s,
                    ),
                )
            )
        return out

    def _endpointslices(self) -> list[Obj]:
        return [
            Obj(
                "endpointslices",
                s.namespace,
                s.name,
                {"kubernetes.io/service-name": s.service},
                [s.address_type, s.ports_column(), s.endpoints_column(), "{age}"],
                [_conditions_column(s)],
                {"metadata.name": s.name, "metadata.namespace": s.namespace},
                _later(
                    lambda s: _meta(
                        "EndpointSlice",
                        "discovery.k8s.io/v1",
                        s.namespace,
                        s.name,
                        {"kubernetes.io/service-name": s.service},
                        addressType=s.address_type,
                        endpoints=[
                            {
                                "addresses": [e.ip],
                                "nodeName": e.node,
                                "conditions": {"ready": e.ready, "serving": e.serving, "terminating": e.terminating},
                                **(
                                    {"targetRef": {"kind": "Pod", "name": e.pod, "namespace": s.namespace}}
                                    if e.pod
                                    else {}
                                ),
                            }
                            for e in s.endpoints
                        ],
                    ),
                    s,
                ),
            )
            for s in (ipv4_side(self.plan.services, self.plan.dual).slices if self.plan.services else ())
            + (
                self.plan.dual.slices(self.plan.services) if self.plan.dual else ()
            )  # the IPv6 slices of dual-stack Services
        ]

    def _networkpolicies(self) -> list[Obj]:
        return [
            Obj(
                "networkpolicies",
                p.ref.namespace,
                p.ref.name,
                dict(getattr(p, "labels", {}) or {}),
                [str(p.pod_selector) if not p.pod_selector.is_empty() else "<none>", "{age}"],
                [],
                {"metadata.name": p.ref.name, "metadata.namespace": p.ref.namespace},
                _later(
                    lambda p: _meta(
                        "NetworkPolicy",
                        "networking.k8s.io/v1",
                        p.ref.namespace,
                        p.ref.name,
                        {},
                        spec={
                            "podSelector": {"matchLabels": dict(p.pod_selector.match_labels)},
                            "policyTypes": list(p.policy_types),
                        },
                    ),
                    p,
                ),
            )
            for p in (self.manifests.policies if self.manifests else ())
        ]

    def _ingresses(self) -> list[Obj]:
        out = []
        # ADDRESS: the controller's LoadBalancer address, as ingress-nginx publishes it
        address = next(
            (
                s.external_ip_column()
                for s in (self.plan.services.services if self.plan.services else ())
                if s.namespace == "ingress-nginx" and s.type == "LoadBalancer"
            ),
            "",
        )
        for i in self.manifests.ingresses if self.manifests else ():
            if i.ref.kind != "Ingress":  # IngressClasses travel in the same tuple
                continue
            hosts = sorted({r.host for r in i.rules if r.host}) or ["*"]
            out.append(
                Obj(
                    "ingresses",
                    i.ref.namespace,
                    i.ref.name,
                    dict(i.labels),
                    [
                        i.ingress_class_name or i.class_annotation or "<none>",
                        ",".join(hosts),
                        address,
                        "80, 443" if i.tls else "80",
                        "{age}",
                    ],
                    [],
                    {"metadata.name": i.ref.name, "metadata.namespace": i.ref.namespace},
                    _later(
                        lambda i: _meta(
                            "Ingress",
                            "networking.k8s.io/v1",
                            i.ref.namespace,
                            i.ref.name,
                            dict(i.labels),
                            spec={
                                "rules": [
                                    {
                                        "host": r.host or "*",
                                        "paths": [
                                            {
                                                "path": p.path or "/",
                                                "pathType": p.path_type,
                                                "backend": _backend(p.backend),
                                            }
                                            for p in r.paths
                                        ],
                                    }
                                    for r in i.rules
                                ],
                                **({"defaultBackend": _backend(i.default_backend)} if i.default_backend else {}),
                            },
                        ),
                        i,
                    ),
                )
            )
        return out

    def _namespaces(self) -> list[Obj]:
        labels = {n.name: n.labels for n in (self.manifests.namespaces if self.manifests else ())}
        names = sorted(
            (self.manifests.namespace_names() if self.manifests else {"default", "kube-system"})
            | {p.namespace for p in self.plan.pods}
        )
        return [
            Obj(
                "namespaces",
                "",
                n,
                {"kubernetes.io/metadata.name": n, **labels.get(n, {})},
                ["Active", "{age}"],
                [],
                {"metadata.name": n},
                _later(
                    lambda n: _meta(
                        "Namespace",
                        "v1",
                        "",
                        n,
                        {"kubernetes.io/metadata.name": n, **labels.get(n, {})},
                        status={"phase": "Active"},
                    ),
                    n,
                ),
            )
            for n in names
        ]

    def _nodes(self) -> list[Obj]:
        return [
            Obj(
                "nodes",
                "",
                n.name,
                n.labels,
                ["Ready", n.role, "{age}", VERSION],
                [
                    primary_node_ip(self.plan, n.name, n.host_ip),
                    "<none>",
                    primary_pod_cidr(self.plan, n.name, n.pod_cidr),
                    ",".join(n.taints) or "<none>",
                ],
                {"metadata.name": n.name},
                _later(
                    lambda n: _meta(
                        "Node",
                        "v1",
                        "",
                        n.name,
                        n.labels,
                        spec={"podCIDR": n.pod_cidr}
                        if self.plan.dual is None
                        else {
                            "podCIDR": primary_pod_cidr(self.plan, n.name, n.pod_cidr),
                            "podCIDRs": node_pod_cidrs(self.plan, n.name, n.pod_cidr),
                        },
                        status={
                            "addresses": [
                                *(
                                    {"type": "InternalIP", "address": ip}
                                    for ip in node_ips(self.plan, n.name, n.host_ip)
                                ),
                                {"type": "Hostname", "address": n.name},
                            ]
                        },
                    ),
                    n,
                ),
            )
            for n in self.plan.nodes
        ]


def _batch_columns(w: Any, workloads: Any) -> dict[str, list[str]]:
    """kubectl get jobs / cronjobs columns (experiment/jobs.py says when a Job completes)."""
    fields = w.controller
    if w.ref.kind == "Job" and fields is not None:
        return {"Job": ["Complete" if fields.complete else "Running", completions(w), "-", "{age}"]}
    if w.ref.kind == "CronJob" and fields is not None:
        own = f"CronJob/{w.ref.name}"
        active = sum(
            1
            for j in workloads
            if j.ref.kind == "Job"
            and j.ref.namespace == w.ref.namespace
            and j.controller is not None
            and j.controller.owner == own
            and not j.controller.complete
        )
        tz = "<none>"
        return {"CronJob": [fields.schedule, tz, str(fields.suspend), str(active), "<none>", "{age}"]}
    return {}


def _conditions_column(s: Any) -> str:
    """-o wide: how many endpoints are ready, serving while terminating, or neither (issue 19)."""
    ready = sum(e.ready for e in s.endpoints)
    terminating = sum(e.terminating and e.serving and not e.ready for e in s.endpoints)
    other = len(s.endpoints) - ready - terminating
    parts = [f"{ready} ready"] + ([f"{terminating} serving-terminating"] if terminating else [])
    return ", ".join(parts + ([f"{other} not ready"] if other else [])) if s.endpoints else "<none>"
