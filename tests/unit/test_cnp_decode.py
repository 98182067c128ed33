"""ClusterNetworkPolicy (v1alpha2), AdminNetworkPolicy and BaselineAdminNetworkPolicy (v1alpha1)
decoding (spec/cnp.py). Objects that must fail are in data/bad/cnp-*.yaml (test_spec_load_bad.py)."""

from __future__ import annotations

import pathlib

import pytest

from testbed.cli import main
from testbed.spec.cnp import NamespacedPods, TierPeer, TierPort
from testbed.spec.selectors import LabelSelector
from testbed.spec.workloads import load_manifests

REPO = pathlib.Path(__file__).resolve().parents[2]
BAD = REPO / "tests" / "unit" / "data" / "bad" / "cnp-misc.yaml"

GOOD = """
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: deny-sensitive, namespace: ignored}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {}}
  ingress:
  - name: select-all-deny-all
    action: Deny
    from: [{namespaces: {matchLabels: {team: sensitive}}}]
    protocols: [{tcp: {destinationPort: {number: 80}}}, {destinationNamedPort: http},
                {sctp: {destinationPort: {range: {start: 5000, end: 5010}}}}]
  egress:
  - {action: Pass, to: [{networks: [10.0.0.0/8, 192.168.1.7/24]}, {nodes: {}}]}
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: allow-monitoring}
spec:
  priority: 3
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: web}}}}
  ingress:
  - {action: Allow, from: [{pods: {namespaceSelector: {}, podSelector: {}}}],
     ports: [{portNumber: {port: 9090}}, {portRange: {protocol: UDP, start: 1, end: 9}}, {namedPort: metrics}]}
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {matchLabels: {team: blue}}}
  egress: [{action: Deny, to: [{namespaces: {}}]}]
"""


def test_the_three_kinds_decode_into_one_model(tmp_path):
    path = tmp_path / "tiers.yaml"
    path.write_text(GOOD, encoding="utf-8")
    cnp, anp, banp = load_manifests([str(path)]).cluster_policies
    assert (cnp.full_name, cnp.tier, cnp.priority, cnp.ref.namespace) == ("cnp/deny-sensitive", "Admin", 10, "")
    assert cnp.subject_namespaces == LabelSelector() and cnp.subject_pods is None
    (rule,) = cnp.ingress
    assert (rule.name, rule.action, rule.index) == ("select-all-deny-all", "Deny", 0)
    assert rule.peers == (TierPeer(namespaces=LabelSelector((("team", "sensitive"),))),)
    assert rule.ports == (TierPort("TCP", 80, 80), TierPort(None, name="http"), TierPort("SCTP", 5000, 5010))
    (out,) = cnp.egress
    assert out.action == "Pass" and out.ports is None
    assert out.peers == (TierPeer(networks=("10.0.0.0/8", "192.168.1.7/24")), TierPeer(nodes=LabelSelector()))
    # v1alpha1: Allow is the same action as Accept; protocol defaults to TCP
    assert (anp.full_name, anp.tier, anp.priority) == ("anp/allow-monitoring", "Admin", 3)
    assert anp.subject_pods == NamespacedPods(LabelSelector(), LabelSelector((("app", "web"),)))
    assert anp.ingress[0].action == "Accept"
    assert anp.ingress[0].ports == (TierPort("TCP", 9090, 9090), TierPort("UDP", 1, 9), TierPort(None, name="metrics"))
    # the Baseline singleton comes after every Baseline ClusterNetworkPolicy (priority <= 1000)
    assert (banp.full_name, banp.tier, banp.priority) == ("banp/default", "Baseline", 1001)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("priority", "-1", "Invalid value: -1: should be greater than or equal to 0"),
        ("priority", "'1'", "Invalid value: '1': must be of type integer"),
        (
            "ingress",
            "[" + ", ".join(["{action: Deny, from: [{namespaces: {}}]}"] * 26) + "]",
            "Too many: 26: must have at most 25 items",
        ),
        ("subject", "{}", "should have at least 1 properties"),
    ],
)
def test_schema_bounds(tmp_path, field, value, message):
    spec = {"tier": "Admin", "priority": "1", "subject": "{namespaces: {}}"}
    spec[field] = value
    body = "\n".join(f"  {k}: {v}" for k, v in spec.items())
    path = tmp_path / "p.yaml"
    path.write_text(
        "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\n"
        f"metadata: {{name: p}}\nspec:\n{body}\n",
        encoding="utf-8",
    )
    from testbed.errors import SpecError

    with pytest.raises(SpecError) as info:
        load_manifests([str(path)])
    (problem,) = info.value.problems
    assert problem.path == f"spec.{field}" and message in problem.message


def test_a_bad_object_is_one_line_per_problem_and_exit_2(capsys):
    code = main(["plan", str(REPO / "topologies" / "routing-l2-host-gw.yaml"), "-f", str(BAD)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    lines = err.splitlines()
    assert "cnp-misc.yaml (ClusterNetworkPolicy too-high): spec.priority: Invalid value: 1001" in lines[0]
    assert all(line.startswith("testbed: error: ") for line in lines)
