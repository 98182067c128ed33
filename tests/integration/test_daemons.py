"""Helper processes that fail at run time are named as the cause (issue 11 items 6, 7, 14).

A killed agent aborts the run with "the agent died (exit -9)" and its log copied into
results/<run>/logs/ before teardown deletes the ledger folder, rather than a "FAIL" blamed on
the network; a capture tcpdump rejects at run time is one line with the results folder written
and marked aborted; nginx reloads are checked, not slept on; the Services report's NAT column
says what was expected and what was seen. Every test leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import signal

import pandas as pd
import pytest

from testbed.cli import main
from testbed.emu.daemon import children
from testbed.emu.ingress import IngressController
from testbed.errors import RunAborted
from testbed.experiment.load import load_experiment
from testbed.experiment.run import run_experiment
from testbed.report import build_report

from .conftest import ROOT

STEPS = """
  steps:
    - name: first
      probes:
        - {name: pods, from: {pods: all}, to: {pods: all}, protocols: [TCP], expect: {outcome: connected, sourceIP: sender}}
    - name: second
      actions: [{scale: {deployment: web, replicas: 3}}]
      probes:
        - {name: pods, from: {pods: all}, to: {pods: all}, protocols: [TCP], expect: {outcome: connected, sourceIP: sender}}
"""


def _experiment(tmp_path, steps: str = STEPS, name: str = "agent-death") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"""apiVersion: testbed/v1alpha1
kind: Experiment
metadata: {{name: {name}}}
spec:
  topology: {ROOT}/topologies/three-nodes.yaml
  manifests: [{ROOT}/manifests/quickstart-app.yaml]
  seed: 1
"""
        + steps
    )
    return str(path)


def _our_agent() -> int:
    """The agent this test's run started: a child of this process (other instances may run too)."""
    for pid in children(os.getpid()):
        try:
            if b"testbed.agent" in open(f"/proc/{pid}/cmdline", "rb").read():
                return pid
        except OSError:
            continue
    raise AssertionError("no agent among our children")


def _kill(pid: int) -> None:
    """SIGKILL, and wait until it is dead (a zombie: Popen reaps it), as a crash would leave it."""
    import time

    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z":
                return
        except OSError:
            return
        time.sleep(0.01)


CHANGE_FIRST = """
  steps:
    - name: first
      actions: [{scale: {deployment: web, replicas: 3}}]
      probes:
        - {name: pods, from: {pods: all}, to: {pods: all}, protocols: [TCP], expect: {outcome: connected}}
"""


@pytest.mark.parametrize(
    "when, steps, during",
    [
        ("step first: ", STEPS, "during step first's probes"),  # killed under the probes
        ("cluster ready", CHANGE_FIRST, "before a change"),  # dead when a change comes
    ],
)
def test_a_killed_agent_is_the_verdict_and_its_log_is_kept(tmp_path, no_leftovers, when, steps, during):
    killed = []

    def progress(message: str) -> None:
        if message.startswith(when) and not killed:
            pid = _our_agent()
            _kill(pid)
            killed.append(pid)

    exp = load_experiment(_experiment(tmp_path, steps))
    with pytest.raises(RunAborted) as err:
        run_experiment(exp, str(tmp_path / "results"), progress)
    assert killed
    run_dir = err.value.run_dir
    build_report(run_dir)  # as `testbed run` does, aborted or not
    message = str(err.value)
    assert message.startswith(f"the agent died (exit -9) ({during}): its log is kept in "), message
    assert "\n" not in message and "FAIL" not in message
    kept = os.path.join(run_dir, "logs", "agent.log")
    assert os.path.isfile(kept) and kept.endswith(message.split("its log is kept in ")[1].split(" ")[0])
    meta = json.load(open(os.path.join(run_dir, "run.json")))
    assert meta["passed"] is False and meta["aborted"].startswith("the agent died (exit -9)")
    summary = open(os.path.join(run_dir, "summary.md")).read()
    assert "**Verdict: ABORTED** — the agent died (exit -9)" in summary and "**Verdict: FAIL**" not in summary
    report = open(os.path.join(run_dir, "report.md")).read()
    assert "**Verdict: ABORTED** — the agent died (exit -9)" in report
    if during.startswith("during"):  # the probes it spoilt are kept, but they are not the verdict
        rows = pd.read_parquet(os.path.join(run_dir, "probes.parquet"))
        assert len(rows) and not rows["outcome_ok"].all()


def test_cli_prints_the_death_as_one_line_after_the_summary(tmp_path, no_leftovers, capsys, monkeypatch):
    import testbed.cli as cli

    original = cli._progress

    def killing(quiet: bool):
        emit = original(True)

        def progress(message: str) -> None:
            if message.startswith("step first: "):
                _kill(_our_agent())
            emit(message)

        return progress

    monkeypatch.setattr(cli, "_progress", killing)
    rc = main(["run", _experiment(tmp_path), "--results", str(tmp_path / "results")])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "**Verdict: ABORTED** — the agent died (exit -9)" in out and "results: " in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("testbed: error: the agent died (exit -9)"), err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "capture, said",
    [
        ("{at: kind-worker, interface: eth9}", "eth9"),
        ("{at: kind-worker, interface: eth0, filter: 'tcp port'}", "syntax error"),
    ],
)
def test_a_capture_tcpdump_rejects_is_one_line_and_the_folder_is_marked(
    tmp_path, no_leftovers, capsys, monkeypatch, capture, said
):
    """At run time: the loader's checks (an unknown interface, a filter `tcpdump -d` rejects) are
    bypassed, as when the kernel refuses what the loader accepted; the run must still end in one
    line with its folder complete and marked aborted. The loader's own refusal is tested below."""
    from testbed import cli
    from testbed.experiment import check

    monkeypatch.setattr(cli, "_check_capture_filters", lambda exp: None)
    monkeypatch.setattr(check, "_check_capture", lambda *a, **k: None)
    steps = f"""
  steps:
    - name: first
      probes:
        - {{name: pods, from: {{pods: all}}, to: {{pods: all}}, protocols: [TCP], expect: {{outcome: connected}}}}
    - name: captured
      capture: [{capture}]
      probes:
        - {{name: pods, from: {{pods: all}}, to: {{pods: all}}, protocols: [TCP], expect: {{outcome: connected}}}}
"""
    rc = main(["run", _experiment(tmp_path, steps, "bad-capture"), "--results", str(tmp_path / "results"), "-q"])
    out, err = capsys.readouterr()
    assert rc == 1 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("testbed: error: capture at kind-worker (step captured) on ") and said in lines[0]
    assert "marked aborted" in lines[0]
    (run_dir,) = [os.path.join(tmp_path, "results", d) for d in os.listdir(tmp_path / "results")]
    for name in ("run.json", "probes.parquet", "summary.md", "report.md"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    meta = json.load(open(os.path.join(run_dir, "run.json")))
    assert meta["aborted"].startswith("capture at kind-worker") and meta["passed"] is False
    assert "**Verdict: ABORTED** — capture at kind-worker" in out
    rows = pd.read_parquet(os.path.join(run_dir, "probes.parquet"))
    assert set(rows["step"]) == {"first"}  # what was measured before is kept


def test_every_helper_is_a_daemon_whose_death_is_named(tmp_path, no_leftovers):
    """dnsmasq and nginx, like the agent: the cluster lists them, notices a death, names the
    process in the message, and keeps its log; nginx reloads are checked (new workers)."""
    from testbed.emu.cluster import EmulatedCluster
    from testbed.errors import DaemonDied
    from testbed.plan.build import plan_cluster, replan
    from testbed.spec.topology import load_topology
    from testbed.spec.workloads import load_manifests

    spec = load_topology(os.path.join(ROOT, "topologies/three-nodes.yaml"))
    manifests = load_manifests([os.path.join(ROOT, "manifests/ingress-demo.yaml")])
    with EmulatedCluster(plan_cluster(spec, manifests, seed=1)) as cluster:
        names = [d.name for d in cluster.daemons()]
        assert names[0].startswith("nginx in ingress-nginx/") and names[-1] == "the agent"
        assert sum(n.startswith("dnsmasq in kube-system/coredns-") for n in names) == 2
        assert all(d.alive() for d in cluster.daemons())
        cluster.check_daemons("now")
        # an endpoint change reloads nginx: checked by its new workers, not by sleeping
        ingress = cluster.controller(IngressController)
        assert ingress is not None and ingress.daemon is not None
        nginx = ingress.daemon
        workers = children(nginx.pid)
        from testbed.experiment.changes import Scale, apply_action

        new_manifests, new_plan = apply_action(Scale("Deployment", "coffee", 4), spec, manifests, cluster.plan, "test")
        cluster.apply(new_plan)
        assert ingress.reloads == 1 and children(nginx.pid) - workers
        dns = next(d for d in cluster.daemons() if d.name.startswith("dnsmasq"))
        _kill(dns.pid)
        with pytest.raises(DaemonDied) as err:
            cluster.check_daemons("before probing")
        assert str(err.value).startswith(f"{dns.name} died (exit -9) (before probing): see ")
        cluster.keep_logs_of(err.value, str(tmp_path / "logs"))
        assert "its log is kept in" in str(err.value) and os.path.isfile(err.value.log)
        assert os.path.isfile(tmp_path / "logs" / "agent.log")
        assert any(n.startswith("nginx-") for n in os.listdir(tmp_path / "logs"))
        with pytest.raises(DaemonDied, match="^dnsmasq in kube-system/coredns-.* died"):
            cluster.apply(replan(spec, new_manifests, 1, prev=cluster.plan))
    # teardown stopped the live ones and reaped the dead one: no_leftovers checks the machine


@pytest.mark.parametrize(
    "capture, field",
    [
        ("{at: kind-worker, interface: eth9}", "capture[0].interface"),
        ("{at: kind-worker, interface: eth0, filter: 'tcp port'}", "capture[0].filter"),
    ],
)
def test_a_bad_capture_is_refused_at_load_before_anything_is_built(tmp_path, no_leftovers, capsys, capture, field):
    steps = f"""
  steps:
    - name: captured
      capture: [{capture}]
      probes:
        - {{name: pods, from: {{pods: all}}, to: {{pods: all}}, protocols: [TCP], expect: {{outcome: connected}}}}
"""
    rc = main(["run", _experiment(tmp_path, steps, "bad-capture"), "--results", str(tmp_path / "results"), "-q"])
    _out, err = capsys.readouterr()
    assert rc == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and field in lines[0] and "step 'captured'" in lines[0], err
    assert not os.path.exists(tmp_path / "results") or not os.listdir(tmp_path / "results")
