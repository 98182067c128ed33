"""Faults on real packets (issue 16): each fault action injected and undone on a live cluster.

Loss is measured against its binomial bounds; a partition cuts exactly the cross-rack flows;
a node failure takes its pods' endpoints out of kube-proxy's rules, evicts and replaces them;
rate, MTU, a killed or deleted pod, a stopped bird; and a run killed during faults leaves
nothing behind once `testbed clean --stale` ran. Every test asserts teardown left nothing.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import pytest

from testbed.emu.cluster import EmulatedCluster
from testbed.emu.faults import FaultError
from testbed.experiment.expand import expand
from testbed.experiment.model import Endpoints, PodSelection, ProbeGroup, ServiceTarget
from testbed.experiment.run import probe_rows
from testbed.faults.model import Fault, Recover, Timers
from testbed.plan.build import plan_cluster
from testbed.spec.selectors import LabelSelector
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from .conftest import ROOT, swept_here

DEMO = os.path.join(ROOT, "manifests", "services-demo.yaml")
ECHO = os.path.join(ROOT, "manifests", "routing-echo.yaml")
THREE = os.path.join(ROOT, "topologies", "three-nodes.yaml")
FAST = Timers(time_scale=0.005)  # 40 s -> 0.2 s, 300 s -> 1.5 s


def _cluster(topology: str, manifests: str, seed: int = 4):
    spec, man = load_topology(topology), load_manifests([manifests])
    return spec, man, plan_cluster(spec, man, seed=seed)


def _sh(cluster, key: str, command: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", cluster.netns(key), "sh", "-c", command], capture_output=True, text=True, timeout=60
    ).stdout


def _client_to_web(cluster, repeat: int = 30):
    group = ProbeGroup(
        "web", Endpoints(pods=PodSelection(names=("client",))), Endpoints(service=ServiceTarget("web")), repeat=repeat
    )
    return probe_rows(cluster, "test", "step", expand(cluster.plan, group))


def _received(cluster, src_key: str, dst_ip: str, count: int) -> int:
    out = _sh(cluster, src_key, f"ping -n -q -c {count} -i 0.002 -W 1 {dst_ip}")
    for line in out.splitlines():
        if "received" in line:
            return int(line.split(",")[1].split()[0])
    raise AssertionError(f"no ping summary: {out!r}")


def test_loss_is_within_its_binomial_bounds_and_recovers(no_leftovers):
    spec, man, plan = _cluster(THREE, DEMO)
    with EmulatedCluster(plan) as cluster:
        worker, worker2 = cluster.plan.node("kind-worker"), cluster.plan.node("kind-worker2")
        cluster.faults.inject(Fault("loss", node="kind-worker2", percent=20), FAST, spec, man)
        assert "tbfault_loss_eth0" in _sh(cluster, worker2.key, "nft list tables")
        n = 600
        got = _received(cluster, worker.key, worker2.host_ip, n)
        # a ping and its reply each cross kind-worker2's link once: 0.8 * 0.8 of them come back
        p = 0.8 * 0.8
        sigma = math.sqrt(n * p * (1 - p))
        assert abs(got - n * p) <= 5 * sigma, f"{got}/{n} replies, expected {n * p:.0f} ± {5 * sigma:.0f}"
        cluster.faults.recover(Recover(Fault("loss", node="kind-worker2")), FAST, spec, man)
        assert "tbfault" not in _sh(cluster, worker2.key, "nft list tables")
        assert _received(cluster, worker.key, worker2.host_ip, 100) == 100


def test_delay_is_refused_naming_the_missing_module(no_leftovers):
    spec, man, plan = _cluster(THREE, DEMO)
    with EmulatedCluster(plan) as cluster:
        with pytest.raises(FaultError, match="sch_netem"):
            cluster.faults.inject(Fault("delay", node="kind-worker"), FAST, spec, man)
        assert cluster.faults.state.active == {}


def _echo_matrix(cluster) -> dict[tuple[str, str, bool], bool]:
    """(source rack, destination rack, same node?) of every echo pod pair -> all connected?"""
    echo = PodSelection(selector=LabelSelector.of({"app": "echo"}))
    group = ProbeGroup("all", Endpoints(pods=echo), Endpoints(pods=echo), ports=("http",), timeout=0.5)
    rack = {n.name: cluster.plan.network.subnet_of(n.name).name for n in cluster.plan.nodes}
    out: dict[tuple[str, str, bool], bool] = {}
    for row in probe_rows(cluster, "test", "step", expand(cluster.plan, group)):
        key = (rack[row["src_node"]], rack[row["dst_node"]], row["src_node"] == row["dst_node"])
        out[key] = out.get(key, True) and row["outcome"] == "connected"
    return out


@pytest.mark.parametrize("mode", ["cloud-routes", "vxlan"])
def test_partition_cuts_exactly_the_flows_through_the_router(no_leftovers, mode):
    """vxlan: exactly the cross-rack flows. cloud-routes: those, and also rack2's pod traffic
    between its own nodes, which its routes send through the router, as a cloud VPC does."""
    spec, man, plan = _cluster(os.path.join(ROOT, "topologies", f"routing-racks-{mode}.yaml"), ECHO, seed=1)
    with EmulatedCluster(plan) as cluster:
        before = _echo_matrix(cluster)
        assert set(before.values()) == {True} and len(before) == 6
        cluster.faults.inject(Fault("partition", rack="rack2"), FAST, spec, man)
        cut = {k for k, ok in _echo_matrix(cluster).items() if not ok}
        expected = {("rack1", "rack2", False), ("rack2", "rack1", False)}
        if mode == "cloud-routes":
            expected.add(("rack2", "rack2", False))
        assert cut == expected
        cluster.faults.recover(Recover(None), FAST, spec, man)
        # recovery is not instant: vxlan relearns its neighbours after the link is up (measured
        # about 1 s in fault-partition-vxlan), so the flows must all come back within a bound
        deadline = time.monotonic() + 10
        while set(after := _echo_matrix(cluster).values()) != {True} and time.monotonic() < deadline:
            time.sleep(0.2)
        assert set(after) == {True}


def _endpoint_ips(cluster, node_key: str) -> str:
    return _sh(cluster, node_key, "iptables-save -t nat | grep -- '-j DNAT'")


@pytest.mark.parametrize("evict", [False, True])
def test_node_down_removes_its_endpoints_then_evicts_and_replaces(no_leftovers, evict):
    spec, man, plan = _cluster(THREE, DEMO)
    with EmulatedCluster(plan) as cluster:
        worker = cluster.plan.node("kind-worker")
        doomed = {p.ip: p.name for p in cluster.plan.pods_on("kind-worker2") if p.name.startswith("web-")}
        assert len(doomed) == 2 and all(ip in _endpoint_ips(cluster, worker.key) for ip in doomed)
        spec2, man2 = cluster.faults.inject(Fault("node-down", node="kind-worker2", evict=evict), FAST, spec, man)
        events = [e["event"] for e in cluster.faults.events]
        assert events == ["inject", "not-ready"] + (["evicted"] if evict else [])
        rules = _endpoint_ips(cluster, worker.key)
        assert not any(ip in rules for ip in doomed), "endpoints of the down node still in kube-proxy's rules"
        rows = _client_to_web(cluster)
        assert all(r["outcome"] == "connected" for r in rows)
        answered = {r["answered_by"].split("/")[1] for r in rows}
        assert not answered & set(doomed.values())
        webs = [p for p in cluster.plan.pods if p.name.startswith("web-")]
        if evict:
            assert len(webs) == 3 and all(p.node == "kind-worker" for p in webs)
            assert any(t.key == "node.kubernetes.io/unreachable" for n in spec2.nodes for t in n.taints)
        else:
            assert {p.name for p in cluster.plan.pods_on("kind-worker2")} >= set(doomed.values())
        cluster.faults.recover(Recover(Fault("node-down", node="kind-worker2")), FAST, spec2, man2)
        rules = _endpoint_ips(cluster, worker.key)
        assert all(ip in rules for ip in doomed) != evict  # not evicted: its endpoints are back
        assert all(r["outcome"] == "connected" for r in _client_to_web(cluster))


def test_rate_limits_throughput_both_ways_until_recovered(no_leftovers):
    from testbed.traffic.throughput import measure

    spec, man, plan = _cluster(THREE, DEMO)
    with EmulatedCluster(plan) as cluster:
        client = cluster.plan.find_pod("client")
        server = next(p for p in cluster.plan.pods_on("kind-worker2") if p.name.startswith("web-"))

        def mbps() -> float:
            m = measure(cluster.netns(client.key), cluster.netns(server.key), server.ip, 1.0)
            assert m.outcome == "connected", m.error
            return m.mbps

        cluster.faults.inject(Fault("rate", node="kind-worker2", rate="5mbit"), FAST, spec, man)
        limited = mbps()
        assert 1.0 < limited < 6.5, limited
        cluster.faults.recover(Recover(Fault("rate", node="kind-worker2")), FAST, spec, man)
        assert mbps() > 50


def test_killed_pod_refuses_and_deleted_pod_is_replaced(no_leftovers):
    spec, man, plan = _cluster(THREE, DEMO)
    with EmulatedCluster(plan) as cluster:
        web = min((p for p in cluster.plan.pods if p.name.startswith("web-")), key=lambda p: p.name)
        group = ProbeGroup(
            "one",
            Endpoints(pods=PodSelection(names=("client",))),
            Endpoints(pods=PodSelection(names=(web.name,))),
            timeout=0.5,
        )
        cluster.faults.inject(Fault("kill-pod", pod=web.name), FAST, spec, man)
        assert {r["outcome"] for r in probe_rows(cluster, "t", "s", expand(cluster.plan, group))} == {"refused"}
        cluster.faults.recover(Recover(Fault("kill-pod", pod=web.name)), FAST, spec, man)
        assert {r["outcome"] for r in probe_rows(cluster, "t", "s", expand(cluster.plan, group))} == {"connected"}
        _, man2 = cluster.faults.inject(Fault("delete-pod", pod=web.name), FAST, spec, man)
        names = {p.name for p in cluster.plan.pods if p.name.startswith("web-")}
        assert web.name not in names and len(names) == 3
        assert not os.path.exists(cluster.netns_path(web.key))
        assert [e["event"] for e in cluster.faults.events[-3:]] == ["inject", "pod-gone", "replaced"]
        assert all(r["outcome"] == "connected" for r in _client_to_web(cluster))
        with pytest.raises(FaultError, match="no undo"):
            cluster.faults.recover(Recover(Fault("delete-pod", pod=web.name)), FAST, spec, man2)


def test_mtu_mismatch_is_a_black_hole_for_full_size_overlay_packets(no_leftovers):
    spec, man, plan = _cluster(os.path.join(ROOT, "topologies", "routing-l2-vxlan.yaml"), ECHO, seed=1)
    with EmulatedCluster(plan) as cluster:
        src = next(p for p in cluster.plan.pods_on("kind-worker") if p.name.startswith("echo"))
        dst = next(p for p in cluster.plan.pods_on("kind-worker2") if p.name.startswith("echo"))

        def ping(size: int) -> int:
            return _ping_size(cluster, src.key, dst.ip, size)

        full = 1450 - 28  # the pods' MTU (1450 under vxlan) minus IP and ICMP headers
        assert ping(full) == 3
        cluster.faults.inject(Fault("mtu", node="kind-worker2"), FAST, spec, man)  # the path: 1400
        assert ping(1000) == 3  # small packets pass
        assert ping(full) == 0  # full-size ones vanish: no ICMP error comes back
        cluster.faults.recover(Recover(Fault("mtu", node="kind-worker2")), FAST, spec, man)
        assert ping(full) == 3


def _ping_size(cluster, key: str, ip: str, size: int) -> int:
    out = _sh(cluster, key, f"ping -n -q -c 3 -i 0.05 -W 1 -M do -s {size} {ip}")
    line = next((x for x in out.splitlines() if "received" in x), "")
    return int(line.split(",")[1].split()[0]) if line else 0


def _bgp_topology(tmp_path, hold: int = 3) -> str:
    with open(os.path.join(ROOT, "topologies", "routing-l2-bgp.yaml"), encoding="utf-8") as handle:
        text = handle.read()
    assert "bgp: {" in text
    path = tmp_path / "bgp.yaml"
    path.write_text(text.replace("bgp: {", f"bgp: {{holdTime: {hold}, ", 1))
    return str(path)


def _routes(cluster, key: str) -> str:
    return _sh(cluster, key, "ip -4 route show proto bird")


def test_bird_down_withdraws_routes_after_the_hold_time(no_leftovers, tmp_path):
    spec, man, plan = _cluster(_bgp_topology(tmp_path), ECHO, seed=1)
    with EmulatedCluster(plan) as cluster:
        worker2, worker = cluster.plan.node("kind-worker2"), cluster.plan.node("kind-worker")
        assert worker2.pod_cidr in _routes(cluster, worker.key)
        start = time.monotonic()
        cluster.faults.inject(Fault("bird-down", node="kind-worker2"), FAST, spec, man)
        waited = time.monotonic() - start
        assert [e["event"] for e in cluster.faults.events] == ["inject", "withdrawn"]
        assert 2.0 <= waited <= 10.0, waited  # the 3 s hold time, give or take a keepalive
        assert worker2.pod_cidr not in _routes(cluster, worker.key)
        cluster.faults.recover(Recover(None), FAST, spec, man)
        deadline = time.monotonic() + 20
        while worker2.pod_cidr not in _routes(cluster, worker.key) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert worker2.pod_cidr in _routes(cluster, worker.key)


_FAULTY_OWNER = """
import sys, time
sys.path.insert(0, {root!r})
from testbed.emu.cluster import EmulatedCluster
from testbed.faults.model import Fault, Timers
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests
spec, man = load_topology({topo!r}), load_manifests([{echo!r}])
cluster = EmulatedCluster(plan_cluster(spec, man, seed=1))
cluster.build()
t = Timers(time_scale=0.005)
cluster.faults.inject(Fault("loss", node="kind-worker", percent=50), t, spec, man)
cluster.faults.inject(Fault("rate", node="kind-worker2", rate="1mbit"), t, spec, man)
cluster.faults.inject(Fault("link-down", node="kind-worker3"), t, spec, man)
cluster.faults.inject(Fault("kube-proxy-down", node="kind-worker"), t, spec, man)
cluster.faults.inject(Fault("kill-pod", pod="client"), t, spec, man)
daemon = cluster.faults._bird(cluster.controller(__import__("testbed.emu.controllers").emu.controllers.Routing), "kind-control-plane")
daemon.proc.send_signal(__import__("signal").SIGSTOP)  # bird-down without its wait for the hold time
print(cluster.tag, daemon.pid, flush=True)
time.sleep(120)
"""


def test_a_run_killed_during_faults_leaves_nothing_after_a_stale_clean(no_leftovers):
    """kill -9 while faults are active (a frozen bird among them): `clean --stale` removes it all."""
    from testbed.emu.cleanup import clean
    from testbed.emu.runner import Runner

    code = _FAULTY_OWNER.format(root=ROOT, topo=os.path.join(ROOT, "topologies", "routing-l2-bgp.yaml"), echo=ECHO)
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    state = ""
    try:
        words = (owner.stdout.readline() if owner.stdout else "").split()
        assert len(words) == 2 and len(words[0]) == 4, "the owner did not build its cluster and inject its faults"
        tag, frozen = words[0], int(words[1])
        deadline = time.monotonic() + 5
        while state != "T" and time.monotonic() < deadline:  # SIGSTOP is delivered asynchronously
            with open(f"/proc/{frozen}/stat", encoding="ascii") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
            time.sleep(0.02)
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        report = clean(Runner(), only_stale=True)
    assert state == "T", "bird was not stopped"
    if swept_here(report, tag):  # else another instance's start-up sweep came first: all gone too
        assert frozen in report.processes
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    assert not [n for n in netns if n.startswith(f"tb-{tag}-")]


def test_link_down_cuts_the_node_and_nothing_else_until_it_is_up(no_leftovers):
    spec, man, plan = _cluster(THREE, DEMO)
    with EmulatedCluster(plan) as cluster:
        client = cluster.plan.find_pod("client")
        cp, worker2 = cluster.plan.node("kind-control-plane"), cluster.plan.node("kind-worker2")
        cluster.faults.inject(Fault("link-down", node="kind-worker2"), FAST, spec, man)
        assert "NO-CARRIER" in _sh(cluster, worker2.key, "ip link show eth0")
        assert _received(cluster, client.key, worker2.host_ip, 3) == 0
        assert _received(cluster, client.key, cp.host_ip, 3) == 3
        cluster.faults.recover(Recover(Fault("link-down", node="kind-worker2")), FAST, spec, man)
        assert _received(cluster, client.key, worker2.host_ip, 3) == 3
