"""Experiments validated before anything is built (issue 11, items 3, 5, 8, 9, 10).

Each bad experiment is a small change to a valid one; the error must name the experiment
file, the step (and probe group), and the field path, and nothing may be silently dropped.
Validation follows the steps: what exists only later is judged at its own step.
"""

from __future__ import annotations

import pathlib
import textwrap

import pytest

from testbed.errors import SpecError
from testbed.experiment.load import load_experiment

REPO = pathlib.Path(__file__).resolve().parents[2]
TOPO = REPO / "topologies" / "three-nodes.yaml"
APP = REPO / "manifests" / "quickstart-app.yaml"  # Deployment web (3), Pod two-containers
SVC = REPO / "manifests" / "services-demo.yaml"  # Deployment web, Services web (ClusterIP), web-lb; Pod client

OK_GROUP = "{name: g, from: {pods: {names: [two-containers]}}, to: {pods: {matchLabels: {app: web}}}}"


def _write(
    tmp_path: pathlib.Path,
    steps: str,
    manifests: pathlib.Path = APP,
    topology: str | None = None,
    name: str = "exp.yaml",
) -> str:
    path = tmp_path / name
    path.write_text(
        textwrap.dedent(f"""\
        apiVersion: testbed/v1alpha1
        kind: Experiment
        metadata: {{name: x}}
        spec:
          topology: {topology or TOPO}
          manifests: [{manifests}]
          steps:
        """)
        + textwrap.indent(textwrap.dedent(steps), "    ")
    )
    return str(path)


def _problems(path: str) -> list[str]:
    with pytest.raises(SpecError) as err:
        load_experiment(path)
    lines = str(err.value).splitlines()
    assert lines and all(line.startswith(path) for line in lines), lines
    return lines


def _one(path: str, field: str, fragment: str, document: str = "") -> str:
    lines = _problems(path)
    hits = [line for line in lines if f": {field}: " in line and fragment in line and document in line]
    assert hits, lines
    return hits[0]


@pytest.mark.parametrize(
    "group, field, fragment",
    [
        (
            "{name: g, from: {pods: {names: [web-typo]}}, to: {pods: all}}",
            "from.pods.names[0]",
            "no pod named 'web-typo'",
        ),
        ("{name: g, from: {pods: {names: [42]}}, to: {pods: all}}", "from.pods.names[0]", "expected a name, got 42"),
        ("{name: g, from: {pods: {names: []}}, to: {pods: all}}", "from.pods.names", "an empty list selects no pod"),
        ("{name: g, from: {pods: {namespace: nope}}, to: {pods: all}}", "from.pods.namespace", "no namespace 'nope'"),
        ("{name: g, from: {pods: all}, to: {pods: {matchLabels: {app: nothing}}}}", "to.pods", "selects no pod"),
        ("{name: g, from: {nodes: [kind-wrker]}, to: {pods: all}}", "from.nodes[0]", "no node named 'kind-wrker'"),
        ("{name: g, from: {hosts: [desktop]}, to: {pods: all}}", "from.hosts[0]", "no external host named 'desktop'"),
        ("{name: g, from: {nodes: [7]}, to: {pods: all}}", "from.nodes[0]", "expected a name, got 7"),
        ("{name: g, from: {pods: all}, to: {pods: all}, ports: [httpx]}", "ports[0]", "declares a port named 'httpx'"),
        ("{name: g, from: {pods: all}, to: {pods: all}, ports: [0]}", "ports[0]", "port 0 is out of range"),
        ("{name: g, from: {pods: all}, to: {pods: all}, ports: [-5]}", "ports[0]", "port -5 is out of range"),
        ("{name: g, from: {pods: all}, to: {pods: all}, ports: [70000]}", "ports[0]", "port 70000 is out of range"),
        (
            "{name: g, from: {pods: all}, to: {pods: all}, method: scapy, sourceIP: not-an-ip}",
            "sourceIP",
            "'not-an-ip' is not an IPv4 address",
        ),
        (
            "{name: g, from: {pods: {names: [two-containers]}}, to: {pods: {names: [two-containers]}}}",
            "",
            "sends no probe at this step",
        ),
        ("{name: g, from: {pods: all}, to: {pods: all}, repeat: 100000}", "repeat", "out of range"),
    ],
)
def test_probe_groups_that_select_nothing_are_errors(tmp_path, group, field, fragment):
    path = _write(tmp_path, f"- name: s\n  probes: [{group}]\n")
    line = _one(path, f"spec.steps[0].probes[0].{field}".rstrip("."), fragment, "step 's', probe group 'g'")
    assert len(line) < 600


@pytest.mark.parametrize(
    "group, field, fragment",
    [
        (
            "{name: g, from: {pods: {names: [client]}}, to: {service: {name: wbe}}}",
            "to.service.name",
            "no Service default/wbe",
        ),
        (
            "{name: g, from: {pods: {names: [client]}}, to: {service: {name: web, via: nodePort}}}",
            "to.service.via",
            "is of type ClusterIP: it has no NodePort",
        ),
        (
            "{name: g, from: {pods: {names: [client]}}, to: {service: {name: web, via: loadBalancer}}}",
            "to.service.via",
            "no load-balancer address",
        ),
        (
            "{name: g, from: {pods: {names: [client]}}, to: {service: {name: web-lb, via: nodePort, nodes: [n9]}}}",
            "to.service.nodes[0]",
            "no node named 'n9'",
        ),
        (
            "{name: g, from: {pods: {names: [client]}}, to: {service: {name: web}}, ports: [8080]}",
            "ports[0]",
            "has no port 8080",
        ),
    ],
)
def test_service_targets_are_checked(tmp_path, group, field, fragment):
    path = _write(tmp_path, f"- name: s\n  probes: [{group}]\n", manifests=SVC)
    _one(path, f"spec.steps[0].probes[0].{field}", fragment, "probe group 'g'")


@pytest.mark.parametrize(
    "action, field, fragment",
    [
        (
            "{label: {pods: {names: [two-containers]}, labels: {'bad key!': x}}}",
            "label.labels.bad key!",
            "is not a valid qualified name",
        ),
        (
            "{label: {pods: {names: [two-containers]}, labels: {app: 'not valid!'}}}",
            "label.labels.app",
            "label value 'not valid!' is not valid",
        ),
        (
            "{label: {pods: {names: [two-containers]}, labels: {app: " + "'" + "v" * 64 + "'}}}",
            "label.labels.app",
            "is not valid",
        ),
        ("{label: {pods: {names: [nobody]}, labels: {a: b}}}", "label.pods.names[0]", "no pod named 'nobody'"),
        ("{label: {namespace: nope, labels: {a: b}}}", "label.namespace", "no namespace 'nope'"),
        ("{deletePods: {matchLabels: {app: none}}}", "deletePods", "selects no pod"),
        ("{scale: {deployment: wbe, replicas: 2}}", "scale.deployment", "no Deployment default/wbe"),
        ("{scale: {deployment: web, replicas: 100000000}}", "scale.replicas", "out of range"),
        ("{rollback: {deployment: web}}", "rollback", "no previous revision"),
        ("{rollout: {deployment: nope}}", "rollout.deployment", "no Deployment default/nope"),
        ("{apply: [missing.yaml]}", "apply[0]", "no such file 'missing.yaml'"),
        ("{delete: [/dev/null]}", "delete[0]", "is not a regular file"),  # a folder is read: kubectl -f DIR
    ],
)
def test_actions_are_checked_at_their_step(tmp_path, action, field, fragment):
    path = _write(tmp_path, f"- name: s\n  actions: [{action}]\n  probes: [{OK_GROUP}]\n")
    _one(path, f"spec.steps[0].actions[0].{field}", fragment, "step 's'")


def test_a_pod_that_exists_only_later_is_judged_at_its_step(tmp_path):
    (tmp_path / "late.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: late, labels: {app: late}}\n"
        "spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}\n"
    )
    later = f"""\
        - name: before
          probes: [{OK_GROUP}]
        - name: after
          actions: [{{apply: [late.yaml]}}]
          probes: [{{name: g, from: {{pods: {{names: [late]}}}}, to: {{pods: {{matchLabels: {{app: web}}}}}}}}]
        """
    load_experiment(_write(tmp_path, later))  # valid at its step
    early = later.replace("names: [two-containers]", "names: [late]", 1)
    _one(
        _write(tmp_path, early, name="early.yaml"),
        "spec.steps[0].probes[0].from.pods.names[0]",
        "no pod named 'late' at this step",
        "step 'before'",
    )
    # and a pod deleted at a step is gone for the next ones
    gone = """\
        - name: delete
          actions: [{deletePods: {names: [two-containers]}}]
          probes: [{name: g, from: {pods: {names: [two-containers]}}, to: {pods: all}}]
        """
    _one(
        _write(tmp_path, gone, name="gone.yaml"),
        "spec.steps[0].probes[0].from.pods.names[0]",
        "no pod named 'two-containers'",
    )


def test_rollback_after_a_rollout_and_a_scaled_group_are_valid(tmp_path):
    steps = """\
        - name: roll
          actions: [{scale: {deployment: web, replicas: 4}}, {rollout: {deployment: web, image: "x:2", stepDelay: 0}}]
          probes: [{name: g, from: {pods: {names: [client]}}, to: {service: {name: web}}}]
        - name: back
          actions: [{rollback: {deployment: web, stepDelay: 0}}]
          during: {probes: [{name: d, from: {pods: {names: [client]}}, to: {service: {name: web}}}]}
          probes: [{name: g, from: {pods: {names: [client]}}, to: {service: {name: web}}}]
        """
    exp = load_experiment(_write(tmp_path, steps, manifests=SVC))
    assert [s.name for s in exp.steps] == ["roll", "back"]


def test_an_apply_file_resolves_namespaces_against_the_cluster_at_its_step(tmp_path):
    """issue 13: a file holding only a NetworkPolicy for namespace x, x declared by the cluster's manifests."""
    base = tmp_path / "base.yaml"
    base.write_text(APP.read_text() + "\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")
    (tmp_path / "policy.yaml").write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: x}\n"
        "spec: {podSelector: {}, policyTypes: [Ingress]}\n"
    )
    steps = f"- name: s\n  actions: [{{apply: [policy.yaml]}}]\n  probes: [{OK_GROUP}]\n"
    load_experiment(_write(tmp_path, steps, manifests=base))
    # without the namespace in the cluster, the file's own problem names that file
    with pytest.raises(SpecError) as err:
        load_experiment(_write(tmp_path, steps, name="no-ns.yaml"))
    assert "policy.yaml (NetworkPolicy x/deny): metadata.namespace: namespace 'x' does not exist" in str(err.value)


def test_missing_or_directory_inputs_name_the_experiment_and_field(tmp_path):
    line = _one(
        _write(tmp_path, f"- name: s\n  probes: [{OK_GROUP}]\n", topology="topo.yaml"),
        "spec.topology",
        "no such file 'topo.yaml'",
    )
    assert line.startswith(str(tmp_path / "exp.yaml") + " (Experiment x): spec.topology: ")
    _one(
        _write(tmp_path, f"- name: s\n  probes: [{OK_GROUP}]\n", manifests="/dev/null"),
        "spec.manifests[0]",
        "is not a regular file",
    )
    # a folder is read as `kubectl apply -f DIR` reads it: one without manifests is an error
    (tmp_path / "empty").mkdir()
    _one(
        _write(tmp_path, f"- name: s\n  probes: [{OK_GROUP}]\n", manifests=tmp_path / "empty"),
        "spec.manifests[0]",
        "no *.yaml, *.yml or *.json files in this folder",
    )


def test_steps_must_not_be_empty(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text(
        f"apiVersion: testbed/v1alpha1\nkind: Experiment\nmetadata: {{name: x}}\n"
        f"spec: {{topology: {TOPO}, steps: []}}\n"
    )
    _one(str(path), "spec.steps", "needs at least one step")


@pytest.mark.parametrize(
    "capture, field, fragment",
    [
        ("{at: nowhere}", "capture[0].at", "no pod, node or external host named 'nowhere'"),
        ("{at: kind-worker, interface: wlan0}", "capture[0].interface", "'wlan0' is not an interface of kind-worker"),
        ("{at: two-containers, interface: cni0}", "capture[0].interface", "not an interface of two-containers"),
        ("{at: kind-worker, interface: 'a/b'}", "capture[0].interface", "is not an interface name"),
        ("{at: kind-worker, filter: '-w /tmp/x'}", "capture[0].filter", "may not start with '-'"),
    ],
)
def test_capture_targets_are_checked(tmp_path, capture, field, fragment):
    path = _write(tmp_path, f"- name: s\n  capture: [{capture}]\n  probes: [{OK_GROUP}]\n")
    _one(path, f"spec.steps[0].{field}", fragment)


def test_shipped_experiments_pass_the_check():
    for path in sorted((REPO / "experiments").glob("*.yaml")):
        exp = load_experiment(str(path))
        assert exp.steps, path


def test_a_group_that_would_send_too_many_probes_is_refused(tmp_path):
    path = _write(
        tmp_path,
        "- name: s\n  actions: [{scale: {deployment: web, replicas: 30}}]\n"
        "  probes: [{name: g, from: {pods: all}, to: {pods: all}, repeat: 10000}]\n",
    )
    _one(path, "spec.steps[0].probes[0]", "at most 1,000,000 per group", "probe group 'g'")
