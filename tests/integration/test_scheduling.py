"""kube-scheduler's constraints with real pods (experiments/scheduling-racks.yaml): required
anti-affinity on the zone puts one replica per rack, a zone spread constraint splits replicas
evenly, the replica no rack can take stays Pending (and the verdict says so), and packets reach
every replica across the racks."""

from __future__ import annotations

import json
import os

import pandas as pd

from testbed.experiment.load import load_experiment
from testbed.experiment.run import run_experiment

from .conftest import ROOT

RACK = {"kind-control-plane": "rack1", "kind-worker": "rack1", "kind-worker2": "rack2", "kind-worker3": "rack2"}


def test_anti_affinity_spreads_replicas_across_racks(tmp_path, no_leftovers):
    exp = load_experiment(os.path.join(ROOT, "experiments", "scheduling-racks.yaml"))
    run_dir, passed = run_experiment(exp, str(tmp_path), progress=lambda _m: None)
    summary = open(os.path.join(run_dir, "summary.md")).read()
    assert passed, summary
    rows = pd.read_parquet(os.path.join(run_dir, "probes.parquet"))
    meta = json.load(open(os.path.join(run_dir, "run.json")))
    assert meta["cluster"]["pending"] == 2  # the third zonal replica, before and after the deletion
    assert "pod(s) Pending" in summary
    placed = rows[(rows["step"] == "placed") & rows["dst_name"].str.startswith("zonal-")]
    # one zonal replica per rack, reached from the client and from each other with real packets
    assert sorted(RACK[n] for n in set(placed["dst_node"])) == ["rack1", "rack2"]
    assert placed["outcome"].eq("connected").all() and (placed["seen_src_ip"] == placed["src_ip"]).all()
    across = placed[placed["group"] == "zonal-to-zonal-across-racks"]
    assert len(across) == 2 and all(RACK[a] != RACK[b] for a, b in zip(across["src_node"], across["dst_node"]))
    spread = rows[rows["group"] == "client-to-spread"]
    assert sorted(RACK[n] for n in spread["dst_node"]) == ["rack1", "rack1", "rack2", "rack2"]
    # after deleting them, the replacements (new names) again take one rack each
    replaced = rows[rows["step"] == "replaced"]
    assert not set(replaced["dst_name"]) & set(placed["dst_name"])
    assert sorted(RACK[n] for n in set(replaced["dst_node"])) == ["rack1", "rack2"]
    plan = json.load(open(os.path.join(run_dir, "plan.json")))
    (pending,) = plan["pending"]
    assert (
        pending["reason"].startswith("0/4 nodes are available: ")
        and "didn't match pod anti-affinity rules" in (pending["reason"])
    )
