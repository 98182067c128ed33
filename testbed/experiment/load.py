"""Load and validate an experiment file (spec-layer code for experiments; pure)."""

from __future__ import annotations

import ipaddress
import os
import re

from ..errors import Problem, SpecError, excerpt
from ..faults.decode import decode_fault, decode_recover, decode_timers
from ..lifecycle.delays import decode_delays, joined
from ..spec.decode import Doc, Problems, load_documents
from ..spec.inputs import expand_inputs
from ..spec.labels import decode_selector
from ..spec.model import PROTOCOLS
from ..spec.names import label_key_error, label_value_error, port_name_error
from ..spec.selectors import LabelSelector
from ..spec.workloads import MAX_REPLICAS
from .changes import Action, Apply, Delete, DeletePods, Label, LabelNamespace, Scale, SetProbe
from .check import check_experiment
from .jobs import Trigger
from .model import (
    OUTCOMES,
    CaptureSpec,
    During,
    Endpoints,
    Expectation,
    Experiment,
    HttpRequest,
    PodSelection,
    ProbeGroup,
    ServiceTarget,
    Step,
)
from .nodes import LabelNodes
from .rollout import Rollout
from .taints import TaintNodes, parse_taint

API = "testbed/v1alpha1"
MAX_STEPS = 1_000
MAX_SEED = 2**32 - 1
MAX_FILTER = 500  # characters of a capture filter
# Linux interface names: at most 15 bytes, no '/', ':' or whitespace (dev_valid_name).
_IFNAME = re.compile(r"^[A-Za-z0-9_.+@-]{1,15}$")


def load_experiment(path: str, check: bool = True) -> Experiment:
    """Decode an experiment file; with `check`, also validate it against its cluster step by
    step (experiment/check.py: every file it names, every name it uses, every probe group
    selecting something), so that nothing is built from an experiment that cannot run."""
    exp = _decode(path)
    if check:
        check_experiment(exp)
    return exp


def _decode(path: str) -> Experiment:
    problems = Problems()
    docs = load_documents(path)
    if len(docs) != 1:
        problems.add(Problem(path, "", f"an experiment file holds one document, found {len(docs)}"))
        problems.raise_if_any()
    doc = Doc(docs[0][1], path, problems, document="Experiment")
    if not doc.is_mapping():
        problems.raise_if_any()
    doc.check_keys(("apiVersion", "kind", "metadata", "spec"))
    if doc.value.get("apiVersion") != API or doc.value.get("kind") != "Experiment":
        doc.error(f"expected apiVersion {API} and kind Experiment")
    meta = doc.mapping("metadata", required=True)
    name = "experiment"
    description = ""
    if meta is not None:
        meta.check_keys(("name", "description"))
        name = meta.str("name", required=True) or name
        description = meta.str("description", default="") or ""
    spec = doc.mapping("spec", required=True)
    problems.raise_if_any()
    assert spec is not None
    spec.check_keys(("topology", "manifests", "seed", "steps", "timers", "lifecycle"))
    tdoc = spec.mapping("timers")
    timers = decode_timers(tdoc)
    ldoc = spec.mapping("lifecycle")
    lifecycle = decode_delays(ldoc) if ldoc is not None else None
    timers, lifecycle = joined(timers, tdoc, lifecycle, ldoc)  # one Timers for faults and lifecycle
    base = os.path.dirname(os.path.abspath(path))
    topology = spec.str("topology", required=True) or ""
    manifests = []
    for mdoc in spec.items("manifests"):
        if isinstance(mdoc.value, str):
            manifests.extend(_files(mdoc, _resolve(base, mdoc.value)))
        else:
            mdoc.error("expected a file path")
    seed = spec.int("seed", default=0, minimum=0, maximum=MAX_SEED)
    step_docs = list(spec.items("steps", required=True))
    if isinstance(spec.value.get("steps"), list) and not step_docs:
        spec.error("an experiment needs at least one step", "steps")
    if len(step_docs) > MAX_STEPS:
        spec.error(f"{len(step_docs):,} steps: at most {MAX_STEPS:,}", "steps")
        step_docs = []
    for sdoc in step_docs:
        raw_name = sdoc.value.get("name") if isinstance(sdoc.value, dict) else None
        sdoc.document = f"Experiment {name}, step {excerpt(raw_name)}" if isinstance(raw_name, str) else "Experiment"
    steps = tuple(_step(s, base) for s in step_docs if s.is_mapping())
    seen: set[str] = set()
    for i, step in enumerate(steps):
        if step.name in seen:
            spec.error(f"duplicate step name {step.name!r}", f"steps[{i}].name")
        seen.add(step.name)
    problems.raise_if_any()
    return Experiment(
        name=name,
        file=path,
        topology=_resolve(base, topology),
        manifests=tuple(manifests),
        seed=seed,
        steps=steps,
        description=description,
        timers=timers,
        lifecycle=lifecycle,
    )


def _files(doc: Doc, path: str) -> list[str]:
    """A manifest path as `kubectl apply -f` takes it: a file, or a folder's manifest files."""
    try:
        return expand_inputs([path])
    except SpecError as exc:
        doc.error(exc.problems[0].message)
        return []


def _resolve(base: str, path: str) -> str:
    return os.path.normpath(path if os.path.isabs(path) else os.path.join(base, path))


def _step(doc: Doc, base: str) -> Step:
    doc.check_keys(("name", "actions", "probes", "capture", "during"))
    during = None
    ddoc = doc.mapping("during")
    if ddoc is not None:
        ddoc.check_keys(("probes", "interval", "settle"))
        groups_during = tuple(_group(g) for g in ddoc.items("probes", required=True) if g.is_mapping())
        numbers = {}
        for key, default, hi in (("interval", 0.1, 5), ("settle", 0.5, 30)):
            value = ddoc.field(key).value if ddoc.field(key).present() else default
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= hi:
                ddoc.error(f"expected seconds in (0, {hi}]", key)
                value = default
            numbers[key] = float(value)
        during = During(groups_during, numbers["interval"], numbers["settle"])
    name = doc.str("name", required=True) or ""
    actions = tuple(a for a in (_action(d, base) for d in doc.items("actions") if d.is_mapping()) if a is not None)
    groups = tuple(_group(g) for g in doc.items("probes") if g.is_mapping())
    if not actions and not groups:
        doc.error("a step needs actions, probes or both")
    captures = []
    for cdoc in doc.items("capture"):
        if not cdoc.is_mapping():
            continue
        cdoc.check_keys(("at", "interface", "filter", "maxPackets"))
        at = cdoc.str("at", required=True)
        interface = cdoc.str("interface", default="eth0") or "eth0"
        if not _IFNAME.match(interface):
            cdoc.error(
                f"{excerpt(interface)} is not an interface name (1-15 letters, digits, '.', '-', '_')", "interface"
            )
        bpf = cdoc.str("filter", default="") or ""
        if len(bpf) > MAX_FILTER:
            cdoc.error(f"a filter of {len(bpf):,} characters: at most {MAX_FILTER}", "filter")
        elif any(word.startswith("-") for word in bpf.split()):
            # tcpdump takes the filter's words as arguments: a word starting with '-' would be an option
            cdoc.error(f"{excerpt(bpf)}: a filter word may not start with '-'", "filter")
        if at:
            captures.append(
                CaptureSpec(
                    at, interface, bpf, cdoc.int("maxPackets", default=10000, minimum=1, maximum=1000000) or 10000
                )
            )
    if during is not None and not actions:
        doc.error("`during` probes run while actions apply: add actions", "during")
    return Step(name, groups, actions, tuple(captures), during)


_SCALABLE = {
    "deployment": "Deployment",
    "replicaset": "ReplicaSet",
    "replicationcontroller": "ReplicationController",
    "statefulset": "StatefulSet",
}
_ACTIONS = (
    "scale",
    "deletePods",
    "label",
    "apply",
    "delete",
    "rollout",
    "rollback",
    "trigger",
    "fault",
    "recover",
    "probe",
    "taint",
)
PROBES = ("readiness", "liveness", "startup")


def _action(doc: Doc, base: str) -> Action | None:
    """One change: scale, deletePods, label, apply or delete (see experiment/changes.py)."""
    doc.check_keys(_ACTIONS)
    chosen = [k for k in _ACTIONS if k in doc.value]
    if len(chosen) != 1:
        doc.error(f"give exactly one of {', '.join(_ACTIONS)}")
        return None
    kind = chosen[0]
    if kind == "fault":  # faults/decode.py
        return decode_fault(doc.field("fault"))
    if kind == "recover":
        return decode_recover(doc.field("recover"))
    if kind == "scale":
        sdoc = doc.mapping("scale")
        if sdoc is None:
            return None
        sdoc.check_keys(tuple(_SCALABLE) + ("namespace", "replicas"))
        targets = [k for k in _SCALABLE if k in sdoc.value]
        if len(targets) != 1:
            sdoc.error("name exactly one of deployment, replicaset, replicationcontroller, statefulset")
            return None
        name = sdoc.str(targets[0], required=True)
        replicas = sdoc.int("replicas", required=True, minimum=0, maximum=MAX_REPLICAS)
        if name is None or replicas is None:
            return None
        return Scale(_SCALABLE[targets[0]], name, replicas, sdoc.str("namespace", default="default") or "default")
    if kind in ("rollout", "rollback"):
        rdoc = doc.mapping(kind)
        if rdoc is None:
            return None
        keys = ("deployment", "statefulset", "daemonset", "namespace", "stepDelay") + (
            ("image", "maxSurge", "maxUnavailable") if kind == "rollout" else ()
        )
        rdoc.check_keys(keys)
        delay = rdoc.field("stepDelay").value if rdoc.field("stepDelay").present() else 0.3
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= 10:
            rdoc.error("expected seconds in [0, 10]", "stepDelay")
            delay = 0.3
        surge, unavailable = "25%", "25%"
        for key in ("maxSurge", "maxUnavailable"):
            raw = rdoc.value.get(key, "25%")
            value = str(raw) if isinstance(raw, (int, str)) and not isinstance(raw, bool) else ""
            number = value[:-1] if value.endswith("%") else value
            if not (
                number.isascii() and number.isdigit() and int(number) <= (100 if value.endswith("%") else MAX_REPLICAS)
            ):
                rdoc.error(
                    f"expected a number (at most {MAX_REPLICAS:,}) or a percentage (at most 100%), got {excerpt(raw)}",
                    key,
                )
                continue
            if key == "maxSurge":
                surge = value
            else:
                unavailable = value
        # a StatefulSet or DaemonSet rolls by its own updateStrategy (experiment/updates.py)
        named = [k for k in ("deployment", "statefulset", "daemonset") if k in rdoc.value]
        if len(named) > 1:
            rdoc.error("name exactly one of deployment, statefulset, daemonset")
        target = named[0] if named else "deployment"
        return Rollout(
            rdoc.str(target, required=True) or "",
            rdoc.str("namespace", default="default") or "default",
            rdoc.str("image", default="") or "",
            kind == "rollback",
            surge,
            unavailable,
            float(delay),
            kind={"deployment": "Deployment", "statefulset": "StatefulSet", "daemonset": "DaemonSet"}[target],
        )
    if kind in ("apply", "delete"):
        files = []
        for fdoc in doc.items(kind, required=True):
            if isinstance(fdoc.value, str):
                files.extend(_files(fdoc, _resolve(base, fdoc.value)))
            else:
                fdoc.error("expected a file path")
        return Apply(tuple(files)) if kind == "apply" else Delete(tuple(files))
    if kind == "deletePods":
        return DeletePods(_pod_selection(doc.field("deletePods")))
    if kind == "trigger":  # a CronJob's Job, now (experiment/jobs.py)
        tdoc = doc.mapping("trigger")
        if tdoc is None:
            return None
        tdoc.check_keys(("cronjob", "namespace", "job"))
        return Trigger(
            tdoc.str("cronjob", required=True) or "",
            tdoc.str("namespace", default="default") or "default",
            tdoc.str("job", default="") or "",
        )
    if kind == "probe":
        pdoc = doc.mapping("probe")
        if pdoc is None:
            return None
        pdoc.check_keys(("pods", "probe", "passes"))
        which = pdoc.str("probe", default="readiness") or "readiness"
        if which not in PROBES:
            pdoc.error(f"must be one of {', '.join(PROBES)}, got {excerpt(which)}", "probe")
        passes = pdoc.bool("passes", required=True)
        if not pdoc.field("pods").present():
            pdoc.error("required field is missing", "pods")
            return None
        return SetProbe(_pod_selection(pdoc.field("pods")), which, bool(passes))
    if kind == "taint":  # kubectl taint nodes (experiment/taints.py)
        return _taint(doc)
    ldoc = doc.mapping("label")
    if ldoc is None:
        return None
    ldoc.check_keys(("pods", "namespace", "labels", "nodes"))
    labels: dict[str, str | None] = {}
    lmap = ldoc.mapping("labels", required=True)
    for key, value in lmap.value.items() if lmap is not None else ():
        assert lmap is not None  # no items otherwise
        if not isinstance(key, str):
            lmap.error(f"label keys must be strings, got {excerpt(key)}")
        elif value is None or isinstance(value, str):
            # Kubernetes' rules, as for labels in manifests (spec/labels.py)
            err = label_key_error(key) or (label_value_error(value) if value is not None else None)
            if err:
                lmap.error(err, key)
            else:
                labels[key] = value
        else:
            lmap.error(f"expected a string (quote it) or null to remove the label, got {excerpt(value)}", key)
    if lmap is not None and not lmap.value:
        lmap.error("give at least one label to set (or null to remove)")
    if ldoc.field("nodes").present() and not ldoc.field("pods").present():  # experiment/nodes.py
        return LabelNodes(tuple(_names(ldoc, "nodes")), labels)
    if ldoc.field("namespace").present() and not ldoc.field("pods").present():
        return LabelNamespace(ldoc.str("namespace") or "", labels)
    if not ldoc.field("pods").present():
        ldoc.error("give `pods` (or `namespace` alone to label the namespace)", "pods")
        return None
    return Label(_pod_selection(ldoc.field("pods")), labels)


def _group(doc: Doc) -> ProbeGroup:
    raw_name = doc.value.get("name")
    if isinstance(raw_name, str):  # every problem below names its group
        doc.document = f"{doc.document}, probe group {excerpt(raw_name)}"
    doc.check_keys(
        (
            "name",
            "from",
            "to",
            "ports",
            "protocols",
            "repeat",
            "timeout",
            "expect",
            "method",
            "sourceIP",
            "seconds",
            "http",
            "family",
        )
    )
    http = None
    hdoc = doc.mapping("http")
    if hdoc is not None:
        hdoc.check_keys(("host", "path", "scheme"))
        path = hdoc.str("path", default="/") or "/"
        scheme = hdoc.str("scheme", default="http") or "http"
        if not path.startswith("/"):
            hdoc.error("must start with /", "path")
        if scheme not in ("http", "https"):
            hdoc.error(f"must be http or https, got {scheme!r}", "scheme")
        # without a host, the Host header is the URL's authority (experiment/httpurl.py)
        http = HttpRequest(hdoc.str("host", default="") or "", path, scheme)
    seconds = doc.field("seconds").value if doc.field("seconds").present() else 1.0
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= 10:
        doc.error("expected a number of seconds in (0, 10]", "seconds")
        seconds = 1.0
    method = doc.str("method", default="socket") or "socket"
    if method not in ("socket", "scapy", "iperf3"):
        doc.error(f"must be socket, scapy or iperf3, got {method!r}", "method")
    source_ip = doc.str("sourceIP")
    if source_ip is not None and method != "scapy":
        doc.error("a chosen source address needs `method: scapy` (a socket sends from its own address)", "sourceIP")
    elif source_ip is not None:
        given = doc.field("family").value  # the group's own family (issue 15); none: the address's
        v6 = given == "IPv6"
        try:
            version = ipaddress.ip_address(source_ip).version
            if given in ("IPv4", "IPv6") and version != (6 if v6 else 4):
                doc.error(f"{excerpt(source_ip)}: only IPv{6 if v6 else 4} in this group's family", "sourceIP")
        except ValueError:
            either = "" if given in ("IPv4", "IPv6") else " (nor an IPv6 one)"
            doc.error(f"{excerpt(source_ip)} is not an IPv{6 if v6 else 4} address{either}", "sourceIP")
            source_ip = None
    name = doc.str("name", required=True) or ""
    source = _endpoints(doc.mapping("from", required=True), as_source=True)
    target = _endpoints(doc.mapping("to", required=True), as_source=False)
    ports: list[int | str] = []
    for pdoc in doc.items("ports"):
        value = pdoc.value
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            pdoc.error(f"expected a port number or a port name, got {excerpt(value)}")
        elif isinstance(value, int) and not 1 <= value <= 65535:
            pdoc.error(f"port {excerpt(value)} is out of range [1, 65535]")
        elif isinstance(value, str) and port_name_error(value):
            pdoc.error(port_name_error(value) or "")
        else:
            ports.append(value)
    protocols: list[str] = []
    for pdoc in doc.items("protocols"):
        if pdoc.value in PROTOCOLS or (pdoc.value == "ICMP" and method == "scapy"):
            protocols.append(pdoc.value)
        else:
            extra = " (ICMP with method: scapy)" if pdoc.value == "ICMP" else ""
            pdoc.error(f"must be one of {', '.join(PROTOCOLS)}{extra}, got {excerpt(pdoc.value)}")
    repeat = doc.int("repeat", default=1, minimum=1, maximum=10000)
    timeout = 1.0
    tdoc = doc.field("timeout")
    if tdoc.present():
        value = tdoc.value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 30:
            tdoc.error("expected a number of seconds in (0, 30]")
        else:
            timeout = float(value)
    expect = Expectation()
    edoc = doc.mapping("expect")
    if edoc is not None:
        edoc.check_keys(("outcome", "sourceIP"))
        outcome = edoc.str("outcome", default="connected") or "connected"
        if outcome not in OUTCOMES:
            edoc.error(f"must be one of {', '.join(OUTCOMES)}, got {outcome!r}", "outcome")
        src = edoc.str("sourceIP", default="sender") or "sender"
        if src not in ("sender", "node", "any"):
            edoc.error(f"must be sender, node or any, got {src!r}", "sourceIP")
        expect = Expectation(outcome, src)
    if target.localhost and source.pods is None:
        doc.error("`to: {localhost: true}` needs `from: {pods: ...}`", "to.localhost")
    family = doc.str("family", default="") or ""  # issue 15; none: the cluster's primary (experiment/family.py)
    if family not in ("", "IPv4", "IPv6") or doc.field("family").value == "":
        doc.error(f"must be IPv4 or IPv6, got {excerpt(family)}", "family")
    return ProbeGroup(
        name,
        source,
        target,
        tuple(ports),
        tuple(protocols),
        repeat or 1,
        float(timeout),
        expect,
        "http" if http else method,
        source_ip,
        float(seconds),
        http,
        family,
    )


def _endpoints(doc: Doc | None, as_source: bool) -> Endpoints:
    if doc is None:
        return Endpoints()
    allowed = ("pods", "nodes", "hosts") if as_source else ("pods", "localhost", "service", "hosts", "hostPort")
    doc.check_keys(allowed)
    chosen = [k for k in allowed if k in doc.value]
    if len(chosen) != 1:
        doc.error(f"give exactly one of {', '.join(allowed)}")
        return Endpoints()
    kind = chosen[0]
    if kind == "service":
        sdoc = doc.mapping("service")
        if sdoc is None:
            return Endpoints()
        sdoc.check_keys(("name", "namespace", "via", "nodes", "hostname"))
        via = sdoc.str("via", default="clusterIP") or "clusterIP"
        if via not in ("clusterIP", "nodePort", "loadBalancer", "externalIP", "dns"):
            sdoc.error(f"must be clusterIP, nodePort, loadBalancer, externalIP or dns, got {via[:40]!r}", "via")
        nodes = tuple(_names(sdoc, "nodes"))
        hostname = sdoc.str("hostname", default="") or ""
        if hostname and via != "dns":
            sdoc.error("a pod's own DNS name is reached with `via: dns`", "hostname")
        return Endpoints(
            service=ServiceTarget(
                sdoc.str("name", required=True) or "",
                sdoc.str("namespace", default="default") or "default",
                via,
                nodes,
                hostname,
            )
        )
    if kind == "hostPort":
        return Endpoints(host_port=_pod_selection(doc.field("hostPort")))
    if kind == "localhost":
        if doc.value["localhost"] is not True:
            doc.error("expected true", "localhost")
        return Endpoints(localhost=True)
    if kind in ("nodes", "hosts"):
        value = doc.value[kind]
        if value == "all":
            names: tuple[str, ...] = ()
        elif isinstance(value, list) and value:
            names = tuple(_names(doc, kind))
        else:
            doc.error(f"expected `all` or a non-empty list of names, got {excerpt(value)}", kind)
            names = ()
        return Endpoints(nodes=names) if kind == "nodes" else Endpoints(hosts=names)
    return Endpoints(pods=_pod_selection(doc.field("pods")))


def _names(doc: Doc, key: str) -> list[str]:
    """A list of names; anything else is an error, never "every one" (`names: [42]`)."""
    out = []
    for ndoc in doc.items(key):
        if isinstance(ndoc.value, str) and ndoc.value:
            out.append(ndoc.value)
        else:
            ndoc.error(f"expected a name, got {excerpt(ndoc.value)}")
    return out


def _pod_selection(pdoc: Doc) -> PodSelection:
    """`all`, {} or {namespace, names, matchLabels, matchExpressions}."""
    if pdoc.value == "all" or pdoc.value == {}:
        return PodSelection()
    if not pdoc.is_mapping():
        return PodSelection()
    pdoc.check_keys(("namespace", "names", "matchLabels", "matchExpressions"))
    names = tuple(_names(pdoc, "names"))
    if pdoc.field("names").value == []:
        pdoc.error("an empty list selects no pod: leave `names` out to select by labels or namespace", "names")
    sel_raw = {k: pdoc.value[k] for k in ("matchLabels", "matchExpressions") if k in pdoc.value}
    selector = (
        decode_selector(Doc(sel_raw, pdoc.file, pdoc.problems, pdoc.path, pdoc.document))
        if sel_raw
        else LabelSelector()
    )
    return PodSelection(pdoc.str("namespace"), names, selector or LabelSelector())


def _taint(doc: Doc) -> TaintNodes | None:
    """`taint: {nodes: [NODE...], taints: ["key=value:Effect", "key-"...]}`, as kubectl takes them."""
    tdoc = doc.mapping("taint")
    if tdoc is None:
        return None
    tdoc.check_keys(("nodes", "taints"))
    changes = []
    items = list(tdoc.items("taints", required=True))
    for item in items:
        if not isinstance(item.value, str):
            item.error(f"expected a taint such as key=value:NoExecute or key-, got {excerpt(item.value)}")
            continue
        try:
            changes.append(parse_taint(item.value))
        except ValueError as exc:
            item.error(str(exc))
    if tdoc.field("taints").present() and not items:
        tdoc.error("give at least one taint", "taints")
    return TaintNodes(tuple(_names(tdoc, "nodes")), tuple(changes))
