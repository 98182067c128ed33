"""Pods, the EndpointSlice controller and every node's kube-proxy, in virtual time (pure; issue 19).

A discrete-event simulation, deterministic (same calls, same events). Its views:

- the API server's (`api_view`): the pods that exist, which are not Ready, which are
  terminating, which have exited;
- the EndpointSlice controller's (`slice_view`): the API view at its last write;
- each node's kube-proxy (`proxy_view(node)`): the slice view at its last sync.

What kubelet does, as upstream:
- a pod's containers start `container_start` after it is created; a startup probe must pass
  first (success after its initialDelaySeconds), then the readiness probe runs at once
  (initialDelaySeconds after the start) and every periodSeconds: successThreshold passes make
  it Ready, failureThreshold failures not Ready. Without a readiness probe a started pod is
  Ready. readinessGates: Ready also needs each gate's condition True (`set_gate`).
- a probe's answer changes with `set_probe` (the failing or recovering application); the
  change shows at the next probe tick, and counts against the thresholds from there.
- a failing liveness probe (failureThreshold ticks) kills the container; it restarts
  `container_start` later and must pass its probes again.
- deletion: the pod is terminating at once (its endpoint: ready false, serving as its
  readiness, terminating true); preStop hooks run (a sleep takes its seconds), then SIGTERM;
  the application exits `app_shutdown` later, or at the end of the grace period (SIGKILL;
  kubelet gives at least 2 s after a preStop hook that used up the grace period); the pod
  object is removed `pod_delete` after the exit.
- a node that stops reporting (`set_node_ready(node, False)`): its pods are marked not Ready
  by the node lifecycle controller nodeMonitorGracePeriod later (their endpoints not ready).

The EndpointSlice controller writes `endpoint_slice_watch + endpoint_slice_batch` after the
first pod change it has not written yet (later changes join that write). Each node's
kube-proxy sees a write its watch delay later and syncs at most once per minSyncPeriod
(upstream's BoundedFrequencyRunner): at once if its last sync is older than that, else when it
becomes so. (Its periodic full resync, every syncPeriod, reloads what it already knows: it
changes no view, so it is not simulated.)
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

from ..spec.lifecycle import PodLifecycle, Probe
from .delays import Delays

NO_LIFECYCLE = PodLifecycle()  # no probes, no hooks, the default grace period
MIN_KILL_GRACE = 2.0  # kubelet: minimumGracePeriodInSeconds after a preStop hook


@dataclass(frozen=True)
class View:
    """One view of the pods, as endpoints see them (pod full names `ns/name`)."""

    present: frozenset[str] = frozenset()
    not_ready: frozenset[str] = frozenset()
    terminating: frozenset[str] = frozenset()
    exited: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Event:
    """Something that happened at virtual time `t` (the timeline a report shows)."""

    t: float
    kind: str  # created | started | ready | not-ready | available | terminating | sigterm | exited | removed
    # | slices | proxy-sync | probe | restarted | node-not-ready
    pod: str = ""
    node: str = ""
    detail: str = ""
    stopped: tuple[str, ...] = ()  # proxy-sync: the pods this node stopped sending new connections to


@dataclass
class _Pod:
    name: str
    node: str
    life: PodLifecycle
    min_ready: float
    created: float
    running: bool = False
    started_at: float = math.inf  # containers started (the probes' clock)
    startup_done: float = math.inf
    ready: bool = False
    ready_since: float = math.inf
    available: bool = False
    answers: dict[str, bool] = field(default_factory=lambda: {"readiness": True, "liveness": True, "startup": True})
    gates: set[str] = field(default_factory=set)
    deleted_at: float = math.inf
    exited: bool = False
    removed: bool = False
    node_lost: bool = False
    epoch: int = 0  # bumped at each (re)start and probe change: stale scheduled checks are ignored


@dataclass
class _Proxy:
    index: int
    last_sync: float = -math.inf
    synced: View = View()
    observed: list[tuple[float, View]] = field(default_factory=list)
    pending: float = math.inf  # the time of its next scheduled sync


def _first_tick(start: float, period: float, t: float) -> float:
    """The first probe tick (start + k * period, k >= 0) at or after t."""
    if t <= start:
        return start
    k = math.ceil((t - start) / period - 1e-9)
    return start + k * period


class LifecycleSim:
    """The simulation; `now` is the virtual time of the last event taken."""

    def __init__(self, nodes: list[str] | tuple[str, ...], delays: Delays | None = None) -> None:
        self.delays = delays or Delays()
        self.now = 0.0
        self.pods: dict[str, _Pod] = {}
        self.proxies = {n: _Proxy(i) for i, n in enumerate(nodes)}
        self._queue: list[tuple[float, int, str, str, int]] = []  # (t, seq, kind, subject, epoch)
        self._seq = 0
        self._slices_pending = False
        self.slices = View()
        self.events: list[Event] = []

    # -- what the world does ---------------------------------------------------------------
    def create(self, pod: str, node: str, life: PodLifecycle = NO_LIFECYCLE, min_ready: float = 0.0) -> None:
        """A pod scheduled on `node` now; a pod already known at start-up is `adopt`ed instead."""
        self.pods[pod] = _Pod(pod, node, life, float(min_ready), self.now)
        self._log("created", pod, node)
        self._push(self.now + self.delays.container_start, "start", pod, -1)
        self._changed()

    def adopt(self, pod: str, node: str, life: PodLifecycle = NO_LIFECYCLE, min_ready: float = 0.0) -> None:
        """A pod that was running and Ready before the simulation began (the cluster's start)."""
        p = self.pods[pod] = _Pod(pod, node, life, float(min_ready), -math.inf)
        p.running = p.ready = p.available = True
        p.started_at = p.startup_done = p.ready_since = self.now
        self.slices = self._api()
        for proxy in self.proxies.values():
            proxy.synced = self.slices

    def delete(self, pod: str) -> None:
        """kubectl delete (or a ReplicaSet scaling down): terminating now, preStop, SIGTERM, exit."""
        p = self.pods[pod]
        if p.deleted_at != math.inf or p.removed:
            return
        p.deleted_at = self.now
        p.available = False
        self._log("terminating", pod, p.node, f"grace {p.life.grace_period}s, preStop {p.life.pre_stop_seconds}s")
        grace = float(p.life.grace_period)
        hook = min(float(p.life.pre_stop_seconds), grace)
        left = max(grace - hook, MIN_KILL_GRACE if p.life.pre_stop else 0.0)
        self._push(self.now + hook, "sigterm", pod, -1)
        self._push(self.now + hook + min(self.delays.app_shutdown, left), "exit", pod, -1)
        self._changed()

    def set_probe(self, pod: str, probe: str, ok: bool) -> None:
        """The application's answer to its `probe` (readiness | liveness | startup) from now on."""
        p = self.pods[pod]
        if p.answers.get(probe) == ok:
            return
        p.answers[probe] = ok
        self._log("probe", pod, p.node, f"{probe} probe now {'passes' if ok else 'fails'}")
        p.epoch += 1
        if p.running and probe == "startup" and ok and p.startup_done == math.inf and p.life.startup:
            s = p.life.startup[0]
            start = p.started_at + s.initial_delay
            tick = _first_tick(start, s.period, max(self.now, start))
            self._push(tick + (s.success_threshold - 1) * s.period, "startup", pod, -1)
        elif p.running:
            self._schedule_probes(p)

    def set_gate(self, pod: str, condition: str, status: bool) -> None:
        """A readiness gate's condition set by its controller (True or False)."""
        p = self.pods[pod]
        (p.gates.add if status else p.gates.discard)(condition)
        self._log("probe", pod, p.node, f"condition {condition}={status}")
        p.epoch += 1
        if p.running:
            self._schedule_probes(p)

    def set_node_ready(self, node: str, ready: bool, after: float | None = None) -> None:
        """A node stops (or resumes) heartbeating: its pods go not Ready nodeMonitorGracePeriod
        later (`after` seconds, if given), and are Ready again on its next probe once it is back."""
        self._log("node-not-ready" if not ready else "probe", "", node, "node heartbeats stop" if not ready else "")
        for p in self.pods.values():
            if p.node != node or p.removed:
                continue
            p.epoch += 1
            if ready:
                p.node_lost = False
                if p.running:
                    self._schedule_probes(p)
            else:
                grace = self.delays.node_monitor_grace_period if after is None else after
                self._push(self.now + grace, "node-lost", p.name, p.epoch)

    # -- the clock -------------------------------------------------------------------------
    def next_time(self) -> float | None:
        """When the next event happens (None: nothing is scheduled)."""
        while self._queue and self._stale(self._queue[0]):
            heapq.heappop(self._queue)
        return self._queue[0][0] if self._queue else None

    def step(self) -> list[Event]:
        """Take the next event (advancing `now` to it); returns what it logged."""
        if self.next_time() is None:
            return []
        t, _, kind, subject, epoch = heapq.heappop(self._queue)
        self.now = max(self.now, t)
        before = len(self.events)
        getattr(self, "_on_" + kind.replace("-", "_"))(subject, epoch)
        return self.events[before:]

    def run_until(self, t: float) -> list[Event]:
        """Every event up to virtual time t (then `now` is t)."""
        out: list[Event] = []
        while (nxt := self.next_time()) is not None and nxt <= t:
            out += self.step()
        self.now = max(self.now, t)
        return out

    def settled(self) -> bool:
        """Nothing left to happen: every view agrees (periodic resyncs would change nothing)."""
        return self.next_time() is None

    # -- views -----------------------------------------------------------------------------
    def api_view(self) -> View:
        return self._api()

    def slice_view(self) -> View:
        return self.slices

    def proxy_view(self, node: str) -> View:
        return self.proxies[node].synced

    def available(self, pod: str) -> bool:
        """Ready for minReadySeconds and not terminating (what a rolling update waits for)."""
        p = self.pods[pod]
        return p.available and p.deleted_at == math.inf

    def gone(self, pod: str) -> bool:
        return self.pods[pod].removed

    # -- internals -------------------------------------------------------------------------
    def _api(self) -> View:
        live = [p for p in self.pods.values() if not p.removed]
        return View(
            frozenset(p.name for p in live),
            frozenset(p.name for p in live if not p.ready),
            frozenset(p.name for p in live if p.deleted_at != math.inf),
            frozenset(p.name for p in live if p.exited),
        )

    def _push(self, t: float, kind: str, subject: str, epoch: int) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (t, self._seq, kind, subject, epoch))

    def _stale(self, item: tuple[float, int, str, str, int]) -> bool:
        _, _, kind, subject, epoch = item
        if epoch < 0 or kind in ("slices", "sync"):
            return False
        p = self.pods.get(subject)
        return p is None or p.removed or p.epoch != epoch

    def _log(self, kind: str, pod: str = "", node: str = "", detail: str = "", stopped: tuple[str, ...] = ()) -> None:
        self.events.append(Event(round(self.now, 6), kind, pod, node, detail, stopped))

    def _changed(self) -> None:
        """A pod changed in the API: the EndpointSlice controller will write."""
        if not self._slices_pending:
            self._slices_pending = True
            self._push(self.now + self.delays.endpoint_slice_watch + self.delays.endpoint_slice_batch, "slices", "", -1)

    def _set_ready(self, p: _Pod, ready: bool) -> None:
        if p.ready == ready:
            return
        p.ready = ready
        self._log("ready" if ready else "not-ready", p.name, p.node)
        if ready:
            p.ready_since = self.now
            self._push(self.now + p.min_ready, "available", p.name, p.epoch)
        else:
            p.available = False
        self._changed()

    def _readiness(self, p: _Pod) -> Probe | None:
        return p.life.readiness[0] if p.life.readiness else None

    def _schedule_probes(self, p: _Pod) -> None:
        """From now on, with the current answers: when Ready changes, and when liveness kills."""
        if p.deleted_at != math.inf or p.exited:
            return
        if p.startup_done == math.inf:
            return  # the startup probe decides first (_on_start scheduled it)
        live = p.life.liveness[0] if p.life.liveness else None
        if live is not None and not p.answers["liveness"]:
            start = p.started_at + live.initial_delay
            tick = _first_tick(start, live.period, max(self.now, start))
            self._push(tick + (live.failure_threshold - 1) * live.period, "kill", p.name, p.epoch)
        probe = self._readiness(p)
        want = (
            (p.answers["readiness"] or probe is None)  # without a readiness probe nobody asks
            and not p.node_lost
            and all(g in p.gates for g in p.life.readiness_gates)
            and self.now >= p.startup_done
        )
        if probe is None:
            if want != p.ready:
                self._push(self.now, "ready-on" if want else "ready-off", p.name, p.epoch)
            return
        start = max(p.started_at + probe.initial_delay, p.startup_done)
        tick = _first_tick(start, probe.period, max(self.now, start))
        if want and not p.ready:
            self._push(tick + (probe.success_threshold - 1) * probe.period, "ready-on", p.name, p.epoch)
        elif not want and p.ready:
            # a gate or a lost node changes the condition at once; a probe at its ticks
            lag = 0.0 if p.answers["readiness"] else (probe.failure_threshold - 1) * probe.period
            self._push(self.now if p.answers["readiness"] else tick + lag, "ready-off", p.name, p.epoch)

    def _on_start(self, pod: str, epoch: int) -> None:
        p = self.pods[pod]
        if p.running or p.exited or p.removed:
            return
        p.running, p.started_at = True, self.now
        self._log("started", pod, p.node)
        if p.life.startup:
            s = p.life.startup[0]
            if p.answers["startup"]:
                self._push(self.now + s.initial_delay + (s.success_threshold - 1) * s.period, "startup", pod, -1)
            return
        p.startup_done = self.now
        self._schedule_probes(p)

    def _on_startup(self, pod: str, epoch: int) -> None:
        p = self.pods[pod]
        if not p.running or p.startup_done != math.inf or not p.answers["startup"]:
            return  # restarted, already done, or now failing (it waits for set_probe to pass)
        p.startup_done = self.now
        self._schedule_probes(p)

    def _on_ready_on(self, pod: str, epoch: int) -> None:
        self._set_ready(self.pods[pod], True)

    def _on_ready_off(self, pod: str, epoch: int) -> None:
        self._set_ready(self.pods[pod], False)

    def _on_available(self, pod: str, epoch: int) -> None:
        p = self.pods[pod]
        if p.ready and p.deleted_at == math.inf and not p.available:
            p.available = True
            self._log("available", pod, p.node, f"minReadySeconds {p.min_ready:g}" if p.min_ready else "")

    def _on_kill(self, pod: str, epoch: int) -> None:
        """A liveness failure: the container is killed and restarted."""
        p = self.pods[pod]
        self._log("restarted", pod, p.node, "liveness probe failed")
        p.epoch += 1
        p.running, p.startup_done = False, math.inf
        self._set_ready(p, False)
        self._push(self.now + self.delays.container_start, "start", pod, -1)

    def _on_node_lost(self, pod: str, epoch: int) -> None:
        p = self.pods[pod]
        p.node_lost = True
        self._set_ready(p, False)

    def _on_sigterm(self, pod: str, epoch: int) -> None:
        p = self.pods[pod]
        if not p.exited and not p.removed:
            self._log("sigterm", pod, p.node)

    def _on_exit(self, pod: str, epoch: int) -> None:
        p = self.pods[pod]
        if p.exited or p.removed:
            return
        p.exited, p.running = True, False
        p.epoch += 1
        self._log("exited", pod, p.node)
        if p.ready:
            self._set_ready(p, False)  # its containers are no longer ready: serving false
        else:
            self._changed()
        self._push(self.now + self.delays.pod_delete, "remove", pod, -1)

    def _on_remove(self, pod: str, epoch: int) -> None:
        p = self.pods[pod]
        p.removed = True
        self._log("removed", pod, p.node)
        self._changed()

    def _on_slices(self, subject: str, epoch: int) -> None:
        self._slices_pending = False
        view = self._api()
        if view == self.slices:
            return
        self.slices = view
        self._log("slices", detail=_describe(view))
        count = len(self.proxies)
        for node, proxy in self.proxies.items():
            seen = self.now + self.delays.kube_proxy_watch_of(proxy.index, count)
            proxy.observed.append((seen, view))
            self._want_sync(node, proxy, seen)

    def _want_sync(self, node: str, proxy: _Proxy, seen: float) -> None:
        at = max(seen, proxy.last_sync + self.delays.kube_proxy_min_sync_period)
        if at < proxy.pending:
            proxy.pending = at
            self._push(at, "sync", node, -1)

    def _on_sync(self, node: str, epoch: int) -> None:
        proxy = self.proxies[node]
        if self.now < proxy.pending - 1e-12:
            return  # superseded by an earlier sync
        proxy.pending = math.inf
        seen = [v for t, v in proxy.observed if t <= self.now + 1e-12]
        later = [(t, v) for t, v in proxy.observed if t > self.now + 1e-12]
        proxy.observed = later
        proxy.last_sync = self.now
        if seen and seen[-1] != proxy.synced:
            stopped = tuple(sorted(_ready(proxy.synced) - _ready(seen[-1])))
            proxy.synced = seen[-1]
            self._log("proxy-sync", node=node, detail=_describe(proxy.synced), stopped=stopped)
        if later:
            self._want_sync(node, proxy, later[0][0])


def _ready(view: View) -> frozenset[str]:
    """The pods whose endpoints are ready in this view (where kube-proxy sends new connections)."""
    return view.present - view.not_ready - view.terminating


def _describe(view: View) -> str:
    ready = len(view.present - view.not_ready - view.terminating)
    parts = [f"pods: {ready} ready"]
    if view.terminating:
        parts.append(f"{len(view.terminating)} terminating")
    other = len(view.not_ready - view.terminating)
    if other:
        parts.append(f"{other} not ready")
    return ", ".join(parts)
