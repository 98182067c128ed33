"""StatefulSet and DaemonSet rolling updates stage by stage, OnDelete, partition,
maxUnavailable (experiment/updates.py, plan/controllers.py), and Indexed Jobs' pod names."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from testbed.errors import SpecError
from testbed.experiment.changes import DeletePods, Scale, apply_action
from testbed.experiment.model import PodSelection
from testbed.experiment.updates import stages
from testbed.plan.build import plan_cluster, replan
from testbed.spec.topology import load_topology

REPO = pathlib.Path(__file__).resolve().parents[2]
THREE = load_topology(str(REPO / "topologies" / "three-nodes.yaml"))

STS = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: nginx
  replicas: 4
  selector: {matchLabels: {app: web}}
  STRATEGY
  template:
    metadata: {labels: {app: web}}
    spec:
      tolerations: [{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}]
      containers: [{name: web, image: nginx}]
"""


def _changed(m):
    """The manifests with every workload's template changed (a new label: a new revision)."""
    return dataclasses.replace(
        m,
        workloads=tuple(
            dataclasses.replace(w, template=dataclasses.replace(w.template, labels={**w.template.labels, "v": "2"}))
            for w in m.workloads
        ),
    )


def _roll(m, after, plan):
    """Every state the update goes through: (name or node -> at the new revision) per state."""
    seen = []
    for wishes in stages(THREE, m, after, plan):
        plan = replan(THREE, after, plan.seed, prev=plan, desired=wishes)
        seen.append(plan)
    seen.append(replan(THREE, after, plan.seed, prev=plan))
    return seen


def _new(plan, owner, by="name"):
    return sorted(getattr(p, by) for p in plan.pods if p.owner == owner and p.labels.get("v") == "2")


def test_a_statefulset_rolls_from_the_highest_ordinal_one_pod_at_a_time(manifests):
    m = manifests(STS.replace("STRATEGY", ""))
    plan = plan_cluster(THREE, m)
    before = {p.name: p for p in plan.pods if p.owner == "StatefulSet/web"}
    states = _roll(m, _changed(m), plan)
    assert [_new(s, "StatefulSet/web") for s in states] == [
        ["web-3"],
        ["web-2", "web-3"],
        ["web-1", "web-2", "web-3"],
        ["web-0", "web-1", "web-2", "web-3"],
    ]
    for s in states:  # never more than one pod missing or old-and-new at once: each state has all four
        assert sorted(p.name for p in s.pods if p.owner == "StatefulSet/web") == sorted(before)
    after = {p.name: p for p in states[-1].pods if p.owner == "StatefulSet/web"}
    assert all(after[n].ip != before[n].ip and after[n].uid != before[n].uid for n in before)
    assert all(after[n].hostname == n for n in after)


def test_partition_keeps_the_lower_ordinals_and_max_unavailable_replaces_in_batches(manifests):
    m = manifests(STS.replace("STRATEGY", "updateStrategy: {rollingUpdate: {partition: 2}}"))
    plan = plan_cluster(THREE, m)
    states = _roll(m, _changed(m), plan)
    assert [_new(s, "StatefulSet/web") for s in states] == [["web-3"], ["web-2", "web-3"]]
    # the lower ordinals stay at the old revision through later reconciles
    m2, plan2 = apply_action(Scale("StatefulSet", "web", 4), THREE, _changed(m), states[-1])
    assert _new(plan2, "StatefulSet/web") == ["web-2", "web-3"]
    m = manifests(STS.replace("STRATEGY", "updateStrategy: {rollingUpdate: {maxUnavailable: 50%}}"))
    states = _roll(m, _changed(m), plan_cluster(THREE, m))
    assert [_new(s, "StatefulSet/web") for s in states] == [["web-2", "web-3"], ["web-0", "web-1", "web-2", "web-3"]]


def test_on_delete_keeps_old_pods_until_each_is_deleted(manifests):
    m = manifests(STS.replace("STRATEGY", "updateStrategy: {type: OnDelete}"))
    plan = plan_cluster(THREE, m)
    after = _changed(m)
    assert stages(THREE, m, after, plan) == []
    plan = replan(THREE, after, plan.seed, prev=plan)
    assert _new(plan, "StatefulSet/web") == []
    after, plan = apply_action(DeletePods(PodSelection(names=("web-1",))), THREE, after, plan)
    assert _new(plan, "StatefulSet/web") == ["web-1"]


def test_a_daemonset_rolls_node_by_node(manifests):
    ds = """
        apiVersion: apps/v1
        kind: DaemonSet
        metadata: {name: agent}
        spec:
          selector: {matchLabels: {app: agent}}
          STRATEGY
          template:
            metadata: {labels: {app: agent}}
            spec:
              tolerations: [{operator: Exists}]
              containers: [{name: a, image: agent}]
    """
    m = manifests(ds.replace("STRATEGY", ""))
    plan = plan_cluster(THREE, m)
    nodes = sorted(p.node for p in plan.pods if p.owner == "DaemonSet/agent")
    assert len(nodes) == 3
    states = _roll(m, _changed(m), plan)
    assert [_new(s, "DaemonSet/agent", "node") for s in states] == [nodes[:1], nodes[:2], nodes]
    assert all(len([p for p in s.pods if p.owner == "DaemonSet/agent"]) == 3 for s in states)
    m = manifests(ds.replace("STRATEGY", "updateStrategy: {rollingUpdate: {maxUnavailable: 2}}"))
    states = _roll(m, _changed(m), plan_cluster(THREE, m))
    assert [_new(s, "DaemonSet/agent", "node") for s in states] == [nodes[:2], nodes]


@pytest.mark.parametrize(
    "strategy, fragment",
    [
        ("updateStrategy: {type: Sometimes}", "spec.updateStrategy.type: must be RollingUpdate or OnDelete"),
        ("updateStrategy: {rollingUpdate: {partition: -1}}", "spec.updateStrategy.rollingUpdate.partition"),
        ("updateStrategy: {rollingUpdate: {maxUnavailable: 0}}", "maxUnavailable: must be at least 1"),
        ("updateStrategy: {rollingUpdate: {maxUnavailable: lots}}", "must be a count or a percentage"),
        ("updateStrategy: {type: OnDelete, rollingUpdate: {partition: 1}}", "only with type RollingUpdate"),
    ],
)
def test_bad_update_strategies_are_one_located_line(manifests, strategy, fragment):
    with pytest.raises(SpecError) as err:
        manifests(STS.replace("STRATEGY", strategy))
    assert fragment in str(err.value)


def test_an_indexed_job_names_its_pods_by_index(manifests):
    m = manifests("""
        apiVersion: batch/v1
        kind: Job
        metadata: {name: work}
        spec:
          completionMode: Indexed
          completions: 5
          parallelism: 3
          template:
            spec:
              restartPolicy: Never
              containers: [{name: w, image: busybox}]
    """)
    plan = plan_cluster(THREE, m)
    pods = sorted((p for p in plan.pods if p.owner == "Job/work"), key=lambda p: p.name)
    assert [p.name.rsplit("-", 1)[0] for p in pods] == ["work-0", "work-1", "work-2"]
    assert all(len(p.name.rsplit("-", 1)[1]) == 5 for p in pods)
    assert [p.labels["batch.kubernetes.io/job-completion-index"] for p in pods] == ["0", "1", "2"]
    assert [p.hostname for p in pods] == ["work-0", "work-1", "work-2"]
    # a deleted pod comes back with its index, under a new suffix
    m, plan2 = apply_action(DeletePods(PodSelection(names=(pods[1].name,))), THREE, m, plan)
    again = sorted((p for p in plan2.pods if p.owner == "Job/work"), key=lambda p: p.name)
    assert [p.name.rsplit("-", 1)[0] for p in again] == ["work-0", "work-1", "work-2"]
    assert pods[1].name not in {p.name for p in again}
    with pytest.raises(SpecError, match="completionMode: must be NonIndexed or Indexed"):
        manifests("""
            apiVersion: batch/v1
            kind: Job
            metadata: {name: work}
            spec:
              completionMode: Sometimes
              template: {spec: {restartPolicy: Never, containers: [{name: w, image: busybox}]}}
        """)


def _experiment(tmp_path, actions: str) -> str:
    data = REPO / "tests" / "unit" / "data" / "updates"
    path = tmp_path / "exp.yaml"
    path.write_text(f"""\
apiVersion: testbed/v1alpha1
kind: Experiment
metadata: {{name: x}}
spec:
  topology: {REPO / "topologies" / "three-nodes.yaml"}
  manifests: [{data / "web.yaml"}]
  steps:
    - name: s
      actions: {actions}
      probes: [{{name: g, from: {{pods: {{names: [client]}}}}, to: {{service: {{name: nginx, hostname: web-0, via: dns}}}}}}]
""")
    return str(path)


def test_the_rollout_action_takes_a_statefulset_and_is_checked_before_the_run(tmp_path):
    from testbed.experiment.load import load_experiment

    exp = load_experiment(_experiment(tmp_path, "[{rollout: {statefulset: web}}, {rollback: {statefulset: web}}]"))
    assert [(a.kind, a.deployment, a.undo) for a in exp.steps[0].actions] == [
        ("StatefulSet", "web", False),
        ("StatefulSet", "web", True),
    ]
    for actions, fragment in (
        ("[{rollout: {statefulset: nope}}]", "rollout.statefulset: no StatefulSet default/nope at this step"),
        ("[{rollback: {statefulset: web}}]", "StatefulSet default/web has no previous revision"),
        ("[{rollout: {daemonset: web}}]", "no DaemonSet default/web"),
        ("[{rollout: {statefulset: web, deployment: web}}]", "name exactly one of deployment, statefulset, daemonset"),
    ):
        with pytest.raises(SpecError) as err:
            load_experiment(_experiment(tmp_path, actions))
        assert fragment in str(err.value), str(err.value)


def test_a_restart_and_its_undo_roll_in_stages_back_to_the_first_revision(manifests):
    from testbed.experiment.rollout import Rollout
    from testbed.experiment.updates import rolled

    m = manifests(STS.replace("STRATEGY", ""))
    plan = plan_cluster(THREE, m)
    first = {p.labels["controller-revision-hash"] for p in plan.pods if p.owner == "StatefulSet/web"}
    history: dict = {}
    for undo in (False, True):
        after = rolled(m, Rollout("web", kind="StatefulSet", image="nginx:2", undo=undo), history, "x")
        assert len(stages(THREE, m, after, plan)) == 3  # four pods, one at a time: three intermediate states
        m, plan = after, _roll(m, after, plan)[-1]
        revisions = {p.labels["controller-revision-hash"] for p in plan.pods if p.owner == "StatefulSet/web"}
        assert len(revisions) == 1 and (revisions == first) == undo


def test_the_first_build_makes_an_ordered_ready_statefulsets_pods_one_ordinal_at_a_time(manifests):
    from testbed.experiment.statefulsets import ordered_build

    headless = "apiVersion: v1\nkind: Service\nmetadata: {name: nginx}\nspec: {clusterIP: None, selector: {app: web}, ports: [{port: 80}]}\n---\n"
    m = manifests(
        headless
        + STS.replace("STRATEGY", "")
        + "---\n"
        + STS.replace("name: web", "name: db")
        .replace("app: web", "app: db")
        .replace("STRATEGY", "podManagementPolicy: Parallel")
    )
    plan = plan_cluster(THREE, m)
    stages_ = ordered_build(plan, m)
    assert stages_[-1] is plan and len(stages_) == 4
    web = [[p.name for p in s.pods if p.owner == "StatefulSet/web"] for s in stages_]
    assert web == [["web-0"], ["web-0", "web-1"], ["web-0", "web-1", "web-2"], ["web-0", "web-1", "web-2", "web-3"]]
    assert all(len([p for p in s.pods if p.owner == "StatefulSet/db"]) == 4 for s in stages_)  # Parallel: at once
    # each stage's pods are the final plan's (same addresses), its DNS only what exists then
    assert all(p in plan.pods for s in stages_ for p in s.pods)
    names = {n for n, _ in stages_[0].dns_records[0]}
    assert any(n.startswith("web-0.") for n in names) and not any(n.startswith("web-1.") for n in names)
    assert ordered_build(plan_cluster(THREE, manifests(STS.replace("STRATEGY", "podManagementPolicy: Parallel"))), m)[
        0
    ].pods
