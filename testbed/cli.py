"""`testbed` command line: plan, up, run, explain, conformance, bench, clean, report, compare.

The only place that turns errors into messages and exit codes: bad input prints one line
per problem naming the file and the field, and exits 2 with nothing built; a kernel failure
exits 1 after teardown. Library code raises; it never calls exit().
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Sequence

from . import __version__
from .errors import SpecError, TestbedError


def _progress(quiet: bool):
    def emit(message: str) -> None:
        if not quiet:
            print(f"[testbed] {message}", file=sys.stderr, flush=True)
    return emit


def _load(args: argparse.Namespace):
    """(cluster spec, manifests, plan) from the topology and -f files."""
    from .plan.build import plan_cluster
    from .spec.topology import load_topology
    from .spec.workloads import load_manifests

    cluster = load_topology(args.topology)
    manifests = load_manifests(args.file or [])
    return cluster, manifests, plan_cluster(cluster, manifests, seed=args.seed)


def cmd_plan(args: argparse.Namespace) -> int:
    _, _, plan = _load(args)
    if args.output == "json":
        print(json.dumps(plan.to_dict(), indent=2, sort_keys=True))
        return 0
    from .views import get_nodes, get_pods, get_services

    print(f"cluster {plan.cluster}: {len(plan.nodes)} nodes, {len(plan.pods)} pods, routing {plan.routing}, "
          f"underlay {plan.underlay_subnet}, pods {plan.pod_subnet}, services {plan.service_subnet}, seed {plan.seed}")
    print()
    print(get_nodes(plan, wide=True))
    print()
    print(get_pods(plan, wide=True, namespace=None))
    if plan.externals:
        print()
        for x in plan.externals:
            print(f"external host {x.name}: {x.ip}/{x.underlay_prefix} on the underlay")
    print()
    for r in plan.routes:
        via = f" via {r.via}" if r.via else ""
        print(f"route on {r.node}: {r.dst}{via} dev {r.dev}  ({r.why})")
    network = plan.network
    for router in (network.routers if network is not None else ()):
        print(f"router {router.name}: " + ", ".join(f"{i.dev} {i.ip}/{i.prefix} ({i.subnet})" for i in router.interfaces))
        for r in router.routes:
            print(f"  route {r.dst} via {r.via}  ({r.why})")
    if plan.services is not None:
        print()
        print(get_services(plan, wide=False, namespace=None))
    for w in plan.warnings:
        print(f"warning: {w}")
    for n in plan.notes:
        print(f"note: {n}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from .emu.cluster import EmulatedCluster, exec_in_netns
    from .shell import ClusterShell

    spec, manifests, plan = _load(args)
    progress = _progress(args.quiet)
    for w in plan.warnings:
        progress(f"warning: {w}")
    with EmulatedCluster(plan, progress=progress, manifests=manifests) as cluster:
        progress(f"cluster {plan.cluster} ready in {cluster.timings['build']:.2f} s "
                 f"(namespaces are tb-{cluster.tag}-*)")

        def change(action):
            from .experiment.changes import apply_action, describe
            new_manifests, new_plan = apply_action(action, spec, cluster.manifests, cluster.plan, "shell")
            done = cluster.apply(new_plan, new_manifests)
            print(f"{describe(action)}: +{done['added']} -{done['removed']} pods, applied in {done['seconds']:.3f} s")
            return cluster.plan, cluster.manifests

        shell = ClusterShell(plan, cluster.netns, exec_in_netns, change, manifests)
        if args.command:
            for line in args.command:
                print(f"testbed> {line}")
                shell.onecmd(line)
        else:
            shell.cmdloop()
        progress("tearing down")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .experiment.load import load_experiment
    from .experiment.run import run_experiment

    exp = load_experiment(args.experiment)
    if args.seed is not None:
        from dataclasses import replace
        exp = replace(exp, seed=args.seed)
    progress = _progress(args.quiet)
    run_dir, passed = run_experiment(exp, args.results, progress)
    with open(os.path.join(run_dir, "summary.md"), encoding="utf-8") as handle:
        print(handle.read())
    print(f"results: {run_dir}")
    return 0 if passed else 1


def cmd_explain(args: argparse.Namespace) -> int:
    """Why a flow is allowed or blocked by NetworkPolicy, or which policies select a pod."""
    from .netpol.explain import explain_flow, explain_pod
    from .netpol.oracle import Flow, decide
    from .netpol.world import World
    from .rulepath import render_path, trace_path

    _, manifests, plan = _load(args)
    world = World.from_plan(plan, manifests)
    try:
        if args.pod:
            print(explain_pod(world, args.pod))
            return 0
        if not (args.source and args.destination):
            raise TestbedError("give --from SOURCE --to DESTINATION [--port PORT[/PROTOCOL]|icmp], or --pod NAME")
        flow = Flow.of(args.source, args.destination, args.port)
        if args.trace:
            path = trace_path(plan, world, flow)
            print(render_path(path), end="")
            return 0 if path.delivered else 3
        verdict = decide(flow, world)
    except (KeyError, ValueError) as exc:
        raise TestbedError(str(exc).strip("'\"")) from None
    print(explain_flow(verdict))
    return 0 if verdict.allowed else 3


def cmd_conformance(args: argparse.Namespace) -> int:
    from .experiment.conformance import run_conformance

    run_dir, passed = run_conformance(args.topology, args.results, args.seed, args.limit, args.timeout,
                                      _progress(args.quiet))
    with open(os.path.join(run_dir, "conformance.md"), encoding="utf-8") as handle:
        print("\n".join(handle.read().splitlines()[:8]))
    print(f"results: {run_dir}")
    return 0 if passed else 1


def cmd_bench(args: argparse.Namespace) -> int:
    """The scale and speed benchmarks (issue 7): figures against their targets, with the machine."""
    from .bench.machine import machine_line
    from .bench.suite import run_bench
    from .bench.targets import table

    if os.geteuid() != 0:
        raise TestbedError("`testbed bench` needs root: it builds real clusters")
    print(machine_line(), flush=True)
    run_dir, figures, _ = run_bench(args.quick, args.results, _progress(args.quiet), args.mininet_hosts)
    print(table(figures), end="")
    print(f"results: {run_dir}")
    return 0 if all(f.met is not False for f in figures) else 1


def cmd_clean(args: argparse.Namespace) -> int:
    from .emu.cleanup import clean
    from .emu.runner import Runner

    if os.geteuid() != 0:
        raise TestbedError("`testbed clean` needs root to remove network namespaces")
    print(clean(Runner(), only_stale=args.stale))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report

    md_path, html_path = build_report(args.run_dir)  # a missing or empty folder raises a TestbedError
    print(f"report: {md_path}")
    print(f"report: {html_path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .report.compare import compare_runs

    print(compare_runs(args.run_a, args.run_b), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="testbed", description="Kubernetes network emulation testbed on Mininet")
    parser.add_argument("--version", action="version", version=f"testbed {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True)

    def cluster_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("topology", help="kind cluster config (+ TestbedConfig), e.g. topologies/three-nodes.yaml")
        p.add_argument("-f", "--file", action="append", help="workload manifests (repeatable)")
        p.add_argument("--seed", type=int, default=0, help="seed for generated names (default 0)")

    p = sub.add_parser("plan", help="print what would be created (no root needed)")
    cluster_args(p)
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(fn=cmd_plan)

    p = sub.add_parser("up", help="build the cluster and open an interactive shell; leaving it tears down")
    cluster_args(p)
    p.add_argument("-c", "--command", action="append", help="run this shell command instead of prompting (repeatable)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(fn=cmd_up)

    p = sub.add_parser("run", help="run an experiment and write results/<run-id>/")
    p.add_argument("experiment")
    p.add_argument("--results", default="results", help="results root folder (default: results)")
    p.add_argument("--seed", type=int, default=None, help="override the experiment's seed")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("explain", help="why NetworkPolicy allows or blocks a flow (no root needed)")
    cluster_args(p)
    p.add_argument("--from", dest="source", help="a pod (ns/name or name), node, external host or IP")
    p.add_argument("--to", dest="destination", help="a pod (ns/name or name), node, external host or IP")
    p.add_argument("--port", default="80/TCP", help="PORT[/PROTOCOL] or icmp (default 80/TCP)")
    p.add_argument("--pod", help="summarise the policies that select this pod instead")
    p.add_argument("--trace", action="store_true",
                   help="the rule path of the flow's first packet on each node it crosses (kube-proxy, "
                        "NetworkPolicy, egress); --to may be svc/[NAMESPACE/]NAME")
    p.set_defaults(fn=cmd_explain)

    p = sub.add_parser("conformance", help="the generated NetworkPolicy suite: oracle vs real packets")
    p.add_argument("--topology", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                      "topologies", "three-nodes.yaml"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="run the first N cases (every family is represented)")
    p.add_argument("--timeout", type=float, default=0.5, help="probe timeout in seconds (default 0.5)")
    p.add_argument("--results", default="results")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(fn=cmd_conformance)

    p = sub.add_parser("bench", help="scale and speed benchmarks against the targets (needs root)")
    p.add_argument("--quick", action="store_true", help="3-node build, truth table, 100-pod all-pairs, "
                   "30 conformance cases (about a minute)")
    p.add_argument("--mininet-hosts", type=int, default=1000, help="plain Mininet hosts for the ratio (full run)")
    p.add_argument("--results", default="results")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(fn=cmd_bench)

    p = sub.add_parser("clean", help="remove every namespace and process the testbed left, and only those")
    p.add_argument("--stale", action="store_true", help="only instances whose owner process is gone")
    p.set_defaults(fn=cmd_clean)

    p = sub.add_parser("report", help="rebuild report.md and report.html of a results folder from its dataset")
    p.add_argument("run_dir", metavar="run-dir", help="a results folder, e.g. results/<run-id>")
    p.set_defaults(fn=cmd_report)

    p = sub.add_parser("compare", help="show what changed between two runs (Markdown)")
    p.add_argument("run_a", metavar="run-a", help="the earlier results folder")
    p.add_argument("run_b", metavar="run-b", help="the later results folder")
    p.set_defaults(fn=cmd_compare)
    return parser


def _terminate(signum: int, _frame: object) -> None:
    # SIGTERM/SIGHUP become an exception so that every `finally` (teardown) runs.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        return args.fn(args)
    except SpecError as exc:
        for problem in exc.problems:
            print(f"testbed: error: {problem}", file=sys.stderr)
        return exc.exit_code
    except TestbedError as exc:
        print(f"testbed: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("testbed: interrupted; everything built was torn down", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
