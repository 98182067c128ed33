"""Kernel-wide capacity limits an emulation of many pods needs (emu/).

The ARP/neighbour table is one kernel table shared by every network namespace, capped by
net.ipv4.neigh.default.gc_thresh3 (1,024 by default) in the VM's own namespace. Pods of one
node on one bridge resolve each other directly (bridge CNI, scenario 001), so an all-pairs
matrix among 100 pods needs a few thousand entries: past the cap the kernel refuses new
ones and probes time out for no network reason. We raise the cap — only ever raise it, as
Mininet's fixLimits does — to what the plan can need; it is a capacity limit, not behaviour,
and it touches no address or route of the VM.
"""

from __future__ import annotations

from ..plan.model import Plan

_NEIGH = "/proc/sys/net/ipv4/neigh/default/gc_thresh{}"


def neighbour_entries_needed(plan: Plan) -> int:
    """Worst case: every pod knows every pod of its node and its gateway; nodes know all."""
    per_node: dict[str, int] = {}
    for pod in plan.pods:
        per_node[pod.node] = per_node.get(pod.node, 0) + 1
    pods = sum(n * (n + 1) for n in per_node.values())  # pod -> same-node pods + gateway; node -> its pods
    underlay = (len(plan.nodes) + len(plan.externals)) ** 2
    return pods + underlay


def raise_neighbour_limits(plan: Plan) -> dict[str, int]:
    """Raise gc_thresh1..3 so the plan fits twice over; returns what was changed."""
    need = 2 * neighbour_entries_needed(plan)
    changed: dict[str, int] = {}
    for level, share in ((3, 1.0), (2, 0.75), (1, 0.25)):
        path = _NEIGH.format(level)
        try:
            with open(path, encoding="ascii") as handle:
                current = int(handle.read().strip())
            target = int(need * share)
            if target > current:
                with open(path, "w", encoding="ascii") as handle:
                    handle.write(str(target))
                changed[f"gc_thresh{level}"] = target
        except (OSError, ValueError):
            continue  # not fatal: small clusters never need it
    return changed
