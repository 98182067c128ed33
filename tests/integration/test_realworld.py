"""Public manifests written for real clusters run unmodified: Online Boutique's release."""

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
    assert (rows["outcome"] == "connected").all() and len(rows) == meta["probes"] > 0
    laptop = rows[rows["src_name"] == "laptop"]
    assert set(laptop["dst_name"]) == {"frontend-external"} and len(laptop) >= 10
