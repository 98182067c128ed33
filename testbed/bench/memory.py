"""Memory of the testbed's processes: PSS from /proc/<pid>/smaps_rollup (RSS where missing).

PSS (proportional set size) counts a page shared by k processes as 1/k in each, so the sum over
a set of processes is the memory the set really holds: a thousand Mininet bash shells share
their binary and libraries, and their RSS would count those a thousand times. Kernel memory
(namespaces, veths, bridges, conntrack, nft sets) belongs to no process; `kernel_delta` in the
scale benchmark reports the system-wide MemAvailable difference for that, which other users
of the machine also move.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..emu.controllers import ClusterDns


def pss_bytes(pid: int) -> int | None:
    """PSS of one process (bytes), RSS if smaps_rollup is unavailable, None if it is gone."""
    for path, key in ((f"/proc/{pid}/smaps_rollup", "Pss:"), (f"/proc/{pid}/status", "VmRSS:")):
        try:
            with open(path, encoding="ascii", errors="replace") as handle:
                for line in handle:
                    if line.startswith(key):
                        return int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError):
            return None
        except OSError:
            continue
    return None


def _children(parents: set[int]) -> set[int]:
    """Every live descendant of `parents` (by PPid in /proc/<pid>/stat)."""
    ppid: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                    ppid[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found: set[int] = set()
    frontier = set(parents)
    while frontier:
        frontier = {pid for pid, parent in ppid.items() if parent in frontier and pid not in found}
        found |= frontier
    return found - parents


@dataclass
class MemoryFigures:
    """PSS by group of processes (bytes), and how many processes each group has."""

    groups: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.groups.values())

    def to_dict(self) -> dict[str, Any]:
        return {"total_bytes": self.total, "groups_bytes": dict(self.groups), "processes": dict(self.counts)}


def measure_pids(groups: dict[str, Iterable[int]]) -> MemoryFigures:
    """Sum the PSS of each group; a pid counts once, in the first group that names it."""
    seen: set[int] = set()
    out = MemoryFigures()
    for name, pids in groups.items():
        total, count = 0, 0
        for pid in pids:
            if pid in seen:
                continue
            seen.add(pid)
            value = pss_bytes(pid)
            if value is not None:
                total, count = total + value, count + 1
        out.groups[name], out.counts[name] = total, count
    return out


def cluster_memory(cluster: Any) -> MemoryFigures:
    """PSS of everything a live EmulatedCluster runs: this Python process, the agent, the
    Mininet shells of nodes, hosts and switches, dnsmasq, and any child of those (e.g. a
    bird2 daemon or a command still running in a node's shell)."""
    agent = [cluster.agent.proc.pid] if cluster.agent is not None and cluster.agent.proc is not None else []
    shells = [
        h.pid
        for h in (cluster.underlay.hosts.values() if cluster.underlay is not None else ())
        if getattr(h, "pid", None)
    ]
    dns_controller = cluster.controller(ClusterDns)
    dns = [
        s.daemon.pid
        for s in (dns_controller.servers.values() if dns_controller is not None else ())
        if s.daemon is not None and s.daemon.pid is not None
    ]
    ledger = list(cluster.ledger.pids) if cluster.ledger is not None else []
    known = {os.getpid(), *agent, *shells, *dns, *ledger}
    return measure_pids(
        {
            "python (this process)": [os.getpid()],
            "agent": agent,
            "Mininet shells": shells,
            "dnsmasq": dns,
            "others (ledger, children)": ledger + sorted(_children(known)),
        }
    )
