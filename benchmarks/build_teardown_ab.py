"""A big build and teardown under two trees' code, alternately in one run (issue 18).

    sudo .venv/bin/python benchmarks/build_teardown_ab.py PYTHON_A PYTHON_B [NODES] [PODS] [ROUNDS]
    (defaults: 50 10000 2; e.g. PYTHON_A = another worktree's .venv/bin/python)

Each round runs `--one` under each interpreter (so each imports its own tree's testbed) and
prints one JSON line: build and teardown wall time, the system and user CPU of the process and
its children for each, the load average at its start, the phases, whether the last pod's
`ip netns exec ... cat /etc/resolv.conf` shows a resolver, and what teardown left behind.
The VM is shared: compare the CPU figures as well as the wall times.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile


def _cpu() -> tuple[float, float]:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_stime + c.ru_stime, s.ru_utime + c.ru_utime


def one(nodes: int, pods: int) -> dict[str, object]:
    import testbed
    from testbed.bench.scale import leftovers
    from testbed.bench.workloads import deployment_cluster
    from testbed.emu.cluster import EmulatedCluster
    from testbed.emu.ledger import netns_name

    with tempfile.TemporaryDirectory(prefix="tb-bench-") as folder:
        _, _, plan = deployment_cluster(folder, nodes, pods, seed=0)
    cluster = EmulatedCluster(plan)
    load = os.getloadavg()[0]
    c0 = _cpu()
    with cluster:
        c1 = _cpu()
        ns = netns_name(cluster.tag, plan.pods[-1].key)
        seen = subprocess.run(["ip", "netns", "exec", ns, "cat", "/etc/resolv.conf"], capture_output=True, text=True)
        tag, pids = cluster.tag, list(cluster.ledger.pids) if cluster.ledger is not None else []
    c2 = _cpu()
    return {
        "code": os.path.dirname(testbed.__file__),
        "pods": len(plan.pods),
        "load": round(load, 1),
        "build_s": round(cluster.timings["build"], 1),
        "build_sys_s": round(c1[0] - c0[0], 1),
        "build_user_s": round(c1[1] - c0[1], 1),
        "teardown_s": round(cluster.timings["teardown"], 1),
        "teardown_sys_s": round(c2[0] - c1[0], 1),
        "teardown_user_s": round(c2[1] - c1[1], 1),
        "resolv_conf_seen": "nameserver" in seen.stdout,
        "left": leftovers(tag, pids)[:5],
        "phases": {k: round(v, 1) for k, v in cluster.timings.items()},
    }


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:
        print(json.dumps(one(int(argv[1]), int(argv[2]))), flush=True)
        return 0
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    a, b, *rest = argv
    nodes, pods, rounds = (int(x) for x in (rest + ["50", "10000", "2"][len(rest) :])[:3])
    for _ in range(rounds):
        for python in (a, b):
            out = subprocess.run([python, __file__, "--one", str(nodes), str(pods)], capture_output=True, text=True)
            print(out.stdout.strip() or f"{python}: failed: {out.stderr.strip()[-300:]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
