"""Scenario 003 ("Déclarer une politique réseau"), reproduced by the oracle and the compiler.

manifests/seed003-nginx.yaml: the nginx Deployment (app=nginx, port 80), its Service and a
busybox pod; manifests/seed003-access-nginx.yaml: the access-nginx policy (pods app=nginx take
ingress only from pods labelled access=true). Before the policy busybox reaches nginx; after
it, busybox times out; labelled access=true (or a new pod run with that label) it gets in.
"""

from __future__ import annotations

import functools

import pytest

from testbed.netpol import (
    Flow,
    World,
    compile_cluster,
    decide,
    explain_flow,
    explain_pod,
    node_script,
    reconcile,
    render_trace,
    trace_flow,
)
from testbed.netpol.oracle import ALLOWED, NO_RULE, NOT_ISOLATED
from testbed.plan.build import plan_cluster
from testbed.plan.model import PodPlan
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from ._golden import check_golden
from ._netpol import REPO, load_without_services, pod_info

NGINX = REPO / "manifests" / "seed003-nginx.yaml"
POLICY = REPO / "manifests" / "seed003-access-nginx.yaml"


@functools.cache
def _planned(paths: tuple[str, ...]) -> World:
    m = load_manifests(list(paths))
    plan = plan_cluster(load_topology(str(REPO / "topologies" / "three-nodes.yaml")), m, 1)
    return World.from_plan(plan)


@pytest.fixture
def scenario003(tmp_path):
    def world(with_policy: bool = True) -> World:
        return _planned(tuple(load_without_services([NGINX] + ([POLICY] if with_policy else []), tmp_path)))

    return world


def nginx_of(world: World) -> PodPlan:
    (pod,) = [p for p in world.pods if p.labels.get("app") == "nginx"]
    return pod


def test_the_manifests_describe_the_scenario(scenario003):
    w = scenario003()
    nginx = nginx_of(w)
    assert nginx.name.startswith("nginx-") and nginx.namespace == "default"
    assert [(q.name, q.port, q.protocol) for q in nginx.ports] == [("http", 80, "TCP")]
    assert w.pod("default/busybox").labels == {"run": "busybox"}
    (policy,) = w.policies
    assert policy.full_name == "default/access-nginx" and policy.types == ("Ingress",)


def test_busybox_reaches_nginx_until_the_policy_is_applied(scenario003):
    before, after = scenario003(with_policy=False), scenario003()
    nginx = nginx_of(after).full_name
    flow = Flow("default/busybox", nginx, 80, "TCP")
    v = decide(flow, before)
    assert v.allowed and v.ingress.reason == NOT_ISOLATED
    v = decide(flow, after)
    assert not v.allowed and v.ingress.reason == NO_RULE and v.ingress.selecting == ("default/access-nginx",)
    assert v.egress.allowed  # busybox itself is not restricted


def test_access_true_lets_busybox_in(scenario003):
    w = scenario003()
    nginx = nginx_of(w)
    relabelled = w.with_pod_labels("default/busybox", {"run": "busybox", "access": "true"})
    v = decide(Flow("default/busybox", nginx.full_name, 80), relabelled)
    assert v.allowed and v.ingress.reason == ALLOWED
    assert v.ingress.allows[0].path == "spec.ingress[0].from[0]"
    # `kubectl run busybox --labels=access=true`: a new pod, on some node, with that label
    other = pod_info("default", "busybox-access", "10.244.1.77", "kind-worker", {"access": "true"})
    assert decide(Flow("default/busybox-access", nginx.full_name, 80), w.with_pods(w.pods + (other,))).allowed
    # the policy selects pods, not namespaces: access=true in another namespace does not count
    elsewhere = pod_info("kube-system", "tool", "10.244.1.78", "kind-worker", {"access": "true"})
    assert not decide(Flow("kube-system/tool", nginx.full_name, 80), w.with_pods(w.pods + (elsewhere,))).allowed


def test_nodes_and_the_laptop(scenario003):
    w = scenario003()
    nginx = nginx_of(w)
    assert decide(Flow(nginx.node, nginx.full_name, 80), w).allowed  # kubelet's own node
    assert not decide(Flow("laptop", nginx.full_name, 80), w).allowed
    other = next(n for n in w.node_names() if n != nginx.node)
    assert not decide(Flow(other, nginx.full_name, 80), w).allowed


def test_applying_then_relabelling_is_a_reload_then_set_updates(scenario003):
    before, after = scenario003(with_policy=False), scenario003()
    applied = reconcile(before, after)
    assert {c.action for c in applied.values()} == {"load"}
    busybox = after.pod("default/busybox")
    relabelled = after.with_pod_labels("default/busybox", {"run": "busybox", "access": "true"})
    changes = reconcile(after, relabelled)
    assert {c.action for c in changes.values()} == {"update"}
    for change in changes.values():
        assert change.script.splitlines()[1:] == [f"add element inet testbed-netpol p0-in0-peer0 {{ {busybox.ip} }}"]


def test_scenario003_rules_and_explanations_match_golden(scenario003):
    w = scenario003()
    nginx = nginx_of(w)
    rulesets = compile_cluster(w)
    flow = Flow("default/busybox", nginx.full_name, 80, "TCP")
    relabelled = w.with_pod_labels("default/busybox", {"run": "busybox", "access": "true"})
    text = "\n".join(
        [
            "$ testbed explain busybox " + nginx.name + " 80/TCP   # after kubectl apply -f seed003-access-nginx.yaml",
            explain_flow(decide(flow, w)),
            "$ testbed explain busybox " + nginx.name + " 80/TCP   # after kubectl label pod busybox access=true",
            explain_flow(decide(flow, relabelled)),
            "$ testbed explain pod " + nginx.name,
            explain_pod(w, nginx.full_name),
            "$ testbed trace busybox " + nginx.name + " 80/TCP",
            render_trace(trace_flow(w, rulesets, flow)),
        ]
    )
    check_golden("netpol/scenario003-explain.txt", text)
    check_golden("netpol/scenario003-nginx-node.nft", node_script(w, nginx.node))
