"""A real cluster from the quickstart manifests: every kind of communication, real packets.

Checks scenario 001's model end to end: container-to-container over localhost, pod-to-pod on one
node and across nodes, node-to-pod; each server must see the sender's own address (no NAT);
scenario 002's overlapping pod CIDRs fail the way the scenario says; teardown leaves nothing behind.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from testbed.emu.cluster import EmulatedCluster
from testbed.experiment.expand import PlannedProbe, expand
from testbed.experiment.model import Endpoints, PodSelection, ProbeGroup
from testbed.experiment.run import probe_rows
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from .conftest import ROOT

TOPO = os.path.join(ROOT, "topologies", "three-nodes.yaml")
APP = os.path.join(ROOT, "manifests", "quickstart-app.yaml")


@pytest.fixture
def quickstart_cluster(no_leftovers):
    plan = plan_cluster(load_topology(TOPO), load_manifests([APP]), seed=1)
    with EmulatedCluster(plan) as cluster:
        yield cluster


def _rows(cluster, group: ProbeGroup):
    planned: list[PlannedProbe] = expand(cluster.plan, group)
    assert planned, "the group expanded to no probe"
    return probe_rows(cluster, "test", "step", planned)


def test_every_kind_of_communication_is_nat_free(quickstart_cluster):
    c = quickstart_cluster
    groups = [
        ProbeGroup("c2c", Endpoints(pods=PodSelection(names=("two-containers",))), Endpoints(localhost=True)),
        ProbeGroup("p2p", Endpoints(pods=PodSelection()), Endpoints(pods=PodSelection())),
        ProbeGroup("n2p", Endpoints(nodes=()), Endpoints(pods=PodSelection())),
    ]
    rows = [r for g in groups for r in _rows(c, g)]
    kinds = {r["communication"] for r in rows}
    assert kinds == {
        "container-to-container",
        "pod-to-pod (same node)",
        "pod-to-pod (across nodes)",
        "node-to-pod (same node)",
        "node-to-pod (across nodes)",
    }
    assert {r["protocol"] for r in rows} == {"TCP", "UDP", "SCTP"}
    bad = [r for r in rows if r["outcome"] != "connected" or r["nat_free"] is not True]
    assert not bad, bad[:5]
    for r in rows:
        # the pod that answered is the one we addressed, and the container that owns the port
        assert r["answered_by"] == f"{r['dst_namespace']}/{r['dst_name']}"
        assert r["answered_container"] == r["container"]
    c2c = [r for r in rows if r["communication"] == "container-to-container"]
    assert {r["answered_container"] for r in c2c} == {"app", "sidecar"}
    assert all(r["seen_src_ip"] == "127.0.0.1" for r in c2c)
    # node-to-pod: a node reaches its own pods from cni0's gateway, others' from its HOST-IP
    for r in rows:
        if r["communication"] == "node-to-pod (across nodes)":
            assert r["seen_src_ip"] == c.plan.node(r["src_name"]).host_ip
        if r["communication"] == "node-to-pod (same node)":
            assert r["seen_src_ip"] == c.plan.node(r["src_name"]).gateway


def test_undeclared_port_is_refused_and_pod_ip_is_the_same_everywhere(quickstart_cluster):
    c = quickstart_cluster
    pod = c.plan.find_pod("two-containers")
    out = subprocess.run(
        ["ip", "-n", c.netns(pod.key), "-o", "-4", "addr", "show", "dev", "eth0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f" {pod.ip}/{pod.prefix} " in out  # the pod sees its own IP as others do (scenario 001)
    group = ProbeGroup(
        "closed",
        Endpoints(nodes=("kind-worker",)),
        Endpoints(pods=PodSelection(names=("two-containers",))),
        ports=(8080,),
        protocols=("UDP",),
    )
    rows = _rows(c, group)
    assert [r["outcome"] for r in rows] == ["refused"]  # 8080 is declared TCP only


def test_external_laptop_cannot_reach_pods_directly(quickstart_cluster):
    """The laptop on the node network has no route to pod CIDRs (scenario 002: use a NodePort)."""
    c = quickstart_cluster
    group = ProbeGroup(
        "laptop",
        Endpoints(hosts=("laptop",)),
        Endpoints(pods=PodSelection(names=("two-containers",))),
        ports=(8080,),
        timeout=0.5,
        expect=_blocked(),
    )
    rows = _rows(c, group)
    assert rows and all(r["outcome"] in ("timeout", "unreachable") for r in rows)


def _blocked():
    from testbed.experiment.model import Expectation

    return Expectation(outcome="blocked", source_ip="any")


def test_overlapping_pod_cidrs_break_cross_node_traffic(no_leftovers):
    """Scenario 002: two nodes both on 10.244.0.0/24 — a pod cannot reach the other node's pods."""
    topo = os.path.join(ROOT, "topologies", "overlapping-cidrs.yaml")
    plan = plan_cluster(load_topology(topo), load_manifests([APP]), seed=1)
    assert any("overlapping" in w for w in plan.warnings)
    w1 = [p for p in plan.pods if p.node == "kind-worker"]
    w2 = [p for p in plan.pods if p.node == "kind-worker2"]
    assert w1 and w2
    with EmulatedCluster(plan) as c:
        group = ProbeGroup(
            "clash",
            Endpoints(pods=PodSelection(names=(w1[0].name,))),
            Endpoints(pods=PodSelection(names=tuple(p.name for p in w2))),
            protocols=("TCP",),
            ports=(80, 8080),
            timeout=0.5,
        )
        rows = _rows(c, group)
    assert rows
    for r in rows:
        # Either nobody answers, or a pod on the sender's own node that happens to hold the same IP.
        assert r["outcome"] != "connected" or r["answered_by"] != f"{r['dst_namespace']}/{r['dst_name']}"


def test_failure_mid_build_tears_down_what_was_built(no_leftovers, monkeypatch, tmp_path):
    """An exception after the underlay and half the pods exist must leave nothing behind."""
    import threading

    from testbed.emu import pods as pods_mod

    # several pods on every node, so that a job which went on after the failure would show
    app = tmp_path / "app.yaml"
    with open(APP) as f:
        text = f.read()
    assert "  replicas: 3\n" in text
    app.write_text(text.replace("  replicas: 3\n", "  replicas: 12\n"))
    plan = plan_cluster(load_topology(TOPO), load_manifests([str(app)]), seed=1)
    real_configure, real_in_workers = pods_mod.configure_pod, pods_mod.in_workers
    stops: list[threading.Event] = []
    failed = threading.Event()
    calls: list[tuple[str, int, bool]] = []  # (pod, thread, started after the failure)
    lock = threading.Lock()

    def in_workers(jobs, stop):
        stops.append(stop)
        return real_in_workers(jobs, stop)

    def failing(netns, pod, **kw):
        with lock:
            after = failed.is_set()
            calls.append((pod.name, threading.get_ident(), after))
            if len(calls) == 2:
                failed.set()
                raise RuntimeError("injected failure while configuring the second pod")
        if after:
            # a pod that another node's job started once the failure happened: it is in flight,
            # and it ends only once the build knows of the failure, so the count below does not
            # hang on how threads were scheduled (stop is set at the failure, emu/pods.py)
            assert stops[0].wait(10), "the failure never set the build's stop flag"
        return real_configure(netns, pod, **kw)

    monkeypatch.setattr(pods_mod, "configure_pod", failing)
    monkeypatch.setattr(pods_mod, "in_workers", in_workers)
    with pytest.raises(RuntimeError, match="injected failure"):
        with EmulatedCluster(plan):
            raise AssertionError("the build should have failed")
    # the build stops at the failure: the nodes' jobs run on several threads (emu/pod_workers.py),
    # so another node's pod may have been in flight, but after it that job ends, no job starts,
    # and the failing job configures nothing more
    assert len(stops) == 1 and stops[0].is_set()
    failing_thread = calls[1][1]
    after = [thread for _, thread, late in calls if late]
    assert failing_thread not in after, calls
    assert all(after.count(thread) == 1 for thread in after), calls
    assert len(calls) < len(plan.pods), calls
