"""IPv6 in every routing mode of a dual-stack cluster, on real packets (issue 15, item 5).

Each routing-l2-<mode> topology made dual-stack (`ipFamily: dual`, kind's IPv6 defaults) runs
manifests/routing-echo.yaml (two echo pods per node, four nodes); the pod-to-pod all-pairs
matrix runs over IPv4 and over IPv6 (TCP and UDP), every flow must connect NAT-free (the server
sees the sender's own address of that family). Each mode's IPv6 kernel objects are read back:
the router's IPv6 routes and the hop it adds (cloud-routes), flannel-v6.1 with its MTU, entries
and real encapsulation, and the Packet Too Big its MTU causes (vxlan), bird2's IPv6 routes and
the pods' /128 behind Calico's link-local gateway (bgp, full mesh and top-of-rack). With bgp,
pods added and removed on the live cluster get and lose their IPv6 objects; in each mode a
dual-stack Service answers over IPv6 (ClusterIP and NodePort). Teardown leaves nothing behind,
bird2 daemons included.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess

import pytest

from testbed.emu.cluster import EmulatedCluster
from testbed.experiment.expand import expand
from testbed.experiment.model import Endpoints, PodSelection, ProbeGroup
from testbed.experiment.run import probe_rows
from testbed.plan.build import plan_cluster, replan
from testbed.plan.dualroutes import CALICO_GATEWAY6
from testbed.spec.selectors import LabelSelector
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from .conftest import ROOT
from .test_dual_stack import _ask, _replies
from .test_routing_modes import _birds

ECHO = os.path.join(ROOT, "manifests", "routing-echo.yaml")


def _dual_spec(tmp_path, mode: str, bgp_topology: str = ""):
    """routing-l2-<mode>.yaml with ipFamily dual (the IPv6 halves from kind's defaults)."""
    with open(os.path.join(ROOT, "topologies", f"routing-l2-{mode}.yaml"), encoding="utf-8") as handle:
        text = handle.read()
    text = text.replace("networking:\n", "networking:\n  ipFamily: dual\n", 1)
    if bgp_topology:
        text = text.replace("topology: full-mesh", f"topology: {bgp_topology}")
    path = tmp_path / f"dual-{mode}.yaml"
    path.write_text(text)
    return load_topology(str(path))


def _dual_plan(tmp_path, mode: str, bgp_topology: str = ""):
    plan = plan_cluster(_dual_spec(tmp_path, mode, bgp_topology), load_manifests([ECHO]), seed=1)
    assert plan.dual is not None and plan.routing == mode
    return plan


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


def _ping6(c, src_key: str, dst: str, size: int = 56) -> subprocess.CompletedProcess:
    argv = ["ip", "netns", "exec", c.netns(src_key), "ping", "-6", "-n", "-c1", "-W2", "-M", "do", "-s", str(size), dst]
    return subprocess.run(argv, capture_output=True, text=True)


def _matrix(c, family: str) -> list[dict]:
    """Every echo pod to every other, and every node to every echo pod, in that family."""
    echo = PodSelection(selector=LabelSelector.of({"app": "echo"}))
    rows = []
    for name, src in (("p2p", Endpoints(pods=echo)), ("n2p", Endpoints(nodes=()))):
        group = ProbeGroup(f"{name}-{family}", src, Endpoints(pods=echo), protocols=("TCP", "UDP"), family=family)
        planned = expand(c.plan, group)
        assert planned, "the group expanded to no probe"
        rows += probe_rows(c, "test", "step", planned)
    return rows


def _assert_all_connected(plan, rows: list[dict], family: str) -> None:
    assert len({(r["src_name"], r["dst_name"]) for r in rows if r["src_kind"] == "pod"}) == 8 * 7
    assert len({(r["src_name"], r["dst_name"]) for r in rows if r["src_kind"] == "node"}) == 4 * 8
    for r in rows:
        assert r["outcome"] == "connected", r
        assert r["nat_free"] is True, r
        assert r["family"] == family, r
    dual = plan.dual
    cross = [r for r in rows if r["src_node"] != r["dst_node"]]
    assert cross
    if family == "IPv6":  # the addresses probed were the pods' IPv6 ones
        ips6 = set(dual.pods.values())
        assert all(r["dst_ip"] in ips6 for r in rows), rows[0]


def _check_cloud_routes(c) -> None:
    plan = c.plan
    router = plan.dual.routers[0]
    table = _ip("-n", c.netns(router.key), "-6", "route", "show")
    for n in plan.dual.nodes:
        assert f"{n.pod_cidr} via {n.host_ip} dev eth0" in table  # the route controller's IPv6 routes
    node = plan.nodes[1]
    routes = _ip("-n", c.netns(node.key), "-6", "route", "show")
    assert f"{plan.dual.pod_subnet} via {router.addresses[0][1]} dev eth0" in routes
    # the router is on the path: the reply's hop limit lost three hops (the server's node,
    # the router, the client's node), where host-gw loses two
    client = next(p for p in plan.pods if p.node == node.name)
    server = next(p for p in plan.pods if p.node not in (node.name,) and p.key in plan.dual.pods)
    done = _ping6(c, client.key, plan.dual.pods[server.key])
    assert done.returncode == 0 and "ttl=61" in done.stdout, done.stdout


def _check_vxlan(c) -> None:
    plan = c.plan
    node = plan.nodes[1]
    ns = c.netns(node.key)
    vtep = plan.dual.vtep(node.name)
    links = _ip("-n", ns, "-d", "link", "show", "dev", "flannel-v6.1")
    assert "flannel-v6.1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1430" in links, links
    assert f"vxlan id 1 local {vtep.local} dev eth0" in links and "dstport 8472" in links and "nolearning" in links
    assert f"link/ether {vtep.mac}" in links
    assert "inet6 " + vtep.address in _ip("-n", ns, "-6", "addr", "show", "dev", "flannel-v6.1")
    routes = _ip("-n", ns, "-6", "route", "show")
    for peer in plan.dual.nodes:
        if peer.name != node.name:
            assert f"{peer.pod_cidr} via {peer.pod_cidr.split('/')[0]} dev flannel-v6.1 metric 1024 onlink" in routes
    neigh = _ip("-n", ns, "-6", "neigh", "show", "dev", "flannel-v6.1")
    fdb = subprocess.run(["bridge", "-n", ns, "fdb", "show", "dev", "flannel-v6.1"], capture_output=True, text=True)
    for ip, mac in vtep.neighbours:
        assert f"{ip} lladdr {mac} PERMANENT" in neigh
    for mac, dst in vtep.fdb:
        assert f"{mac} dst {dst} self permanent" in fdb.stdout

    # real encapsulation: an IPv6 ping across nodes leaves through flannel-v6.1
    def sent() -> int:
        return json.loads(_ip("-n", ns, "-s", "-j", "link", "show", "dev", "flannel-v6.1"))[0]["stats64"]["tx"][
            "packets"
        ]

    client = next(p for p in plan.pods if p.node == node.name)
    server = next(p for p in plan.pods if p.node != node.name and p.key in plan.dual.pods)
    before = sent()
    assert _ping6(c, client.key, plan.dual.pods[server.key]).returncode == 0
    assert sent() > before
    # the pods keep flannel's MTU (1450): the largest IPv6 packet through flannel-v6.1 is 1430
    # bytes (1382 of ICMP payload); a larger one gets a Packet Too Big from the node
    assert " mtu 1450 " in _ip("-n", c.netns(client.key), "link", "show", "dev", "eth0")
    assert _ping6(c, client.key, plan.dual.pods[server.key], 1382).returncode == 0
    big = _ping6(c, client.key, plan.dual.pods[server.key], 1383)
    assert big.returncode != 0 and "mtu=1430" in big.stdout + big.stderr, big


def _check_bgp(c) -> None:
    plan = c.plan
    node = plan.nodes[1]
    ns = c.netns(node.key)
    learned = _ip("-n", ns, "-6", "route", "show", "proto", "bird")
    for peer in plan.dual.nodes:
        if peer.name != node.name:
            assert peer.pod_cidr in learned
    assert f"blackhole {plan.dual.node(node.name).pod_cidr} " in learned
    pod = next(p for p in plan.pods if p.node == node.name and p.key in plan.dual.pods)
    assert f"{plan.dual.pods[pod.key]} dev {pod.host_veth} metric 1024" in _ip("-n", ns, "-6", "route", "show")
    assert f"default via {CALICO_GATEWAY6} dev eth0" in _ip("-n", c.netns(pod.key), "-6", "route", "show")
    assert f"{plan.dual.pods[pod.key]}/128" in _ip("-n", c.netns(pod.key), "-6", "addr", "show", "dev", "eth0")
    if plan.network.routers:  # top-of-rack: the router learnt every /64 from the nodes
        router = _ip("-n", c.netns(plan.network.routers[0].key), "-6", "route", "show", "proto", "bird")
        for n in plan.dual.nodes:
            assert f"{n.pod_cidr} via {n.host_ip}" in router, router


CHECKS = {"cloud-routes": _check_cloud_routes, "vxlan": _check_vxlan, "bgp": _check_bgp}


@pytest.mark.parametrize(
    "mode,bgp_topology",
    [("cloud-routes", ""), ("vxlan", ""), ("bgp", ""), ("bgp", "top-of-rack")],
)
def test_pod_to_pod_over_both_families(no_leftovers, tmp_path, mode, bgp_topology):
    plan = _dual_plan(tmp_path, mode, bgp_topology)
    with EmulatedCluster(plan) as c:
        tag = c.tag
        if mode == "bgp":
            assert len(_birds(tag)) == len(plan.network.bgp)
        CHECKS[mode](c)
        rows4, rows6 = _matrix(c, "IPv4"), _matrix(c, "IPv6")
    assert _birds(tag) == []
    _assert_all_connected(plan, rows4, "IPv4")
    _assert_all_connected(plan, rows6, "IPv6")
    assert not os.path.exists(f"/run/testbed/{tag}")


def test_bgp_pods_added_and_removed_on_the_live_cluster(no_leftovers, tmp_path):
    """Calico's per-pod IPv6 objects follow the pods: a scale-up's new pods answer over IPv6
    from another node, a scale-down's pods lose their /128 route on their node."""
    spec = _dual_spec(tmp_path, "bgp")
    manifests = load_manifests([ECHO])
    plan = plan_cluster(spec, manifests, seed=1)

    def scaled(replicas: int):
        workloads = tuple(
            dataclasses.replace(w, replicas=replicas) if w.ref.name.startswith("echo-") else w
            for w in manifests.workloads
        )
        return dataclasses.replace(manifests, workloads=workloads)

    client = plan.find_pod("client")
    with EmulatedCluster(plan) as c:
        bigger = replan(spec, scaled(6), prev=plan)
        c.apply(bigger)
        added = [p for p in bigger.pods if p.key not in {q.key for q in plan.pods}]
        assert added and any(p.node != client.node for p in added)
        for pod in added:
            assert _ping6(c, client.key, bigger.dual.pods[pod.key]).returncode == 0, pod.name
        smaller = replan(spec, scaled(2), prev=bigger)
        c.apply(smaller)
        gone = [p for p in bigger.pods if p.key not in {q.key for q in smaller.pods}]
        assert gone
        for pod in gone:
            routes = _ip("-n", c.netns(bigger.node(pod.node).key), "-6", "route", "show")
            assert f"{bigger.dual.pods[pod.key]} dev" not in routes, pod.name
        for pod in smaller.pods:
            if pod.key in smaller.dual.pods and pod.node != client.node:
                assert _ping6(c, client.key, smaller.dual.pods[pod.key]).returncode == 0, pod.name


@pytest.mark.parametrize("mode", ["cloud-routes", "vxlan", "bgp"])
def test_ipv6_services_in_each_mode(no_leftovers, tmp_path, mode):
    """kube-proxy's IPv6 proxier over each mode's IPv6 routes: a dual-stack ClusterIP reaches
    endpoints on other nodes NAT-free, and a NodePort answers on a node's IPv6 address."""
    with open(os.path.join(ROOT, "topologies", "dual-stack.yaml"), encoding="utf-8") as handle:
        text = handle.read() + f"routing: {mode}\n"
    path = tmp_path / "dual.yaml"
    path.write_text(text)
    plan = plan_cluster(
        load_topology(str(path)), load_manifests([os.path.join(ROOT, "manifests", "dual-stack-services.yaml")])
    )
    dual = plan.dual
    assert dual is not None and plan.routing == mode
    echo = {p.name: p for p in plan.pods if p.labels.get("app") == "echo"}
    assert len({p.node for p in echo.values()}) >= 2
    client = next(iter(echo.values()))
    prefer6 = dual.services["default/echo-prefer"].cluster_ips[1]
    with EmulatedCluster(plan) as c:
        src = c.pod_netns_path(client)
        seen = set()
        remote = {p for p in echo if echo[p].node != client.node}
        for reply in _replies(lambda: _ask(src, prefer6, 80, socket.SOCK_STREAM), lambda got: got[-1]["pod"] in remote):
            assert reply["local_ip"] == dual.pods[echo[reply["pod"]].key]
            if reply["pod"] != client.name:
                assert reply["peer_ip"] == dual.pods[client.key]
            seen.add(reply["pod"])
        assert {echo[p].node for p in seen} - {client.node}, seen  # an endpoint on another node
        laptop = c.netns_path(plan.externals[0].key)
        assert _ask(laptop, dual.nodes[1].host_ip, 30080, socket.SOCK_STREAM)["pod"] in echo
