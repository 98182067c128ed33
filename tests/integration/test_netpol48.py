"""Upstream Kubernetes' e2e NetworkPolicy cases (benchmarks/netpol48/) as a user runs them: one
`testbed run CASE --no-report` process each (testbed/bench/netpol48.py, the benchmark's own code).
A sample across the kinds: TCP default deny, egress with ipBlock except then an update, a
namespace relabel, UDP and SCTP by port. Every case passes; every blocked verdict is known from
a drop log (at least one per case); the dataset is written and no report is."""

from __future__ import annotations

import os

from testbed.bench.netpol48 import case_files, run_suite

SAMPLE = [
    "tcp-default-deny-all",
    "tcp-egress-cidr-except-overlap",
    "tcp-updated-namespace",
    "udp-ports",
    "sctp-pod-in-other-namespace",
]


def test_every_case_is_a_file_and_none_is_excluded():
    # all 48 of upstream's cases run: none needs what the testbed does not emulate
    assert len(case_files()) == 48


def test_a_sample_passes_as_separate_processes(tmp_path, no_leftovers):
    result = run_suite(SAMPLE, str(tmp_path))
    assert result["failed"] == [], [r["error"] for r in result["rows"]]
    assert result["passed"] == len(SAMPLE)
    ev = result["evidence"]
    assert ev.get("drop-log", 0) >= len(SAMPLE), ev  # a timeout may still decide one on a loaded VM
    for row in result["rows"]:
        files = set(os.listdir(row["run_dir"]))
        assert {"probes.csv", "probes.parquet", "run.json", "summary.md"} <= files
        assert "report.md" not in files and "report.html" not in files  # --no-report
