"""Benchmark: the scale curve — build, teardown and memory against pod count, plus plain Mininet.

    sudo .venv/bin/python benchmarks/scale_curve.py [--sizes 100,300,1000,2000] [--nodes 10]
                                                    [--mininet-max 2000] [--docs]
    sudo .venv/bin/python benchmarks/scale_curve.py --sizes 2000@10,5000@25,10000@50,15000@75,20000@100

For each size: a kind-style cluster of --nodes nodes and a Deployment of that many pods is
built and torn down (EmulatedCluster.timings: build, teardown and their phases), the PSS of
every testbed process is summed at full size (this Python process, the agent, the Mininet
shells, dnsmasq), 300 real TCP probes check the pods answer, and teardown must leave nothing.
Then the same number of plain Mininet hosts (LinuxBridge switches and hosts in namespaces,
as emu/underlay.py builds them; capped by --mininet-max) is built and stopped in the same run,
for the ratio testbed pods/s ÷ Mininet hosts/s. Prints every figure with the machine; writes
benchmarks/results/scale-curve-<time>.json and .png (and docs/scale-curve.* with --docs).
Never a timed assertion: figures for README.md and issue 7.

A size may name its node count (PODS@NODES). The curve goes on until something gives: a size
that fails (its cluster is torn down, the error recorded as the limit hit) ends it, and so does
a size that would leave the machine less than --keep-free GiB available (MemAvailable falls
by about the last size's drop per pod; the machine is shared) or open more sockets in the
agent than its limit of open files allows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from datetime import UTC, datetime
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from testbed.bench.machine import describe_machine, machine_line  # noqa: E402
from testbed.bench.scale import ScalePoint, scale_point  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
DOCS = os.path.join(os.path.dirname(HERE), "docs")
MIB = 2**20


def describe(point: ScalePoint) -> str:
    """The figures of one size, one per line."""
    phases = ", ".join(f"{k} {v:.2f} s" for k, v in point.phases.items() if k not in ("build", "teardown"))
    mem = point.memory
    groups = ", ".join(f"{k} {v / MIB:.0f} MiB ({mem['processes'][k]})" for k, v in mem["groups_bytes"].items() if v)
    lines = [
        f"{point.nodes} nodes, {point.pods} pods:",
        f"  build {point.build_s:.2f} s ({point.pods_per_s:.0f} pods/s; {phases}); plan {point.plan_s:.2f} s",
        f"  teardown {point.teardown_s:.2f} s; left behind: {', '.join(point.leftovers) or 'nothing'}",
        f"  memory (PSS) of the testbed's processes {mem['total_bytes'] / MIB:.0f} MiB: {groups}",
        f"  system-wide MemAvailable drop at full size {point.system_used_delta_bytes / MIB:.0f} MiB "
        "(kernel objects included; other users of the machine move it too)",
        f"  probe check: {point.probe_check}",
    ]
    files, kernel = point.extra.get("agent_files") or {}, point.extra.get("kernel") or {}
    if files:
        lines.append(
            f"  limits: the agent's open files {files.get('open')} of {files.get('limit')}; machine-wide "
            f"{kernel.get('netns')} named namespaces, {kernel.get('open_files_machine')} open files"
        )
    if point.mininet:
        m = point.mininet
        lines.append(
            f"  plain Mininet, {m['hosts']:.0f} hosts: build {m['build_s']:.2f} s ({m['hosts_per_s']:.0f} hosts/s), "
            f"stop {m['stop_s']:.2f} s; ratio testbed pods/s ÷ Mininet hosts/s = {point.ratio:.1f}"
        )
    return "\n".join(lines)


def linearity(points: list[ScalePoint]) -> dict[str, Any]:
    """Marginal build seconds per 1,000 pods between successive sizes (flat or falling = linear or better)."""
    out = []
    for a, b in zip(points, points[1:]):
        out.append(
            {
                "from": a.pods,
                "to": b.pods,
                "build_s_per_1000_pods": (b.build_s - a.build_s) / (b.pods - a.pods) * 1000,
                "pss_mib_per_1000_pods": (b.memory["total_bytes"] - a.memory["total_bytes"])
                / MIB
                / (b.pods - a.pods)
                * 1000,
            }
        )
    return {"marginal": out}


def plot(points: list[ScalePoint], path: str, machine: dict[str, Any]) -> None:
    """Build/teardown time (with plain Mininet's) and memory against pod count, into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pods = [p.pods for p in points]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(pods, [p.build_s for p in points], "o-", label="testbed build (ready for probes)")
    left.plot(pods, [p.teardown_s for p in points], "s-", label="testbed teardown")
    mn = [p for p in points if p.mininet]
    if mn:
        left.plot(
            [p.mininet["hosts"] for p in mn],
            [p.mininet["build_s"] for p in mn],
            "^--",
            color="grey",
            label="plain Mininet, same number of hosts: build",
        )
    ref = max(points, key=lambda p: p.pods)
    left.plot([0, ref.pods], [0, ref.build_s], ":", color="C0", alpha=0.6, label="linear through the largest build")
    left.plot([1000], [10], "r*", markersize=10, label="target at 1,000 pods (≤ 10 s)")
    if ref.pods >= 10000:
        left.plot([10000], [20], "m*", markersize=10, label="target at 10,000 pods on 50 nodes (≤ 20 s)")
    left.set_xlabel(
        "pods (" + ", ".join(f"{p.pods:,}: {p.nodes} nodes" for p in points if p.nodes != 10) + ")"
        if any(p.nodes != 10 for p in points)
        else "pods (10 nodes)"
    )
    left.set_ylabel("seconds")
    left.set_title("build and teardown time")
    left.legend(fontsize=7)
    left.grid(alpha=0.3)
    right.plot(pods, [p.memory["total_bytes"] / MIB for p in points], "o-", label="PSS of all testbed processes")
    right.plot(
        pods,
        [p.system_used_delta_bytes / MIB for p in points],
        "s--",
        color="grey",
        label="system-wide MemAvailable drop (kernel included)",
    )
    right.set_xlabel(left.get_xlabel())
    right.set_ylabel("MiB")
    right.set_title("memory at full size (target at 1,000 pods: ≤ 4 GiB)")
    right.legend(fontsize=7)
    right.grid(alpha=0.3)
    fig.suptitle(
        f"k8s-netemu testbed scale curve — {machine['cores']} cores, {machine['memory_gib']} GiB, "
        f"kernel {machine['kernel']}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_sizes(text: str, nodes: int) -> list[tuple[int, int]]:
    """Sizes as (pods, nodes): "100,1000@10,10000@50" -> [(100, nodes), (1000, 10), (10000, 50)]."""
    out = []
    for item in (s.strip() for s in text.split(",") if s.strip()):
        pods, _, n = item.partition("@")
        out.append((int(pods), int(n) if n else nodes))
    return out


def would_exceed(last: ScalePoint | None, pods: int, keep_free: float) -> str:
    """Why the next size is not built (""= it may be): memory or the agent's open files."""
    if last is None:
        return ""
    from testbed.bench.machine import mem_available

    per_pod = max(last.system_used_delta_bytes, 0) / max(last.pods, 1)
    need, free = per_pod * pods * 1.2, mem_available()
    if free - need < keep_free * 2**30:
        return (
            f"memory: {pods} pods would take about {need / 2**30:.1f} GiB of the {free / 2**30:.1f} GiB "
            f"available, leaving less than --keep-free {keep_free:g} GiB"
        )
    files = last.extra.get("agent_files") or {}
    if files.get("limit") and files["open"] / max(last.pods, 1) * pods > files["limit"]:
        return (
            f"file descriptors: the agent held {files['open']} open files for {last.pods} pods; "
            f"{pods} pods need about {files['open'] * pods // last.pods}, over its limit of {files['limit']}"
        )
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,300,1000,2000", help="pod counts, comma-separated")
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument(
        "--mininet-max", type=int, default=2000, help="plain Mininet hosts are built for sizes up to this (0: none)"
    )
    parser.add_argument("--docs", action="store_true", help="also write docs/scale-curve.png and .json")
    parser.add_argument("--keep-free", type=float, default=8.0, help="GiB of MemAvailable never to go below")
    args = parser.parse_args()
    sizes = parse_sizes(args.sizes, args.nodes)
    machine = describe_machine()
    print(machine_line(machine), flush=True)
    points: list[ScalePoint] = []
    limit: dict[str, Any] | None = None
    for size, nodes in sizes:
        reason = would_exceed(points[-1] if points else None, size, args.keep_free)
        if reason:
            limit = {"pods": size, "nodes": nodes, "built": False, "limit": reason}
            break
        mininet = size if 0 < size <= args.mininet_max else None
        try:
            point = scale_point(
                nodes, size, mininet_hosts=mininet, progress=lambda m: print(f"  [{m}]", file=sys.stderr, flush=True)
            )
        except Exception as exc:  # the limit hit: the cluster tore itself down; say what gave
            limit = {"pods": size, "nodes": nodes, "built": True, "limit": f"{type(exc).__name__}: {exc}"[:2000]}
            break
        print(describe(point), flush=True)
        points.append(point)
    if limit is not None:
        print(f"stopped at {limit['pods']} pods on {limit['nodes']} nodes: {limit['limit']}", flush=True)
    if not points:
        return
    lin = linearity(points)
    for m in lin["marginal"]:
        print(
            f"marginal build cost {m['from']} -> {m['to']} pods: {m['build_s_per_1000_pods']:.2f} s per 1,000 pods; "
            f"memory {m['pss_mib_per_1000_pods']:.0f} MiB per 1,000 pods"
        )
    stamp = f"{datetime.now(UTC):%Y%m%d-%H%M%S}"
    os.makedirs(RESULTS, exist_ok=True)
    base = os.path.join(RESULTS, f"scale-curve-{stamp}")
    with open(base + ".json", "w", encoding="utf-8") as handle:
        json.dump(
            {
                "machine": machine,
                "points": [p.to_dict() for p in points],
                "linearity": lin,
                "limit": limit,
            },
            handle,
            indent=2,
            sort_keys=True,
        )
    plot(points, base + ".png", machine)
    print(f"results: {base}.json, {base}.png")
    if args.docs:
        os.makedirs(DOCS, exist_ok=True)
        for ext in (".json", ".png"):
            shutil.copyfile(base + ext, os.path.join(DOCS, "scale-curve" + ext))
        print(f"copied to {os.path.join(DOCS, 'scale-curve')}.{{json,png}}")


if __name__ == "__main__":
    main()
