"""`testbed conformance`: the generated NetworkPolicy suite against the live dataplane.

Orchestration (like experiment/run.py): one cluster with the classic model (namespaces x, y, z;
pods a, b, c; ports 80 and 81 on TCP, UDP and SCTP) is built once; each case's steps are
reconciled onto it in turn (policies and labels change, pods keep their names and IPs), and
after each step the 486-probe truth table is measured with real packets and compared with the
oracle's. Between steps, conntrack is flushed in the nodes: a NetworkPolicy decides new
connections, and a reused UDP/SCTP 5-tuple must not ride on an entry of the previous step.
Writes results/<run-id>/conformance.xml (JUnit), conformance.md and conformance.json.

`family` (issue 15): ipv4 as always; ipv6 builds the model dual-stack (data/three-nodes-dual.yaml)
and runs every case with its ipBlocks' IPv6 twins (family6.py) over the pods' IPv6 addresses,
against the oracle of the IPv6 policy world; dual runs each case with both CIDRs in its peers and
measures both truth tables per step (972 probes), each against its own family's oracle. A
`--topology` with ipFamily ipv6 runs the suite in that single-stack IPv6 cluster (the cases'
CIDRs twinned from the IPv4 model they are written against); the flag and the topology's
ipFamily must agree (family6.resolve_family; None follows the topology).

Blocked probes end when a node logs their drop (drop evidence, traffic/droplog.py), so a step
no longer waits for its probe timeout; conformance.json counts how each blocked verdict was known
(drop-log | timeout | reset). `recheck` > 0 measures that many drop-logged probes of every step
again with the evidence off (each waits for its timeout) and counts any disagreement.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from collections.abc import Callable, Collection

from ..emu.cluster import EmulatedCluster
from ..emu.ctflush import flush_conntrack
from ..errors import DaemonError, RunAborted, UsageError
from ..experiment.results import discarded_if_empty, environment, new_run_id, unique_run_dir
from ..netpol.world import World
from ..plan.build import plan_cluster, replan
from ..plan.ipv6 import is_ipv6
from ..plan.model import Plan
from ..plan.view6 import ipv6_plan
from ..spec.topology import load_topology
from ..spec.workloads import load_manifests
from ..traffic.droplog import DropLog, open_drop_log
from ..traffic.prober import Probe, run_probes
from .changes import step_manifests
from .check import check_step, probes
from .family6 import FAMILIES, NoTwin, cidr_twins, family_case, measured_families, resolve_family
from .generator import generate_cases
from .junit import junit_xml
from .resources import MODEL, TOPOLOGY, TOPOLOGY_DUAL
from .results import CaseResult, StepResult, Summary

PROGRESS_EVERY_S = 5.0


def _measure(
    cluster: EmulatedCluster,
    timeout: float,
    droplog: DropLog | None = None,
    tally: dict[str, int] | None = None,
    recheck: int = 0,
    version: int = 4,
) -> dict[tuple, bool]:
    """The step's truth table over IP `version`; `tally` counts how failures were known (and
    rechecks, below)."""
    plan = cluster.plan
    pods = {f"{p.namespace}/{p.name}": p for p in plan.pods}
    dual = plan.dual
    address = {ref: (dual.pods[p.key] if version == 6 and dual is not None else p.ip) for ref, p in pods.items()}
    table = probes()
    sent = [
        Probe(i, cluster.netns_path(pods[src].key), address[dst], port, proto, timeout)
        for i, (src, dst, port, proto) in enumerate(table)
    ]
    results = run_probes(sent, evidence=droplog)
    if tally is not None:
        for r in results:
            if r.evidence:
                tally[r.evidence] = tally.get(r.evidence, 0) + 1
        logged = [sent[r.id] for r in results if r.evidence == "drop-log"][:recheck]
        if logged:  # the same probes again, the timeout alone deciding: evidence must agree
            again = run_probes(logged)
            tally["rechecked"] = tally.get("rechecked", 0) + len(again)
            tally["recheck_disagreed"] = tally.get("recheck_disagreed", 0) + sum(
                r.outcome == "connected" for r in again
            )
    return {probe: r.outcome == "connected" for probe, r in zip(table, results)}


def _joined(results: list[StepResult]) -> StepResult:
    """One step measured in both families (dual): its probes and mismatches added up, each IPv6
    mismatch saying so."""
    if len(results) == 1:
        return results[0]
    first, second = results
    v6 = tuple(dataclasses.replace(m, explanation=f"over IPv6: {m.explanation}") for m in second.mismatches)
    return dataclasses.replace(
        first,
        probes=first.probes + second.probes,
        mismatches=first.mismatches + v6,
        allowed=first.allowed + second.allowed,
    )


def _world(plan: Plan, version: int) -> World:
    """The policy world of IP `version`'s truth table: a single-stack plan's own, or the IPv6
    view's of a dual-stack plan."""
    return ipv6_plan(plan).world if version == 6 and not is_ipv6(plan) else plan.world


def _flush_conntrack(cluster: EmulatedCluster) -> None:
    """Every node's conntrack table, flushed in-process (emu/ctflush.py: `conntrack -F` without
    starting two programs per node); a dual-stack cluster's IPv6 entries asked for by name too,
    an IPv6 cluster's by name alone (this kernel flushes every family either way; older ones
    only the request's)."""
    plan = cluster.plan
    families = (
        (socket.AF_INET6,)
        if is_ipv6(plan)
        else (socket.AF_INET, socket.AF_INET6)
        if plan.dual is not None
        else (socket.AF_INET,)
    )
    flush_conntrack((cluster.netns_path(node.key) for node in cluster.plan.nodes), families)


def run_conformance(
    topology: str | None,
    results_root: str,
    seed: int = 0,
    limit: int | None = None,
    timeout: float = 0.5,
    progress: Callable[[str], None] = lambda _m: None,
    tiered: bool = False,
    evidence: bool | None = None,
    recheck: int = 0,
    family: str | None = "ipv4",
    names: Collection[str] | None = None,
) -> tuple[str, bool]:
    """Run the suite; `evidence` None follows TESTBED_DROP_EVIDENCE (on by default); `family`
    None follows the topology's ipFamily (ipv6 for an IPv6 cluster, else ipv4); `names`: only
    the cases of those names, in the suite's order (a campaign's slice, conformance/modes.py)."""
    if family is not None and family not in FAMILIES:
        raise UsageError(f"--family {family[:20]!r}: expected one of {', '.join(FAMILIES)}")
    topology = topology or (TOPOLOGY if family in (None, "ipv4") else TOPOLOGY_DUAL)
    spec = load_topology(topology)
    family = resolve_family(family, spec.ip_family, topology)  # the flag and the cluster agree
    base = load_manifests([MODEL])
    cases = generate_cases(seed=seed, limit=limit, tiered=tiered)
    if names is not None:
        unknown = sorted(set(names) - {c.name for c in cases})
        if unknown:
            raise UsageError(f"no such conformance case: {unknown[0][:80]!r}")
        cases = [c for c in cases if c.name in names]
    plan = plan_cluster(spec, base, seed=seed)
    if family != "ipv4":  # every case's ipBlocks get their IPv6 twins on this cluster
        try:
            twin = cidr_twins(plan)
            cases = [family_case(c, family, twin) for c in cases]
        except NoTwin as exc:
            raise UsageError(f"--family {family}: {topology}: {exc}") from None
    run_dir, run_id = unique_run_dir(results_root, new_run_id("conformance"))
    summary = Summary(seed=seed)
    started = time.time()
    progress(f"{len(cases)} cases generated (seed {seed}); building the cluster")
    aborted: DaemonError | None = None
    tally: dict[str, int] = {"drop-log": 0, "timeout": 0, "reset": 0}
    droplog: DropLog | None = None
    with (
        discarded_if_empty(run_dir),
        EmulatedCluster(plan, progress=progress, keep_logs_in=os.path.join(run_dir, "logs")) as cluster,
    ):
        progress(f"cluster ready in {cluster.timings['build']:.2f} s; {len(cases)} cases")
        nodes = {n.name: cluster.netns_path(n.key) for n in cluster.plan.nodes}
        droplog = open_drop_log(nodes) if evidence is None else DropLog(nodes) if evidence else None
        try:
            last = time.time()
            for n, case in enumerate(cases, start=1):
                t_case = time.perf_counter()
                steps = []
                try:
                    for i, step in enumerate(case.steps):
                        manifests = step_manifests(base, step)
                        new = replan(spec, manifests, seed, prev=cluster.plan)
                        done = cluster.apply(new)
                        _flush_conntrack(cluster)
                        results = []
                        for version in measured_families(family):
                            observed = _measure(cluster, timeout, droplog, tally, recheck, version)
                            world = _world(cluster.plan, version)
                            results.append(check_step(case, i, world, observed, seconds=float(done["seconds"])))
                        steps.append(_joined(results))
                    summary.add(CaseResult(case, tuple(steps), time.perf_counter() - t_case))
                except DaemonError as exc:  # a dead agent would fail every case after it: stop, and say why
                    cluster.keep_logs_of(exc, os.path.join(run_dir, "logs"))
                    aborted = exc
                    progress(f"aborted at case {n}/{len(cases)}: {exc}")
                    break
                except Exception as exc:  # one broken case must not hide the others
                    summary.add(
                        CaseResult(
                            case, tuple(steps), time.perf_counter() - t_case, error=f"{type(exc).__name__}: {exc}"
                        )
                    )
                if n == 1 or n == len(cases) or time.time() - last >= PROGRESS_EVERY_S:  # never silent for long
                    last = time.time()
                    c = summary.counts()
                    progress(
                        f"{n}/{len(cases)} cases: {c['passed']} passed, {c['failed']} failed, "
                        f"{c['mismatches']} mismatches ({time.time() - started:.0f} s)"
                    )
        finally:
            if droplog is not None:
                droplog.close()
    elapsed = time.time() - started
    counts = summary.counts()
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "conformance.xml"), "w", encoding="utf-8") as h:
        h.write(
            junit_xml(
                "netpol-tiered-conformance" if tiered else "netpol-conformance",
                summary,
                {"seed": seed, "topology": topology, "family": family, "seconds": f"{elapsed:.1f}"},
            )
        )
    enforce = sorted(s.seconds for r in summary.results for s in r.steps)
    meta = {
        "run_id": run_id,
        "seed": seed,
        "topology": topology,
        "family": family,
        "cases": len(cases),
        "seconds": elapsed,
        "counts": counts,
        "by_tag": summary.by_tag(),
        "environment": environment(),
        "evidence": tally | {"drop_log": droplog is not None},
        "enforcement_seconds": {
            "p50": enforce[len(enforce) // 2] if enforce else None,
            "max": enforce[-1] if enforce else None,
        },
    }
    if aborted is not None:
        meta["aborted"] = str(aborted)
    with open(os.path.join(run_dir, "conformance.json"), "w", encoding="utf-8") as h:
        json.dump(meta, h, indent=2, sort_keys=True, default=str)
    with open(os.path.join(run_dir, "conformance.md"), "w", encoding="utf-8") as h:
        h.write(_markdown(meta, summary))
    if aborted is not None:
        raise RunAborted(f"{aborted} (the cases run so far are in {run_dir}, marked aborted)", run_dir)
    return run_dir, summary.passed


def _evidence_line(ev: dict) -> str:
    """How the blocked verdicts were known: dropped packets logged by the nodes, or timeouts."""
    line = (
        f"Failed probes known by: drop log {ev.get('drop-log', 0)}, timeout {ev.get('timeout', 0)}, "
        f"reset {ev.get('reset', 0)}" + ("" if ev.get("drop_log", True) else " (drop evidence off)")
    )
    if ev.get("rechecked"):
        line += f"; {ev['rechecked']} drop-logged probes measured again by timeout, {ev['recheck_disagreed']} disagreed"
    return line + "."


def _markdown(meta: dict, summary: Summary) -> str:
    c, enforce = meta["counts"], meta["enforcement_seconds"]
    lines = [
        f"# NetworkPolicy conformance — run {meta['run_id']}",
        "",
        f"**{'ABORTED' if meta.get('aborted') else 'PASS' if summary.passed else 'FAIL'}** — "
        + (f"{meta['aborted']}. Before it stopped: " if meta.get("aborted") else "")
        + f"{c['cases']} cases, {c['steps']} steps, {c['probes']} probes "
        f"measured with real packets against the oracle in {meta['seconds']:.0f} s: {c['passed']} passed, "
        f"{c['failed']} failed, {c['error']} errors; {c['mismatches']} mismatches.",
        "",
        f"Seed {meta['seed']}; topology {meta['topology']}; family {meta.get('family', 'ipv4')}"
        + (
            f"; a change enforced in {enforce['p50']:.3f} s (median), {enforce['max']:.3f} s (max)."
            if enforce["p50"] is not None
            else "; no step was measured."
        ),
        "",
        _evidence_line(meta.get("evidence", {})),
        "",
        "| feature | cases | passed | failed |",
        "|---|---:|---:|---:|",
    ]
    for tag, t in sorted(meta["by_tag"].items()):
        lines.append(
            f"| {tag} | {t.get('cases', 0)} | {t.get('passed', 0)} | {t.get('failed', 0) + t.get('error', 0)} |"
        )
    bad = [r for r in summary.results if r.status in ("failed", "error")]
    if bad:
        lines += ["", "## Failures", ""]
        for r in bad:
            lines.append(f"### {r.name} ({r.status})")
            lines.append(r.error or r.case.description)
            for s in r.steps:
                for m in s.mismatches[:10]:
                    lines += [
                        "",
                        f"- step {s.index} ({s.note or 'initial'}): {m.describe()}",
                        "",
                        "  " + m.explanation.replace("\n", "\n  "),
                    ]
            lines.append("")
    lines += ["", "Files: conformance.xml (JUnit), conformance.json (counts per feature, timings).", ""]
    return "\n".join(lines)
