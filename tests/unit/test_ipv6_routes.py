"""bgp and racks in single-stack IPv6 clusters, racks with cloud-routes and bgp in dual-stack
ones (issue 15): bird2's IPv6-only configuration under Calico's hashed router id, Calico's IPv6
pods, each rack's IPv6 segment and the router's ports, the route controller's and the
top-of-rack speaker's per-rack IPv6 halves, the kernel lines they give."""

from __future__ import annotations

import hashlib
import ipaddress
import re

import pytest

from testbed.emu.dualstack import rack_router_lines6, underlay_lines6
from testbed.emu.ipv6only import router_lines_of6
from testbed.emu.pods import node_batch
from testbed.plan.bird import hash_router_id
from testbed.plan.build import plan_cluster
from testbed.plan.network import CALICO_GATEWAY6
from testbed.rules.egress import egress_nft
from testbed.spec.model import Manifests

from .test_dualstack import cluster

RACKS6 = (
    "underlay:\n  subnets:\n"
    "    - {name: rack1, cidr: 'fd00:192:168:1::/64'}\n"
    "    - {name: rack2, cidr: 192.168.2.0/24, cidrIPv6: 'fd00:192:168:2::/64'}\n"
    "    - {name: internet, cidr: '2001:db8:203:0:113::/80', outside: true}\n"
    "nodes: [{name: kind-worker2, rack: rack2}]\n"
    "externalHosts: [{name: laptop, ip: 'fd00:192:168:1::a'}, {name: web, ip: '2001:db8:203:0:113::a'}]\n"
)
RACKS4 = (
    "underlay:\n  subnets:\n"
    "    - {name: rack1, cidr: 192.168.1.0/24}\n"
    "    - {name: rack2, cidr: 192.168.2.0/24}\n"
    "nodes: [{name: kind-worker2, rack: rack2}]\n"
    "externalHosts: [{name: laptop, ip: 192.168.1.10}]\n"
)


def _plan(topology, family: str, testbed: str):
    return plan_cluster(topology(cluster(f"{{ipFamily: {family}}}", testbed)), Manifests(), 1)


def _dotted_quads(text: str) -> set[str]:
    return set(re.findall(r"\b\d+\.\d+\.\d+\.\d+\b", text))


def test_hashed_router_id_is_calicos():
    """CALICO_ROUTER_ID=hash: the first 4 bytes of SHA-256(name), a first byte above 223 lowered
    by 32 (never multicast or reserved); distinct per node."""
    for name in ("kind-control-plane", "kind-worker", "kind-worker2", "router", *(f"n{i}" for i in range(200))):
        raw = hashlib.sha256(name.encode()).digest()[:4]
        rid = ipaddress.IPv4Address(hash_router_id(name))
        assert rid.packed[1:] == raw[1:] and rid.packed[0] == (raw[0] - 32 if raw[0] > 223 else raw[0])
        assert not rid.is_multicast and rid not in ipaddress.IPv4Network("240.0.0.0/4")
    assert len({hash_router_id(n) for n in ("kind-control-plane", "kind-worker", "kind-worker2")}) == 3


@pytest.mark.parametrize("bgp", ["full-mesh", "route-reflector", "top-of-rack"])
def test_ipv6_bgp_speakers_have_no_ipv4_but_their_router_id(topology, bgp):
    plan = _plan(topology, "ipv6", f"routing: bgp\nbgp: {{topology: {bgp}}}\n")
    assert plan.network is not None and plan.network.bgp
    assert plan.routes == ()  # no 169.254.1.1 route: the host veth holds the IPv6 gateway itself
    for s in plan.network.bgp:
        assert s.router_id == hash_router_id(s.name)
        # the only dotted quads: its router id, and a reflector's cluster id (its own router id)
        assert f"router id {s.router_id};" in s.config
        assert _dotted_quads(s.config) - {s.router_id} <= {hash_router_id("kind-control-plane")}
        assert "ipv4" not in s.config and "protocol static pods6" in s.config or s.name == "router"
        assert all(":" in p.ip for p in s.peers) and all(":" in c for c in s.expected)
    worker = next(s for s in plan.network.bgp if s.name == "kind-worker")
    assert worker.originates == ("fd00:10:244:1::/64",)
    if bgp == "full-mesh":  # one side per session: the higher IPv6 address waits
        assert {(p.name, p.passive) for p in worker.peers} == {("kind-control-plane", True), ("kind-worker2", False)}
    if bgp == "route-reflector":
        assert f"rr cluster id {hash_router_id('kind-control-plane')};" in plan.network.bgp[0].config
    pod_addresses = {(p.prefix, p.gateway) for p in plan.pods}
    assert pod_addresses <= {(128, CALICO_GATEWAY6)}


def test_calico_ipv6_pod_lines_on_the_node(topology):
    from testbed.spec.workloads import load_manifests

    from .test_ipv6_only import REPO

    spec = topology(cluster("{ipFamily: ipv6}", "routing: bgp\n"))
    plan = plan_cluster(spec, load_manifests([str(REPO / "manifests" / "quickstart-app.yaml")]), 1)
    node = plan.node("kind-worker")
    pods = [p for p in plan.pods if p.node == node.name and not p.host_network]
    lines = node_batch(node, pods, [], "t", 1500, with_bridge=True)
    assert not any("cni0" in line or "/32" in line for line in lines)
    for pod in pods:
        assert f"addr add {CALICO_GATEWAY6}/64 dev {pod.host_veth} nodad" in lines
        assert f"route replace {pod.ip}/128 dev {pod.host_veth}" in lines
        assert pod.prefix == 128 and pod.gateway == CALICO_GATEWAY6


def test_ipv6_racks_take_each_subnets_ipv6_cidr(topology):
    plan = _plan(topology, "ipv6", RACKS6 + "routing: cloud-routes\n")
    assert plan.network is not None
    assert [s.cidr for s in plan.network.subnets] == [
        "fd00:192:168:1::/64",
        "fd00:192:168:2::/64",  # rack2's cidrIPv6 wins over its IPv4 cidr
        "2001:db8:203:0:113::/80",
    ]
    assert plan.node("kind-worker2").host_ip == "fd00:192:168:2::2"
    (router,) = plan.network.routers
    assert router_lines_of6(router, 1500)[3:9] == [
        "addr add fd00:192:168:1::1/64 dev eth0 nodad",
        "addr add fe80::1/64 dev eth0 nodad",
        "addr add fd00:192:168:2::1/64 dev eth1 nodad",
        "addr add fe80::1/64 dev eth1 nodad",
        "addr add 2001:db8:203:0:113::1/80 dev eth2 nodad",  # each port its own rack's prefix
        "addr add fe80::113:0:0:1/64 dev eth2 nodad",  # the link-local of its interface identifier
    ]
    assert "route replace fd00:10:244:2::/64 via fd00:192:168:2::2 dev eth1" in router_lines_of6(router, 1500)
    assert {(r.dst, r.via) for r in plan.routes if r.node == "kind-worker2"} == {
        ("fd00:10:244::/56", "fd00:192:168:2::1")
    }
    assert ("kind-worker2", "fd00:192:168:1::/64", "fd00:192:168:2::1") in {
        (r.node, r.dst, r.via) for r in plan.network.underlay_routes
    }
    # pods to the outside world: SNAT to the node, in an ip6 table
    text = egress_nft(plan.pod_subnet, plan.outside_subnets)
    assert "table ip6 testbed-egress" in text
    assert "ip6 saddr fd00:10:244::/56 ip6 daddr { 2001:db8:203:0:113::/80 } masquerade" in text


def test_ipv6_top_of_rack_peers_from_each_racks_port(topology):
    plan = _plan(topology, "ipv6", RACKS6 + "routing: bgp\nbgp: {topology: top-of-rack}\n")
    assert plan.network is not None
    router = next(s for s in plan.network.bgp if s.name == "router")
    assert "local fd00:192:168:2::1 as 64512;\n  neighbor fd00:192:168:2::2 as 64512;" in router.config
    assert "local fd00:192:168:1::1 as 64512;\n  neighbor fd00:192:168:1::3 as 64512;" in router.config
    worker2 = next(s for s in plan.network.bgp if s.name == "kind-worker2")
    assert [p.ip for p in worker2.peers] == ["fd00:192:168:2::1"]


def test_dual_racks_cloud_routes_route_each_rack_out_of_its_port(topology):
    plan = _plan(topology, "dual", RACKS4 + "routing: cloud-routes\n")
    dual = plan.dual
    assert dual is not None and len(dual.racks) == 2
    (router,) = dual.routers
    assert {(r.dst, r.via, r.dev) for r in router.routes} == {
        ("fd00:10:244::/64", "fd00:192:168:1::2", "eth0"),
        ("fd00:10:244:1::/64", "fd00:192:168:1::3", "eth0"),
        ("fd00:10:244:2::/64", "fd00:192:168:2::2", "eth1"),
    }
    assert {(r.node, r.via) for r in dual.routes} == {
        ("kind-control-plane", "fd00:192:168:1::1"),
        ("kind-worker", "fd00:192:168:1::1"),
        ("kind-worker2", "fd00:192:168:2::1"),
    }
    # the kernel lines: each rack's gateway (its prefix, a link-local) before the routes
    lines = rack_router_lines6(plan, router)
    assert lines[:4] == [
        "addr add fd00:192:168:1::1/64 dev eth0 nodad",
        "addr add fd00:192:168:2::1/64 dev eth1 nodad",
        "addr add fe80::1/64 dev eth0 nodad",
        "addr add fe80::1/64 dev eth1 nodad",
    ]
    assert lines[4:] == [f"route replace {r.dst} via {r.via} dev {r.dev}" for r in router.routes]
    assert underlay_lines6(dual)["kind-worker2"] == ["route replace fd00:192:168:1::/64 via fd00:192:168:2::1 dev eth0"]


def test_dual_racks_top_of_rack_ipv6_sessions_from_each_racks_port(topology):
    plan = _plan(topology, "dual", RACKS4 + "routing: bgp\nbgp: {topology: top-of-rack}\n")
    assert plan.network is not None and plan.dual is not None
    router = next(s for s in plan.network.bgp if s.name == "router")
    assert "local fd00:192:168:2::1 as 64512;\n  neighbor fd00:192:168:2::2 as 64512;" in router.config
    assert "local fd00:192:168:1::1 as 64512;\n  neighbor fd00:192:168:1::3 as 64512;" in router.config
    assert "local 192.168.2.1 as 64512;\n  neighbor 192.168.2.2 as 64512;" in router.config  # IPv4 as before
    worker2 = next(s for s in plan.network.bgp if s.name == "kind-worker2")
    assert "neighbor fd00:192:168:2::1 as 64512;" in worker2.config
