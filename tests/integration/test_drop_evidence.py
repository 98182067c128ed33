"""Drop evidence with real packets: blocked probes end when a node logs their drop, and agree
with the timeout; the log says where (NetworkPolicy in the forward hook, kube-proxy's REJECT in
both modes), which is where `testbed explain --trace` says the flow ends."""

from __future__ import annotations

import json
import os
import random
import tempfile
import time

import pytest

from testbed.bench.probing import TRUTH_POLICY
from testbed.bench.workloads import THREE_NODES, write
from testbed.conformance.resources import MODEL
from testbed.conformance.run import run_conformance
from testbed.conformance.xyz import PODS, PORTS, PROTOCOLS
from testbed.dropcheck import predicted
from testbed.emu.cluster import EmulatedCluster
from testbed.experiment.expand import expand
from testbed.experiment.model import Endpoints, Expectation, PodSelection, ProbeGroup, ServiceTarget
from testbed.experiment.run import probe_rows
from testbed.netpol.oracle import truth_table
from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests
from testbed.traffic.crafted import Crafted, run_crafted
from testbed.traffic.droplog import DropLog, DropLogError, cluster_drop_log
from testbed.traffic.prober import Probe, run_probes

from .conftest import ROOT


@pytest.fixture
def truth_cluster(no_leftovers):
    with tempfile.TemporaryDirectory(prefix="tb-test-") as folder:
        manifests = load_manifests([MODEL, write(folder, "policy.yaml", TRUTH_POLICY)])
        plan = plan_cluster(load_topology(THREE_NODES), manifests, seed=0)
    with EmulatedCluster(plan) as cluster:
        droplog = cluster_drop_log(cluster)
        assert droplog is not None, "TESTBED_DROP_EVIDENCE is off in this environment"
        try:
            yield cluster, droplog
        finally:
            droplog.close()


def test_blocked_probes_end_on_their_logged_drop_and_agree_with_the_timeout(truth_cluster):
    cluster, droplog = truth_cluster
    pods = {f"{p.namespace}/{p.name}": p for p in cluster.plan.pods}
    table = [(s, d, port, proto) for s in PODS for d in PODS for proto in PROTOCOLS for port in PORTS]
    probes = [
        Probe(i, cluster.netns_path(pods[s].key), pods[d].ip, port, proto, 2.0)
        for i, (s, d, port, proto) in enumerate(table)
    ]
    t0 = time.perf_counter()
    results = run_probes(probes, evidence=droplog)
    seconds = time.perf_counter() - t0
    expected = truth_table(cluster.plan.world, PODS, PODS, PORTS, PROTOCOLS)
    assert [expected[k] for k in table] == [r.outcome == "connected" for r in results]  # verdicts unchanged
    blocked = [r for r in results if r.outcome != "connected"]
    assert len(blocked) == 46 and {r.outcome for r in blocked} == {"timeout"}
    assert {r.evidence for r in blocked} == {"drop-log"}, [r.error for r in blocked][:5]
    assert seconds < 2.0  # none waited for its 2 s timeout
    # Where: the ingress check of x/a's node, the rule the trace predicts.
    node_a = pods["x/a"].node
    assert {r.drop_at for r in blocked} == {f"{node_a}/testbed-netpol/check-ingress[1] (drop)"}
    for r in blocked[:6]:
        s, d, port, proto = table[r.id]
        assert r.drop_at in predicted(cluster.plan, pods[s].ip, pods[d].ip, port, proto)
    # A timeout-based rerun of a sample (evidence off) gives the same verdicts.
    sample = random.Random(0).sample(range(len(table)), 40) + [r.id for r in blocked[:10]]
    again = run_probes([probes[i] for i in sample])
    assert [r.outcome == "connected" for r in again] == [results[i].outcome == "connected" for i in sample]
    assert {r.evidence for r in again if r.outcome != "connected"} == {"timeout"}
    # The scapy prober reads the same evidence.
    crafted = run_crafted(
        [
            Crafted(n, probes[i].src_netns, probes[i].dst_ip, probes[i].protocol, probes[i].port, 2.0)
            for n, i in enumerate(sample)
        ],
        evidence=droplog,
    )
    assert [c.outcome == "connected" for c in crafted] == [results[i].outcome == "connected" for i in sample]
    assert {c.evidence for c in crafted if c.outcome != "connected"} == {"drop-log"}


def test_a_second_reader_of_a_node_is_refused(truth_cluster):
    cluster, _ = truth_cluster
    node = cluster.plan.nodes[0]
    with pytest.raises(DropLogError, match="could not be configured"):
        DropLog({node.name: cluster.netns_path(node.key)})


@pytest.mark.parametrize("topology", ["three-nodes.yaml", "three-nodes-nftables.yaml"], ids=["iptables", "nftables"])
def test_kube_proxy_reject_says_where(topology, no_leftovers):
    spec = load_topology(os.path.join(ROOT, "topologies", topology))
    plan = plan_cluster(spec, load_manifests([os.path.join(ROOT, "manifests", "services-features.yaml")]), seed=3)
    with EmulatedCluster(plan) as c:
        droplog = cluster_drop_log(c)
        try:
            echo = next(p for p in c.plan.pods if p.labels.get("app") == "echo")
            group = ProbeGroup(
                "nobody",
                Endpoints(pods=PodSelection(names=(echo.name,))),
                Endpoints(service=ServiceTarget("nobody")),
                expect=Expectation("refused", "any"),
                timeout=0.7,
            )
            rows = probe_rows(c, "t", "s", expand(c.plan, group), droplog)
        finally:
            if droplog is not None:
                droplog.close()
    assert [(r["outcome"], r["evidence"]) for r in rows] == [("refused", "reset")]
    where = "kube-proxy/reject-chain[0]" if "nftables" in topology else "filter/KUBE-SERVICES["
    assert rows[0]["drop_at"].startswith(f"{echo.node}/{where}") and rows[0]["drop_at"].endswith("(reject)")
    assert rows[0]["drop_as_traced"] is True and "has no endpoints" in rows[0]["drop_owner"]


def test_conformance_slice_with_evidence_agrees_with_a_timeout_recheck(tmp_path, no_leftovers):
    run_dir, passed = run_conformance(
        os.path.join(ROOT, "topologies", "three-nodes.yaml"), str(tmp_path), limit=8, recheck=5
    )
    meta = json.load(open(os.path.join(run_dir, "conformance.json")))
    assert passed and meta["counts"]["mismatches"] == 0
    ev = meta["evidence"]
    assert ev["drop-log"] > 0 and ev["rechecked"] > 0 and ev["recheck_disagreed"] == 0, ev
