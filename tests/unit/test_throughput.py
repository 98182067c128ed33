"""iperf3's JSON answer read into a ThroughputResult (traffic/throughput.py), without root."""

from __future__ import annotations

import json

from testbed.traffic.throughput import parse


def test_a_measurement():
    out = json.dumps(
        {
            "end": {
                "sum_received": {"bits_per_second": 2.5e9},
                "sum_sent": {"retransmits": 3},
                "streams": [{"sender": {"mean_rtt": 45}}],
            }
        }
    )
    r = parse(out)
    assert (r.outcome, r.mbps, r.retransmits, r.rtt_ms) == ("connected", 2500.0, 3, 0.045)


def test_errors_are_rows_not_exceptions():
    assert parse(json.dumps({"error": "unable to connect to server: Connection refused"})).outcome == "refused"
    assert parse(json.dumps({"error": "control socket has timed out"})).outcome == "timeout"
    bad = parse("not json", "iperf3: error - something " + "x" * 500)
    assert bad.outcome == "error" and bad.error.startswith("iperf3: error") and len(bad.error) == 200
