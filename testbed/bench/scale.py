"""One point of the scale curve: build N nodes and P pods, measure, tear down, check nothing is left.

Build time is EmulatedCluster.timings["build"] (stale sweep, neighbour limits, Mininet underlay,
pod sandboxes, agent, controllers, until ready for probes); teardown is timings["teardown"].
At full size, before teardown: the PSS of all the testbed's processes (bench/memory.py), the
system-wide MemAvailable drop since before the build (kernel objects included, other users of
the machine too), a sample of real TCP probes between random pods (all must connect), and
the limits a bigger cluster would meet first: the agent's open files against its limit, the
machine's namespaces and open files.
Optionally the same number of plain Mininet hosts is built and stopped in the same run.
"""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..emu.cluster import EmulatedCluster
from ..emu.ledger import STATE_DIR, netns_prefix, owner_alive
from ..traffic.prober import Probe, run_probes
from .machine import mem_available
from .memory import cluster_memory
from .mininet_baseline import MininetFigures, plain_mininet
from .workloads import deployment_cluster


@dataclass
class ScalePoint:
    nodes: int
    pods: int  # every pod of the plan (the Deployment's + CoreDNS's)
    plan_s: float
    build_s: float
    teardown_s: float
    phases: dict[str, float]  # cluster.timings
    memory: dict[str, Any]  # MemoryFigures.to_dict()
    system_used_delta_bytes: int  # MemAvailable before the build - at full size
    probe_check: dict[str, int]  # outcome -> count, for the sample of real probes
    leftovers: list[str]  # what teardown left behind (must be empty)
    mininet: dict[str, float] | None = None  # plain Mininet figures, same host count
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pods_per_s(self) -> float:
        return self.pods / max(self.build_s, 1e-9)

    @property
    def ratio(self) -> float | None:
        """Testbed pods per second over plain Mininet hosts per second (> 1: the testbed is faster)."""
        if not self.mininet:
            return None
        return self.pods_per_s / max(self.mininet["hosts_per_s"], 1e-9)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["pods_per_s"] = self.pods_per_s
        out["ratio_vs_mininet"] = self.ratio
        return out


def probe_sample(cluster: EmulatedCluster, count: int = 300, seed: int = 0) -> dict[str, int]:
    """Real TCP probes between random pod pairs of the live cluster; outcome -> count."""
    rng = random.Random(seed)
    pods = [p for p in cluster.plan.pods if any(q.protocol == "TCP" and q.port == 80 for q in p.ports)]
    probes = []
    for i in range(count):
        src, dst = rng.sample(pods, 2)
        probes.append(Probe(i, cluster.netns_path(src.key), dst.ip, 80, "TCP", 1.0))
    counts: dict[str, int] = {}
    for r in run_probes(probes):
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    return counts


def open_files(pid: int) -> dict[str, int]:
    """A process's open file descriptors and its limit (the agent holds one socket per pod port)."""
    out = {"open": 0, "limit": 0}
    try:
        out["open"] = len(os.listdir(f"/proc/{pid}/fd"))
        with open(f"/proc/{pid}/limits", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Max open files"):
                    out["limit"] = int(line.split()[3])
    except (OSError, ValueError, IndexError):
        pass
    return out


def kernel_tables() -> dict[str, int]:
    """What the kernel holds for the emulation, machine-wide: network namespaces and links."""
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    with open("/proc/sys/fs/file-nr", encoding="ascii") as handle:
        files = int(handle.read().split()[0])
    return {"netns": len(names.splitlines()), "open_files_machine": files}


def leftovers(tag: str, pids: list[int]) -> list[str]:
    """What a torn-down instance left: its namespaces, live processes, state and /etc/netns folders."""
    out = []
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout.split()
    out += [f"netns {n}" for n in names if n.startswith(netns_prefix(tag))]
    out += [f"process {p}" for p in pids if owner_alive(p, None)]  # running: a zombie holds nothing
    if os.path.exists(os.path.join(STATE_DIR, tag)):
        out.append(f"state {os.path.join(STATE_DIR, tag)}")
    if os.path.isdir("/etc/netns"):
        out += [f"/etc/netns/{n}" for n in os.listdir("/etc/netns") if n.startswith(netns_prefix(tag))]
    return out


def scale_point(
    nodes: int,
    pods: int,
    mininet_hosts: int | None = None,
    seed: int = 0,
    progress: Callable[[str], None] = lambda _m: None,
) -> ScalePoint:
    """Build and tear down one cluster size; `mininet_hosts`: also time that many plain Mininet hosts."""
    with tempfile.TemporaryDirectory(prefix="tb-bench-") as folder:
        t0 = time.perf_counter()
        _, _, plan = deployment_cluster(folder, nodes, pods, seed=seed)
        plan_s = time.perf_counter() - t0
    before = mem_available()
    cluster = EmulatedCluster(plan)
    progress(f"building {len(plan.nodes)} nodes, {len(plan.pods)} pods")
    with cluster:
        memory = cluster_memory(cluster)
        used = before - mem_available()
        checked = probe_sample(cluster, seed=seed)
        agent = cluster.agent.proc.pid if cluster.agent is not None and cluster.agent.proc is not None else 0
        extra = {"agent_files": open_files(agent) if agent else {}, "kernel": kernel_tables()}
        tag = cluster.tag
        pids = list(cluster.ledger.pids) if cluster.ledger is not None else []
    point = ScalePoint(
        nodes=len(plan.nodes),
        pods=len(plan.pods),
        plan_s=plan_s,
        build_s=cluster.timings["build"],
        teardown_s=cluster.timings["teardown"],
        phases=dict(cluster.timings),
        memory=memory.to_dict(),
        system_used_delta_bytes=used,
        probe_check=checked,
        leftovers=leftovers(tag, pids),
        extra=extra,
    )
    progress(
        f"{point.pods} pods: build {point.build_s:.2f} s, teardown {point.teardown_s:.2f} s, "
        f"memory {memory.total / 2**20:.0f} MiB PSS"
    )
    if mininet_hosts:
        progress(f"plain Mininet: {mininet_hosts} hosts")
        figures: MininetFigures = plain_mininet(mininet_hosts)
        point.mininet = {
            "hosts": figures.hosts,
            "build_s": figures.build_s,
            "stop_s": figures.stop_s,
            "hosts_per_s": figures.hosts_per_s,
        }
        progress(
            f"plain Mininet: {figures.hosts} hosts built in {figures.build_s:.2f} s, stopped in {figures.stop_s:.2f} s"
        )
    return point
