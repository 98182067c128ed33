"""The time to enforce a policy change with the administrator's tiers present, against a v1
NetworkPolicy change on the same cluster without them (issue 17's target: "within the same time
as a v1 change"), every change checked with real packets.

A Deployment `bench` (P pods, N nodes) behind a ClusterIP Service. Three series, each R times
a change and its undo (so every timed change really changes the dataplane), interleaved round
by round (the tiers are applied and deleted between rounds, untimed):

- `v1`: apply / delete the NetworkPolicy bench-access (bench pods accept only access=true),
  no cluster network policy in force: the reference;
- `v1-with-tiers`: the same change with three ClusterNetworkPolicies in force (an Admin Deny,
  an Admin Pass that hands bench's ingress to the NetworkPolicy tier, a Baseline Deny), so the
  change is decided below a Pass;
- `cnp`: apply / delete an Admin ClusterNetworkPolicy of the same size (bench pods refuse the
  probing pod) with the other three in force.

Each change is timed from the new desired state to the rules in place: re-planning
(experiment/changes.apply_action) plus EmulatedCluster.apply. After each change a sample of
probes from one bench pod to others must all be blocked (policy in force) or all connect
(undone). The figure is the ratio of medians, target <= RATIO_TARGET (the same time, within the
run-to-run spread of this shared VM).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..emu.cluster import EmulatedCluster
from ..experiment.changes import Action, Apply, Delete, Label, apply_action
from ..experiment.model import PodSelection
from ..plan.model import PodPlan
from ..traffic.prober import Probe, run_probes
from .changes import POLICY
from .workloads import deployment_cluster, write

RATIO_TARGET = 1.25

# In force for the two tiered series. None of them blocks a bench pod from another on its own:
# quarantine=true and untrusted=true label no pod; the Pass hands bench's ingress to the
# NetworkPolicy tier, where bench-access decides when it exists, and the Baseline Deny then
# matches nothing. So the same probes tell the change apart in every series.
BENCH_PODS = "{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: bench}}}}"


def _cnp(name: str, tier: str, priority: int, subject: str, rule: str, action: str, peer: str) -> str:
    """One ClusterNetworkPolicy with one ingress rule, as YAML."""
    return (
        f"apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {{name: {name}}}\n"
        f"spec:\n  tier: {tier}\n  priority: {priority}\n  subject: {subject}\n"
        f"  ingress:\n    - {{name: {rule}, action: {action}, from: [{peer}]}}\n"
    )


def _pods_labelled(label: str) -> str:
    key, _, value = label.partition("=")
    return f'{{pods: {{namespaceSelector: {{}}, podSelector: {{matchLabels: {{{key}: "{value}"}}}}}}}}'


TIERS = "---\n".join(
    [
        _cnp(
            "deny-quarantine",
            "Admin",
            5,
            "{namespaces: {}}",
            "deny-quarantined",
            "Deny",
            _pods_labelled("quarantine=true"),
        ),
        _cnp("pass-to-teams", "Admin", 10, BENCH_PODS, "pass-all", "Pass", "{namespaces: {}}"),
        _cnp(
            "baseline", "Baseline", 10, "{namespaces: {}}", "deny-untrusted", "Deny", _pods_labelled("untrusted=true")
        ),
    ]
)

# The same size as the v1 change (its subject: the bench pods; its peer: one pod, the prober,
# labelled role=probe before the series), so that the two are compared for the same work.
CNP_CHANGE = _cnp("deny-prober", "Admin", 1, BENCH_PODS, "deny-probe", "Deny", _pods_labelled("role=probe"))


@dataclass
class Series:
    name: str
    what: str
    seconds: list[float] = field(default_factory=list)  # replan + apply, one per change
    apply_seconds: list[float] = field(default_factory=list)
    ok: bool = True  # every change showed in packets
    observed: dict[str, int] = field(default_factory=dict)  # outcome -> count, all verifications

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else 0.0


@dataclass
class TierChangeFigures:
    nodes: int
    pods: int
    repeats: int
    probes_per_check: int
    series: list[Series]

    def get(self, name: str) -> Series:
        return next(s for s in self.series if s.name == name)

    def ratio(self, name: str) -> float:
        return self.get(name).median / max(self.get("v1").median, 1e-9)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "medians": {s.name: s.median for s in self.series},
            "ratios": {s.name: self.ratio(s.name) for s in self.series if s.name != "v1"},
        }


def tier_change_bench(
    nodes: int = 10,
    pods: int = 1000,
    repeats: int = 5,
    sample: int = 50,
    seed: int = 0,
    progress: Callable[[str], None] = lambda _m: None,
) -> TierChangeFigures:
    """Build the cluster, run the three series, verify every change with packets."""
    with tempfile.TemporaryDirectory(prefix="tb-bench-") as folder:
        spec, manifests, plan = deployment_cluster(folder, nodes, pods, service=True, seed=seed)
        v1_file = write(folder, "bench-access.yaml", POLICY)
        tiers_file = write(folder, "tiers.yaml", TIERS)
        cnp_file = write(folder, "deny-prober.yaml", CNP_CHANGE)
        progress(f"tier changes: building {len(plan.nodes)} nodes, {len(plan.pods)} pods")
        with EmulatedCluster(plan) as cluster:
            current = {"manifests": manifests}
            bench = [p for p in cluster.plan.pods if p.labels.get("app") == "bench"]
            src = bench[0]
            targets = bench[1:][:: max(1, len(bench) // sample)][:sample]

            def change(action: Action) -> tuple[float, float]:
                t0 = time.perf_counter()
                current["manifests"], new_plan = apply_action(action, spec, current["manifests"], cluster.plan, "bench")
                done = cluster.apply(new_plan)
                return time.perf_counter() - t0, float(done["seconds"])

            def check(series: Series, blocked: bool) -> None:
                results = _probe(cluster, src, targets)
                for r in results:
                    series.observed[r.outcome] = series.observed.get(r.outcome, 0) + 1
                connected = sum(r.outcome == "connected" for r in results)
                series.ok &= connected == (0 if blocked else len(targets))

            def toggle(series: Series, file: str) -> None:
                for action, blocked in ((Apply((file,)), True), (Delete((file,)), False)):
                    total, applied = change(action)
                    series.seconds.append(total)
                    series.apply_seconds.append(applied)
                    check(series, blocked)

            change(
                Label(PodSelection(namespace=src.namespace, names=(src.name,)), {"role": "probe"})
            )  # CNP_CHANGE's peer
            v1 = Series("v1", "a v1 NetworkPolicy change, no cluster network policy in force")
            under = Series("v1-with-tiers", "the same v1 change under 3 ClusterNetworkPolicies (Admin Pass)")
            cnp = Series("cnp", "an Admin ClusterNetworkPolicy change, 3 others in force")
            # Rounds interleave the series, so that the load of a shared VM drifting over the run
            # weighs on all three alike; adding and removing the tiers between them is not timed.
            for _ in range(repeats):
                toggle(v1, v1_file)
                change(Apply((tiers_file,)))
                check(under, blocked=False)  # the tiers alone block nothing between bench pods
                toggle(under, v1_file)
                toggle(cnp, cnp_file)
                change(Delete((tiers_file,)))
            for series in (v1, under, cnp):
                progress(f"{series.name}: median {series.median:.3f} s over {len(series.seconds)} changes")
        return TierChangeFigures(len(plan.nodes), len(plan.pods), repeats, len(targets), [v1, under, cnp])


def _probe(cluster: EmulatedCluster, src: PodPlan, dsts: list[PodPlan], timeout: float = 0.5) -> list[Any]:
    return run_probes([Probe(i, cluster.netns_path(src.key), d.ip, 80, "TCP", timeout) for i, d in enumerate(dsts)])
