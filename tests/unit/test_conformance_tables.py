"""Expected tables of conformance cases (conformance/check.py), checked by hand on the real plan
of the shipped model (conformance/data/xyz.yaml) on its 3-node topology; comparison, explanations,
transitions, desired manifests and the run summary."""

from __future__ import annotations

import functools

import pytest

from testbed.conformance.changes import step_manifests, transition
from testbed.conformance.check import check_step, compare, expected_table, explain, probes, step_world
from testbed.conformance.generator import generate_cases
from testbed.conformance.resources import MODEL, TOPOLOGY
from testbed.conformance.results import CaseResult, Mismatch, Summary, summary_lines
from testbed.conformance.steps import BASE
from testbed.conformance.xyz import NODE_CIDRS, PODS, model_node
from testbed.netpol import World
from testbed.plan.build import plan_cluster, replan
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

TOPO, XYZ = TOPOLOGY, MODEL
SERVICES = [(port, proto) for proto in ("TCP", "UDP", "SCTP") for port in (80, 81)]


@functools.cache
def live():
    cluster, manifests = load_topology(TOPO), load_manifests([XYZ])
    plan = plan_cluster(cluster, manifests, seed=0)
    return cluster, manifests, plan, World.from_plan(plan)


def world() -> World:
    return live()[3]


@functools.cache
def by_name():
    return {c.name: c for c in generate_cases()}


def case(prefix: str, suffix: str = ""):
    hits = [c for n, c in by_name().items() if n.startswith(prefix) and n.endswith(suffix)]
    assert len(hits) == 1, (prefix, suffix, [c.name for c in hits])
    return hits[0]


def allowed(table, dst: str, port: int = 80, proto: str = "TCP") -> set[str]:
    return {s for s in PODS if table[(s, dst, port, proto)]}


def blocked_pairs(table) -> set[tuple[str, str]]:
    """Pairs blocked on every port and protocol."""
    return {(s, d) for s in PODS for d in PODS if not any(table[(s, d, p, q)] for p, q in SERVICES)}


def test_the_plan_places_pods_as_the_model_says():
    for p in world().pods:
        if p.full_name in PODS:
            assert p.node == model_node(p.full_name)
            cidr = NODE_CIDRS[p.node].rsplit(".", 2)[0]
            assert p.ip.startswith(cidr + ".")


def test_probes_are_486_and_no_policy_allows_all():
    assert len(probes()) == len(set(probes())) == 486
    table = expected_table(BASE, world())
    assert set(table) == set(probes()) and all(table.values())


def test_deny_all_ingress_in_x_blocks_every_flow_into_x_but_self():
    table = expected_table(case("deny-ingress-x-all").steps[0], world())
    for (s, d, port, proto), ok in table.items():
        assert ok == (not d.startswith("x/") or s == d), (s, d, port, proto)
    assert sum(table.values()) == 486 - 3 * 8 * 6


def test_deny_egress_of_pod_a_in_y():
    table = expected_table(case("deny-egress-y-pod-a").steps[0], world())
    assert blocked_pairs(table) == {("y/a", d) for d in PODS if d != "y/a"}
    assert sum(table.values()) == 486 - 8 * 6


def test_and_in_one_peer_versus_or_in_two_peers():
    # x's pods accept ingress from {namespaces ns=y AND pods pod=b} vs {ns=y} OR {pod=b of x}
    and_t = expected_table(case("and-ingress-x-ns-y-pod-b").steps[0], world())
    or_t = expected_table(case("or-ingress-x-ns-y-pod-b").steps[0], world())
    for dst in ("x/a", "x/b", "x/c"):
        assert allowed(and_t, dst) == {"y/b", dst}
        assert allowed(or_t, dst) == {"y/a", "y/b", "y/c", "x/b", dst}
    assert allowed(and_t, "z/a") == set(PODS)


def test_ip_block_with_except_uses_the_planned_addresses():
    # x accepts from 10.244.0.0/16 except kind-worker's 10.244.1.0/24 (x/b, y/a, z/c live there)
    table = expected_table(by_name()["ipblock-ingress-x-all-but-node1-all"].steps[0], world())
    for dst in ("x/a", "x/b", "x/c"):
        assert allowed(table, dst, 81, "SCTP") == {"x/a", "x/c", "y/b", "y/c", "z/a", "z/b", dst}
    # egress of x's pods without a tier (x/c) only to the underlay, which holds no pod
    table = expected_table(by_name()["ipblock-egress-x-underlay-no-tier"].steps[0], world())
    assert blocked_pairs(table) == {("x/c", d) for d in PODS if d != "x/c"}


def test_ports_endport_range_and_named_port_with_the_wrong_protocol():
    table = expected_table(by_name()["ports-ingress-x-range-81-90-udp"].steps[0], world())
    for (s, d, port, proto), ok in table.items():
        if d.startswith("x/") and s != d:
            assert ok == ((port, proto) == (81, "UDP")), (s, d, port, proto)
        else:
            assert ok
    table = expected_table(by_name()["ports-ingress-y-name-wrong-proto"].steps[0], world())
    assert blocked_pairs(table) == {(s, d) for s in PODS for d in PODS if d.startswith("y/") and s != d}
    table = expected_table(by_name()["ports-ingress-y-name-81-tcp"].steps[0], world())
    assert {(p, q) for p, q in SERVICES if table[("z/c", "y/a", p, q)]} == {(81, "TCP")}
    table = expected_table(by_name()["ports-ingress-y-range-1-80-sctp"].steps[0], world())
    assert {(p, q) for p, q in SERVICES if table[("x/a", "y/b", p, q)]} == {(80, "SCTP")}


def test_relabel_a_pod_between_steps():
    c = by_name()["relabel-pod-peer-gains-role"]  # x/a accepts role=admin pods; y/b gains then loses it
    tables = [expected_table(s, world()) for s in c.steps]
    assert allowed(tables[0], "x/a", 81, "UDP") == {"x/a"}
    assert allowed(tables[1], "x/a", 81, "UDP") == {"x/a", "y/b"}
    assert tables[2] == tables[0]


def test_relabel_a_namespace_between_steps():
    c = by_name()["relabel-ns-peer-gains-team"]  # x accepts from team=blue; z joins, then y leaves
    t0, t1, t2 = (expected_table(s, world()) for s in c.steps)
    assert allowed(t0, "x/c") == {"y/a", "y/b", "y/c", "x/c"}
    assert allowed(t1, "x/c") == {"y/a", "y/b", "y/c", "z/a", "z/b", "z/c", "x/c"}
    assert allowed(t2, "x/c") == {"z/a", "z/b", "z/c", "x/c"}


def test_update_and_delete_between_steps():
    c = by_name()["update-direction"]  # y: deny ingress, then egress, then both
    t = [expected_table(s, world()) for s in c.steps]
    assert allowed(t[0], "y/a") == {"y/a"} and allowed(t[1], "y/a") == {"x/a", "x/b", "x/c", "z/a", "z/b", "z/c", "y/a"}
    assert not t[1][("y/b", "x/a", 80, "TCP")] and not t[2][("x/a", "y/b", 80, "TCP")]
    c = by_name()["delete-deny-of-two"]  # z: deny + allow from z's pods; delete the deny: still isolated
    t0, t1 = (expected_table(s, world()) for s in c.steps)
    assert t0 == t1 and allowed(t1, "z/a") == {"z/a", "z/b", "z/c"}


def test_every_step_of_every_case_has_a_full_table():
    w = world()
    for c in list(by_name().values())[::7]:
        for s in c.steps:
            assert len(expected_table(s, w)) == 486


def test_step_world_applies_labels_and_is_idempotent():
    c = by_name()["relabel-ns-peer-gains-team"]
    w1 = step_world(c.steps[1], world())
    assert w1.namespace_labels("z")["team"] == "blue" and w1.namespace_labels("z")["kubernetes.io/metadata.name"] == "z"
    assert step_world(c.steps[1], w1) == w1
    assert step_world(BASE, w1).namespace_labels("z") == world().namespace_labels("z")


def test_compare_lists_every_difference_and_missing_probes():
    expected = expected_table(case("deny-ingress-x-all").steps[0], world())
    assert compare(expected, expected) == []
    observed = dict(expected)
    observed[("y/a", "x/b", 80, "TCP")] = True  # leaked
    observed[("x/a", "y/a", 81, "SCTP")] = False  # over-blocked
    del observed[("z/c", "z/b", 80, "UDP")]  # not measured
    bad = compare(expected, observed)
    assert [(m.probe, m.expected, m.observed) for m in bad] == [
        (("x/a", "y/a", 81, "SCTP"), True, False),
        (("y/a", "x/b", 80, "TCP"), False, True),
        (("z/c", "z/b", 80, "UDP"), True, None),
    ]
    assert bad[1].describe() == "y/a -> x/b TCP/80: expected blocked, observed allowed"
    assert bad[2].describe().endswith("observed not measured")


def test_check_step_explains_each_mismatch_with_the_oracle():
    c = case("deny-ingress-x-all")
    expected = expected_table(c.steps[0], world())
    observed = {**expected, ("y/a", "x/b", 80, "TCP"): True}
    result = check_step(c, 0, world(), observed, seconds=0.25)
    assert not result.passed and result.probes == 486 and result.allowed == 342 and result.seconds == 0.25
    (m,) = result.mismatches
    assert "verdict: BLOCKED at ingress of the destination (x/deny-ingress-x-all)" in m.explanation
    assert "the policy has no ingress rules" in m.explanation
    assert (
        explain([Mismatch("x/a", "x/a", 80, "TCP", True, False)], c.steps[0], world())[0].explanation.count(
            "cannot block access to itself"
        )
        == 1
    )


def test_transition_between_steps_and_back_to_the_model():
    c = by_name()["sequence-admins"]
    steps = c.steps
    t = transition(None, steps[0])
    assert [p.full_name for p in t.apply] == ["x/deny-in"] and not t.delete and t.texts[0].startswith("apiVersion")
    t = transition(steps[1], steps[2])
    assert t.pod_labels == {"z/c": {"role": "admin"}} and not t.apply and not t.namespace_labels
    t = transition(steps[2], steps[3])
    assert t.namespace_labels == {"z": {"team": "red"}} and [p.full_name for p in t.apply] == ["x/from-admins"]
    t = transition(steps[3], steps[4])
    assert t.delete == (("x", "deny-in"),) and not t.apply
    back = transition(steps[-1], BASE)
    assert back.delete == (("x", "from-admins"),)
    assert back.pod_labels == {"z/c": {"role": None}} and back.namespace_labels == {"z": {"team": None}}
    assert "kubectl label pod -n z c role- --overwrite" in back.describe()
    assert "kubectl delete networkpolicy -n x from-admins" in back.describe()
    assert not transition(steps[0], steps[0])


def test_step_manifests_replan_keeps_pods_and_follows_labels():
    cluster, base, plan, _ = live()
    c = by_name()["sequence-admins"]
    step = c.steps[3]
    m = step_manifests(base, step)
    assert [p.full_name for p in m.policies] == list(step.policy_names())
    new = replan(cluster, m, plan.seed, prev=plan)
    assert {(p.key, p.ip) for p in new.pods} == {(p.key, p.ip) for p in plan.pods}
    w = World.from_plan(new)
    assert dict(w.pod("z/c").labels) == {"pod": "c", "role": "admin"}
    assert w.namespace_labels("z")["team"] == "red"
    assert expected_table(step, w) == expected_table(step, world())
    assert step_manifests(base, BASE).policies == () and step_manifests(base, BASE).pods == base.pods


def test_summary_counts_and_tags():
    cs = [by_name()["deny-ingress-x-all"], by_name()["relabel-pod-peer-gains-role"], by_name()["update-target"]]
    w = world()
    ok = CaseResult(cs[0], (check_step(cs[0], 0, w, expected_table(cs[0].steps[0], w)),), 1.0)
    steps = []
    for i, s in enumerate(cs[1].steps):
        table = expected_table(s, w)
        if i == 1:
            table[("y/b", "x/a", 80, "TCP")] = False
        steps.append(check_step(cs[1], i, w, table))
    bad = CaseResult(cs[1], tuple(steps), 2.0)
    err = CaseResult(cs[2], (), 0.5, error="the cluster went away")
    summary = Summary(seed=3)
    for r in (ok, bad, err):
        summary.add(r)
    assert summary.counts() == {
        "cases": 3,
        "passed": 1,
        "failed": 1,
        "error": 1,
        "skipped": 0,
        "steps": 4,
        "probes": 4 * 486,
        "mismatches": 1,
    }
    assert summary.by_tag()["relabel-pod"] == {"cases": 1, "passed": 0, "failed": 1, "error": 0, "skipped": 0}
    assert not summary.passed
    lines = summary_lines(summary)
    assert lines[0].startswith("3 cases, 4 steps, 1944 probes: 1 passed, 1 failed, 1 errors")
    assert "y/b -> x/a TCP/80: expected allowed, observed blocked" in "\n".join(lines)


@pytest.mark.parametrize("seed", [0, 1])
def test_random_cases_of_other_seeds_have_full_tables(seed):
    w = world()
    steps = [s for c in generate_cases(seed) if c.family.startswith("random") for s in c.steps]
    assert len(steps) >= 80
    assert all(len(expected_table(s, w)) == 486 for s in steps)
