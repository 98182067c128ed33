"""The shell's only door into the live cluster (the adapter).

Everything the shell does to running namespaces and processes goes through a Live: which
netns a pod or node is, running a command there with the terminal attached, applying a change
(the same path `apply -f` and the experiment runner use), and where the agent keeps a pod's
access log. cli.py's `up` builds one from the EmulatedCluster with `connect`; unit tests build
one from plain callables.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..plan.model import Plan
from .faults import FaultCall

if TYPE_CHECKING:
    from ..experiment.changes import Action
    from ..experiment.rollout import Rollout

SHELL_TIME_SCALE = 0.1  # changes played in time run ten times faster than in a real cluster
Run = Callable[[str, list[str]], int]  # (netns name, argv) -> exit status
Change = Callable[["Action"], tuple[Plan, Any]]  # an experiment/changes.py action -> (plan, manifests)
RollOut = Callable[["Rollout"], tuple[Plan, Any]]  # an experiment/rollout.py Rollout -> (plan, manifests)


@dataclass
class Live:
    netns: Callable[[str], str]  # netns key -> netns name
    run: Run
    change: Change | None = None
    logs_dir: str = ""  # the agent's per-pod access logs (agent/accesslog.py)
    capture: Callable[[str, list[str]], tuple[int, str]] | None = None  # (key, argv) -> (status, stdout)
    rollout: RollOut | None = None  # an experiment/rollout.py Rollout, rolled out step by step
    state_dir: str = ""  # the shell's files inside the instance's folder ("" = a temp dir)
    fault: FaultCall | None = None  # inject or recover a fault (shell/faults.py, emu/faults.py)

    def exec(self, key: str, argv: list[str]) -> int:
        return self.run(self.netns(key), argv)

    def write_hosts(self, key: str, text: str) -> None:
        """The pod's /etc/hosts, as the kubelet writes it, next to the resolv.conf emu put in
        /etc/netns/<netns>/ (emu removes that folder with the namespace)."""
        folder = os.path.join("/etc/netns", self.netns(key))
        if os.path.isdir(folder):
            with open(os.path.join(folder, "hosts"), "w", encoding="utf-8") as handle:
                handle.write(text)

    def access_log(self, namespace: str, pod: str) -> str:
        return os.path.join(self.logs_dir, f"{namespace}_{pod}.log") if self.logs_dir else ""


@contextlib.contextmanager
def sigint_ignored():
    """Ctrl-C belongs to the foreground command (as in bash), and never cuts a change in half."""
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_attached(netns: str, argv: list[str]) -> int:
    """Run argv in `netns` with the terminal attached: Ctrl-C stops the command (or reaches the pod's
    interactive shell), not the testbed shell; a signal death is reported as 128+N, as sh does."""
    with sigint_ignored():
        proc = subprocess.Popen(["ip", "netns", "exec", netns, *argv], preexec_fn=_default_sigint)
        rc = proc.wait()
    _take_terminal_back()
    return 128 - rc if rc < 0 else rc


def _take_terminal_back() -> None:
    """An interactive shell in a pod runs its jobs in their own process groups and moves the
    terminal to them; if it died without moving it back, reading the next line would stop us
    (SIGTTIN). Take the terminal back, as bash does when a job ends."""
    try:
        if not os.isatty(0) or os.tcgetpgrp(0) == os.getpgrp():
            return
        old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        try:
            os.tcsetpgrp(0, os.getpgrp())
        finally:
            signal.signal(signal.SIGTTOU, old)
    except OSError:
        pass  # no controlling terminal: nothing to take back


def connect(cluster: Any, spec: Any, manifests: Any) -> Live:
    """A Live over an EmulatedCluster (emu/cluster.py): the one place the shell meets emu.

    emu/ knows only the desired state (the Plan); the manifests the shell's changes edit are
    kept here, and every change is: edit the manifests, replan, apply the new Plan."""
    from ..experiment.changes import apply_action

    current = {"manifests": manifests, "spec": spec}  # the spec changes with a node's taints (faults)
    paced: dict[str, Any] = {}  # once a probe was made to fail: changes are played in time (issue 19)
    history: dict = {}  # (namespace, deployment) -> the previous pod template, for `rollout undo`

    def played(action: Any) -> tuple[Plan, Any] | None:
        from ..experiment.changes import SetProbe
        from ..experiment.paced import PacedChanges
        from ..lifecycle.delays import Delays

        if "driver" not in paced and isinstance(action, SetProbe):
            paced["driver"] = PacedChanges(cluster, current["manifests"], Delays(time_scale=SHELL_TIME_SCALE))
        if "driver" not in paced:
            return None
        with sigint_ignored():
            current["manifests"], _done = paced["driver"].apply(
                action, current["spec"], current["manifests"], history, "shell"
            )
        return cluster.plan, current["manifests"]

    def change(action: Action) -> tuple[Plan, Any]:
        done = played(action)
        if done is not None:
            return done
        new_manifests, new_plan = apply_action(action, current["spec"], current["manifests"], cluster.plan, "shell")
        with sigint_ignored():
            cluster.apply(cluster.faults.adjust(new_plan))
        current["manifests"] = new_manifests
        return cluster.plan, new_manifests

    ledger = getattr(cluster, "ledger", None)
    run_dir = ledger.dir if ledger is not None else ""
    # inside the instance's folder: removed with it, by this process or by `testbed clean` after a kill -9
    logs, state = (os.path.join(run_dir, "access"), os.path.join(run_dir, "shell")) if run_dir else ("", "")

    def capture(key: str, argv: list[str]) -> tuple[int, str]:
        try:  # bounded: pingall's pings wait 1 s, iperf runs 2 s
            done = subprocess.run(
                ["ip", "netns", "exec", cluster.netns(key), *argv], capture_output=True, text=True, timeout=30
            )
        except subprocess.TimeoutExpired:
            return 124, ""
        return done.returncode, done.stdout

    def rollout(action: Rollout) -> tuple[Plan, Any]:
        # the experiment runner's rolling update: every intermediate state applied, new pods first
        from ..experiment.run import _roll_out

        done = played(action)
        if done is not None:
            return done

        with sigint_ignored():
            current["manifests"], _done = _roll_out(cluster, spec, current["manifests"], action, history, "shell")
        return cluster.plan, current["manifests"]

    def fault(action: Any, timers: Any) -> tuple[Plan, Any, list[str]]:
        """Inject or recover a fault, printing its events as they happen; None lists the active."""
        from ..faults.model import Fault

        injector = cluster.faults
        if action is None:
            return cluster.plan, current["manifests"], [f.describe() for f in injector.state.active.values()]
        injector.say = lambda line: print(line, flush=True)
        if isinstance(action, Fault):
            current["spec"], current["manifests"] = injector.inject(
                action, timers, current["spec"], current["manifests"]
            )
        else:
            current["spec"], current["manifests"] = injector.recover(
                action, timers, current["spec"], current["manifests"]
            )
        return cluster.plan, current["manifests"], []

    return Live(cluster.netns, run_attached, change, logs, capture, rollout, state, fault)
