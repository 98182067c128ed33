"""Benchmark: how long the interactive shell takes to answer, apart from the network work it starts.

    .venv/bin/python benchmarks/shell_latency.py --nodes 10 --pods 1000

Plans a cluster (no root, nothing built) and drives the shell of `testbed up` with the live
cluster replaced by callables that return at once: `<pod> CMD` then costs only the shell's
own work, and a change costs the re-plan (experiment/changes.py) the live shell would also
pay before emu applies the difference. Prints the median and worst of each command against
the targets of issue 14 (100 ms a command; `get pods -A` at 1,000 pods 200 ms). Figures,
never a timed assertion.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from testbed.bench.workloads import deployment_cluster  # noqa: E402
from testbed.experiment.changes import apply_action  # noqa: E402
from testbed.shell import ClusterShell  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec, manifests, plan = deployment_cluster(tmp, args.nodes, args.pods, service=True)
        state = {"plan": plan, "manifests": manifests}

        def change(action):  # the live shell's change minus emu's kernel work
            state["manifests"], state["plan"] = apply_action(action, spec, state["manifests"], state["plan"], "shell")
            return state["plan"], state["manifests"]

        start = time.perf_counter()
        shell = ClusterShell(plan, lambda key: key, lambda ns, argv: 0, change, manifests)
        first = (time.perf_counter() - start) * 1000
        pods = [p.name for p in plan.pods if p.namespace == "default"]
        pod = pods[-1]
        cases = [
            ("get pods -A", 200),
            ("get pods -A -o wide", 200),
            ("get pods -l app=bench", 100),
            ("kubectl get svc,pod", 100),
            ("get pods -A -o name", 100),
            (f"describe pod {pod}", 100),
            ("get ep", 100),
            ("describe svc bench", 100),
            ("get deploy,rs", 100),
            ("nodes", 100),
            (f"{pod} ping -c1 {pods[0]}", 100),
            ("help", 100),
            ("scale deployment bench --replicas=999", 100),
            ("scale deployment bench --replicas=1000", 100),
        ]
        print(
            f"shell latency at {len(plan.pods)} pods on {args.nodes} nodes (median / worst of {args.repeat}); "
            f"shell start {first:.1f} ms"
        )
        for line, target in cases:
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    status = shell.execute(line)
                times.append((time.perf_counter() - t) * 1000)
            med, worst = statistics.median(times), max(times)
            flag = "ok" if med <= target else "OVER"
            print(
                f"  {line[:48]:48} {med:8.1f} ms  {worst:8.1f} ms   target {target} ms  {flag}"
                + (f"  (exit {status})" if status else "")
            )
        shell.close()


if __name__ == "__main__":
    main()
