"""Cross-node routing modes on real packets: host-gw, cloud-routes, vxlan and bgp (bird2).

The same workload (manifests/routing-echo.yaml: two echo pods per node, four nodes, two
zones) and the same pod-to-pod all-pairs matrix run under every mode, on one L2 segment and
across two racks joined by a router. Every mode passes on one segment; across racks host-gw
must fail — clearly: the plan warns, and cross-rack probes get "unreachable" at once — while
the other modes pass. Each test also checks the kernel objects its mode is made of (flannel.1
and its entries, the route controller's routes, bird2's routes and the /32 pod routes) and that
teardown leaves nothing behind, bird2 daemons included.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from testbed.emu.cluster import EmulatedCluster
from testbed.experiment.expand import expand
from testbed.experiment.model import Endpoints, PodSelection, ProbeGroup
from testbed.experiment.run import probe_rows
from testbed.plan.build import plan_cluster
from testbed.spec.selectors import LabelSelector
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from .conftest import ROOT, swept_here

ECHO = os.path.join(ROOT, "manifests", "routing-echo.yaml")
MODES = ("host-gw", "cloud-routes", "vxlan", "bgp")
UNDERLAYS = ("l2", "racks")
RACK = {"kind-control-plane": "rack1", "kind-worker": "rack1", "kind-worker2": "rack2", "kind-worker3": "rack2"}


def _topology(underlay: str, mode: str) -> str:
    return os.path.join(ROOT, "topologies", f"routing-{underlay}-{mode}.yaml")


def _plan(topology: str):
    return plan_cluster(load_topology(topology), load_manifests([ECHO]), seed=1)


def _echo() -> PodSelection:
    return PodSelection(selector=LabelSelector.of({"app": "echo"}))


def _rows(cluster, group: ProbeGroup):
    planned = expand(cluster.plan, group)
    assert planned, "the group expanded to no probe"
    return probe_rows(cluster, "test", "step", planned)


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


def _birds(tag: str) -> list[int]:
    """bird2 daemons of one instance (their command line names the instance's ledger folder)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmd = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if " bird " in f" {cmd} " and f"/run/testbed/{tag}/" in cmd:
            out.append(int(pid))
    return out


def _check_kernel(c, mode: str, underlay: str) -> None:
    """The objects each mode is made of, read back from the kernel."""
    plan = c.plan
    node = plan.node("kind-worker")
    ns = c.netns(node.key)
    routes = _ip("-n", ns, "-4", "route", "show")
    links = _ip("-n", ns, "-d", "link", "show")
    if mode == "vxlan":
        assert "flannel.1" in links and "vxlan id 1 " in links and "dstport 8472" in links and "nolearning" in links
        vtep = plan.network.vtep(node.name)
        assert vtep.mtu == 1450 and "flannel.1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450" in links
        for peer in plan.nodes:
            if peer.name != node.name:
                cidr, via = peer.pod_cidr, peer.pod_cidr.split("/")[0]
                assert f"{cidr} via {via} dev flannel.1 onlink" in routes
        neigh = _ip("-n", ns, "neigh", "show", "dev", "flannel.1")
        fdb = subprocess.run(
            ["bridge", "-n", ns, "fdb", "show", "dev", "flannel.1"], capture_output=True, text=True, check=True
        ).stdout
        for ip, mac in vtep.neighbours:
            assert f"{ip} lladdr {mac} PERMANENT" in neigh
        for mac, dst in vtep.fdb:
            assert f"{mac} dst {dst} self permanent" in fdb
        pod = plan.find_pod("client")
        assert " mtu 1450 " in _ip("-n", c.netns(pod.key), "link", "show", "dev", "eth0")
    elif mode == "bgp":
        assert "cni0" not in links  # Calico: no bridge
        learned = _ip("-n", ns, "-4", "route", "show", "proto", "bird")
        for peer in plan.nodes:
            if peer.name != node.name:
                assert peer.pod_cidr in learned
        assert f"blackhole {node.pod_cidr} " in learned  # the own CIDR, from bird's static protocol
        for pod in plan.pods_on(node.name):
            assert f"{pod.ip} dev {pod.host_veth} scope link" in routes
        client = plan.find_pod("client")
        pod_routes = _ip("-n", c.netns(client.key), "-4", "route", "show")
        assert "default via 169.254.1.1 dev eth0" in pod_routes
        assert f"{client.ip}/32" in _ip("-n", c.netns(client.key), "-4", "addr", "show", "dev", "eth0")
        out = subprocess.run(
            ["ip", "netns", "exec", ns, "cat", f"/proc/sys/net/ipv4/conf/{client.host_veth}/proxy_arp"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        assert out == "1"
    elif mode == "cloud-routes":
        router = plan.network.routers[0]
        table = _ip("-n", c.netns(router.key), "-4", "route", "show")
        for n in plan.nodes:
            assert f"{n.pod_cidr} via {n.host_ip} dev" in table  # the route controller's routes
        assert f"{plan.pod_subnet} via {plan.network.subnet_of(node.name).router_ip} dev eth0" in routes
    elif mode == "host-gw":
        for r in plan.routes:
            if r.node == node.name:
                assert f"{r.dst} via {r.via} dev eth0" in routes
    if underlay == "racks":
        assert "192.168.2.0/24 via 192.168.1.1 dev eth0" in routes


@pytest.mark.parametrize("underlay", UNDERLAYS)
@pytest.mark.parametrize("mode", MODES)
def test_all_pairs_matrix(no_leftovers, mode, underlay):
    plan = _plan(_topology(underlay, mode))
    broken = mode == "host-gw" and underlay == "racks"
    if broken:
        assert plan.warnings and plan.warnings[0].startswith("routing host-gw across racks")
    else:
        assert not [w for w in plan.warnings if "rack" in w]
    with EmulatedCluster(plan) as c:
        tag = c.tag
        if mode == "bgp":
            assert len(_birds(tag)) == len(plan.network.bgp)
        _check_kernel(c, mode, underlay)
        first = []
        if broken:
            # TCP first, alone: Linux answers "no route" with ICMP network unreachable, but
            # rate-limits those errors per sender (net.ipv4.route.error_burst/error_cost: 5 at
            # once, then 1 per second). Four SYNs per pod fit in the burst; later probes of the
            # same pods may see a timeout instead.
            first = _rows(
                c, ProbeGroup("tcp", Endpoints(pods=_echo()), Endpoints(pods=_echo()), protocols=("TCP",), timeout=1.0)
            )
        timeout = 0.5 if broken else 1.0
        rows = _rows(c, ProbeGroup("p2p", Endpoints(pods=_echo()), Endpoints(pods=_echo()), timeout=timeout))
        rows += _rows(c, ProbeGroup("n2p", Endpoints(nodes=()), Endpoints(pods=_echo()), timeout=timeout))
    assert _birds(tag) == []
    for r in first:
        cross = RACK[r["src_node"]] != RACK[r["dst_node"]]
        assert r["outcome"] == ("unreachable" if cross else "connected"), r
    assert sum(r["outcome"] == "unreachable" for r in first) == (32 if broken else 0)
    assert len({(r["src_name"], r["dst_name"]) for r in rows if r["src_kind"] == "pod"}) == 8 * 7
    assert {r["protocol"] for r in rows} == {"TCP", "UDP", "SCTP"}
    outcomes = Counter()
    for r in rows:
        cross = RACK[r["src_node"]] != RACK[r["dst_node"]]
        if broken and cross:
            outcomes[(r["protocol"], r["outcome"])] += 1
            assert r["outcome"] in ("unreachable", "timeout"), r
            if r["src_kind"] == "node":
                assert r["outcome"] == "unreachable", r  # the node itself has no route: ENETUNREACH
            continue
        assert r["outcome"] == "connected", r
        assert r["nat_free"] is True, r  # the server saw the sender's own address
        assert r["answered_by"] == f"{r['dst_namespace']}/{r['dst_name']}"
    if broken:
        assert sum(n for (proto, outcome), n in outcomes.items() if outcome == "unreachable") >= 4 * 4 * 3
    assert not os.path.exists(f"/run/testbed/{tag}")


def _ping(c, src_key: str, dst: str, size: int, df: bool) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            c.netns(src_key),
            "ping",
            "-n",
            "-c1",
            "-W1",
            "-M",
            "do" if df else "dont",
            "-s",
            str(size),
            dst,
        ],
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("mode,pod_mtu", [("vxlan", 1450), ("host-gw", 1500)])
def test_large_packets_show_the_pod_mtu(no_leftovers, mode, pod_mtu):
    """vxlan: 1450-byte packets cross with DF, 1451 do not leave the pod; without DF they fragment.

    Across racks (through the router) for vxlan; host-gw on one segment keeps the full 1500.
    """
    plan = _plan(_topology("racks" if mode == "vxlan" else "l2", mode))
    client, server = plan.find_pod("client"), plan.find_pod("server-rack2")
    assert client.node != server.node
    fits = pod_mtu - 28  # ICMP payload: MTU - IPv4 20 - ICMP 8
    with EmulatedCluster(plan) as c:
        ok = _ping(c, client.key, server.ip, fits, df=True)
        too_big = _ping(c, client.key, server.ip, fits + 1, df=True)
        fragmented = _ping(c, client.key, server.ip, fits + 1, df=False)
        big = _ping(c, client.key, server.ip, 4000, df=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert too_big.returncode != 0
    assert f"mtu={pod_mtu}" in too_big.stdout + too_big.stderr  # ping: local error: message too long, mtu=1450
    assert fragmented.returncode == 0, fragmented.stdout + fragmented.stderr
    assert big.returncode == 0, big.stdout + big.stderr


def _inline_topology(tmp_path, routing: str, racks: bool) -> str:
    text = open(_topology("racks" if racks else "l2", "bgp"), encoding="utf-8").read()
    start = text.index("routing: bgp")
    end = text.index("externalHosts:")
    path = tmp_path / "topology.yaml"
    path.write_text(text[:start] + routing + "\n" + text[end:], encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("topology", ["route-reflector", "top-of-rack"])
def test_bgp_reflected_on_one_segment(no_leftovers, tmp_path, topology):
    """Calico with a route reflector (the control plane), or every node peering with the
    top-of-rack router: workers have one session each, and still learn every pod CIDR."""
    plan = _plan(_inline_topology(tmp_path, f"routing: bgp\nbgp: {{topology: {topology}}}", racks=False))
    reflector = "kind-control-plane" if topology == "route-reflector" else "router"
    rr = [s for s in plan.network.bgp if s.name == reflector][0]
    assert {p.role for p in rr.peers} == {"client"} and len(rr.peers) == (3 if reflector != "router" else 4)
    worker = [s for s in plan.network.bgp if s.name == "kind-worker"][0]
    assert [(p.name, p.role) for p in worker.peers] == [(reflector, "reflector")]
    with EmulatedCluster(plan) as c:
        tag = c.tag
        learned = _ip("-n", c.netns("n1"), "-4", "route", "show", "proto", "bird")
        rows = _rows(c, ProbeGroup("p2p", Endpoints(pods=_echo()), Endpoints(pods=_echo()), protocols=("TCP",)))
    assert _birds(tag) == []
    for n in plan.nodes:
        if n.name != "kind-worker":
            # a reflected route keeps its first next hop: the node itself, not the reflector
            assert f"{n.pod_cidr} via {n.host_ip} dev eth0" in learned
    assert rows and all(r["outcome"] == "connected" and r["nat_free"] for r in rows)


def test_bgp_full_mesh_across_racks_is_dropped_by_the_router(no_leftovers, tmp_path):
    """Sessions cross the router and routes install, but the router knows no pod CIDR: cross-rack
    pod traffic is lost there (the plan warns), unlike with topology: top-of-rack."""
    plan = _plan(_inline_topology(tmp_path, "routing: bgp\nbgp: {topology: full-mesh}", racks=True))
    assert plan.warnings[0].startswith("routing bgp (full-mesh) across racks")
    with EmulatedCluster(plan) as c:
        learned = _ip("-n", c.netns("n1"), "-4", "route", "show", "proto", "bird")
        rows = _rows(
            c, ProbeGroup("p2p", Endpoints(pods=_echo()), Endpoints(pods=_echo()), protocols=("TCP",), timeout=0.5)
        )
    assert "10.244.2.0/24 via 192.168.1.1 dev eth0" in learned  # resolved recursively through the router
    for r in rows:
        # The router has no route to any pod CIDR: it drops the SYN and cannot even send the
        # ICMP error back to the pod.
        cross = RACK[r["src_node"]] != RACK[r["dst_node"]]
        assert r["outcome"] == ("timeout" if cross else "connected"), r


_CRASHING_OWNER = """
import sys, time
sys.path.insert(0, {root!r})
from testbed.emu.cluster import EmulatedCluster
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests
plan = plan_cluster(load_topology({topo!r}), load_manifests([{echo!r}]), seed=1)
cluster = EmulatedCluster(plan)
cluster.build()
print(cluster.tag, flush=True)
time.sleep(120)
"""


def test_stale_sweep_kills_the_bird_daemons_of_a_crashed_run(no_leftovers):
    """kill -9 of the owner leaves bird2 running in its namespaces; the stale sweep removes them."""
    from testbed.emu.cleanup import clean
    from testbed.emu.runner import Runner

    code = _CRASHING_OWNER.format(root=ROOT, topo=_topology("l2", "bgp"), echo=ECHO)
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        tag = (owner.stdout.readline() if owner.stdout else "").strip()
        assert len(tag) == 4, "the owner did not build its cluster"
        birds = _birds(tag)
        assert len(birds) == 4
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    report = clean(Runner(), only_stale=True)
    if swept_here(report, tag):  # else another instance's start-up sweep came first: all gone too
        assert set(birds) <= set(report.processes)
    deadline = time.monotonic() + 5
    while _birds(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _birds(tag) == []
    assert not [n for n in _ip("netns", "list").split() if n.startswith(f"tb-{tag}-")]


@pytest.mark.parametrize("mode", ["bgp", "vxlan"])
def test_pods_added_and_removed_on_a_live_cluster_are_routed(no_leftovers, mode):
    """Scaling up gives new pods their /32 route and proxy ARP (bgp) or their 1450 MTU (vxlan);
    scaling down removes them; the matrix stays complete."""
    from testbed.experiment.changes import Scale, apply_action

    cluster_spec = load_topology(_topology("racks", mode))
    manifests = load_manifests([ECHO])
    plan = plan_cluster(cluster_spec, manifests, seed=1)
    with EmulatedCluster(plan) as c:
        manifests, bigger = apply_action(Scale("Deployment", "echo-rack2", 6), cluster_spec, manifests, c.plan)
        assert c.apply(bigger)["added"] == 2
        rows = _rows(c, ProbeGroup("p2p", Endpoints(pods=_echo()), Endpoints(pods=_echo()), protocols=("TCP",)))
        assert len(rows) == 10 * 9
        assert all(r["outcome"] == "connected" and r["nat_free"] for r in rows), [
            r for r in rows if r["outcome"] != "connected"
        ][:3]
        manifests, smaller = apply_action(Scale("Deployment", "echo-rack2", 1), cluster_spec, manifests, c.plan)
        assert c.apply(smaller)["removed"] == 5
        gone = {p.ip for p in bigger.pods} - {p.ip for p in smaller.pods}
        node_routes = "".join(_ip("-n", c.netns(n.key), "-4", "route", "show") for n in c.plan.nodes)
        if mode == "bgp":
            assert not [ip for ip in gone if f"{ip} dev " in node_routes]  # the kernel dropped their /32s
        rows = _rows(c, ProbeGroup("p2p", Endpoints(pods=_echo()), Endpoints(pods=_echo()), protocols=("TCP",)))
        assert len(rows) == 5 * 4 and all(r["outcome"] == "connected" for r in rows)
