"""`testbed explain` texts (netpol/explain.py): a golden over every feature, and readability."""

from __future__ import annotations

from testbed.netpol import Flow, decide, explain_flow, explain_pod

from ._golden import check_golden
from ._netpol import xyz_world
from .test_netpol_compiler import XYZ_POLICIES, xyz_plan_world

FLOWS = [
    ("y/a", "x/a", 80, "TCP"),  # y/a's egress blocks; x/a's ingress allows (named port, AND peer)
    ("x/c", "x/a", 81, "UDP"),  # endPort range, from podSelector {}
    ("x/c", "x/a", 81, "TCP"),  # port not in the rule
    ("z/a", "x/b", 81, "TCP"),  # z may send TCP 81 only; x/b denies all ingress
    ("y/b", "z/c", 80, "SCTP"),  # ipBlock with except, to a pod IP
    ("laptop", "y/c", 80, "TCP"),  # ipBlock except the laptop
    ("kind-worker", "y/c", 80, "TCP"),
    ("y/a", "8.8.8.8", 53, "UDP"),  # DNS to outside the cluster: only pods are allowed
    ("x/a", "x/a", 80, "TCP"),
    ("x/b", "kind-worker", 10250, "TCP"),
]


def test_xyz_explanations_match_golden():
    w = xyz_plan_world()
    parts = []
    for src, dst, port, proto in FLOWS:
        parts += [f"$ testbed explain {src} {dst} {port}/{proto}", explain_flow(decide(Flow(src, dst, port, proto), w))]
    for pod in w.pods:
        parts += [f"$ testbed explain pod {pod.full_name}", explain_pod(w, pod.full_name)]
    check_golden("netpol/xyz-explain.txt", "\n".join(parts))


def test_explanations_read_as_words():
    w = xyz_world(XYZ_POLICIES)
    texts = [
        explain_flow(decide(Flow(s, d, p, proto), w))
        for s, d, p, proto in [("y/a", "x/a", 80, "TCP"), ("laptop", "y/c", 80, "TCP"), ("z/a", "x/b", 81, "TCP")]
    ]
    texts += [explain_pod(w, p.full_name) for p in w.pods]
    for text in texts:
        for bad in ("None", "PodInfo", "LabelSelector", "Requirement", "(('", "<", "{'"):
            assert bad not in text, (bad, text)
        assert all(len(line) < 240 for line in text.splitlines())
    blocked = explain_flow(decide(Flow("z/a", "x/b", 80, "TCP"), w))
    assert (
        "verdict: BLOCKED at egress of the source (z/only-81-out) and at ingress of the destination "
        "(x/deny-all-ingress)" in blocked
    )
    assert "TCP port 80 does not match ports[0] (TCP port 81)" in blocked
