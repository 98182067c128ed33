"""Taint changes on a running cluster (experiment/taints.py): kubectl's syntax, NoSchedule for
new placements only, NoExecute evictions at once or after tolerationSeconds, DaemonSets."""

from __future__ import annotations

import pathlib

import pytest

from testbed.errors import SpecError
from testbed.experiment.changes import Scale, apply_action
from testbed.experiment.taints import TaintChange, TaintNodes, evictions, parse_taint, retaint, settle
from testbed.plan.build import plan_cluster, replan
from testbed.spec.topology import load_topology

REPO = pathlib.Path(__file__).resolve().parents[2]
THREE = load_topology(str(REPO / "topologies" / "three-nodes.yaml"))

APP = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: patient}
spec:
  replicas: 2
  selector: {matchLabels: {app: patient}}
  template:
    metadata: {labels: {app: patient}}
    spec:
      tolerations: [{key: dedicated, operator: Exists, effect: NoExecute, tolerationSeconds: 30}]
      containers: [{name: p, image: nginx}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: a, image: agent}]}
"""


def taint(*specs: str, nodes=("kind-worker",)) -> TaintNodes:
    return TaintNodes(tuple(nodes), tuple(parse_taint(s) for s in specs))


def on(plan, node, prefix):
    return sorted(p.name for p in plan.pods if p.node == node and p.name.startswith(prefix))


def test_kubectl_taint_syntax():
    assert parse_taint("dedicated=gpu:NoExecute") == TaintChange("dedicated", "gpu", "NoExecute")
    assert parse_taint("dedicated:NoSchedule") == TaintChange("dedicated", "", "NoSchedule")
    assert parse_taint("dedicated-") == TaintChange("dedicated", "", "", True)
    assert parse_taint("dedicated:NoExecute-") == TaintChange("dedicated", "", "NoExecute", True)
    for bad, fragment in (
        ("dedicated=gpu", "expected key=value:Effect"),
        ("dedicated=gpu:Sometimes", "unsupported taint effect"),
        ("bad key!=x:NoSchedule", "invalid taint spec"),
        ("k=v:NoSchedule-", "no value"),
        ("x" * 500, "longer than 400"),
    ):
        with pytest.raises(ValueError, match=fragment):
            parse_taint(bad)


def test_retaint_adds_overwrites_and_removes_as_kubectl():
    spec = retaint(THREE, taint("a=1:NoSchedule", "b=2:NoExecute"))
    worker = next(n for n in spec.nodes if n.name == "kind-worker")
    assert [(t.key, t.value, t.effect) for t in worker.taints] == [("a", "1", "NoSchedule"), ("b", "2", "NoExecute")]
    spec = retaint(spec, taint("a=3:NoSchedule", "b-"))
    worker = next(n for n in spec.nodes if n.name == "kind-worker")
    assert [(t.key, t.value, t.effect) for t in worker.taints] == [("a", "3", "NoSchedule")]
    with pytest.raises(SpecError, match="taint 'b' not found on node kind-worker"):
        retaint(spec, taint("b-"))
    with pytest.raises(SpecError, match="--overwrite is false"):
        retaint(spec, TaintNodes(("kind-worker",), (parse_taint("a=4:NoSchedule"),), overwrite=False))
    with pytest.raises(SpecError, match="no node named 'nope'"):
        retaint(spec, taint("a=1:NoSchedule", nodes=("nope",)))


def test_no_schedule_affects_new_placements_only(manifests):
    m = manifests(APP)
    plan = plan_cluster(THREE, m)
    before = on(plan, "kind-worker", "")
    assert on(plan, "kind-worker", "web-") and on(plan, "kind-worker", "agent-")
    spec = retaint(THREE, taint("dedicated=gpu:NoSchedule"))
    assert evictions(spec, m, plan) == []
    plan = replan(spec, m, plan.seed, prev=plan)
    assert on(plan, "kind-worker", "") == before  # the daemon pod stays too
    m, plan = apply_action(Scale("Deployment", "web", 10), spec, m, plan)
    assert on(plan, "kind-worker", "web-") == [n for n in before if n.startswith("web-")]  # no new pod there


def test_no_execute_evicts_at_once_or_after_toleration_seconds(manifests):
    m = manifests(APP)
    plan = plan_cluster(THREE, m)
    there = on(plan, "kind-worker", "")
    spec = retaint(THREE, taint("dedicated=gpu:NoExecute"))
    plan2 = replan(spec, m, plan.seed, prev=plan)
    assert not on(plan2, "kind-worker", "agent-")  # the DaemonSet stops running there
    due = evictions(spec, m, plan2)
    at_once = sorted(n.split("/")[1] for t, n in due if t == 0)
    later = sorted(n.split("/")[1] for t, n in due if t == 30)
    assert at_once == [n for n in there if n.startswith("web-")]
    assert later == [n for n in there if n.startswith("patient-")] and later
    assert len(due) == len(at_once) + len(later)
    m, plan3 = settle(spec, m, plan)
    assert on(plan3, "kind-worker", "web-") == [] and on(plan3, "kind-worker", "agent-") == []
    assert len([p for p in plan3.pods if p.name.startswith("web-")]) == 4  # replaced elsewhere
    # removing the taint lets the DaemonSet back on the node
    spec = retaint(spec, taint("dedicated-"))
    assert on(replan(spec, m, plan3.seed, prev=plan3), "kind-worker", "agent-")


def _experiment(tmp_path, actions: str) -> str:
    path = tmp_path / "exp.yaml"
    path.write_text(f"""\
apiVersion: testbed/v1alpha1
kind: Experiment
metadata: {{name: x}}
spec:
  topology: {REPO / "topologies" / "three-nodes.yaml"}
  manifests: [{REPO / "tests" / "unit" / "data" / "updates" / "web.yaml"}]
  steps:
    - name: s
      actions: {actions}
      probes: [{{name: g, from: {{pods: {{names: [client]}}}}, to: {{service: {{name: nginx, hostname: web-0, via: dns}}}}}}]
""")
    return str(path)


def test_the_taint_action_loads_and_is_checked_before_the_run(tmp_path):
    from testbed.experiment.load import load_experiment

    exp = load_experiment(_experiment(tmp_path, "[{taint: {nodes: [kind-worker], taints: ['a=b:NoSchedule']}}]"))
    assert exp.steps[0].actions == (taint("a=b:NoSchedule"),)
    for actions, fragment in (
        ("[{taint: {nodes: [kind-worker], taints: ['a=b']}}]", "actions[0].taint.taints[0]: invalid taint spec"),
        ("[{taint: {nodes: [nope], taints: ['a=b:NoSchedule']}}]", "no node named 'nope'"),
        ("[{taint: {nodes: [kind-worker], taints: ['a-']}}]", "taint 'a' not found on node kind-worker"),
        ("[{taint: {nodes: [kind-worker], taints: [], extra: 1}}]", "unknown field"),
    ):
        with pytest.raises(SpecError) as err:
            load_experiment(_experiment(tmp_path, actions))
        assert fragment in str(err.value), str(err.value)
    # a bare pod evicted by a NoExecute taint is gone for good: later probes from it are refused
    with pytest.raises(SpecError, match="no pod named 'client' at this step"):
        load_experiment(_experiment(tmp_path, "[{taint: {nodes: [kind-worker], taints: ['a=b:NoExecute']}}]"))
