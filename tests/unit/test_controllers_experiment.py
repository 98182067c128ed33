"""Experiments with StatefulSets, DaemonSets, Jobs and CronJobs, validated step by step before
anything is built: the trigger and node-label actions, a Job's pods gone after its step, and
a pod's own DNS name as a probe target (experiment/jobs.py, nodes.py; to.service.hostname)."""

from __future__ import annotations

import pathlib

import pytest

from testbed.errors import SpecError
from testbed.experiment.changes import describe
from testbed.experiment.jobs import Trigger
from testbed.experiment.load import load_experiment
from testbed.experiment.nodes import LabelNodes

DATA = pathlib.Path(__file__).parent / "data" / "controllers"
EXPERIMENT = (DATA / "experiment.yaml").read_text()


@pytest.fixture
def variant(tmp_path):
    """The data experiment with one line changed, in tmp_path (its files named absolutely)."""

    def make(old: str, new: str) -> str:
        assert old in EXPERIMENT
        text = EXPERIMENT.replace(old, new, 1).replace("manifests: [../", f"manifests: [{DATA}/../")
        text = text.replace(" extra.yaml]", f" {DATA}/extra.yaml]").replace("topology: ../", f"topology: {DATA}/../")
        path = tmp_path / "exp.yaml"
        path.write_text(text)
        return str(path)

    return make


def test_trigger_and_node_labels_load_and_validate():
    exp = load_experiment(str(DATA / "experiment.yaml"))
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


def test_a_jobs_pods_are_gone_at_the_next_step(variant):
    job_pods = "to: {pods: {matchLabels: {job-name: report-now}}}"
    line = _error(variant("to: {service: {name: nginx, hostname: web-1, via: dns}}", job_pods), "selects no pod")
    assert "spec.steps[1].probes[0].to.pods" in line and "step 'two'" in line


@pytest.mark.parametrize(
    "action, fragment",
    [
        ("trigger: {cronjob: nightly}", "no CronJob default/nightly"),
        ("label: {nodes: [kind-wrker], labels: {a: b}}", "no node named 'kind-wrker'"),
        ("trigger: {cronjob: report, job: Bad_Name}", "'Bad_Name' is not a valid name"),
    ],
)
def test_bad_trigger_and_node_label_actions_are_located(variant, action, fragment):
    line = _error(variant("- trigger: {cronjob: report, job: report-now}", f"- {action}"), fragment)
    assert "spec.steps[0].actions[0]" in line


@pytest.mark.parametrize(
    "target, field, fragment",
    [
        ("{service: {name: nginx, hostname: web-7, via: dns}}", "to.service.hostname", "no DNS name 'web-7.nginx"),
        ("{service: {name: nginx, hostname: web-0}}", "to.service.hostname", "reached with `via: dns`"),
        ("{service: {name: kubernetes, hostname: web-0, via: dns}}", "to.service.hostname", "headless Service"),
    ],
)
def test_bad_hostname_targets_are_located(variant, target, field, fragment):
    line = _error(variant("to: {service: {name: nginx, hostname: web-0, via: dns}}", f"to: {target}"), fragment)
    assert field in line
