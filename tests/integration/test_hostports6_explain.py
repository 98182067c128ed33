"""`testbed explain --family ipv6 --trace` through the IPv6 hostPort tables, against real packets
(issue 15). A dual-stack cluster (each kube-proxy mode, so both portmap backends: ip6tables' nat
table and `table ip6 cni_hostport`) with a hostPort pod: every probe over IPv6 to the hostPort at
a node's IPv6 address is answered by the pod the trace predicts, which sees the source address
the trace predicts (the sender's own, or the plugin's masquerade). Then with the pod isolated by a
default-deny policy, each blocked probe is known from the drop log at the rule the trace ends on
(`drop_as_traced`), as the IPv4 side's are, and each allowed one (the pod itself, its own node) is
one the trace delivers. Before the IPv6 view had the portmap table, the trace
ended at the node itself and no drop was as traced."""

from __future__ import annotations

import os

import pytest

from testbed.emu.cluster import EmulatedCluster
from testbed.experiment.expand import expand
from testbed.experiment.model import Endpoints, Expectation, PodSelection, ProbeGroup
from testbed.experiment.run import probe_rows
from testbed.netpol.oracle import Flow
from testbed.plan.build import plan_cluster, replan
from testbed.plan.view6 import ipv6_plan
from testbed.rulepath import trace_path
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests
from testbed.traffic.droplog import cluster_drop_log

from .conftest import ROOT

HOSTPORT = os.path.join(ROOT, "manifests", "ipv6", "hostport.yaml")
DENY = os.path.join(ROOT, "manifests", "pod-networking-deny.yaml")


def _planned(plan, family: str, expect: Expectation) -> list:
    """Probes to the hostPort from two pods of its node (the pod itself: hairpin), the laptop
    and every node."""
    senders = (
        Endpoints(pods=PodSelection(names=("neighbour", "web-hostport"))),
        Endpoints(hosts=("laptop",)),
        Endpoints(nodes=()),
    )
    target = Endpoints(host_port=PodSelection(names=("web-hostport",)))
    return [
        p
        for i, src in enumerate(senders)
        for p in expand(plan, ProbeGroup(f"g{i}", src, target, ports=(8080,), expect=expect, family=family), plan.world)
    ]


@pytest.mark.parametrize("topology", ["dual-stack.yaml", "dual-stack-nftables.yaml"], ids=["iptables", "nftables"])
def test_the_ipv6_hostport_trace_is_what_the_packets_do(topology, no_leftovers):
    spec = load_topology(os.path.join(ROOT, "topologies", topology))
    plan = plan_cluster(spec, load_manifests([HOSTPORT]), seed=1)
    with EmulatedCluster(plan) as c:
        droplog = cluster_drop_log(c)
        assert droplog is not None, "TESTBED_DROP_EVIDENCE is off in this environment"
        try:
            rows = probe_rows(c, "t", "open", _planned(c.plan, "IPv6", Expectation("connected", "any")))
            assert len(rows) >= 5 and {r["family"] for r in rows} == {"IPv6"}
            six = ipv6_plan(c.plan)
            web6 = c.plan.dual.pods[c.plan.find_pod("web-hostport").key]
            for r in rows:
                (branch,) = trace_path(six, six.world, Flow(r["src_ip"], r["dst_ip"], 8080, "TCP")).branches
                last = branch.hops[-1].outcome
                assert branch.delivered and last.destination == f"[{web6}]:80", r["src_name"]
                assert (r["outcome"], r["answered_by"]) == ("connected", "default/web-hostport"), r
                assert r["seen_src_ip"] == last.source, (r["src_name"], r["seen_src_ip"], last.source)
            # isolated: every sender but the pod itself and its own node (the policy lets a node reach
            # its pods) is dropped where the trace says, in both families
            c.apply(replan(spec, load_manifests([HOSTPORT, DENY]), seed=1, prev=c.plan))
            deny = []
            for family in ("IPv6", "IPv4"):
                deny += probe_rows(c, "t", "deny", _planned(c.plan, family, Expectation("oracle", "any")), droplog)
            six = ipv6_plan(c.plan)
            for r in deny:
                view = six if r["family"] == "IPv6" else c.plan
                path = trace_path(view, view.world, Flow(r["src_ip"], r["dst_ip"], 8080, "TCP"))
                assert path.delivered == (r["outcome"] == "connected"), (r["family"], r["src_name"])
        finally:
            droplog.close()
    assert all(r["outcome_ok"] for r in deny)
    blocked = [r for r in deny if r["outcome"] != "connected"]
    assert {(r["src_name"], r["outcome"]) for r in deny if r["src_name"] in ("web-hostport", "kind-worker2")} == {
        ("web-hostport", "connected"),
        ("kind-worker2", "connected"),
    }
    assert len(blocked) == 8 and {r["outcome"] for r in blocked} == {"timeout"}
    assert {(r["family"], r["evidence"], r["drop_as_traced"]) for r in blocked} == {
        ("IPv6", "drop-log", True),
        ("IPv4", "drop-log", True),
    }, [(r["family"], r["src_name"], r["drop_at"]) for r in blocked]
    assert {r["drop_at"] for r in blocked if r["family"] == "IPv6"} == {
        "kind-worker2/testbed-netpol6/check-ingress[0] (drop)"
    }
