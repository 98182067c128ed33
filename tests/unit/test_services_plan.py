"""Service planning (plan/services.py): allocation and EndpointSlices, deterministic from a seed."""

from __future__ import annotations

import dataclasses
import ipaddress
import json

import pytest

from testbed.errors import SpecError
from testbed.plan.build import plan_cluster
from testbed.plan.model import PodPlan, PortPlan
from testbed.plan.services import (
    MAX_ENDPOINTS_PER_SLICE,
    cluster_ip_static_band,
    compute_slices,
    kube_dns_ip,
    node_port_static_band,
    parse_lb_pool,
    plan_services,
    update_endpoints,
)
from testbed.spec.model import Manifests, ObjectRef
from testbed.spec.services import ServicePort, ServiceSpec

from ._golden import check_golden
from ._services import POOL, REPO, pod_ip, world

TOPOLOGY = """
    kind: Cluster
    apiVersion: kind.x-k8s.io/v1alpha4
    nodes: [{role: control-plane}, {role: worker}, {role: worker}]
    networking: {serviceSubnet: %s}
    ---
    apiVersion: testbed/v1alpha1
    kind: TestbedConfig
    externalHosts: [{name: laptop, ip: 192.168.1.10}]
"""


def _svc(
    name: str,
    *,
    type: str = "ClusterIP",
    ports=(ServicePort("", 80, "TCP", 80),),
    cluster_ip: str = "",
    selector=None,
    namespace: str = "default",
    **kw,
) -> ServiceSpec:
    return ServiceSpec(
        ref=ObjectRef("test.yaml", "Service", namespace, name),
        type=type,
        ports=tuple(ports),
        cluster_ip=cluster_ip,
        selector=selector or {},
        **kw,
    )


def _plan(cluster, *services: ServiceSpec, pods=(), seed: int = 1, lb_pool=None, **kw):
    return plan_services(cluster, Manifests(services=tuple(services)), list(pods), seed, lb_pool, **kw)


@pytest.fixture
def cluster16(topology):
    return topology(TOPOLOGY % "10.96.0.0/16")


# -- the fixture, as a whole ---------------------------------------------------------------------


def test_services_plan_matches_golden():
    _, _, _, plan = world()
    check_golden("kubeproxy/services-plan.json", json.dumps(plan.to_dict(), indent=2, sort_keys=True) + "\n")


def test_same_seed_same_plan_other_seed_other_dynamic_addresses():
    a, b, c = world(1)[3], world(1)[3], world(2)[3]
    assert a == b
    dyn = lambda p: {s.key: s.cluster_ip for s in p.services if s.proxied and s.name != "kubernetes"}  # noqa: E731
    assert dyn(a) != dyn(c)
    assert a.service("default", "kubernetes").cluster_ip == c.service("default", "kubernetes").cluster_ip == "10.96.0.1"
    assert (
        a.service("default", "web-nodeport").port("").node_port
        == 30080
        == c.service("default", "web-nodeport").port("").node_port
    )


def test_fixture_allocations():
    _, _, _, plan = world()
    by = {s.name: s for s in plan.services}
    assert by["kubernetes"].builtin and by["kubernetes"].cluster_ip == "10.96.0.1"
    assert by["web-headless"].cluster_ip == "None" and not by["web-headless"].proxied
    assert by["db"].cluster_ip == "" and by["db"].external_ip_column() == "db.example.com"
    lb = by["web-lb"]
    assert lb.load_balancer_ingress == ("192.168.1.200",) and lb.external_ip_column() == "192.168.1.200"
    assert lb.health_check_node_port is not None and lb.ports[0].node_port is not None
    assert by["web-nodeport"].ports_column() == "8080:30080/TCP"
    assert by["web"].external_ip_column() == "<none>" and by["web"].ports_column() == "80/TCP"
    net = ipaddress.ip_network("10.96.0.0/16")
    for s in plan.services:
        if s.proxied and not s.builtin:
            ip = ipaddress.ip_address(s.cluster_ip)
            assert ip in net and int(ip) - int(net.network_address) > 256, "dynamic ClusterIPs avoid the static band"
    assert plan.warnings == ()


def test_scenario002_nodeport_example_plans_as_written(topology):
    from testbed.spec.workloads import load_manifests

    cluster = topology(TOPOLOGY % "10.96.0.0/12")
    m = load_manifests([str(REPO / "manifests" / "seed002-nodeport.yaml")])
    pods = [p for p in plan_cluster(cluster, m, 1).pods if p.namespace == "default"]
    plan = plan_services(cluster, m, pods, 1, None)
    svc = plan.service("default", "myapp-service")
    assert svc.ports_column() == "80:30008/TCP"
    (ep,) = plan.endpoints("default", "myapp-service")
    (pod,) = pods
    assert (ep.ip, ep.port, ep.node) == (pod.ip, 80, pod.node)


# -- ClusterIPs ----------------------------------------------------------------------------------


def test_static_bands_as_upstream():
    assert cluster_ip_static_band(2**16) == 256 and cluster_ip_static_band(2**8) == 16
    assert cluster_ip_static_band(16) == 0 and cluster_ip_static_band(1024) == 64
    assert node_port_static_band(32767 - 30000 + 1) == 86


def test_a_full_small_subnet_never_hands_out_network_kubernetes_or_kube_dns(topology):
    cluster = topology(TOPOLOGY % "10.96.0.0/28")  # .1-.14 usable; .1 kubernetes; .10 kept for kube-dns
    services = [_svc(f"s{i:02d}") for i in range(12)]
    plan = _plan(cluster, *services)
    ips = {s.cluster_ip for s in plan.services if not s.builtin}
    assert len(ips) == 12
    assert not ips & {"10.96.0.0", "10.96.0.1", "10.96.0.10", "10.96.0.15"}
    with pytest.raises(SpecError, match="serviceSubnet 10.96.0.0/28 is full"):
        _plan(cluster, *services, _svc("s12"))


def test_kube_dns_takes_the_tenth_address_explicitly(cluster16):
    assert kube_dns_ip(cluster16) == "10.96.0.10"
    plan = _plan(cluster16, _svc("kube-dns", namespace="kube-system", cluster_ip="10.96.0.10"))
    assert plan.service("kube-system", "kube-dns").cluster_ip == "10.96.0.10"


def test_explicit_cluster_ips_are_checked(cluster16):
    with pytest.raises(SpecError) as info:
        _plan(
            cluster16,
            _svc("a", cluster_ip="10.97.0.1"),
            _svc("b", cluster_ip="10.96.5.5"),
            _svc("c", cluster_ip="10.96.5.5"),
            _svc("d", cluster_ip="10.96.0.1"),
            _svc("e", cluster_ip="10.96.0.0"),
        )
    got = [(p.document, p.path, p.message) for p in info.value.problems]
    assert got == [
        (
            "Service default/a",
            "spec.clusterIP",
            "10.97.0.1 is not in serviceSubnet 10.96.0.0/16 (the valid IPs are 10.96.0.0/16)",
        ),
        ("Service default/c", "spec.clusterIP", "10.96.5.5 is already allocated to Service default/b"),
        ("Service default/d", "spec.clusterIP", "10.96.0.1 is already allocated to Service default/kubernetes"),
        ("Service default/e", "spec.clusterIP", "10.96.0.0 is the network address of serviceSubnet 10.96.0.0/16"),
    ]
    assert all(p.file == "test.yaml" for p in info.value.problems)


def test_a_user_cannot_define_default_kubernetes(cluster16):
    with pytest.raises(SpecError, match="default/kubernetes is the API server's own Service"):
        _plan(cluster16, _svc("kubernetes"))
    plan = _plan(cluster16, _svc("kubernetes", cluster_ip="10.96.0.1"), include_kubernetes=False)
    assert not plan.service("default", "kubernetes").builtin


def test_kubernetes_service_points_at_the_control_plane(cluster16):
    plan = _plan(cluster16)
    (ep,) = plan.endpoints("default", "kubernetes", "https")
    assert (ep.ip, ep.port, ep.node) == ("192.168.1.2", 6443, "")


def test_previous_allocations_survive_a_replan(cluster16):
    first = _plan(cluster16, _svc("b"), _svc("c", type="NodePort"), lb_pool=POOL)
    second = _plan(
        cluster16,
        _svc("a"),
        _svc("b"),
        _svc("c", type="NodePort"),
        _svc("d", type="LoadBalancer"),
        lb_pool=POOL,
        previous=first,
    )
    for name in ("b", "c"):
        assert second.service("default", name).cluster_ip == first.service("default", name).cluster_ip
    assert second.service("default", "c").ports == first.service("default", "c").ports
    # The new Service gets an address of its own.
    assert second.service("default", "a").cluster_ip not in {s.cluster_ip for s in first.services}


# -- NodePorts -----------------------------------------------------------------------------------


def test_node_ports_dynamic_explicit_and_shared_between_protocols(cluster16):
    dns = (ServicePort("dns", 53, "UDP", 53), ServicePort("dns-tcp", 53, "TCP", 53), ServicePort("web", 80, "TCP", 80))
    plan = _plan(
        cluster16,
        _svc("dyn", type="NodePort", ports=dns),
        _svc(
            "fixed",
            type="NodePort",
            ports=(ServicePort("a", 53, "UDP", 53, 30053), ServicePort("b", 53, "TCP", 53, 30053)),
        ),
    )
    udp, tcp, web = (p.node_port for p in plan.service("default", "dyn").ports)
    assert udp == tcp != web, "one nodePort for a port number served over two protocols"
    assert all(30086 <= p <= 32767 for p in (udp, web)), "dynamic nodePorts avoid the static band"
    assert [p.node_port for p in plan.service("default", "fixed").ports] == [30053, 30053]


def test_node_port_conflicts(cluster16):
    with pytest.raises(SpecError) as info:
        _plan(
            cluster16,
            _svc("a", type="NodePort", ports=(ServicePort("", 80, "TCP", 80, 30008),)),
            _svc("b", type="NodePort", ports=(ServicePort("", 80, "UDP", 80, 30008),)),
        )
    (p,) = info.value.problems
    assert (p.document, p.path, p.message) == (
        "Service default/b",
        "spec.ports[0].nodePort",
        "provided port 30008 is already allocated to Service default/a",
    )


def test_load_balancer_without_node_ports(cluster16):
    plan = _plan(cluster16, _svc("lb", type="LoadBalancer", allocate_load_balancer_node_ports=False), lb_pool=POOL)
    svc = plan.service("default", "lb")
    assert svc.ports[0].node_port is None and svc.load_balancer_ingress == ("192.168.1.200",)


# -- load balancers ------------------------------------------------------------------------------


def test_lb_pool_forms():
    assert parse_lb_pool("192.168.1.200-192.168.1.202") == ["192.168.1.200", "192.168.1.201", "192.168.1.202"]
    assert parse_lb_pool("192.168.1.240/30") == ["192.168.1.241", "192.168.1.242"]
    assert parse_lb_pool("192.168.1.77") == ["192.168.1.77"]
    with pytest.raises(ValueError):
        parse_lb_pool("192.168.1.9-192.168.1.2")


def test_lb_addresses_in_order_requested_pending(cluster16):
    plan = _plan(
        cluster16,
        _svc("a", type="LoadBalancer"),
        _svc("b", type="LoadBalancer", load_balancer_ip="192.168.1.201"),
        _svc("c", type="LoadBalancer"),
        _svc("d", type="LoadBalancer", load_balancer_ip="192.168.1.99"),
        _svc("e", type="LoadBalancer", load_balancer_class="example.com/other"),
        lb_pool="192.168.1.200-192.168.1.202",
    )
    got = {s.name: s.load_balancer_ingress for s in plan.services if s.type == "LoadBalancer"}
    assert got == {"a": ("192.168.1.200",), "b": ("192.168.1.201",), "c": ("192.168.1.202",), "d": (), "e": ()}
    assert plan.service("default", "d").external_ip_column() == "<pending>"
    assert any("192.168.1.99 is not in the pool" in w for w in plan.warnings)
    assert any("loadBalancerClass 'example.com/other'" in w for w in plan.warnings)


def test_no_pool_means_pending_as_on_a_cluster_without_cloud(cluster16):
    plan = _plan(cluster16, _svc("a", type="LoadBalancer"))
    assert plan.service("default", "a").load_balancer_ingress == ()
    assert plan.warnings == (
        "Service default/a: no load balancer pool, EXTERNAL-IP stays <pending> (LoadBalancer needs a cloud, seed 002)",
    )


def test_exhausted_pool(cluster16):
    plan = _plan(cluster16, _svc("a", type="LoadBalancer"), _svc("b", type="LoadBalancer"), lb_pool="192.168.1.200")
    assert [s.load_balancer_ingress for s in plan.services if not s.builtin] == [("192.168.1.200",), ()]
    assert any("exhausted" in w for w in plan.warnings)


@pytest.mark.parametrize(
    "pool,message",
    [
        ("10.0.0.1-10.0.0.3", "10.0.0.1 is not a host address of the underlay 192.168.1.0/24"),
        (
            "192.168.1.2-192.168.1.5",
            "192.168.1.2 in 192.168.1.2-192.168.1.5 is already node kind-control-plane's HOST-IP",
        ),
        ("192.168.1.10", "192.168.1.10 in 192.168.1.10 is already external host laptop"),
        ("nonsense", "'nonsense' is not an address range"),
    ],
)
def test_bad_pools(cluster16, pool, message):
    with pytest.raises(SpecError) as info:
        _plan(cluster16, _svc("a", type="LoadBalancer"), lb_pool=pool)
    (p,) = info.value.problems
    assert p.path == "loadBalancerPool" and message in p.message


# -- EndpointSlices ------------------------------------------------------------------------------


def test_endpoints_of_the_fixture():
    _, _, pods, plan = world()
    stable = pod_ip(pods, "web-", "kind-worker") + pod_ip(
        [p for p in pods if p.name != "web-canary"], "web-", "kind-worker2"
    )
    canary = next(p.ip for p in pods if p.name == "web-canary")
    assert [(e.ip, e.port) for e in plan.endpoints("default", "web")] == sorted((ip, 8080) for ip in stable)
    # Named targetPorts resolve per pod: the canary serves http on 8081 and has no metrics port.
    http = {(e.ip, e.port) for e in plan.endpoints("default", "web-all", "http")}
    assert http == {(ip, 8080) for ip in stable} | {(canary, 8081)}
    assert {e.ip for e in plan.endpoints("default", "web-all", "metrics")} == set(stable)
    assert {(e.ip, e.port) for e in plan.endpoints("default", "web-all", "dns")} == {
        (ip, 5353) for ip in stable + [canary]
    }
    # Two slices for web-all: the canary's port mapping differs.
    slices = plan.slices_of("default", "web-all")
    assert sorted(len(s.endpoints) for s in slices) == [1, 3]
    assert {s.ports_column() for s in slices} == {"8080,9100,5353", "8081,5353"}
    assert plan.slices_of("default", "db") == ()  # ExternalName: none
    (placeholder,) = plan.slices_of("default", "nobody")  # no pod: one empty slice
    assert placeholder.endpoints == () and placeholder.endpoints_column() == "<none>"
    assert len(plan.slices_of("default", "web-headless")[0].endpoints) == 3
    assert plan.slices_of("default", "kubernetes")[0].managed_by == ""


def test_endpoints_are_sorted_as_kube_proxy_sorts_them():
    _, _, _, plan = world()
    eps = [str(e) for e in plan.endpoints("default", "web-all", "http")]
    assert eps == sorted(eps)


def test_update_endpoints_follows_pods_and_keeps_allocations():
    _, _, pods, plan = world()
    victim = next(p for p in pods if p.name.startswith("web-") and p.node == "kind-worker")
    relabelled = [dataclasses.replace(p, labels={**p.labels, "track": "paused"}) if p is victim else p for p in pods]
    after = update_endpoints(plan, relabelled)
    assert after.services == plan.services
    assert victim.ip not in {e.ip for e in after.endpoints("default", "web")}
    assert victim.ip in {e.ip for e in after.endpoints("default", "web-all", "http")}  # app=web still matches
    assert {s.name for s in after.slices_of("default", "web")} == {s.name for s in plan.slices_of("default", "web")}
    gone = update_endpoints(plan, [p for p in pods if p is not victim])
    assert len(gone.endpoints("default", "web")) == 2
    assert gone.slices_of("default", "kubernetes") == plan.slices_of("default", "kubernetes")
    assert update_endpoints(plan, pods) == plan


def test_not_ready_and_terminating_pods():
    _, _, pods, plan = world()
    stable = [p for p in pods if p.name.startswith("web-") and p.name != "web-canary"]
    after = update_endpoints(plan, pods, not_ready={stable[0].full_name}, terminating={stable[1].full_name})
    eps = {e.ip: e for e in after.endpoints("default", "web")}
    assert (eps[stable[0].ip].ready, eps[stable[0].ip].serving) == (False, False)
    assert (eps[stable[1].ip].ready, eps[stable[1].ip].serving, eps[stable[1].ip].terminating) == (False, True, True)
    assert eps[stable[2].ip].ready


def test_load_balancer_targets_follow_local_endpoints():
    _, _, _, plan = world()
    nodes = ["kind-control-plane", "kind-worker", "kind-worker2"]
    assert plan.load_balancer_targets("default", "web-lb", nodes) == ("kind-worker", "kind-worker2")
    assert plan.load_balancer_targets("default", "web-nodeport", nodes) == tuple(nodes)


def test_slices_hold_at_most_100_endpoints(cluster16):
    svc = plan_services(cluster16, Manifests(services=(_svc("big", selector={"app": "big"}),)), [], 1).service(
        "default", "big"
    )
    pods = [
        PodPlan(
            "default",
            f"p{i}",
            f"u{i}",
            "kind-worker",
            str(ipaddress.ip_address("10.244.1.2") + i),
            24,
            "10.244.1.1",
            {"app": "big"},
            ("c",),
            (PortPlan("c", 80, "TCP"),),
            "",
            f"default_p{i}",
            "veth",
        )
        for i in range(MAX_ENDPOINTS_PER_SLICE + 20)
    ]
    slices = compute_slices([svc], pods, 1)
    assert [len(s.endpoints) for s in slices] == [100, 20]
    assert len({s.name for s in slices}) == 2 and all(s.name.startswith("big-") for s in slices)


def test_plan_round_trips_through_json():
    _, _, _, plan = world()
    data = plan.to_dict()
    assert json.loads(json.dumps(data)) == data
