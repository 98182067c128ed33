"""Public manifests written for real clusters run unmodified: Online Boutique's release, then its
own 13 NetworkPolicy files (every app -> Service cell by hand and by the oracle, real packets)."""

from __future__ import annotations

import json
import os

import pandas as pd

from testbed.experiment.load import load_experiment
from testbed.experiment.run import run_experiment

from .conftest import ROOT


def test_online_boutique_release_manifests_run_unmodified(tmp_path, no_leftovers):
    exp = load_experiment(os.path.join(ROOT, "experiments", "online-boutique.yaml"))
    run_dir, passed = run_experiment(exp, str(tmp_path), progress=lambda _m: None)
    rows = pd.read_parquet(os.path.join(run_dir, "probes.parquet"))
    meta = json.load(open(os.path.join(run_dir, "run.json")))
    plan = json.load(open(os.path.join(run_dir, "plan.json")))
    apps = {p["labels"].get("app") for p in plan["pods"] if p["namespace"] == "default"}
    assert len(apps) == 12 and plan["pending"] == []  # every app's pod is up
    assert "11 ServiceAccount: not emulated, no effect on the network" in meta["notes"]
    assert passed, open(os.path.join(run_dir, "summary.md")).read()
    assert len(rows) == meta["probes"] > 0 and rows["outcome_ok"].all()
    before, after = rows[rows["step"] == "shop"], rows[rows["step"] == "shop-network-policies"]
    assert (before["outcome"] == "connected").all()
    apps = before[before["src_kind"] == "pod"]
    assert apps.groupby(["src_name", "dst_name"]).size().size == 12 * 12  # every app reaches every Service
    laptop = rows[rows["src_name"] == "laptop"]
    assert set(laptop["dst_name"]) == {"frontend-external"} and len(laptop) >= 15
    assert (laptop["outcome"] == "connected").all()
    # after the policies: each of the 144 cells once as written out by hand, once as the oracle says
    cells = after[after["src_kind"] == "pod"]
    for by in ("experiment", "oracle"):
        mine = cells[cells["expected_by"] == by]
        assert len(mine) == 144 and mine.groupby(["src_name", "dst_name"]).size().size == 144
    hand = cells[cells["expected_by"] == "experiment"]
    blocked = hand[hand["expected_outcome"] == "blocked"]
    assert len(blocked) == 95 and blocked["outcome"].isin(["timeout", "refused"]).all()
    assert {"emailservice", "redis-cart", "paymentservice"} <= set(blocked["dst_name"])
    reached = hand[hand["expected_outcome"] == "connected"]
    assert len(reached) == 49 and (reached["outcome"] == "connected").all()


def test_kubernetes_io_statefulset_and_daemonset_examples_run_unmodified(tmp_path, no_leftovers):
    """experiments/k8s-website.yaml: the tutorial's `web` StatefulSet and the fluentd DaemonSet
    (manifests/realworld/k8s-website/, CC BY 4.0) as published."""
    exp = load_experiment(os.path.join(ROOT, "experiments", "k8s-website.yaml"))
    run_dir, passed = run_experiment(exp, str(tmp_path), progress=lambda _m: None)
    rows = pd.read_parquet(os.path.join(run_dir, "probes.parquet"))
    plan = json.load(open(os.path.join(run_dir, "plan.json")))
    assert passed, open(os.path.join(run_dir, "summary.md")).read()
    web = {p["name"]: p for p in plan["pods"] if p["namespace"] == "default"}
    assert sorted(web) == ["web-0", "web-1", "web-2"] and {p["subdomain"] for p in web.values()} == {"nginx"}
    daemons = [p for p in plan["pods"] if p["name"].startswith("fluentd-elasticsearch-")]
    # one per node whose taints it tolerates: the workers (it tolerates the old `master` taint only)
    assert sorted(p["node"] for p in daemons) == ["kind-worker", "kind-worker2"]
    assert (rows["outcome"] == "connected").all() and len(rows) == 27
    assert (rows["seen_src_ip"] == rows["src_ip"]).all()  # a pod's own name: no NAT on the way
    # web-0's name resolved to its first address, then to the recreated pod's new one
    first = set(rows[(rows["step"] == "per-pod-names") & (rows["dst_name"] == "web-0")]["dst_ip"])
    again = set(rows[rows["step"] == "web-0-recreated"]["dst_ip"])
    assert len(first) == len(again) == 1 and first != again and again == {web["web-0"]["ip"]}
    assert set(rows[rows["step"] == "scaled-to-3"]["dst_ip"]) == {web["web-2"]["ip"]}
