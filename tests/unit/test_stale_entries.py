"""experiment/stale_entries.py: which probes a conntrack entry of an unanswered SYN decides."""

from __future__ import annotations

from testbed.experiment.stale_entries import EXPECTED_BY, SYN_SENT_TIMEOUT_S, mark_stale_entries


def _row(stamp, sport, outcome, expected="connected", protocol="TCP", dst="10.96.0.10"):
    return {
        "timestamp": stamp,
        "protocol": protocol,
        "src_ip": "10.244.1.2",
        "sport": sport,
        "dst_ip": dst,
        "port": 80,
        "outcome": outcome,
        "expected_outcome": expected,
        "expected_by": "experiment",
        "outcome_ok": expected in ("any", outcome),
    }


def test_a_reused_port_of_an_unanswered_syn_is_decided_by_the_stale_entry():
    first, later = _row(1.0, 57970, "timeout", "any"), _row(30.0, 57970, "timeout")
    assert mark_stale_entries([later, first]) == 1  # in time order, whatever the list's order
    assert (later["expected_outcome"], later["expected_by"], later["outcome_ok"]) == ("any", EXPECTED_BY, True)
    assert first["expected_by"] == "experiment"


def test_only_that_exact_five_tuple_while_the_entry_lives():
    rows = [
        _row(1.0, 57970, "timeout", "any"),
        _row(2.0, 57972, "timeout"),  # another port: the rules decide, and it failed
        _row(3.0, 57970, "timeout", dst="10.96.0.11"),  # another destination
        _row(4.0, 57970, "timeout", protocol="UDP"),  # kube-proxy deletes UDP entries
        _row(1.0 + SYN_SENT_TIMEOUT_S + 60, 57970, "timeout"),  # the entry has expired
    ]
    assert mark_stale_entries(rows) == 0
    assert [r["outcome_ok"] for r in rows] == [True, False, False, False, False]


def test_an_answered_syn_leaves_no_stale_entry():
    rows = [_row(1.0, 100, "refused", "any"), _row(2.0, 100, "timeout"), _row(3.0, 200, "timeout", "any")]
    rows += [_row(4.0, 200, "connected"), _row(5.0, 200, "timeout")]  # connected: the entry left SYN_SENT
    assert mark_stale_entries(rows) == 1
    assert [r["expected_by"] for r in rows] == ["experiment", "experiment", "experiment", EXPECTED_BY, "experiment"]


def test_an_expected_failure_keeps_its_expectation():
    rows = [_row(1.0, 100, "timeout", "any"), _row(2.0, 100, "connected", "blocked")]
    assert mark_stale_entries(rows) == 0
    assert rows[1]["outcome_ok"] is False
