"""An external NetworkPolicy suite driven through `testbed run`, one process per case (issue 18).

The 48 cases of upstream Kubernetes' e2e NetworkPolicy tests, restated as experiments by
scripts/netpol_e2e_port.py (benchmarks/netpol48/cases/, each on the 9-pod x/y/z model), are run
as a user's script would run them: one `testbed run CASE --no-report` process after another, each
building its cluster, applying its policies, probing, writing its dataset and tearing down. The
figure is the wall time of the whole loop; per case: seconds, exit status, and how its blocked
verdicts were known (drop log / timeout / reset, read from the dataset's `evidence` column).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from ..errors import TestbedError
from .bytecode import compile_package

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASES = os.path.join(REPO, "benchmarks", "netpol48", "cases")
TARGET_S = 60.0  # issue 18: the 48 cases in a minute
SUITE_CASES = 48


def case_files(names: list[str] | None = None) -> list[str]:
    """The suite's experiment files, sorted (or the named ones, in the given order)."""
    if not os.path.isdir(CASES):
        raise TestbedError(f"{CASES}: not found (the benchmark runs from a checkout of the repository)")
    if names:
        return [os.path.join(CASES, n if n.endswith(".yaml") else f"{n}.yaml") for n in names]
    return sorted(os.path.join(CASES, f) for f in os.listdir(CASES) if f.endswith(".yaml"))


def testbed_argv() -> list[str]:
    """`testbed` as a user calls it: the console script beside this interpreter."""
    script = os.path.join(os.path.dirname(sys.executable), "testbed")
    return [script] if os.access(script, os.X_OK) else [sys.executable, "-m", "testbed"]


def _run_dir(stdout: str) -> str | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith("results: "):
            return line.removeprefix("results: ").strip()
    return None


def evidence(run_dir: str | None) -> Counter[str]:
    """How the run's blocked verdicts were known: {drop-log: n, timeout: n, reset: n}."""
    out: Counter[str] = Counter()
    path = os.path.join(run_dir, "probes.csv") if run_dir else ""
    if not path or not os.path.exists(path):
        return out
    with open(path, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("expected_outcome") == "blocked" or row.get("evidence"):
                out[row.get("evidence") or "timeout"] += 1
    return out


def run_case(path: str, results: str, timeout: float = 120.0, code: str | None = None) -> dict[str, Any]:
    """One `testbed run PATH --no-report` process: its wall time, exit status and evidence.
    `code`: a folder holding another revision's `testbed` package, run instead of this one."""
    argv = testbed_argv() + ["run", path, "--no-report", "--results", results]
    env = None
    if code:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [code, os.environ.get("PYTHONPATH")])))
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    seconds = time.perf_counter() - t0
    run_dir = _run_dir(proc.stdout)
    return {
        "case": os.path.basename(path).removesuffix(".yaml"),
        "seconds": seconds,
        "exit": proc.returncode,
        "run_dir": run_dir,
        "evidence": dict(evidence(run_dir)),
        "error": "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["?"])[-1][:300],
    }


def run_suite(
    names: list[str] | None = None,
    results: str | None = None,
    progress: Callable[[str], None] = lambda _m: None,
    against: str | None = None,
) -> dict[str, Any]:
    """Every case in turn, as 48 separate processes; totals, counts and per-case rows. With
    `against` (a folder holding another revision's `testbed` package), each case also runs with
    that code right after, so that both totals meet the same load: `result["against"]`."""
    files = case_files(names)
    compile_package()  # 48 installed testbeds' starts, not the compiler's (bench/bytecode.py)
    if against:
        compile_package(os.path.join(against, "testbed"))
    other: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tb-netpol48-") as tmp:
        folder = results or tmp
        rows = []
        for path in files:
            row = run_case(path, folder)
            rows.append(row)
            progress(f"{row['case']}: {'pass' if row['exit'] == 0 else 'FAIL'} in {row['seconds']:.2f} s")
            if against:
                other.append(run_case(path, folder, code=against))
                progress(f"{row['case']} with {against}: {other[-1]['seconds']:.2f} s")
        total = sum(r["seconds"] for r in rows)
    out = _totals(rows, total)
    if against:
        out["against"] = _totals(other, sum(r["seconds"] for r in other)) | {"code": against}
    return out


def _totals(rows: list[dict[str, Any]], total: float) -> dict[str, Any]:
    """Counts over the cases' rows; `total`: the sum of their processes' wall times."""
    ev: Counter[str] = Counter()
    for row in rows:
        ev.update(row["evidence"])
    return {
        "cases": len(rows),
        "seconds": total,
        "passed": sum(1 for r in rows if r["exit"] == 0),
        "failed": [r["case"] for r in rows if r["exit"] != 0],
        "evidence": dict(ev),
        "rows": rows,
    }


def note(result: dict[str, Any]) -> str:
    """The figure's note: passed/failed and how blocked verdicts were known."""
    ev = result["evidence"]
    slowest = max(result["rows"], key=lambda r: r["seconds"]) if result["rows"] else None
    return (
        f"{result['passed']} passed, {len(result['failed'])} failed; blocked known by drop log "
        f"{ev.get('drop-log', 0)}, timeout {ev.get('timeout', 0)}, reset {ev.get('reset', 0)}; "
        f"{result['seconds'] / max(result['cases'], 1):.2f} s a case"
        + (f" (slowest {slowest['case']} {slowest['seconds']:.2f} s)" if slowest else "")
    )
