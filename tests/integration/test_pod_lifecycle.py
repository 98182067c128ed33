"""Pod lifecycle with real packets (issue 19), in both kube-proxy modes: a pod whose readiness
fails leaves its Service (and comes back), a terminating pod with a preStop sleep keeps serving
while its endpoint is serving+terminating, kube-proxy falls back to terminating endpoints when no
ready one is left, and the rolling update's race: failures without a preStop sleep, none with
it, each failure inside a window the timeline explains."""

from __future__ import annotations

import json
import os
import textwrap

import pandas as pd
import pytest

from testbed.emu.cluster import EmulatedCluster
from testbed.experiment.expand import expand
from testbed.experiment.load import load_experiment
from testbed.experiment.model import Endpoints, Expectation, PodSelection, ProbeGroup, ServiceTarget
from testbed.experiment.paced import PacedChanges
from testbed.experiment.run import probe_rows, run_experiment
from testbed.lifecycle.delays import Delays
from testbed.lifecycle.timers import Timers
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from .conftest import ROOT

APP = os.path.join(ROOT, "manifests", "rollout-race.yaml")
CLIENT = Endpoints(pods=PodSelection(names=("client",)))


def _send(cluster, name, target, repeat=30, expect=Expectation(outcome="any"), source=CLIENT):
    group = ProbeGroup(name, source, target, repeat=repeat, timeout=0.5, expect=expect)
    return probe_rows(cluster, "t", name, expand(cluster.plan, group))


def _service(cluster, name, repeat=30):
    return _send(cluster, name, Endpoints(service=ServiceTarget(name)), repeat)


def _pod(cluster, pod, repeat=3):
    return _send(cluster, "direct", Endpoints(pods=PodSelection(names=(pod.name,))), repeat)


@pytest.fixture(params=["three-nodes.yaml", "three-nodes-nftables.yaml"], ids=["iptables", "nftables"])
def topology(request):
    return os.path.join(ROOT, "topologies", request.param)


def test_readiness_and_termination_move_endpoints_as_upstream(topology, no_leftovers):
    manifests = load_manifests([APP])
    plan = plan_cluster(load_topology(topology), manifests, seed=19)
    with EmulatedCluster(plan) as cluster:
        paced = PacedChanges(cluster, manifests, Delays(timers=Timers(time_scale=0.05)))
        driver = paced.driver
        web = sorted(
            (p for p in cluster.plan.pods if p.owner.startswith("ReplicaSet/web-") and "prestop" not in p.name),
            key=lambda p: p.name,
        )
        assert {r["answered_by"] for r in _service(cluster, "web")} == {p.full_name for p in web}

        # 1. readiness fails: kubelet notices after failureThreshold ticks, the endpoint goes
        # not ready and not serving, every node stops sending to it; the pod itself still answers
        driver.set_probe([web[0].full_name], "readiness", False)
        driver.settle()
        ep = {e.pod: e for e in cluster.plan.services.endpoints("default", "web")}
        assert (ep[web[0].name].ready, ep[web[0].name].serving, ep[web[0].name].terminating) == (False, False, False)
        answered = {r["answered_by"] for r in _service(cluster, "web", 60)}
        assert answered == {web[1].full_name, web[2].full_name}
        assert {r["outcome"] for r in _pod(cluster, web[0])} == {"connected"}
        driver.set_probe([web[0].full_name], "readiness", True)
        driver.settle()
        assert {r["answered_by"] for r in _service(cluster, "web", 60)} == {p.full_name for p in web}

        # 2. termination with a preStop sleep (5 s): terminating, serving until the hook ends
        prestop = sorted((p for p in cluster.plan.pods if "prestop" in p.name), key=lambda p: p.name)
        driver.delete([prestop[0].full_name])
        driver.run_for(2.0)  # within the hook: every node has seen it terminating
        ep = {e.pod: e for e in cluster.plan.services.endpoints("default", "web-prestop")}
        assert (ep[prestop[0].name].ready, ep[prestop[0].name].serving, ep[prestop[0].name].terminating) == (
            False,
            True,
            True,
        )
        assert {r["outcome"] for r in _pod(cluster, prestop[0])} == {"connected"}  # still serving
        assert prestop[0].full_name not in {r["answered_by"] for r in _service(cluster, "web-prestop", 60)}

        # 3. no ready endpoint left, only serving-terminating ones: kube-proxy falls back to them
        driver.delete([p.full_name for p in prestop[1:]])
        driver.run_for(2.0)
        assert not cluster.plan.services.endpoints("default", "web-prestop")[0].ready
        rows = _service(cluster, "web-prestop", 60)
        assert {r["outcome"] for r in rows} == {"connected"}
        assert {r["answered_by"] for r in rows} <= {p.full_name for p in prestop}
        # externalTrafficPolicy Local: a node with only serving-terminating local endpoints uses them
        node = prestop[1].node
        local = {p.full_name for p in prestop if p.node == node}
        rows = _send(
            cluster,
            "local",
            Endpoints(service=ServiceTarget("web-prestop-local", via="nodePort", nodes=(node,))),
            30,
            source=Endpoints(hosts=("laptop",)),
        )
        assert {r["outcome"] for r in rows} == {"connected"} and {r["answered_by"] for r in rows} <= local
        driver.settle()  # they exit and are removed: the Service has no endpoint, kube-proxy rejects
        assert not cluster.plan.services.endpoints("default", "web-prestop")
        assert {r["outcome"] for r in _service(cluster, "web-prestop", 5)} == {"refused"}
        kinds = [e["event"] for e in driver.timeline if e["pod"] == prestop[0].full_name]
        assert kinds == ["terminating", "sigterm", "exited", "not-ready", "removed"]


RACE = """
apiVersion: testbed/v1alpha1
kind: Experiment
metadata: {name: race}
spec:
  topology: %(root)s/topologies/three-nodes.yaml
  manifests: [%(root)s/manifests/rollout-race.yaml]
  seed: 19
  lifecycle: {timeScale: 1.0}
  steps:
    - name: no-prestop
      actions: [{rollout: {deployment: web, image: "nginx:1.28"}}]
      during:
        interval: 0.02
        probes: [{name: c, from: {pods: {names: [client]}}, to: {service: {name: web}}, repeat: 6, timeout: 0.5, expect: {outcome: any}}]
    - name: prestop
      actions: [{rollout: {deployment: web-prestop, image: "nginx:1.28"}}]
      during:
        interval: 0.02
        probes: [{name: c, from: {pods: {names: [client]}}, to: {service: {name: web-prestop}}, repeat: 6, timeout: 0.5}]
"""


def test_the_rollout_race_fails_requests_without_pre_stop_and_none_with_it(tmp_path, no_leftovers):
    path = tmp_path / "race.yaml"
    path.write_text(textwrap.dedent(RACE % {"root": ROOT}))
    run_dir, passed = run_experiment(load_experiment(str(path)), str(tmp_path), progress=lambda _m: None)
    meta = json.load(open(os.path.join(run_dir, "run.json")))
    during = {d["step"]: d for d in meta["during"]}
    # Without preStop each of the 3 old pods exits at once while the nodes' kube-proxies still
    # send it ~1/3 of new connections for 0.15-0.85 s (watch delays, minSyncPeriod): about 30
    # failures are expected at 300 probes/s; 5 is far below chance (Poisson, p < 1e-7).
    assert during["no-prestop"]["failed"] >= 5, during
    assert during["prestop"]["failed"] == 0, during  # the 5 s sleep outlasts the propagation
    assert passed  # the preStop step expected every probe to connect, and they did
    rows = pd.read_parquet(os.path.join(run_dir, "probes.parquet"))
    failed = rows[(rows["step"] == "no-prestop:during") & (rows["outcome"] != "connected")]
    timeline = [e for e in meta["lifecycle"]["timeline"] if e["step"] == "no-prestop"]
    exits = [e["wall"] for e in timeline if e["event"] == "exited"]
    syncs = [e["wall"] for e in timeline if e["event"] == "proxy-sync"]
    assert len(exits) == 3
    # every failure falls between an old pod's exit and the last kube-proxy sync after it
    windows = [(x, max(s for s in syncs if s >= x)) for x in exits]
    slack = 0.15  # a probe round's timestamp is when the batch was sent; the kernel had each change a few ms apart
    outside = [ts for ts in failed["timestamp"] if not any(lo - slack <= ts <= hi + slack for lo, hi in windows)]
    # One clean-checkout run in several saw a single failure 0.49 s after the last sync: a new
    # connection that reuses an earlier failed probe's source port meets conntrack's entry for it,
    # still DNATed to the exited pod (kube-proxy flushes conntrack for UDP only, as upstream). The
    # records do not keep source ports yet, so that case is bounded rather than identified.
    assert len(outside) <= max(1, len(failed) // 10), (outside, windows, len(failed))


def test_the_shell_plays_a_failing_probe_then_a_graceful_delete(no_leftovers):
    from testbed.experiment.changes import DeletePods, SetProbe
    from testbed.shell.live import connect

    spec, manifests = load_topology(os.path.join(ROOT, "topologies", "three-nodes.yaml")), load_manifests([APP])
    with EmulatedCluster(plan_cluster(spec, manifests, seed=19)) as cluster:
        live = connect(cluster, spec, manifests)
        web = sorted(
            (p for p in cluster.plan.pods if p.owner.startswith("ReplicaSet/web-") and "prestop" not in p.name),
            key=lambda p: p.name,
        )
        plan, _ = live.change(SetProbe(PodSelection(names=(web[0].name,)), "readiness", False))
        assert plan.conditions is not None and web[0].full_name in plan.conditions.not_ready
        assert web[0].full_name not in {r["answered_by"] for r in _service(cluster, "web", 60)}
        plan, _ = live.change(DeletePods(PodSelection(names=(web[1].name,))))  # graceful, then replaced
        names = {p.full_name for p in plan.pods}
        assert web[1].full_name not in names and len([p for p in plan.pods if p.owner == web[0].owner]) == 3
        answered = {r["answered_by"] for r in _service(cluster, "web", 60)}
        assert web[1].full_name not in answered and web[0].full_name not in answered and len(answered) == 2
