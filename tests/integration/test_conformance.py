"""A slice of the generated NetworkPolicy suite, measured with real packets against the oracle."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

from testbed.conformance.run import run_conformance

from .conftest import ROOT


def test_conformance_slice_has_no_mismatch(tmp_path, no_leftovers):
    run_dir, passed = run_conformance(os.path.join(ROOT, "topologies", "three-nodes.yaml"), str(tmp_path), limit=16)
    meta = json.load(open(os.path.join(run_dir, "conformance.json")))
    assert passed, open(os.path.join(run_dir, "conformance.md")).read()[:4000]
    assert meta["counts"]["cases"] == 16 and meta["counts"]["mismatches"] == 0
    assert meta["counts"]["probes"] >= 16 * 486
    suite = ET.parse(os.path.join(run_dir, "conformance.xml")).getroot().find("testsuite")
    assert suite is not None and int(suite.get("tests")) == 16 and int(suite.get("failures")) == 0
    assert meta["enforcement_seconds"]["max"] < 1.0   # a policy change is in place within a second
