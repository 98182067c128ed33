"""Load workload manifests: plain Kubernetes YAML as one would `kubectl apply -f`.

Second loader of spec/ (beside topology.py); output is a `Manifests` for plan/. Decodes
Namespace, Pod, ReplicationController, ReplicaSet, Deployment, StatefulSet, DaemonSet, Job and
CronJob (their own fields: spec/controllers.py) (and `kind: List`) strictly: unknown fields, wrong types, missing required fields, unknown kinds, duplicate
names and a selector that does not select its own template are rejected, as the API server
would. Every other kind Kubernetes has (and custom resources) goes to spec/kinds.py:
validated against Kubernetes' schema, kept in `Manifests.others`, noted in the plan. Fields that
do not matter to networking (image, resources, probes...) are known and ignored.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterable
from typing import Any

from ..errors import Problem, UnsupportedError, excerpt
from . import controllers, kinds, podnet
from .affinity import decode_scheduling
from .decode import Doc, Problems, load_documents
from .labels import check_labels, decode_selector
from .lifecycle import MAX_SECONDS, decode_lifecycle
from .model import (
    PROTOCOLS,
    Container,
    ContainerPort,
    Manifests,
    Namespace,
    ObjectRef,
    PodSpec,
    PodTemplate,
    Toleration,
    Workload,
)
from .names import dns1123_label_error, dns1123_subdomain_error, port_name_error
from .selectors import LabelSelector

_META_KNOWN = ("name", "namespace", "labels", "annotations")
_META_IGNORED = (
    "generateName",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
    "finalizers",
    "managedFields",
    "selfLink",
)
_POD_KNOWN = (
    "containers",
    "nodeSelector",
    "nodeName",
    "tolerations",
    "hostname",
    "subdomain",
    *podnet.POD_FIELDS,  # hostNetwork, dnsPolicy, dnsConfig, hostAliases (spec/podnet.py)
)
_POD_IGNORED = (
    "volumes",
    "initContainers",
    "ephemeralContainers",
    "restartPolicy",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "serviceAccountName",
    "serviceAccount",
    "automountServiceAccountToken",
    "hostPID",
    "hostIPC",
    "shareProcessNamespace",
    "securityContext",
    "imagePullSecrets",
    "affinity",
    "schedulerName",
    "priorityClassName",
    "priority",
    "readinessGates",
    "runtimeClassName",
    "enableServiceLinks",
    "preemptionPolicy",
    "overhead",
    "topologySpreadConstraints",
    "setHostnameAsFQDN",
    "os",
    "hostUsers",
    "schedulingGates",
    "resourceClaims",
    "resources",
)
_CONTAINER_KNOWN = ("name", "ports")
_CONTAINER_IGNORED = (
    "image",
    "command",
    "args",
    "workingDir",
    "envFrom",
    "env",
    "resources",
    "resizePolicy",
    "restartPolicy",
    "volumeMounts",
    "volumeDevices",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "imagePullPolicy",
    "securityContext",
    "stdin",
    "stdinOnce",
    "tty",
)
_CONTROLLERS = {
    "Deployment": (
        "apps/v1",
        ("replicas", "selector", "template"),
        ("strategy", "minReadySeconds", "revisionHistoryLimit", "paused", "progressDeadlineSeconds"),
    ),
    "ReplicaSet": ("apps/v1", ("replicas", "selector", "template"), ("minReadySeconds",)),
    "ReplicationController": ("v1", ("replicas", "selector", "template"), ("minReadySeconds",)),
    # StatefulSet, DaemonSet, Job (spec/controllers.py); a CronJob's own fields are checked there
    **controllers.KINDS,
    "CronJob": ("batch/v1", (), ()),
}
# Kinds decoded by their own module: kind -> (apiVersion, "module:function", Manifests field).
# The function takes (doc, ref, labels, annotations) and returns the decoded object or None
# (having reported its problems on doc). A kind whose module is not there yet is "not yet".
EXTENSIONS: dict[str, tuple[str, str, str]] = {
    "Service": ("v1", "testbed.spec.services:decode_service", "services"),
    "NetworkPolicy": ("networking.k8s.io/v1", "testbed.spec.netpol:decode_policy", "policies"),
    "Ingress": ("networking.k8s.io/v1", "testbed.spec.ingress:decode_ingress", "ingresses"),
    "IngressClass": ("networking.k8s.io/v1", "testbed.spec.ingress:decode_ingress_class", "ingresses"),
    # The Network Policy API's cluster-scoped tiers (issue 17), routed here by spec/kinds.py.
    **{
        kind: (api, f"testbed.spec.cnp:{func}", "cluster_policies")
        for kind, (api, func) in kinds.NETWORK_POLICY_API.items()
    },
}
# The kinds decoded here, for the "known:" list of an unknown kind's error (StatefulSet,
# DaemonSet, Job and CronJob are decoded here too; the message names them among "every other
# built-in kind", which keeps it one short line).
# (The Network Policy API's kinds are left out: that message is about built-in groups, and
# kinds.kind_problem names them for their own group.)
MODELLED = (
    "Namespace",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    *(k for k in EXTENSIONS if k not in kinds.NETWORK_POLICY_API),
)
# Kinds without a namespace (metadata.namespace is ignored, as kubectl does).
_CLUSTER_SCOPED = ("Namespace", "IngressClass", *kinds.NETWORK_POLICY_API)
# Bounds (issue 11: `replicas: 100000000` hung `plan`). One emulated pod is a network namespace;
# the scale goals are 10,000 pods on one VM, so a workload may ask for that many and a cluster
# (every manifest at once, at any step of an experiment) for twice that.
MAX_REPLICAS = 10_000
MAX_PODS = 20_000
# Kinds the testbed will emulate in later versions: a clear "not yet" rather than "unknown".
_LATER = {"EndpointSlice": "discovery.k8s.io/v1", "Endpoints": "v1"}


def _extension(kind: str) -> Any:
    """The decoder of an extension kind, or None while its module does not exist yet."""
    module, _, func = EXTENSIONS[kind][1].partition(":")
    try:
        return getattr(importlib.import_module(module), func)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise


class _Collector:
    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self.namespaces: list[Namespace] = []
        self.pods: list[PodSpec] = []
        self.workloads: list[Workload] = []
        self.others: list[kinds.OtherObject] = []
        self.extra: dict[str, list[Any]] = {field: [] for _, _, field in EXTENSIONS.values()}
        self.seen: dict[tuple[str, str, str], str] = {}

    def remember(self, doc: Doc, kind: str, namespace: str, name: str) -> bool:
        key = (kind, namespace, name)
        if key in self.seen:
            doc.error(
                f"duplicate {kind} {namespace + '/' if namespace else ''}{name} (first defined in {self.seen[key]})",
                "metadata.name",
            )
            return False
        self.seen[key] = doc.file
        return True


def load_manifests(paths: Iterable[str], namespaces: Iterable[str] = ()) -> Manifests:
    """Read every workload file; raise SpecError listing every problem found.

    `namespaces` are those that already exist in the cluster the files are applied to (an
    experiment's `apply` action): objects may live in them without declaring them again.
    """
    problems = Problems()
    col = _Collector(problems)
    files = tuple(paths)
    for path in files:
        for index, raw in load_documents(path):
            _decode_object(Doc(raw, path, problems, document=f"document {index + 1}"), col)
    manifests = Manifests(
        tuple(col.namespaces),
        tuple(col.pods),
        tuple(col.workloads),
        files,
        others=tuple(col.others),
        **{field: tuple(items) for field, items in col.extra.items()},
    )
    _check_namespaces_exist(manifests, col, problems, existing=namespaces)
    pods = total_pods(manifests)
    if pods > MAX_PODS and not problems:
        biggest = max(manifests.workloads, key=lambda w: w.replicas, default=None)
        ref = biggest.ref if biggest is not None else manifests.pods[-1].ref
        problems.add(
            Problem(
                ref.file,
                "spec.replicas" if biggest is not None else "metadata.name",
                f"{pods:,} pods in all: the testbed emulates at most {MAX_PODS:,}",
                str(ref),
            )
        )
    problems.raise_if_any()
    return manifests


def total_pods(manifests: Manifests) -> int:
    """Pods the manifests ask for: bare pods plus every controller's replicas."""
    return len(manifests.pods) + sum(w.replicas for w in manifests.workloads)


def _decode_object(doc: Doc, col: _Collector) -> None:
    if not doc.is_mapping():
        return
    raw: dict[str, Any] = doc.value
    kind, api = raw.get("kind"), raw.get("apiVersion")
    if not isinstance(kind, str) or not kind:
        doc.error("required field is missing", "kind")
        return
    if not isinstance(api, str) or not api:
        doc.error("required field is missing", "apiVersion")
        return
    if (kind == "List" and api == "v1") or (kind.endswith("List") and kind[:-4] in kinds.catalog().by_api.get(api, ())):
        # `kind: List`, or a typed list such as `kubectl get deployments -o yaml` writes (DeploymentList)
        doc.check_keys(("apiVersion", "kind", "items", "metadata"))
        for item in doc.items("items"):
            _decode_object(item, col)
        return
    if kind in EXTENSIONS and _extension(kind) is None:
        raise UnsupportedError([Problem(doc.file, "kind", f"{kind} is not emulated by this version yet", doc.document)])
    if kind in _LATER:
        raise UnsupportedError([Problem(doc.file, "kind", f"{kind} is not emulated by this version yet", doc.document)])
    expected = (
        {"Namespace": "v1", "Pod": "v1"}.get(kind)
        or _CONTROLLERS.get(kind, (None,))[0]
        or EXTENSIONS.get(kind, (None,))[0]
    )
    if expected is None or (api != expected and not kinds.is_builtin_group(api)):
        # Not a kind we model (a Knative `Service` is a custom resource, not a v1 Service).
        problem = kinds.kind_problem(kind, api, MODELLED)
        if problem is not None:
            doc.error(problem, "apiVersion" if " is served as " in problem else "kind")
            return
        _decode_other(doc, kind, api, col)
        return
    if api != expected:
        doc.error(f"{kind} is served as apiVersion {expected!r}, got {api!r}", "apiVersion")
        return
    meta = doc.mapping("metadata", required=True)
    if meta is None:
        return
    meta.check_keys(_META_KNOWN, _META_IGNORED)
    name = meta.str("name", required=True)
    if name is None:
        return
    namespaced = kind not in _CLUSTER_SCOPED
    namespace = (meta.str("namespace", default="default") or "default") if namespaced else ""
    doc.document = meta.document = f"{kind} {namespace + '/' if namespace else ''}{name}"
    name_err = dns1123_label_error(name) if kind == "Namespace" else dns1123_subdomain_error(name)
    if name_err:
        meta.error(name_err, "name")
    labels = meta.string_map("labels")
    check_labels(meta.field("labels"), labels)
    meta.string_map("annotations")
    if not col.remember(doc, kind, namespace, name):
        return
    ref = ObjectRef(doc.file, kind, namespace, name)
    if kind == "Namespace":
        doc.check_keys(("apiVersion", "kind", "metadata"), ("spec", "status"))
        col.namespaces.append(Namespace(name, labels))
    elif kind == "Pod":
        doc.check_keys(("apiVersion", "kind", "metadata", "spec"), ("status",))
        spec = doc.mapping("spec", required=True)
        if spec is not None:
            col.pods.append(PodSpec(ref, _decode_pod_spec(spec, labels, meta.string_map("annotations"))))
    elif kind in EXTENSIONS:
        decoded = _extension(kind)(doc, ref, labels, meta.string_map("annotations"))
        if decoded is not None:
            col.extra[EXTENSIONS[kind][2]].append(decoded)
    else:
        _decode_controller(doc, ref, col)


def _decode_other(doc: Doc, kind: str, api: str, col: _Collector) -> None:
    """A kind that does not shape the network (or a custom resource): checked against
    Kubernetes' schema, remembered for the plan's note, otherwise left alone."""
    meta = doc.value.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    name = meta.get("name") or meta.get("generateName")
    namespace = ""
    if kinds.is_namespaced(api, kind):
        given = meta.get("namespace")
        namespace = given if isinstance(given, str) else ""
        namespace = namespace or "default"
    if isinstance(name, str) and name:
        doc.document = f"{kind} {namespace + '/' if namespace else ''}{excerpt(name)[1:-1]}"
    known = len(doc.problems.items)
    kinds.validate(doc, api, kind)
    if not isinstance(name, str) or not name:
        doc.error("required field is missing", "metadata.name")
        return
    if len(doc.problems.items) > known:
        return
    if "generateName" in meta and "name" not in meta:
        return  # `kubectl create` names it; never a duplicate
    group = api.rpartition("/")[0]
    builtin = group in kinds.catalog().groups
    if col.remember(doc, kind if builtin else f"{kind}.{group}", namespace, name):
        col.others.append(kinds.OtherObject(ObjectRef(doc.file, kind, namespace, name), api, builtin))


def _decode_controller(doc: Doc, ref: ObjectRef, col: _Collector) -> None:
    _, known, ignored = _CONTROLLERS[ref.kind]
    doc.check_keys(("apiVersion", "kind", "metadata", "spec"), ("status",))
    spec = doc.mapping("spec", required=True)
    if spec is None:
        return
    schedule, suspend = "", False
    if ref.kind == "CronJob":  # its jobTemplate.spec is decoded as a Job's
        spec, schedule, suspend = controllers.unwrap_cronjob(spec)
        if spec is None:
            return
        known, ignored = controllers.KINDS["Job"][1:]
    spec.check_keys(known, ignored)
    batch = ref.kind in ("Job", "CronJob")
    replicas = spec.int("replicas", default=1, minimum=0, maximum=MAX_REPLICAS)
    tdoc = spec.mapping("template", required=True)
    if tdoc is None:
        return
    tdoc.check_keys(("metadata", "spec"))
    tmeta = tdoc.mapping("metadata")
    tlabels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    if tmeta is not None:
        tmeta.check_keys(_META_KNOWN, _META_IGNORED)
        tlabels = tmeta.string_map("labels")
        check_labels(tmeta.field("labels"), tlabels)
        annotations = tmeta.string_map("annotations")
    pspec = tdoc.mapping("spec", required=True)
    if pspec is None:
        return
    template = _decode_pod_spec(pspec, tlabels, annotations)
    known_problems = len(spec.problems.items)
    if ref.kind == "ReplicationController":
        # An RC's selector is a plain map that defaults to the template's labels.
        sel_map = spec.string_map("selector") or dict(tlabels)
        selector = LabelSelector.of(sel_map)
    else:
        selector = decode_selector(spec.mapping("selector", required=not batch)) or LabelSelector()
        if spec.field("selector").present() and selector.is_empty() and len(spec.problems.items) == known_problems:
            spec.error(f"empty selector is invalid for a {ref.kind}", "selector")
    selector_ok = len(spec.problems.items) == known_problems  # no follow-on errors from a bad selector
    fields = None
    if ref.kind in controllers.KINDS or batch:
        fields, replicas = controllers.decode_fields("Job" if batch else ref.kind, spec, tdoc)
        if ref.kind == "CronJob":
            fields = dataclasses.replace(fields, schedule=schedule, suspend=suspend)
        if batch and not spec.field("selector").present():
            # the API server's Job defaulting: the pods carry the job's name, the selector picks it
            # (a CronJob's Jobs get theirs when it is triggered: experiment/jobs.py)
            selector = LabelSelector.of(controllers.job_labels(ref.name)) if ref.kind == "Job" else selector
            template = dataclasses.replace(
                template, labels={**template.labels, **(controllers.job_labels(ref.name) if ref.kind == "Job" else {})}
            )
            tlabels = dict(template.labels) or {"batch.kubernetes.io/job-name": ref.name}
    if not tlabels:
        tdoc.error("template labels are required so that the controller can select its pods", "metadata.labels")
    elif selector_ok and not selector.matches(tlabels):
        tdoc.error(
            f"selector `{selector}` does not match template labels { {k: v for k, v in sorted(tlabels.items())} }",
            "metadata.labels",
        )
    min_ready = spec.int("minReadySeconds", default=0, minimum=0, maximum=MAX_SECONDS)
    col.workloads.append(
        Workload(ref, replicas if replicas is not None else 1, selector, template, fields, min_ready or 0)
    )


def _decode_pod_spec(spec: Doc, labels: dict[str, str], annotations: dict[str, str]) -> PodTemplate:
    spec.check_keys(_POD_KNOWN, _POD_IGNORED)
    containers: list[Container] = []
    names: set[str] = set()
    port_names: set[str] = set()
    bound: dict[tuple[int, str], str] = {}
    for cdoc in spec.items("containers", required=True):
        if not cdoc.is_mapping():
            continue
        cdoc.check_keys(_CONTAINER_KNOWN, _CONTAINER_IGNORED)
        cname = cdoc.str("name", required=True) or ""
        if cname and dns1123_label_error(cname):
            cdoc.error(dns1123_label_error(cname) or "", "name")
        if cname in names:
            cdoc.error(f"duplicate container name {cname!r}", "name")
        names.add(cname)
        ports: list[ContainerPort] = []
        for pdoc in cdoc.items("ports"):
            if not pdoc.is_mapping():
                continue
            pdoc.check_keys(("containerPort", "protocol", "name", "hostPort", "hostIP"))
            number = pdoc.int("containerPort", required=True, minimum=1, maximum=65535)
            proto = pdoc.str("protocol", default="TCP") or "TCP"
            if proto not in PROTOCOLS:
                pdoc.error(f"must be one of {', '.join(PROTOCOLS)}, got {proto!r}", "protocol")
            pname = pdoc.str("name", default="") or ""
            if pname:
                err = port_name_error(pname)
                if err:
                    pdoc.error(err, "name")
                if pname in port_names:
                    pdoc.error(f"duplicate port name {pname!r} in the pod", "name")
                port_names.add(pname)
            if number is not None:
                key = (number, proto)
                if key in bound:
                    pdoc.error(
                        f"{proto} port {number} is already declared by container "
                        f"{bound[key]!r}: the containers of a pod share one network "
                        "namespace",
                        "containerPort",
                    )
                bound[key] = cname
                ports.append(ContainerPort(number, proto, pname, *podnet.decode_host_port(pdoc)))
        containers.append(Container(cname, tuple(ports)))
    if spec.field("containers").present() and not containers and isinstance(spec.value.get("containers"), list):
        spec.error("a pod needs at least one container", "containers")
    node_selector = spec.string_map("nodeSelector")
    check_labels(spec.field("nodeSelector"), node_selector)
    tolerations = []
    for tdoc in spec.items("tolerations"):
        if not tdoc.is_mapping():
            continue
        tdoc.check_keys(("key", "operator", "value", "effect"), ("tolerationSeconds",))
        op = tdoc.str("operator", default="Equal") or "Equal"
        if op not in ("Equal", "Exists"):
            tdoc.error(f"must be Equal or Exists, got {op!r}", "operator")
        effect = tdoc.str("effect", default="") or ""
        if effect not in ("", "NoSchedule", "PreferNoSchedule", "NoExecute"):
            tdoc.error(f"must be NoSchedule, PreferNoSchedule or NoExecute, got {effect!r}", "effect")
        tkey, value = tdoc.str("key", default="") or "", tdoc.str("value", default="") or ""
        # core/v1 validation: an empty key matches every key only with Exists; Exists takes no value.
        if not tkey and op == "Equal":
            tdoc.error("operator must be Exists when key is empty", "operator")
        if op == "Exists" and value:
            tdoc.error("value must be empty when operator is Exists", "value")
        seconds = tdoc.int("tolerationSeconds")
        if seconds is not None and effect != "NoExecute":
            tdoc.error("effect must be 'NoExecute' when `tolerationSeconds` is set", "effect")
        tolerations.append(Toleration(tkey, op, value, effect, seconds))
    hostname, subdomain = spec.str("hostname", default="") or "", spec.str("subdomain", default="") or ""
    for field_name, value in (("hostname", hostname), ("subdomain", subdomain)):
        if value and dns1123_label_error(value):
            spec.error(dns1123_label_error(value) or "", field_name)
    containers, network = podnet.decode_pod_network(spec, containers)
    return PodTemplate(
        labels=labels,
        containers=tuple(containers),
        node_name=spec.str("nodeName", default="") or "",
        node_selector=node_selector,
        tolerations=tuple(tolerations),
        annotations=annotations,
        # affinity and topologySpreadConstraints (kube-scheduler's inputs): spec/affinity.py
        **decode_scheduling(spec),
        hostname=hostname,
        subdomain=subdomain,
        lifecycle=decode_lifecycle(spec),
        **network,
    )


def _check_namespaces_exist(m: Manifests, col: _Collector, problems: Problems, existing: Iterable[str] = ()) -> None:
    known = m.namespace_names() | set(existing)
    others = [o.ref for o in (*m.services, *m.policies, *m.ingresses, *m.others) if getattr(o, "ref", None) is not None]
    for ref in [p.ref for p in m.pods] + [w.ref for w in m.workloads] + others:
        if ref.namespace and ref.namespace not in known:  # "" = a cluster-scoped object
            problems.add(
                Problem(
                    ref.file,
                    "metadata.namespace",
                    f"namespace {ref.namespace!r} does not exist: declare a Namespace object in the manifests",
                    str(ref),
                )
            )
