"""host-gw routes (plan/routing.py): every node reaches every other node's pod CIDR via its HOST-IP;
overlapping node CIDRs (seed 002's clash) give warnings and no route between the clashing nodes."""

from __future__ import annotations

import ipaddress
import pathlib

from testbed.plan.build import plan_cluster
from testbed.plan.model import RoutePlan
from testbed.plan.routing import MODES, host_gw
from testbed.spec.model import Manifests
from testbed.spec.topology import load_topology

GOOD = pathlib.Path(__file__).resolve().parent / "data" / "good"


def _cluster(workers: int) -> str:
    return ("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n"
            + "  - role: worker\n" * workers)


def test_three_nodes_routes_exactly():
    plan = plan_cluster(load_topology(str(pathlib.Path(__file__).resolve().parents[2] / "topologies"
                                          / "three-nodes.yaml")), Manifests(), 1)
    assert [(r.node, r.dst, r.via, r.dev) for r in plan.routes] == [
        ("kind-control-plane", "10.244.1.0/24", "192.168.1.3", "eth0"),
        ("kind-control-plane", "10.244.2.0/24", "192.168.1.4", "eth0"),
        ("kind-worker", "10.244.0.0/24", "192.168.1.2", "eth0"),
        ("kind-worker", "10.244.2.0/24", "192.168.1.4", "eth0"),
        ("kind-worker2", "10.244.0.0/24", "192.168.1.2", "eth0"),
        ("kind-worker2", "10.244.1.0/24", "192.168.1.3", "eth0"),
    ]
    assert plan.routes[0].why == "host-gw: pod CIDR of kind-worker via its HOST-IP"
    assert plan.routing == "host-gw" and MODES["host-gw"] is host_gw


def test_every_node_routes_every_other_node_cidr_via_its_host_ip(topology):
    cluster = topology(_cluster(4))
    plan = plan_cluster(cluster, Manifests(), 1)
    nodes = {n.name: n for n in plan.nodes}
    assert len(plan.routes) == 5 * 4
    for node in plan.nodes:
        mine = {r.dst: r.via for r in plan.routes if r.node == node.name}
        assert mine == {p.pod_cidr: p.host_ip for p in plan.nodes if p.name != node.name}
        assert node.pod_cidr not in mine  # its own CIDR is on cni0, not routed
    for r in plan.routes:
        via = ipaddress.ip_address(r.via)
        assert via in ipaddress.ip_network(plan.underlay_subnet)  # on-link next hop
        assert r.via != nodes[r.node].host_ip
    assert plan.warnings == ()


def test_single_node_has_no_routes(topology):
    plan = plan_cluster(topology(_cluster(0)), Manifests(), 1)
    assert plan.routes == () and plan.warnings == ()


def test_overlapping_node_cidrs_no_route_between_the_clashing_nodes():
    """Seed 002: two nodes both on 10.244.0.0 cannot reach each other's pods."""
    cluster = load_topology(str(GOOD / "topo-overlap-allowed.yaml"))
    plan = plan_cluster(cluster, Manifests(), 1)
    assert [(n.name, n.pod_cidr) for n in plan.nodes] == [
        ("kind-control-plane", "10.244.1.0/24"), ("kind-worker", "10.244.0.0/24"), ("kind-worker2", "10.244.0.0/24")]
    pairs = {(r.node, r.via) for r in plan.routes}
    assert ("kind-worker", "192.168.1.4") not in pairs
    assert ("kind-worker2", "192.168.1.3") not in pairs
    # both clashing nodes still reach the control plane, and back
    assert ("kind-worker", "192.168.1.2") in pairs and ("kind-worker2", "192.168.1.2") in pairs
    # one route per destination on a node: the kernel would refuse a second 10.244.0.0/24
    dsts = [(r.node, r.dst) for r in plan.routes]
    assert len(dsts) == len(set(dsts))
    assert plan.warnings[0] == ("nodes kind-worker and kind-worker2 have overlapping pod CIDRs 10.244.0.0/24 and "
                                "10.244.0.0/24: pods on one cannot reach pods on the other (seed 002)")
    assert ("kind-worker: no route to kind-worker2's pod CIDR 10.244.0.0/24, it overlaps its own 10.244.0.0/24"
            in plan.warnings)
    assert ("kind-worker2: no route to kind-worker's pod CIDR 10.244.0.0/24, it overlaps its own 10.244.0.0/24"
            in plan.warnings)


def test_seed_002_two_nodes_on_the_same_network(topology):
    cluster = topology("""
        kind: Cluster
        apiVersion: kind.x-k8s.io/v1alpha4
        nodes: [{role: control-plane}, {role: worker}]
        ---
        apiVersion: testbed/v1alpha1
        kind: TestbedConfig
        allowOverlappingPodCIDRs: true
        nodes:
          - {name: kind-control-plane, podCIDR: 10.244.0.0/24}
          - {name: kind-worker, podCIDR: 10.244.0.0/24}
    """)
    plan = plan_cluster(cluster, Manifests(), 1)
    assert plan.routes == ()
    assert len(plan.warnings) == 3


def test_host_gw_on_its_own():
    from testbed.plan.model import NodePlan

    def node(i: int, cidr: str) -> NodePlan:
        return NodePlan(f"n{i}", "worker", i, f"192.168.1.{i + 2}", 24, cidr, "", {}, (), f"n{i}")
    routes, warnings = host_gw([node(0, "10.1.0.0/24"), node(1, "10.1.1.0/24")])
    assert routes == [
        RoutePlan("n0", "10.1.1.0/24", "192.168.1.3", "eth0", "host-gw: pod CIDR of n1 via its HOST-IP"),
        RoutePlan("n1", "10.1.0.0/24", "192.168.1.2", "eth0", "host-gw: pod CIDR of n0 via its HOST-IP"),
    ]
    assert warnings == []
