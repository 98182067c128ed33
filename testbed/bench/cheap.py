"""What a cheap run costs: the quickstart's report built after its run, and `testbed plan`'s start.

- report: the quickstart experiment runs (experiments/quickstart.yaml, real packets), then its
  report is built in the same process, as `testbed run` does: the first build pays the report's
  own imports (pandas is already loaded by the results writer), later ones only the work. The
  figure is the first build; `rebuild_s` is the median of the rebuilds.
- plan: `python -m testbed plan` of the quickstart's cluster, whole process, median of 5 runs
  (the interpreter's own start included: what a user waits for).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from ..errors import TestbedError
from .bytecode import compile_package

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUICKSTART = os.path.join(REPO, "experiments", "quickstart.yaml")


def _need(path: str) -> str:
    if not os.path.exists(path):
        raise TestbedError(f"{path}: not found (the benchmark runs from a checkout of the repository)")
    return path


def quickstart_report(rebuilds: int = 3) -> dict[str, Any]:
    """Run the quickstart, build its report; seconds of the first build and of the rebuilds."""
    from ..experiment.load import load_experiment
    from ..experiment.run import run_experiment
    from ..report import build_report

    with tempfile.TemporaryDirectory(prefix="tb-bench-") as folder:
        run_dir, passed = run_experiment(load_experiment(_need(QUICKSTART)), folder, lambda _m: None)
        times = []
        for _ in range(1 + rebuilds):
            t0 = time.perf_counter()
            build_report(run_dir)
            times.append(time.perf_counter() - t0)
        figures = sorted(f for f in os.listdir(run_dir) if f.endswith(".png"))
    return {
        "first_s": times[0],
        "rebuild_s": statistics.median(times[1:]) if rebuilds else times[0],
        "figures": len(figures),
        "passed": passed,
    }


def plan_startup(runs: int = 5) -> dict[str, Any]:
    """Whole-process seconds of `testbed plan` on the quickstart's topology and manifests."""
    topology = _need(os.path.join(REPO, "topologies", "three-nodes.yaml"))
    manifests = _need(os.path.join(REPO, "manifests", "quickstart-app.yaml"))
    argv = [sys.executable, "-m", "testbed", "plan", topology, "-f", manifests]
    compile_package()  # an installed testbed's start, not the compiler's (bench/bytecode.py)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "runs": runs}
