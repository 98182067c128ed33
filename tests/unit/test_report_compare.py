"""`testbed compare`: what changed between two runs, on synthetic runs with known differences."""

from __future__ import annotations

import pytest

from testbed.analysis import ResultsError, from_rows
from testbed.cli import main
from testbed.report.compare import changed_probes, compare_runs

from .synthetic_runs import synthetic_rows, table, write_run


@pytest.fixture
def runs(tmp_path):
    # run b: the policy hole b -> c is closed, every latency doubles, and the NAT'd reply is fixed
    rows_b = synthetic_rows(variant="b", latency_scale=2.0)
    for r in rows_b:
        if r["step"] == "baseline" and (r["src_name"], r["dst_name"]) == ("c", "a"):
            r["seen_src_ip"], r["nat_free"] = r["src_ip"], True
    a = write_run(str(tmp_path / "a"), synthetic_rows(), run_id="run-a")
    b = write_run(str(tmp_path / "b"), rows_b, run_id="run-b")
    return a, b


def test_changed_probes_are_listed(runs):
    a, b = runs
    text = compare_runs(a, b)
    assert text.startswith("# Comparison: run-a → run-b\n")
    changed = table(text, "Probes whose outcome changed (1)")
    assert changed == [
        {
            "step": "policy",
            "from": "b",
            "to": "c",
            "protocol": "TCP",
            "port": "80",
            "attempt": "0",
            "outcome A": "connected",
            "outcome B": "timeout",
            "expected": "blocked",
        }
    ]


def test_verdict_counts_nat_and_latency(runs):
    a, b = runs
    text = compare_runs(a, b)
    assert "**FAIL → FAIL** (unchanged)." in text
    verdicts = {r["run"]: r for r in table(text, "Verdict")}
    assert verdicts["A: run-a"]["mismatches"] == "4" and verdicts["B: run-b"]["mismatches"] == "2"
    counts = {
        (r["step"], r["communication"], r["protocol"]): r for r in table(text, "Counts per communication and protocol")
    }
    policy = counts[("policy", "pod-to-pod (across nodes)", "TCP")]
    assert (policy["connected A"], policy["connected B"], policy["Δ connected"], policy["changed"]) == (
        "3",
        "2",
        "-1",
        "yes",
    )
    assert counts[("policy", "pod-to-pod (same node)", "TCP")]["changed"] == ""
    nat = {r["communication"]: r for r in table(text, "NAT-free verdicts")}
    across = nat["pod-to-pod (across nodes)"]
    assert (across["source as expected? A"], across["source as expected? B"], across["changed"]) == ("no", "yes", "yes")
    assert nat["pod-to-service"]["changed"] == ""
    lat = {(r["communication"], r["protocol"]): r for r in table(text, "Latency p50 (ms, connected probes)")}
    same = lat[("pod-to-pod (same node)", "TCP")]
    assert float(same["p50 B"]) == pytest.approx(2 * float(same["p50 A"]), abs=2e-3) and same["Δ %"] == "+100.0%"


def test_a_run_against_itself_changes_nothing(runs):
    a, _ = runs
    text = compare_runs(a, a)
    assert "Probes whose outcome changed (0)" in text and "**FAIL → FAIL** (unchanged)." in text


def test_probes_only_in_one_run_are_counted(tmp_path):
    a = write_run(str(tmp_path / "a"), synthetic_rows())
    b = write_run(str(tmp_path / "b"), synthetic_rows(with_services=False))
    changed, only_a, only_b = changed_probes(
        from_rows(synthetic_rows()), from_rows(synthetic_rows(with_services=False))
    )
    assert changed.empty and (only_a, only_b) == (600, 0)
    assert "600 probe(s) only in A and 0 only in B" in compare_runs(a, b)
    empty = write_run(str(tmp_path / "e"), [])
    assert "No probe in either run." in compare_runs(empty, empty)


def test_missing_run_is_a_clear_error(tmp_path, capsys, runs):
    a, b = runs
    with pytest.raises(ResultsError, match="no such results folder"):
        compare_runs(a, str(tmp_path / "nope"))
    assert main(["compare", a, str(tmp_path / "nope")]) == 2
    assert "no such results folder" in capsys.readouterr().err
    assert main(["compare", a, b]) == 0
    assert "Probes whose outcome changed (1)" in capsys.readouterr().out
