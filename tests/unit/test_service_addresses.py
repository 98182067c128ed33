"""Service addresses from outside (issue 19 item 5): the emulated cloud's routes to externalIPs
and to an advertised Service range (plan/service_routes.py), several LoadBalancer ingress
addresses (MetalLB's loadBalancerIPs annotation), kube-proxy's rules for them in both modes,
and probes `via: externalIP`."""

from __future__ import annotations

import pytest

from testbed.experiment.expand import expand
from testbed.experiment.model import Endpoints, ProbeGroup, ServiceTarget
from testbed.kubeproxy import Packet, build_ruleset, trace
from testbed.plan.build import plan_cluster, replan
from testbed.plan.service_routes import next_hops
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from ._services import REPO

EXTERNAL_IP = "198.51.100.7"


def app(external_policy: str = "Cluster", lb_ips: str = "192.168.1.210,192.168.1.211", replicas: int = 2) -> str:
    """manifests/service-addresses.yaml, varied."""
    text = (REPO / "manifests" / "service-addresses.yaml").read_text()
    return (
        text.replace("externalTrafficPolicy: Cluster", f"externalTrafficPolicy: {external_policy}")
        .replace("192.168.1.210,192.168.1.211", lb_ips)
        .replace("replicas: 2", f"replicas: {replicas}")
    )


def topology(routing: str = "", advertise: bool = True, racks: bool = False) -> str:
    underlay = (
        "underlay: {subnets: [{name: a, cidr: 192.168.1.0/24}, {name: b, cidr: 192.168.2.0/24}]}\n"
        "nodes: [{name: kind-worker, rack: b}]\n"
        "externalHosts: [{name: laptop, ip: 192.168.1.10, rack: a}]\n"
        if racks
        else "underlay: {subnet: 192.168.1.0/24}\nexternalHosts: [{name: laptop, ip: 192.168.1.10}]\n"
    )
    return (
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes: [{role: control-plane}, {role: worker}]\n"
        "---\napiVersion: testbed/v1alpha1\nkind: TestbedConfig\n"
        + (f"routing: {routing}\n" if routing else "")
        + f"advertiseServiceSubnet: {str(advertise).lower()}\n"
        + underlay
    )


def plan_of(tmp_path, topo: str, manifests: str):
    (tmp_path / "t.yaml").write_text(topo)
    (tmp_path / "a.yaml").write_text(manifests)
    spec, m = load_topology(str(tmp_path / "t.yaml")), load_manifests([str(tmp_path / "a.yaml")])
    return spec, m, plan_cluster(spec, m, seed=1)


def test_external_ips_and_the_service_range_are_routed_to_a_load_balancer_node(tmp_path):
    _, _, plan = plan_of(tmp_path, topology(), app())
    worker = plan.node("kind-worker")
    assert next_hops(plan) == {f"{EXTERNAL_IP}/32": "kind-worker", plan.service_subnet: "kind-worker"}
    lines = sorted((r.member, r.line()) for r in plan.service_routes)
    assert lines == sorted(
        [
            ("laptop", f"route replace {EXTERNAL_IP}/32 via {worker.host_ip} dev eth0"),
            ("laptop", f"route replace {plan.service_subnet} via {worker.host_ip} dev eth0"),
        ]
    )


def test_nothing_is_advertised_unless_the_topology_says_so(tmp_path):
    _, _, plan = plan_of(tmp_path, topology(advertise=False), app())
    assert set(next_hops(plan)) == {f"{EXTERNAL_IP}/32"}
    assert plan.advertise_service_subnet is False and "advertise_service_subnet" not in plan.to_dict()


def test_local_policy_without_ready_endpoints_is_routed_nowhere(tmp_path):
    _, _, plan = plan_of(tmp_path, topology(advertise=False), app("Local", replicas=0))
    assert next_hops(plan) == {}


def test_across_racks_hosts_route_via_their_router_and_the_router_via_the_node(tmp_path):
    _, _, plan = plan_of(tmp_path, topology(routing="cloud-routes", advertise=False, racks=True), app())
    worker = plan.node("kind-worker")
    routes = {(r.member, r.dst): (r.via, r.dev) for r in plan.service_routes}
    assert routes[("laptop", f"{EXTERNAL_IP}/32")] == ("192.168.1.1", "eth0")
    assert routes[("router", f"{EXTERNAL_IP}/32")] == (worker.host_ip, "eth1")


def test_several_load_balancer_addresses_from_the_annotation_and_their_rules(tmp_path):
    spec, m, plan = plan_of(tmp_path, topology(), app())
    lb = plan.services.service("default", "echo-lb")
    assert lb.load_balancer_ingress == ("192.168.1.210", "192.168.1.211")
    assert replan(spec, m, 1, prev=plan).services.service("default", "echo-lb").load_balancer_ingress == (
        lb.load_balancer_ingress
    )
    assert set(plan.lb_announcers) == set(lb.load_balancer_ingress)
    node = plan.node("kind-worker")
    for mode in ("iptables", "nftables"):
        rs = build_ruleset(plan.services, node.name, node.host_ip, plan.pod_subnet, mode)
        for ip in (*lb.load_balancer_ingress, EXTERNAL_IP):
            t = trace(rs, Packet("192.168.1.10", ip, 80, "TCP", "underlay"), pod_cidr=node.pod_cidr)
            assert t.endpoints() and t.masqueraded is True, (mode, ip)


def test_an_annotation_address_outside_the_pool_leaves_the_service_pending(tmp_path):
    _, _, plan = plan_of(tmp_path, topology(), app(lb_ips="192.168.1.210,10.1.2.3"))
    assert plan.services.service("default", "echo-lb").load_balancer_ingress == ()
    assert any("loadBalancerIPs 10.1.2.3 is not in the pool" in w for w in plan.services.warnings + plan.warnings)


def test_probes_via_external_ip(tmp_path):
    _, _, plan = plan_of(tmp_path, topology(), app())
    group = ProbeGroup(
        "x", Endpoints(hosts=("laptop",)), Endpoints(service=ServiceTarget("echo", via="externalIP")), repeat=1
    )
    probes = expand(plan, group)
    assert [(p.dst_ip, p.port) for p in probes] == [(EXTERNAL_IP, 80)]


@pytest.mark.parametrize("value", ["yes please", "[true]"])
def test_advertise_service_subnet_must_be_a_boolean(tmp_path, value):
    from testbed.errors import SpecError

    (tmp_path / "t.yaml").write_text(
        topology().replace("advertiseServiceSubnet: true", f"advertiseServiceSubnet: {value}")
    )
    with pytest.raises(SpecError) as exc:
        load_topology(str(tmp_path / "t.yaml"))
    assert len(exc.value.problems) == 1 and "advertiseServiceSubnet" in str(exc.value.problems[0])
