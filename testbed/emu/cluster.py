"""EmulatedCluster: realise a Plan, and always tear it down (emu/'s entry point).

Build order (each step recorded in the ledger before it can fail): underlay (Mininet nodes,
external hosts, switch), then the controllers in order (emu/controllers.py: pod sandboxes, BGP,
the agent, kube-proxy, egress, LoadBalancer addresses, DNS, policies, ingress), each synced to
the Plan. A change is a new Plan, synced by the same controllers in the same order. Teardown
runs in `finally`, in reverse, and ends with a sweep of this instance's tag, so even a
half-built cluster leaves nothing; signals cannot interrupt it, and what it could not remove is
recorded in the ledger (the error says what). A stale sweep at start removes what dead
instances left (cleanup.py).
"""

from __future__ import annotations

import gc
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from ..errors import DaemonError, NotRootError, TestbedError
from ..plan.model import NodePlan, Plan, PodPlan
from . import limits, signals
from .agent_proc import AgentProcess
from .cleanup import CleanReport, Found, clean, sweep_tag
from .controllers import (
    Agent,
    AgentReady,
    ClusterDns,
    Controller,
    EgressMasquerade,
    KubeProxy,
    LeavingPods,
    LoadBalancerAnnouncer,
    PodSandboxes,
    PolicyProvider,
    Routing,
    ServiceRoutes,
)
from .daemon import Daemon, stop_all
from .dualstack import DualStack
from .edges6 import Edges6
from .faults import FaultInjector
from .hostports import HostPorts
from .ingress import IngressController
from .kubeproxy6 import KubeProxy6
from .ledger import Ledger, netns_name
from .netpol6 import PolicyProvider6
from .pods import NETNS_DIR
from .runner import Runner
from .underlay import Underlay

C = TypeVar("C")


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector waits until the body ends (then runs as it would).

    A change allocates a new ruleset per node; at 1,000 pods one apply in two crossed the
    collector's threshold for a full collection over every object of the process (the plans,
    the rulesets: 40-120 ms, up to 0.5 s on a busy VM), in the middle of loading the nodes.
    Objects are still freed as they drop (reference counting); only the search for cycles waits."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _build_message(phase: str, plan: Plan) -> str:
    """What the build says when it reaches a phase."""
    if phase == "pods":
        return f"creating {len(plan.pods)} pod sandboxes"
    if phase == "bgp":
        bgp = plan.network.bgp if plan.network is not None else ()
        return f"starting {len(bgp)} bird2 daemons, waiting for BGP" if bgp else ""
    if phase == "agent":
        return "starting the agent"
    return "programming Services, cluster DNS and NetworkPolicies"


class EmulatedCluster:
    """`with EmulatedCluster(plan) as cluster:` builds it; leaving the block removes it all."""

    def __init__(
        self,
        plan: Plan,
        runner: Runner | None = None,
        progress: Callable[[str], None] | None = None,
        keep_logs_in: str | None = None,
    ) -> None:
        self.plan = plan
        self.keep_logs_in = keep_logs_in  # where a helper's log goes if it fails the build
        self.runner = runner or Runner()
        self.progress = progress or (lambda _msg: None)
        self.ledger: Ledger | None = None
        self.underlay: Underlay | None = None
        self.controllers: list[Controller] = []  # in sync order; teardown stops them in reverse
        self.timings: dict[str, float] = {}
        self.stale: CleanReport | None = None
        self.limits: dict[str, int] = {}
        self._faults: FaultInjector | None = None

    @property
    def faults(self) -> FaultInjector:
        """The cluster's fault injector (emu/faults.py), made on first use."""
        if self._faults is None:
            self._faults = FaultInjector(self)
        return self._faults

    def controller(self, kind: type[C]) -> C | None:
        """The running controller of that class, if the cluster has one (e.g. ClusterDns)."""
        return next((c for c in self.controllers if isinstance(c, kind)), None)

    @property
    def agent(self) -> AgentProcess | None:
        """The agent process serving the pods' ports (once built)."""
        agent = self.controller(Agent)
        return agent.agent if agent is not None else None

    # -- names --------------------------------------------------------------------------
    @property
    def tag(self) -> str:
        assert self.ledger is not None, "cluster not built"
        return self.ledger.tag

    def netns(self, key: str) -> str:
        return netns_name(self.tag, key)

    def netns_path(self, key: str) -> str:
        return f"{NETNS_DIR}/{self.netns(key)}"

    def pod_netns_path(self, pod: PodPlan) -> str:
        return self.netns_path(pod.key)

    def node_netns_path(self, node: NodePlan) -> str:
        return self.netns_path(node.key)

    # -- lifecycle ----------------------------------------------------------------------
    def __enter__(self) -> EmulatedCluster:
        self.build()
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    def _timed(self, name: str, fn: Callable[[], None]) -> None:
        start = time.perf_counter()
        fn()
        self.timings[name] = time.perf_counter() - start

    def build(self) -> None:
        if os.geteuid() != 0:
            raise NotRootError(
                "building a cluster needs root (network namespaces, veth pairs, "
                "bridges); `testbed plan` shows the plan without root"
            )
        start = time.perf_counter()
        self.stale = clean(self.runner, only_stale=True)
        try:
            with signals.shielded(signals.NOTED_CRITICAL):  # a folder made must be a folder recorded
                self.ledger = Ledger.create()
            self.limits = limits.hold(self.ledger.tag, self.ledger.owner, self.ledger.owner_start, self.plan)
            self.progress(
                f"building {len(self.plan.nodes)} nodes and {len(self.plan.externals)} external host(s) on the underlay"
            )
            self.underlay = Underlay(self.plan, self.ledger, self.runner)
            self._timed("underlay", self.underlay.build)
            self.controllers = self._controllers(self.ledger)
            dns = self.controller(ClusterDns)
            if dns is not None:  # its pod files need nothing of the sandboxes: written beside them
                dns.write_ahead(self.plan)
            said: set[str] = set()
            for controller in self.controllers:
                phase = controller.phase
                if phase not in said:
                    said.add(phase)
                    message = _build_message(phase, self.plan)
                    if message:
                        self.progress(message)
                begin = time.perf_counter()
                controller.sync(self.plan)
                if phase != "bgp" or self.plan.network is not None and self.plan.network.bgp:
                    self.timings[phase] = self.timings.get(phase, 0.0) + time.perf_counter() - begin
        except BaseException as exc:
            if isinstance(exc, DaemonError) and self.keep_logs_in:  # before teardown deletes the log
                self.keep_logs_of(exc, self.keep_logs_in)
            self.teardown()
            raise
        self.timings["build"] = time.perf_counter() - start

    def _controllers(self, ledger: Ledger) -> list[Controller]:
        """The controllers in Kubernetes' graceful order: new pods, then rules, then old pods out."""
        agent = AgentProcess(ledger, self.runner)
        sandboxes = PodSandboxes(ledger, self.runner, agent)
        return [
            sandboxes,
            DualStack(ledger, self.runner),  # the IPv6 half of a dual-stack plan (issue 15)
            Routing(ledger, self.runner),
            Agent(agent),
            KubeProxy(self.runner, ledger, ready=agent.wait_reloaded),  # the new pods served before rules commit
            KubeProxy6(self.runner, ledger, ready=agent.wait_reloaded),  # dual-stack: the IPv6 proxier (issue 15)
            EgressMasquerade(self.runner, ledger),
            HostPorts(self.runner, ledger),
            LoadBalancerAnnouncer(self.runner, ledger),
            ServiceRoutes(self.runner, ledger),
            Edges6(self.runner, ledger),  # dual-stack: racks, egress, LoadBalancer and external IPv6 (issue 15)
            ClusterDns(ledger),
            PolicyProvider(self.runner, ledger),
            PolicyProvider6(self.runner, ledger),  # dual-stack: the IPv6 policy table (issue 15)
            IngressController(self.runner, ledger),
            AgentReady(agent),  # the agent started with Agent and got ready meanwhile
            LeavingPods(sandboxes, agent),
        ]

    def apply(self, new: Plan) -> dict[str, float | int]:
        """Move the live cluster to the desired state `new`: every controller syncs, in order,
        touching only what changed (emu/controllers.py says the order and why).

        Returns what changed and how long it took, which experiments report as the time to
        enforce a change.
        """
        assert self.ledger is not None and self.controllers, "cluster not built"
        self.check_daemons("before a change")
        start = time.perf_counter()
        limits.hold(self.ledger.tag, self.ledger.owner, self.ledger.owner_start, new)
        self.plan = new
        with collector_paused():
            for controller in self.controllers:
                controller.sync(new)
        sandboxes, leaving = self.controller(PodSandboxes), self.controller(LeavingPods)
        assert sandboxes is not None and leaving is not None
        return {
            "added": sandboxes.added,
            "removed": leaving.removed + sandboxes.recreated,
            "seconds": time.perf_counter() - start,
        }

    def teardown(self) -> None:
        """Undo everything; safe to call twice and after a partial build. Signals cannot stop
        it (they are noted: emu/signals.py). What it could not remove stays recorded in the
        ledger, whose folder is kept for `testbed clean --stale`, and the error says so."""
        if self.ledger is None:
            return
        with signals.shielded():
            self._teardown(self.ledger)

    def _teardown(self, ledger: Ledger) -> None:
        start = time.perf_counter()
        self.progress("tearing down")
        errors: list[str] = []
        steps: list[tuple[str, Callable[[], None]]] = [("_stop_daemons", self._stop_daemons)]
        if self._faults is not None:  # frozen helpers resume first, so that they stop as usual
            steps.insert(0, ("thaw faults", self._faults.thaw))
        steps += [(f"stop {type(c).__name__}", c.stop) for c in reversed(self.controllers)]
        for name, step in steps + [("_stop_underlay", self._stop_underlay)]:
            try:
                step()
            except Exception as exc:  # keep going: the sweep below must still run
                errors.append(f"{name}: {type(exc).__name__}: {exc}".rstrip(": "))
        left: Found | None = None
        try:
            _, left = sweep_tag(self.runner, ledger.tag)
        except Exception as exc:
            errors.append(f"sweep: {type(exc).__name__}: {exc}")
        self.ledger = None
        if left is not None and left.empty():
            ledger.remove()
        else:  # say exactly what remains, keep the folder, and let a stale sweep take it over
            ledger.remains = left.as_dict() if left is not None else {"unknown": errors}
            try:
                ledger.save()
            except OSError:
                pass
            ledger.release()
        try:
            limits.release(ledger.tag)
        except OSError as exc:
            errors.append(f"sysctls: {exc}")
        self.timings["teardown"] = time.perf_counter() - start
        if left is None or not left.empty():
            what = str(left) if left is not None else "an unknown part of it"
            raise TestbedError(
                f"teardown was incomplete: {what} of instance {ledger.tag} remain "
                f"(recorded in {ledger.dir}/ledger.json; `testbed clean --stale` removes "
                f"them once this process has exited)" + (f"; causes: {'; '.join(errors)}" if errors else "")
            )
        for error in errors:  # nothing was left behind: a step's failure is a note, not a lie
            self.progress(f"note: teardown step failed but the final sweep removed everything: {error}")

    # -- helper processes -----------------------------------------------------------------
    def daemons(self) -> list[Daemon]:
        """Every helper process the cluster runs now (nginx, dnsmasq, the agent, bird), in stop order."""
        return [d for c in reversed(self.controllers) for d in c.daemons()]

    def check_daemons(self, when: str = "") -> None:
        """DaemonDied for the first helper process that died under us (killed, crashed)."""
        for daemon in self.daemons():
            daemon.check(when)

    def keep_logs(self, folder: str) -> dict[str, str]:
        """Copy every helper's log into `folder` before teardown deletes the ledger folder;
        returns daemon name -> copied log. Logs that cannot be copied are skipped."""
        kept: dict[str, str] = {}
        for daemon in self.daemons():
            for log in (daemon.log, *daemon.extra_logs):
                if not os.path.isfile(log):
                    continue
                name = os.path.basename(log)
                if os.path.basename(os.path.dirname(log)) == "ingress":
                    name = "nginx-" + name
                try:
                    os.makedirs(folder, exist_ok=True)
                    shutil.copyfile(log, os.path.join(folder, name))
                except OSError:
                    continue
                kept.setdefault(daemon.name, os.path.join(folder, name))
        return kept

    def keep_logs_of(self, exc: TestbedError, folder: str) -> None:
        """After a failure: keep every helper's log in `folder`; a helper's own failure then
        names the copy of its log (the original goes with the ledger folder at teardown)."""
        kept = self.keep_logs(folder)
        if isinstance(exc, DaemonError) and exc.name in kept:
            path = os.path.relpath(kept[exc.name])
            exc.kept(kept[exc.name] if path.startswith("..") else path)

    def _stop_daemons(self) -> None:
        """Every helper process at once (one grace period for all, not one each); each
        controller's stop then removes what it keeps beside them (pid files, resolv.conf files)."""
        stop_all(self.daemons())

    def _stop_underlay(self) -> None:
        if self.underlay is not None:
            self.underlay.stop()


def exec_in_netns(netns: str, argv: list[str]) -> int:
    """Run a user's command inside an emulated namespace with the terminal attached.

    Used by the interactive shell (`<pod> ping <pod>`). `ip netns exec` also binds
    /etc/netns/<name>/ files (e.g. resolv.conf), as a pod's own view of /etc would.
    """
    import subprocess

    try:
        return subprocess.call(["ip", "netns", "exec", netns, *argv])
    except KeyboardInterrupt:  # Ctrl-C of the user's command, not of the shell
        signals.resume()
        return 130
