"""The ingress controller over IPv6 (issue 15): nginx listens on [::] as well in ipv6 and dual
clusters (ingress/nginx.py), proxies to IPv6 endpoints (an ipv6 cluster's, a dual-stack
backend's: plan/ingress6.py, as ingress-nginx reads every EndpointSlice), its Service is
PreferDualStack in a dual-stack cluster, and the oracle knows which pod an IPv6 upstream is."""

from __future__ import annotations

import pathlib

from testbed.experiment.expand import expand
from testbed.experiment.load import load_experiment
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

REPO = pathlib.Path(__file__).resolve().parents[2]


def _plan(topology: str, *manifests: str):
    paths = [str(REPO / "manifests" / m) for m in manifests]
    return plan_cluster(load_topology(str(REPO / "topologies" / topology)), load_manifests(paths), seed=1)


def _listens(plan) -> list[str]:
    assert plan.ingress is not None
    return sorted({line.strip() for line in plan.ingress.nginx_conf("/run/x").splitlines() if "listen" in line})


def test_an_ipv4_cluster_keeps_its_ipv4_listeners_only():
    plan = _plan("three-nodes.yaml", "ingress-demo.yaml")
    assert not plan.ingress.ipv6
    assert not any("[::]" in line for line in _listens(plan))
    svc = plan.services.service("ingress-nginx", "ingress-nginx-controller")
    assert svc.type == "LoadBalancer"


def test_a_single_stack_ipv6_cluster_serves_the_ingress_over_ipv6_to_ipv6_endpoints():
    plan = _plan("ipv6.yaml", "ingress-demo.yaml")  # refused before: now built
    assert "listen [::]:80 default_server;" in _listens(plan)
    assert "listen [::]:443 ssl default_server;" in _listens(plan)
    ups = [e for u in plan.ingress.config.upstreams for e in u.endpoints]
    assert ups and all(e.startswith("[fd00:10:244:") for e in ups)
    assert all(f"server {e} max_fails=0;" in plan.ingress.nginx_conf("/x") for e in ups)
    lb = plan.services.service("ingress-nginx", "ingress-nginx-controller").load_balancer_ingress
    assert lb and ":" in lb[0]


def test_a_dual_stack_backend_is_proxied_in_both_families():
    plan = _plan("dual-stack.yaml", "ingress-demo.yaml", "dual-stack-services.yaml", "dual-stack/ingress.yaml")
    assert plan.dual is not None and plan.ingress.ipv6
    ups = {u.name: u.endpoints for u in plan.ingress.config.upstreams}
    echo = ups["default-echo-prefer-http"]  # PreferDualStack: its IPv4 and IPv6 slices
    assert len([e for e in echo if e.startswith("[")]) == 3 and len([e for e in echo if not e.startswith("[")]) == 3
    assert not any(e.startswith("[") for e in ups["default-coffee-80"])  # SingleStack: IPv4 only
    # the controller's Service has an IPv6 ClusterIP and LoadBalancer address in a dual-stack cluster
    assert plan.dual.services["ingress-nginx/ingress-nginx-controller"].families == ("IPv4", "IPv6")
    assert plan.dual.lb_ingress["ingress-nginx/ingress-nginx-controller"]


def test_the_oracle_names_the_pods_behind_ipv6_upstreams():
    exp = load_experiment(str(REPO / "experiments" / "dual-stack-http.yaml"))
    plan = plan_cluster(load_topology(exp.topology), load_manifests(list(exp.manifests)), seed=exp.seed)
    group = next(g for s in exp.steps for g in s.probes if g.name == "dual-backend-v6")
    ingresses = load_manifests(list(exp.manifests)).ingresses
    probes = expand(plan, group, ingresses=ingresses)
    echo = {f"{p.namespace}/{p.name}" for p in plan.pods if p.name.startswith("echo-")}
    assert probes and all(p.expect_outcome == "connected" and set(p.expect_answer) == echo for p in probes)
    assert all(":" in p.dst_ip for p in probes)
