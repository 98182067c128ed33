"""Experiments with StatefulSets, DaemonSets, Jobs and CronJobs, validated step by step before
anything is built: the trigger and node-label actions, a Job's pods gone after its step, and
a pod's own DNS name as a probe target (experiment/jobs.py, nodes.py; to.service.hostname)."""

from __future__ import annotations

import pathlib
import textwrap

import pytest

from testbed.errors import SpecError
from testbed.experiment.changes import describe
from testbed.experiment.jobs import Trigger
from testbed.experiment.load import load_experiment
from testbed.experiment.nodes import LabelNodes

REPO = pathlib.Path(__file__).resolve().parents[2]
WEB = REPO / "tests" / "unit" / "data" / "realworld" / "k8s-website" / "web.yaml"
EXTRA = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ssd-agent}
spec:
  selector: {matchLabels: {app: ssd-agent}}
  template:
    metadata: {labels: {app: ssd-agent}}
    spec:
      nodeSelector: {disk: ssd}
      containers: [{name: agent, image: agent, ports: [{containerPort: 9100}]}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: report}}
        spec:
          containers: [{name: report, image: busybox, ports: [{containerPort: 8080}]}]
          restartPolicy: Never
"""


def _write(tmp_path: pathlib.Path, steps: str) -> str:
    (tmp_path / "extra.yaml").write_text(EXTRA)
    path = tmp_path / "exp.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        apiVersion: testbed/v1alpha1
        kind: Experiment
        metadata: {{name: x}}
        spec:
          topology: {REPO / "topologies" / "three-nodes.yaml"}
          manifests: [{WEB}, extra.yaml]
          steps:
        """)
        + textwrap.indent(textwrap.dedent(steps), "    ")
    )
    return str(path)


STEP_ONE = """\
- name: one
  actions:
    - trigger: {cronjob: report, job: report-now}
    - label: {nodes: [kind-worker], labels: {disk: ssd}}
  probes:
    - name: agent-to-report
      from: {pods: {matchLabels: {app: ssd-agent}}}
      to: {pods: {matchLabels: {job-name: report-now}}}
    - name: report-to-web-0
      from: {pods: {matchLabels: {job-name: report-now}}}
      to: {service: {name: nginx, hostname: web-0, via: dns}}
"""


def test_trigger_and_node_labels_load_and_validate(tmp_path):
    exp = load_experiment(_write(tmp_path, STEP_ONE))
    trigger, label = exp.steps[0].actions
    assert trigger == Trigger("report", "default", "report-now") and label == LabelNodes(
        ("kind-worker",), {"disk": "ssd"}
    )
    assert describe(trigger) == "create job report-now --from=cronjob/report -n default"
    assert describe(label) == "label nodes kind-worker disk=ssd"
    assert exp.steps[0].probes[1].target.service.hostname == "web-0"


def _error(path: str, fragment: str) -> str:
    with pytest.raises(SpecError) as err:
        load_experiment(path)
    hits = [line for line in str(err.value).splitlines() if fragment in line]
    assert hits, str(err.value)
    return hits[0]


def test_a_jobs_pods_are_gone_at_the_next_step(tmp_path):
    steps = STEP_ONE + textwrap.dedent("""\
        - name: two
          probes:
            - name: agent-to-report-again
              from: {pods: {matchLabels: {app: ssd-agent}}}
              to: {pods: {matchLabels: {job-name: report-now}}}
        """)
    line = _error(_write(tmp_path, steps), "selects no pod at this step")
    assert "spec.steps[1].probes[0].to.pods" in line and "step 'two'" in line


@pytest.mark.parametrize(
    "action, fragment",
    [
        ("trigger: {cronjob: nightly}", "no CronJob default/nightly"),
        ("label: {nodes: [kind-wrker], labels: {a: b}}", "no node named 'kind-wrker'"),
        ("trigger: {cronjob: report, job: Bad_Name}", "'Bad_Name' is not a valid name"),
    ],
)
def test_bad_trigger_and_node_label_actions_are_located(tmp_path, action, fragment):
    line = _error(_write(tmp_path, f"- name: one\n  actions: [{{{action}}}]\n  probes: []\n"), fragment)
    assert "spec.steps[0].actions[0]" in line


@pytest.mark.parametrize(
    "target, field, fragment",
    [
        ("{service: {name: nginx, hostname: web-7, via: dns}}", "to.service.hostname", "no DNS name 'web-7.nginx"),
        ("{service: {name: nginx, hostname: web-0}}", "to.service.hostname", "reached with `via: dns`"),
        ("{service: {name: kubernetes, hostname: web-0, via: dns}}", "to.service.hostname", "headless Service"),
    ],
)
def test_bad_hostname_targets_are_located(tmp_path, target, field, fragment):
    group = f"{{name: g, from: {{pods: {{names: [web-1]}}}}, to: {target}}}"
    line = _error(_write(tmp_path, f"- name: one\n  probes: [{group}]\n"), fragment)
    assert field in line
