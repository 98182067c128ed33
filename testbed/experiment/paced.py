"""An experiment's changes played in time, with pods' lifecycle (issue 19; beside experiment/run.py).

When an experiment sets `lifecycle:` (the delays of testbed/lifecycle/delays.py), or once a
step makes a probe fail, every change goes through emu/lifecycle.py's driver instead of being
applied at once: new pods start and pass their readiness probes, deleted pods terminate
(preStop, SIGTERM, grace period), the EndpointSlice controller and each node's kube-proxy
follow with their delays, and a rolling update waits, as the Deployment controller does, for
its new pods to be available before scaling the old ReplicaSet down. Each action returns what
it changed; the driver's timeline goes into run.json and the report.
"""

from __future__ import annotations

import time
from typing import Any

from ..emu.cluster import EmulatedCluster
from ..emu.lifecycle import LifecycleDriver
from ..lifecycle.delays import Delays
from ..plan.build import desired_pods, replan
from ..plan.lifecycle import lifecycle_key, owner_lifecycles
from ..plan.model import PodPlan
from ..spec.lifecycle import PodLifecycle
from ..spec.model import ClusterSpec, Manifests
from .changes import Action, SetProbe, apply_action
from .expand import select_pods
from .rollout import Rollout, counts, find_deployment, new_template_workload, owned_by, updated, wishes_between


class PacedChanges:
    """The driver of one run, and the pods' lifecycles by owner (kept across template changes)."""

    def __init__(self, cluster: EmulatedCluster, manifests: Manifests, delays: Delays) -> None:
        self.lifecycles = owner_lifecycles(manifests)
        self.driver = LifecycleDriver(cluster, delays, self.lifecycle_of)

    def lifecycle_of(self, pod: PodPlan) -> tuple[PodLifecycle, float]:
        return self.lifecycles.get(lifecycle_key(pod), (PodLifecycle(), 0.0))

    def apply(
        self, action: Action, spec: ClusterSpec, manifests: Manifests, history: dict, source: str, step: str = ""
    ) -> tuple[Manifests, dict[str, Any]]:
        """Play one action until the cluster has settled; (new manifests, what changed)."""
        start = time.perf_counter()
        driver = self.driver
        driver.label = step
        if isinstance(action, Rollout):
            manifests, done = self._roll_out(action, spec, manifests, history, source)
        elif isinstance(action, SetProbe):
            pods = [p.full_name for p in select_pods(driver.base, action.pods)]
            driver.set_probe(pods, action.probe, action.passes)
            done = {"added": 0, "removed": 0}
        else:
            manifests, plan = apply_action(action, spec, manifests, driver.base, source)
            self.lifecycles.update(owner_lifecycles(manifests))
            done = driver.change(plan)
        driver.settle()
        return manifests, {**done, "seconds": time.perf_counter() - start}

    def _roll_out(
        self, action: Rollout, spec: ClusterSpec, manifests: Manifests, history: dict, source: str
    ) -> tuple[Manifests, dict[str, int]]:
        driver = self.driver
        old = find_deployment(manifests, action, source)
        new = new_template_workload(old, action, history)
        history[(old.ref.namespace, old.ref.name)] = old.template
        after = updated(manifests, old, new)
        self.lifecycles.update(owner_lifecycles(after))
        key = (old.ref.namespace, old.ref.name)
        new_owner = next(w.owner for w in desired_pods(after) if w.namespace == key[0] and owned_by(w.owner, key[1]))

        def new_pods_available() -> bool:
            return all(
                driver.sim.available(p.full_name)
                for p in driver.base.pods
                if p.owner == new_owner and p.namespace == key[0]
            )

        added = removed = 0
        previous_old = old.replicas
        for old_count, new_count in counts(old.replicas, action.max_surge, action.max_unavailable)[1:]:
            if old_count < previous_old:
                # the Deployment controller scales the old ReplicaSet down only as new pods are available
                driver.wait_until(new_pods_available, f"rollout of Deployment {key[0]}/{key[1]}: new pods available")
            wishes = wishes_between(manifests, after, key, old_count, new_count)
            plan = replan(spec, after, driver.base.seed, prev=driver.base, desired=wishes)
            done = driver.change(plan)
            added, removed = added + done["added"], removed + done["removed"]
            previous_old = old_count
        driver.wait_until(new_pods_available, f"rollout of Deployment {key[0]}/{key[1]}: new pods available")
        return after, {"added": added, "removed": removed}

    def timeline(self) -> list[dict[str, Any]]:
        return self.driver.timeline
