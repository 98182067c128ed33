"""A StatefulSet's rolling update in a live cluster, with real packets (experiment/updates.py):
pods replaced one at a time from the highest ordinal, each reached by its own DNS name at its
new address after; probes every 50 ms during the update never miss more than one pod."""

from __future__ import annotations

import json
import os

import pandas as pd

from .conftest import ROOT

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
