"""Play pods' lifecycle on a live cluster, in (scaled) real time (emu/, issue 19).

testbed/lifecycle/sim.py says when kubelet, the EndpointSlice controller and each node's
kube-proxy act; this driver makes each of their actions real at that moment: after every
event it folds the simulation's views into the Plan (plan/lifecycle.py) and the controllers
apply the difference — a node's kube-proxy rules when *that node* syncs, the agent stops
answering for a pod when its process exits, the sandbox goes when the pod object is removed.
Packets meanwhile are real: a client whose node has not synced yet still sends to a pod that
has exited, which is the rolling update's race.

Virtual time runs while the driver plays (a change, then waiting for it to settle): an event
at virtual t happens `time_scale * t` real seconds after the clock resumed at its virtual time;
when applying a change makes it late, the schedule shifts by that much (intervals are kept,
never squeezed, so a race window is never made shorter than the delays say).

The API a fault injector needs (issue 16): `set_node_ready(node, False)` (its pods' endpoints go
not ready after nodeMonitorGracePeriod), `mark_not_ready(pods)` (their readiness probes fail),
`delete(pods)` (graceful termination).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import TestbedError
from ..lifecycle.delays import Delays
from ..lifecycle.sim import Event, LifecycleSim
from ..plan.lifecycle import with_views
from ..plan.model import Plan, PodPlan
from ..spec.lifecycle import PodLifecycle

if TYPE_CHECKING:
    from .cluster import EmulatedCluster

# pod -> (its lifecycle, its owner's minReadySeconds)
LifecycleOf = Callable[[PodPlan], tuple[PodLifecycle, float]]
MAX_VIRTUAL_WAIT = 3600.0  # a change that has not settled after an hour of virtual time is stuck


def no_lifecycle(_pod: PodPlan) -> tuple[PodLifecycle, float]:
    return PodLifecycle(), 0.0


class LifecycleDriver:
    """Drives `cluster` through a LifecycleSim; `timeline` records every event with its times."""

    def __init__(
        self, cluster: EmulatedCluster, delays: Delays | None = None, lifecycle_of: LifecycleOf = no_lifecycle
    ) -> None:
        self.cluster, self.delays, self.lifecycle_of = cluster, delays or Delays(), lifecycle_of
        plan = cluster.plan
        self.sim = LifecycleSim([n.name for n in plan.nodes], self.delays)
        self.known: dict[str, PodPlan] = {}
        for pod in plan.pods:
            life, min_ready = lifecycle_of(pod)
            self.sim.adopt(pod.full_name, pod.node, life, min_ready)
            self.known[pod.full_name] = pod
        self.base = plan  # what the owners want now (replan's output): no terminating pods
        self.anchor = time.perf_counter()  # real time of virtual 0
        self.timeline: list[dict[str, Any]] = []
        self.applied = 0
        self.label = ""  # recorded with each event (an experiment's step)

    # -- changes -----------------------------------------------------------------------------
    def change(self, new: Plan) -> dict[str, int]:
        """The owners now want `new` (a replan): its new pods are created, the pods it no longer
        has are deleted (gracefully), now; returns how many of each."""
        self._catch_up()
        n = len(self.sim.events)
        before = {p.full_name for p in self.base.pods}
        after = {p.full_name for p in new.pods}
        created = [p for p in new.pods if p.full_name not in before]
        for pod in new.pods:  # relabelled pods: their slices follow their new labels
            self.known[pod.full_name] = pod
        for pod in created:
            life, min_ready = self.lifecycle_of(pod)
            self.sim.create(pod.full_name, pod.node, life, min_ready)
        deleted = sorted(before - after)
        for name in deleted:
            self.sim.delete(name)
        self.base = new
        self._apply()
        self._record(self.sim.events[n:])
        return {"added": len(created), "removed": len(deleted)}

    def delete(self, pods: Iterable[str]) -> None:
        """Delete pods by full name (their owner's replacements come with `change`)."""
        self._catch_up()
        n = len(self.sim.events)
        for name in pods:
            self.sim.delete(name)
        self._apply()
        self._record(self.sim.events[n:])

    def set_probe(self, pods: Iterable[str], probe: str, ok: bool) -> None:
        """Make the pods' `probe` (readiness, liveness, startup) fail or pass from now on."""
        self._catch_up()
        n = len(self.sim.events)
        for name in pods:
            self.sim.set_probe(name, probe, ok)
        self._record(self.sim.events[n:])

    def mark_not_ready(self, pods: Iterable[str]) -> None:
        self.set_probe(pods, "readiness", False)

    def set_node_ready(self, node: str, ready: bool, after: float | None = None) -> None:
        """A node stops (False) or resumes heartbeats: its pods' endpoints follow (not ready
        nodeMonitorGracePeriod later, or `after` seconds; 0: the next event). Then `settle()`
        or `run_for(seconds)` plays it."""
        self._catch_up()
        n = len(self.sim.events)
        self.sim.set_node_ready(node, ready, after)
        self._record(self.sim.events[n:])

    # -- the clock ---------------------------------------------------------------------------
    def virtual_now(self) -> float:
        return (time.perf_counter() - self.anchor) / self.delays.time_scale

    def run_for(self, seconds: float) -> None:
        """Play every event of the next `seconds` of virtual time."""
        self._play_until(self.sim.now + seconds, lambda: False)

    def wait_until(self, done: Callable[[], bool], what: str, limit: float = MAX_VIRTUAL_WAIT) -> None:
        """Play events until `done()` holds; TestbedError if it does not within `limit` virtual s."""
        if done():
            return
        if not self._play_until(self.sim.now + limit, done):
            raise TestbedError(f"{what}: not reached within {limit:g} s of emulated time")

    def settle(self, limit: float = MAX_VIRTUAL_WAIT) -> None:
        """Play events until nothing is left to happen (every view agrees)."""
        self.wait_until(self.sim.settled, "the change did not settle", limit)

    def _play_until(self, end: float, done: Callable[[], bool]) -> bool:
        while True:
            t = self.sim.next_time()
            if t is None or t > end:
                return done()
            self._sleep_until(t)
            events = self.sim.step()
            while (nxt := self.sim.next_time()) is not None and nxt <= self.sim.now + 1e-9:
                events += self.sim.step()  # everything at the same instant, applied once
            if any(e.kind not in ("probe", "available", "started") for e in events):
                self._apply()
            self._record(events)  # once real: the times say when the kernel had it
            if done():
                return True

    def _sleep_until(self, t: float) -> None:
        due = self.anchor + t * self.delays.time_scale
        late = time.perf_counter() - due
        if late > 0:
            self.anchor += late  # keep intervals: shift the schedule instead of squeezing it
        else:
            time.sleep(-late)

    def _catch_up(self) -> None:
        """An outside change happens now. The virtual clock runs only while the driver plays
        (between its calls nothing is scheduled to happen, or it waits): it resumes here."""
        self.anchor = time.perf_counter() - self.sim.now * self.delays.time_scale

    # -- the cluster -------------------------------------------------------------------------
    def plan(self) -> Plan:
        """The Plan of this moment: pods as the API has them, slices as written, each node's view."""
        sim = self.sim
        proxies: Mapping[str, Any] = {n: sim.proxy_view(n) for n in sim.proxies}
        return with_views(self.base, sim.api_view(), sim.slice_view(), proxies, self.known)

    def _apply(self) -> None:
        self.cluster.apply(self.plan())
        self.applied += 1

    def _record(self, events: list[Event]) -> None:
        real, wall = time.perf_counter() - self.anchor, time.time()
        for e in events:
            self.timeline.append(
                {
                    "step": self.label,
                    "t": e.t,
                    "real": round(real, 4),
                    "wall": round(wall, 4),  # UNIX time, as probes' timestamps
                    "event": e.kind,
                    "pod": e.pod,
                    "node": e.node,
                    "detail": e.detail,
                    "stopped": list(e.stopped),
                }
            )
