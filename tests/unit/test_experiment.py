"""Experiment files and probe expansion, without root."""

from __future__ import annotations

import os

import pytest

from testbed.errors import SpecError
from testbed.experiment.expand import expand
from testbed.experiment.load import load_experiment
from testbed.experiment.records import make_row, summarize
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUICKSTART = os.path.join(ROOT, "experiments", "quickstart.yaml")


def _plan(exp):
    return plan_cluster(load_topology(exp.topology), load_manifests(exp.manifests), seed=exp.seed)


def test_quickstart_expands_into_every_kind_of_communication():
    exp = load_experiment(QUICKSTART)
    assert exp.topology == os.path.join(ROOT, "topologies", "three-nodes.yaml")
    plan = _plan(exp)
    probes = [p for g in exp.steps[0].probes for p in expand(plan, g)]
    by_group = {}
    for p in probes:
        by_group.setdefault(p.group, []).append(p)
    # two-containers: 2 TCP ports over localhost
    assert sorted((p.port, p.container) for p in by_group["container-to-container"]) == [
        (8080, "app"),
        (9090, "sidecar"),
    ]
    assert all(
        p.dst_ip == "127.0.0.1" and p.expect_sources == ("127.0.0.1",) for p in by_group["container-to-container"]
    )
    # pod-to-pod: 4 pods; each web pod has 3 ports, two-containers 2; never a pod to itself
    assert len(by_group["pod-to-pod"]) == 3 * (3 * 2 + 2) + 1 * (3 * 3)
    assert all(p.src.key != p.dst.key for p in by_group["pod-to-pod"])
    assert all(p.expect_sources == (p.src.ip,) for p in by_group["pod-to-pod"])
    # node-to-pod: 3 nodes x 11 ports; own pods seen from cni0's gateway, others from the HOST-IP
    n2p = by_group["node-to-pod"]
    assert len(n2p) == 3 * 11
    for p in n2p:
        node = plan.node(p.src.name)
        assert p.expect_sources == ((node.gateway,) if p.dst.node == node.name else (node.host_ip,))
    assert {p.communication for p in probes} == {
        "container-to-container",
        "pod-to-pod (same node)",
        "pod-to-pod (across nodes)",
        "node-to-pod (same node)",
        "node-to-pod (across nodes)",
    }


def test_rows_judge_outcome_and_nat():
    exp = load_experiment(QUICKSTART)
    plan = _plan(exp)
    probe = [p for p in expand(plan, exp.steps[0].probes[1]) if p.protocol == "TCP"][0]
    good = make_row(
        "r",
        "s",
        0.0,
        probe,
        "connected",
        0.3,
        {
            "pod": probe.dst.name,
            "namespace": "default",
            "container": probe.container,
            "peer_ip": probe.src.ip,
            "peer_port": 40000,
        },
        None,
    )
    natted = make_row(
        "r",
        "s",
        0.0,
        probe,
        "connected",
        0.3,
        {"pod": probe.dst.name, "namespace": "default", "peer_ip": "192.168.1.3", "peer_port": 1},
        None,
    )
    lost = make_row("r", "s", 0.0, probe, "timeout", None, None, None)
    assert good["outcome_ok"] and good["nat_free"] is True and good["answered_by"] == f"default/{probe.dst.name}"
    assert natted["outcome_ok"] and natted["nat_free"] is False
    assert not lost["outcome_ok"] and lost["nat_free"] is None and lost["seen_src_ip"] == ""
    table = summarize([good, natted, lost])
    assert table == [
        {
            "step": "s",
            "communication": probe.communication,
            "protocol": "TCP",
            "probes": 3,
            "connected": 2,
            "as_expected": 2,
            "nat_checked": 2,
            "nat_free": 1,
        }
    ]


@pytest.mark.parametrize(
    "body, message",
    [
        (
            "spec: {topology: t.yaml, steps: [{name: a, probes: [{name: g, from: {pods: all}}]}]}",
            "to: required field is missing",
        ),
        (
            "spec: {topology: t.yaml, steps: [{name: a, probes: [{name: g, from: {pods: all, nodes: all}, to: {pods: all}}]}]}",
            "give exactly one of pods, nodes, hosts",
        ),
        (
            "spec: {topology: t.yaml, steps: [{name: a, probes: [{name: g, from: {nodes: all}, to: {localhost: true}}]}]}",
            "needs `from: {pods: ...}`",
        ),
        (
            "spec: {topology: t.yaml, steps: [{name: a, probes: [{name: g, from: {pods: all}, to: {pods: all}, timeout: 99}]}]}",
            "timeout: expected a number of seconds",
        ),
        (
            "spec: {topology: t.yaml, steps: [{name: a, probes: [{name: g, from: {pods: all}, to: {pods: all}, protocols: [ICMP]}]}]}",
            "must be one of TCP, UDP, SCTP",
        ),
        ("spec: {topology: t.yaml, stepz: []}", "unknown field 'stepz'"),
    ],
)
def test_bad_experiments_name_the_field(tmp_path, body, message):
    path = tmp_path / "exp.yaml"
    path.write_text("apiVersion: testbed/v1alpha1\nkind: Experiment\nmetadata: {name: x}\n" + body + "\n")
    with pytest.raises(SpecError) as err:
        load_experiment(str(path))
    assert message in str(err.value) and str(path) in str(err.value)
