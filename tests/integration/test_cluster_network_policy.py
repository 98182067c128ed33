"""ClusterNetworkPolicy tiers with real packets (issue 17): the tiered conformance cases and the
administrator's story, each truth table measured against the tiered oracle."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

import pandas as pd

from testbed.conformance.run import run_conformance
from testbed.experiment.load import load_experiment
from testbed.experiment.run import run_experiment

from .conftest import ROOT


def test_tiered_conformance_has_no_mismatch(tmp_path, no_leftovers):
    run_dir, passed = run_conformance(os.path.join(ROOT, "topologies", "three-nodes.yaml"), str(tmp_path), tiered=True)
    meta = json.load(open(os.path.join(run_dir, "conformance.json")))
    assert passed, open(os.path.join(run_dir, "conformance.md")).read()[:4000]
    assert meta["counts"]["cases"] >= 20 and meta["counts"]["mismatches"] == 0
    assert meta["counts"]["probes"] >= 26 * 486
    suite = ET.parse(os.path.join(run_dir, "conformance.xml")).getroot().find("testsuite")
    assert suite is not None and suite.get("name") == "netpol-tiered-conformance" and int(suite.get("failures")) == 0
    names = {case.get("name") for case in suite.iter("testcase")}
    assert {"npapi-anp-np-banp", "npapi-priority-field", "tier-updates"} <= names


def test_the_administrators_story(tmp_path, no_leftovers):
    run_dir, passed = run_experiment(
        load_experiment(os.path.join(ROOT, "experiments", "cluster-network-policy.yaml")),
        str(tmp_path),
        progress=lambda _m: None,
    )
    assert passed, open(os.path.join(run_dir, "summary.md")).read()
    rows = pd.read_parquet(os.path.join(run_dir, "probes.parquet"))
    story = rows[rows["step"] == "tiers-applied"].set_index("group")["outcome"].to_dict()
    assert story["team-a-to-sensitive"] == "timeout" and story["team-a-to-team-b-baseline-deny"] == "timeout"
    assert story["monitoring-scrapes-sensitive"] == "connected"
    assert story["team-b-to-team-a-passed-and-allowed"] == "connected"
