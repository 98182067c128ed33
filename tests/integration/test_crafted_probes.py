"""scapy-crafted probes through a real cluster: accepted, refused and filtered told apart."""

from __future__ import annotations

import os
import subprocess

from testbed.emu.cluster import EmulatedCluster
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests
from testbed.traffic.crafted import Crafted, run_crafted

from .conftest import ROOT


def test_crafted_probes_classify_answers(no_leftovers):
    plan = plan_cluster(
        load_topology(os.path.join(ROOT, "topologies/three-nodes.yaml")),
        load_manifests([os.path.join(ROOT, "manifests/quickstart-app.yaml")]),
        seed=1,
    )
    src = plan.find_pod("two-containers")
    web = [p for p in plan.pods if p.owner and p.node != src.node][0]
    with EmulatedCluster(plan) as c:
        ns = c.netns_path(src.key)
        probes = [
            Crafted(0, ns, web.ip, "ICMP"),
            Crafted(1, ns, web.ip, "TCP", 80),
            Crafted(2, ns, web.ip, "TCP", 81),
            Crafted(3, ns, web.ip, "UDP", 53),
            Crafted(4, ns, web.ip, "UDP", 54),
            Crafted(5, ns, web.ip, "SCTP", 7777),
            Crafted(6, ns, web.ip, "SCTP", 7778),
            # a spoofed source: the answer goes to 10.244.0.99, so the sender never sees one
            Crafted(7, ns, web.ip, "TCP", 80, timeout=0.5, src_ip="10.244.0.99"),
        ]
        got = {r.id: r for r in run_crafted(probes)}
        assert [got[i].outcome for i in range(8)] == [
            "connected",
            "connected",
            "refused",
            "connected",
            "refused",
            "connected",
            "refused",
            "timeout",
        ]
        assert got[1].detail == "SYN-ACK" and got[2].detail == "RST" and got[6].detail == "ABORT"
        assert got[3].reply["peer_ip"] == src.ip and got[5].reply["peer_ip"] == src.ip  # no NAT, seen by the agent
        # Filtered: the destination pod drops TCP/80 or rejects it with "admin prohibited".
        netns = c.netns(web.key)
        subprocess.run(
            ["ip", "netns", "exec", netns, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "DROP"],
            check=True,
        )
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                netns,
                "iptables",
                "-A",
                "INPUT",
                "-p",
                "udp",
                "--dport",
                "53",
                "-j",
                "REJECT",
                "--reject-with",
                "icmp-admin-prohibited",
            ],
            check=True,
        )
        again = run_crafted(
            [Crafted(1, ns, web.ip, "TCP", 80, timeout=0.5), Crafted(2, ns, web.ip, "UDP", 53, timeout=0.5)]
        )
        assert [r.outcome for r in again] == ["timeout", "unreachable"]
        assert "code 13" in again[1].detail
