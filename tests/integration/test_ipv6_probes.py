"""Probing and policy over IPv6 with real packets (issue 15): every probe kind, drop evidence,
the tiers, and the conformance suite over IPv6 and over both families.

experiments/dual-stack-probes.yaml sends the socket prober's SCTP, scapy's ICMPv6 echo, TCP SYN,
UDP and SCTP INIT (to open and closed ports) and iperf3 over the pods' IPv6 addresses, then a
NetworkPolicy and a ClusterNetworkPolicy whose verdicts over IPv6 must be the oracle's, each
blocked probe known from its node's drop log at the IPv6 table's rule the tracer predicts.
`testbed conformance --family ipv6|dual` runs a slice of the generated suite (and of the tiered
one) with the ipBlocks' IPv6 twins. Every test leaves nothing behind.
"""

from __future__ import annotations

import json
import os

import pandas as pd

from testbed.conformance.run import run_conformance
from testbed.experiment.load import load_experiment
from testbed.experiment.run import run_experiment

from .conftest import ROOT


def test_every_probe_kind_over_ipv6(tmp_path, no_leftovers):
    run_dir, passed = run_experiment(
        load_experiment(os.path.join(ROOT, "experiments", "dual-stack-probes.yaml")),
        str(tmp_path),
        progress=lambda _m: None,
    )
    rows = pd.read_parquet(os.path.join(run_dir, "probes.parquet"))
    bad = rows[~rows["outcome_ok"]]
    assert passed, bad[["group", "dst_ip", "protocol", "port", "outcome", "error"]].to_string()
    v6 = rows[rows["family"] == "IPv6"]
    assert v6["dst_ip"].str.contains(":").all() and v6["src_ip"].str.contains(":").all()
    sent = rows[rows["method"].isin(["socket", "scapy"])]
    assert (sent["sport"] > 0).all()  # the client's own source port, on every probe
    by = {g: x for g, x in rows.groupby("group")}
    # the socket prober's SCTP over IPv6: the agent's userspace INIT-ACK, the sender's own address seen
    sctp = by["sctp-v6"]
    assert (sctp["outcome"] == "connected").all() and (sctp["seen_src_ip"] == sctp["src_ip"]).all()
    assert (sctp["seen_src_port"] == sctp["sport"]).all()  # what the server saw is what the row keeps
    # scapy over IPv6: every protocol answered, refusals told apart by their answer
    crafted = by["crafted-open-v6"]
    assert set(crafted["protocol"]) == {"ICMP", "TCP", "UDP", "SCTP"} and (crafted["outcome"] == "connected").all()
    assert set(crafted[crafted["protocol"] == "UDP"]["seen_src_ip"]) <= set(crafted["src_ip"])
    closed = by["crafted-closed-v6"]
    assert set(closed["outcome"]) == {"refused"} and set(closed["evidence"]) == {"reset"}
    assert set(closed["protocol"]) == {"TCP", "UDP", "SCTP"}
    # iperf3 over IPv6 between pods
    iperf = by["iperf3-v6"]
    assert (
        (iperf["outcome"] == "connected").all() and (iperf["throughput_mbps"] > 0).all() and (iperf["sport"] > 0).all()
    )
    # policy over IPv6: blocked crafted SYNs known from the drop log of the IPv6 table, where traced
    policy = by["crafted-to-echo-v6"]
    blocked = policy[policy["expected_outcome"] == "blocked"]
    assert len(blocked) > 0 and (blocked["outcome"] == "timeout").all()
    assert (blocked["evidence"] == "drop-log").all(), blocked[["evidence", "error"]].to_string()
    assert blocked["drop_at"].str.contains("/testbed-netpol6/check-ingress").all()
    assert blocked["drop_as_traced"].all() and blocked["drop_owner"].str.contains("echo-from-client").all()
    # the tier: web's HTTP to pods denied over IPv6 only
    assert (by["web-to-echo-v4"]["outcome"] == "connected").all()
    tiered = pd.concat([by["web-to-echo-v6"], by["web-to-web-v6"]])
    denied = tiered[tiered["expected_outcome"] == "blocked"]
    assert len(denied) >= len(tiered) - 3  # only a pod to itself gets through
    assert (denied["evidence"] == "drop-log").all() and denied["drop_at"].str.contains(
        "/testbed-netpol6/tiers-egress"
    ).all()
    assert denied["drop_owner"].str.startswith("Admin cnp/web-no-ipv6-http").all()


def _meta(run_dir: str) -> dict:
    with open(os.path.join(run_dir, "conformance.json"), encoding="utf-8") as f:
        return json.load(f)


def test_conformance_over_ipv6(tmp_path, no_leftovers):
    run_dir, passed = run_conformance(None, str(tmp_path), limit=12, family="ipv6")
    meta = _meta(run_dir)
    assert passed, open(os.path.join(run_dir, "conformance.md")).read()[:4000]
    assert meta["family"] == "ipv6" and meta["counts"]["mismatches"] == 0 and meta["counts"]["probes"] >= 12 * 486
    assert meta["evidence"]["drop-log"] > 0 and meta["evidence"]["timeout"] == 0  # IPv6 drops are logged too
    assert "three-nodes-dual.yaml" in meta["topology"]


def test_conformance_over_both_families_and_the_tiers_over_ipv6(tmp_path, no_leftovers):
    run_dir, passed = run_conformance(None, str(tmp_path / "dual"), limit=3, family="dual")
    meta = _meta(run_dir)
    assert passed and meta["counts"]["probes"] >= 3 * 2 * 486  # both truth tables each step
    run_dir, passed = run_conformance(None, str(tmp_path / "tiered"), limit=6, family="ipv6", tiered=True)
    assert passed, open(os.path.join(run_dir, "conformance.md")).read()[:4000]
    assert _meta(run_dir)["counts"]["mismatches"] == 0


def test_the_conntrack_flush_between_steps_takes_the_ipv6_entries_too(no_leftovers):
    import socket
    import subprocess

    from testbed.emu.cluster import EmulatedCluster
    from testbed.emu.ctflush import flush_conntrack
    from testbed.plan.build import plan_cluster
    from testbed.spec.topology import load_topology
    from testbed.spec.workloads import load_manifests
    from testbed.traffic.prober import Probe, run_probes

    plan = plan_cluster(
        load_topology(os.path.join(ROOT, "topologies", "dual-stack.yaml")),
        load_manifests([os.path.join(ROOT, "manifests", "quickstart-app.yaml")]),
    )
    assert plan.dual is not None
    web = [p for p in plan.pods if p.name.startswith("web-")]
    client, server = web[0], next(p for p in web if p.node != web[0].node)
    with EmulatedCluster(plan) as c:
        node = c.netns_path(plan.node(client.node).key)

        def entries(family: str) -> int:
            out = subprocess.run(
                ["ip", "netns", "exec", os.path.basename(node), "conntrack", "-L", "-f", family],
                capture_output=True,
                text=True,
            )
            return sum(1 for line in out.stdout.splitlines() if line.strip())

        probes = [
            Probe(0, c.pod_netns_path(client), plan.dual.pods[server.key], 53, "UDP"),
            Probe(1, c.pod_netns_path(client), server.ip, 53, "UDP"),
        ]
        results = run_probes(probes)
        assert [r.outcome for r in results] == ["connected", "connected"] and all(r.sport for r in results)
        assert entries("ipv6") >= 1 and entries("ipv4") >= 1
        # each family asked for by name (kernels before 5.x flush only the family of the request)
        flush_conntrack([node], (socket.AF_INET, socket.AF_INET6))
        assert entries("ipv6") == 0 and entries("ipv4") == 0
