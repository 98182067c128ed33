"""EmulatedCluster: realise a Plan, and always tear it down (emu/'s entry point).

Build order (each step recorded in the ledger before it can fail): underlay (Mininet nodes,
external hosts, switch) -> pod sandboxes -> agent. Teardown runs in `finally`, in reverse,
and ends with a sweep of this instance's tag, so even a half-built cluster leaves nothing;
signals cannot interrupt it, and what it could not remove is recorded in the ledger (the
error says what). A stale sweep at start removes what dead instances left (cleanup.py).
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Any, Callable

from ..errors import DaemonError, NotRootError, TestbedError
from ..plan.model import NodePlan, Plan, PodPlan
from .agent_proc import AgentProcess
from .bgp import BgpDaemons
from . import limits, signals
from .cleanup import CleanReport, Found, clean, sweep_tag
from .controllers import ClusterDns, EgressMasquerade, KubeProxy, LoadBalancerAnnouncer, PolicyProvider
from .daemon import Daemon, stop_all
from .ingress import IngressController
from .ledger import Ledger, netns_name
from .pods import NETNS_DIR, PodNetwork
from .runner import Runner
from .underlay import Underlay


class EmulatedCluster:
    """`with EmulatedCluster(plan) as cluster:` builds it; leaving the block removes it all."""

    def __init__(self, plan: Plan, runner: Runner | None = None,
                 progress: Callable[[str], None] | None = None, manifests: Any = None,
                 keep_logs_in: str | None = None) -> None:
        self.plan = plan
        self.keep_logs_in = keep_logs_in   # where a helper's log goes if it fails the build
        self.manifests = manifests   # spec.model.Manifests: NetworkPolicies and namespace labels
        self.runner = runner or Runner()
        self.progress = progress or (lambda _msg: None)
        self.ledger: Ledger | None = None
        self.underlay: Underlay | None = None
        self.pods: PodNetwork | None = None
        self.agent: AgentProcess | None = None
        self.bgp: BgpDaemons | None = None
        self.timings: dict[str, float] = {}
        self.stale: CleanReport | None = None
        self.limits: dict[str, int] = {}
        self.proxy: KubeProxy | None = None
        self.announcer: LoadBalancerAnnouncer | None = None
        self.dns: ClusterDns | None = None
        self.policies: PolicyProvider | None = None
        self.egress: EgressMasquerade | None = None
        self.ingress: IngressController | None = None

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
    def __enter__(self) -> "EmulatedCluster":
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
            raise NotRootError("building a cluster needs root (network namespaces, veth pairs, "
                               "bridges); `testbed plan` shows the plan without root")
        start = time.perf_counter()
        self.stale = clean(self.runner, only_stale=True)
        try:
            with signals.shielded(signals.NOTED_CRITICAL):  # a folder made must be a folder recorded
                self.ledger = Ledger.create()
            self.limits = limits.hold(self.ledger.tag, self.ledger.owner, self.ledger.owner_start, self.plan)
            self.progress(f"building {len(self.plan.nodes)} nodes and {len(self.plan.externals)} "
                          f"external host(s) on the underlay")
            self.underlay = Underlay(self.plan, self.ledger, self.runner)
            self._timed("underlay", self.underlay.build)
            self.progress(f"creating {len(self.plan.pods)} pod sandboxes")
            self.pods = PodNetwork(self.plan, self.ledger, self.runner)
            self._timed("pods", self.pods.build)
            if self.plan.network is not None and self.plan.network.bgp:  # routing: bgp
                self.progress(f"starting {len(self.plan.network.bgp)} bird2 daemons, waiting for BGP")
                self.bgp = BgpDaemons(self.plan, self.ledger, self.runner)
                self._timed("bgp", self.bgp.start)
            self.progress("starting the agent")
            self.agent = AgentProcess(self.ledger, self.runner)
            self.agent.externals = self.plan.externals
            self._timed("agent", lambda: self.agent.start(self.plan.pods))  # type: ignore[union-attr]
            self.proxy = KubeProxy(self.runner, self.ledger)
            self.announcer = LoadBalancerAnnouncer(self.runner, self.ledger)
            self.dns = ClusterDns(self.ledger)
            self.policies = PolicyProvider(self.runner, self.ledger)
            self.egress = EgressMasquerade(self.runner, self.ledger)
            self.ingress = IngressController(self.runner, self.ledger)
            self.progress("programming Services, cluster DNS and NetworkPolicies")
            self._timed("controllers", self._sync_controllers)
        except BaseException as exc:
            if isinstance(exc, DaemonError) and self.keep_logs_in:  # before teardown deletes the log
                self.keep_logs_of(exc, self.keep_logs_in)
            self.teardown()
            raise
        self.timings["build"] = time.perf_counter() - start

    def apply(self, new: Plan, manifests: Any = None) -> dict[str, float | int]:
        """Move the live cluster to `new`, touching only what changed (a controller's reconcile).

        In Kubernetes' order for a graceful change: new pods get sandboxes (one batch per node)
        and the agent serves them; then the controllers (endpoints, kube-proxy rules, DNS,
        policies) follow the new plan, so traffic stops going to pods that are leaving; only
        then do removed pods leave the agent (its sockets would keep a deleted namespace alive)
        and lose their namespace (the kernel removes the veth pair with it). A recreated bare
        pod with the same name is the exception: its old sandbox must go first. Returns what
        changed and how long it took, which experiments report as the time to enforce a change.
        """
        assert self.pods is not None and self.agent is not None, "cluster not built"
        self.check_daemons("before a change")
        start = time.perf_counter()
        old_ids = {(p.key, p.uid) for p in self.plan.pods}
        new_ids = {(p.key, p.uid) for p in new.pods}
        removed = [p for p in self.plan.pods if (p.key, p.uid) not in new_ids]
        added = [p for p in new.pods if (p.key, p.uid) not in old_ids]
        assert self.ledger is not None
        limits.hold(self.ledger.tag, self.ledger.owner, self.ledger.owner_start, new)
        clash = {p.key for p in added} & {p.key for p in removed}
        if clash:
            first = [p for p in removed if p.key in clash]
            self.agent.reload([p for p in self.plan.pods if p.key not in clash])
            self.pods.delete_pods(first)
            removed = [p for p in removed if p.key not in clash]
        self.pods.plan = new
        if added:
            self.pods.add_pods(added)
            self.agent.reload(list(new.pods) + removed)  # leaving pods still serve until the end
        self.plan = new
        if manifests is not None:
            self.manifests = manifests
        self._sync_controllers()
        if removed:
            self.agent.reload(new.pods)
            self.pods.delete_pods(removed)
        return {"added": len(added), "removed": len(removed) + len(clash), "seconds": time.perf_counter() - start}

    def _sync_controllers(self) -> None:
        """kube-proxy, LB announcements, DNS and NetworkPolicies follow the current plan."""
        assert self.proxy and self.announcer and self.dns and self.policies
        self.proxy.sync(self.plan)
        self.egress.sync(self.plan)
        self.announcer.sync(self.plan)
        self.dns.sync(self.plan)
        self.policies.sync(self.plan, self.manifests)
        assert self.ingress is not None
        self.ingress.sync(self.plan, self.manifests)

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
        for step in (self._stop_daemons, self._delete_pods, self._stop_underlay):
            try:
                step()
            except Exception as exc:  # keep going: the sweep below must still run
                errors.append(f"{step.__name__}: {type(exc).__name__}: {exc}".rstrip(": "))
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
            raise TestbedError(f"teardown was incomplete: {what} of instance {ledger.tag} remain "
                               f"(recorded in {ledger.dir}/ledger.json; `testbed clean --stale` removes "
                               f"them once this process has exited)" + (f"; causes: {'; '.join(errors)}" if errors else ""))
        for error in errors:  # nothing was left behind: a step's failure is a note, not a lie
            self.progress(f"note: teardown step failed but the final sweep removed everything: {error}")

    # -- helper processes -----------------------------------------------------------------
    def daemons(self) -> list[Daemon]:
        """Every helper process the cluster runs now (nginx, dnsmasq, the agent, bird), in stop order."""
        out: list[Daemon] = []
        if self.ingress is not None and self.ingress.daemon is not None:
            out.append(self.ingress.daemon)
        if self.dns is not None:
            out += [s.daemon for _, s in sorted(self.dns.servers.items()) if s.daemon is not None]
        if self.agent is not None and self.agent.daemon.proc is not None:
            out.append(self.agent.daemon)
        if self.bgp is not None:
            out += [d for _, d in sorted(self.bgp.daemons.items())]
        return out

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
        """Every helper process at once (one grace period for all, not one each), then what
        their owners keep beside them (pid files, resolv.conf files)."""
        stop_all(self.daemons())
        for owner in (self.ingress, self.dns, self.agent, self.bgp):
            if owner is not None:
                owner.stop()

    def _delete_pods(self) -> None:
        if self.pods is not None:
            self.pods.delete_pods(self.plan.pods)

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
