"""StatefulSets, DaemonSets, Jobs and CronJobs become pods as their controllers make them
(plan/controllers.py, experiment/jobs.py, nodes.py, statefulsets.py), starting from the
kubernetes.io examples copied unmodified (tests/unit/data/realworld/k8s-website/)."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from testbed.errors import SpecError
from testbed.experiment.changes import DeletePods, Label, Scale, apply_action
from testbed.experiment.jobs import Trigger, finish
from testbed.experiment.model import PodSelection
from testbed.experiment.nodes import LabelNodes
from testbed.experiment.statefulsets import stages
from testbed.plan.build import plan_cluster, replan
from testbed.plan.podnet import hosts_file
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests
from testbed.views import get_controllers

REPO = pathlib.Path(__file__).resolve().parents[2]
WEBSITE = pathlib.Path(__file__).parent / "data" / "realworld" / "k8s-website"
THREE = load_topology(str(REPO / "topologies" / "three-nodes.yaml"))
DOMAIN = "default.svc.cluster.local"


def pods_of(plan, owner):
    return [p for p in plan.pods if p.owner == owner]


def test_the_tutorials_web_statefulset_gets_ordinal_pods_and_per_pod_dns_names():
    m = load_manifests([str(WEBSITE / "web.yaml")])
    plan = plan_cluster(THREE, m)
    web = pods_of(plan, "StatefulSet/web")
    assert [p.name for p in web] == ["web-0", "web-1"]
    assert [(p.hostname, p.subdomain) for p in web] == [("web-0", "nginx"), ("web-1", "nginx")]
    revision = web[0].labels["controller-revision-hash"]
    assert revision.startswith("web-") and web[0].labels == {
        "app": "nginx",
        "statefulset.kubernetes.io/pod-name": "web-0",
        "apps.kubernetes.io/pod-index": "0",
        "controller-revision-hash": revision,
    }
    records = plan.dns_records[0]
    assert (f"web-0.nginx.{DOMAIN}", web[0].ip) in records and (f"web-1.nginx.{DOMAIN}", web[1].ip) in records
    # the headless Service itself answers with every pod's address
    assert {ip for name, ip in records if name == f"nginx.{DOMAIN}"} == {p.ip for p in web}
    assert f"\tweb-0.nginx.{DOMAIN}\tweb-0\n" in hosts_file(web[0], "")
    assert not any("not emulated" in w for w in plan.warnings)
    assert "volumeClaimTemplates" not in str(plan.warnings)


def test_a_statefulset_scales_down_from_the_highest_ordinal_and_recreates_pods_under_their_names():
    m = load_manifests([str(WEBSITE / "web.yaml")])
    plan = plan_cluster(THREE, m)
    m, plan = apply_action(Scale("StatefulSet", "web", 4), THREE, m, plan)
    before = {p.name: p for p in pods_of(plan, "StatefulSet/web")}
    assert sorted(before) == ["web-0", "web-1", "web-2", "web-3"]
    m, plan = apply_action(DeletePods(PodSelection(names=("web-1",))), THREE, m, plan)
    after = {p.name: p for p in pods_of(plan, "StatefulSet/web")}
    assert sorted(after) == sorted(before)  # the same names
    assert after["web-1"].ip != before["web-1"].ip and after["web-1"].uid != before["web-1"].uid  # a new pod
    assert (f"web-1.nginx.{DOMAIN}", after["web-1"].ip) in plan.dns_records[0]
    assert all(after[n] == before[n] for n in ("web-0", "web-2", "web-3"))
    m, plan = apply_action(Scale("StatefulSet", "web", 1), THREE, m, plan)
    assert [p.name for p in pods_of(plan, "StatefulSet/web")] == ["web-0"]
    assert pods_of(plan, "StatefulSet/web")[0] == before["web-0"]  # the lowest ordinal stays
    m, plan = apply_action(Scale("StatefulSet", "web", 3), THREE, m, plan)
    assert sorted(p.name for p in pods_of(plan, "StatefulSet/web")) == ["web-0", "web-1", "web-2"]


def test_a_changed_template_recreates_the_pods_under_their_names_and_a_relabel_does_not(manifests):
    m = load_manifests([str(WEBSITE / "web.yaml")])
    plan = plan_cluster(THREE, m)
    before = {p.name: p for p in pods_of(plan, "StatefulSet/web")}
    m, plan = apply_action(Label(PodSelection(names=("web-0",)), {"tier": "db"}), THREE, m, plan)
    m, plan = apply_action(Scale("StatefulSet", "web", 2), THREE, m, plan)  # a reconcile
    assert {p.name: p.ip for p in pods_of(plan, "StatefulSet/web")} == {n: p.ip for n, p in before.items()}
    changed = load_manifests([str(WEBSITE / "web.yaml")])
    (sts,) = changed.workloads
    new = dataclasses.replace(sts.template, labels={**sts.template.labels, "version": "2"})
    m = dataclasses.replace(m, workloads=(dataclasses.replace(sts, template=new),))
    plan = replan(THREE, m, plan.seed, prev=plan)
    after = {p.name: p for p in pods_of(plan, "StatefulSet/web")}
    assert sorted(after) == ["web-0", "web-1"] and all(after[n].ip != before[n].ip for n in after)
    assert all(p.labels["version"] == "2" for p in after.values())


def test_ordered_ready_scales_one_pod_at_a_time_and_parallel_at_once(manifests):
    m = load_manifests([str(WEBSITE / "web.yaml")])
    assert [s.replicas for s in stages(Scale("StatefulSet", "web", 5), m)] == [3, 4, 5]
    assert [s.replicas for s in stages(Scale("StatefulSet", "web", 0), m)] == [1, 0]
    plan = plan_cluster(THREE, m)
    for stage in stages(Scale("StatefulSet", "web", 0), m):
        m, plan = apply_action(stage, THREE, m, plan)
        if stage.replicas == 1:
            assert [p.name for p in pods_of(plan, "StatefulSet/web")] == ["web-0"]  # web-1 went first
    parallel = manifests("""
        apiVersion: apps/v1
        kind: StatefulSet
        metadata: {name: db}
        spec:
          serviceName: db
          podManagementPolicy: Parallel
          selector: {matchLabels: {app: db}}
          template:
            metadata: {labels: {app: db}}
            spec: {containers: [{name: db, image: postgres}]}
    """)
    assert stages(Scale("StatefulSet", "db", 5), parallel) == [Scale("StatefulSet", "db", 5)]
    assert stages(Scale("Deployment", "x", 5), parallel) == [Scale("Deployment", "x", 5)]


def test_the_concept_pages_daemonset_runs_on_every_node_whose_taints_it_tolerates():
    m = load_manifests([str(WEBSITE / "daemonset.yaml")])
    plan = plan_cluster(THREE, m)
    fluentd = pods_of(plan, "DaemonSet/fluentd-elasticsearch")
    # this revision tolerates node-role.kubernetes.io/master only: kind's control plane is tainted
    # node-role.kubernetes.io/control-plane, so the workers only, one pod each
    assert sorted(p.node for p in fluentd) == ["kind-worker", "kind-worker2"]
    assert all(p.namespace == "kube-system" and p.name.startswith("fluentd-elasticsearch-") for p in fluentd)
    assert len(fluentd[0].name) == len("fluentd-elasticsearch-") + 5
    again = plan_cluster(THREE, m)
    assert [p.name for p in pods_of(again, "DaemonSet/fluentd-elasticsearch")] == [p.name for p in fluentd]
    table = get_controllers(plan, m)
    assert "daemonset.apps/fluentd-elasticsearch   2      one per eligible node: 2 of 3 nodes" in table


DS = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      %s
      containers: [{name: a, image: x, ports: [{containerPort: 9100}]}]
"""


def test_a_daemonset_tolerating_the_control_plane_runs_there_too(manifests):
    tolerant = "tolerations: [{key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}]"
    plan = plan_cluster(THREE, manifests(DS % tolerant))
    assert sorted(p.node for p in pods_of(plan, "DaemonSet/agent")) == [n.name for n in THREE.nodes]
    everything = "tolerations: [{operator: Exists}]"
    assert len(pods_of(plan_cluster(THREE, manifests(DS % everything)), "DaemonSet/agent")) == 3


def test_a_daemonset_follows_node_labels_as_they_change(manifests):
    m = manifests(DS % "nodeSelector: {disk: ssd}")
    plan = plan_cluster(THREE, m)
    assert pods_of(plan, "DaemonSet/agent") == []  # no node has the label: no pod, nothing Pending
    assert plan.pending == ()
    m, plan = apply_action(LabelNodes(("kind-worker", "kind-worker2"), {"disk": "ssd"}), THREE, m, plan)
    first = {p.node: p for p in pods_of(plan, "DaemonSet/agent")}
    assert sorted(first) == ["kind-worker", "kind-worker2"]
    assert plan.node("kind-worker").labels["disk"] == "ssd"
    m, plan = apply_action(LabelNodes(("kind-worker",), {"disk": None}), THREE, m, plan)
    assert [p for p in pods_of(plan, "DaemonSet/agent")] == [first["kind-worker2"]]  # the other pod stays as it was
    with pytest.raises(SpecError, match="no node named 'kind-wrker'"):
        apply_action(LabelNodes(("kind-wrker",), {"a": "b"}), THREE, m, plan)


JOBS = """
apiVersion: batch/v1
kind: Job
metadata: {name: pi}
spec:
  parallelism: 2
  completions: 5
  template:
    spec:
      containers: [{name: pi, image: perl}]
      restartPolicy: Never
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: hello}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: hello}}
        spec:
          containers: [{name: hello, image: busybox, ports: [{containerPort: 8080}]}]
          restartPolicy: OnFailure
"""


def test_a_job_runs_its_parallel_pods_until_the_step_ends(manifests):
    m = manifests(JOBS)
    plan = plan_cluster(THREE, m)
    pi = pods_of(plan, "Job/pi")
    assert len(pi) == 2 and all(p.labels["job-name"] == "pi" for p in pi)
    assert pods_of(plan, "CronJob/hello") == []  # nothing until triggered
    m, plan, what = finish(THREE, m, plan)
    assert what == "jobs complete: default/pi" and pods_of(plan, "Job/pi") == []
    assert "job.batch/pi          0      complete; completions 5/5" in get_controllers(plan, m)
    assert finish(THREE, m, plan) is None  # nothing runs any more


def test_triggering_a_cronjob_makes_its_job_which_runs_then_completes(manifests):
    m = manifests(JOBS)
    plan = plan_cluster(THREE, m)
    m, plan, _ = finish(THREE, m, plan)
    m, plan = apply_action(Trigger("hello", job="hello-now"), THREE, m, plan)
    pods = pods_of(plan, "Job/hello-now")
    assert len(pods) == 1 and pods[0].name.startswith("hello-now-")
    assert pods[0].labels == {"app": "hello", "batch.kubernetes.io/job-name": "hello-now", "job-name": "hello-now"}
    with pytest.raises(SpecError, match='jobs.batch "hello-now" already exists'):
        apply_action(Trigger("hello", job="hello-now"), THREE, m, plan)
    with pytest.raises(SpecError, match="no CronJob default/nope"):
        apply_action(Trigger("nope"), THREE, m, plan)
    m, plan, what = finish(THREE, m, plan)
    assert what == "jobs complete: default/hello-now" and pods_of(plan, "Job/hello-now") == []


@pytest.mark.parametrize(
    "text,path,fragment",
    [
        (
            "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec: {containers: [{name: c}]}\n",
            "spec.template.spec.restartPolicy",
            "a Job's pods must have restartPolicy OnFailure or Never, got 'Always'",
        ),
        (
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\nspec:\n  podManagementPolicy: Random\n"
            "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
            "    spec: {containers: [{name: c}]}\n",
            "spec.podManagementPolicy",
            "must be OrderedReady or Parallel, got 'Random'",
        ),
        (
            "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d}\nspec:\n  replicas: 3\n"
            "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
            "    spec: {containers: [{name: c}]}\n",
            "spec.replicas",
            "unknown field 'replicas'",
        ),
        (
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  schedule: every day\n"
            "  jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: c}]}}}}\n",
            "spec.schedule",
            "unparseable schedule",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostname: Not_A_Label\n"
            "  containers: [{name: c}]\n",
            "spec.hostname",
            "",
        ),
    ],
)
def test_bad_controller_fields_are_one_located_line_each(manifests, text, path, fragment):
    with pytest.raises(SpecError) as err:
        manifests(text)
    problems = [p for p in err.value.problems if p.path == path]
    assert problems and fragment in problems[0].message, err.value.problems


def test_a_pod_with_hostname_and_subdomain_gets_a_name_under_its_headless_service(manifests):
    m = manifests("""
        apiVersion: v1
        kind: Service
        metadata: {name: sub}
        spec: {clusterIP: None, selector: {app: a}, ports: [{port: 80}]}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: p1, labels: {app: a}}
        spec: {hostname: one, subdomain: sub, containers: [{name: c, ports: [{containerPort: 80}]}]}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: p2, labels: {app: a}}
        spec: {hostname: two, subdomain: other, containers: [{name: c, ports: [{containerPort: 80}]}]}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: p3, labels: {app: b}}
        spec: {hostname: three, subdomain: sub, containers: [{name: c}]}
    """)
    plan = plan_cluster(THREE, m)
    names = {n for n, _ in plan.dns_records[0]}
    assert f"one.sub.{DOMAIN}" in names
    assert not any(n.startswith(("two.", "three.")) for n in names)  # another subdomain; not an endpoint
    assert f"\ttwo.other.{DOMAIN}\ttwo\n" in hosts_file(plan.find_pod("p2"), "")
    assert f"\tthree.sub.{DOMAIN}\tthree\n" in hosts_file(plan.find_pod("p3"), "")


def test_pod_template_hashes_do_not_change_with_the_new_pod_fields(manifests):
    template = "{metadata: {labels: {app: web}}, spec: {containers: [{name: c}]}}"
    m = manifests(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"
        f"spec: {{selector: {{matchLabels: {{app: web}}}}, template: {template}}}\n"
    )
    plan = plan_cluster(THREE, m)
    # the name this template had before hostname/subdomain were modelled (README, golden files)
    assert [p.owner for p in plan.pods if p.namespace == "default"] == ["ReplicaSet/web-585b699f7f"]


def test_daemonsets_count_against_the_pod_bound_once_their_nodes_are_known(manifests, monkeypatch):
    many = "---\n".join(
        DS.replace("name: agent}", f"name: agent{i}}}") % "tolerations: [{operator: Exists}]" for i in range(3)
    )
    m = manifests(many)
    assert len(plan_cluster(THREE, m).pods) == 9 + 2  # 3 DaemonSets x 3 nodes, and CoreDNS
    monkeypatch.setattr("testbed.plan.controllers.MAX_PODS", 10)  # the bound, small enough to reach here
    with pytest.raises(SpecError, match=r"11 pods in all with the DaemonSets' pods on every eligible node"):
        plan_cluster(THREE, m)
