"""Feature tags of the cases, inferred from the decoded policies and the step transitions (pure).

The first tag of a case is its family (what the generator meant to test; the JUnit
classname); the others are inferred here, so that "every feature appears in N cases" is
measured, not declared.
"""

from __future__ import annotations

from ..spec.netpol import NetworkPolicySpec
from ..spec.selectors import LabelSelector
from .steps import Step
from .xyz import MODEL_NAMESPACES, PODS

FEATURES = (
    "deny-ingress",
    "deny-egress",
    "deny-both",
    "allow-all-ingress",
    "allow-all-egress",
    "target-selector",
    "pod-selector",
    "match-labels",
    "expr-in",
    "expr-notin",
    "expr-exists",
    "expr-doesnotexist",
    "namespace-selector",
    "namespace-selector-all",
    "namespace-and-pod",
    "peers-or",
    "ip-block",
    "ip-block-except",
    "port-number",
    "port-name",
    "end-port",
    "protocol-tcp",
    "protocol-udp",
    "protocol-sctp",
    "protocol-all-ports",
    "multiple-policies",
    "several-namespaces",
    "ingress-and-egress",
    "policy-types-inferred",
    "ignored-rules",
    "multi-step",
    "apply-policy",
    "update-policy",
    "delete-policy",
    "relabel-pod",
    "relabel-namespace",
)


def _selector_tags(sel: LabelSelector | None) -> set[str]:
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
