"""Latency percentiles and throughput summaries equal what numpy computes over the raw rows."""

from __future__ import annotations

import numpy as np
import pytest

from testbed.analysis import from_rows, latency_percentiles, latency_samples, throughput_summary

from .synthetic_runs import row, synthetic_rows


def test_latency_percentiles_equal_numpy_over_connected_rows():
    rows = synthetic_rows()
    table = latency_percentiles(from_rows(rows))
    assert table["communication"].tolist()[0] == "pod-to-pod (same node)"
    for rec in table.to_dict("records"):
        raw = [
            r["latency_ms"]
            for r in rows
            if r["communication"] == rec["communication"]
            and r["protocol"] == rec["protocol"]
            and r["outcome"] == "connected"
        ]
        assert rec["samples"] == len(raw)
        for q in (50, 90, 99):
            assert rec[f"p{q}"] == pytest.approx(float(np.percentile(raw, q)))
        assert rec["max"] == max(raw)


def test_refused_and_timed_out_probes_are_not_latency_samples():
    frame = from_rows(
        [
            row(src_name="a", dst_name="b", latency_ms=2.0),
            row(src_name="a", dst_name="c", outcome="refused", latency_ms=0.1),
            row(src_name="b", dst_name="c", outcome="timeout"),
        ]
    )
    assert latency_samples(frame) == {("pod-to-pod (same node)", "TCP"): [2.0]}
    assert latency_percentiles(from_rows([])).empty


def test_throughput_only_when_the_column_has_values():
    assert throughput_summary(from_rows(synthetic_rows())) is None
    assert throughput_summary(from_rows([])) is None
    rows = [
        row(src_name="a", dst_name="b", method="iperf3", throughput_mbps=v, latency_ms=9.0)
        for v in (800.0, 900.0, 1000.0)
    ]
    table = throughput_summary(from_rows(rows + [row(src_name="b", dst_name="a")]))
    rec = table.iloc[0].to_dict()
    assert (rec["samples"], rec["mean"], rec["min"], rec["p50"], rec["max"]) == (3, 900.0, 800.0, 900.0, 1000.0)
    # iperf3's RTT is taken under load: not a latency sample
    assert latency_samples(from_rows(rows)) == {}
