"""Where a change's seconds go, phase by phase, at 1,000 pods (issue 18).

    sudo .venv/bin/python benchmarks/change_phases.py [SCALES] [MODE]   (defaults: 3, iptables)

Builds bench/changes.py's cluster (10 nodes, a Deployment of 1,000 pods behind a ClusterIP
Service), then applies SCALES scales of +10 pods, a NetworkPolicy and a relabel. Each apply is
timed by wrapping, for the run only, the functions it goes through: every controller's sync,
kube-proxy's rulesets and sync texts, each `iptables-restore` (or nft load), the sandboxes'
`ip` batches and in-process steps. For each phase: its seconds summed over its calls, how many
calls, and when the first started and the last ended (seconds after the apply's start), so that
overlapping phases show as such; then the apply's own seconds, the CPU of this process and of its
children during it, and the load average. The VM is shared: read the CPU with the wall times.
"""

from __future__ import annotations

import functools
import os
import resource
import sys
import tempfile
import threading
import time
from typing import Any

Event = tuple[str, float, float]  # phase, start after the apply's start, seconds


def _wrap(owner: Any, attr: str, name: str, events: list[Event], start: list[float], lock: threading.Lock) -> None:
    original = getattr(owner, attr)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            with lock:
                events.append((name, t - start[0], time.perf_counter() - t))

    setattr(owner, attr, timed)


def _live_children_cpu() -> float:
    """CPU seconds of this process's children still running (kube-proxy's persistent
    iptables-restore per node, emu/restorer.py): RUSAGE_CHILDREN counts only reaped ones."""
    me, tick, total = str(os.getpid()), os.sysconf("SC_CLK_TCK"), 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me:
                total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def _cpu() -> tuple[float, float]:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime, c.ru_utime + c.ru_stime + _live_children_cpu()


def main(argv: list[str]) -> int:
    import testbed.plan.rulesets as plan_rulesets  # the Plan imports its builders when asked
    from testbed.bench.changes import POLICY
    from testbed.bench.workloads import deployment_cluster, write
    from testbed.emu import controllers, pods, rules
    from testbed.emu.cluster import EmulatedCluster
    from testbed.experiment.changes import Action, Apply, Label, Scale, apply_action
    from testbed.experiment.model import PodSelection

    scales = int(argv[0]) if argv else 3
    mode = argv[1] if len(argv) > 1 else "iptables"
    events: list[Event] = []
    start = [0.0]
    lock = threading.Lock()

    def wrap(owner: Any, attr: str, name: str) -> None:
        _wrap(owner, attr, name, events, start, lock)

    for cls in (
        controllers.PodSandboxes,
        controllers.Agent,
        controllers.KubeProxy,
        controllers.ClusterDns,
        controllers.PolicyProvider,
        controllers.LeavingPods,
    ):
        wrap(cls, "sync", f"sync {cls.__name__}")
    wrap(plan_rulesets, "kube_proxy_rulesets", "kube-proxy rulesets")
    wrap(controllers.KubeProxy, "_sync_text", "kube-proxy sync texts")
    wrap(controllers.KubeProxy, "restore", "iptables-restore (one node)")
    wrap(rules, "nft_load", "nft load (one node)")
    wrap(pods, "add_netns", "pod namespaces")
    wrap(pods.PodNetwork, "_node_job", "ip batch (one node)")
    wrap(pods, "add_pod_links", "pod veths (one node, in-process)")
    wrap(pods, "configure_pod", "pod inside (one pod)")
    with tempfile.TemporaryDirectory(prefix="tb-bench-") as folder:
        spec, manifests, plan = deployment_cluster(folder, 10, 1000, service=True, seed=0, kube_proxy_mode=mode)
        policy = write(folder, "policy.yaml", POLICY)
        with EmulatedCluster(plan) as cluster:
            src = next(p for p in cluster.plan.pods if p.labels.get("app") == "bench")
            actions: list[tuple[str, Action]] = [
                (f"scale +10 to {1000 + 10 * (i + 1)}", Scale("Deployment", "bench", 1000 + 10 * (i + 1)))
                for i in range(scales)
            ]
            actions += [("policy", Apply((policy,)))]
            actions += [("relabel", Label(PodSelection(src.namespace, (src.name,)), {"access": "true"}))]
            for name, action in actions:
                manifests, new = apply_action(action, spec, manifests, cluster.plan, "bench")
                events.clear()
                load, c0 = os.getloadavg()[0], _cpu()
                start[0] = time.perf_counter()
                done = cluster.apply(new)
                c1 = _cpu()
                print(
                    f"{name} ({mode}): apply {float(done['seconds']):.3f} s, CPU {c1[0] - c0[0]:.3f} s self + "
                    f"{c1[1] - c0[1]:.3f} s children, load average {load:.1f}"
                )
                phases: dict[str, list[float]] = {}
                for phase, at, seconds in events:
                    p = phases.setdefault(phase, [0.0, 0, at, at + seconds])
                    p[0] += seconds
                    p[1] += 1
                    p[2], p[3] = min(p[2], at), max(p[3], at + seconds)
                for phase, (total, calls, first, last) in sorted(phases.items(), key=lambda kv: kv[1][2]):
                    print(f"  {phase:30s} {total:7.3f} s in {int(calls):3d} calls, {first:6.3f} -> {last:6.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
