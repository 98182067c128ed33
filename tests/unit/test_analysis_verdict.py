"""The NAT-free table (analysis/nat.py) and the run's verdict (analysis/verdict.py), known answers."""

from __future__ import annotations

from testbed.analysis import (
    confusion,
    confusion_by_step,
    from_rows,
    mismatches,
    nat_free,
    nat_table,
    nat_verdicts,
    nat_violations,
    run_verdict,
    summary_table,
)

from .synthetic_runs import row, synthetic_rows


def _frame():
    return from_rows(synthetic_rows())


def test_nat_table_per_communication():
    table = nat_table(_frame()).set_index("communication")
    assert list(table.index) == [
        "pod-to-pod (same node)",
        "pod-to-pod (across nodes)",
        "node-to-pod (same node)",
        "node-to-pod (across nodes)",
        "pod-to-service",
    ]
    across = table.loc["pod-to-pod (across nodes)"]
    # baseline a<->c, b<->c and policy a<->c, b<->c: 8 probes, 2 timeouts, c -> a NATed to 192.168.1.3
    assert (across["probes"], across["connected"], across["checked"], across["nat_free"], across["violations"]) == (
        8,
        6,
        6,
        5,
        1,
    )
    assert across["verdict"] == "no" and across["unexpected_sources"] == "192.168.1.3 ×1"
    same = table.loc["node-to-pod (same node)"]
    # a node reaching its own pod is seen from cni0's gateway: NAT-free, though not the node's own IP
    assert same["verdict"] == "yes" and same["saw_sender_ip"] == 0 and same["nat_free"] == 1
    assert table.loc["pod-to-service", "checked"] == 600
    assert nat_verdicts(_frame())["pod-to-pod (same node)"] == "yes"


def test_nat_is_recomputed_from_the_addresses_not_the_stored_column():
    frame = from_rows(
        [
            row(src_name="a", dst_name="b", seen_src_ip="10.244.1.1", nat_free=True),
            row(src_name="b", dst_name="a", expected_src_ips=""),  # '' = any source accepted
            row(src_name="a", dst_name="c", outcome="timeout"),
        ]
    )
    assert nat_free(frame).tolist()[:2] == [False, True] and nat_free(frame).isna().tolist()[2]
    assert len(nat_violations(frame)) == 1
    assert nat_table(from_rows([row(src_name="a", dst_name="c", outcome="timeout")]))["verdict"].tolist() == ["n/a"]


def test_confusion_counts():
    conf = confusion(_frame())
    # expected allowed: 17 rows before the service step (-2 blocked in policy) + 600 service rows
    assert conf.loc["expected allowed"].tolist() == [613, 2]
    assert conf.loc["expected blocked"].tolist() == [1, 1]
    by_step = confusion_by_step(_frame())
    assert by_step["policy"].loc["expected blocked"].tolist() == [1, 1]
    assert by_step["baseline"].loc["expected allowed"].tolist() == [9, 2]


def test_mismatches_list_outcomes_and_nat():
    bad = mismatches(_frame())
    got = [
        (r.step, r.source.split()[0], r.destination.split()[0], r.protocol, r.outcome, r.problem)
        for r in bad.itertuples()
    ]
    assert got == [
        ("baseline", "a", "c", "TCP", "timeout", "outcome"),
        ("baseline", "c", "a", "TCP", "connected", "NAT"),
        ("baseline", "a", "b", "UDP", "timeout", "outcome"),
        ("policy", "b", "c", "TCP", "connected", "outcome"),
    ]


def test_verdict():
    v = run_verdict(_frame())
    assert (v.passed, v.probes, v.as_expected, v.nat_violations, v.mismatches) == (False, 617, 614, 1, 4)
    good = from_rows([row(src_name="a", dst_name="b"), row(src_name="b", dst_name="a", expected_outcome="")])
    v = run_verdict(good)
    assert v.passed and v.with_expectation == 1 and v.word == "PASS"
    assert not run_verdict(from_rows([])).passed  # no probe is no pass


def test_summary_table():
    table = summary_table(_frame())
    first = table.iloc[0].to_dict()
    assert first == {
        "step": "baseline",
        "communication": "pod-to-pod (same node)",
        "protocol": "TCP",
        "probes": 2,
        "connected": 2,
        "refused": 0,
        "timeout": 0,
        "other": 0,
        "expected": 2,
        "as_expected": 2,
        "nat_checked": 2,
        "nat_free": 2,
    }
    assert int(table["probes"].sum()) == 617
    assert summary_table(from_rows([])).empty
