"""The time to enforce a change at scale, and real packets showing that it took effect.

A cluster of 10 nodes runs a Deployment `bench` of 1,000 pods behind a ClusterIP Service, so
every change moves endpoints, kube-proxy rules on every node, or NetworkPolicy sets. Three
changes, in an order where each one is visible in packets:

1. scale bench by +10 pods: the new pods answer directly, and the Service sends to them;
2. apply a NetworkPolicy (bench pods accept only pods labelled access=true): probes from a
   bench pod to a sample of bench pods are blocked;
3. label that source pod access=true: its probes connect again, another pod's stay blocked.

For each: `replan_s` (experiment/changes.apply_action: the new desired state, re-planned) and
`apply_s` (EmulatedCluster.apply's own seconds: sandboxes, agent, controllers, rules), and the
verification's probe outcomes against what was expected.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..emu.cluster import EmulatedCluster
from ..experiment.changes import Action, Apply, Label, Scale, apply_action, describe
from ..experiment.model import PodSelection
from ..plan.model import PodPlan
from ..traffic.prober import Probe, run_probes
from .workloads import deployment_cluster, write

POLICY = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bench-access}
spec:
  podSelector: {matchLabels: {app: bench}}
  policyTypes: [Ingress]
  ingress:
    - from: [{podSelector: {matchLabels: {access: "true"}}}]
"""


# Issue 18's targets for each change, enforced (EmulatedCluster.apply), by how its name starts.
TARGETS = (("scale", 0.3), ("apply NetworkPolicy", 0.1), ("label", 0.05))


def target_s(change: str) -> float:
    """The target seconds of a change by its name (1 s, issue 7's, for any other)."""
    return next((limit for prefix, limit in TARGETS if change.startswith(prefix)), 1.0)


@dataclass
class ChangeFigures:
    change: str
    replan_s: float
    apply_s: float
    added: int
    removed: int
    expected: str  # what the probes had to show
    observed: dict[str, int]  # outcome -> count
    ok: bool  # the probes showed it
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return self.replan_s + self.apply_s


def _outcomes(results) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    return counts


def _probe(cluster: EmulatedCluster, src: PodPlan, dsts: list[PodPlan], timeout: float = 0.5) -> list:
    return run_probes([Probe(i, cluster.netns_path(src.key), d.ip, 80, "TCP", timeout) for i, d in enumerate(dsts)])


def _service_ip(cluster: EmulatedCluster) -> str:
    services = cluster.plan.services
    assert services is not None
    return next(s.cluster_ip for s in services.services if (s.namespace, s.name) == ("default", "bench"))


def enforce_changes(
    nodes: int = 10,
    pods: int = 1000,
    sample: int = 100,
    seed: int = 0,
    progress: Callable[[str], None] = lambda _m: None,
    kube_proxy_mode: str = "iptables",
) -> tuple[dict[str, float], list[ChangeFigures]]:
    """Build the cluster, make the three changes, verify each with packets; (build timings, figures)."""
    with tempfile.TemporaryDirectory(prefix="tb-bench-") as folder:
        spec, manifests, plan = deployment_cluster(
            folder, nodes, pods, service=True, seed=seed, kube_proxy_mode=kube_proxy_mode
        )
        policy_file = write(folder, "policy.yaml", POLICY)
        out: list[ChangeFigures] = []
        progress(f"building {len(plan.nodes)} nodes, {len(plan.pods)} pods and a Service")
        with EmulatedCluster(plan) as cluster:
            current = {"manifests": manifests}  # what the changes edit, then replan
            bench = [p for p in cluster.plan.pods if p.labels.get("app") == "bench"]
            src, other = bench[0], bench[1]
            targets = [p for p in bench[2:]][:: max(1, len(bench) // sample)][:sample]

            def change(action: Action) -> tuple[float, dict[str, float | int]]:
                t0 = time.perf_counter()
                current["manifests"], new_plan = apply_action(action, spec, current["manifests"], cluster.plan, "bench")
                replan_s = time.perf_counter() - t0
                done = cluster.apply(new_plan)
                progress(f"{describe(action)}: replan {replan_s:.3f} s, apply {float(done['seconds']):.3f} s")
                return replan_s, done

            # 1. scale +10: new pods answer, and the Service reaches them
            before = {p.key for p in cluster.plan.pods}
            replan_s, done = change(Scale("Deployment", "bench", pods + 10))
            new = [p for p in cluster.plan.pods if p.key not in before]
            direct = _outcomes(_probe(cluster, src, new, timeout=1.0))
            vip = _service_ip(cluster)
            via = run_probes([Probe(i, cluster.netns_path(src.key), vip, 80, "TCP", 1.0) for i in range(2000)])
            new_names = {p.name for p in new}
            answered = {r.reply["pod"] for r in via if r.reply and r.reply.get("pod") in new_names}
            out.append(
                ChangeFigures(
                    f"scale Deployment bench {pods} -> {pods + 10} (+10 endpoints)",
                    replan_s,
                    float(done["seconds"]),
                    int(done["added"]),
                    int(done["removed"]),
                    "the 10 new pods connect directly; the ClusterIP reaches some of them",
                    direct,
                    direct.get("connected", 0) == len(new) and bool(answered),
                    {"via_service": _outcomes(via), "new_pods_answering_via_service": len(answered)},
                )
            )

            # 2. a NetworkPolicy: bench pods accept only access=true
            replan_s, done = change(Apply((policy_file,)))
            blocked = _outcomes(_probe(cluster, src, targets))
            out.append(
                ChangeFigures(
                    "apply NetworkPolicy (bench pods: ingress only from access=true)",
                    replan_s,
                    float(done["seconds"]),
                    int(done["added"]),
                    int(done["removed"]),
                    f"{len(targets)} probes from an unlabelled pod all blocked",
                    blocked,
                    blocked.get("connected", 0) == 0,
                )
            )

            # 3. relabel the source pod: allowed again; another pod is still blocked
            replan_s, done = change(Label(PodSelection(namespace=src.namespace, names=(src.name,)), {"access": "true"}))
            allowed = _outcomes(_probe(cluster, src, targets))
            still = _outcomes(_probe(cluster, other, targets))
            out.append(
                ChangeFigures(
                    "label a pod access=true",
                    replan_s,
                    float(done["seconds"]),
                    int(done["added"]),
                    int(done["removed"]),
                    f"{len(targets)} probes from the relabelled pod all connect; another pod's all blocked",
                    allowed,
                    allowed.get("connected", 0) == len(targets) and still.get("connected", 0) == 0,
                    {"other_pod": still},
                )
            )
        return dict(cluster.timings), out


def to_dicts(figures: list[ChangeFigures]) -> list[dict[str, Any]]:
    return [asdict(f) | {"total_s": f.total_s} for f in figures]
