"""StatefulSets, DaemonSets, Jobs and CronJobs in a live cluster, driven through the shell as a
user would (`testbed up --script`): real namespaces, real DNS answers, real connections."""

from __future__ import annotations

import json
import os

import pandas as pd

from .conftest import ROOT, run_up

DATA = os.path.join(ROOT, "tests", "unit", "data", "controllers")


def test_controllers_follow_the_cluster_in_the_shell(testbed_cmd, tmp_path, no_leftovers):
    extra = os.path.join(DATA, "extra.yaml")
    script = tmp_path / "script.txt"
    commands = [
        "web-0 hostname",
        "web-1 dig +short web-0.nginx.default.svc.cluster.local",
        "get pod web-0 -o jsonpath={.status.podIP}",
        "web-1 nc -zv -w2 web-0.nginx 80",
        "get pods -l app=ssd-agent -o wide",
        "kubectl label node kind-control-plane kind-worker disk=ssd",
        "get pods -l app=ssd-agent -o wide",
        "kubectl label node kind-worker disk-",
        "get pods -l app=ssd-agent -o wide",
        "kubectl create job report-now --from=cronjob/report",
        "get pods -l job-name=report-now -o name",
        "kubectl delete pod web-0",
        "get pod web-0 -o jsonpath={.status.podIP}",
        "web-1 dig +short web-0.nginx.default.svc.cluster.local",
        "kubectl scale statefulset web --replicas=1",
        "get pods -l app=nginx -o name",
    ]
    script.write_text("\n".join(commands) + "\n")
    out = run_up(
        testbed_cmd,
        ["-f", os.path.join(ROOT, "manifests", "realworld", "k8s-website"), "-f", extra],
        str(script),
    )
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    # each command's output, in order (the shell echoes `testbed> COMMAND` before it)
    said = [block.split("\n", 1)[1].strip() if "\n" in block else "" for block in out.stdout.split("testbed> ")[1:]]
    assert len(said) == len(commands), out.stdout
    assert said[0] == "web-0"  # the pod's UTS hostname
    assert said[1] == said[2] and said[2].startswith("10.244.")  # web-0's own DNS name: its address
    assert "Connection to web-0.nginx" in text and "succeeded" in text  # and it connects
    assert "ssd-agent-" not in said[4]  # no node carries disk=ssd yet: no daemon pod (stderr: none found)
    nodes = [[line.split()[6] for line in said[i].splitlines()[1:]] for i in (6, 8)]
    assert sorted(nodes[0]) == ["kind-control-plane", "kind-worker"]  # relabelled: daemon pods follow
    assert nodes[1] == ["kind-control-plane"]  # the label removed from kind-worker: its pod is gone
    assert said[10].startswith("pod/report-now-")  # the CronJob's Job runs its pod
    assert said[12].startswith("10.244.") and said[12] != said[2]  # web-0 recreated: a new address
    assert said[13] == said[12]  # which its name now resolves to
    assert said[15] == "pod/web-0"  # scaled down from the highest ordinal


def test_an_experiment_triggers_a_cronjob_and_moves_a_daemonset(tmp_path, no_leftovers):
    from testbed.experiment.load import load_experiment
    from testbed.experiment.run import run_experiment

    exp = load_experiment(os.path.join(DATA, "experiment.yaml"))
    run_dir, passed = run_experiment(exp, str(tmp_path / "results"), progress=lambda _m: None)
    summary = open(os.path.join(run_dir, "summary.md")).read()
    assert passed, summary
    rows = pd.read_parquet(os.path.join(run_dir, "probes.parquet"))
    assert len(rows) == 3 and (rows["outcome"] == "connected").all()
    assert list(rows["src_node"]) == ["kind-worker", rows["src_node"][1], "kind-worker2"]  # the daemon pod moved
    assert "| one | jobs complete: default/report-now | 0 | 1 |" in summary  # its pod went at the step's end
    plan = json.load(open(os.path.join(run_dir, "plan.json")))
    assert not any(p["name"].startswith("report-now-") for p in plan["pods"])
    assert [p["node"] for p in plan["pods"] if p["name"].startswith("ssd-agent-")] == ["kind-worker2"]
