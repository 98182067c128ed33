"""The shell's only door into the live cluster (the adapter).

Everything the shell does to running namespaces and processes goes through a Live: which
netns a pod or node is, running a command there with the terminal attached, applying a change
(the same path `apply -f` and the experiment runner use), and where the agent keeps a pod's
access log. cli.py's `up` builds one from the EmulatedCluster with `connect`; unit tests build
one from plain callables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

from ..plan.model import Plan

Run = Callable[[str, list[str]], int]                 # (netns name, argv) -> exit status
Change = Callable[[object], tuple[Plan, Any]]         # an experiment/changes.py action -> (plan, manifests)


@dataclass
class Live:
    netns: Callable[[str], str]           # netns key -> netns name
    run: Run
    change: Change | None = None
    logs_dir: str = ""                    # the agent's per-pod access logs (agent/accesslog.py)
    capture: Callable[[str, list[str]], tuple[int, str]] | None = None   # (key, argv) -> (status, stdout)
    rollout: Change | None = None         # an experiment/rollout.py Rollout, rolled out step by step

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


def connect(cluster: Any, spec: Any, quiet: bool = False) -> Live:
    """A Live over an EmulatedCluster (emu/cluster.py): the one place the shell meets emu."""
    from ..emu.cluster import exec_in_netns
    from ..experiment.changes import apply_action

    def change(action: object) -> tuple[Plan, Any]:
        new_manifests, new_plan = apply_action(action, spec, cluster.manifests, cluster.plan, "shell")
        cluster.apply(new_plan, new_manifests)
        return cluster.plan, cluster.manifests

    ledger = getattr(cluster, "ledger", None)
    logs = os.path.join(ledger.dir, "access") if ledger is not None and getattr(ledger, "dir", "") else ""
    def capture(key: str, argv: list[str]) -> tuple[int, str]:
        import subprocess
        try:   # bounded: pingall's pings wait 1 s, iperf runs 2 s
            done = subprocess.run(["ip", "netns", "exec", cluster.netns(key), *argv], capture_output=True,
                                  text=True, timeout=30)
        except subprocess.TimeoutExpired:
            return 124, ""
        return done.returncode, done.stdout

    history: dict = {}   # (namespace, deployment) -> the previous pod template, for `rollout undo`

    def rollout(action: Any) -> tuple[Plan, Any]:
        # the experiment runner's rolling update: every intermediate state applied, new pods first
        from ..experiment.run import _roll_out
        _roll_out(cluster, spec, cluster.manifests, action, history, "shell")
        return cluster.plan, cluster.manifests

    return Live(cluster.netns, exec_in_netns, change, logs, capture, rollout)
