"""The generated NetworkPolicy conformance cases on the classic x/y/z model; pure.

    cases = generate_cases(seed=0)            # ~330 cases, deterministic for a seed
    case.steps[i].policies                    # every NetworkPolicySpec in force at step i
    case.steps[i].pod_labels / namespace_labels   # full label sets that differ from the model
    case.steps[i].yaml                        # the same policies as YAML documents

The model (data/xyz.yaml, mirrored in MODEL_*): namespaces x, y, z and bare
pods a, b, c in each, serving 80 and 81 on TCP, UDP and SCTP (ports serve-<port>-<proto>).

A case is a list of steps. A step is the **whole desired state** the case wants at that point,
not a delta: the policies in force, and the pods and namespaces whose labels differ from the
model (full label sets, not patches). The state before a case is the model without policies.
conformance.transition() turns two consecutive steps into the changes to make (apply, update
or delete a policy, relabel a pod or a namespace); conformance.step_manifests() into the
desired Manifests a controller reconciles to.

ipBlock cases (a choice, documented here): the generator does not know pod IPs, so ipBlocks
are written against the pod CIDRs of the default 3-node topology, which the model pins its
pods to with nodeName (three pods per node, one of each namespace): 10.244.0.0/24
(kind-control-plane: x/a y/c z/b), 10.244.1.0/24 (kind-worker: x/b y/a z/c), 10.244.2.0/24
(kind-worker2: x/c y/b z/a), their unions and 10.244.0.0/16 with excepts, and ranges that hold
no pod at all (the underlay 192.168.1.0/24, 0.0.0.0/0 except 10.244.0.0/16). No case needs
an address resolved at run time. The expected tables never assume a placement either: they
are computed by the oracle from the actual World (real IPs from the plan), so on another
topology a case stays correct, only less sharp.

Tags: the first tag of a case is its family (what the generator meant to test; the JUnit
classname); the others are inferred from the decoded policies and the step transitions
(infer_tags), so that "every feature appears in N cases" is measured, not declared.

Policies are written as Python data, dumped to YAML and decoded with the manifest loader
(decode_text: load_manifests without files), so every case is valid per the API by
construction; a case that does not decode is a bug in this module and raises at generation.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import yaml

from ..errors import Problem, SpecError
from ..spec.decode import Doc, Problems
from ..spec.model import Manifests, Namespace
from ..spec.netpol import NetworkPolicySpec

# -- the model -----------------------------------------------------------------------------------

MODEL_NAMESPACES: dict[str, dict[str, str]] = {
    "x": {"ns": "x", "team": "red"}, "y": {"ns": "y", "team": "blue"}, "z": {"ns": "z"}}
MODEL_POD_LABELS: dict[str, dict[str, str]] = {
    "a": {"pod": "a", "tier": "web"}, "b": {"pod": "b", "tier": "db"}, "c": {"pod": "c"}}
NODES = ("kind-control-plane", "kind-worker", "kind-worker2")
NODE_CIDRS = {"kind-control-plane": "10.244.0.0/24", "kind-worker": "10.244.1.0/24",
              "kind-worker2": "10.244.2.0/24"}
POD_NETWORK = "10.244.0.0/16"
PODS = tuple(f"{ns}/{p}" for ns in MODEL_NAMESPACES for p in MODEL_POD_LABELS)
PORTS = (80, 81)
PROTOCOLS = ("TCP", "UDP", "SCTP")
SOURCE = "conformance"   # the file name decoded policies carry: conformance/<case>.yaml


def model_node(ref: str) -> str:
    """The node the model pins pod `ns/name` to (x/a on the control plane, x/b on kind-worker...)."""
    ns, _, name = ref.partition("/")
    return NODES[(list(MODEL_NAMESPACES).index(ns) + list(MODEL_POD_LABELS).index(name)) % len(NODES)]


def model_pod_labels(ref: str) -> dict[str, str]:
    return dict(MODEL_POD_LABELS[ref.partition("/")[2]])


def model_namespace_labels(name: str) -> dict[str, str]:
    return dict(MODEL_NAMESPACES[name])


# -- feature tags --------------------------------------------------------------------------------

FEATURES = (
    "deny-ingress", "deny-egress", "deny-both", "allow-all-ingress", "allow-all-egress",
    "target-selector", "pod-selector", "match-labels", "expr-in", "expr-notin", "expr-exists",
    "expr-doesnotexist", "namespace-selector", "namespace-selector-all", "namespace-and-pod",
    "peers-or", "ip-block", "ip-block-except", "port-number", "port-name", "end-port",
    "protocol-tcp", "protocol-udp", "protocol-sctp", "protocol-all-ports", "multiple-policies",
    "several-namespaces", "ingress-and-egress", "policy-types-inferred", "ignored-rules",
    "multi-step", "apply-policy", "update-policy", "delete-policy", "relabel-pod", "relabel-namespace",
)


# -- cases ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """The desired state at one point of a case (not a delta)."""

    policies: tuple[NetworkPolicySpec, ...] = ()
    texts: tuple[str, ...] = ()                          # each policy's YAML, same order
    pod_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)       # "x/a" -> labels
    namespace_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # "x" -> labels
    note: str = ""                                       # what changed since the previous step

    __hash__ = None  # type: ignore[assignment]   # holds dicts

    @property
    def yaml(self) -> str:
        return "---\n".join(self.texts)

    def policy_names(self) -> tuple[str, ...]:
        return tuple(p.full_name for p in self.policies)

    def text_of(self, full_name: str) -> str:
        return dict(zip(self.policy_names(), self.texts))[full_name]

    def labels_of_pod(self, ref: str) -> dict[str, str]:
        return dict(self.pod_labels[ref]) if ref in self.pod_labels else model_pod_labels(ref)

    def labels_of_namespace(self, name: str) -> dict[str, str]:
        return dict(self.namespace_labels[name]) if name in self.namespace_labels else model_namespace_labels(name)

    def key(self) -> tuple:
        """What makes two steps the same state (used to keep cases distinct)."""
        return (tuple(sorted(self.texts)),
                tuple(sorted((k, tuple(sorted(v.items()))) for k, v in self.pod_labels.items())),
                tuple(sorted((k, tuple(sorted(v.items()))) for k, v in self.namespace_labels.items())))


BASE = Step(note="the model without policies")


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    tags: tuple[str, ...]      # tags[0]: the family; the rest inferred (FEATURES)
    steps: tuple[Step, ...]

    @property
    def family(self) -> str:
        return self.tags[0]

    def key(self) -> tuple:
        return tuple(s.key() for s in self.steps)


# -- decoding manifests from text -----------------------------------------------------------------

def decode_text(text: str, source: str = "<text>", existing: Iterable[Namespace] = ()) -> Manifests:
    """`load_manifests` for YAML text instead of files: same strict decoding, same messages
    (the source name stands for the file). `existing` namespaces count as already in the
    cluster for the check that every namespaced object's namespace exists."""
    from ..spec import workloads
    from ..spec.decode import _StrictLoader

    problems = Problems()
    col = workloads._Collector(problems)
    try:
        docs = list(yaml.load_all(text, Loader=_StrictLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError([Problem(source, where, f"malformed YAML: {reason}")]) from None
    for index, raw in enumerate(docs):
        if raw is not None:
            workloads._decode_object(Doc(raw, source, problems, document=f"document {index + 1}"), col)
    manifests = Manifests(tuple(col.namespaces), tuple(col.pods), tuple(col.workloads), (source,),
                          **{name: tuple(items) for name, items in col.extra.items()})
    known = dataclasses.replace(manifests, namespaces=tuple(existing) + manifests.namespaces)
    workloads._check_namespaces_exist(known, col, problems)
    problems.raise_if_any()
    return manifests


def model_namespaces() -> tuple[Namespace, ...]:
    return tuple(Namespace(n, dict(labels)) for n, labels in MODEL_NAMESPACES.items())


def dump(doc: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=None, width=100)


def decode_policies(texts: Iterable[str], source: str) -> tuple[NetworkPolicySpec, ...]:
    texts = tuple(texts)
    if not texts:
        return ()
    m = decode_text("---\n".join(texts), source, model_namespaces())
    if len(m.policies) != len(texts) or m.namespaces or m.pods or m.workloads:
        raise SpecError([Problem(source, "", "expected NetworkPolicy documents only")])
    return m.policies


# -- writing policies as data ---------------------------------------------------------------------

def ml(**labels: str) -> dict:
    """A selector by matchLabels."""
    return {"matchLabels": dict(labels)}


def ex(key: str, op: str, *values: str, labels: Mapping[str, str] | None = None) -> dict:
    """A selector with one matchExpression (and optional matchLabels)."""
    req: dict[str, Any] = {"key": key, "operator": op}
    if values:
        req["values"] = list(values)
    out: dict[str, Any] = {"matchLabels": dict(labels)} if labels else {}
    out["matchExpressions"] = [req]
    return out


ALL: dict = {}


def pods(sel: Mapping) -> dict:
    return {"podSelector": dict(sel)}


def nss(sel: Mapping) -> dict:
    return {"namespaceSelector": dict(sel)}


def both(ns_sel: Mapping, pod_sel: Mapping) -> dict:
    return {"namespaceSelector": dict(ns_sel), "podSelector": dict(pod_sel)}


def block(cidr: str, *excepts: str) -> dict:
    return {"ipBlock": {"cidr": cidr, **({"except": list(excepts)} if excepts else {})}}


def port(number: int | str | None = None, protocol: str | None = None, end: int | None = None) -> dict:
    out: dict[str, Any] = {}
    if protocol is not None:
        out["protocol"] = protocol
    if number is not None:
        out["port"] = number
    if end is not None:
        out["endPort"] = end
    return out


def rule(peers: list | None = None, ports: list | None = None) -> dict:
    """A rule; None peers/ports: the key is left out (every peer / every port)."""
    return {"peers": peers, "ports": ports}


def netpol(name: str, ns: str, select: Mapping | None = None, ingress: list | None = None,
           egress: list | None = None, types: list[str] | None = None) -> dict:
    spec: dict[str, Any] = {"podSelector": dict(select or {})}
    if types is not None:
        spec["policyTypes"] = list(types)
    for key, rules, peer_key in (("ingress", ingress, "from"), ("egress", egress, "to")):
        if rules is None:
            continue
        out = []
        for r in rules:
            item: dict[str, Any] = {}
            if r.get("peers") is not None:
                item[peer_key] = list(r["peers"])
            if r.get("ports") is not None:
                item["ports"] = list(r["ports"])
            out.append(item)
        spec[key] = out
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def deny(name: str, ns: str, direction: str = "ingress", select: Mapping | None = None) -> dict:
    types = {"ingress": ["Ingress"], "egress": ["Egress"], "both": ["Ingress", "Egress"]}[direction]
    return netpol(name, ns, select, types=types)


def allow(name: str, ns: str, direction: str, select: Mapping | None, rules: list,
          types: list[str] | None = None) -> dict:
    """A policy with rules in one direction; egress policies name policyTypes [Egress]."""
    if direction == "ingress":
        return netpol(name, ns, select, ingress=rules, types=types)
    return netpol(name, ns, select, egress=rules, types=types or ["Egress"])


def _key(doc: Mapping) -> tuple[str, str]:
    return doc["metadata"]["namespace"], doc["metadata"]["name"]


def _labels_text(changes: Mapping[str, str | None]) -> str:
    return " ".join(f"{k}-" if v is None else f"{k}={v}" for k, v in changes.items())


def _diff(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {k: v for k, v in after.items() if before.get(k) != v}
    out.update({k: None for k in before if k not in after})
    return out


class Seq:
    """Builds a case step by step: each `step()` records the state reached so far."""

    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], dict] = {}
        self.pods: dict[str, dict[str, str]] = {}
        self.nss: dict[str, dict[str, str]] = {}
        self.ops: list[str] = []
        self.steps: list[tuple[list[dict], dict, dict, str]] = []

    def apply(self, *docs: dict) -> "Seq":
        for doc in docs:
            k = _key(doc)
            if k in self.docs and dump(self.docs[k]) == dump(doc):
                continue
            self.ops.append(f"{'update' if k in self.docs else 'apply'} {k[0]}/{k[1]}")
            self.docs[k] = doc
        return self

    def delete(self, ns: str, name: str) -> "Seq":
        del self.docs[(ns, name)]
        self.ops.append(f"delete {ns}/{name}")
        return self

    def label_pod(self, ref: str, changes: Mapping[str, str | None]) -> "Seq":
        self._label(self.pods, ref, model_pod_labels(ref), changes, "pod")
        return self

    def label_ns(self, name: str, changes: Mapping[str, str | None]) -> "Seq":
        self._label(self.nss, name, model_namespace_labels(name), changes, "namespace")
        return self

    def _label(self, state: dict[str, dict[str, str]], key: str, model: dict[str, str],
               changes: Mapping[str, str | None], what: str) -> None:
        """Full label sets in `state`, only where they differ from the model; a no-op is not noted."""
        before = state.get(key, model)
        after = self._relabel(before, changes)
        if after == before:
            return
        if after == model:
            state.pop(key, None)
        else:
            state[key] = after
        self.ops.append(f"label {what} {key} {_labels_text(_diff(before, after))}")

    @staticmethod
    def _relabel(labels: Mapping[str, str], changes: Mapping[str, str | None]) -> dict[str, str]:
        out = dict(labels)
        for k, v in changes.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = v
        return out

    def state(self) -> tuple:
        return (tuple(dump(d) for d in self.docs.values()), sorted(self.pods.items()), sorted(self.nss.items()))

    def last_state(self) -> tuple | None:
        if not self.steps:
            return None
        docs, pod_labels, ns_labels, _ = self.steps[-1]
        return (tuple(dump(d) for d in docs), sorted(pod_labels.items()), sorted(ns_labels.items()))

    def step(self, note: str = "") -> "Seq":
        note = note or "; ".join(self.ops) or "no policy"
        self.steps.append((list(self.docs.values()), dict(self.pods), dict(self.nss), note))
        self.ops = []
        return self


@dataclass
class Draft:
    family: str
    name: str
    description: str
    seq: Seq


def single(family: str, name: str, description: str, *docs: dict) -> Draft:
    return Draft(family, name, description, Seq().apply(*docs).step())


# -- building and tagging cases -------------------------------------------------------------------

_DECODED: dict[tuple[str, str], NetworkPolicySpec] = {}


def build_case(draft: Draft) -> Case:
    source = f"{SOURCE}/{draft.name}.yaml"
    steps = []
    for docs, pod_labels, ns_labels, note in draft.seq.steps:
        texts = tuple(dump(d) for d in docs)
        specs = []
        for text in texts:
            cached = _DECODED.get((source, text))
            if cached is None:
                cached = _DECODED[(source, text)] = decode_policies([text], source)[0]
            specs.append(cached)
        steps.append(Step(tuple(specs), texts, pod_labels, ns_labels, note))
    steps_t = tuple(steps)
    tags = (draft.family,) + tuple(t for t in infer_tags(steps_t) if t != draft.family)
    return Case(draft.name, draft.description, tags, steps_t)


def _selector_tags(sel) -> set[str]:
    if sel is None:
        return set()
    out = {"match-labels"} if sel.match_labels else set()
    out.update(f"expr-{r.operator.lower()}" for r in sel.match_expressions)
    return out


def policy_tags(spec: NetworkPolicySpec) -> set[str]:
    tags = _selector_tags(spec.pod_selector)
    if not spec.pod_selector.is_empty():
        tags.add("target-selector")
    if not spec.policy_types_given:
        tags.add("policy-types-inferred")
    written = {"Ingress": spec.ingress, "Egress": spec.egress}
    if any(rules and t not in spec.policy_types for t, rules in written.items()):
        tags.add("ignored-rules")
    empty = [t for t in spec.policy_types if not written[t]]
    tags.update(f"deny-{t.lower()}" for t in empty)
    if len(empty) == 2:
        tags.add("deny-both")
    for t in spec.policy_types:
        for r in written[t]:
            if not r.peers and not r.ports:
                tags.add(f"allow-all-{t.lower()}")
            if len(r.peers) > 1:
                tags.add("peers-or")
            for p in r.peers:
                if p.ip_block is not None:
                    tags.add("ip-block")
                    if p.ip_block.except_:
                        tags.add("ip-block-except")
                    continue
                tags |= _selector_tags(p.pod_selector) | _selector_tags(p.namespace_selector)
                if p.namespace_selector is None:
                    tags.add("pod-selector")
                elif p.pod_selector is not None:
                    tags.add("namespace-and-pod")
                elif p.namespace_selector.is_empty():
                    tags.add("namespace-selector-all")
                else:
                    tags.add("namespace-selector")
            for q in r.ports:
                tags.add(f"protocol-{q.protocol.lower()}")
                if q.port is None:
                    tags.add("protocol-all-ports")
                elif isinstance(q.port, str):
                    tags.add("port-name")
                else:
                    tags.add("port-number")
                if q.end_port is not None:
                    tags.add("end-port")
    return tags


def infer_tags(steps: tuple[Step, ...]) -> tuple[str, ...]:
    tags: set[str] = set()
    prev: Step | None = None
    for step in steps:
        for spec in step.policies:
            tags |= policy_tags(spec)
        if len(step.policies) > 1:
            tags.add("multiple-policies")
        if len({p.namespace for p in step.policies}) > 1:
            tags.add("several-namespaces")
        types = {t for p in step.policies for t in p.policy_types}
        if types == {"Ingress", "Egress"}:
            tags.add("ingress-and-egress")
        if prev is not None:
            before, after = dict(zip(prev.policy_names(), prev.texts)), dict(zip(step.policy_names(), step.texts))
            if set(after) - set(before):
                tags.add("apply-policy")
            if set(before) - set(after):
                tags.add("delete-policy")
            if any(before[n] != after[n] for n in set(before) & set(after)):
                tags.add("update-policy")
            if any(prev.labels_of_pod(p) != step.labels_of_pod(p) for p in PODS):
                tags.add("relabel-pod")
            if any(prev.labels_of_namespace(n) != step.labels_of_namespace(n) for n in MODEL_NAMESPACES):
                tags.add("relabel-namespace")
        prev = step
    if len(steps) > 1:
        tags.add("multi-step")
    return tuple(t for t in FEATURES if t in tags)


# -- the vocabulary --------------------------------------------------------------------------------

# Peer pod selectors: (short name, selector, words)
POD_SELECTORS = (
    ("pod-b", ml(pod="b"), "pods labelled pod=b"),
    ("in-a-b", ex("pod", "In", "a", "b"), "pods with pod in (a, b)"),
    ("notin-a", ex("pod", "NotIn", "a"), "pods with pod not in (a)"),
    ("has-tier", ex("tier", "Exists"), "pods with a tier label"),
    ("no-tier", ex("tier", "DoesNotExist"), "pods without a tier label (the c pods)"),
    ("web-not-c", ex("pod", "NotIn", "c", labels={"tier": "web"}), "pods with tier=web and pod not in (c)"),
    ("all", ALL, "every pod (podSelector {})"),
)
NS_SELECTORS = (
    ("ns-y", ml(ns="y"), "namespaces labelled ns=y"),
    ("all", ALL, "every namespace (namespaceSelector {})"),
    ("in-x-z", ex("ns", "In", "x", "z"), "namespaces with ns in (x, z)"),
    ("notin-y", ex("ns", "NotIn", "y"), "namespaces with ns not in (y)"),
    ("has-team", ex("team", "Exists"), "namespaces with a team label (x, y)"),
    ("no-team", ex("team", "DoesNotExist"), "namespaces without a team label (z)"),
    ("name-z", ml(**{"kubernetes.io/metadata.name": "z"}), "namespace z by its metadata.name label"),
)
TARGETS = (
    ("all", ALL, "every pod"),
    ("pod-a", ml(pod="a"), "pod a"),
    ("no-tier", ex("tier", "DoesNotExist"), "pods without tier (c)"),
    ("in-a-c", ex("pod", "In", "a", "c"), "pods a and c"),
)
IP_BLOCKS = (
    ("pod-network", block(POD_NETWORK), "the whole pod network"),
    ("node1", block(NODE_CIDRS["kind-worker"]), "kind-worker's pod CIDR (x/b, y/a, z/c)"),
    ("all-but-node1", block(POD_NETWORK, NODE_CIDRS["kind-worker"]), "the pod network except kind-worker's pods"),
    ("only-node1", block(POD_NETWORK, NODE_CIDRS["kind-control-plane"], NODE_CIDRS["kind-worker2"]),
     "the pod network except two nodes' CIDRs (= kind-worker's pods)"),
    ("outside", block("0.0.0.0/0", POD_NETWORK), "everything but the pod network (no pod)"),
    ("node0-1-not-0", block("10.244.0.0/23", NODE_CIDRS["kind-control-plane"]),
     "10.244.0.0/23 except the control plane's CIDR (= kind-worker's pods)"),
    ("underlay", block("192.168.1.0/24"), "the node network (no pod)"),
)
PORT_SPECS = (
    ("tcp-80", [port(80)], "TCP 80 (protocol defaulted)"),
    ("udp-81", [port(81, "UDP")], "UDP 81"),
    ("sctp-80", [port(80, "SCTP")], "SCTP 80"),
    ("udp-any", [port(None, "UDP")], "every UDP port"),
    ("name-81-tcp", [port("serve-81-tcp")], "the port named serve-81-tcp"),
    ("name-80-udp", [port("serve-80-udp", "UDP")], "UDP port named serve-80-udp"),
    ("name-81-sctp", [port("serve-81-sctp", "SCTP")], "SCTP port named serve-81-sctp"),
    ("name-wrong-proto", [port("serve-80-tcp", "UDP")], "UDP port named serve-80-tcp (no such UDP port)"),
    ("range-80-81", [port(80, "TCP", 81)], "TCP 80-81 (both inside)"),
    ("range-81-90-udp", [port(81, "UDP", 90)], "UDP 81-90 (81 inside, 80 outside)"),
    ("range-1-80-sctp", [port(1, "SCTP", 80)], "SCTP 1-80 (80 inside, 81 outside)"),
    ("range-82-100", [port(82, "TCP", 100)], "TCP 82-100 (neither)"),
    ("tcp-80-sctp-81", [port(80, "TCP"), port(81, "SCTP")], "TCP 80 or SCTP 81"),
)
NAMESPACES = tuple(MODEL_NAMESPACES)


def _rot(seq: tuple, i: int):
    return seq[i % len(seq)]


# -- the families ----------------------------------------------------------------------------------

def fam_deny() -> list[Draft]:
    out = []
    for direction in ("ingress", "egress", "both"):
        for ns in NAMESPACES:
            for tname, target, twords in (TARGETS[0], TARGETS[1]):
                name = f"deny-{direction}-{ns}-{tname}"
                if direction == "ingress" and tname == "all":
                    doc = netpol(name, ns)          # policyTypes inferred: Ingress
                else:
                    doc = deny(name, ns, direction, target)
                what = {"ingress": "all ingress", "egress": "all egress", "both": "all ingress and egress"}[direction]
                out.append(single("deny", name, f"Deny {what} of {twords} in namespace {ns}.", doc))
    return out


def fam_allow_all() -> list[Draft]:
    out = []
    for ns in NAMESPACES:
        out += [
            single("allow-all", f"allow-all-ingress-{ns}", f"Every pod of {ns} isolated for ingress, "
                   "and allowed from anywhere (ingress: [{}]).", netpol("allow-all-in", ns, ingress=[rule()])),
            single("allow-all", f"allow-all-egress-{ns}", f"Every pod of {ns} isolated for egress, and "
                   "allowed to anywhere (egress: [{}]).", allow("allow-all-out", ns, "egress", ALL, [rule()])),
            single("allow-all", f"deny-both-allow-ingress-{ns}", f"{ns}: deny both directions, plus allow all "
                   "ingress: policies add up, egress stays denied.",
                   deny("deny-all", ns, "both"), netpol("allow-all-in", ns, ingress=[rule()])),
            single("allow-all", f"deny-both-allow-egress-{ns}", f"{ns}: deny both directions, plus allow all "
                   "egress: ingress stays denied.",
                   deny("deny-all", ns, "both"), allow("allow-all-out", ns, "egress", ALL, [rule()])),
            single("allow-all", f"deny-allow-all-namespaces-{ns}", f"{ns}: deny ingress, then allow from every "
                   "pod of every namespace (namespaceSelector {}).",
                   deny("deny-in", ns), netpol("allow-cluster", ns, ingress=[rule([nss(ALL)])])),
        ]
    return out


def _peer_family(family: str, selectors: tuple, make_peer, ns_list: tuple[str, ...], what: str) -> list[Draft]:
    out, i = [], 0
    for sname, sel, words in selectors:
        for direction in ("ingress", "egress"):
            for ns in ns_list:
                tname, target, twords = _rot(TARGETS, i)
                i += 1
                name = f"{family}-{direction}-{ns}-{sname}-{tname}"
                word = "from" if direction == "ingress" else "to"
                out.append(single(family, name, f"{ns}: {direction} of {twords} only {word} {words}{what}.",
                                  allow(name, ns, direction, target, [rule([make_peer(sel)])])))
    return out


def fam_pod_selector() -> list[Draft]:
    return _peer_family("pod-selector", POD_SELECTORS, pods, ("x", "z"), " of their own namespace")


def fam_namespace_selector() -> list[Draft]:
    return _peer_family("namespace-selector", NS_SELECTORS, nss, ("x", "y"), "")


def fam_and_or() -> list[Draft]:
    pairs = ((NS_SELECTORS[0], POD_SELECTORS[0]), (NS_SELECTORS[1], POD_SELECTORS[1]),
             (NS_SELECTORS[4], POD_SELECTORS[4]), (NS_SELECTORS[3], POD_SELECTORS[2]),
             (NS_SELECTORS[2], POD_SELECTORS[3]))
    out = []
    for i, ((nname, nsel, nwords), (pname, psel, pwords)) in enumerate(pairs):
        for direction in ("ingress", "egress"):
            ns = _rot(NAMESPACES, i)
            tname, target, twords = _rot(TARGETS, i + (direction == "egress"))
            word = "from" if direction == "ingress" else "to"
            for mode in ("and", "or"):
                name = f"{mode}-{direction}-{ns}-{nname}-{pname}"
                peers = [both(nsel, psel)] if mode == "and" else [nss(nsel), pods(psel)]
                join = (f"{pwords} in {nwords} (one peer: AND)" if mode == "and"
                        else f"{nwords}, or {pwords} of {ns} (two peers: OR)")
                out.append(single("and-or", name, f"{ns}: {direction} of {twords} only {word} {join}.",
                                  allow(name, ns, direction, target, [rule(peers)])))
    return out


def fam_ip_block() -> list[Draft]:
    out, i = [], 0
    for bname, peer, words in IP_BLOCKS:
        for direction in ("ingress", "egress"):
            for ns in ("x", "z"):
                tname, target, twords = _rot(TARGETS, i)
                i += 1
                name = f"ipblock-{direction}-{ns}-{bname}-{tname}"
                word = "from" if direction == "ingress" else "to"
                out.append(single("ip-block", name, f"{ns}: {direction} of {twords} only {word} {words}.",
                                  allow(name, ns, direction, target, [rule([peer])])))
    return out


def fam_ports() -> list[Draft]:
    out = []
    for i, (pname, ports, words) in enumerate(PORT_SPECS):
        for direction in ("ingress", "egress"):
            ns = _rot(NAMESPACES, i + (direction == "egress"))
            # every third case restricts peers too, so ports meet selectors
            peers = [nss(ml(ns="y"))] if i % 3 == 2 else None
            name = f"ports-{direction}-{ns}-{pname}"
            extra = " from/to namespace y only" if peers else ""
            out.append(single("ports", name, f"{ns}: every pod accepts {direction} only on {words}{extra}.",
                              allow(name, ns, direction, ALL, [rule(peers, ports)])))
    return out


def fam_multiple() -> list[Draft]:
    f = "multiple-policies"
    return [
        single(f, "add-two-ingress-x", "x/a: one policy allows pod b on TCP 80, another namespace y on UDP 81; "
               "together both.",
               allow("from-b", "x", "ingress", ml(pod="a"), [rule([pods(ml(pod="b"))], [port(80)])]),
               allow("from-y", "x", "ingress", ml(pod="a"), [rule([nss(ml(ns="y"))], [port(81, "UDP")])])),
        single(f, "deny-plus-allow-x", "x: deny all ingress, plus allow ingress to c from z on SCTP.",
               deny("deny", "x"), allow("c-from-z", "x", "ingress", ml(pod="c"),
                                        [rule([nss(ml(ns="z"))], [port(None, "SCTP")])])),
        single(f, "three-policies-y", "y: three ingress policies for b, each allowing one namespace on one protocol.",
               allow("x-tcp", "y", "ingress", ml(pod="b"), [rule([nss(ml(ns="x"))], [port(None, "TCP")])]),
               allow("y-udp", "y", "ingress", ml(pod="b"), [rule([nss(ml(ns="y"))], [port(None, "UDP")])]),
               allow("z-sctp", "y", "ingress", ml(pod="b"), [rule([nss(ml(ns="z"))], [port(None, "SCTP")])])),
        single(f, "overlapping-targets-z", "z: one policy selects a and b, another b and c, with different peers.",
               allow("ab", "z", "ingress", ex("pod", "In", "a", "b"), [rule([pods(ml(pod="c"))])]),
               allow("bc", "z", "ingress", ex("pod", "In", "b", "c"), [rule([nss(ml(ns="x"))])])),
        single(f, "egress-add-up-x", "x: two egress policies on every pod: to y on TCP, to z on 81.",
               allow("to-y", "x", "egress", ALL, [rule([nss(ml(ns="y"))], [port(None, "TCP")])]),
               allow("to-z", "x", "egress", ALL, [rule([nss(ml(ns="z"))], [port(81, "TCP"), port(81, "UDP"),
                                                                            port(81, "SCTP")])])),
        single(f, "two-rules-one-policy-y", "y/a: one policy with two ingress rules (rules add up too).",
               netpol("two-rules", "y", ml(pod="a"), ingress=[rule([pods(ml(pod="b"))], [port(80)]),
                                                              rule([nss(ml(ns="z"))], [port(81, "UDP")])])),
        single(f, "allow-all-wins-z", "z/b: a narrow policy and an allow-all policy: allow-all wins.",
               allow("narrow", "z", "ingress", ml(pod="b"), [rule([pods(ml(pod="a"))], [port(80)])]),
               allow("wide", "z", "ingress", ml(pod="b"), [rule()])),
        single(f, "deny-everything-everywhere", "Deny both directions in x, y and z: only self traffic remains.",
               deny("deny-all", "x", "both"), deny("deny-all", "y", "both"), deny("deny-all", "z", "both")),
        single(f, "deny-ingress-everywhere-allow-x-out", "Deny ingress in every namespace, allow x's pods into y/a.",
               deny("deny-in", "x"), deny("deny-in", "y"), deny("deny-in", "z"),
               allow("from-x", "y", "ingress", ml(pod="a"), [rule([nss(ml(ns="x"))])])),
        single(f, "ports-split-across-policies-x", "x/b: TCP 80 allowed by one policy, TCP 81 by another "
               "(named), both from x.",
               allow("p80", "x", "ingress", ml(pod="b"), [rule([pods(ALL)], [port(80)])]),
               allow("p81", "x", "ingress", ml(pod="b"), [rule([pods(ALL)], [port("serve-81-tcp")])])),
    ]


def fam_other_namespace() -> list[Draft]:
    f = "other-namespace"
    return [
        single(f, "deny-in-y-leaves-x", "A deny-all in y selects pods labelled pod=a of y only, not x/a or z/a.",
               deny("deny-a", "y", "both", ml(pod="a"))),
        single(f, "peer-names-x-policy-in-z", "A policy in z whose peers are x's pods does not isolate x.",
               allow("from-x", "z", "ingress", ml(pod="b"), [rule([nss(ml(ns="x"))])])),
        single(f, "egress-in-x-ingress-untouched-y", "An egress policy in x towards y: y's pods stay "
               "unisolated for ingress.",
               allow("to-y-a", "x", "egress", ALL, [rule([both(ml(ns="y"), ml(pod="a"))])])),
        single(f, "pod-selector-peer-is-own-namespace", "x/a allows from podSelector pod=b: x/b only, not "
               "y/b or z/b.", allow("from-b", "x", "ingress", ml(pod="a"), [rule([pods(ml(pod="b"))])])),
        single(f, "same-name-other-namespaces", "Policies with the same name in y and z select their own pods.",
               deny("same", "y", "ingress", ml(pod="c")), allow("same", "z", "egress", ml(pod="c"),
                                                                 [rule([nss(ml(ns="y"))])])),
        single(f, "policy-in-z-selects-nothing", "A policy in z selecting a label no pod has isolates nobody.",
               deny("nobody", "z", "both", ml(pod="nobody"))),
    ]


def fam_ingress_egress() -> list[Draft]:
    f = "ingress-egress"
    ya = ml(pod="a")
    return [
        single(f, "egress-deny-x-ingress-allow-y", "x denies egress; y/a allows ingress from x: x->y/a blocked "
               "at x's egress.", deny("deny-out", "x", "egress"),
               allow("from-x", "y", "ingress", ya, [rule([nss(ml(ns="x"))])])),
        single(f, "egress-allow-x-ingress-deny-y", "x allows egress to y only; y denies ingress: blocked at y.",
               allow("to-y", "x", "egress", ALL, [rule([nss(ml(ns="y"))])]), deny("deny-in", "y")),
        single(f, "both-allow-x-to-y", "x allows egress to y on TCP 80, y/a allows ingress from x on TCP 80-81.",
               allow("to-y", "x", "egress", ALL, [rule([nss(ml(ns="y"))], [port(80)])]),
               allow("from-x", "y", "ingress", ya, [rule([nss(ml(ns="x"))], [port(80, "TCP", 81)])])),
        single(f, "one-policy-both-directions-z", "z/c: one policy with ingress from z and egress to x (both types).",
               netpol("both", "z", ml(pod="c"), ingress=[rule([pods(ALL)])], egress=[rule([nss(ml(ns="x"))])],
                      types=["Ingress", "Egress"])),
        single(f, "egress-udp-ingress-tcp", "x egress allows UDP only; y ingress allows TCP only: x->y nothing.",
               allow("udp-out", "x", "egress", ALL, [rule(None, [port(None, "UDP")])]),
               allow("tcp-in", "y", "ingress", ALL, [rule(None, [port(None, "TCP")])])),
        single(f, "intra-namespace-both-x", "x: ingress and egress limited to x's own pods.",
               netpol("internal", "x", ALL, ingress=[rule([pods(ALL)])], egress=[rule([pods(ALL)])],
                      types=["Ingress", "Egress"])),
        single(f, "egress-ipblock-ingress-selector", "y egress to kind-worker's CIDR; z ingress from y's pod a.",
               allow("to-node1", "y", "egress", ALL, [rule([block(NODE_CIDRS["kind-worker"])])]),
               allow("from-ya", "z", "ingress", ALL, [rule([both(ml(ns="y"), ml(pod="a"))])])),
        single(f, "egress-named-port-ingress-range", "x egress to named serve-81-sctp; y ingress SCTP 80-81.",
               allow("named-out", "x", "egress", ALL, [rule(None, [port("serve-81-sctp", "SCTP")])]),
               allow("range-in", "y", "ingress", ALL, [rule(None, [port(80, "SCTP", 81)])])),
    ]


def fam_policy_types() -> list[Draft]:
    f = "policy-types"
    return [
        single(f, "types-inferred-from-egress-x", "x/a: no policyTypes, egress rules: Ingress and Egress inferred, "
               "so ingress is denied.", netpol("inferred", "x", ml(pod="a"), egress=[rule([pods(ALL)])])),
        single(f, "egress-type-ignores-ingress-rules-y", "y/b: policyTypes [Egress] with ingress rules: those "
               "are ignored.", netpol("egress-only", "y", ml(pod="b"), ingress=[rule([pods(ml(pod="nobody"))])],
                                      egress=[rule([nss(ALL)])], types=["Egress"])),
        single(f, "ingress-type-ignores-egress-rules-z", "z: policyTypes [Ingress] with egress rules: egress "
               "is not isolated.", netpol("ingress-only", "z", ALL, ingress=[rule([pods(ALL)])],
                                          egress=[rule([pods(ml(pod="nobody"))])], types=["Ingress"])),
        single(f, "both-types-no-rules-x", "x/c: policyTypes [Ingress, Egress] and no rules: deny both.",
               deny("deny-c", "x", "both", ml(pod="c"))),
        single(f, "empty-egress-list-y", "y: `egress: []` without policyTypes: Ingress only is inferred.",
               netpol("empty-egress", "y", ALL, ingress=[rule([pods(ALL)])], egress=[])),
        single(f, "inferred-ingress-with-rules-z", "z/a: no policyTypes, ingress rules only: Ingress inferred.",
               netpol("inferred-in", "z", ml(pod="a"), ingress=[rule([nss(ml(ns="x"))], [port(81)])])),
        single(f, "egress-type-empty-rules-x", "x: policyTypes [Egress], no rules at all: deny all egress.",
               netpol("deny-out", "x", ALL, types=["Egress"])),
        single(f, "egress-type-ignores-allow-all-x", "x/a: policyTypes [Egress] with `ingress: [{}]`: the "
               "allow-all ingress rule is ignored, egress to y only.",
               netpol("egress-only", "x", ml(pod="a"), ingress=[rule()], egress=[rule([nss(ml(ns="y"))])],
                      types=["Egress"])),
        single(f, "ingress-type-ignores-ipblock-egress-z", "z/b: policyTypes [Ingress] with an ipBlock egress "
               "rule (ignored) and ingress on UDP only.",
               netpol("ingress-only", "z", ml(pod="b"), ingress=[rule(None, [port(None, "UDP")])],
                      egress=[rule([block(NODE_CIDRS["kind-worker"])])], types=["Ingress"])),
        single(f, "egress-type-ignores-ingress-ports-y", "y: policyTypes [Egress], ingress rule on SCTP 80 "
               "(ignored), egress on TCP 80-81.",
               netpol("egress-tcp", "y", ALL, ingress=[rule(None, [port(80, "SCTP")])],
                      egress=[rule(None, [port(80, "TCP", 81)])], types=["Egress"])),
        single(f, "inferred-both-with-ports-y", "y/c: no policyTypes, ingress and egress rules with ports.",
               netpol("both-inferred", "y", ml(pod="c"), ingress=[rule(None, [port(80)])],
                      egress=[rule(None, [port(81, "UDP")])])),
    ]


# Policies multi-step cases reuse.
def _deny_x() -> dict:
    return deny("deny-in", "x")


def _from_role_admin() -> dict:
    return allow("from-admins", "x", "ingress", ml(pod="a"), [rule([both(ALL, ml(role="admin"))])])


def fam_apply() -> list[Draft]:
    f = "apply-policy"
    out = []
    picks = [
        ("deny-x", "deny all ingress in x", [_deny_x()]),
        ("deny-y-egress", "deny all egress in y", [deny("deny-out", "y", "egress")]),
        ("pod-selector-z", "z/a accepts only z/b", [allow("from-b", "z", "ingress", ml(pod="a"),
                                                          [rule([pods(ml(pod="b"))])])]),
        ("ns-selector-x", "x accepts only from team=blue namespaces",
         [allow("from-blue", "x", "ingress", ALL, [rule([nss(ml(team="blue"))])])]),
        ("ipblock-y", "y egress only to kind-worker2's CIDR",
         [allow("to-node2", "y", "egress", ALL, [rule([block(NODE_CIDRS["kind-worker2"])])])]),
        ("ports-z", "z accepts only UDP 81", [allow("udp-81", "z", "ingress", ALL, [rule(None, [port(81, "UDP")])])]),
        ("named-x", "x/b accepts only serve-80-sctp",
         [allow("named", "x", "ingress", ml(pod="b"), [rule(None, [port("serve-80-sctp", "SCTP")])])]),
        ("range-y", "y egress only on TCP 81-82",
         [allow("range", "y", "egress", ALL, [rule(None, [port(81, "TCP", 82)])])]),
    ]
    for i, (name, words, docs) in enumerate(picks):
        seq = Seq()
        if i % 2:   # start from another policy already in force
            seq.apply(deny("deny-c", "z", "ingress", ml(pod="c")))
        seq.step("initial state" if i % 2 else "no policy")
        seq.apply(*docs).step()
        out.append(Draft(f, f"apply-{name}", f"Apply mid-case: {words}.", seq))
    return out


def fam_update() -> list[Draft]:
    f = "update-policy"
    upd = []

    def case(name: str, words: str, before: dict, *after: dict) -> None:
        seq = Seq().apply(before).step()
        for doc in after:
            seq.apply(doc).step()
        upd.append(Draft(f, f"update-{name}", f"Change a policy in place: {words}.", seq))

    case("target", "x: deny ingress to a, then to b", deny("deny", "x", "ingress", ml(pod="a")),
         deny("deny", "x", "ingress", ml(pod="b")))
    case("direction", "y: deny ingress, then egress, then both", deny("deny", "y", "ingress"),
         deny("deny", "y", "egress"), deny("deny", "y", "both"))
    case("peer-pod", "z/a from z/b, then from z/c",
         allow("p", "z", "ingress", ml(pod="a"), [rule([pods(ml(pod="b"))])]),
         allow("p", "z", "ingress", ml(pod="a"), [rule([pods(ml(pod="c"))])]))
    case("peer-namespace", "x from ns y, then from ns z",
         allow("p", "x", "ingress", ALL, [rule([nss(ml(ns="y"))])]),
         allow("p", "x", "ingress", ALL, [rule([nss(ml(ns="z"))])]))
    case("port-protocol", "y on TCP 80, then UDP 80, then SCTP 80",
         allow("p", "y", "ingress", ALL, [rule(None, [port(80)])]),
         allow("p", "y", "ingress", ALL, [rule(None, [port(80, "UDP")])]),
         allow("p", "y", "ingress", ALL, [rule(None, [port(80, "SCTP")])]))
    case("and-to-or", "z/b from ns x AND pod a, then ns x OR pod a",
         allow("p", "z", "ingress", ml(pod="b"), [rule([both(ml(ns="x"), ml(pod="a"))])]),
         allow("p", "z", "ingress", ml(pod="b"), [rule([nss(ml(ns="x")), pods(ml(pod="a"))])]))
    case("ipblock-except", "x egress to the pod network, then except kind-worker",
         allow("p", "x", "egress", ALL, [rule([block(POD_NETWORK)])]),
         allow("p", "x", "egress", ALL, [rule([block(POD_NETWORK, NODE_CIDRS["kind-worker"])])]))
    case("end-port", "y/a TCP 80 only, then 80-81, then 81-81",
         allow("p", "y", "ingress", ml(pod="a"), [rule(None, [port(80)])]),
         allow("p", "y", "ingress", ml(pod="a"), [rule(None, [port(80, "TCP", 81)])]),
         allow("p", "y", "ingress", ml(pod="a"), [rule(None, [port(81, "TCP", 81)])]))
    case("expression-operator", "x/c from pods with pod In (a), then NotIn (a)",
         allow("p", "x", "ingress", ml(pod="c"), [rule([pods(ex("pod", "In", "a"))])]),
         allow("p", "x", "ingress", ml(pod="c"), [rule([pods(ex("pod", "NotIn", "a"))])]))
    case("allow-all-to-deny", "z: allow all ingress, then no rule (deny)",
         netpol("p", "z", ALL, ingress=[rule()]), netpol("p", "z", ALL, types=["Ingress"]))
    return upd


def fam_delete() -> list[Draft]:
    f = "delete-policy"
    out = []
    specs = [
        ("deny-x", [_deny_x()], [("x", "deny-in")]),
        ("deny-both-y", [deny("deny-all", "y", "both")], [("y", "deny-all")]),
        ("allow-keeps-isolation", [deny("deny", "z"), allow("allow", "z", "ingress", ALL, [rule([pods(ALL)])])],
         [("z", "allow")]),
        ("deny-of-two", [deny("deny", "z"), allow("allow", "z", "ingress", ALL, [rule([pods(ALL)])])],
         [("z", "deny")]),
        ("egress-x", [allow("to-y", "x", "egress", ALL, [rule([nss(ml(ns="y"))])])], [("x", "to-y")]),
        ("one-of-three-ns", [deny("d", "x"), deny("d", "y"), deny("d", "z")], [("y", "d")]),
        ("ports-y", [allow("p", "y", "ingress", ml(pod="b"), [rule(None, [port(81, "SCTP")])])], [("y", "p")]),
        ("ipblock-z", [allow("p", "z", "egress", ALL, [rule([block(POD_NETWORK, NODE_CIDRS["kind-worker2"])])])],
         [("z", "p")]),
    ]
    for name, docs, gone in specs:
        seq = Seq().apply(*docs).step()
        for ns, pname in gone:
            seq.delete(ns, pname)
        seq.step()
        out.append(Draft(f, f"delete-{name}", "Delete " + ", ".join(f"{a}/{b}" for a, b in gone)
                         + " mid-case.", seq))
    return out


def fam_relabel_pod() -> list[Draft]:
    f = "relabel-pod"
    out = []

    def case(name: str, words: str, docs: list[dict], changes: list[tuple[str, dict]]) -> None:
        seq = Seq().apply(*docs).step()
        for ref, ch in changes:
            seq.label_pod(ref, ch).step()
        out.append(Draft(f, f"relabel-pod-{name}", words, seq))

    case("peer-gains-role", "x/a accepts role=admin pods of any namespace; y/b gains the label, then loses it.",
         [_from_role_admin()], [("y/b", {"role": "admin"}), ("y/b", {"role": None})])
    case("target-gains-selection", "x denies ingress to pod=a; x/c is relabelled pod=a, then back.",
         [deny("deny-a", "x", "ingress", ml(pod="a"))], [("x/c", {"pod": "a"}), ("x/c", {"pod": "c"})])
    case("target-loses-selection", "y denies ingress to tier=web; y/a loses its tier, then gets tier=db.",
         [deny("deny-web", "y", "ingress", ml(tier="web"))], [("y/a", {"tier": None}), ("y/a", {"tier": "db"})])
    case("doesnotexist-peer", "z accepts only pods without tier; z/a loses tier, x/c gains one.",
         [allow("no-tier", "z", "ingress", ALL, [rule([both(ALL, ex("tier", "DoesNotExist"))])])],
         [("z/a", {"tier": None}), ("x/c", {"tier": "web"})])
    case("notin-egress", "x egress only to pods with pod NotIn (b); y/b becomes pod=e.",
         [allow("not-b", "x", "egress", ALL, [rule([both(ALL, ex("pod", "NotIn", "b"))])])],
         [("y/b", {"pod": "e"})])
    case("in-target-egress", "y: pods with pod In (a, b) may not send; y/c becomes pod=b, then y/a pod=z.",
         [deny("deny-ab", "y", "egress", ex("pod", "In", "a", "b"))], [("y/c", {"pod": "b"}), ("y/a", {"pod": "z"})])
    case("exists-peer-and-ports", "z/b accepts TCP 81 from pods with role; x/b then z/c gain role.",
         [allow("role-81", "z", "ingress", ml(pod="b"), [rule([both(ALL, ex("role", "Exists"))], [port(81)])])],
         [("x/b", {"role": "client"}), ("z/c", {"role": "client"})])
    case("two-pods-swap", "x/a from pod=b of x; x/b and x/c swap their pod labels.",
         [allow("from-b", "x", "ingress", ml(pod="a"), [rule([pods(ml(pod="b"))])])],
         [("x/b", {"pod": "c"}), ("x/c", {"pod": "b"})])
    return out


def fam_relabel_namespace() -> list[Draft]:
    f = "relabel-namespace"
    out = []

    def case(name: str, words: str, docs: list[dict], changes: list[tuple[str, dict]]) -> None:
        seq = Seq().apply(*docs).step()
        for ns, ch in changes:
            seq.label_ns(ns, ch).step()
        out.append(Draft(f, f"relabel-ns-{name}", words, seq))

    case("peer-gains-team", "x accepts from team=blue namespaces; z joins team blue, then y leaves it.",
         [allow("from-blue", "x", "ingress", ALL, [rule([nss(ml(team="blue"))])])],
         [("z", {"team": "blue"}), ("y", {"team": None})])
    case("doesnotexist-team", "y accepts from namespaces without team (z); x loses its team.",
         [allow("no-team", "y", "ingress", ALL, [rule([nss(ex("team", "DoesNotExist"))])])],
         [("x", {"team": None})])
    case("notin-egress", "z egress only to namespaces with ns NotIn (x); x is relabelled ns=w.",
         [allow("not-x", "z", "egress", ALL, [rule([nss(ex("ns", "NotIn", "x"))])])],
         [("x", {"ns": "w"}), ("x", {"ns": "x"})])
    case("and-peer", "x/a from env=prod namespaces' pod=b pods; y gains env=prod, then z.",
         [allow("prod-b", "x", "ingress", ml(pod="a"), [rule([both(ml(env="prod"), ml(pod="b"))])])],
         [("y", {"env": "prod"}), ("z", {"env": "prod"})])
    case("or-peers", "y/c from env=prod namespaces or from y's pod a; z gains env=prod.",
         [allow("prod-or-a", "y", "ingress", ml(pod="c"), [rule([nss(ml(env="prod")), pods(ml(pod="a"))])])],
         [("z", {"env": "prod"})])
    case("in-values", "x egress to ns In (y); z becomes ns=y too, then y becomes ns=q.",
         [allow("to-y", "x", "egress", ALL, [rule([nss(ex("ns", "In", "y"))])])],
         [("z", {"ns": "y"}), ("y", {"ns": "q"})])
    case("own-namespace-relabel", "z accepts from team=green only; z itself becomes team=green.",
         [allow("green", "z", "ingress", ALL, [rule([nss(ml(team="green"))])])], [("z", {"team": "green"})])
    case("exists-with-ports", "y/b accepts UDP from namespaces with env; x gains env=dev, then loses it.",
         [allow("env-udp", "y", "ingress", ml(pod="b"), [rule([nss(ex("env", "Exists"))], [port(None, "UDP")])])],
         [("x", {"env": "dev"}), ("x", {"env": None})])
    return out


def fam_sequence() -> list[Draft]:
    f = "sequence"
    out = []
    s = (Seq().apply(_deny_x()).step().apply(_from_role_admin()).step().label_pod("z/c", {"role": "admin"}).step()
         .label_ns("z", {"team": "red"}).apply(allow("from-admins", "x", "ingress", ml(pod="a"),
                                                     [rule([both(ml(team="red"), ml(role="admin"))])])).step()
         .delete("x", "deny-in").step())
    out.append(Draft(f, "sequence-admins", "Deny x, admit admins, relabel, narrow to team red, delete the deny.", s))
    s = (Seq().step().apply(deny("deny-all", "y", "both")).step()
         .apply(allow("dns-like", "y", "egress", ALL, [rule([nss(ALL)], [port(81, "UDP")])])).step()
         .apply(netpol("in", "y", ALL, ingress=[rule([nss(ml(ns="x"))], [port(80, "TCP", 81)])])).step()
         .delete("y", "deny-all").step())
    out.append(Draft(f, "sequence-lockdown-y", "Lock y down, open UDP 81 out and TCP 80-81 in from x, unlock.", s))
    s = (Seq().apply(allow("web", "z", "ingress", ml(tier="web"), [rule([pods(ALL)])])).step()
         .label_pod("z/c", {"tier": "web"}).step().label_pod("z/a", {"tier": None}).step()
         .apply(allow("web", "z", "ingress", ml(tier="web"), [rule([nss(ALL)])])).step())
    out.append(Draft(f, "sequence-tier-moves", "z's web tier isolates; the tier label moves between pods.", s))
    s = (Seq().apply(allow("p", "x", "egress", ALL, [rule([block(POD_NETWORK, NODE_CIDRS["kind-worker"])])])).step()
         .apply(allow("p", "x", "egress", ALL, [rule([block(NODE_CIDRS["kind-worker"])])])).step()
         .apply(deny("deny-in", "y")).step().delete("x", "p").step())
    out.append(Draft(f, "sequence-ipblocks", "x egress by ipBlock, flipped to the complement, y denies, x freed.", s))
    s = (Seq().apply(allow("blue", "x", "ingress", ALL, [rule([nss(ml(team="blue")), pods(ml(pod="c"))],
                                                                [port("serve-80-udp", "UDP")])])).step()
         .label_ns("y", {"team": "red"}).step().label_pod("x/a", {"pod": "c"}).step()
         .label_ns("z", {"team": "blue"}).label_pod("x/a", {"pod": "a"}).step())
    out.append(Draft(f, "sequence-named-udp", "A named UDP port from team blue or x's c pods; labels move.", s))
    return out


SYSTEMATIC = (fam_deny, fam_allow_all, fam_pod_selector, fam_namespace_selector, fam_and_or, fam_ip_block,
              fam_ports, fam_multiple, fam_other_namespace, fam_ingress_egress, fam_policy_types, fam_apply,
              fam_update, fam_delete, fam_relabel_pod, fam_relabel_namespace, fam_sequence)
RANDOM_SINGLE = 60
RANDOM_STEPS = 20
POD_LABEL_CHOICES = (("tier", "web"), ("tier", "db"), ("tier", None), ("pod", "a"), ("pod", "b"),
                     ("role", "admin"))
NS_LABEL_CHOICES = (("team", "red"), ("team", "blue"), ("team", None), ("ns", "y"), ("env", "prod"))


def _catalogue(drafts: list[Draft]) -> list[dict]:
    """Every policy of the single-step systematic cases, each once (by namespace and name)."""
    seen: dict[tuple[str, str], dict] = {}
    for d in drafts:
        if len(d.seq.steps) != 1:
            continue
        for doc in d.seq.steps[0][0]:
            key = _key(doc)
            if key not in seen:
                seen[key] = doc
    return [seen[k] for k in sorted(seen)]


def fam_random(seed: int, catalogue: list[dict], taken: set) -> list[Draft]:
    rng = random.Random(f"conformance-{seed}")
    out: list[Draft] = []
    tries = 0
    while len(out) < RANDOM_SINGLE and tries < 100 * RANDOM_SINGLE:
        tries += 1
        docs = rng.sample(catalogue, rng.choice((2, 2, 3)))
        key = tuple(sorted(_key(d) for d in docs))
        if len(set(key)) < len(key) or key in taken:
            continue
        taken.add(key)
        name = f"random-{seed}-{len(out):03d}"
        words = ", ".join(f"{a}/{b}" for a, b in key)
        out.append(Draft("random", name, f"Random combination (seed {seed}): {words}.", Seq().apply(*docs).step()))
    tries = 0
    made = 0
    while made < RANDOM_STEPS and tries < 100 * RANDOM_STEPS:
        tries += 1
        seq = Seq().apply(*rng.sample(catalogue, 2)).step()
        if len(seq.docs) < 2:
            continue
        for _ in range(rng.choice((2, 3))):
            op = rng.choice(("apply", "delete", "pod", "namespace", "update"))
            if op == "apply":
                doc = rng.choice(catalogue)
                if _key(doc) in seq.docs:
                    continue
                seq.apply(doc)
            elif op == "delete" and seq.docs:
                seq.delete(*rng.choice(sorted(seq.docs)))
            elif op == "update" and seq.docs:
                ns, pname = rng.choice(sorted(seq.docs))
                other = rng.choice(catalogue)
                seq.apply({**other, "metadata": {"name": pname, "namespace": ns}})
            elif op == "pod":
                k, v = rng.choice(POD_LABEL_CHOICES)
                seq.label_pod(rng.choice(PODS), {k: v})
            else:
                k, v = rng.choice(NS_LABEL_CHOICES)
                seq.label_ns(rng.choice(NAMESPACES), {k: v})
            if seq.state() != seq.last_state():
                seq.step()
        if len(seq.steps) < 2:
            continue
        out.append(Draft("random-steps", f"random-steps-{seed}-{made:03d}",
                         f"Random changes between steps (seed {seed}).", seq))
        made += 1
    return out


def generate_cases(seed: int = 0, limit: int | None = None) -> list[Case]:
    """The conformance cases: systematic families (the same for every seed) and random
    combinations and sequences drawn from them (which the seed picks). Same seed, same cases.

    Order: round-robin over the families, so that the first `limit` cases still span them.
    """
    families = [fam() for fam in SYSTEMATIC]
    flat = [d for fam in families for d in fam]
    catalogue = _catalogue(flat)
    taken: set = set()
    randoms = fam_random(seed, catalogue, taken)
    families.append([d for d in randoms if d.family == "random"])
    families.append([d for d in randoms if d.family == "random-steps"])
    ordered: list[Draft] = []
    for i in range(max(len(f) for f in families)):
        ordered += [f[i] for f in families if i < len(f)]
    cases: list[Case] = []
    keys: set = set()
    names: set[str] = set()
    for draft in ordered:
        if limit is not None and len(cases) >= limit:
            break
        case = build_case(draft)
        if case.key() in keys or case.name in names:
            continue   # an identical random draw: keep the cases distinct
        keys.add(case.key())
        names.add(case.name)
        cases.append(case)
    return cases
