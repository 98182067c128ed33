"""The benchmarks' pure parts: the targets table, the generated inputs, rtnetlink message layout."""

from __future__ import annotations

import socket
import struct

from testbed.bench.targets import Figure, table
from testbed.bench.workloads import deployment_yaml, topology_yaml
from testbed.emu import netlink


def test_figures_compare_with_their_targets():
    assert Figure("a", "build", 4.2, "s", 10.0).met is True
    assert Figure("b", "rate", 9000, "/s", 10000, ">=").met is False
    assert Figure("c", "ratio", 3.0, "×").met is None
    text = table([Figure("a", "build", 4.2, "s", 10.0, note="fast"), Figure("b", "rate", 9000, "/s", 10000, ">=")])
    assert "4.20 s" in text and "≤ 10.0 s" in text and "met" in text and "MISSED" in text and "fast" in text
    md = table([Figure("a", "build", 4.2, "s", 10.0)], markdown=True)
    assert md.splitlines()[2] == "| build | 4.20 s | ≤ 10.0 s | met |  |"


def test_generated_inputs():
    assert topology_yaml(3).count("role: worker") == 2
    text = deployment_yaml("bench", 7, service=True)
    assert "replicas: 7" in text and "kind: Service" in text


def test_rtnetlink_messages_have_the_kernel_layout():
    kind, flags, body = netlink.addr_add(2, "10.244.1.5", 24)
    assert kind == netlink.RTM_NEWADDR and flags == netlink.NLM_F_CREATE | netlink.NLM_F_EXCL
    assert body[:8] == struct.pack("=BBBBI", socket.AF_INET, 24, 0, 0, 2)
    assert body[8:16] == struct.pack("=HH", 8, netlink.IFA_LOCAL) + socket.inet_aton("10.244.1.5")
    kind, _, body = netlink.route_add("0.0.0.0", 0, 2, gateway="10.244.1.1")
    assert kind == netlink.RTM_NEWROUTE and len(body) == 12 + 8 + 8  # rtmsg, RTA_GATEWAY, RTA_OIF (no RTA_DST)
    assert body[4] == netlink.RT_TABLE_MAIN and body[5] == netlink.RTPROT_STATIC
    kind, _, body = netlink.no_ipv6_link_local(2)
    assert kind == netlink.RTM_NEWLINK and len(body) == 16 + 16  # ifinfomsg + AF_SPEC{AF_INET6{ADDR_GEN_MODE}}
    assert struct.unpack_from("=HH", body, 16) == (16, netlink.IFLA_AF_SPEC)
    _, _, body = netlink.link_up(1)
    assert struct.unpack("=BxHiII", body) == (socket.AF_UNSPEC, 0, 1, netlink.IFF_UP, netlink.IFF_UP)


def test_notes_are_readable_text_not_python_dicts():
    from testbed.bench.suite import figures_from
    from testbed.bench.targets import counts

    raw = {
        "ready_3n20p": {"from_command_s": 0.6, "build_s": 0.45},
        "truth_table": {
            "seconds": 1.0,
            "outcomes": {"connected": 440, "timeout": 46},
            "mismatches": 0,
            "extra": {"timeout_s": 1.0, "evidence": {"drop-log": 46, "timeout": 0, "reset": 0}},
        },
        "all_pairs": {"seconds": 0.9, "probes": 9900, "outcomes": {"connected": 9900}},
        "changes_1000": {
            "changes": [
                {"change": "scale", "apply_s": 0.8, "replan_s": 0.02, "ok": True, "observed": {"connected": 10}}
            ]
        },
        "conformance": {"cases": 30, "seconds": 25.0, "counts": {"passed": 30, "failed": 0}},
    }
    notes = {f.key: f.note for f in figures_from(raw)}
    assert notes["truth_table"].startswith("440 connected, 46 timeout, 0 mismatches")
    assert "blocked known by drop log 46, timeout 0" in notes["truth_table"]
    assert "evidence: not recorded" in notes["conformance_time"]
    assert notes["all_pairs"] == "9900 connected"
    assert notes["probe_rate"] == "one pass, on the fresh cluster"
    assert "packets: 10 connected" in notes["change"]
    assert not any("{" in n or "'" in n for n in notes.values())
    assert counts({"via_service": {"connected": 5}, "new_pods": 3}) == "via service: 5 connected, 3 new_pods"


def test_the_probe_rate_is_the_median_of_the_passes_after_the_first():
    """The first all-pairs pass runs on a fresh cluster (first contacts); the rate row is the
    median of the later passes, and its note gives every pass's rate."""
    from testbed.bench.suite import figures_from

    raw = dict(REQUIRED_ROWS)
    raw["all_pairs"] = {
        "seconds": 1.1,
        "probes": 9900,
        "outcomes": {"connected": 29700},
        "extra": {"passes_s": [1.1, 0.9, 0.99], "steady_rate": 9900 / 0.99},
    }
    figures = {f.key: f for f in figures_from(raw)}
    assert round(figures["probe_rate"].value) == 10000 and figures["probe_rate"].met
    assert figures["all_pairs"].value == 1.1
    assert figures["all_pairs"].note == "29700 connected over 3 passes; the time is the first's"
    assert figures["probe_rate"].note == (
        "median of passes 2-3 (11,000, 10,000/s); the first, on the fresh cluster (each pair's first contact), 9,000/s"
    )


# What every bench result has (figures_from reads them unconditionally).
REQUIRED_ROWS = {
    "ready_3n20p": {"from_command_s": 0.6, "build_s": 0.45},
    "truth_table": {"seconds": 1.0, "outcomes": {}, "mismatches": 0, "extra": {"timeout_s": 1.0}},
    "all_pairs": {"seconds": 0.9, "probes": 9900, "outcomes": {}},
    "conformance": {"cases": 30, "seconds": 25.0, "counts": {"passed": 30, "failed": 0}},
}


def change(name, seconds):
    """A change's raw figures as bench/changes.py writes them."""
    return {"change": name, "apply_s": seconds, "replan_s": 0.02, "ok": True, "observed": {}}


def test_issue_18_rows_have_their_targets():
    """The rows of issue 18's table this helper measures: the quickstart's report and `testbed
    plan`'s start (≤ 0.3 s), the three changes at 1,000 pods (≤ 0.3 / 0.1 / 0.05 s) and
    10,000 pods on 50 nodes (build ≤ 20 s, teardown ≤ 10 s, MemAvailable drop ≤ 6 GiB)."""
    from testbed.bench.suite import GIB, figures_from

    raw = {
        **REQUIRED_ROWS,
        "report_quickstart": {"first_s": 0.2, "rebuild_s": 0.12, "figures": 0, "passed": True},
        "plan_startup": {"median_s": 0.31, "min_s": 0.2, "runs": 5},
        "changes_1000": {
            "changes": [
                change("scale Deployment bench 1000 -> 1010 (+10 endpoints)", 0.25),
                change("apply NetworkPolicy (bench pods: ingress only from access=true)", 0.2),
                change("label a pod access=true", 0.04),
            ]
        },
        "scale_10000": {
            "nodes": 50,
            "pods": 10002,
            "build_s": 19.0,
            "teardown_s": 11.0,
            "pods_per_s": 526.0,
            "leftovers": [],
            "system_used_delta_bytes": 5 * GIB,
            "memory": {"total_bytes": GIB // 2},
        },
    }
    got = {(f.key, f.what.split(":")[-1].strip()): (f.limit, f.met) for f in figures_from(raw)}
    assert got[("report_quickstart", "report of the quickstart run (built after the run, as `testbed run` does)")] == (
        0.3,
        True,
    )
    assert got[("plan_startup", "`testbed plan` of the quickstart, whole process")] == (0.3, False)
    changes = [(f.limit, f.met) for f in figures_from(raw) if f.key == "change"]
    assert changes == [(0.3, True), (0.1, False), (0.05, True)]
    assert got[("build_10000", "build")] == (20.0, True)
    assert got[("teardown_10000", "teardown")] == (10.0, False)
    assert got[("memory_10000", "system-wide MemAvailable drop")] == (6.0, True)


def test_tier_change_figures_set_the_ratio_against_the_v1_change():
    from testbed.bench.suite import tier_figures
    from testbed.bench.tier_changes import RATIO_TARGET, Series, TierChangeFigures

    def series(name, seconds, ok=True):
        return Series(name, "", list(seconds), list(seconds), ok, {"timeout": 5, "connected": 5})

    tc = TierChangeFigures(
        3,
        102,
        2,
        5,
        [series("v1", [0.1, 0.2]), series("v1-with-tiers", [0.3, 0.3]), series("cnp", [0.15, 0.15], False)],
    )
    figures = {f.key: f for f in tier_figures(tc.to_dict())}
    assert figures["tier_change_v1"].met is None and abs(figures["tier_change_v1"].value - 0.15) < 1e-9
    slow, same = figures["tier_change_v1-with-tiers"], figures["tier_change_cnp"]
    assert slow.limit == RATIO_TARGET and abs(slow.value - 2.0) < 1e-9 and slow.met is False
    assert abs(same.value - 1.0) < 1e-9 and same.met is True
    assert "NOT as expected" in same.note and "5 timeout, 5 connected" in same.note


def test_the_changes_are_also_measured_with_kube_proxy_in_nftables_mode(tmp_path):
    from testbed.bench.suite import figures_from
    from testbed.bench.workloads import deployment_cluster

    spec, _, plan = deployment_cluster(str(tmp_path), 2, 3, service=True, kube_proxy_mode="nftables")
    assert spec.kube_proxy_mode == plan.kube_proxy_mode == "nftables"
    assert deployment_cluster(str(tmp_path), 2, 3)[2].kube_proxy_mode == "iptables"

    raw = {
        **REQUIRED_ROWS,
        "changes_1000": {"changes": [change("scale Deployment bench 1000 -> 1010 (+10 endpoints)", 0.25)]},
        "changes_1000_nftables": {"changes": [change("scale Deployment bench 1000 -> 1010 (+10 endpoints)", 0.35)]},
    }
    rows = [(f.what, f.limit, f.met) for f in figures_from(raw) if f.key == "change"]
    assert rows == [
        ("change at 1,000 pods: scale Deployment bench 1000 -> 1010 (+10 endpoints)", 0.3, True),
        ("change at 1,000 pods, nftables mode: scale Deployment bench 1000 -> 1010 (+10 endpoints)", 0.3, False),
    ]
