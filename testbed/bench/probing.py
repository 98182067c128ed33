"""Probe throughput through a live cluster: the 486-probe truth table and an all-pairs TCP matrix.

1. Truth table: the conformance model (conformance/data/xyz.yaml on the 3-node topology:
   namespaces x, y, z, pods a, b, c, ports 80 and 81 over TCP, UDP and SCTP) with one
   NetworkPolicy, so that some of the 9 x 9 x 2 x 3 = 486 probes are blocked; every observed
   verdict is compared with the oracle's. Blocked probes are known when the nodes log their drop
   (drop evidence, traffic/droplog.py); without it (`evidence=False`) they cost one timeout in
   total (they run concurrently), and the table's time is bounded below by the probe timeout.
2. All-pairs: a Deployment of N pods over 3 workers, every ordered pair over TCP 80
   (N x (N - 1) probes), all expected to connect, five times: the first pass's time on the
   fresh cluster, and the rate of allowed TCP probe results once it has carried traffic.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..conformance.resources import MODEL
from ..conformance.xyz import PODS, PORTS, PROTOCOLS
from ..emu.cluster import EmulatedCluster
from ..netpol.oracle import truth_table
from ..plan.build import plan_cluster
from ..spec.topology import load_topology
from ..spec.workloads import load_manifests
from ..traffic.droplog import open_drop_log
from ..traffic.prober import Probe, run_probes
from .workloads import THREE_NODES, deployment_yaml, topology_yaml, write

# x/a accepts only namespace x on TCP 80; everything else stays open.
TRUTH_POLICY = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-from-x-tcp80, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress]
  ingress:
    - from: [{namespaceSelector: {matchLabels: {ns: x}}}]
      ports: [{port: 80, protocol: TCP}]
"""


@dataclass
class ProbeFigures:
    name: str
    probes: int
    seconds: float
    outcomes: dict[str, int]
    mismatches: int = 0  # against the oracle (truth table) or "all connect" (all-pairs)
    build_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.probes / max(self.seconds, 1e-9)


def _count(results) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    return counts


def evidence_counts(results) -> dict[str, int]:
    """How the failed probes were known: {"drop-log": 46, "timeout": 0, "reset": 0}."""
    counts = {"drop-log": 0, "timeout": 0, "reset": 0}
    for r in results:
        if r.evidence:
            counts[r.evidence] = counts.get(r.evidence, 0) + 1
    return counts


def node_netns(cluster: EmulatedCluster) -> dict[str, str]:
    """Each node's namespace, for its drop-log reader."""
    return {n.name: cluster.netns_path(n.key) for n in cluster.plan.nodes}


def truth_table_bench(
    timeout: float = 1.0, progress: Callable[[str], None] = lambda _m: None, evidence: bool = True
) -> ProbeFigures:
    """The 486-probe table with one policy, timed and checked against the oracle; with `evidence`
    (and unless TESTBED_DROP_EVIDENCE=0) blocked probes end when their drop is logged."""
    with tempfile.TemporaryDirectory(prefix="tb-bench-") as folder:
        spec = load_topology(THREE_NODES)
        manifests = load_manifests([MODEL, write(folder, "policy.yaml", TRUTH_POLICY)])
        plan = plan_cluster(spec, manifests, seed=0)
    progress("truth table: building the x/y/z model (9 pods) with one NetworkPolicy")
    with EmulatedCluster(plan) as cluster:
        pods = {f"{p.namespace}/{p.name}": p for p in cluster.plan.pods}
        table = [(s, d, port, proto) for s in PODS for d in PODS for proto in PROTOCOLS for port in PORTS]
        probes = [
            Probe(i, cluster.netns_path(pods[s].key), pods[d].ip, port, proto, timeout)
            for i, (s, d, port, proto) in enumerate(table)
        ]
        droplog = open_drop_log(node_netns(cluster)) if evidence else None
        try:
            t0 = time.perf_counter()
            results = run_probes(probes, evidence=droplog)
            seconds = time.perf_counter() - t0
        finally:
            if droplog is not None:
                droplog.close()
        expected = truth_table(cluster.plan.world, PODS, PODS, PORTS, PROTOCOLS)
    mismatches = sum(1 for key, r in zip(table, results) if expected[key] != (r.outcome == "connected"))
    return ProbeFigures(
        "truth table (9 pods, 2 ports, 3 protocols, one policy)",
        len(probes),
        seconds,
        _count(results),
        mismatches,
        cluster.timings["build"],
        {"timeout_s": timeout, "evidence": evidence_counts(results), "drop_log": droplog is not None},
    )


def all_pairs_bench(
    pods: int = 100, timeout: float = 1.0, progress: Callable[[str], None] = lambda _m: None, passes: int = 5
) -> ProbeFigures:
    """Every ordered pair of `pods` pods over TCP 80, all expected to connect, `passes` times.

    The first pass is a fresh cluster's: its `seconds` (the all-pairs row) include the one-time
    work of each pair's first contact (the neighbour resolutions among pods of a node, among
    others). The rate (`extra["steady_rate"]`) is the median of the later passes' rates: probes
    a second once the cluster has carried traffic, as a throughput is measured. Every pass counts
    in the outcomes and mismatches (all must connect)."""
    with tempfile.TemporaryDirectory(prefix="tb-bench-") as folder:
        spec = load_topology(write(folder, "topology.yaml", topology_yaml(4)))
        manifests = load_manifests([write(folder, "bulk.yaml", deployment_yaml("bulk", pods))])
        plan = plan_cluster(spec, manifests, seed=0)
    progress(f"all-pairs: building {pods} pods on 3 workers")
    counts: dict[str, int] = {}
    times: list[float] = []
    with EmulatedCluster(plan) as cluster:
        bulk = [p for p in cluster.plan.pods if p.labels.get("app") == "bulk"]
        probes = [
            Probe(i, cluster.netns_path(s.key), d.ip, 80, "TCP", timeout)
            for i, (s, d) in enumerate((s, d) for s in bulk for d in bulk if s.key != d.key)
        ]
        for _ in range(max(1, passes)):
            t0 = time.perf_counter()
            results = run_probes(probes)
            times.append(time.perf_counter() - t0)
            for outcome, n in _count(results).items():
                counts[outcome] = counts.get(outcome, 0) + n
    steady = statistics.median(len(probes) / max(t, 1e-9) for t in (times[1:] or times))
    return ProbeFigures(
        f"all-pairs TCP, {len(bulk)} pods",
        len(probes),
        times[0],
        counts,
        len(probes) * len(times) - counts.get("connected", 0),
        cluster.timings["build"],
        {
            "timeout_s": timeout,
            "passes_s": times,
            "steady_rate": steady,
            "first_rate": len(probes) / max(times[0], 1e-9),
        },
    )
