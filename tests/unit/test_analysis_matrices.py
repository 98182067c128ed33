"""Reachability matrices and expected-vs-observed differences on a dataset with known answers."""

from __future__ import annotations

import math

from testbed.analysis import (
    difference_matrix,
    from_rows,
    outcome_matrix,
    reachability_matrices,
    reachability_matrix,
    share_matrix,
)

from .synthetic_runs import row, synthetic_rows


def _frame():
    return from_rows(synthetic_rows())


def test_one_matrix_per_step_and_protocol_in_run_order():
    titles = [(m.step, m.protocol) for m in reachability_matrices(_frame())]
    assert titles == [("baseline", "TCP"), ("baseline", "UDP"), ("policy", "TCP"), ("service", "TCP")]
    per_port = [(m.step, m.protocol, m.port) for m in reachability_matrices(_frame(), per_port=True)]
    assert per_port == [("baseline", "TCP", 80), ("baseline", "UDP", 53), ("policy", "TCP", 80), ("service", "TCP", 80)]


def test_share_outcome_and_counts_of_all_pairs():
    m = reachability_matrix(_frame(), "baseline", "TCP")
    assert list(m.share.index) == ["a", "b", "c", "n1 (node)", "n2 (node)"]
    assert list(m.share.columns) == ["a:80", "b:80", "c:80"]
    assert m.share.at["a", "c:80"] == 0.0 and m.outcome.at["a", "c:80"] == "timeout"
    assert m.share.at["c", "a:80"] == 1.0 and m.outcome.at["c", "a:80"] == "connected"
    assert math.isnan(m.share.at["a", "a:80"]) and m.outcome.at["a", "a:80"] == "" and m.probes.at["a", "a:80"] == 0
    assert math.isnan(m.share.at["n1 (node)", "b:80"])
    assert int(m.probes.to_numpy().sum()) == 8 and int(m.connected.to_numpy().sum()) == 7


def test_repeated_probes_that_disagree_make_a_mixed_cell():
    m = reachability_matrix(_frame(), "baseline", "UDP")
    assert m.probes.at["a", "b:53"] == 3 and m.connected.at["a", "b:53"] == 2
    assert abs(m.share.at["a", "b:53"] - 2 / 3) < 1e-12 and m.outcome.at["a", "b:53"] == "mixed"
    assert m.mismatches.at["a", "b:53"] == 1
    assert abs(m.difference.at["a", "b:53"] - (2 / 3 - 1)) < 1e-12


def test_difference_marks_holes_and_breaks():
    policy = reachability_matrix(_frame(), "policy", "TCP")
    assert policy.expected.at["b", "c:80"] == 0.0 and policy.difference.at["b", "c:80"] == 1.0  # open, expected blocked
    assert policy.difference.at["a", "c:80"] == 0.0 and policy.mismatches.at["a", "c:80"] == 0  # blocked as expected
    baseline = reachability_matrix(_frame(), "baseline", "TCP")
    assert baseline.difference.at["a", "c:80"] == -1.0  # blocked, expected open
    assert baseline.has_expectations


def test_service_destinations_are_the_service_and_its_port():
    m = reachability_matrix(_frame(), "service", "TCP")
    assert list(m.share.columns) == ["skewed (svc):80", "web (svc):80"]
    assert m.probes.at["a", "web (svc):80"] == 300


def test_rows_without_expectation_have_no_difference():
    frame = from_rows(
        [
            row(src_name="a", dst_name="b", expected_outcome=""),
            row(src_name="b", dst_name="a", expected_outcome="", outcome="refused"),
        ]
    )
    m = reachability_matrix(frame, "baseline", "TCP")
    assert not m.has_expectations and m.difference.isna().all().all()
    assert int(m.mismatches.to_numpy().sum()) == 0
    assert m.outcome.at["b", "a:80"] == "refused"


def test_helpers_and_empty_frames():
    frame = _frame()
    assert share_matrix(frame, "baseline", "TCP", 80).at["a", "c"] == 0.0  # one port: no port in the labels
    assert outcome_matrix(frame, "policy", "TCP").at["b", "c:80"] == "connected"
    assert difference_matrix(frame, "policy", "TCP").at["b", "c:80"] == 1.0
    empty = from_rows([])
    assert reachability_matrices(empty) == []
    m = reachability_matrix(empty)
    assert m.share.empty and not m.has_expectations
    assert reachability_matrix(frame, "nonexistent").probes.empty
