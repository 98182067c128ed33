"""What `testbed bench` runs, and the table of figures against the scale issue's targets.

Quick (`--quick`, about a minute): a 3-node cluster with 20 pods ready from the command, the
486-probe truth table, a 100-pod all-pairs matrix, a 30-case slice of the conformance suite.
Full (several minutes): the same with the whole conformance suite, plus 10 nodes and 1,000 pods
built and torn down (memory at full size, plain Mininet hosts for the ratio), 50 nodes and
10,000 pods (the ceiling of one VM), and the three changes enforced at 1,000 pods. Both: a
policy change with the administrator's tiers present against a v1 change (tier_changes.py; 100
pods quick, 1,000 full), the quickstart's report and `testbed plan`'s start. The curve up to 2,000 pods with its plot is
benchmarks/scale_curve.py. Both also run upstream's e2e NetworkPolicy cases as separate `testbed
run --no-report` processes (netpol48.py; every 6th of the 48 quick, all 48 full). Writes <results>/<run-id>/bench.json and bench.md.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from ..conformance.run import run_conformance
from ..errors import TestbedError
from ..experiment.results import new_run_id, unique_run_dir
from .changes import enforce_changes, target_s, to_dicts
from .cheap import plan_startup, quickstart_report
from .machine import describe_machine, machine_line
from .netns_settle import Settle, wait_netns_settled
from .netpol48 import SUITE_CASES as NETPOL48_CASES
from .netpol48 import TARGET_S as NETPOL48_TARGET_S
from .netpol48 import case_files as netpol48_files
from .netpol48 import note as netpol48_note
from .netpol48 import run_suite as run_netpol48
from .probing import all_pairs_bench, truth_table_bench
from .scale import scale_point
from .targets import Figure, counts, table
from .tier_changes import RATIO_TARGET, tier_change_bench
from .workloads import THREE_NODES, deployment_yaml, write

GIB = 2**30
SUITE_CASES = 325  # the whole generated suite (seed 0), whose target is 60 s


def settle_note(settle: dict[str, Any]) -> str:
    """What bench.json says of the wait for the kernel's namespace destruction (netns_settle.Settle)."""
    return Settle(**settle).note()


def evidence_note(ev: dict[str, Any]) -> str:
    """How the blocked verdicts were known (drop evidence, traffic/droplog.py)."""
    if not ev:
        return "evidence: not recorded"
    off = "" if ev.get("drop_log", True) else " (drop evidence off)"
    return f"blocked known by drop log {ev.get('drop-log', 0)}, timeout {ev.get('timeout', 0)}{off}"


def pairs_passes(a: dict[str, Any]) -> str:
    """How many all-pairs passes the outcomes count (the time is the first's)."""
    passes = a.get("extra", {}).get("passes_s", [])
    return f" over {len(passes)} passes; the time is the first's" if len(passes) > 1 else ""


def pairs_note(a: dict[str, Any]) -> str:
    """The passes behind the probe rate: the fresh cluster's first, and the later ones'."""
    passes = a.get("extra", {}).get("passes_s", [])
    if len(passes) < 2:
        return "one pass, on the fresh cluster"
    later = ", ".join(f"{a['probes'] / max(t, 1e-9):,.0f}" for t in passes[1:])
    return (
        f"median of passes 2-{len(passes)} ({later}/s); the first, on the fresh cluster "
        f"(each pair's first contact), {a['probes'] / max(passes[0], 1e-9):,.0f}/s"
    )


def ready_from_command(pods: int = 20, timeout: float = 60.0) -> tuple[float, float]:
    """Seconds from starting `testbed up` (a new interpreter) to its "ready" line, and the
    cluster's own build time it reports: the 3-node topology with a Deployment of `pods`."""
    with tempfile.TemporaryDirectory(prefix="tb-bench-") as folder:
        app = write(folder, "app.yaml", deployment_yaml("web", pods))
        argv = [sys.executable, "-m", "testbed", "up", THREE_NODES, "-f", app, "-c", "get nodes"]
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        ready, reported = None, 0.0
        try:
            assert proc.stderr is not None
            deadline = t0 + timeout
            while ready is None and time.perf_counter() < deadline:
                if not select.select([proc.stderr], [], [], 0.5)[0]:
                    continue
                line = proc.stderr.readline()
                if not line:
                    break
                if " ready in " in line:
                    ready = time.perf_counter() - t0
                    reported = float(line.split(" ready in ")[1].split()[0])
            proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.terminate()  # `testbed up` tears down on SIGTERM
                proc.wait(timeout=30)
        if ready is None:
            raise TestbedError(f"`testbed up` did not report ready (exit {proc.returncode})")
        return ready, reported


def conformance_bench(folder: str, limit: int | None, progress: Callable[[str], None]) -> dict[str, Any]:
    """The generated suite (or its first `limit` cases) on the default topology; counts and time."""
    t0 = time.perf_counter()
    run_dir, passed = run_conformance(THREE_NODES, folder, limit=limit, progress=progress)
    seconds = time.perf_counter() - t0
    with open(os.path.join(run_dir, "conformance.json"), encoding="utf-8") as handle:
        meta = json.load(handle)
    return {
        "cases": meta["cases"],
        "seconds": seconds,
        "passed": passed,
        "counts": meta["counts"],
        "run_dir": run_dir,
        "enforcement_seconds": meta["enforcement_seconds"],
        "evidence": meta.get("evidence", {}),
    }


def run_bench(
    quick: bool, results_root: str, progress: Callable[[str], None] = lambda _m: None, mininet_hosts: int = 1000
) -> tuple[str, list[Figure], dict[str, Any]]:
    """Run the benchmarks; returns (run folder, figures, raw results). Prints nothing itself."""
    machine = describe_machine()
    run_dir, run_id = unique_run_dir(results_root, new_run_id("bench-quick" if quick else "bench"))
    os.makedirs(run_dir, exist_ok=True)
    raw: dict[str, Any] = {"run_id": run_id, "quick": quick, "machine": machine}
    progress("3 nodes, 20 pods: `testbed up` until ready")
    ready, reported = ready_from_command()
    raw["ready_3n20p"] = {"from_command_s": ready, "build_s": reported}
    if not quick:
        point = scale_point(10, 1000, mininet_hosts=mininet_hosts, progress=progress)
        raw["scale_1000"] = point.to_dict()
        progress("the ceiling of one VM: 10,000 pods on 50 nodes")
        raw["scale_10000"] = scale_point(50, 10000, progress=progress).to_dict()
        for key, mode in (("changes_1000", "iptables"), ("changes_1000_nftables", "nftables")):
            # the previous row's namespaces (10,000 of them first) are destroyed by the kernel
            # after its teardown returned: the changes are timed once that is over (netns_settle.py)
            settle = wait_netns_settled()
            progress(f"changes at 1,000 pods, kube-proxy in {mode} mode ({settle.note()})")
            timings, changes = enforce_changes(progress=progress, kube_proxy_mode=mode)
            raw[key] = {"build": timings, "changes": to_dicts(changes), "settle": settle.to_dict()}
    progress("cheap runs: the quickstart's report, `testbed plan`'s start")
    raw["report_quickstart"] = quickstart_report()
    raw["plan_startup"] = plan_startup()
    nodes, pods = (3, 100) if quick else (10, 1000)
    settle = wait_netns_settled()  # the 1,000-pod clusters of the changes, as above
    progress(f"policy changes with the administrator's tiers present, {pods} pods ({settle.note()})")
    raw["tier_changes"] = tier_change_bench(nodes, pods, repeats=3 if quick else 5, progress=progress).to_dict()
    raw["tier_changes"]["settle"] = settle.to_dict()
    settle = wait_netns_settled()  # and the tiers' cluster: the probe rows are timed after it
    progress(f"truth table ({settle.note()})")
    truth = truth_table_bench(progress=progress)
    raw["truth_table"] = vars(truth) | {"rate": truth.rate, "settle": settle.to_dict()}
    progress("all-pairs")
    pairs = all_pairs_bench(progress=progress)
    raw["all_pairs"] = vars(pairs) | {"rate": pairs.rate}
    # quick: every 6th case of the upstream e2e suite (8), its target pro rata
    names = [os.path.basename(f)[:-5] for f in netpol48_files()][:: 6 if quick else 1]
    progress(f"upstream e2e NetworkPolicy suite, {len(names)} `testbed run --no-report` processes")
    raw["netpol48"] = run_netpol48(names, progress=progress)
    limit = 30 if quick else None
    progress(f"conformance suite ({limit or 'all'} cases)")
    raw["conformance"] = conformance_bench(run_dir, limit, progress)
    figures = figures_from(raw)
    raw["figures"] = [f.to_dict() for f in figures]
    with open(os.path.join(run_dir, "bench.json"), "w", encoding="utf-8") as handle:
        json.dump(raw, handle, indent=2, sort_keys=True, default=str)
    with open(os.path.join(run_dir, "bench.md"), "w", encoding="utf-8") as handle:
        handle.write(
            f"# testbed bench{' --quick' if quick else ''} — {run_id}\n\n{machine_line(machine)}\n\n"
            + table(figures, markdown=True)
        )
    return run_dir, figures, raw


def figures_from(raw: dict[str, Any]) -> list[Figure]:
    """The table's figures from the raw results (as bench.json holds them)."""
    figures: list[Figure] = []
    r = raw["ready_3n20p"]
    figures.append(
        Figure(
            "ready_3n20p",
            "3 nodes, 20 pods: ready for probes, from the command",
            r["from_command_s"],
            "s",
            3.0,
            note=f"build itself {r['build_s']:.2f} s; the rest is the interpreter and imports",
        )
    )
    if "scale_1000" in raw:
        p = raw["scale_1000"]
        figures += [
            Figure(
                "build_1000",
                f"10 nodes, {p['pods']} pods: build",
                p["build_s"],
                "s",
                10.0,
                note=f"{p['pods_per_s']:.0f} pods/s",
            ),
            Figure(
                "teardown_1000",
                f"10 nodes, {p['pods']} pods: teardown",
                p["teardown_s"],
                "s",
                5.0,
                note="left behind: " + (", ".join(p["leftovers"]) or "nothing"),
            ),
            Figure(
                "memory_1000",
                f"memory of all testbed processes at {p['pods']} pods (PSS)",
                p["memory"]["total_bytes"] / GIB,
                "GiB",
                4.0,
                note=f"system-wide MemAvailable drop {p['system_used_delta_bytes'] / GIB:.2f} GiB (kernel included)",
            ),
        ]
        if p.get("mininet"):
            m = p["mininet"]
            figures.append(
                Figure(
                    "mininet_ratio",
                    f"testbed pods/s ÷ plain Mininet hosts/s ({m['hosts']:.0f} hosts)",
                    p["ratio_vs_mininet"] or 0.0,
                    "×",
                    note=f"plain Mininet: build {m['build_s']:.1f} s ({m['hosts_per_s']:.0f} hosts/s), "
                    f"stop {m['stop_s']:.1f} s",
                )
            )
    if "scale_10000" in raw:
        p = raw["scale_10000"]
        what = f"{p['nodes']} nodes, {p['pods']:,} pods"
        left = "left behind: " + (", ".join(p["leftovers"]) or "nothing")
        figures += [
            Figure("build_10000", f"{what}: build", p["build_s"], "s", 20.0, note=f"{p['pods_per_s']:.0f} pods/s"),
            Figure("teardown_10000", f"{what}: teardown", p["teardown_s"], "s", 10.0, note=left),
            Figure(
                "memory_10000",
                f"{what}: system-wide MemAvailable drop",
                p["system_used_delta_bytes"] / GIB,
                "GiB",
                6.0,
                note=f"PSS of the testbed's processes {p['memory']['total_bytes'] / GIB:.2f} GiB",
            ),
        ]
    changes = [("", c) for c in raw.get("changes_1000", {}).get("changes", [])]
    changes += [(", nftables mode", c) for c in raw.get("changes_1000_nftables", {}).get("changes", [])]
    settles = {
        "": raw.get("changes_1000", {}).get("settle"),
        ", nftables mode": raw.get("changes_1000_nftables", {}).get("settle"),
    }
    for i, (mode, c) in enumerate(changes):
        first = i == 0 or changes[i - 1][0] != mode
        settle = settles[mode] if first else None  # said once, with the first change of the mode
        figures.append(
            Figure(
                "change",
                f"change at 1,000 pods{mode}: {c['change']}",
                c["apply_s"],
                "s",
                target_s(c["change"]),
                note=f"replan {c['replan_s']:.3f} s; packets: {counts(c['observed'])} "
                f"({'as expected' if c['ok'] else 'NOT as expected'})"
                + (f"; before: {settle_note(settle)}" if settle else ""),
            )
        )
    if "report_quickstart" in raw and "plan_startup" in raw:
        q, s = raw["report_quickstart"], raw["plan_startup"]
        for key, what, value, note in (
            (
                "report_quickstart",
                "report of the quickstart run (built after the run, as `testbed run` does)",
                q["first_s"],
                f"{q['figures']} figure(s) drawn; a rebuild {q['rebuild_s']:.2f} s",
            ),
            (
                "plan_startup",
                "`testbed plan` of the quickstart, whole process",
                s["median_s"],
                f"median of {s['runs']}, fastest {s['min_s']:.2f} s",
            ),
        ):
            figures.append(Figure(key, what, value, "s", 0.3, note=note))
    if "tier_changes" in raw:
        figures += tier_figures(raw["tier_changes"])
    t, a = raw["truth_table"], raw["all_pairs"]
    figures += [
        Figure(
            "truth_table",
            "486-probe truth table (9 pods, 2 ports, 3 protocols, some blocked)",
            t["seconds"],
            "s",
            0.15,
            note=f"{counts(t['outcomes'])}, {t['mismatches']} mismatches with the oracle; "
            f"probe timeout {t['extra']['timeout_s']} s; "
            + evidence_note(t["extra"].get("evidence", {}))
            + (f"; before the probe rows: {settle_note(t['settle'])}" if t.get("settle") else ""),
        ),
        Figure(
            "all_pairs",
            f"100-pod all-pairs TCP ({a['probes']:,} probes)",
            a["seconds"],
            "s",
            10.0,
            note=counts(a["outcomes"]) + pairs_passes(a),
        ),
        Figure(
            "probe_rate",
            "allowed TCP probe results per second (all-pairs)",
            a.get("extra", {}).get("steady_rate", a["probes"] / max(a["seconds"], 1e-9)),
            "/s",
            10000,
            ">=",
            note=pairs_note(a),
        ),
    ]
    if "netpol48" in raw:
        figures.append(netpol48_figure(raw["netpol48"]))
    c = raw["conformance"]
    figures.append(
        Figure(
            "conformance_time",
            f"generated conformance suite, {c['cases']} cases",
            c["seconds"],
            "s",
            round(60.0 * c["cases"] / SUITE_CASES, 1),  # issue 18: 325 cases in 60 s, pro rata
            note=f"{c['counts'].get('mismatches', 0)} mismatches; " + evidence_note(c.get("evidence", {})),
        )
    )
    figures.append(
        Figure(
            "conformance_rate",
            f"conformance: cases per 5 minutes (measured on {c['cases']} cases)",
            c["cases"] / max(c["seconds"], 1e-9) * 300,
            "cases",
            200,
            ">=",
            note=f"{c['cases']} cases in {c['seconds']:.0f} s; {c['counts']['passed']} passed, "
            f"{c['counts']['failed']} failed",
        )
    )
    return figures


def netpol48_figure(n: dict[str, Any]) -> Figure:
    """Issue 18: upstream's 48 e2e NetworkPolicy cases as 48 `testbed run --no-report` processes."""
    return Figure(
        "netpol48",
        f"upstream e2e NetworkPolicy suite, {n['cases']} cases as separate `testbed run --no-report`",
        n["seconds"],
        "s",
        round(NETPOL48_TARGET_S * n["cases"] / NETPOL48_CASES, 1),  # 48 cases in 60 s, pro rata
        note=netpol48_note(n),
    )


def tier_figures(tc: dict[str, Any]) -> list[Figure]:
    """Issue 17's target: a policy change with tiers present within the time of a v1 change."""
    series = {x["name"]: x for x in tc["series"]}
    v1 = tc["medians"]["v1"]

    def packets(name: str) -> str:
        x = series[name]
        return f"packets: {counts(x['observed'])} ({'as expected' if x['ok'] else 'NOT as expected'})"

    out = [
        Figure(
            "tier_change_v1",
            f"a v1 NetworkPolicy change at {tc['pods']:,} pods (median of {len(series['v1']['seconds'])})",
            v1,
            "s",
            note=packets("v1") + (f"; before: {settle_note(tc['settle'])}" if tc.get("settle") else ""),
        )
    ]
    for name, what in (
        ("v1-with-tiers", "the same v1 change with 3 ClusterNetworkPolicies in force"),
        ("cnp", "a ClusterNetworkPolicy change (3 others in force)"),
    ):
        out.append(
            Figure(
                f"tier_change_{name}",
                f"{what} ÷ the v1 change alone",
                tc["ratios"][name],
                "×",
                RATIO_TARGET,
                note=f"median {tc['medians'][name]:.3f} s vs {v1:.3f} s; {packets(name)}",
            )
        )
    return out
