"""Addresses (plan/ipam.py): node pod CIDRs, host-local pod IPs, underlay HOST-IPs."""

from __future__ import annotations

import ipaddress
import pathlib

import pytest

from testbed.errors import SpecError
from testbed.plan.build import plan_cluster
from testbed.plan.ipam import HostLocal, node_cidrs, underlay_addresses
from testbed.spec.model import ClusterSpec, ExternalHost, Manifests, NodeSpec
from testbed.spec.topology import load_topology

from ._yaml import deployment as _deployment
from ._yaml import kind_cluster

GOOD = pathlib.Path(__file__).resolve().parent / "data" / "good"

THREE_NODES = kind_cluster(2)


def _single_node(prefix: int) -> str:
    return f"""
        kind: Cluster
        apiVersion: kind.x-k8s.io/v1alpha4
        ---
        apiVersion: testbed/v1alpha1
        kind: TestbedConfig
        podCIDRPrefix: {prefix}
    """


# -- node pod CIDRs ------------------------------------------------------------------------


def test_node_cidrs_are_carved_in_node_order(plan_of):
    plan = plan_of(THREE_NODES, _deployment(0))
    assert [(n.pod_cidr, n.gateway) for n in plan.nodes] == [
        ("10.244.0.0/24", "10.244.0.1"),
        ("10.244.1.0/24", "10.244.1.1"),
        ("10.244.2.0/24", "10.244.2.1"),
    ]


def test_node_cidr_prefix_and_pod_subnet_are_honoured(plan_of):
    plan = plan_of(
        """
        kind: Cluster
        apiVersion: kind.x-k8s.io/v1alpha4
        nodes: [{role: control-plane}, {role: worker}, {role: worker}]
        networking: {podSubnet: 10.32.0.0/20}
        ---
        apiVersion: testbed/v1alpha1
        kind: TestbedConfig
        podCIDRPrefix: 26
    """,
        _deployment(2),
    )
    assert [n.pod_cidr for n in plan.nodes] == ["10.32.0.0/26", "10.32.0.64/26", "10.32.0.128/26"]
    assert [n.gateway for n in plan.nodes] == ["10.32.0.1", "10.32.0.65", "10.32.0.129"]
    assert sorted(p.ip for p in plan.pods) == ["10.32.0.130", "10.32.0.66"]
    assert {p.prefix for p in plan.pods} == {26}


def test_explicit_node_cidrs_are_kept_and_skipped_by_the_others(plan_of):
    plan = plan_of(kind_cluster(2, "nodes: [{name: kind-worker, podCIDR: 10.244.0.0/24}]"), _deployment(0))
    assert [(n.name, n.pod_cidr) for n in plan.nodes] == [
        ("kind-control-plane", "10.244.1.0/24"),
        ("kind-worker", "10.244.0.0/24"),
        ("kind-worker2", "10.244.2.0/24"),
    ]


def test_node_cidrs_reject_overlap_unless_allowed():
    nodes = (NodeSpec("a", "control-plane", {}, (), "10.244.0.0/24"), NodeSpec("b", "worker", {}, (), "10.244.0.0/25"))
    strict = ClusterSpec("kind", "topo.yaml", nodes)
    with pytest.raises(SpecError) as info:
        node_cidrs(strict)
    (problem,) = info.value.problems
    assert (problem.file, problem.path) == ("topo.yaml", "nodes[b].podCIDR")
    assert "nodes a and b have overlapping pod CIDRs 10.244.0.0/24 and 10.244.0.0/25" in problem.message
    allowed = ClusterSpec("kind", "topo.yaml", nodes, allow_overlapping_pod_cidrs=True)
    cidrs, warnings = node_cidrs(allowed)
    assert cidrs == {"a": "10.244.0.0/24", "b": "10.244.0.0/25"}
    assert warnings == [
        "nodes a and b have overlapping pod CIDRs 10.244.0.0/24 and 10.244.0.0/25: "
        "pods on one cannot reach pods on the other (seed 002)"
    ]


# -- host-local pod IPs --------------------------------------------------------------------


def test_pods_get_addresses_from_dot_two_after_the_gateway(plan_of):
    plan = plan_of(THREE_NODES, _deployment(6))
    for node in ("kind-worker", "kind-worker2"):
        pods = plan.pods_on(node)
        net = ipaddress.ip_network(plan.node(node).pod_cidr)
        assert [p.ip for p in pods] == [str(net.network_address + i) for i in (2, 3, 4)]
        assert {p.gateway for p in pods} == {plan.node(node).gateway} == {str(net.network_address + 1)}
    assert plan.ipam_next == {"kind-control-plane": 2, "kind-worker": 5, "kind-worker2": 5}
    assert len({p.ip for p in plan.pods}) == 6


def test_host_local_continues_after_the_last_address():
    ipam = HostLocal({"n": "10.244.0.0/24"})
    assert [ipam.allocate("n") for _ in range(3)] == ["10.244.0.2", "10.244.0.3", "10.244.0.4"]
    ipam.release("10.244.0.3")
    # scenario 001: a recreated pod gets a new IP, not the one just released
    assert ipam.allocate("n") == "10.244.0.5"
    assert ipam.gateway("n") == "10.244.0.1"


def test_host_local_wraps_around_to_released_addresses_only_when_needed():
    ipam = HostLocal({"n": "10.244.0.0/29"})  # .2 to .6: five pods
    assert [ipam.allocate("n") for _ in range(5)] == [f"10.244.0.{i}" for i in range(2, 7)]
    assert ipam.allocate("n") is None
    ipam.release("10.244.0.4")
    ipam.release("10.244.0.3")
    assert ipam.allocate("n") == "10.244.0.3"  # wraps to the lowest free address after .6
    assert ipam.allocate("n") == "10.244.0.4"
    assert ipam.allocate("n") is None


def test_host_local_resumes_from_a_plan(plan_of):
    plan = plan_of(THREE_NODES, _deployment(4))
    cidrs = {n.name: n.pod_cidr for n in plan.nodes}
    ipam = HostLocal(cidrs, plan.ipam_next, [p.ip for p in plan.pods])
    victim = plan.pods_on("kind-worker")[0]
    ipam.release(victim.ip)
    new_ip = ipam.allocate("kind-worker")
    assert new_ip != victim.ip
    assert new_ip == "10.244.1.4"
    assert new_ip not in {p.ip for p in plan.pods}


def test_nodes_allocate_independently():
    ipam = HostLocal({"a": "10.244.0.0/24", "b": "10.244.1.0/24"})
    assert (ipam.allocate("a"), ipam.allocate("b"), ipam.allocate("a")) == ("10.244.0.2", "10.244.1.2", "10.244.0.3")
    assert ipam.next == {"a": 4, "b": 3}


@pytest.mark.parametrize("prefix,capacity", [(30, 1), (29, 5), (28, 13)])
def test_exhausted_node_cidr_leaves_pods_pending(plan_of, prefix, capacity):
    plan = plan_of(_single_node(prefix), _deployment(20))
    assert plan.nodes[0].pod_cidr == f"10.244.0.0/{prefix}"
    assert len(plan.pods) == capacity
    net = ipaddress.ip_network(plan.nodes[0].pod_cidr)
    assert [p.ip for p in plan.pods] == [str(net.network_address + i) for i in range(2, 2 + capacity)]
    assert str(net.broadcast_address) not in {p.ip for p in plan.pods}
    assert len(plan.warnings) == 20 - capacity
    for warning in plan.warnings:
        assert warning.startswith("pod default/web-")
        assert warning.endswith(" stays Pending: node kind-control-plane's pod CIDR is full")


# -- underlay ------------------------------------------------------------------------------


def test_nodes_from_dot_two_and_the_laptop_at_dot_ten(plan_of):
    plan = plan_of(THREE_NODES, _deployment(0))
    assert [n.host_ip for n in plan.nodes] == ["192.168.1.2", "192.168.1.3", "192.168.1.4"]
    assert {n.underlay_prefix for n in plan.nodes} == {24}


def test_external_hosts_from_dot_ten_around_explicit_ones():
    cluster = load_topology(str(GOOD / "topo-externals.yaml"))
    plan = plan_cluster(cluster, Manifests(), 1)
    assert [n.host_ip for n in plan.nodes] == ["172.30.0.5", "172.30.0.6"]  # firstHost: 5
    assert [(x.name, x.ip, x.key, x.underlay_prefix) for x in plan.externals] == [
        ("client", "172.30.0.11", "x0", 24),
        ("laptop", "172.30.0.10", "x1", 24),
        ("server", "172.30.0.12", "x2", 24),
    ]


def test_external_hosts_skip_node_addresses():
    nodes = tuple(NodeSpec(f"n{i}", "worker", {}) for i in range(10))  # .2 to .11
    cluster = ClusterSpec("kind", "t.yaml", nodes, external_hosts=(ExternalHost("laptop"),))
    host_ips, externals = underlay_addresses(cluster)
    assert host_ips == [f"192.168.1.{i}" for i in range(2, 12)]
    assert externals == {"laptop": "192.168.1.12"}


def test_underlay_full_of_external_hosts():
    cluster = ClusterSpec(
        "kind",
        "t.yaml",
        (NodeSpec("n", "control-plane", {}),),
        underlay_subnet="10.9.0.0/28",
        external_hosts=tuple(ExternalHost(f"h{i}") for i in range(6)),
    )
    with pytest.raises(SpecError) as info:
        underlay_addresses(cluster)
    # .10 to .14 are the five host addresses from .10 in a /28
    (problem,) = info.value.problems
    assert (problem.path, problem.message) == ("externalHosts[h5]", "no free underlay address")


def test_external_host_on_a_node_address_is_refused_by_the_planner_too():
    cluster = ClusterSpec(
        "kind", "t.yaml", (NodeSpec("n", "control-plane", {}),), external_hosts=(ExternalHost("laptop", "192.168.1.2"),)
    )
    with pytest.raises(SpecError, match=r"externalHosts\[laptop\]\.ip: 192\.168\.1\.2 is already used"):
        underlay_addresses(cluster)
