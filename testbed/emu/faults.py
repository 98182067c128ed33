"""Inject and undo faults on a live cluster (emu/): the operations of faults/ops.py, applied.

Kernel operations go through the runner, each inside the instance's own namespaces (a node's,
a host's, the router's, the underlay switch's): link state and MTU with `ip`, packet loss with
an nftables netdev table, rate with tc's tbf. Control operations ask the controllers: the agent
closes a pod's listeners (it serves every pod from one process), a CoreDNS replica's dnsmasq
stops, kube-proxy stops programming a node (its rules go stale), bird is frozen with SIGSTOP
(its peers withdraw its routes once the BGP hold time runs out), and the node lifecycle plays
out with Kubernetes' timers, scaled (faults/lifecycle.py). Every step is an event with its
time, which experiments record and report.

Teardown first thaws what was frozen, so every helper stops as usual; the kernel objects go
with the namespaces they live in, so a run killed during a fault leaves nothing either.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import TestbedError
from ..faults import lifecycle
from ..faults.model import Fault, FaultState, Recover, Timers, problems, resolve
from ..faults.ops import Control, FaultOps, Link, Nft, Op, Tc, plan_ops
from ..plan.bird import hold_time_of
from ..plan.build import replan
from ..plan.model import Plan, PodPlan
from ..spec.model import ClusterSpec, Manifests
from . import rules
from .controllers import Agent, ClusterDns, KubeProxy, PodSandboxes, Routing
from .ledger import netns_name

if TYPE_CHECKING:
    from .cluster import EmulatedCluster


class FaultError(TestbedError):
    """A fault that cannot be injected or undone now (not active, already active, bad target)."""


class FaultInjector:
    """The faults of one live cluster: what is active, how to undo it, and what happened when."""

    def __init__(self, cluster: EmulatedCluster) -> None:
        self.cluster = cluster
        self.state = FaultState()
        self.ops: dict[tuple[str, str], FaultOps] = {}
        self.events: list[dict[str, Any]] = []
        self.not_ready: set[str] = set()  # nodes the control plane sees NotReady
        # node -> its evicted pods: Terminating (their endpoints too) until the node reports again
        self.evicted: dict[str, list[PodPlan]] = {}
        self.frozen: set[str] = set()  # nodes whose bird is stopped with SIGSTOP
        self.step = ""
        self.say: Callable[[str], None] = cluster.progress

    # -- the record -----------------------------------------------------------------------
    def event(self, event: str, fault: Fault, detail: str = "", at: float | None = None) -> None:
        """Record `event`, at `at` (the control plane's decision) if given, else now."""
        self.events.append(
            {
                "time": time.time() if at is None else at,
                "step": self.step,
                "event": event,
                "kind": fault.kind,
                "target": fault.target,
                "detail": detail,
            }
        )
        self.say(f"{event}: {fault.kind} on {fault.target}" + (f" ({detail})" if detail else ""))

    def adjust(self, plan: Plan) -> Plan:
        """A desired state as the control plane publishes it while nodes are NotReady."""
        gone = [p for node in sorted(self.evicted) for p in self.evicted[node]]
        return lifecycle.endpoints_not_ready_on(plan, self.not_ready, gone)

    # -- inject and undo ----------------------------------------------------------------
    def inject(
        self, fault: Fault, timers: Timers, spec: ClusterSpec, manifests: Manifests
    ) -> tuple[ClusterSpec, Manifests]:
        """Inject `fault` now; a node-down plays the lifecycle through (scaled timers) before
        returning. Returns the cluster spec and manifests as they are after it (taints, evictions)."""
        plan = self.cluster.plan
        bad = problems(fault, plan)
        if bad:
            raise FaultError("; ".join(f"{field + ': ' if field else ''}{msg}" for field, msg in bad))
        fault = resolve(fault, plan)
        error = self.state.inject(fault)
        if error:
            raise FaultError(error)
        ops = plan_ops(plan, fault)
        if fault.key in self.state.active:
            self.ops[fault.key] = ops
        self.event("inject", fault)
        try:
            for op in ops.inject:
                spec, manifests = self._run(op, fault, timers, spec, manifests)
        except BaseException:  # half-injected (a failure, Ctrl-C in the shell): undo what can be undone
            self.state.active.pop(fault.key, None)
            if fault.kind == "node-down":
                self.not_ready.discard(fault.node)
                self.evicted.pop(fault.node, None)
            self._undo_quietly(ops)
            self.ops.pop(fault.key, None)
            raise
        return spec, manifests

    def recover(
        self, recover: Recover, timers: Timers, spec: ClusterSpec, manifests: Manifests
    ) -> tuple[ClusterSpec, Manifests]:
        if recover.fault is not None:
            recover = Recover(resolve(recover.fault, self.cluster.plan))
        undone, error = self.state.recover(recover)
        if error:
            raise FaultError(error)
        for fault in undone:
            ops = self.ops.pop(fault.key)
            for op in ops.undo:
                spec, manifests = self._run(op, fault, timers, spec, manifests)
            self.event("recover", fault)
        return spec, manifests

    def thaw(self) -> None:
        """Before teardown: resume frozen processes so that they stop as usual (nothing else is
        needed: the kernel objects of a fault live in namespaces teardown deletes)."""
        routing = self.cluster.controller(Routing)
        for node in sorted(self.frozen):
            daemon = self._bird(routing, node)
            if daemon is not None and daemon.alive():
                daemon.proc.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
        self.frozen.clear()

    def _undo_quietly(self, ops: FaultOps) -> None:
        for op in ops.undo:
            if isinstance(op, Control) and op.what in ("node-lifecycle-up",):
                continue
            try:
                self._kernel(op) if not isinstance(op, Control) else self._control_simple(op)
            except (TestbedError, OSError, KeyError):
                pass

    # -- operations -----------------------------------------------------------------------
    def _run(
        self, op: Op, fault: Fault, timers: Timers, spec: ClusterSpec, manifests: Manifests
    ) -> tuple[ClusterSpec, Manifests]:
        if not isinstance(op, Control):
            self._kernel(op)
            return spec, manifests
        if op.what == "node-lifecycle-down":
            return self._node_down(fault, timers, spec, manifests)
        if op.what == "node-lifecycle-up":
            return self._node_up(fault, spec, manifests)
        if op.what == "delete-pod":
            return spec, self._delete_pod(fault, spec, manifests)
        if op.what == "wait-withdrawn":
            self._wait_withdrawn(fault, timers)
            return spec, manifests
        self._control_simple(op)
        return spec, manifests

    def _ns(self, key: str) -> str:
        return netns_name(self.cluster.tag, key)

    def _peer(self, key: str, dev: str) -> tuple[str, str]:
        """(switch namespace, port name) at the other end of `dev` in namespace `key`."""
        underlay = self.cluster.underlay
        assert underlay is not None
        intf = underlay.hosts[key].intf(dev)
        link = intf.link
        other = link.intf2 if link.intf1 is intf else link.intf1
        switch = next(k for k, h in underlay.hosts.items() if h is other.node)
        return self._ns(switch), other.name

    def _where(self, netns: str, dev: str, peer: bool) -> tuple[str, str]:
        return self._peer(netns, dev) if peer else (self._ns(netns), dev)

    def _kernel(self, op: Op) -> None:
        runner = self.cluster.runner
        if isinstance(op, Link):
            ns, dev = self._where(op.netns, op.dev, op.peer)
            line = f"link set dev {dev}" + (f" mtu {op.mtu}" if op.mtu else "") + (f" {op.state}" if op.state else "")
            runner.ip_batch([line], netns=ns)
            if op.state == "up":
                self._wait_operational([(ns, dev), (self._ns(op.netns), op.dev)])
        elif isinstance(op, Nft):
            rules.nft_load(runner, self._ns(op.netns), op.script)
        elif isinstance(op, Tc):
            ns, dev = self._where(op.netns, op.dev, op.peer)
            args = [dev if a == "{dev}" else a for a in op.args]
            runner.run(["tc", "-n", ns, "qdisc", *args], check=op.check)

    def _wait_operational(self, devices: list[tuple[str, str]], timeout: float = 3.0) -> None:
        """Until both ends of a link report operstate UP: the kernel's linkwatch applies a
        carrier change up to 1 s late, and until then the device's queue discards every frame."""
        deadline = time.monotonic() + timeout
        for ns, dev in devices:
            while time.monotonic() < deadline:
                out = self.cluster.runner.run(["ip", "-n", ns, "-o", "link", "show", "dev", dev], check=False).out
                if " state UP " in out:
                    break
                time.sleep(0.02)

    def _pod(self, full_name: str) -> Any:
        return self.cluster.plan.find_pod(full_name)

    def _control_simple(self, op: Control) -> None:
        cluster = self.cluster
        if op.what in ("close-pod", "open-pod"):
            agent = cluster.controller(Agent)
            pod = self._pod(op.target)
            if agent is None or pod is None:
                return
            if op.what == "close-pod":
                agent.agent.closed.add(pod.key)
            else:
                agent.agent.closed.discard(pod.key)
            agent.agent.serve(agent.agent.pods)
        elif op.what in ("stop-dns", "start-dns"):
            dns = cluster.controller(ClusterDns)
            pod = self._pod(op.target)
            server = dns.servers.get(pod.key) if dns is not None and pod is not None else None
            if server is None:
                return
            if op.what == "stop-dns":
                server.stop()
            elif server.daemon is None or not server.daemon.alive():
                a, cnames = cluster.plan.dns_records
                server.start(a, cnames)
        elif op.what in ("pause-proxy", "resume-proxy"):
            # every proxier of the node's kube-proxy: IPv4's and, dual-stack, IPv6's (emu/kubeproxy6.py)
            for proxy in (c for c in cluster.controllers if isinstance(c, KubeProxy)):
                if op.what == "pause-proxy":
                    proxy.paused.add(op.target)
                else:
                    proxy.resume(op.target, cluster.plan)
        elif op.what in ("freeze-bird", "thaw-bird"):
            daemon = self._bird(cluster.controller(Routing), op.target)
            if daemon is None or not daemon.alive():
                return
            daemon.proc.send_signal(signal.SIGSTOP if op.what == "freeze-bird" else signal.SIGCONT)  # type: ignore[union-attr]
            (self.frozen.add if op.what == "freeze-bird" else self.frozen.discard)(op.target)

    def _bird(self, routing: Routing | None, node: str) -> Any:
        if routing is None or routing.bgp is None:
            return None
        key = next((n.key for n in self.cluster.plan.nodes if n.name == node), None)
        return routing.bgp.daemons.get(key) if key is not None else None

    def _apply(self, plan: Plan) -> None:
        self.cluster.apply(self.adjust(plan))

    def _node_down(
        self, fault: Fault, timers: Timers, spec: ClusterSpec, manifests: Manifests
    ) -> tuple[ClusterSpec, Manifests]:
        # Kubernetes' timers run from the node's last heartbeat (the failure: the inject event) and
        # from the taint's timeAdded (NotReady), not from when this testbed finished applying the
        # previous state, which takes longer on a busy machine. Events carry those decision times.
        died = next(e["time"] for e in reversed(self.events) if e["event"] == "inject" and e["target"] == fault.target)
        _sleep_until(died + timers.scaled(timers.node_monitor_grace_period))
        not_ready = time.time()
        self.not_ready.add(fault.node)
        spec = lifecycle.tainted(spec, fault.node)
        self._apply(self.cluster.plan)
        pods = len(self.cluster.plan.pods_on(fault.node))
        detail = f"{pods} pod(s)' endpoints not ready, removed from kube-proxy's rules"
        self.event("not-ready", fault, detail, at=not_ready)
        if not fault.evict:
            return spec, manifests
        _sleep_until(not_ready + timers.scaled(timers.toleration_seconds))
        evicting = time.time()
        before = {p.full_name for p in self.cluster.plan.pods}
        manifests, plan, evicted = lifecycle.evict(spec, manifests, self.cluster.plan, fault.node)
        self.evicted[fault.node] = [p for p in self.cluster.plan.pods if p.full_name in set(evicted)]
        self._apply(plan)
        present = {p.key for p in self.cluster.plan.pods}
        agent = self.cluster.controller(Agent)
        if agent is not None:  # the evicted pods' sandboxes are gone: forget their closed listeners
            agent.agent.closed &= present
        new = sorted(f"{p.full_name} on {p.node}" for p in self.cluster.plan.pods if p.full_name not in before)
        self.event(
            "evicted", fault, f"{len(evicted)} pod(s) evicted; replaced by {', '.join(new) or 'none'}", at=evicting
        )
        return spec, manifests

    def _node_up(self, fault: Fault, spec: ClusterSpec, manifests: Manifests) -> tuple[ClusterSpec, Manifests]:
        spec = lifecycle.untainted(spec, fault.node)
        self.not_ready.discard(fault.node)
        self.evicted.pop(fault.node, None)  # its kubelet confirms the evicted pods' end
        self._apply(replan(spec, manifests, self.cluster.plan.seed, prev=self.cluster.plan))
        self.event("ready", fault, "node Ready, its pods' endpoints ready again")
        return spec, manifests

    def _delete_pod(self, fault: Fault, spec: ClusterSpec, manifests: Manifests) -> Manifests:
        """`kubectl delete pod --grace-period=0 --force`: the pod is gone at once (listeners
        and sandbox), then the controllers catch up (endpoints, a replacement)."""
        pod = self._pod(fault.pod)
        agent, sandboxes = self.cluster.controller(Agent), self.cluster.controller(PodSandboxes)
        if pod is None or agent is None or sandboxes is None:
            return manifests
        agent.agent.serve([p for p in agent.agent.pods if p.key != pod.key])
        sandboxes.remove([pod])
        self.event("pod-gone", fault, "listeners and sandbox removed; endpoints still published")
        manifests, plan = lifecycle.delete_pods(spec, manifests, self.cluster.plan, [pod.full_name])
        self._apply(plan)
        new = [p.full_name for p in plan.pods if p.owner == pod.owner and p.key not in {q.key for q in sandboxes.live}]
        self.event("replaced", fault, f"endpoints updated; new pod(s): {', '.join(new) or 'none'}")
        return manifests

    def _wait_withdrawn(self, fault: Fault, timers: Timers) -> None:
        """bird frozen: its peers keep its routes until the hold time runs out. Wait for that
        (real time: bird's own timer, bgp.holdTime), and record when the last peer withdrew them."""
        routing = self.cluster.controller(Routing)
        if routing is None or routing.bgp is None:
            return
        node = self.cluster.plan.node(fault.node)
        peers = [s for s in routing.bgp.speakers if s.name != fault.node]
        speaker = next((s for s in routing.bgp.speakers if s.name == fault.node), None)
        hold = hold_time_of(speaker.config) if speaker is not None else 30
        deadline = time.monotonic() + hold + 15
        while time.monotonic() < deadline:
            if all(node.pod_cidr not in routing.bgp.installed(s) for s in peers):
                self.event("withdrawn", fault, f"every peer withdrew {node.pod_cidr}")
                return
            time.sleep(0.2)
        self.event("not-withdrawn", fault, f"peers still route {node.pod_cidr} {hold + 15} s later")


def _sleep_until(deadline: float) -> None:
    """Sleep until wall-clock `deadline` (event times are wall-clock); at once if it passed."""
    time.sleep(max(0.0, deadline - time.time()))
