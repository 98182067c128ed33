"""The tiered oracle (netpol/tiers.py through netpol/oracle.py): Admin by priority and rule order,
Pass hands the decision down, namespaced NetworkPolicies, Baseline, default allow; and what
`testbed explain` says about it."""

from __future__ import annotations

import textwrap

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.netpol import Flow, decide, explain_flow
from testbed.spec.cnp import decode_anp, decode_banp, decode_cnp
from testbed.spec.decode import Doc, Problems
from testbed.spec.model import ObjectRef

from ._netpol import xyz_world

_DECODERS = {
    "ClusterNetworkPolicy": decode_cnp,
    "AdminNetworkPolicy": decode_anp,
    "BaselineAdminNetworkPolicy": decode_banp,
}


def tiers(text: str):
    out = []
    for raw in yaml.safe_load_all(textwrap.dedent(text)):
        kind = raw.setdefault("kind", "ClusterNetworkPolicy")
        raw.setdefault(
            "apiVersion", "policy.networking.k8s.io/" + ("v1alpha2" if kind == "ClusterNetworkPolicy" else "v1alpha1")
        )
        problems = Problems()
        ref = ObjectRef("t.yaml", kind, "", raw["metadata"]["name"])
        spec = _DECODERS[kind](Doc(raw, "t.yaml", problems, document=str(ref)), ref, {}, {})
        problems.raise_if_any()
        out.append(spec)
    return out


def world(tier_text: str, np_text: str = ""):
    return xyz_world(np_text).with_tiers(tiers(tier_text))


DENY_Z = """
metadata: {name: deny-sensitive}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {matchLabels: {ns: z}}}
  ingress:
  - {name: select-all-deny-all, action: Deny, from: [{namespaces: {}}]}
"""


def test_admin_deny_wins_and_is_named():
    v = decide(Flow("x/a", "z/b", 80), world(DENY_Z))
    assert not v.allowed and v.ingress.decision() == "Admin cnp/deny-sensitive rule select-all-deny-all: Deny"
    assert v.egress.allowed and v.egress.decision() == "no tier matches: default allow"
    text = explain_flow(v)
    assert "BLOCKED at ingress of the destination (cnp/deny-sensitive)" in text
    assert "ingress of the destination: BLOCKED: Admin cnp/deny-sensitive rule select-all-deny-all: Deny" in text
    assert decide(Flow("x/a", "y/b", 80), world(DENY_Z)).allowed


def test_admin_beats_a_networkpolicy_that_allows():
    allow_all = "metadata: {name: allow-all, namespace: z}\nspec: {podSelector: {}, ingress: [{}]}"
    assert not decide(Flow("x/a", "z/b", 80), world(DENY_Z, allow_all)).allowed


def test_priority_then_rule_order_first_match_wins():
    text = """
    metadata: {name: late}
    spec:
      tier: Admin
      priority: 20
      subject: {namespaces: {}}
      ingress: [{name: deny, action: Deny, from: [{namespaces: {}}]}]
    ---
    metadata: {name: early}
    spec:
      tier: Admin
      priority: 5
      subject: {namespaces: {}}
      ingress:
      - {name: accept-80, action: Accept, from: [{namespaces: {}}], protocols: [{tcp: {destinationPort: {number: 80}}}]}
      - {name: deny-rest, action: Deny, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {pod: a}}}}]}
    """
    w = world(text)
    assert decide(Flow("x/a", "y/b", 80), w).ingress.decision() == "Admin cnp/early rule accept-80: Accept"
    assert decide(Flow("x/a", "y/b", 81), w).ingress.decision() == "Admin cnp/early rule deny-rest: Deny"
    assert decide(Flow("x/b", "y/b", 81), w).ingress.decision() == "Admin cnp/late rule deny: Deny"


PASS_AND_BASELINE = """
metadata: {name: delegate}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {}}
  ingress: [{name: to-teams, action: Pass, from: [{namespaces: {}}]}]
---
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  ingress: [{name: default-deny, action: Deny, from: [{namespaces: {}}]}]
"""


def test_pass_goes_to_networkpolicy_then_baseline():
    np = "metadata: {name: allow-ns-y, namespace: x}\nspec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]}"
    w = world(PASS_AND_BASELINE, np)
    v = decide(Flow("y/a", "x/b", 80), w)
    assert v.allowed and v.ingress.decision() == "passed to NetworkPolicy: allowed by x/allow-ns-y"
    assert "Admin cnp/delegate rule to-teams: Pass (skips the rest of the Admin tier)" in explain_flow(v)
    v = decide(Flow("z/a", "x/b", 80), w)  # x is isolated by its policy: NetworkPolicy decides
    assert not v.allowed and v.ingress.tier == "NetworkPolicy"
    v = decide(Flow("x/a", "y/b", 80), w)  # y has no NetworkPolicy: the Baseline decides
    assert not v.allowed and v.ingress.decision() == "passed to Baseline banp/default rule default-deny: Deny"


def test_egress_networks_match_pod_ips_and_external_hosts_nodes_match_node_ips():
    text = """
    metadata: {name: egress}
    spec:
      tier: Baseline
      priority: 0
      subject: {pods: {namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: a}}}}
      egress:
      - {name: no-laptop, action: Deny, to: [{networks: [192.168.1.10/32]}]}
      - {name: no-nodes, action: Deny, to: [{nodes: {}}]}
      - {name: no-y, action: Deny, to: [{networks: [10.244.0.0/16]}], protocols: [{udp: {destinationPort: {range: {start: 80, end: 81}}}}]}
    """
    w = world(text)
    assert decide(Flow("x/a", "laptop", 80), w).egress.decision() == "Baseline cnp/egress rule no-laptop: Deny"
    assert decide(Flow("x/a", "n1", 80), w).egress.decision() == "Baseline cnp/egress rule no-nodes: Deny"
    assert decide(Flow("x/a", "y/a", 81, "UDP"), w).egress.decision() == "Baseline cnp/egress rule no-y: Deny"
    assert decide(Flow("x/a", "y/a", 81, "TCP"), w).allowed
    assert decide(Flow("x/b", "laptop", 80), w).allowed  # not the subject


def test_named_ports_resolve_on_the_destination():
    text = """
    metadata: {name: named}
    spec:
      tier: Admin
      priority: 0
      subject: {namespaces: {}}
      ingress: [{name: serve, action: Deny, from: [{namespaces: {}}], protocols: [{destinationNamedPort: serve-80-udp}]}]
    """
    w = world(text)
    assert not decide(Flow("x/a", "y/b", 80, "UDP"), w).allowed
    assert decide(Flow("x/a", "y/b", 80, "TCP"), w).allowed
    assert decide(Flow("x/a", "y/b", None, "ICMP"), w).allowed


def test_without_tiers_nothing_changes():
    np = "metadata: {name: deny, namespace: y}\nspec: {podSelector: {}}"
    v = decide(Flow("x/a", "y/b", 80), xyz_world(np))
    assert v.ingress.tier == "" and v.ingress.decision() == ""


ACTIONS = st.sampled_from(["Accept", "Deny", "Pass"])


@settings(max_examples=60, deadline=None)
@given(
    admin=st.lists(st.tuples(st.integers(0, 3), ACTIONS), max_size=3),
    baseline=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["Accept", "Deny"])), max_size=2),
    isolate=st.booleans(),
)
def test_the_hierarchy_as_a_property(admin, baseline, isolate):
    """Against a direct reading of the API's text: the lowest-priority Admin policy that matches
    decides unless it passes; then a NetworkPolicy that selects the pod; then Baseline; else allow."""
    docs = []
    for i, (prio, action) in enumerate(admin):
        docs.append(
            {
                "metadata": {"name": f"a{i}"},
                "spec": {
                    "tier": "Admin",
                    "priority": prio,
                    "subject": {"namespaces": {}},
                    "ingress": [{"action": action, "from": [{"namespaces": {}}]}],
                },
            }
        )
    for i, (prio, action) in enumerate(baseline):
        docs.append(
            {
                "metadata": {"name": f"b{i}"},
                "spec": {
                    "tier": "Baseline",
                    "priority": prio,
                    "subject": {"namespaces": {}},
                    "ingress": [{"action": action, "from": [{"namespaces": {}}]}],
                },
            }
        )
    np = "metadata: {name: deny, namespace: y}\nspec: {podSelector: {}}" if isolate else ""
    w = xyz_world(np).with_tiers(tiers(yaml.safe_dump_all(docs)) if docs else [])
    first_admin = min(((p, f"a{i}", a) for i, (p, a) in enumerate(admin)), default=None)
    first_base = min(((p, f"b{i}", a) for i, (p, a) in enumerate(baseline)), default=None)
    if first_admin and first_admin[2] != "Pass":
        expected = first_admin[2] == "Accept"
    elif isolate:
        expected = False
    elif first_base:
        expected = first_base[2] == "Accept"
    else:
        expected = True
    v = decide(Flow("x/a", "y/b", 80), w)
    assert v.allowed is expected


def test_explain_pod_lists_the_tiers_in_evaluation_order():
    from testbed.netpol import explain_pod

    text = explain_pod(world(PASS_AND_BASELINE + "---" + DENY_Z), "z/b")
    lines = text.splitlines()
    at = lines.index(next(line for line in lines if line.startswith("cluster network policies")))
    assert lines[at + 1 :] == [
        "ingress: Admin cnp/delegate (priority 1) rule to-teams: Pass",
        "ingress: Admin cnp/deny-sensitive (priority 10) rule select-all-deny-all: Deny",
        "ingress: Baseline banp/default (priority 1001) rule default-deny: Deny",
    ]
