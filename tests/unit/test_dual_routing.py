"""IPv6 in every routing mode of a dual-stack cluster (plan/dualroutes.py, plan/bird.py's IPv6
half, emu/dualstack.py's kernel lines): routes, devices, bird configs; the IPv4 half unchanged."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess

import pytest

from testbed.emu.bgp import BgpDaemons
from testbed.emu.dualstack import calico_lines6, node_lines6, router_lines6
from testbed.emu.ledger import Ledger
from testbed.emu.overlay import fdb_lines
from testbed.emu.runner import RecordingRunner, Result
from testbed.experiment.family import ipv6_addresses
from testbed.plan.build import plan_cluster
from testbed.plan.dualroutes import CALICO_GATEWAY6, pod_addressing6, vtep6_mac
from testbed.plan.routing import vtep_mac
from testbed.spec.model import Manifests
from testbed.spec.workloads import load_manifests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def dual(routing: str, extra: str = "", family: str = "dual"):
    return (
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"
        "nodes: [{role: control-plane}, {role: worker}, {role: worker}]\n"
        f"networking: {{ipFamily: {family}}}\n"
        f"---\napiVersion: testbed/v1alpha1\nkind: TestbedConfig\nrouting: {routing}\n{extra}"
    )


def _plans(topology, routing: str, extra: str = ""):
    """(the dual-stack plan, the same cluster's IPv4 plan)."""
    return (
        plan_cluster(topology(dual(routing, extra)), Manifests()),
        plan_cluster(topology(dual(routing, extra, "ipv4")), Manifests()),
    )


@pytest.mark.parametrize(
    "routing,extra",
    [
        ("cloud-routes", ""),
        ("vxlan", ""),
        ("bgp", ""),
        ("bgp", "bgp: {topology: top-of-rack}"),
        ("bgp", "bgp: {topology: route-reflector}"),
    ],
)
def test_the_ipv4_half_is_the_ipv4_clusters(topology, routing, extra):
    """Every IPv4 route, device and router route is the IPv4 cluster's; a bird config starts
    with the IPv4 cluster's text and only appends its IPv6 half."""
    plan, plan4 = _plans(topology, routing, extra)
    assert plan.dual is not None and plan4.dual is None
    assert plan.routes == plan4.routes and plan.pods == plan4.pods and plan.nodes == plan4.nodes
    assert plan.network is not None and plan4.network is not None
    assert plan.network.routers == plan4.network.routers and plan.network.vteps == plan4.network.vteps
    assert plan.network.pod_mtu == plan4.network.pod_mtu
    assert len(plan.network.bgp) == len(plan4.network.bgp)
    for s, s4 in zip(plan.network.bgp, plan4.network.bgp, strict=True):
        assert s.config.startswith(s4.config) and "ipv6" in s.config[len(s4.config) :]
        assert s.expected[: len(s4.expected)] == s4.expected and s.peers == s4.peers


def test_cloud_routes_nodes_send_the_ipv6_cluster_cidr_to_the_router_which_routes_each_64(topology):
    plan, _ = _plans(topology, "cloud-routes")
    d = plan.dual
    assert [(r.node, r.dst, r.via, r.dev) for r in d.routes] == [
        (n, "fd00:10:244::/56", "fd00:192:168:1::1", "eth0")
        for n in ("kind-control-plane", "kind-worker", "kind-worker2")
    ]
    (router,) = d.routers
    assert (router.name, router.key, router.addresses) == ("router", "r0", (("eth0", "fd00:192:168:1::1"),))
    assert router_lines6(router, d.underlay_prefix) == [
        "addr add fd00:192:168:1::1/64 dev eth0 nodad",
        "addr add fe80::1/64 dev eth0 nodad",
        "route replace fd00:10:244::/64 via fd00:192:168:1::2 dev eth0",
        "route replace fd00:10:244:1::/64 via fd00:192:168:1::3 dev eth0",
        "route replace fd00:10:244:2::/64 via fd00:192:168:1::4 dev eth0",
    ]
    assert node_lines6(d, "kind-worker", "cni0")[-1] == "route replace fd00:10:244::/56 via fd00:192:168:1::1 dev eth0"


def test_vxlan_has_flannels_ipv6_device_with_its_entries_and_the_kernels_mtu(topology):
    plan, _ = _plans(topology, "vxlan")
    d = plan.dual
    vtep = d.vtep("kind-worker")
    assert vtep is not None
    # flannel: flannel-v6.<VNI>, the /64's network address as a /128, its own MAC; the kernel
    # clamps an IPv6 VXLAN device to the underlay's MTU minus 70
    assert (vtep.dev, vtep.vni, vtep.port, vtep.local, vtep.address, vtep.mtu) == (
        "flannel-v6.1",
        1,
        8472,
        "fd00:192:168:1::3",
        "fd00:10:244:1::/128",
        1430,
    )
    assert vtep.mac == vtep6_mac("kind-worker") != vtep_mac("kind-worker")
    assert vtep.neighbours == (
        ("fd00:10:244::", vtep6_mac("kind-control-plane")),
        ("fd00:10:244:2::", vtep6_mac("kind-worker2")),
    )
    assert fdb_lines(vtep) == [
        f"fdb replace {vtep6_mac('kind-control-plane')} dev flannel-v6.1 dst fd00:192:168:1::2 self permanent",
        f"fdb replace {vtep6_mac('kind-worker2')} dev flannel-v6.1 dst fd00:192:168:1::4 self permanent",
    ]
    lines = node_lines6(d, "kind-worker", "cni0")
    assert lines[4:7] == [
        f"link add flannel-v6.1 address {vtep.mac} mtu 1430 type vxlan id 1 local fd00:192:168:1::3 dev eth0 "
        "dstport 8472 nolearning",
        "addr add fd00:10:244:1::/128 dev flannel-v6.1 nodad",
        "link set flannel-v6.1 up",
    ]
    assert lines[-2:] == [
        "route replace fd00:10:244::/64 via fd00:10:244:: dev flannel-v6.1 onlink",
        "route replace fd00:10:244:2::/64 via fd00:10:244:2:: dev flannel-v6.1 onlink",
    ]
    assert plan.network.pod_mtu == 1450  # flannel's FLANNEL_MTU, the IPv4 cluster's
    assert d.routers == ()


def test_bgp_pods_are_128s_behind_calicos_link_local_gateway(topology):
    plan, _ = _plans(topology, "bgp")
    d = plan.dual
    node = plan.nodes[1]
    assert node.bridge == "" and d.routes == () and d.vteps == ()
    lines = node_lines6(d, node.name, node.bridge)
    assert lines == ["addr add fd00:192:168:1::3/64 dev eth0 nodad", "addr add fe80::3/64 dev eth0 nodad"]
    assert pod_addressing6("bgp", d.node(node.name), "unused") == (128, CALICO_GATEWAY6)
    assert pod_addressing6("vxlan", d.node(node.name), "fd00:10:244:1::1") == (64, "fd00:10:244:1::1")


def test_bgp_pod_lines_give_the_host_veth_the_gateway_and_route_the_128(topology):
    plan = plan_cluster(topology(dual("bgp")), load_manifests([os.path.join(ROOT, "manifests", "quickstart-app.yaml")]))
    pod = next(p for p in plan.pods if p.key in plan.dual.pods)
    assert calico_lines6(plan.dual, [pod]) == [
        f"addr add fe80::ecee:eeff:feee:eeee/64 dev {pod.host_veth} nodad",
        f"route replace {plan.dual.pods[pod.key]}/128 dev {pod.host_veth}",
    ]


def test_bgp_full_mesh_peers_over_ipv6_announcing_each_64(topology):
    plan, _ = _plans(topology, "bgp")
    speaker = plan.network.bgp[1]  # kind-worker
    v6 = speaker.config[speaker.config.index("# IPv6 (ipFamily dual)") :]
    assert "route fd00:10:244:1::/64 blackhole;" in v6
    assert "  if net = fd00:10:244:1::/64 then accept;\n" in v6
    assert "  if net ~ [ fd00:10:244::/56+ ] then accept;\n" in v6
    assert "  local fd00:192:168:1::3 as 64512;\n" in v6
    assert "protocol bgp Mesh_fd00_192_168_1__2 from peers6 {" in v6
    assert "protocol bgp Mesh_fd00_192_168_1__4 from peers6 {" in v6
    # the passive side is the IPv4 session's: the higher address waits
    block = v6[v6.index("Mesh_fd00_192_168_1__2") :].split("}")[0]
    assert "passive on" in block
    assert "passive on" not in v6[v6.index("Mesh_fd00_192_168_1__4") :].split("}")[0]
    assert speaker.expected[-2:] == ("fd00:10:244::/64", "fd00:10:244:2::/64")
    assert speaker.originates == ("10.244.1.0/24", "fd00:10:244:1::/64")


def test_bgp_top_of_rack_router_reflects_ipv6_too(topology):
    plan, _ = _plans(topology, "bgp", "bgp: {topology: top-of-rack}")
    router = plan.network.bgp[-1]
    assert router.name == "router"
    assert plan.dual.routers[0].addresses == (("eth0", "fd00:192:168:1::1"),)
    assert plan.dual.routers[0].routes == ()  # bird installs them
    v6 = router.config[router.config.index("# IPv6 (ipFamily dual)") :]
    assert "  local fd00:192:168:1::1 as 64512;\n  neighbor fd00:192:168:1::2 as 64512;\n  rr client;\n" in v6
    assert "rr cluster id 192.168.1.1;" in v6
    assert router.expected[-3:] == ("fd00:10:244::/64", "fd00:10:244:1::/64", "fd00:10:244:2::/64")
    node = plan.network.bgp[0]
    assert "protocol bgp Rr_fd00_192_168_1__1 from peers6 {" in node.config


@pytest.mark.skipif(shutil.which("bird") is None, reason="bird2 is not installed")
@pytest.mark.parametrize("extra", ["", "bgp: {topology: top-of-rack}", "bgp: {topology: route-reflector}"])
def test_bird_accepts_every_dual_stack_config(tmp_path, topology, extra):
    plan, _ = _plans(topology, "bgp", extra)
    for speaker in plan.network.bgp:
        conf = tmp_path / f"{speaker.key}.conf"
        conf.write_text(speaker.config)
        done = subprocess.run(["bird", "-p", "-c", str(conf)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_convergence_waits_for_the_ipv6_routes_too(tmp_path, monkeypatch, topology):
    monkeypatch.setattr("testbed.emu.ledger.STATE_DIR", str(tmp_path))
    plan, _ = _plans(topology, "bgp")
    ledger = Ledger(tag="abcd", owner=1)
    speaker = plan.network.bgp[1]
    v4 = ("ip", "-j", "-n", "tb-abcd-n1", "-4", "route", "show", "proto", "bird")
    v6 = ("ip", "-j", "-n", "tb-abcd-n1", "-6", "route", "show", "proto", "bird")
    listing4 = json.dumps([{"dst": "10.244.0.0/24"}, {"dst": "10.244.2.0/24"}])
    half = RecordingRunner(answers={v4: Result(0, listing4, ""), v6: Result(0, "[]", "")})
    assert not set(speaker.expected) <= BgpDaemons(plan, ledger, half).installed(speaker)
    listing6 = json.dumps([{"dst": "fd00:10:244::/64"}, {"dst": "fd00:10:244:2::/64"}])
    both = RecordingRunner(answers={v4: Result(0, listing4, ""), v6: Result(0, listing6, "")})
    assert set(speaker.expected) <= BgpDaemons(plan, ledger, both).installed(speaker)


def test_dual_stack_plans_of_each_mode_are_deterministic(topology):
    for routing in ("cloud-routes", "vxlan", "bgp"):
        spec = topology(dual(routing))
        assert plan_cluster(spec, Manifests()) == plan_cluster(dataclasses.replace(spec), Manifests())


def test_a_nodes_vtep_address_has_its_ipv6_twin_for_node_to_pod_probes(topology):
    """vxlan: a node's own traffic to another node's pods leaves from its VTEP's address, in
    each family (flannel.1's 10.244.N.0, flannel-v6.1's fd00:10:244:N::)."""
    plan, _ = _plans(topology, "vxlan")
    twins = ipv6_addresses(plan)
    assert twins["10.244.1.0"] == "fd00:10:244:1::"
    plan_hg = plan_cluster(topology(dual("host-gw")), Manifests())
    assert "10.244.1.0" not in ipv6_addresses(plan_hg)
