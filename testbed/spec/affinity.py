"""A pod's scheduling constraints as the API server holds them: node affinity, pod (anti-)affinity
and topology spread constraints, decoded and validated (pure).

Part of spec/: spec/workloads.py calls `decode_scheduling` on every pod spec and the result
lands in PodTemplate (spec/model.py); plan/scheduling/ evaluates them as kube-scheduler's
NodeAffinity, InterPodAffinity and PodTopologySpread plugins do. Semantics follow
k8s.io/component-helpers/scheduling/corev1/nodeaffinity: node selector terms are ORed, the
requirements of one term ANDed, an empty term matches nothing; Gt and Lt compare integers;
matchFields knows `metadata.name` only. Validation messages are the API server's words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .decode import Doc
from .labels import decode_selector, requirement_fields
from .names import dns1123_label_error, label_key_error
from .selectors import LabelSelector

NODE_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
NAME_FIELD = "metadata.name"
SPREAD_ACTIONS = ("DoNotSchedule", "ScheduleAnyway")
INCLUSION_POLICIES = ("Honor", "Ignore")
_INT64 = (-(2**63), 2**63 - 1)


def _int64(text: str) -> int | None:
    """strconv.ParseInt(text, 10, 64), or None."""
    body = text[1:] if text[:1] in "+-" else text
    if not body.isdigit() or not body.isascii():
        return None
    value = int(text)
    return value if _INT64[0] <= value <= _INT64[1] else None


@dataclass(frozen=True)
class NodeSelectorRequirement:
    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, value: str | None) -> bool:
        """Does a label (or field) with this value (None: absent) satisfy the requirement?"""
        op = self.operator
        if op == "In":
            return value is not None and value in self.values
        if op == "NotIn":
            return value is None or value not in self.values
        if op == "Exists":
            return value is not None
        if op == "DoesNotExist":
            return value is None
        # Gt / Lt: both sides must parse as integers, else no match (as labels.Requirement does)
        have = _int64(value) if value is not None else None
        want = _int64(self.values[0]) if len(self.values) == 1 else None
        if have is None or want is None:
            return False
        return have > want if op == "Gt" else have < want


@dataclass(frozen=True)
class NodeSelectorTerm:
    match_expressions: tuple[NodeSelectorRequirement, ...] = ()
    match_fields: tuple[NodeSelectorRequirement, ...] = ()

    def matches(self, node_name: str, labels: Mapping[str, str]) -> bool:
        if not self.match_expressions and not self.match_fields:
            return False  # an empty term matches no objects
        return all(r.matches(labels.get(r.key)) for r in self.match_expressions) and all(
            r.matches(node_name if r.key == NAME_FIELD else None) for r in self.match_fields
        )

    def node_names(self) -> frozenset[str] | None:
        """The names its `metadata.name In` fields allow (their intersection), None if it has none:
        NodeAffinity's PreFilter narrows the nodes it evaluates to these (the DaemonSet idiom)."""
        names: frozenset[str] | None = None
        for r in self.match_fields:
            if r.key == NAME_FIELD and r.operator == "In":
                names = frozenset(r.values) if names is None else names & frozenset(r.values)
        return names


@dataclass(frozen=True)
class PreferredSchedulingTerm:
    weight: int
    preference: NodeSelectorTerm


@dataclass(frozen=True)
class PodAffinityTerm:
    """selector None: matches no pod (a nil labelSelector); namespaces () and namespace_selector
    None: the pod's own namespace; an empty namespace_selector: every namespace."""

    topology_key: str
    selector: LabelSelector | None = None
    namespaces: tuple[str, ...] = ()
    namespace_selector: LabelSelector | None = None
    match_label_keys: tuple[str, ...] = ()
    mismatch_label_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class WeightedPodAffinityTerm:
    weight: int
    term: PodAffinityTerm


@dataclass(frozen=True)
class Affinity:
    """spec.affinity. node_required None: no required node affinity."""

    node_required: tuple[NodeSelectorTerm, ...] | None = None
    node_preferred: tuple[PreferredSchedulingTerm, ...] = ()
    pod_required: tuple[PodAffinityTerm, ...] = ()
    pod_preferred: tuple[WeightedPodAffinityTerm, ...] = ()
    anti_required: tuple[PodAffinityTerm, ...] = ()
    anti_preferred: tuple[WeightedPodAffinityTerm, ...] = ()

    def has_pod_terms(self) -> bool:
        return bool(self.pod_required or self.pod_preferred or self.anti_required or self.anti_preferred)


@dataclass(frozen=True)
class TopologySpreadConstraint:
    """selector None: counts no pod. min_domains None means 1; the node inclusion policies
    default to nodeAffinityPolicy Honor and nodeTaintsPolicy Ignore, as kube-scheduler's."""

    max_skew: int
    topology_key: str
    when_unsatisfiable: str
    selector: LabelSelector | None = None
    min_domains: int | None = None
    node_affinity_policy: str = "Honor"
    node_taints_policy: str = "Ignore"
    match_label_keys: tuple[str, ...] = ()


# -- decoding -------------------------------------------------------------------------------


def decode_scheduling(spec: Doc) -> dict[str, Any]:
    """PodTemplate's `affinity` and `topology_spread` fields from a pod spec (problems on spec)."""
    out: dict[str, Any] = {}
    adoc = spec.mapping("affinity")
    if adoc is not None:
        out["affinity"] = _affinity(adoc)
    constraints = _spread(spec)
    if constraints:
        out["topology_spread"] = constraints
    return out


def _affinity(doc: Doc) -> Affinity:
    doc.check_keys(("nodeAffinity", "podAffinity", "podAntiAffinity"))
    node_required: tuple[NodeSelectorTerm, ...] | None = None
    node_preferred: list[PreferredSchedulingTerm] = []
    ndoc = doc.mapping("nodeAffinity")
    if ndoc is not None:
        ndoc.check_keys(
            ("requiredDuringSchedulingIgnoredDuringExecution", "preferredDuringSchedulingIgnoredDuringExecution")
        )
        rdoc = ndoc.mapping("requiredDuringSchedulingIgnoredDuringExecution")
        if rdoc is not None:
            rdoc.check_keys(("nodeSelectorTerms",))
            node_required = tuple(_node_term(t) for t in rdoc.items("nodeSelectorTerms", required=True))
            if not node_required and isinstance(rdoc.value.get("nodeSelectorTerms"), list):
                rdoc.error("must have at least one node selector term", "nodeSelectorTerms")
        for pdoc in ndoc.items("preferredDuringSchedulingIgnoredDuringExecution"):
            if not pdoc.is_mapping():
                continue
            pdoc.check_keys(("weight", "preference"))
            weight = pdoc.int("weight", required=True, minimum=1, maximum=100)
            pref = pdoc.mapping("preference", required=True)
            if weight is not None and pref is not None:
                node_preferred.append(PreferredSchedulingTerm(weight, _node_term(pref)))
    pod = _pod_terms(doc.mapping("podAffinity"))
    anti = _pod_terms(doc.mapping("podAntiAffinity"))
    return Affinity(node_required, tuple(node_preferred), pod[0], pod[1], anti[0], anti[1])


def _node_term(doc: Doc) -> NodeSelectorTerm:
    if not doc.is_mapping():
        return NodeSelectorTerm()
    doc.check_keys(("matchExpressions", "matchFields"))
    exprs = [r for r in (_node_requirement(e, field=False) for e in doc.items("matchExpressions")) if r]
    fields = [r for r in (_node_requirement(e, field=True) for e in doc.items("matchFields")) if r]
    return NodeSelectorTerm(tuple(exprs), tuple(fields))


def _node_requirement(doc: Doc, field: bool) -> NodeSelectorRequirement | None:
    if not doc.is_mapping():
        return None
    key, op, values = requirement_fields(doc)
    if key is None or op is None:
        return None
    if field:
        # validateNodeFieldSelectorRequirement: metadata.name, In/NotIn, exactly one value
        if key != NAME_FIELD:
            doc.error(f"not a valid field selector key, supported: {NAME_FIELD!r}", "key")
            return None
        if op not in ("In", "NotIn"):
            doc.error(f"not a valid selector operator, supported: In, NotIn; got {op!r}", "operator")
            return None
        if len(values) != 1:
            doc.error("must be only one value when `operator` is 'In' or 'NotIn' for node field selector", "values")
            return None
        return NodeSelectorRequirement(key, op, tuple(values))
    err = label_key_error(key)
    if err:
        doc.error(err, "key")
    if op not in NODE_OPERATORS:
        doc.error(f"must be one of {', '.join(NODE_OPERATORS)}, got {op!r}", "operator")
        return None
    if op in ("In", "NotIn") and not values:
        doc.error("must be specified when `operator` is 'In' or 'NotIn'", "values")
    elif op in ("Exists", "DoesNotExist") and values:
        doc.error("may not be specified when `operator` is 'Exists' or 'DoesNotExist'", "values")
    elif op in ("Gt", "Lt"):
        if len(values) != 1:
            doc.error("must be specified single value when `operator` is 'Lt' or 'Gt'", "values")
        elif _int64(values[0]) is None:
            doc.error(f"{values[0][:40]!r} is not an integer", "values")
    return NodeSelectorRequirement(key, op, tuple(values))


def _pod_terms(doc: Doc | None) -> tuple[tuple[PodAffinityTerm, ...], tuple[WeightedPodAffinityTerm, ...]]:
    if doc is None:
        return (), ()
    doc.check_keys(
        ("requiredDuringSchedulingIgnoredDuringExecution", "preferredDuringSchedulingIgnoredDuringExecution")
    )
    required = [t for t in (_pod_term(d) for d in doc.items("requiredDuringSchedulingIgnoredDuringExecution")) if t]
    preferred: list[WeightedPodAffinityTerm] = []
    for wdoc in doc.items("preferredDuringSchedulingIgnoredDuringExecution"):
        if not wdoc.is_mapping():
            continue
        wdoc.check_keys(("weight", "podAffinityTerm"))
        weight = wdoc.int("weight", required=True, minimum=1, maximum=100)
        tdoc = wdoc.mapping("podAffinityTerm", required=True)
        term = _pod_term(tdoc) if tdoc is not None else None
        if weight is not None and term is not None:
            preferred.append(WeightedPodAffinityTerm(weight, term))
    return tuple(required), tuple(preferred)


def _pod_term(doc: Doc) -> PodAffinityTerm | None:
    if not doc.is_mapping():
        return None
    doc.check_keys(
        ("labelSelector", "namespaces", "topologyKey", "namespaceSelector", "matchLabelKeys", "mismatchLabelKeys")
    )
    key = doc.str("topologyKey", default="") or ""
    if not key:
        doc.error("can not be empty", "topologyKey")
    elif label_key_error(key):
        doc.error(label_key_error(key) or "", "topologyKey")
    namespaces: list[str] = []
    for ndoc in doc.items("namespaces"):
        if not isinstance(ndoc.value, str) or dns1123_label_error(ndoc.value):
            ndoc.error(
                (dns1123_label_error(ndoc.value) if isinstance(ndoc.value, str) else None) or "expected a string"
            )
        else:
            namespaces.append(ndoc.value)
    selector = decode_selector(doc.mapping("labelSelector"))
    match_keys = _label_keys(doc, "matchLabelKeys", selector)
    mismatch_keys = _label_keys(doc, "mismatchLabelKeys", selector)
    for k in set(match_keys) & set(mismatch_keys):
        doc.error(f"{k!r} exists in both matchLabelKeys and mismatchLabelKeys", "matchLabelKeys")
    return PodAffinityTerm(
        key,
        selector,
        tuple(namespaces),
        decode_selector(doc.mapping("namespaceSelector")),
        match_keys,
        mismatch_keys,
    )


def _label_keys(doc: Doc, field: str, selector: LabelSelector | None) -> tuple[str, ...]:
    keys: list[str] = []
    for kdoc in doc.items(field):
        if not isinstance(kdoc.value, str) or label_key_error(kdoc.value):
            kdoc.error((label_key_error(kdoc.value) if isinstance(kdoc.value, str) else None) or "expected a string")
            continue
        if selector is None:
            kdoc.error(f"must not be specified when labelSelector is not set ({field})")
            continue
        if any(k == kdoc.value for k, _ in selector.match_labels) or any(
            r.key == kdoc.value for r in selector.match_expressions
        ):
            kdoc.error(f"exists in both {field} and labelSelector")
            continue
        keys.append(kdoc.value)
    return tuple(keys)


def _spread(spec: Doc) -> tuple[TopologySpreadConstraint, ...]:
    out: list[TopologySpreadConstraint] = []
    seen: set[tuple[str, str]] = set()
    for cdoc in spec.items("topologySpreadConstraints"):
        if not cdoc.is_mapping():
            continue
        cdoc.check_keys(
            (
                "maxSkew",
                "topologyKey",
                "whenUnsatisfiable",
                "labelSelector",
                "minDomains",
                "nodeAffinityPolicy",
                "nodeTaintsPolicy",
                "matchLabelKeys",
            )
        )
        skew = cdoc.int("maxSkew", required=True)
        if skew is not None and skew <= 0:
            cdoc.error("must be greater than zero", "maxSkew")
        key = cdoc.str("topologyKey", required=True) or ""
        if key and label_key_error(key):
            cdoc.error(label_key_error(key) or "", "topologyKey")
        action = cdoc.str("whenUnsatisfiable", required=True)
        if action is not None and action not in SPREAD_ACTIONS:
            cdoc.error(
                f"Unsupported value: {action[:40]!r}: supported values: {', '.join(SPREAD_ACTIONS)}",
                "whenUnsatisfiable",
            )
        min_domains = cdoc.int("minDomains")
        if min_domains is not None and min_domains <= 0:
            cdoc.error("must be greater than zero", "minDomains")
        elif min_domains is not None and action != "DoNotSchedule":
            cdoc.error("can only use minDomains if whenUnsatisfiable=DoNotSchedule", "minDomains")
        policies = []
        for name in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
            value = cdoc.str(name)
            if value is not None and value not in INCLUSION_POLICIES:
                cdoc.error(f"Unsupported value: {value[:40]!r}: supported values: Honor, Ignore", name)
            policies.append(value)
        selector = decode_selector(cdoc.mapping("labelSelector"))
        keys = _label_keys(cdoc, "matchLabelKeys", selector)
        if key and action in SPREAD_ACTIONS:
            if (key, action) in seen:
                cdoc.error(f"Duplicate value: {{{key!r}, {action!r}}}", "topologyKey")
            seen.add((key, action))
        if skew is None or skew <= 0 or not key or action not in SPREAD_ACTIONS:
            continue
        out.append(
            TopologySpreadConstraint(
                skew,
                key,
                action,
                selector,
                min_domains if min_domains is not None and min_domains > 0 else None,
                policies[0] if policies[0] in INCLUSION_POLICIES else "Honor",
                policies[1] if policies[1] in INCLUSION_POLICIES else "Ignore",
                keys,
            )
        )
    return tuple(out)
