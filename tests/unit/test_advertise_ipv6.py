"""advertiseServiceSubnet with the IPv6 Service range (issue 15): a dual-stack cluster routes
its IPv6 Service range from the outside hosts (and the router) via one node's IPv6 address,
beside the IPv4 range, as Calico advertises serviceClusterIPs per family (plan/edges6.py
service_routes6); a single-stack IPv6 cluster routes its (IPv6) range as any range
(plan/service_routes.py), no longer refused."""

from __future__ import annotations

import dataclasses
import pathlib

from testbed.plan.build import plan_cluster
from testbed.plan.edges6 import describe, service_routes6
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

REPO = pathlib.Path(__file__).resolve().parents[2]


def _plan(topology: str, manifests: str):
    spec = load_topology(str(REPO / "topologies" / topology))
    return spec, plan_cluster(spec, load_manifests([str(REPO / "manifests" / manifests)]), seed=1)


def _routes6(plan):
    host6 = {n.name: n.host_ip for n in plan.dual.nodes}
    return service_routes6(plan, plan.dual.external_ips, plan.dual.lb_ingress, host6, plan.dual.racks)


def test_a_dual_stack_cluster_advertises_both_service_ranges():
    spec, plan = _plan("dual-stack-advertise.yaml", "dual-stack-services.yaml")
    assert spec.advertise_service_subnet and plan.routing == "bgp"
    four = [r for r in plan.service_routes if r.dst == "10.96.0.0/16"]
    six = [r for r in _routes6(plan) if r.dst == "fd00:10:96::/112"]
    assert [r.member for r in four] == [r.member for r in six] == ["laptop"]
    node = six[0].why.rsplit(" ", 1)[1]
    assert six[0].via == plan.dual.node(node).host_ip and six[0].line().startswith("route replace fd00:10:96::/112 via")
    assert any("route on laptop: fd00:10:96::/112 via" in line for line in describe(plan))
    # without advertiseServiceSubnet: no route to either range
    quiet = dataclasses.replace(plan, advertise_service_subnet=False)
    assert not [r for r in _routes6(quiet) if r.dst == "fd00:10:96::/112"]
    assert not [r for r in quiet.service_routes if r.dst == "10.96.0.0/16"]


def test_a_single_stack_ipv6_cluster_advertises_its_range(tmp_path):
    text = (REPO / "topologies" / "ipv6.yaml").read_text(encoding="utf-8")
    path = tmp_path / "ipv6-advertise.yaml"
    path.write_text(text.replace("externalHosts:", "advertiseServiceSubnet: true\nexternalHosts:"), encoding="utf-8")
    plan = plan_cluster(load_topology(str(path)), load_manifests([str(REPO / "manifests" / "ipv6-services.yaml")]))
    (route,) = [r for r in plan.service_routes if r.dst == "fd00:10:96::/112"]
    assert route.member == "laptop" and route.via.startswith("fd00:192:168:1::")
