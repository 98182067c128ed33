"""Plans of every routing mode (plan/routing.py, plan/underlay.py, plan/bird.py) and the kernel
text emu/ derives from them (ip -batch, bridge -batch, router batch), without root. host-gw:
every node reaches every other node's pod CIDR via its HOST-IP; overlapping node CIDRs (seed
002's clash) give warnings and no route between the clashing nodes.

Golden files in tests/unit/golden/routing/: per topology, the network part of the plan (routes,
racks, router, VTEPs, BGP peers) as JSON, and every bird2 configuration as text. Regenerate with
    UPDATE_GOLDEN=1 python -m pytest -q tests/unit/test_plan_routing.py
and review the diff: it is a change in what `testbed up` builds.
"""

from __future__ import annotations

import ipaddress
import json
import pathlib
import shutil
import subprocess

import pytest

from testbed.emu.bgp import BgpDaemons
from testbed.emu.ledger import Ledger
from testbed.emu.overlay import fdb_lines, vtep_lines
from testbed.emu.pods import node_batch, proxy_arp_sysctls
from testbed.emu.runner import RecordingRunner, Result
from testbed.emu.underlay import router_batch
from testbed.experiment.expand import expand
from testbed.experiment.model import Endpoints, PodSelection, ProbeGroup
from testbed.plan.build import plan_cluster
from testbed.plan.model import NodePlan, RoutePlan
from testbed.plan.network import node_source_ip
from testbed.plan.routing import MODES, host_gw, vtep_mac
from testbed.spec.model import Manifests
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from ._golden import check_golden
from ._yaml import kind_cluster

REPO = pathlib.Path(__file__).resolve().parents[2]
ECHO = str(REPO / "manifests" / "routing-echo.yaml")
GOOD = REPO / "tests" / "unit" / "data" / "good"
TOPOLOGIES = sorted(p.stem for p in (REPO / "topologies").glob("routing-*.yaml"))


def _plan(name: str, manifests: bool = True):
    cluster = load_topology(str(REPO / "topologies" / f"{name}.yaml"))
    return plan_cluster(cluster, load_manifests([ECHO]) if manifests else Manifests(), 1)


@pytest.mark.parametrize("name", TOPOLOGIES)
def test_network_plan_matches_golden(name):
    plan = _plan(name)
    data = plan.to_dict()
    network = data.get("network")
    if network is not None:
        for speaker in network["bgp"]:
            speaker["config"] = f"<golden/routing/bird-{name}-{speaker['key']}.conf>"
    doc = {
        "routing": data["routing"],
        "routes": data["routes"],
        "warnings": data["warnings"],
        "nodes": [
            {k: n[k] for k in ("name", "host_ip", "underlay_prefix", "pod_cidr", "gateway", "bridge")}
            for n in data["nodes"]
        ],
        "externals": data["externals"],
        "pods": [
            {k: p[k] for k in ("name", "node", "ip", "prefix", "gateway")}
            for p in data["pods"]
            if p["namespace"] != "kube-system"
        ],  # the cluster's own pods are another test's
        "network": network,
    }
    check_golden(f"routing/{name}.json", json.dumps(doc, indent=2, sort_keys=True) + "\n")
    for speaker in plan.network.bgp if plan.network is not None else ():
        check_golden(f"routing/bird-{name}-{speaker.key}.conf", speaker.config)


def test_default_host_gw_on_one_segment_has_no_network_part():
    plan = _plan("routing-l2-host-gw")
    assert plan.network is None and "network" not in plan.to_dict()
    quick = plan_cluster(load_topology(str(REPO / "topologies" / "three-nodes.yaml")), Manifests(), 1)
    assert quick.network is None


def test_racks_addresses_and_underlay_routes():
    plan = _plan("routing-racks-vxlan")
    assert [(n.name, n.host_ip, n.underlay_prefix) for n in plan.nodes] == [
        ("kind-control-plane", "192.168.1.2", 24),
        ("kind-worker", "192.168.1.3", 24),
        ("kind-worker2", "192.168.2.2", 24),
        ("kind-worker3", "192.168.2.3", 24),
    ]
    net = plan.network
    assert [(s.name, s.key, s.router_ip, s.members) for s in net.subnets] == [
        ("rack1", "s0", "192.168.1.1", ("kind-control-plane", "kind-worker", "laptop")),
        ("rack2", "s1", "192.168.2.1", ("kind-worker2", "kind-worker3")),
    ]
    (router,) = net.routers
    assert [(i.dev, i.subnet, i.ip) for i in router.interfaces] == [
        ("eth0", "rack1", "192.168.1.1"),
        ("eth1", "rack2", "192.168.2.1"),
    ]
    assert router.routes == ()  # only cloud-routes programs pod routes on the router
    assert {(r.node, r.dst, r.via) for r in net.underlay_routes} == {
        ("kind-control-plane", "192.168.2.0/24", "192.168.1.1"),
        ("kind-worker", "192.168.2.0/24", "192.168.1.1"),
        ("laptop", "192.168.2.0/24", "192.168.1.1"),
        ("kind-worker2", "192.168.1.0/24", "192.168.2.1"),
        ("kind-worker3", "192.168.1.0/24", "192.168.2.1"),
    }


def test_external_host_without_ip_gets_an_address_in_its_rack(topology):
    c = topology(
        kind_cluster(
            1,
            """
        underlay:
          subnets: [{name: a, cidr: 10.1.0.0/24}, {name: b, cidr: 10.2.0.0/24, firstHost: 20}]
        nodes: [{name: kind-worker, rack: b}]
        externalHosts: [{name: laptop, rack: b}, {name: printer}]
    """,
        )
    )
    plan = plan_cluster(c, Manifests(), 1)
    assert [(n.name, n.host_ip) for n in plan.nodes] == [
        ("kind-control-plane", "10.1.0.2"),
        ("kind-worker", "10.2.0.20"),
    ]
    assert [(x.name, x.ip) for x in plan.externals] == [("laptop", "10.2.0.10"), ("printer", "10.1.0.10")]
    assert plan.network.subnet_of("laptop").name == "b"


def test_host_gw_across_racks_warns_and_routes_only_within_a_rack():
    plan = _plan("routing-racks-host-gw")
    assert plan.warnings[0] == (
        "routing host-gw across racks: flannel's host-gw backend needs every node on one L2 segment, but the nodes "
        "sit in rack1 (kind-control-plane, kind-worker); rack2 (kind-worker2, kind-worker3): pods cannot reach pods "
        "in another rack (choose cloud-routes, vxlan or bgp)"
    )
    assert (
        "kind-worker (rack1): no host-gw route to the pod CIDRs of kind-worker2 (rack2) 10.244.2.0/24, "
        "kind-worker3 (rack2) 10.244.3.0/24: their HOST-IPs are not on its L2 segment"
    ) in plan.warnings
    assert [(r.node, r.dst, r.via) for r in plan.routes] == [
        ("kind-control-plane", "10.244.1.0/24", "192.168.1.3"),
        ("kind-worker", "10.244.0.0/24", "192.168.1.2"),
        ("kind-worker2", "10.244.3.0/24", "192.168.2.3"),
        ("kind-worker3", "10.244.2.0/24", "192.168.2.2"),
    ]
    for r in plan.routes:  # every next hop is on-link: the kernel would refuse any other
        assert (
            plan.network.subnet_of(r.node).name
            == plan.network.subnet_of(next(n.name for n in plan.nodes if n.host_ip == r.via)).name
        )


def test_other_modes_across_racks_do_not_warn():
    for mode in ("cloud-routes", "vxlan", "bgp"):
        assert _plan(f"routing-racks-{mode}").warnings == ()
        assert _plan(f"routing-l2-{mode}").warnings == ()


def test_cloud_routes_router_holds_one_route_per_node():
    plan = _plan("routing-racks-cloud-routes")
    (router,) = plan.network.routers
    assert [(r.node, r.dst, r.via, r.dev) for r in router.routes] == [
        ("router", "10.244.0.0/24", "192.168.1.2", "eth0"),
        ("router", "10.244.1.0/24", "192.168.1.3", "eth0"),
        ("router", "10.244.2.0/24", "192.168.2.2", "eth1"),
        ("router", "10.244.3.0/24", "192.168.2.3", "eth1"),
    ]
    assert router.routes[0].why == "route controller: pod CIDR of kind-control-plane via its HOST-IP"
    assert [(r.node, r.dst, r.via) for r in plan.routes] == [
        ("kind-control-plane", "10.244.0.0/16", "192.168.1.1"),
        ("kind-worker", "10.244.0.0/16", "192.168.1.1"),
        ("kind-worker2", "10.244.0.0/16", "192.168.2.1"),
        ("kind-worker3", "10.244.0.0/16", "192.168.2.1"),
    ]
    assert router_batch(router, 1500) == [
        "addr replace 192.168.1.1/24 dev eth0",
        "link set eth0 mtu 1500 up",
        "addr replace 192.168.2.1/24 dev eth1",
        "link set eth1 mtu 1500 up",
        "route replace 10.244.0.0/24 via 192.168.1.2 dev eth0",
        "route replace 10.244.1.0/24 via 192.168.1.3 dev eth0",
        "route replace 10.244.2.0/24 via 192.168.2.2 dev eth1",
        "route replace 10.244.3.0/24 via 192.168.2.3 dev eth1",
    ]
    # on one segment the router (the cloud's gateway) is there too, with one port
    l2 = _plan("routing-l2-cloud-routes").network
    assert [(i.dev, i.ip) for i in l2.routers[0].interfaces] == [("eth0", "192.168.1.1")]
    assert l2.underlay_routes == ()


def test_vxlan_flannel_layout():
    plan = _plan("routing-l2-vxlan")
    assert plan.network.pod_mtu == 1450 and plan.mtu == 1500
    vtep = plan.network.vtep("kind-worker")
    assert (vtep.dev, vtep.vni, vtep.port, vtep.local, vtep.address, vtep.mtu) == (
        "flannel.1",
        1,
        8472,
        "192.168.1.3",
        "10.244.1.0/32",
        1450,
    )
    assert vtep.neighbours == (
        ("10.244.0.0", vtep_mac("kind-control-plane")),
        ("10.244.2.0", vtep_mac("kind-worker2")),
        ("10.244.3.0", vtep_mac("kind-worker3")),
    )
    assert vtep.fdb == (
        (vtep_mac("kind-control-plane"), "192.168.1.2"),
        (vtep_mac("kind-worker2"), "192.168.1.4"),
        (vtep_mac("kind-worker3"), "192.168.1.5"),
    )
    mine = [(r.dst, r.via, r.dev) for r in plan.routes if r.node == "kind-worker"]
    assert mine == [
        ("10.244.0.0/24", "10.244.0.0", "flannel.1"),
        ("10.244.2.0/24", "10.244.2.0", "flannel.1"),
        ("10.244.3.0/24", "10.244.3.0", "flannel.1"),
    ]
    node = plan.node("kind-worker")
    pods = plan.pods_on("kind-worker")
    lines = node_batch(node, pods, [r for r in plan.routes if r.node == node.name], "abcd", 1450, vtep=vtep)
    assert lines[4:7] == [
        f"link add flannel.1 address {vtep.mac} mtu 1450 type vxlan id 1 local 192.168.1.3 dev eth0 "
        "dstport 8472 nolearning",
        "addr add 10.244.1.0/32 dev flannel.1",
        "link set flannel.1 up",
    ]
    assert f"neigh replace 10.244.2.0 lladdr {vtep_mac('kind-worker2')} dev flannel.1 nud permanent" in lines
    assert lines[-1] == "route replace 10.244.3.0/24 via 10.244.3.0 dev flannel.1 onlink"
    assert (
        f"link add {pods[0].host_veth} mtu 1450 type veth peer name eth0 mtu 1450 netns tb-abcd-{pods[0].key}" in lines
    )
    assert (
        fdb_lines(vtep)[0]
        == f"fdb replace {vtep_mac('kind-control-plane')} dev flannel.1 dst 192.168.1.2 self permanent"
    )
    assert vtep_lines(vtep)[0] == lines[4]
    # adding pods later (a scale-up) touches neither the VTEP nor the routes
    later = node_batch(node, pods[:1], [], "abcd", 1450, with_bridge=False, vtep=vtep)
    assert not [l for l in later if "flannel" in l or l.startswith("route")]


def test_vtep_macs_are_local_unicast_and_distinct():
    macs = {vtep_mac(f"n{i}") for i in range(50)}
    assert len(macs) == 50
    for mac in macs:
        first = int(mac.split(":")[0], 16)
        assert first & 0x02 and not first & 0x01


def test_bgp_calico_pods_and_node_batch():
    plan = _plan("routing-l2-bgp")
    assert plan.network.pod_bridge is False and plan.network.pod_mtu == 1500
    assert all(n.bridge == "" for n in plan.nodes)
    for pod in plan.pods:
        node = plan.node(pod.node)
        assert (pod.prefix, pod.gateway) == (32, "169.254.1.1")
        assert ipaddress.ip_address(pod.ip) in ipaddress.ip_network(node.pod_cidr)  # IPs still from the node CIDR
    assert {(r.dst, r.via, r.dev) for r in plan.routes} == {("169.254.1.1/32", None, "eth0")}
    node = plan.node("kind-worker")
    pods = plan.pods_on("kind-worker")
    lines = node_batch(node, pods, [r for r in plan.routes if r.node == node.name], "abcd", 1500)
    assert not [l for l in lines if "cni0" in l or "master" in l]
    for pod in pods:
        assert f"link set {pod.host_veth} up" in lines
        assert f"route replace {pod.ip}/32 dev {pod.host_veth} scope link" in lines
    assert lines[-1] == "route replace 169.254.1.1/32 dev eth0"
    assert proxy_arp_sysctls(pods[:1]) == [
        (f"net/ipv4/conf/{pods[0].host_veth}/proxy_arp", "1"),
        (f"net/ipv4/neigh/{pods[0].host_veth}/proxy_delay", "0"),
    ]


def test_bgp_peers_per_topology(topology):
    def peers(text: str):
        plan = plan_cluster(topology(text), Manifests(), 1)
        return {s.name: [(p.name, p.role, p.passive) for p in s.peers] for s in plan.network.bgp}, plan

    head = kind_cluster(2, "routing: bgp")
    mesh, plan = peers(head)
    assert mesh["kind-worker"] == [("kind-control-plane", "mesh", True), ("kind-worker2", "mesh", False)]
    assert mesh["kind-control-plane"] == [("kind-worker", "mesh", False), ("kind-worker2", "mesh", False)]
    assert [s.expected for s in plan.network.bgp] == [
        ("10.244.1.0/24", "10.244.2.0/24"),
        ("10.244.0.0/24", "10.244.2.0/24"),
        ("10.244.0.0/24", "10.244.1.0/24"),
    ]
    rr, _ = peers(head + "bgp: {topology: route-reflector}\n")
    assert rr["kind-control-plane"] == [("kind-worker", "client", True), ("kind-worker2", "client", True)]
    assert rr["kind-worker"] == [("kind-control-plane", "reflector", False)]
    two, plan = peers(head + "bgp: {topology: route-reflector, routeReflectors: [kind-worker, kind-worker2]}\n")
    assert two["kind-worker"] == [("kind-control-plane", "client", True), ("kind-worker2", "mesh", False)]
    assert "rr cluster id 192.168.1.3;" in plan.network.bgp[1].config  # common cluster id: the first reflector
    tor, plan = peers(head + "bgp: {topology: top-of-rack, asNumber: 65010}\n")
    assert tor["kind-worker"] == [("router", "reflector", False)]
    assert tor["router"] == [
        ("kind-control-plane", "client", True),
        ("kind-worker", "client", True),
        ("kind-worker2", "client", True),
    ]
    router = plan.network.bgp[-1]
    assert (router.key, router.router_id, router.asn, router.originates) == ("r0", "192.168.1.1", 65010, ())
    assert router.expected == ("10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24")


def test_bgp_full_mesh_across_racks_warns(tmp_path):
    text = (
        (REPO / "topologies" / "routing-racks-bgp.yaml")
        .read_text()
        .replace("topology: top-of-rack", "topology: full-mesh")
    )
    path = tmp_path / "mesh.yaml"
    path.write_text(text)
    plan = plan_cluster(load_topology(str(path)), Manifests(), 1)
    assert plan.warnings == (
        "routing bgp (full-mesh) across racks: the sessions cross the router, but the router "
        "does not speak BGP and has no route to any pod CIDR, so pod traffic between racks is "
        "dropped there (choose bgp.topology: top-of-rack)",
    )
    assert plan.network.routers  # it joins the racks, but runs no bird
    assert [s.name for s in plan.network.bgp] == [n.name for n in plan.nodes]


@pytest.mark.skipif(shutil.which("bird") is None, reason="bird2 is not installed")
@pytest.mark.parametrize("name", ["routing-l2-bgp", "routing-racks-bgp"])
def test_bird_accepts_every_rendered_config(tmp_path, name):
    for speaker in _plan(name, manifests=False).network.bgp:
        conf = tmp_path / f"{speaker.key}.conf"
        conf.write_text(speaker.config)
        done = subprocess.run(["bird", "-p", "-c", str(conf)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_bird_daemon_command_and_convergence_check(tmp_path, monkeypatch):
    monkeypatch.setattr("testbed.emu.ledger.STATE_DIR", str(tmp_path))
    plan = _plan("routing-l2-bgp", manifests=False)
    ledger = Ledger(tag="abcd", owner=1)
    speaker = plan.network.bgp[1]
    listing = json.dumps(
        [
            {"dst": "10.244.0.0/24"},
            {"dst": "10.244.2.0/24"},
            {"dst": "10.244.3.0/24"},
            {"type": "blackhole", "dst": "10.244.1.0/24"},
        ]
    )
    key = ("ip", "-j", "-n", "tb-abcd-n1", "-4", "route", "show", "proto", "bird")
    daemons = BgpDaemons(plan, ledger, RecordingRunner(answers={key: Result(0, listing, "")}))
    assert daemons.argv(speaker) == [
        "ip",
        "netns",
        "exec",
        "tb-abcd-n1",
        "bird",
        "-f",
        "-c",
        f"{ledger.dir}/bird-n1.conf",
        "-s",
        f"{ledger.dir}/bird-n1.ctl",
        "-P",
        f"{ledger.dir}/bird-n1.pid",
    ]
    assert set(speaker.expected) <= daemons.installed(speaker)


@pytest.mark.parametrize(
    "name,same,across",
    [
        ("routing-l2-host-gw", "10.244.1.1", "192.168.1.3"),
        ("routing-racks-cloud-routes", "10.244.1.1", "192.168.1.3"),
        ("routing-l2-vxlan", "10.244.1.1", "10.244.1.0"),
        ("routing-l2-bgp", "192.168.1.3", "192.168.1.3"),
    ],
)
def test_node_to_pod_expected_source_per_mode(name, same, across):
    plan = _plan(name)
    assert node_source_ip(plan, "kind-worker", "kind-worker") == same
    assert node_source_ip(plan, "kind-worker", "kind-worker2") == across
    probes = expand(plan, ProbeGroup("n2p", Endpoints(nodes=("kind-worker",)), Endpoints(pods=PodSelection())))
    assert {p.expect_sources for p in probes} == {(same,), (across,)}


# -- host-gw ------------------------------------------------------------------------------------------


def _cluster(workers: int) -> str:
    return (
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n"
        + "  - role: worker\n" * workers
    )


def test_three_nodes_routes_exactly():
    plan = plan_cluster(load_topology(str(REPO / "topologies" / "three-nodes.yaml")), Manifests(), 1)
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
    """Scenario 002: two nodes both on 10.244.0.0 cannot reach each other's pods."""
    cluster = load_topology(str(GOOD / "topo-overlap-allowed.yaml"))
    plan = plan_cluster(cluster, Manifests(), 1)
    assert [(n.name, n.pod_cidr) for n in plan.nodes] == [
        ("kind-control-plane", "10.244.1.0/24"),
        ("kind-worker", "10.244.0.0/24"),
        ("kind-worker2", "10.244.0.0/24"),
    ]
    pairs = {(r.node, r.via) for r in plan.routes}
    assert ("kind-worker", "192.168.1.4") not in pairs
    assert ("kind-worker2", "192.168.1.3") not in pairs
    # both clashing nodes still reach the control plane, and back
    assert ("kind-worker", "192.168.1.2") in pairs and ("kind-worker2", "192.168.1.2") in pairs
    # one route per destination on a node: the kernel would refuse a second 10.244.0.0/24
    dsts = [(r.node, r.dst) for r in plan.routes]
    assert len(dsts) == len(set(dsts))
    assert plan.warnings[0] == (
        "nodes kind-worker and kind-worker2 have overlapping pod CIDRs 10.244.0.0/24 and "
        "10.244.0.0/24: pods on one cannot reach pods on the other (seed 002)"
    )
    assert (
        "kind-worker: no route to kind-worker2's pod CIDR 10.244.0.0/24, it overlaps its own 10.244.0.0/24"
        in plan.warnings
    )
    assert (
        "kind-worker2: no route to kind-worker's pod CIDR 10.244.0.0/24, it overlaps its own 10.244.0.0/24"
        in plan.warnings
    )


def test_scenario002_two_nodes_on_the_same_network(topology):
    cluster = topology(
        kind_cluster(
            1,
            """
        allowOverlappingPodCIDRs: true
        nodes:
          - {name: kind-control-plane, podCIDR: 10.244.0.0/24}
          - {name: kind-worker, podCIDR: 10.244.0.0/24}
    """,
        )
    )
    plan = plan_cluster(cluster, Manifests(), 1)
    assert plan.routes == ()
    assert len(plan.warnings) == 3


def test_host_gw_on_its_own():
    def node(i: int, cidr: str) -> NodePlan:
        return NodePlan(f"n{i}", "worker", i, f"192.168.1.{i + 2}", 24, cidr, "", {}, (), f"n{i}")

    routes, warnings = host_gw([node(0, "10.1.0.0/24"), node(1, "10.1.1.0/24")])
    assert routes == [
        RoutePlan("n0", "10.1.1.0/24", "192.168.1.3", "eth0", "host-gw: pod CIDR of n1 via its HOST-IP"),
        RoutePlan("n1", "10.1.0.0/24", "192.168.1.2", "eth0", "host-gw: pod CIDR of n0 via its HOST-IP"),
    ]
    assert warnings == []
