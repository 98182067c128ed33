"""The agent under a small open-files limit (issue 18): at 9,902 pods one agent held 13,334
sockets under a 20,000 limit and a third of the pods answered nothing, silently. Here the limit
is forced down (TESTBED_AGENT_MAX_FILES) so that a dozen pods need several agents: every pod
must answer real probes on every port, before and after a scale, and a limit no pod fits
under is a one-line error with nothing left behind."""

from __future__ import annotations

import os
import textwrap

import pytest

from testbed.emu.agent_proc import MAX_FILES_ENV
from testbed.emu.cluster import EmulatedCluster
from testbed.plan.agentshards import AgentLimitError
from testbed.plan.build import plan_cluster, replan
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests
from testbed.traffic.prober import Probe, run_probes

from .conftest import ROOT, run_up

APP = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: REPLICAS
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: nginx
          image: nginx
          ports: [{containerPort: 80}, {containerPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: node-metrics}
spec:
  hostNetwork: true
  nodeName: kind-worker
  containers:
    - {name: exporter, image: prom/node-exporter, ports: [{containerPort: 9100}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: kind-worker
  containers: [{name: c, image: busybox}]
"""


def _manifests(tmp_path, replicas: int):
    path = tmp_path / f"app-{replicas}.yaml"
    path.write_text(textwrap.dedent(APP).replace("REPLICAS", str(replicas)))
    return load_manifests([str(path)])


def _every_port_answers(cluster, at_least: int) -> None:
    client = cluster.plan.find_pod("client")
    targets = [(p, q.port) for p in cluster.plan.pods if not p.served_by for q in p.ports if q.protocol == "TCP"]
    assert len(targets) >= at_least
    src = cluster.pod_netns_path(client)
    results = run_probes([Probe(i, src, p.ip, port, "TCP") for i, (p, port) in enumerate(targets)])
    unserved = [
        f"{p.full_name}:{port} {r.outcome}" for (p, port), r in zip(targets, results) if r.outcome != "connected"
    ]
    assert not unserved, unserved
    assert [r.reply["pod"] for r in results] == [p.name for p, _ in targets]


@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setenv(MAX_FILES_ENV, "40")  # room for 19 sockets an agent: 6 pods of 2 ports


def test_every_pod_served_by_several_agents_and_after_a_scale(tmp_path, small_limit, no_leftovers):
    topology = load_topology(os.path.join(ROOT, "topologies", "three-nodes.yaml"))
    plan = plan_cluster(topology, _manifests(tmp_path, 12), seed=18)
    with EmulatedCluster(plan) as cluster:
        agent = cluster.agent
        running = [d for d in agent.daemons if d.alive()]
        assert len(running) >= 3, [len(s.pods) for s in agent.shards]
        assert {p.key for s in agent.shards for p in s.pods} == {p.key for p in plan.pods}
        _every_port_answers(cluster, 25)
        before = {p.key: s.index for s in agent.shards for p in s.pods}

        cluster.apply(replan(topology, _manifests(tmp_path, 20), seed=18, prev=cluster.plan))
        after = {p.key: s.index for s in agent.shards for p in s.pods}
        assert all(after[k] == v for k, v in before.items() if k in after)  # nobody moved
        assert len([d for d in agent.daemons if d.alive()]) > len(running)
        _every_port_answers(cluster, 41)

        cluster.apply(replan(topology, _manifests(tmp_path, 4), seed=18, prev=cluster.plan))
        _every_port_answers(cluster, 9)
        assert {p.key for s in agent.shards for p in s.pods} == {p.key for p in cluster.plan.pods}


def test_a_limit_no_pod_fits_under_is_one_line(tmp_path, monkeypatch, no_leftovers, testbed_cmd):
    monkeypatch.setenv(MAX_FILES_ENV, "18")
    topology = load_topology(os.path.join(ROOT, "topologies", "three-nodes.yaml"))
    with pytest.raises(AgentLimitError, match="open-files limit of 18"):
        with EmulatedCluster(plan_cluster(topology, _manifests(tmp_path, 2), seed=18)):
            pass
    argv, env = testbed_cmd
    script = tmp_path / "script.txt"
    script.write_text("get pods\n")
    out = run_up((argv, dict(env, **{MAX_FILES_ENV: "18"})), ["-f", str(tmp_path / "app-2.yaml")], str(script))
    assert out.returncode == 1, out
    assert len(out.stderr.strip().splitlines()) == 1 and "open-files limit of 18" in out.stderr, out.stderr


def test_a_socket_the_agent_cannot_open_fails_the_build_naming_the_pod(
    tmp_path, small_limit, monkeypatch, no_leftovers
):
    """Were the plan wrong (every pod in one agent under 40 files), the agent's EMFILE is an
    error naming a pod, its port and the cause, not a READY with pods left unserved."""
    from testbed.emu import agent_proc

    monkeypatch.setattr(agent_proc, "plan_shards", lambda groups, limit, previous: {g.key: 0 for g in groups})
    topology = load_topology(os.path.join(ROOT, "topologies", "three-nodes.yaml"))
    with pytest.raises(agent_proc.AgentError) as err:
        with EmulatedCluster(plan_cluster(topology, _manifests(tmp_path, 12), seed=18)):
            pass
    text = str(err.value)
    assert "\n" not in text and "could not serve every pod" in text and "Too many open files" in text, text
    assert "pod=default/" in text and "more" in text, text


def test_dual_stack_pods_are_planned_with_their_ipv6_sockets(tmp_path, small_limit, no_leftovers):
    """A dual-stack pod holds an IPv6 listener beside each IPv4 one and a raw IPv6 SCTP socket:
    counted as IPv4 only, the shards were planned twice too full and the agent hit EMFILE."""
    topology = load_topology(os.path.join(ROOT, "topologies", "dual-stack.yaml"))
    plan = plan_cluster(topology, _manifests(tmp_path, 12), seed=18)
    assert plan.dual is not None
    with EmulatedCluster(plan) as cluster:
        agent = cluster.agent
        assert len([d for d in agent.daemons if d.alive()]) >= 5, [len(s.pods) for s in agent.shards]
        _every_port_answers(cluster, 25)
        dual = cluster.plan.dual
        client = cluster.plan.find_pod("client")
        targets = [(p, q.port) for p in cluster.plan.pods if p.key in dual.pods and not p.served_by for q in p.ports]
        assert len(targets) >= 24
        src = cluster.pod_netns_path(client)
        results = run_probes([Probe(i, src, dual.pods[p.key], port, "TCP") for i, (p, port) in enumerate(targets)])
        assert [r.outcome for r in results] == ["connected"] * len(targets)
        assert [r.reply["pod"] for r in results] == [p.name for p, _ in targets]
