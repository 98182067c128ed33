"""The all-pairs probe rate under two (or more) trees' code, alternately in one run (issue 18).

    sudo .venv/bin/python benchmarks/probe_ab.py TREE_A TREE_B [TREE ...] [--rounds 4] [--passes 5]
    (a TREE is a source tree's root, e.g. /work/main or a `git archive` of a commit: its testbed
    is imported through PYTHONPATH, by this interpreter, from that folder, in the prober and in
    the agent alike)

Each round runs `--one` once under each tree, one after the other (the order turns each round),
so that both share the VM's load: `testbed bench`'s all-pairs cluster (100 pods on 3 workers, every
ordered pair over TCP 80, bench/probing.py) and its passes. Per pass: the wall rate, CPU seconds
per 1,000 probes of the prober's process (user / system), of the agent (user / system) and of the
whole machine (/proc/stat, all cores busy, other work included), and the load average. Then per
tree the medians over every pass after the first (the bench's rate is the median of those). On a
shared VM the wall rate follows the load; compare the CPU per 1,000 probes too.
Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """Seconds of CPU spent by every core, not idle nor waiting for I/O."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICK


def runtime_of(pids: list[int]) -> float:
    """CPU seconds these processes' threads ran (/proc/PID/task/*/schedstat: exact, where the
    user / system split of /proc/PID/stat is counted in ticks)."""
    total = 0
    for pid in pids:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/schedstat", encoding="ascii") as handle:
                    total += int(handle.read().split()[0])
            except OSError:
                pass
    return total / 1e9


def cpu_of(pids: list[int]) -> tuple[float, float]:
    user = system = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        user, system = user + int(fields[11]) / TICK, system + int(fields[12]) / TICK
    return user, system


def tcp_segments(namespaces: list[str]) -> int:
    """TCP segments sent from these namespaces so far (each one's /proc/net/snmp OutSegs)."""
    from testbed.netns import in_netns

    total = 0
    for path in namespaces:
        with in_netns(path), open("/proc/thread-self/net/snmp", encoding="ascii") as handle:
            tcp = [line.split() for line in handle if line.startswith("Tcp:")]
        total += int(tcp[1][tcp[0].index("OutSegs")])
    return total


@contextmanager
def all_pairs(pods: int) -> Iterator[tuple[Any, list[int], list[Any]]]:
    """`testbed bench`'s all-pairs cluster (bench/probing.py): (the cluster, its agents' pids,
    every ordered pair's TCP 80 probe), torn down on exit. Imports the testbed it finds on the
    path (probe_cost.py uses it too)."""
    from testbed.bench.workloads import deployment_yaml, topology_yaml, write
    from testbed.emu.cluster import EmulatedCluster
    from testbed.plan.build import plan_cluster
    from testbed.spec.topology import load_topology
    from testbed.spec.workloads import load_manifests
    from testbed.traffic.prober import Probe

    with tempfile.TemporaryDirectory(prefix="tb-bench-") as folder:
        spec = load_topology(write(folder, "topology.yaml", topology_yaml(4)))
        manifests = load_manifests([write(folder, "bulk.yaml", deployment_yaml("bulk", pods))])
        plan = plan_cluster(spec, manifests, seed=0)
    with EmulatedCluster(plan) as cluster:
        agents = [d.pid for d in cluster.agent.daemons if d.pid is not None]
        bulk = [p for p in cluster.plan.pods if p.labels.get("app") == "bulk"]
        probes = [
            Probe(i, cluster.netns_path(s.key), d.ip, 80, "TCP", 1.0)
            for i, (s, d) in enumerate((s, d) for s in bulk for d in bulk if s.key != d.key)
        ]
        yield cluster, agents, probes


def one(pods: int, passes: int) -> list[dict[str, object]]:
    import resource

    import testbed
    from testbed.traffic.prober import run_probes

    rows: list[dict[str, object]] = []
    with all_pairs(pods) as (_, agents, probes):
        per_k = 1000.0 / len(probes)
        namespaces = sorted({p.src_netns for p in probes})
        for n in range(passes):
            load, segments = os.getloadavg()[0], tcp_segments(namespaces)
            me0, ag0, busy0 = resource.getrusage(resource.RUSAGE_SELF), cpu_of(agents), machine_busy()
            agent0 = runtime_of(agents)
            t0 = time.perf_counter()
            results = run_probes(probes)
            wall = time.perf_counter() - t0
            me1, ag1, busy1 = resource.getrusage(resource.RUSAGE_SELF), cpu_of(agents), machine_busy()
            agent1 = runtime_of(agents)
            segments = tcp_segments(namespaces) - segments
            rows.append(
                {
                    "code": os.path.dirname(os.path.dirname(testbed.__file__)),
                    "cwd": os.getcwd(),  # where the agent's `python -m testbed.agent` looks first
                    "pass": n + 1,
                    "load": round(load, 1),
                    "rate": round(len(probes) / wall),
                    "connected": sum(1 for r in results if r.outcome == "connected"),
                    "prober_user": round((me1.ru_utime - me0.ru_utime) * per_k, 4),
                    "prober_sys": round((me1.ru_stime - me0.ru_stime) * per_k, 4),
                    "agent_user": round((ag1[0] - ag0[0]) * per_k, 4),
                    "agent_sys": round((ag1[1] - ag0[1]) * per_k, 4),
                    # the totals exact (the prober's from getrusage: its threads' runtime)
                    "prober": round((me1.ru_utime + me1.ru_stime - me0.ru_utime - me0.ru_stime) * per_k, 4),
                    "agent": round((agent1 - agent0) * per_k, 4),
                    "machine": round((busy1 - busy0) * per_k, 4),
                    "segments": round(segments / len(probes), 3),  # both ends': every pod sends and answers
                }
            )
            time.sleep(0.3)
    return rows


FIGURES = ("rate", "prober", "prober_user", "prober_sys", "agent", "agent_user", "agent_sys", "machine", "segments")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("trees", nargs="*")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        for row in one(args.pods, args.passes):
            print(json.dumps(row), flush=True)
        return 0
    if len(args.trees) < 2:
        parser.error("give two source trees or more")
    trees = [os.path.abspath(t) for t in args.trees]
    rows: dict[str, list[dict[str, object]]] = {t: [] for t in trees}
    for r in range(args.rounds):
        for tree in trees[r % len(trees) :] + trees[: r % len(trees)]:
            env = dict(os.environ, PYTHONPATH=tree)
            argv = [sys.executable, os.path.abspath(__file__), "--one", "--pods", str(args.pods)]
            # cwd too: the agent starts as `python -m testbed.agent`, which looks in the current
            # folder before PYTHONPATH (from another tree's folder it would run that tree's agent)
            out = subprocess.run(
                [*argv, "--passes", str(args.passes)], env=env, cwd=tree, capture_output=True, text=True, check=False
            )
            if out.returncode != 0:
                print(out.stderr[-2000:], file=sys.stderr)
                return 1
            for line in out.stdout.splitlines():
                row = json.loads(line)
                print(f"round {r + 1} {tree}: {row}", flush=True)
                if row["code"] != tree or row["cwd"] != tree:
                    print(f"imported {row['code']} in {row['cwd']}, not {tree}", file=sys.stderr)
                    return 1
                if int(row["pass"]) > 1:  # type: ignore[call-overload]
                    rows[tree].append(row)
    for tree in trees:
        medians = {k: statistics.median(float(row[k]) for row in rows[tree]) for k in FIGURES}  # type: ignore[arg-type]
        loads = [float(row["load"]) for row in rows[tree]]  # type: ignore[arg-type]
        print(
            f"{tree}: {len(rows[tree])} passes after the first, median rate {medians['rate']:,.0f}/s; "
            f"CPU s per 1,000 probes: prober {medians['prober']:.4f} ({medians['prober_user']:.4f} user + "
            f"{medians['prober_sys']:.4f} system), agent {medians['agent']:.4f} ({medians['agent_user']:.4f} + "
            f"{medians['agent_sys']:.4f}), both {medians['prober'] + medians['agent']:.4f}, machine {medians['machine']:.4f}; "
            f"{medians['segments']:.2f} TCP segments a probe "
            f"(load {min(loads):.1f}-{max(loads):.1f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
