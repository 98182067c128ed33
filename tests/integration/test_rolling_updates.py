"""A StatefulSet's rolling update in a live cluster, with real packets (experiment/updates.py):
pods replaced one at a time from the highest ordinal, each reached by its own DNS name at its
new address after; probes every 50 ms during the update never miss more than one pod."""

from __future__ import annotations

import json
import os

import pandas as pd

from .conftest import ROOT, run_up

DATA = os.path.join(ROOT, "tests", "unit", "data", "updates")


def test_a_statefulset_rolls_one_pod_at_a_time_from_the_highest_ordinal(tmp_path, no_leftovers):
    from testbed.experiment.load import load_experiment
    from testbed.experiment.run import run_experiment

    exp = load_experiment(os.path.join(DATA, "rolling.yaml"))
    run_dir, passed = run_experiment(exp, str(tmp_path / "results"), progress=lambda _m: None)
    summary = open(os.path.join(run_dir, "summary.md")).read()
    assert passed, summary
    rows = pd.read_parquet(os.path.join(run_dir, "probes.parquet"))
    ip = {
        s: dict(zip(g["group"], g["dst_ip"])) for s, g in rows[rows["step"].isin(["before", "after"])].groupby("step")
    }
    names = ["web-0", "web-1", "web-2"]
    assert all(ip["before"][n] != ip["after"][n] for n in names)  # every pod recreated at a new address
    plan = json.load(open(os.path.join(run_dir, "plan.json")))
    now = {p["name"]: p["ip"] for p in plan["pods"]}
    assert all(ip["after"][n] == now[n] for n in names)  # its DNS name resolves to it
    during = rows[rows["step"] == "roll:during"]
    assert during["attempt"].nunique() >= 10
    # never more than maxUnavailable (1) pod missing in any round
    missing = during[during["outcome"] != "connected"].groupby("attempt")["group"].nunique()
    assert len(missing) == 0 or missing.max() <= 1, missing
    # the order: web-2 answers at its new address first, then web-1, then web-0, each in a later round
    first_new = [during[(during["group"] == n) & (during["dst_ip"] == ip["after"][n])]["attempt"].min() for n in names]
    assert first_new[2] < first_new[1] < first_new[0], first_new
    changes = json.load(open(os.path.join(run_dir, "run.json")))["changes"]
    assert any(c["step"] == "roll" and c["added"] == 3 and c["removed"] == 3 for c in changes), changes


def test_a_no_execute_taint_evicts_and_the_controllers_replace(tmp_path, no_leftovers):
    from testbed.experiment.load import load_experiment
    from testbed.experiment.run import run_experiment
    from testbed.plan.build import plan_cluster
    from testbed.spec.topology import load_topology
    from testbed.spec.workloads import load_manifests

    exp = load_experiment(os.path.join(DATA, "taint.yaml"))
    first = plan_cluster(load_topology(exp.topology), load_manifests(exp.manifests), seed=exp.seed)
    on_worker2 = {p.name for p in first.pods if p.node == "kind-worker2"}
    assert {"web-0", "web-2"} <= on_worker2 and any(n.startswith("patient-") for n in on_worker2)
    run_dir, passed = run_experiment(exp, str(tmp_path / "results"), progress=lambda _m: None)
    summary = open(os.path.join(run_dir, "summary.md")).read()
    assert passed, summary  # every web pod reached by its name, every patient pod, after the taint too
    plan = json.load(open(os.path.join(run_dir, "plan.json")))
    now = {p["name"]: p for p in plan["pods"]}
    assert not on_worker2 & set(now) - {"web-0", "web-2"}  # the evicted bare and Deployment pods are gone
    assert now["web-0"]["node"] == now["web-2"]["node"] == "kind-worker"  # recreated under their names
    rows = pd.read_parquet(os.path.join(run_dir, "probes.parquet"))
    ip = {s: dict(zip(g["group"], g["dst_ip"])) for s, g in rows[rows["group"].str.startswith("web-")].groupby("step")}
    assert ip["before"]["web-0"] != ip["taint"]["web-0"] == now["web-0"]["ip"]  # its name follows it
    assert ip["before"]["web-1"] == ip["taint"]["web-1"]  # kind-worker's pods stay
    changes = json.load(open(os.path.join(run_dir, "run.json")))["changes"]
    (taint,) = [c for c in changes if c["step"] == "taint"]
    # the patient pod tolerates the taint for 20 s, 1 s at timeScale 0.05: evicted then, not before
    assert taint["removed"] == 3 and 1.0 <= taint["seconds"] < 10, taint


def test_the_shell_rolls_a_statefulset_and_taints_a_node(testbed_cmd, tmp_path, no_leftovers):
    script = tmp_path / "script.txt"
    commands = [
        "get pod web-0 -o jsonpath={.status.podIP}",
        "kubectl rollout restart statefulset web",
        "kubectl rollout status statefulset web",
        "get pod web-0 -o jsonpath={.status.podIP}",
        "client dig +short web-0.nginx.default.svc.cluster.local",
        "kubectl rollout history sts web",
        "kubectl rollout undo statefulset web",
        "kubectl taint nodes kind-worker2 dedicated=db:NoExecute",
        "get pods -l app=nginx -o wide",
        "kubectl taint nodes kind-worker2 dedicated-",
    ]
    script.write_text("\n".join(commands) + "\n")
    out = run_up(testbed_cmd, ["-f", os.path.join(DATA, "web.yaml")], str(script))
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    said = [block.split("\n", 1)[1].strip() if "\n" in block else "" for block in out.stdout.split("testbed> ")[1:]]
    assert len(said) == len(commands), out.stdout
    assert said[1] == "statefulset.apps/web restarted"
    assert said[2].startswith("statefulset rolling update complete 3 pods at revision web-"), said[2]
    assert said[3].startswith("10.244.") and said[3] != said[0]  # web-0 recreated at a new address
    assert said[4] == said[3]  # which its name resolves to
    assert "2         rollout restart" in said[5]
    assert said[6] == "statefulset.apps/web rolled back"
    assert said[7] == "node/kind-worker2 tainted"
    nodes = [line.split()[6] for line in said[8].splitlines()[1:]]
    assert len(nodes) == 3 and "kind-worker2" not in nodes  # evicted and recreated elsewhere
    assert said[9] == "node/kind-worker2 untainted"
