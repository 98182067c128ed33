"""Run an experiment end to end: plan, build, probe step by step, write results, tear down.

The orchestration layer between the CLI and emu/ + traffic/. Probes of a step are sent
concurrently by the socket prober, so blocked flows cost one timeout per step, not one each.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from ..emu.cluster import EmulatedCluster
from ..errors import Problem, RunAborted, SpecError, TestbedError
from ..faults.decode import TIMER_KEYS
from ..faults.model import Fault, Recover
from ..lifecycle.delays import Delays, with_kube_proxy_periods
from ..plan.build import plan_cluster, replan
from ..spec.topology import load_topology
from ..spec.workloads import load_manifests
from ..traffic.capture import Capture
from ..traffic.droplog import DropLog, cluster_drop_log
from .changes import SetProbe, apply_action, describe
from .expand import PlannedProbe, expand
from .jobs import finish as finish_jobs
from .model import CaptureSpec, Experiment
from .paced import PacedChanges
from .records import make_row
from .results import discarded_if_empty, environment, file_sha256, new_run_id, unique_run_dir, write_results
from .rollout import Rollout
from .stale_entries import mark_stale_entries
from .statefulsets import ordered_build, stages
from .taints import TaintNodes, evictions, retaint
from .updates import STEP_DELAY as UPDATE_STEP_DELAY
from .updates import rolled
from .updates import stages as update_stages


def probe_rows(
    cluster: EmulatedCluster, run_id: str, step: str, planned: list[PlannedProbe], droplog: DropLog | None = None
) -> list[dict[str, Any]]:
    """Send the planned probes (socket and scapy ones each at once); rows in planned order. With
    the cluster's `droplog`, blocked probes end when their drop is logged, and rows say where."""
    from ..traffic.crafted import Crafted, run_crafted
    from ..traffic.prober import Probe, run_probes
    from ..traffic.throughput import measure

    stamp = time.time()
    by_index: dict[int, dict[str, Any]] = {}
    planned = _resolve_names(cluster, planned)
    sockets = [(i, p) for i, p in enumerate(planned) if p.method == "socket"]
    crafted = [(i, p) for i, p in enumerate(planned) if p.method == "scapy"]
    if sockets:
        results = run_probes(
            [
                Probe(
                    id=i,
                    src_netns=cluster.netns_path(p.src.key),
                    dst_ip=p.dst_ip,
                    port=p.port,
                    protocol=p.protocol,
                    timeout=p.timeout,
                )
                for i, p in sockets
            ],
            evidence=droplog,
        )
        for (i, p), sr in zip(sockets, results):
            by_index[i] = make_row(
                run_id, step, stamp, p, sr.outcome, sr.latency_ms, sr.reply, sr.error, sr.evidence, sr.drop_at, sr.sport
            )
    if crafted:
        answers = run_crafted(
            [
                Crafted(i, cluster.netns_path(p.src.key), p.dst_ip, p.protocol, p.port, p.timeout, p.source_ip)
                for i, p in crafted
            ],
            evidence=droplog,
        )
        for (i, p), cr in zip(crafted, answers):
            by_index[i] = make_row(
                run_id,
                step,
                stamp,
                p,
                cr.outcome,
                cr.latency_ms,
                cr.reply,
                None if cr.outcome == "connected" else cr.detail,
                cr.evidence,
                cr.drop_at,
                cr.sport,
            )
    web = [(i, p) for i, p in enumerate(planned) if p.method == "http"]
    if web:
        from ..traffic.http import HttpProbe, run_http

        web_answers = run_http(
            [
                HttpProbe(
                    cluster.netns_path(p.src.key),
                    p.dst_ip,
                    p.port,
                    p.http_host,
                    p.http_path,
                    p.http_scheme,
                    p.timeout,
                    p.dns_name,
                )
                for _, p in web
            ]
        )
        for (i, p), hr in zip(web, web_answers):
            by_index[i] = make_row(run_id, step, stamp, p, hr.outcome, hr.latency_ms, hr.reply, hr.error or None)
    for i, p in enumerate(planned):
        if p.method == "iperf3":
            m = measure(cluster.netns(p.src.key), cluster.netns(p.dst.key), p.dst_ip, p.seconds)
            row = make_row(run_id, step, stamp, p, m.outcome, m.rtt_ms, None, m.error or None, sport=m.sport)
            row["throughput_mbps"] = m.mbps
            by_index[i] = row
    rows = [by_index[i] for i in range(len(planned))]
    _where_dropped(cluster, planned, rows)
    return rows


def _where_dropped(cluster: EmulatedCluster, planned: list[PlannedProbe], rows: list[dict[str, Any]]) -> None:
    """Whose rule each logged drop was, and whether the traced rule path ends there (dropcheck.py)."""
    from ..dropcheck import owner, predicted_drops

    traced: dict[tuple, dict[str, str]] = {}
    for p, row in zip(planned, rows):
        if not row.get("drop_at"):
            continue
        src = p.source_ip or p.src.ip
        port = None if p.protocol == "ICMP" else p.port
        flow = (src, p.dst_ip, port, p.protocol)
        if flow not in traced:
            traced[flow] = predicted_drops(cluster.plan, *flow)
        dst = traced[flow].get(row["drop_at"], p.dst_ip)
        row["drop_owner"] = owner(cluster.plan, row["drop_at"], src, dst, port, p.protocol)
        row["drop_as_traced"] = row["drop_at"] in traced[flow]


class _Continuous:
    """Probe rounds in a background thread while a step's actions apply (probes see the changes).

    The probes are planned once, at the start (a Service's VIP does not move); each round is sent
    at once and recorded with its own timestamp and its round number in `attempt`. Rounds stop
    `settle` seconds after the last action; the thread has its own namespace switching (setns is
    per thread), so it never disturbs the main thread.
    """

    def __init__(
        self,
        cluster: EmulatedCluster,
        run_id: str,
        step: Any,
        progress: Callable[[str], None],
        droplog: DropLog | None = None,
    ) -> None:
        import threading

        self.cluster, self.run_id, self.step = cluster, run_id, step
        self.droplog = droplog
        self.planned = [p for g in step.during.probes for p in expand(cluster.plan, g)]
        self.rows: list[dict[str, Any]] = []
        self.rounds = 0
        self.error: BaseException | None = None
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"during-{step.name}", daemon=True)
        progress(
            f"step {step.name}: probing {len(self.planned)} flows every {step.during.interval} s during the change"
        )
        self.thread.start()

    def _loop(self) -> None:
        import dataclasses

        while not self.halt.is_set():
            t0 = time.perf_counter()
            batch = [dataclasses.replace(p, attempt=self.rounds) for p in self.planned]
            try:
                self.rows += probe_rows(self.cluster, self.run_id, f"{self.step.name}:during", batch, self.droplog)
            except (TestbedError, OSError) as exc:  # raised again by stop(), in the main thread
                self.error = exc
                return
            self.rounds += 1
            self.halt.wait(max(0.0, self.step.during.interval - (time.perf_counter() - t0)))

    def stop(self) -> list[dict[str, Any]]:
        time.sleep(self.step.during.settle)
        self.halt.set()
        self.thread.join(timeout=30)
        if self.error is not None:
            raise _failed(f"step {self.step.name}: probing during the change", self.error)
        return self.rows


def _failed(what: str, exc: BaseException) -> TestbedError:
    """A run-time failure as a TestbedError (one line), kept as it is when it already is one."""
    return exc if isinstance(exc, TestbedError) else TestbedError(f"{what} failed: {exc}")


def _roll_out(
    cluster: EmulatedCluster, spec: Any, manifests: Any, action: Rollout, history: dict, source: str
) -> tuple[Any, dict[str, Any]]:
    """A rolling update (or undo): every intermediate state applied in turn, new pods first."""
    from ..plan.build import replan
    from .rollout import counts, find_deployment, new_template_workload, updated, wishes_between

    start = time.perf_counter()
    if action.kind != "Deployment":  # a StatefulSet or DaemonSet: its own updateStrategy plays
        after = rolled(manifests, action, history, source)
        done = apply_rolling(cluster, spec, manifests, after, replan(spec, after, cluster.plan.seed, prev=cluster.plan))
        return after, {**done, "seconds": time.perf_counter() - start}
    old = find_deployment(manifests, action, source)
    new = new_template_workload(old, action, history)
    history[(old.ref.namespace, old.ref.name)] = old.template
    after = updated(manifests, old, new)
    added = removed = 0
    for old_count, new_count in counts(old.replicas, action.max_surge, action.max_unavailable)[1:]:
        wishes = wishes_between(manifests, after, (old.ref.namespace, old.ref.name), old_count, new_count)
        plan = replan(spec, after, cluster.plan.seed, prev=cluster.plan, desired=wishes)
        done = cluster.apply(cluster.faults.adjust(plan))  # a NotReady node's endpoints stay not ready
        added, removed = added + int(done["added"]), removed + int(done["removed"])
        time.sleep(action.step_delay)
    return after, {"added": added, "removed": removed, "seconds": time.perf_counter() - start}


def finish_build(cluster: EmulatedCluster, ordered: list[Any]) -> None:
    """Build the rest of the first plan (experiment/statefulsets.py's `ordered_build`: an
    OrderedReady StatefulSet's pods one ordinal after the other, each running before the next);
    the time counts as the build's."""
    start = time.perf_counter()
    for stage in ordered[1:]:
        cluster.apply(stage)
    cluster.timings["build"] = cluster.timings.get("build", 0.0) + time.perf_counter() - start


def apply_rolling(cluster: EmulatedCluster, spec: Any, before: Any, after: Any, plan: Any) -> dict[str, Any]:
    """Move the cluster from `before` to `after` (whose reconciled plan is `plan`): a StatefulSet's
    or DaemonSet's new template rolls pod by pod, node by node (experiment/updates.py), each
    stage applied and given time to be Ready before the next; then the final state."""
    start = time.perf_counter()
    done = {"added": 0, "removed": 0}
    for wishes in update_stages(spec, before, after, cluster.plan):
        part = replan(spec, after, plan.seed, prev=cluster.plan, desired=wishes)
        step = cluster.apply(cluster.faults.adjust(part))  # a NotReady node's endpoints stay not ready
        done = {k: int(step[k]) + v for k, v in done.items()}
        time.sleep(UPDATE_STEP_DELAY)
        plan = replan(spec, after, plan.seed, prev=cluster.plan)
    step = cluster.apply(cluster.faults.adjust(plan))
    return {**{k: int(step[k]) + v for k, v in done.items()}, "seconds": time.perf_counter() - start}


def play_taint(
    cluster: EmulatedCluster, action: TaintNodes, spec: Any, manifests: Any, timers: Any, source: str
) -> tuple[Any, Any, dict[str, Any]]:
    """`kubectl taint nodes`: new placements follow at once (DaemonSets too); the NoExecute
    taint's evictions play out in time, `timers.timeScale` scaling tolerationSeconds, each pod
    replaced by its controller (experiment/taints.py). Returns once the last one is evicted."""
    from itertools import groupby

    from ..faults.lifecycle import delete_pods

    start = time.perf_counter()
    before = {(p.key, p.uid) for p in cluster.plan.pods}
    spec = retaint(spec, action, source)
    cluster.apply(cluster.faults.adjust(replan(spec, manifests, cluster.plan.seed, prev=cluster.plan)))
    tainted = time.perf_counter()
    for after, due in groupby(evictions(spec, manifests, cluster.plan), key=lambda e: e[0]):
        time.sleep(max(0.0, timers.scaled(after) - (time.perf_counter() - tainted)))
        present = {p.full_name for p in cluster.plan.pods}
        doomed = [name for _, name in due if name in present]
        manifests, plan = delete_pods(spec, manifests, cluster.plan, doomed)
        cluster.apply(cluster.faults.adjust(plan))
    now = {(p.key, p.uid) for p in cluster.plan.pods}
    done = {"added": len(now - before), "removed": len(before - now), "seconds": time.perf_counter() - start}
    return spec, manifests, done


def _fault(
    cluster: EmulatedCluster, exp: Experiment, step: str, action: Fault | Recover, spec: Any, manifests: Any
) -> tuple[Any, Any, dict[str, Any]]:
    """Inject or undo a fault (emu/faults.py); a node-down returns once its lifecycle played out."""
    start = time.perf_counter()
    before = {(p.key, p.uid) for p in cluster.plan.pods}
    injector = cluster.faults
    injector.step = step
    if isinstance(action, Fault):
        spec, manifests = injector.inject(action, exp.timers, spec, manifests)
    else:
        spec, manifests = injector.recover(action, exp.timers, spec, manifests)
    after = {(p.key, p.uid) for p in cluster.plan.pods}
    done = {"added": len(after - before), "removed": len(before - after), "seconds": time.perf_counter() - start}
    return spec, manifests, done


def _write_events(run_dir: str, events: list[dict[str, Any]]) -> None:
    """events.csv: every fault event with its UNIX time (also in run.json's `events`)."""
    import csv

    with open(os.path.join(run_dir, "events.csv"), "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["time", "step", "event", "kind", "target", "detail"])
        writer.writeheader()
        writer.writerows(events)


def _resolve_names(cluster: EmulatedCluster, planned: list[PlannedProbe]) -> list[PlannedProbe]:
    """Probes addressed by DNS name get the address the source's own resolver answers."""
    import dataclasses

    from ..traffic.dnsquery import resolve_many

    named = [p for p in planned if p.dns_name]
    if not named or cluster.plan.services is None:
        return planned
    server = cluster.plan.dns_server or cluster.plan.services.service("kube-system", "kube-dns").cluster_ip
    # a probe planned over IPv6 asks for AAAA records, over IPv4 for A records, whatever kube-dns's
    # own family (IPv4-first dual: IPv4 server; IPv6-first dual and single-stack IPv6: IPv6 server)
    answers: dict[bool, dict[tuple[str, str], list[str]]] = {}
    for v6 in (False, True):
        batch = [(cluster.netns_path(p.src.key), p.dns_name, server) for p in named if (":" in p.dst_ip) == v6]
        answers[v6] = resolve_many(batch, aaaa=v6) if batch else {}
    out = []
    for p in planned:
        if p.dns_name:
            ips = answers[":" in p.dst_ip].get((cluster.netns_path(p.src.key), p.dns_name), [])
            # No answer: probe an address that cannot be reached, so the row records the failure.
            p = dataclasses.replace(p, dst_ip=ips[0] if ips else ("::" if ":" in p.dst_ip else "0.0.0.0"))
        out.append(p)
    return out


def _start_capture(cluster: EmulatedCluster, run_dir: str, step: str, spec: CaptureSpec) -> Capture:
    """tcpdump where the spec says: a pod (name or ns/name), a node or an external host."""
    plan = cluster.plan
    pod = plan.find_pod(spec.at)
    keys = {n.name: n.key for n in plan.nodes} | {x.name: x.key for x in plan.externals}
    key = pod.key if pod else keys.get(spec.at)
    if key is None:
        raise SpecError([Problem(run_dir, f"steps[{step}].capture.at", f"no pod, node or host named {spec.at!r}")])
    safe = spec.at.replace("/", "_")
    assert cluster.ledger is not None
    name = f"{step}-{safe}-{spec.interface}"
    cap = Capture(
        cluster.netns(key),
        spec.interface,
        os.path.join(run_dir, "pcap", f"{name}.pcap"),
        spec.filter,
        spec.max_packets,
        log=os.path.join(cluster.ledger.dir, f"tcpdump-{name}.log"),
        at=f"{spec.at} (step {step})",
    )
    cluster.ledger.add_pid(cap.start(cluster.runner))
    return cap


def run_experiment(exp: Experiment, results_root: str, progress: Callable[[str], None]) -> tuple[str, bool]:
    """Returns (run folder, passed). Spec errors surface before anything is built."""
    cluster_spec = load_topology(exp.topology)
    manifests = load_manifests(exp.manifests)
    plan = plan_cluster(cluster_spec, manifests, seed=exp.seed)
    first_plan = plan
    ordered = ordered_build(plan, manifests)  # OrderedReady StatefulSets: one ordinal at a time
    run_dir, run_id = unique_run_dir(results_root, new_run_id(exp.name))
    for warning in plan.warnings:
        progress(f"warning: {warning}")
    for note in plan.notes:
        progress(f"note: {note}")
    rows: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    captures: list[dict[str, Any]] = []
    during: list[dict[str, Any]] = []
    history: dict = {}  # Deployment -> previous template, for rollbacks
    paced: PacedChanges | None = None  # once changes are played in time (issue 19)
    started = time.time()
    timings: dict[str, float] = {}
    failure: TestbedError | None = None
    with (
        discarded_if_empty(run_dir),
        EmulatedCluster(ordered[0], progress=progress, keep_logs_in=os.path.join(run_dir, "logs")) as cluster,
    ):
        finish_build(cluster, ordered)
        progress(f"cluster ready in {cluster.timings['build']:.2f} s")
        droplog = cluster_drop_log(cluster)
        try:
            for step in exp.steps:
                t0 = time.perf_counter()
                background = _Continuous(cluster, run_id, step, progress, droplog) if step.during else None
                try:
                    for action in step.actions:
                        if paced is None and (exp.lifecycle is not None or isinstance(action, SetProbe)):
                            delays = with_kube_proxy_periods(
                                exp.lifecycle or Delays(timers=exp.timers), cluster_spec.kube_proxy
                            )
                            paced = PacedChanges(cluster, manifests, delays)
                        if isinstance(action, TaintNodes):  # the taint manager's evictions, in time
                            cluster_spec, manifests, done = play_taint(
                                cluster, action, cluster_spec, manifests, exp.timers, exp.file
                            )
                        elif isinstance(action, (Fault, Recover)):  # faults play their own timers
                            cluster_spec, manifests, done = _fault(
                                cluster, exp, step.name, action, cluster_spec, manifests
                            )
                        elif paced is not None:  # played in time, with pods' lifecycle (experiment/paced.py)
                            manifests, done = paced.apply(action, cluster_spec, manifests, history, exp.file, step.name)
                        elif isinstance(action, Rollout):
                            manifests, done = _roll_out(cluster, cluster_spec, manifests, action, history, exp.file)
                        else:
                            done = {"added": 0, "removed": 0, "seconds": 0.0}
                            # one pod at a time for an OrderedReady StatefulSet (experiment/statefulsets.py)
                            for stage in stages(action, manifests):
                                before = manifests
                                manifests, plan = apply_action(stage, cluster_spec, manifests, cluster.plan, exp.file)
                                rolled_done = apply_rolling(cluster, cluster_spec, before, manifests, plan)
                                done = {k: v + done[k] for k, v in rolled_done.items()}
                        changes.append({"step": step.name, "action": describe(action), **done})
                        progress(
                            f"step {step.name}: {describe(action)}: +{done['added']} -{done['removed']} pods "
                            f"in {done['seconds']:.3f} s"
                        )
                finally:
                    if background is not None:
                        during_rows = background.stop()
                        rows += during_rows
                        failed = sum(r["outcome"] != "connected" for r in during_rows)
                        during.append(
                            {
                                "step": step.name,
                                "rounds": background.rounds,
                                "probes": len(during_rows),
                                "failed": failed,
                            }
                        )
                        progress(f"step {step.name}: {len(during_rows)} probes during the change, {failed} failed")
                world = cluster.plan.world if any(g.expect.outcome == "oracle" for g in step.probes) else None
                planned = [p for g in step.probes for p in expand(cluster.plan, g, world, manifests.ingresses)]
                running: list[Capture] = []
                try:
                    for spec in step.captures:
                        running.append(_start_capture(cluster, run_dir, step.name, spec))
                    if planned:
                        cluster.check_daemons(f"before step {step.name}'s probes")
                        progress(f"step {step.name}: {len(planned)} probes")
                        rows += probe_rows(cluster, run_id, step.name, planned, droplog)
                        # a helper that died under the probes, not the network, explains their failures
                        cluster.check_daemons(f"during step {step.name}'s probes")
                finally:
                    for spec, cap in zip(step.captures, running):
                        packets = cap.stop()
                        captures.append(
                            {
                                "step": step.name,
                                "at": spec.at,
                                "interface": spec.interface,
                                "filter": spec.filter,
                                "packets": packets,
                                "file": os.path.relpath(cap.path, run_dir),
                            }
                        )
                finished = finish_jobs(cluster_spec, manifests, cluster.plan)  # experiment/jobs.py
                if finished is not None:
                    manifests, plan, what = finished
                    done = cluster.apply(plan)
                    changes.append({"step": step.name, "action": what, **done})
                    progress(f"step {step.name}: {what}: -{done['removed']} pods in {done['seconds']:.3f} s")
                timings[f"step:{step.name}"] = time.perf_counter() - t0
        except (TestbedError, OSError) as exc:  # the results so far are written, marked as aborted, below
            failure = _failed(f"step {step.name}", exc)
            cluster.keep_logs_of(failure, os.path.join(run_dir, "logs"))
            progress(f"run aborted: {failure}")
        finally:
            if droplog is not None:
                droplog.close()  # before teardown: a socket holds its node's namespace
        final_plan = cluster.plan
        events = list(cluster.faults.events)
    timings.update(cluster.timings)  # after the block: teardown time is known only then
    stale = mark_stale_entries(rows)  # experiment/stale_entries.py: the stale entry decides those
    if stale:
        progress(f"{stale} probe(s) reused the 5-tuple of an unanswered SYN still in conntrack: expected any")
    passed = failure is None and bool(rows) and all(r["outcome_ok"] and r["nat_free"] is not False for r in rows)
    inputs = [
        exp.file,
        exp.topology,
        *exp.manifests,
        *(f for step in exp.steps for a in step.actions for f in getattr(a, "files", ())),
    ]
    meta = {
        "run_id": run_id,
        "passed": passed,
        "started": started,
        "seed": exp.seed,
        "experiment": {"name": exp.name, "file": exp.file, "description": exp.description},
        "inputs": {os.path.relpath(p): file_sha256(p) for p in dict.fromkeys(inputs)},
        "cluster": {
            "name": first_plan.cluster,
            "nodes": len(first_plan.nodes),
            "pods": len(first_plan.pods),
            "pods_at_end": len(final_plan.pods),
            "routing": first_plan.routing,
            "pending": len({(p.namespace, p.name) for p in (*first_plan.pending, *final_plan.pending)}),
        },
        "probes": len(rows),
        "as_expected": sum(bool(r["outcome_ok"]) for r in rows),
        "nat_violations": sum(r["nat_free"] is False for r in rows),
        "timings": timings,
        "environment": environment(),
        "warnings": list(first_plan.warnings),
        "changes": changes,
        "captures": captures,
        "during": during,
        "events": events,
        "notes": list(plan.notes),
        "reproduce": f"testbed run {os.path.relpath(exp.file)}",
    }
    if paced is not None:
        meta["lifecycle"] = {"delays": paced.driver.delays.flat(), "timeline": paced.timeline()}
    if failure is not None:
        meta["aborted"] = str(failure)  # the verdict names the cause, not the probes it spoilt
    if events:
        # the Kubernetes timers the faults ran with, named as the experiment names them
        meta["timers"] = {key: getattr(exp.timers, attr) for key, attr in TIMER_KEYS.items()}
    write_results(run_dir, meta, final_plan.to_dict(), rows)  # the CLI builds the report from them
    if events:
        _write_events(run_dir, events)
    if failure is not None:
        raise RunAborted(
            f"{failure} (the results so far are in {run_dir}, marked aborted)", run_dir, failure.exit_code
        ) from None
    return run_dir, passed
