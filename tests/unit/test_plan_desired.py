"""The Plan as the one desired state (plan/model.py): what emu/'s controllers read instead of
manifests — the policy world, the ingress configuration, DNS, LoadBalancer assignments and the
compiled rulesets per node — and that `testbed plan -o json` stays as it was without them.
"""

from __future__ import annotations

import json
import os

from testbed.kubeproxy import build_ruleset
from testbed.netpol import compile_cluster
from testbed.plan.build import plan_cluster, replan
from testbed.plan.loadbalancers import load_balancer_nodes
from testbed.plan.model import NOT_IN_JSON
from testbed.rules.egress import egress_nft
from testbed.rules.render_nft import render_block
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _plan(topology: str, *manifests: str, seed: int = 0):
    spec = load_topology(os.path.join(ROOT, "topologies", topology))
    m = load_manifests([os.path.join(ROOT, "manifests", f) for f in manifests])
    return spec, m, plan_cluster(spec, m, seed=seed)


def test_the_policy_world_is_planned_from_the_manifests_and_its_pods_are_the_plans():
    _, m, plan = _plan("three-nodes.yaml", "seed003-nginx.yaml", "seed003-access-nginx.yaml")
    assert [(p.namespace, p.name) for p in plan.policies] == [(p.namespace, p.name) for p in m.policies]
    assert plan.namespaces == {n.name: dict(n.labels) for n in m.namespaces}
    assert plan.world.pods is plan.pods  # one pod type: the policy world holds the PodPlans
    assert plan.world.pod("busybox") is plan.find_pod("busybox")
    assert plan.find_pod("no-such-pod") is None and plan.world.find_pod("no-such-pod") is None


def test_the_json_plan_leaves_the_desired_state_extras_out():
    _, _, plan = _plan("three-nodes.yaml", "ingress-demo.yaml", "seed003-access-nginx.yaml")
    assert plan.policies and plan.ingress is not None
    out = plan.to_dict()
    assert not set(NOT_IN_JSON) & set(out) and "network" not in out
    assert json.loads(json.dumps(out)) == out


def test_the_ingress_configuration_and_its_certificates_are_planned():
    _, _, plan = _plan("three-nodes.yaml", "ingress-demo.yaml")
    assert plan.ingress is not None and any(p.served_by == "nginx" for p in plan.pods)
    text = plan.ingress.nginx_conf("/run/x")
    assert "pid /run/x/nginx.pid;" in text and "/run/x/" + next(iter(plan.ingress.certificates)) + ".crt" in text
    _, _, without = _plan("three-nodes.yaml", "seed003-nginx.yaml")
    assert without.ingress is None


def test_compiled_rulesets_are_kube_proxys_the_policy_tables_and_egress():
    _, _, plan = _plan("three-nodes.yaml", "seed003-nginx.yaml", "seed003-access-nginx.yaml")
    assert plan.services is not None
    for n in plan.nodes:
        assert plan.kube_proxy_rulesets[n.name] == build_ruleset(
            plan.services, n.name, n.host_ip, plan.pod_subnet, plan.kube_proxy_mode
        )
    assert plan.policy_rulesets == compile_cluster(plan.world)
    merged = plan.rulesets[plan.nodes[1].name]
    assert [t.name for t in merged.tables] == [
        t.name for r in (plan.kube_proxy_rulesets, plan.policy_rulesets) for t in r[plan.nodes[1].name].tables
    ]
    assert plan.egress_tables == {}
    _, _, outside = _plan("egress.yaml", "egress-policies.yaml")
    table = outside.egress_tables[outside.nodes[0].name]
    assert render_block(table, indent="  ", create="table {ref} {{}}") == egress_nft(
        outside.pod_subnet, outside.outside_subnets
    )


def test_every_load_balancer_address_has_an_eligible_node_that_keeps_it_across_a_replan():
    spec, m, plan = _plan("three-nodes.yaml", "services-demo.yaml")
    assert plan.services is not None
    ips = {ip for s in plan.services.services for ip in s.load_balancer_ingress}
    assert ips and set(plan.lb_announcers) == ips
    assert set(plan.lb_announcers.values()) <= set(load_balancer_nodes(plan.nodes))
    assert replan(spec, m, 0, prev=plan).lb_announcers == plan.lb_announcers


def test_dns_records_name_every_service_and_pod():
    _, _, plan = _plan("three-nodes.yaml", "seed003-nginx.yaml")
    a, _ = plan.dns_records
    assert plan.dns_server and ("kube-dns.kube-system.svc.cluster.local", plan.dns_server) in a
    assert all((f"{p.ip.replace('.', '-')}.{p.namespace}.pod.cluster.local", p.ip) in a for p in plan.pods)
