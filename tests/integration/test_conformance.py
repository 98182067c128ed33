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
    assert meta["enforcement_seconds"]["max"] < 1.0  # a policy change is in place within a second


def test_cli_reports_progress_early_and_no_empty_table(tmp_path, no_leftovers, capsys):
    from testbed.cli import main

    assert main(["conformance", "--limit", "3", "--results", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    progress = err.splitlines()
    assert progress[0] == "[testbed] 3 cases generated (seed 0); building the cluster"  # before the build
    assert any(line.startswith("[testbed] 1/3 cases: ") for line in progress)  # after the first case
    assert "**PASS** — 3 cases" in out and "|" not in out and "results: " in out


def test_a_dead_agent_aborts_the_suite_with_its_cause(tmp_path, no_leftovers):
    import signal

    import pytest

    from testbed.emu.daemon import children
    from testbed.errors import RunAborted

    def progress(message: str) -> None:
        if message.startswith("1/"):
            for pid in children(os.getpid()):
                if b"testbed.agent" in open(f"/proc/{pid}/cmdline", "rb").read():
                    os.kill(pid, signal.SIGKILL)
                    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # dead, left for Popen to reap

    with pytest.raises(RunAborted) as err:
        run_conformance(os.path.join(ROOT, "topologies", "three-nodes.yaml"), str(tmp_path), limit=4, progress=progress)
    assert str(err.value).startswith("the agent died (exit -9) (before a change): its log is kept in ")
    run_dir = err.value.run_dir
    meta = json.load(open(os.path.join(run_dir, "conformance.json")))
    assert meta["aborted"].startswith("the agent died") and meta["counts"]["cases"] == 1  # not 3 errors after it
    assert "**ABORTED** — the agent died (exit -9)" in open(os.path.join(run_dir, "conformance.md")).read()
    assert os.path.isfile(os.path.join(run_dir, "logs", "agent.log"))
