"""Run an experiment end to end: plan, build, probe step by step, write results, tear down.

The orchestration layer between the CLI and emu/ + traffic/. Probes of a step are sent
concurrently by the socket prober, so blocked flows cost one timeout per step, not one each.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

from ..emu.cluster import EmulatedCluster
from ..plan.build import plan_cluster
from ..spec.topology import load_topology
from ..spec.workloads import load_manifests
from .changes import apply_action, describe
from .expand import PlannedProbe, expand
from .model import Experiment
from .records import make_row
from .results import environment, file_sha256, new_run_id, unique_run_dir, write_results


def probe_rows(cluster: EmulatedCluster, run_id: str, step: str,
               planned: list[PlannedProbe]) -> list[dict[str, Any]]:
    from ..traffic.prober import Probe, run_probes

    probes = [Probe(id=i, src_netns=cluster.netns_path(p.src.key), dst_ip=p.dst_ip, port=p.port,
                    protocol=p.protocol, timeout=p.timeout) for i, p in enumerate(planned)]
    stamp = time.time()
    results = run_probes(probes)
    return [make_row(run_id, step, stamp, p, r.outcome, r.latency_ms, r.reply, r.error)
            for p, r in zip(planned, results)]


def run_experiment(exp: Experiment, results_root: str, progress: Callable[[str], None]) -> tuple[str, bool]:
    """Returns (run folder, passed). Spec errors surface before anything is built."""
    cluster_spec = load_topology(exp.topology)
    manifests = load_manifests(exp.manifests)
    plan = plan_cluster(cluster_spec, manifests, seed=exp.seed)
    first_plan = plan
    run_dir, run_id = unique_run_dir(results_root, new_run_id(exp.name))
    for warning in plan.warnings:
        progress(f"warning: {warning}")
    rows: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    started = time.time()
    timings: dict[str, float] = {}
    with EmulatedCluster(plan, progress=progress) as cluster:
        progress(f"cluster ready in {cluster.timings['build']:.2f} s")
        for step in exp.steps:
            t0 = time.perf_counter()
            for action in step.actions:
                manifests, plan = apply_action(action, cluster_spec, manifests, cluster.plan, exp.file)
                done = cluster.apply(plan)
                changes.append({"step": step.name, "action": describe(action), **done})
                progress(f"step {step.name}: {describe(action)}: +{done['added']} -{done['removed']} pods "
                         f"in {done['seconds']:.3f} s")
            planned = [p for g in step.probes for p in expand(cluster.plan, g)]
            if planned:
                progress(f"step {step.name}: {len(planned)} probes")
                rows += probe_rows(cluster, run_id, step.name, planned)
            timings[f"step:{step.name}"] = time.perf_counter() - t0
        final_plan = cluster.plan
    timings.update(cluster.timings)  # after the block: teardown time is known only then
    passed = bool(rows) and all(r["outcome_ok"] and r["nat_free"] is not False for r in rows)
    inputs = [exp.file, exp.topology, *exp.manifests,
              *(f for step in exp.steps for a in step.actions for f in getattr(a, "files", ()))]
    meta = {
        "run_id": run_id, "passed": passed, "started": started, "seed": exp.seed,
        "experiment": {"name": exp.name, "file": exp.file, "description": exp.description},
        "inputs": {os.path.relpath(p): file_sha256(p) for p in dict.fromkeys(inputs)},
        "cluster": {"name": first_plan.cluster, "nodes": len(first_plan.nodes), "pods": len(first_plan.pods),
                    "pods_at_end": len(final_plan.pods), "routing": first_plan.routing},
        "probes": len(rows), "as_expected": sum(bool(r["outcome_ok"]) for r in rows),
        "nat_violations": sum(r["nat_free"] is False for r in rows),
        "timings": timings, "environment": environment(), "warnings": list(first_plan.warnings),
        "changes": changes,
        "notes": list(plan.notes),
        "reproduce": f"testbed run {os.path.relpath(exp.file)}",
    }
    write_results(run_dir, meta, final_plan.to_dict(), rows)
    return run_dir, passed
