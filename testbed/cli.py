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
from collections.abc import Sequence
from dataclasses import replace

from . import __version__
from .emu import signals
from .errors import NotRootError, Problem, RunAborted, SpecError, TestbedError, UsageError

# Each command imports the modules only it needs inside its function (marked "deferred"), so that
# a command loads what it uses: `testbed plan` needs spec/ and plan/ (about 0.15 s), not emu/,
# experiment/ and conformance/ too (0.35 s), nor pandas and matplotlib (the report).

MAX_SEED = 2**32 - 1


def _progress(quiet: bool):
    def emit(message: str) -> None:
        if not quiet:
            print(f"[testbed] {message}", file=sys.stderr, flush=True)

    return emit


def _check_number(option: str, value: float | None, low: float, high: float, low_open: bool = False) -> None:
    """A numeric option within its bounds (argparse checks only the type)."""
    if value is None:
        return
    if value != value or value > high or value < low or (low_open and value == low):

        def show(x: float) -> str:
            return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e18 else f"{x:g}"

        bound = f"({show(low)}, {show(high)}]" if low_open else f"[{show(low)}, {show(high)}]"
        raise UsageError(f"{option} {show(value)} is out of range {bound}")


def _check_results_root(option: str, path: str) -> None:
    """The results root is, or can be created as, a writable folder: checked before building,
    so that a run's results are never lost at the end (`--results /etc/passwd`)."""
    real = os.path.abspath(path)
    if os.path.exists(real):
        if not os.path.isdir(real):
            raise UsageError(f"{option} {path}: exists and is not a directory")
        if not os.access(real, os.W_OK | os.X_OK):
            raise UsageError(f"{option} {path}: the directory is not writable")
        return
    parent = os.path.dirname(real)
    if not os.path.isdir(parent):
        raise UsageError(f"{option} {path}: its parent {parent} is not an existing directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: cannot be created in {parent} (not writable)")


def _check_capture_filters(exp) -> None:
    """Every capture filter compiles (emu/bpf.py runs `tcpdump -d`: no root, no interface)."""
    from .emu.bpf import bpf_filter_error  # deferred: start-up time

    problems = []
    for i, step in enumerate(exp.steps):
        for c, capture in enumerate(step.captures):
            error = bpf_filter_error(capture.filter)
            if error:
                problems.append(
                    Problem(
                        exp.file,
                        f"spec.steps[{i}].capture[{c}].filter",
                        error,
                        f"Experiment {exp.name}, step {step.name!r}",
                    )
                )
    if problems:
        raise SpecError(problems)


def _load(args: argparse.Namespace):
    """(cluster spec, manifests, plan) from the topology and -f files."""
    from .plan.build import plan_cluster  # deferred: start-up time
    from .spec.inputs import expand_inputs  # deferred: start-up time
    from .spec.topology import load_topology  # deferred: start-up time
    from .spec.workloads import load_manifests  # deferred: start-up time

    _check_number("--seed", args.seed, 0, MAX_SEED)
    cluster = load_topology(args.topology)
    manifests = load_manifests(expand_inputs(args.file or [], args.recursive))
    return cluster, manifests, plan_cluster(cluster, manifests, seed=args.seed)


def cmd_plan(args: argparse.Namespace) -> int:
    # deferred: views.py brings spec/ and plan/, which `testbed report`, `compare` and `clean` never use
    from .views import dual_stack_lines, get_controllers, get_nodes, get_pods, get_services

    _, manifests, plan = _load(args)
    if args.output == "json":
        print(json.dumps(plan.to_dict(), indent=2, sort_keys=True))
        return 0

    print(
        f"cluster {plan.cluster}: {len(plan.nodes)} nodes, {len(plan.pods)} pods, routing {plan.routing}, "
        f"underlay {plan.underlay_subnet}, pods {plan.pod_subnet}, services {plan.service_subnet}, seed {plan.seed}"
    )
    print()
    print(get_nodes(plan, wide=True))
    print()
    print(get_pods(plan, wide=True, namespace=None))
    controllers = get_controllers(plan, manifests)
    if controllers:
        print()
        print(controllers)
    if plan.externals:
        print()
        for x in plan.externals:
            print(f"external host {x.name}: {x.ip}/{x.underlay_prefix} on the underlay")
    print()
    for r in plan.routes:
        via = f" via {r.via}" if r.via else ""
        print(f"route on {r.node}: {r.dst}{via} dev {r.dev}  ({r.why})")
    for sr in plan.service_routes:  # the emulated cloud's routes to externalIPs / the Service range
        print(f"route on {sr.member}: {sr.dst} via {sr.via} dev {sr.dev}  ({sr.why})")
    for line in dual_stack_lines(plan):  # the IPv6 half of a dual-stack cluster (issue 15)
        print(line)
    network = plan.network
    for router in network.routers if network is not None else ():
        print(
            f"router {router.name}: " + ", ".join(f"{i.dev} {i.ip}/{i.prefix} ({i.subnet})" for i in router.interfaces)
        )
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
    from .emu.cluster import EmulatedCluster  # deferred: start-up time
    from .shell import ClusterShell  # deferred: start-up time
    from .shell.live import connect  # deferred: start-up time

    lines = list(args.command or [])
    if args.script:
        lines += _script_lines(args.script)
    spec, manifests, plan = _load(args)
    progress = _progress(args.quiet)
    for w in plan.warnings:
        progress(f"warning: {w}")
    for n in plan.notes:
        progress(f"note: {n}")
    status = 0
    from .experiment.run import finish_build  # deferred: start-up time
    from .experiment.statefulsets import ordered_build

    ordered = ordered_build(plan, manifests)  # OrderedReady StatefulSets: one ordinal at a time
    with EmulatedCluster(ordered[0], progress=progress) as cluster:
        finish_build(cluster, ordered)
        progress(
            f"cluster {plan.cluster} ready in {cluster.timings['build']:.2f} s (namespaces are tb-{cluster.tag}-*)"
        )
        shell = ClusterShell(plan, connect(cluster, spec, manifests), manifests=manifests)
        try:
            if args.command is not None or args.script:
                for line in lines:  # a tutorial as a test: stop at the first failing command
                    print(f"testbed> {line}", flush=True)
                    status = shell.onecmd(line)
                    if status:
                        progress(f"stopped: `{line[:80]}` exited with status {status}")
                        break
            else:
                status = shell.cmdloop()
        finally:
            shell.close()
    return status


MAX_SCRIPT = 1 << 20


def _script_lines(path: str) -> list[str]:
    """--script FILE: one shell command a line; blank lines and `#` comments skipped."""
    try:
        if os.path.getsize(path) > MAX_SCRIPT:
            raise SpecError([Problem(path, "--script", "more than 1 MiB")])
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(path, "--script", f"cannot read: {getattr(exc, 'strerror', None) or exc}")]) from None
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def cmd_run(args: argparse.Namespace) -> int:
    from .experiment.check import check_experiment  # deferred: start-up time
    from .experiment.load import load_experiment  # deferred: start-up time
    from .experiment.run import run_experiment  # deferred: start-up time

    _check_number("--seed", args.seed, 0, MAX_SEED)
    _check_results_root("--results", args.results)
    exp = load_experiment(args.experiment, check=False)
    if args.seed is not None:
        exp = replace(exp, seed=args.seed)
    check_experiment(exp)  # every file and name it uses, step by step, with the seed that will run
    _check_capture_filters(exp)
    from .report import build_report  # deferred: start-up time (pandas, matplotlib)

    progress = _progress(args.quiet)
    try:
        run_dir, passed = run_experiment(exp, args.results, progress)
    except RunAborted as exc:  # its folder holds what was measured, with the cause as its verdict
        if not args.no_report:
            build_report(exc.run_dir)
        _print_results(exc.run_dir)
        raise
    if not args.no_report:  # `testbed report <run-dir>` builds it later from the same folder
        build_report(run_dir)  # report.md, report.html, figures: composed here, not by the experiment
    _print_results(run_dir)
    return 0 if passed else 1


def _print_results(run_dir: str, name: str = "summary.md", head_only: bool = False) -> None:
    """A results folder's summary on the terminal (`head_only`: up to its first table, which
    stays in the file), then the folder; nothing if the file was never written."""
    try:
        with open(os.path.join(run_dir, name), encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return
    print(text.split("\n|", 1)[0].rstrip() + "\n" if head_only else text)
    print(f"results: {run_dir}", flush=True)


def cmd_explain(args: argparse.Namespace) -> int:
    """Why a flow is allowed or blocked by NetworkPolicy, or which policies select a pod."""
    from .netpol.explain import explain_flow, explain_pod  # deferred: start-up time
    from .netpol.oracle import Flow, decide  # deferred: start-up time
    from .rulepath import render_path, trace_path  # deferred: start-up time

    _, _, plan = _load(args)
    from .plan.v6first import ipv4_plan, is_v6first  # deferred: start-up time

    # unset --family: the cluster's primary family, unless an address in --from/--to says which
    v4_given = any(_is_ipv4(x) for x in (args.source, args.destination))
    v6_default = args.family is None and is_v6first(plan.dual) and not v4_given
    if args.family == "ipv6" or ":" in f"{args.source}{args.destination}" or v6_default:  # issue 15: the IPv6 view
        from .plan.view6 import NotDualStack, ipv6_plan  # deferred: start-up time

        try:
            plan = ipv6_plan(plan)
        except NotDualStack as exc:
            raise UsageError(f"--family ipv6: {exc}") from None
    else:  # an IPv6-first cluster's IPv4 side: its IPv4 Services only
        plan, dropped = ipv4_plan(plan), plan
        if plan.services and dropped.services and plan.services is not dropped.services:
            name = str(args.destination).removeprefix("svc/")
            if (
                str(args.destination).startswith("svc/")
                and not plan.services.find(name)
                and dropped.services.find(name)
            ):
                raise UsageError(f"{args.destination[:80]}: no IPv4 ClusterIP (SingleStack IPv6); use --family ipv6")
    world = plan.world
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


def _is_ipv4(text: str | None) -> bool:
    """An IPv4 address given to --from/--to (explain's family then is IPv4)."""
    import ipaddress  # deferred: start-up time

    try:
        return ipaddress.ip_address(text or "").version == 4
    except ValueError:
        return False


def cmd_conformance(args: argparse.Namespace) -> int:
    from .conformance.run import run_conformance  # deferred: start-up time

    _check_number("--limit", args.limit, 1, 100_000)
    _check_number("--timeout", args.timeout, 0, 30, low_open=True)
    _check_number("--seed", args.seed, 0, MAX_SEED)
    _check_number("--recheck", args.recheck, 0, 486)
    _check_results_root("--results", args.results)
    try:
        run_dir, passed = run_conformance(
            args.topology,
            args.results,
            args.seed,
            args.limit,
            args.timeout,
            _progress(args.quiet),
            tiered=args.tiered,
            recheck=args.recheck,
            family=args.family,
        )
    except RunAborted as exc:
        _print_results(exc.run_dir, "conformance.md", head_only=True)
        raise
    _print_results(run_dir, "conformance.md", head_only=True)
    return 0 if passed else 1


def cmd_bench(args: argparse.Namespace) -> int:
    """The scale and speed benchmarks (issue 7): figures against their targets, with the machine."""
    from .bench.machine import machine_line  # deferred: start-up time
    from .bench.suite import run_bench  # deferred: start-up time
    from .bench.targets import table  # deferred: start-up time

    _check_number("--mininet-hosts", args.mininet_hosts, 0, 10_000)
    _check_results_root("--results", args.results)
    if os.geteuid() != 0:
        raise NotRootError("`testbed bench` needs root: it builds real clusters")
    print(machine_line(), flush=True)
    run_dir, figures, _ = run_bench(args.quick, args.results, _progress(args.quiet), args.mininet_hosts)
    print(table(figures), end="")
    print(f"results: {run_dir}")
    return 0 if all(f.met is not False for f in figures) else 1


def cmd_clean(args: argparse.Namespace) -> int:
    from .emu.cleanup import clean  # deferred: start-up time
    from .emu.runner import Runner  # deferred: start-up time

    if os.geteuid() != 0:
        raise NotRootError("`testbed clean` needs root to remove network namespaces")
    report = clean(Runner(), only_stale=args.stale)
    print(report)
    return 0 if report.remaining.empty() else 1


def cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report  # deferred: start-up time

    md_path, html_path = build_report(args.run_dir)  # a missing or empty folder raises a TestbedError
    print(f"report: {md_path}")
    print(f"report: {html_path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .report.compare import compare_runs  # deferred: start-up time

    print(compare_runs(args.run_a, args.run_b), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="testbed", description="Kubernetes network emulation testbed on Mininet")
    parser.add_argument("--version", action="version", version=f"testbed {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True)

    def cluster_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("topology", help="kind cluster config (+ TestbedConfig), e.g. topologies/three-nodes.yaml")
        p.add_argument(
            "-f",
            "--file",
            action="append",
            help="workload manifests: a file, a folder (its *.yaml, *.yml, *.json) or - for "
            "standard input (repeatable)",
        )
        p.add_argument("-R", "--recursive", action="store_true", help="read the folders given with -f recursively")
        p.add_argument("--seed", type=int, default=0, help="seed for generated names (default 0)")

    p = sub.add_parser("plan", help="print what would be created (no root needed)")
    cluster_args(p)
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(fn=cmd_plan)

    p = sub.add_parser("up", help="build the cluster and open an interactive shell; leaving it tears down")
    cluster_args(p)
    p.add_argument(
        "-c",
        "--command",
        action="append",
        help="run this shell command instead of prompting (repeatable); "
        "stops at the first failing one and exits with its status",
    )
    p.add_argument("--script", help="run the shell commands of FILE (one a line, # comments), as -c does")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(fn=cmd_up)

    p = sub.add_parser("run", help="run an experiment and write results/<run-id>/")
    p.add_argument("experiment")
    p.add_argument("--results", default="results", help="results root folder (default: results)")
    p.add_argument("--seed", type=int, default=None, help="override the experiment's seed")
    p.add_argument(
        "--no-report",
        action="store_true",
        help="write the dataset, plan, run.json and summary only; `testbed report DIR` builds the report later",
    )
    p.add_argument("-q", "--quiet", action="store_true")
    drop_evidence_arg(p)
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser(
        "explain",
        help="why NetworkPolicy allows or blocks a flow (no root needed)",
        epilog="exit status: 0 the flow is allowed (or --pod), 3 it is blocked, 2 bad input, 1 any other error",
    )
    cluster_args(p)
    p.add_argument("--from", dest="source", help="a pod (ns/name or name), node, external host or IP")
    p.add_argument("--to", dest="destination", help="a pod (ns/name or name), node, external host or IP")
    p.add_argument("--port", default="80/TCP", help="PORT[/PROTOCOL] or icmp (default 80/TCP)")
    p.add_argument("--pod", help="summarise the policies that select this pod instead")
    p.add_argument(
        "--family",
        choices=("ipv4", "ipv6"),
        default=None,
        help="a dual-stack cluster's family to explain (default its primary one: ipv4, or ipv6 when its "
        "CIDRs list IPv6 first; an IPv6 address in --from/--to means ipv6)",
    )
    p.add_argument(
        "--trace",
        action="store_true",
        help="the rule path of the flow's first packet on each node it crosses (kube-proxy, "
        "NetworkPolicy, egress); --to may be svc/[NAMESPACE/]NAME",
    )
    p.set_defaults(fn=cmd_explain)

    p = sub.add_parser("conformance", help="the generated NetworkPolicy suite: oracle vs real packets")
    p.add_argument(
        "--topology",
        default=None,
        help="kind cluster config (default: the model's 3-node topology, topologies/three-nodes.yaml)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="run the first N cases (every family is represented)")
    p.add_argument("--timeout", type=float, default=0.5, help="probe timeout in seconds (default 0.5)")
    p.add_argument("--results", default="results")
    p.add_argument(
        "--tiered",
        action="store_true",
        help="the ClusterNetworkPolicy tier cases instead "
        "(Admin, NetworkPolicy, Baseline; and the Network Policy API's own scenarios)",
    )
    p.add_argument(
        "--family",
        choices=("ipv4", "ipv6", "dual"),
        default=None,
        help="the address family of the probes and ipBlocks (default: the topology's, ipv4 unless its "
        "ipFamily is ipv6): ipv6 and dual build the model dual-stack unless --topology says otherwise "
        "(ipBlocks get their IPv6 twins, /128 for /32; dual measures both tables)",
    )
    p.add_argument("-q", "--quiet", action="store_true")
    drop_evidence_arg(p)
    p.add_argument(
        "--recheck",
        type=int,
        default=0,
        metavar="N",
        help="measure N drop-logged probes of every step again by timeout alone and count disagreements",
    )
    p.set_defaults(fn=cmd_conformance)

    p = sub.add_parser("bench", help="scale and speed benchmarks against the targets (needs root)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="3-node build, truth table, 100-pod all-pairs, 30 conformance cases (about a minute)",
    )
    p.add_argument("--mininet-hosts", type=int, default=1000, help="plain Mininet hosts for the ratio (full run)")
    p.add_argument("--results", default="results")
    p.add_argument("-q", "--quiet", action="store_true")
    drop_evidence_arg(p)
    p.set_defaults(fn=cmd_bench)

    p = sub.add_parser("clean", help="remove every namespace and process the testbed left, and only those")
    p.add_argument(
        "--stale",
        action="store_true",
        help="only instances whose owner process is gone (dead, "
        "a zombie, or its pid reused); safe while other instances run",
    )
    p.set_defaults(fn=cmd_clean)

    p = sub.add_parser("report", help="rebuild report.md and report.html of a results folder from its dataset")
    p.add_argument("run_dir", metavar="run-dir", help="a results folder, e.g. results/<run-id>")
    p.set_defaults(fn=cmd_report)

    p = sub.add_parser("compare", help="show what changed between two runs (Markdown)")
    p.add_argument("run_a", metavar="run-a", help="the earlier results folder")
    p.add_argument("run_b", metavar="run-b", help="the later results folder")
    p.set_defaults(fn=cmd_compare)
    return parser


def drop_evidence_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-drop-evidence",
        action="store_true",
        help="blocked probes wait for their timeout instead of ending when a node logs their drop "
        "(same as TESTBED_DROP_EVIDENCE=0)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    evidence_before = os.environ.get("TESTBED_DROP_EVIDENCE")
    if getattr(args, "no_drop_evidence", False):
        os.environ["TESTBED_DROP_EVIDENCE"] = "0"  # traffic/droplog.py reads it
    # SIGINT, SIGTERM and SIGHUP: the first one becomes an exception so that every `finally`
    # (teardown) runs; later ones, and any during a teardown, are noted and not obeyed.
    previous = signals.install()
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
    except BrokenPipeError:
        return _broken_pipe()
    finally:
        # The command line's process is about to exit with its own code: a late signal must not
        # turn it into "killed by SIGINT" (Python restores the default action at exit; only
        # "ignore" survives). A caller in the same process (tests) gets its handlers back.
        signals.uninstall(previous, exiting=argv is None)
        if evidence_before is None:  # a caller in the same process (tests) gets its setting back
            os.environ.pop("TESTBED_DROP_EVIDENCE", None)
        else:
            os.environ["TESTBED_DROP_EVIDENCE"] = evidence_before


def _broken_pipe() -> int:
    """The reader of our output went away (`testbed plan -o json | head`): stop quietly, as Unix
    tools do, with the status of a process ended by SIGPIPE. stdout is pointed at /dev/null so
    that the interpreter's final flush does not fail once more."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
