"""Tiered conformance cases: the administrator's tiers on the x/y/z model (issue 17); pure.

Behind `testbed conformance --tiered` (generate_cases(tiered=True)): the NetworkPolicy suite
and its golden list stay as they are. Each case is a list of steps, each step the whole set
of ClusterNetworkPolicy / AdminNetworkPolicy / BaselineAdminNetworkPolicy and NetworkPolicy
objects in force (written as data here, dumped to YAML and decoded by the manifest loader, so
every case is valid per the CRDs by construction). Every action at each tier, priorities and
their updates, rule order, Pass chains, overlaps with v1 NetworkPolicies, subjects by pods,
egress networks, named ports, port ranges; the `npapi-*` cases are the Network Policy API
project's own conformance scenarios (conformance/base/api_integration and
admin_tier/standard-priority-field, kubernetes-sigs/network-policy-api) restated on the model:
gryffindor is x (team=red), slytherin is y (team=blue). The rest of that project's conformance
tests, ported mechanically, come from npapi.py (data/npapi.yaml).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .decode import decode_text, dump
from .npapi import npapi_cases
from .steps import Case, Step
from .xyz import SOURCE, model_namespaces

Doc = dict[str, Any]  # one manifest object, or a part of one, as YAML would load it

CNP_API = "policy.networking.k8s.io/v1alpha2"
ANP_API = "policy.networking.k8s.io/v1alpha1"
RED = {"matchLabels": {"team": "red"}}
BLUE = {"matchLabels": {"team": "blue"}}
Z = {"matchLabels": {"kubernetes.io/metadata.name": "z"}}
ALL: Doc = {}


def cnp(
    name: str, tier: str, priority: int, subject: Doc, ingress: Iterable[Doc] = (), egress: Iterable[Doc] = ()
) -> Doc:
    spec: dict[str, Any] = {"tier": tier, "priority": priority, "subject": subject}
    if ingress:
        spec["ingress"] = list(ingress)
    if egress:
        spec["egress"] = list(egress)
    return {"apiVersion": CNP_API, "kind": "ClusterNetworkPolicy", "metadata": {"name": name}, "spec": spec}


def anp(name: str, priority: int, subject: Doc, ingress: Iterable[Doc] = (), egress: Iterable[Doc] = ()) -> Doc:
    doc = cnp(name, "Admin", priority, subject, ingress, egress)
    del doc["spec"]["tier"]
    return {**doc, "apiVersion": ANP_API, "kind": "AdminNetworkPolicy"}


def banp(subject: Doc, ingress: Iterable[Doc] = (), egress: Iterable[Doc] = ()) -> Doc:
    doc = cnp("default", "Baseline", 0, subject, ingress, egress)
    del doc["spec"]["tier"], doc["spec"]["priority"]
    return {**doc, "apiVersion": ANP_API, "kind": "BaselineAdminNetworkPolicy"}


def ns(selector: Doc) -> Doc:
    return {"namespaces": selector}


def pods(ns_selector: Doc, pod_selector: Doc) -> Doc:
    return {"pods": {"namespaceSelector": ns_selector, "podSelector": pod_selector}}


def rule(name: str, action: str, peers: list[Doc], protocols: list[Doc] | None = None, key: str = "from") -> Doc:
    out: dict[str, Any] = {"name": name, "action": action, key: peers}
    if protocols:
        out["protocols"] = protocols
    return out


def np(name: str, namespace: str, ingress: list[Doc] | None = None, egress: list[Doc] | None = None) -> Doc:
    spec: dict[str, Any] = {"podSelector": {}}
    types: list[str] = []
    if ingress is not None:
        spec["ingress"], types = ingress, types + ["Ingress"]
    if egress is not None:
        spec["egress"], types = egress, types + ["Egress"]
    spec["policyTypes"] = types
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


TCP80 = {"tcp": {"destinationPort": {"number": 80}}}
UDP_RANGE = {"udp": {"destinationPort": {"range": {"start": 80, "end": 81}}}}
SCTP81 = {"sctp": {"destinationPort": {"number": 81}}}
NP_FROM_BLUE = np("allow-from-blue", "x", ingress=[{"from": [{"namespaceSelector": BLUE}]}])
NP_DENY_X = np("deny-all", "x", ingress=[])

_ADMIN_DENY_BLUE = cnp("deny-blue", "Admin", 10, ns(RED), [rule("deny-from-blue", "Deny", [ns(BLUE)])])
_ADMIN_ACCEPT_BLUE = cnp("accept-blue", "Admin", 10, ns(RED), [rule("accept-from-blue", "Accept", [ns(BLUE)])])
_ADMIN_PASS_BLUE = cnp("pass-blue", "Admin", 5, ns(RED), [rule("pass-from-blue", "Pass", [ns(BLUE)])])
_BASE_DENY_ALL = cnp("baseline-deny", "Baseline", 10, ns(RED), [rule("deny-all", "Deny", [ns(ALL)])])


def _priority(first: int, second: int) -> list[Doc]:
    return [
        cnp("deny-80", "Admin", first, ns(ALL), [rule("deny-tcp-80", "Deny", [ns(ALL)], [TCP80])]),
        cnp("accept-80", "Admin", second, ns(ALL), [rule("accept-tcp-80", "Accept", [ns(ALL)], [TCP80])]),
    ]


# name, description, steps: (note, documents)
# a step's documents, or the name of a step built below (_NAMED_STEPS: the Network Policy API's own)
CASES: list[tuple[str, str, list[tuple[str, list[dict[str, Any]] | str]]]] = [
    (
        "tier-admin-deny",
        "Admin Deny: x refuses everything from y, whatever else.",
        [("admin deny from blue", [_ADMIN_DENY_BLUE])],
    ),
    (
        "tier-admin-deny-beats-networkpolicy",
        "Admin Deny wins over a NetworkPolicy that allows.",
        [("admin deny + NetworkPolicy allow", [_ADMIN_DENY_BLUE, NP_FROM_BLUE])],
    ),
    (
        "tier-admin-accept-beats-networkpolicy",
        "Admin Accept wins over a NetworkPolicy default-deny.",
        [("admin accept + NetworkPolicy deny-all", [_ADMIN_ACCEPT_BLUE, NP_DENY_X])],
    ),
    (
        "tier-admin-pass-to-networkpolicy",
        "Pass hands y->x to x's NetworkPolicy, which allows it.",
        [("pass + NetworkPolicy allow", [_ADMIN_PASS_BLUE, _ADMIN_DENY_BLUE, NP_FROM_BLUE])],
    ),
    (
        "tier-admin-pass-to-baseline",
        "Pass with no NetworkPolicy: the Baseline deny decides.",
        [("pass + baseline deny", [_ADMIN_PASS_BLUE, _ADMIN_DENY_BLUE, _BASE_DENY_ALL])],
    ),
    (
        "tier-baseline-deny",
        "Baseline Deny applies where no NetworkPolicy selects the pod.",
        [("baseline deny", [_BASE_DENY_ALL])],
    ),
    (
        "tier-networkpolicy-overrides-baseline",
        "A NetworkPolicy overrides the Baseline for the pods it selects.",
        [("baseline deny + NetworkPolicy allow", [_BASE_DENY_ALL, NP_FROM_BLUE])],
    ),
    (
        "tier-baseline-accept-then-deny",
        "Baseline rule order: Accept from y, then Deny all.",
        [
            (
                "baseline accept, deny",
                [
                    cnp(
                        "baseline",
                        "Baseline",
                        1,
                        ns(RED),
                        [rule("accept-blue", "Accept", [ns(BLUE)]), rule("deny", "Deny", [ns(ALL)])],
                    )
                ],
            )
        ],
    ),
    (
        "tier-baseline-pass",
        "Baseline Pass skips the rest of the Baseline tier: the default allow.",
        [
            (
                "baseline pass, deny",
                [
                    cnp(
                        "baseline",
                        "Baseline",
                        1,
                        ns(RED),
                        [rule("pass-blue", "Pass", [ns(BLUE)]), rule("deny", "Deny", [ns(ALL)])],
                    )
                ],
            )
        ],
    ),
    (
        "tier-priority-order",
        "The lower priority number wins; swapping priorities flips the verdict.",
        [("deny at 1, accept at 2", _priority(1, 2)), ("deny at 3, accept at 2", _priority(3, 2))],
    ),
    (
        "tier-rule-order",
        "Inside one policy, the first matching rule wins.",
        [
            (
                "accept tcp 80, then deny",
                [
                    cnp(
                        "ordered",
                        "Admin",
                        1,
                        ns(Z),
                        [rule("accept-80", "Accept", [ns(ALL)], [TCP80]), rule("deny-rest", "Deny", [ns(ALL)])],
                    )
                ],
            )
        ],
    ),
    (
        "tier-subject-pods",
        "A subject by pods: only pod a of every namespace is protected.",
        [
            (
                "deny to pod a",
                [
                    cnp(
                        "protect-a",
                        "Admin",
                        1,
                        pods(ALL, {"matchLabels": {"pod": "a"}}),
                        [rule("deny", "Deny", [pods(ALL, {"matchLabels": {"pod": "b"}})])],
                    )
                ],
            )
        ],
    ),
    (
        "tier-ports",
        "Port ranges and protocols: UDP 80-81 and SCTP 81 denied into z.",
        [
            (
                "deny udp 80-81, sctp 81",
                [cnp("ports", "Admin", 1, ns(Z), [rule("deny-ports", "Deny", [ns(ALL)], [UDP_RANGE, SCTP81])])],
            )
        ],
    ),
    (
        "tier-named-port",
        "destinationNamedPort resolves on the destination pod.",
        [
            (
                "deny serve-81-tcp",
                [
                    cnp(
                        "named",
                        "Admin",
                        1,
                        ns(ALL),
                        [rule("deny-named", "Deny", [ns(RED)], [{"destinationNamedPort": "serve-81-tcp"}])],
                    )
                ],
            )
        ],
    ),
    (
        "tier-egress-networks",
        "Egress networks match pod addresses: x may not reach the pod network on TCP 80.",
        [
            (
                "deny egress to 10.244.0.0/16 tcp 80",
                [
                    cnp(
                        "egress",
                        "Admin",
                        1,
                        ns(RED),
                        egress=[rule("deny-pod-network", "Deny", [{"networks": ["10.244.0.0/16"]}], [TCP80], key="to")],
                    )
                ],
            )
        ],
    ),
    (
        "tier-egress-accept-ingress-still-applies",
        "Admin egress Accept does not skip the destination's ingress.",
        [
            (
                "egress accept + ingress baseline deny",
                [
                    cnp("egress-accept", "Admin", 1, ns(BLUE), egress=[rule("accept", "Accept", [ns(ALL)], key="to")]),
                    _BASE_DENY_ALL,
                ],
            )
        ],
    ),
    (
        "tier-v1alpha1",
        "AdminNetworkPolicy Allow and Pass, BaselineAdminNetworkPolicy Deny.",
        [
            (
                "anp + banp",
                [
                    anp("allow-blue", 1, ns(RED), [rule("allow", "Allow", [ns(BLUE)], None)]),
                    anp("pass-z", 2, ns(RED), [rule("pass", "Pass", [ns(Z)])]),
                    banp(ns(RED), [rule("deny", "Deny", [ns(ALL)])]),
                ],
            )
        ],
    ),
    (
        "tier-updates",
        "Deny, then Pass to a NetworkPolicy, then nothing: changes between steps.",
        [
            ("admin deny", [_ADMIN_DENY_BLUE]),
            ("deny changed to pass + NetworkPolicy deny-all", [_ADMIN_PASS_BLUE, NP_DENY_X]),
            ("everything deleted", []),
        ],
    ),
    # The Network Policy API's own scenarios (kubernetes-sigs/network-policy-api conformance/base).
    (
        "npapi-anp-np-banp",
        "api_integration/standard-anp-np-banp: Admin deny, then Pass to the "
        "NetworkPolicy that allows, then Pass with the NetworkPolicy gone: the Baseline deny.",
        [
            (
                "admin deny",
                [
                    cnp(
                        "pass-example",
                        "Admin",
                        10,
                        ns(RED),
                        [rule("deny-all-ingress-from-slytherin", "Deny", [ns(BLUE)])],
                        [rule("deny-all-egress-to-slytherin", "Deny", [ns(BLUE)], key="to")],
                    ),
                    np(
                        "allow-gress-from-to-slytherin-to-gryffindor",
                        "x",
                        ingress=[{"from": [{"namespaceSelector": BLUE}]}],
                        egress=[{"to": [{"namespaceSelector": BLUE}]}],
                    ),
                    cnp(
                        "default",
                        "Baseline",
                        10,
                        ns(RED),
                        [rule("deny-all-ingress-from-slytherin", "Deny", [ns(BLUE)])],
                        [rule("deny-all-egress-to-slytherin", "Deny", [ns(BLUE)], key="to")],
                    ),
                ],
            ),
            ("admin rules updated to Pass", "pass"),
            ("NetworkPolicy deleted", "pass-no-np"),
        ],
    ),
    (
        "npapi-priority-field",
        "admin_tier/standard-priority-field: Deny at 50 beats Pass at 60; "
        "the Pass updated to priority 40 hands the traffic to the Baseline allow.",
        [("deny 50, pass 60", "prio-60"), ("pass moved to 40", "prio-40")],
    ),
]


def _npapi_pass(no_np: bool) -> list[Doc]:
    admin = cnp(
        "pass-example",
        "Admin",
        10,
        ns(RED),
        [rule("deny-all-ingress-from-slytherin", "Pass", [ns(BLUE)])],
        [rule("deny-all-egress-to-slytherin", "Pass", [ns(BLUE)], key="to")],
    )
    base = cnp(
        "default",
        "Baseline",
        10,
        ns(RED),
        [rule("deny-all-ingress-from-slytherin", "Deny", [ns(BLUE)])],
        [rule("deny-all-egress-to-slytherin", "Deny", [ns(BLUE)], key="to")],
    )
    policy = np(
        "allow-gress-from-to-slytherin-to-gryffindor",
        "x",
        ingress=[{"from": [{"namespaceSelector": BLUE}]}],
        egress=[{"to": [{"namespaceSelector": BLUE}]}],
    )
    return [admin, base] if no_np else [admin, policy, base]


def _npapi_priority(pass_priority: int) -> list[Doc]:
    red, blue = pods(RED, {"matchLabels": {"pod": "a"}}), pods(BLUE, {"matchLabels": {"pod": "a"}})
    return [
        cnp(
            "priority-50-example",
            "Admin",
            50,
            red,
            [rule("deny-all-ingress-from-slytherin", "Deny", [blue])],
            [rule("deny-all-egress-to-slytherin", "Deny", [blue], key="to")],
        ),
        cnp(
            "old-priority-60-new-priority-40-example",
            "Admin",
            pass_priority,
            red,
            [rule("pass-all-ingress-from-slytherin", "Pass", [blue])],
            [rule("pass-all-egress-to-slytherin", "Pass", [blue], key="to")],
        ),
        cnp(
            "default",
            "Baseline",
            10,
            red,
            [rule("allow-all-ingress-from-slytherin", "Accept", [blue])],
            [rule("allow-all-egress-to-slytherin", "Accept", [blue], key="to")],
        ),
    ]


_NAMED_STEPS = {
    "pass": lambda: _npapi_pass(False),
    "pass-no-np": lambda: _npapi_pass(True),
    "prio-60": lambda: _npapi_priority(60),
    "prio-40": lambda: _npapi_priority(40),
}


def tiered_cases() -> list[Case]:
    """Every tiered case, decoded through the manifest loader (a case that does not decode is a bug),
    then the Network Policy API's ported conformance tests (npapi.py)."""
    out = []
    for name, description, steps in CASES:
        source = f"{SOURCE}/{name}.yaml"
        built = []
        for note, given in steps:
            docs = _NAMED_STEPS[given]() if isinstance(given, str) else given
            texts = [dump(d) for d in docs]
            m = decode_text("---\n".join(texts), source, model_namespaces()) if texts else None
            v1 = tuple(t for t, d in zip(texts, docs) if d["kind"] == "NetworkPolicy")
            tiers = tuple(t for t, d in zip(texts, docs) if d["kind"] != "NetworkPolicy")
            built.append(
                Step(m.policies if m else (), v1, note=note, tiers=m.cluster_policies if m else (), tier_texts=tiers)
            )
        out.append(Case(name, description, ("tiered",), tuple(built)))
    return out + npapi_cases()
