"""The change benchmark's three changes under two trees' code, alternately in one run (issue 18).

    sudo .venv/bin/python benchmarks/change_ab.py PYTHON_A PYTHON_B [ROUNDS] [SCALES] [MODE]
    (defaults: 3 rounds, 3 scales, iptables; e.g. PYTHON_A = another worktree's .venv/bin/python)

Each round runs `--one` under each interpreter, one after the other (so each imports its own
tree's testbed): a cluster of 10 nodes and a Deployment of 1,000 pods behind a ClusterIP Service
(bench/changes.py's), then SCALES scales of +10 pods, a NetworkPolicy and a relabel, each applied
with `EmulatedCluster.apply`. One JSON line per change: the apply's own seconds, the CPU seconds
of this process and of its children (iptables-restore, ip) during the apply, the load average at
its start. The VM is shared: compare the CPU figures as well as the wall times. The packets of
each change are checked by `testbed bench` (bench/changes.py), not here.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile

# The same CPU measure whichever tree is measured: from this script's folder, not from testbed.
from change_phases import _cpu as process_cpu


def one(scales: int, mode: str) -> list[dict[str, object]]:
    import testbed
    from testbed.bench.changes import POLICY
    from testbed.bench.workloads import deployment_cluster, write
    from testbed.emu.cluster import EmulatedCluster
    from testbed.experiment.changes import Apply, Label, Scale, apply_action
    from testbed.experiment.model import PodSelection

    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="tb-bench-") as folder:
        spec, manifests, plan = deployment_cluster(folder, 10, 1000, service=True, seed=0, kube_proxy_mode=mode)
        policy = write(folder, "policy.yaml", POLICY)
        with EmulatedCluster(plan) as cluster:
            src = next(p for p in cluster.plan.pods if p.labels.get("app") == "bench")
            actions = [("scale", Scale("Deployment", "bench", 1000 + 10 * (i + 1))) for i in range(scales)]
            actions += [
                ("policy", Apply((policy,))),
                ("relabel", Label(PodSelection(src.namespace, (src.name,)), {"access": "true"})),
            ]
            for name, action in actions:
                manifests, new = apply_action(action, spec, manifests, cluster.plan, "bench")
                load, c0 = os.getloadavg()[0], process_cpu()
                done = cluster.apply(new)
                c1 = process_cpu()
                rows.append(
                    {
                        "code": os.path.dirname(testbed.__file__),
                        "change": name,
                        "load": round(load, 1),
                        "apply_s": round(float(done["seconds"]), 3),
                        "self_cpu_s": round(c1[0] - c0[0], 3),
                        "children_cpu_s": round(c1[1] - c0[1], 3),
                    }
                )
    return rows


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:
        for row in one(int(argv[1]), argv[2]):
            print(json.dumps(row), flush=True)
        return 0
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    a, b, *rest = argv
    rounds, scales = (int(x) for x in (rest[:2] + ["3", "3"][len(rest[:2]) :]))
    mode = rest[2] if len(rest) > 2 else "iptables"
    rows: list[dict] = []
    for i in range(rounds):
        for python in (a, b) if i % 2 == 0 else (b, a):
            out = subprocess.run([python, __file__, "--one", str(scales), mode], capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{python}: failed: {out.stderr.strip()[-300:]}", flush=True)
                continue
            for line in out.stdout.splitlines():
                print(line, flush=True)
                rows.append(json.loads(line) | {"python": python})
    for python in (a, b):
        for change in ("scale", "policy", "relabel"):
            mine = [r for r in rows if r["python"] == python and r["change"] == change]
            if mine:
                med = {
                    k: statistics.median(float(r[k]) for r in mine)
                    for k in ("apply_s", "self_cpu_s", "children_cpu_s", "load")
                }
                print(
                    f"{python}: {change}: median apply {med['apply_s']:.3f} s (fastest {min(float(r['apply_s']) for r in mine):.3f}), "
                    f"CPU {med['self_cpu_s']:.3f} s self + {med['children_cpu_s']:.3f} s children, "
                    f"load {med['load']:.1f}, n={len(mine)}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
