"""Campaign: issue 11's "Done when" for concurrency, signals and host-wide state.

    sudo .venv/bin/python benchmarks/concurrency_campaign.py [--pairs 50] [--points 20] [--budget 1800]

1. `--pairs` pairs of `testbed run experiments/quickstart.yaml` started within a few ms of
   each other: both must pass, with distinct results folders.
2. A double signal at `--points` points of a quickstart run (a progress line, then a delay):
   a first SIGINT/SIGTERM/SIGHUP to the run's process group, then another every 10 ms until it
   exits. Nothing of that instance may be left (namespaces, processes, links, /etc/netns,
   state folder), the exit code must be 130 and no line may claim a teardown it did not do.
3. The neighbour-table sysctls must read the same before the first run and after the last;
   two instances that raise them (one inside the other's life) must find them raised while
   needed, never lowered under the one still running, and restored after both.

Prints one Markdown table and writes benchmarks/results/concurrency-campaign.json. Stops
starting new runs when `--budget` seconds are spent (and says how many it ran). Other
instances may run on the machine meanwhile: only this campaign's own tags are judged.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICKSTART = os.path.join(ROOT, "experiments", "quickstart.yaml")
TOPO = os.path.join(ROOT, "topologies", "three-nodes.yaml")
TESTBED = [sys.executable, "-m", "testbed"]
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
SYSCTLS = [f"/proc/sys/net/ipv4/neigh/default/gc_thresh{n}" for n in (1, 2, 3)]
LINES = [
    "building",
    "creating",
    "starting the agent",
    "programming Services",
    "cluster ready",
    "probes",
    "tearing down",
]
DELAYS = [0.0, 0.05, 0.15]
PAIRS_OF_SIGNALS = [
    (signal.SIGINT, signal.SIGINT),
    (signal.SIGINT, signal.SIGTERM),
    (signal.SIGTERM, signal.SIGINT),
    (signal.SIGHUP, signal.SIGTERM),
]


def read_sysctls() -> list[int]:
    return [int(open(p).read()) for p in SYSCTLS]


# Waits until the given instant, says when it got there, then becomes `testbed run`: two of
# them started with the same instant start the testbed within a millisecond or so of each
# other, however slowly the machine forks them.
AT = (
    "import os, sys, time\nt = float(sys.argv[1])\ntime.sleep(max(0.0, t - time.time()))\n"
    "print(f'started at {time.time():.6f}', file=sys.stderr, flush=True)\nos.execv(sys.argv[2], sys.argv[2:])"
)


def launch(results: str, at: float | None = None) -> subprocess.Popen:
    argv = TESTBED + ["run", QUICKSTART, "--results", results]
    if at is not None:
        argv = [sys.executable, "-c", AT, f"{at:.6f}"] + argv
    return subprocess.Popen(
        argv, env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def tag_of(pid: int) -> str | None:
    """The instance tag whose ledger names `pid` as its owner."""
    for path in glob.glob("/run/testbed/*/ledger.json"):
        try:
            if json.load(open(path))["owner"] == pid:
                return os.path.basename(os.path.dirname(path))
        except (OSError, ValueError, KeyError):
            continue
    return None


def leftovers(tag: str) -> list[str]:
    """Everything of instance `tag` still on the machine."""
    out = [
        n
        for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        if n.startswith(f"tb-{tag}-")
    ]
    out += [
        line.split(":")[1].strip()
        for line in subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout.splitlines()
        if line.split(":")[1].strip().startswith(f"tb{tag}")
    ]
    out += glob.glob(f"/etc/netns/tb-{tag}-*") + glob.glob(f"/run/testbed/{tag}")
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            cmd = open(cmdline, "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if f"mininet:tb{tag}" in cmd or f"--tag {tag}" in cmd or f"/run/testbed/{tag}/" in cmd:
            out.append(f"process {cmd.strip()[:80]}")
    return out


def one_pair(results: str) -> dict:
    at = time.time() + 0.3
    a, b = launch(results, at), launch(results, at)
    runs, starts = [], []
    for proc in (a, b):
        out, err = proc.communicate(timeout=300)
        starts += [float(line.split()[-1]) for line in err.splitlines()[:1] if line.startswith("started at ")]
        folder = out.strip().splitlines()[-1].removeprefix("results: ") if out.strip() else ""
        runs.append(
            {
                "code": proc.returncode,
                "folder": folder,
                "traceback": "Traceback" in err,
                "error": err.strip().splitlines()[-1][:200] if proc.returncode and err.strip() else "",
            }
        )
    gap_ms = abs(starts[0] - starts[1]) * 1000 if len(starts) == 2 else float("nan")
    ok = (
        all(r["code"] == 0 and r["folder"] and not r["traceback"] for r in runs)
        and runs[0]["folder"] != runs[1]["folder"]
    )
    return {"gap_ms": round(gap_ms, 2), "runs": runs, "ok": ok}


def one_point(results: str, line: str, delay: float, first: int, then: int) -> dict:
    proc = launch(results)
    assert proc.stderr is not None
    seen, tag = [], None
    for text in proc.stderr:
        seen.append(text)
        tag = tag or tag_of(proc.pid)
        if line in text:
            break
    time.sleep(delay)
    tag = tag or tag_of(proc.pid)
    sent = 0
    t_first = time.monotonic()
    try:
        os.killpg(proc.pid, first)
        sent = 1
    except ProcessLookupError:
        pass

    def storm() -> None:
        nonlocal sent
        while proc.poll() is None:
            try:
                os.killpg(proc.pid, then)
                sent += 1
            except ProcessLookupError:
                return
            time.sleep(0.01)

    thread = threading.Thread(target=storm)
    thread.start()
    rest = proc.stderr.read()
    proc.wait(timeout=300)
    after = time.monotonic() - t_first  # how long the run lived after the first signal
    thread.join()
    err = "".join(seen) + rest
    left = leftovers(tag) if tag else []
    ok = (
        not left
        and "Traceback" not in err
        and "incomplete" not in err
        and (proc.returncode == 130 or (proc.returncode == 0 and line == "tearing down"))
    )
    return {
        "point": f"{line} +{delay:.2f} s",
        "signals": f"{signal.Signals(first).name} then {signal.Signals(then).name} x{max(0, sent - 1)}",
        "code": proc.returncode,
        "tag": tag,
        "noted": err.count("signal noted"),
        "left": left,
        "ok": ok,
        "after_s": after,
        "stderr": "\n".join(t for t in err.splitlines() if "signal noted" not in t)[-4000:],
    }


def _deployment(path: str, replicas: int) -> str:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: many, namespace: default}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: many}}}}
  template:
    metadata: {{labels: {{app: many}}}}
    spec: {{containers: [{{name: c, image: x, ports: [{{containerPort: 80}}]}}]}}
""")
    return path


def _plan_raising(folder: str, above: list[int], name: str):
    """The smallest plan (in steps of 20 replicas) whose thresholds all exceed `above`."""
    from testbed.emu.limits import targets
    from testbed.plan.build import plan_cluster
    from testbed.spec.topology import load_topology
    from testbed.spec.workloads import load_manifests

    for replicas in range(20, 2001, 20):
        plan = plan_cluster(load_topology(TOPO), load_manifests([_deployment(os.path.join(folder, name), replicas)]))
        want = targets(plan)
        if all(want[f"gc_thresh{n}"] > v for n, v in zip((1, 2, 3), above)):
            return plan, [want[f"gc_thresh{n}"] for n in (1, 2, 3)]
    raise AssertionError("no plan big enough")


def nested_sysctls(folder: str) -> dict[str, list[int]]:
    """Two instances that raise the thresholds, the second (bigger) inside the first's life:
    the values before, while each is needed, after the bigger one ends, after both."""
    sys.path.insert(0, ROOT)
    from testbed.emu.cluster import EmulatedCluster

    seen = {"before": read_sysctls()}
    small, seen["want_small"] = _plan_raising(folder, seen["before"], "small.yaml")
    big, seen["want_big"] = _plan_raising(folder, seen["want_small"], "big.yaml")
    with EmulatedCluster(small):
        seen["during_small"] = read_sysctls()
        with EmulatedCluster(big):
            seen["during_big"] = read_sysctls()
        seen["after_big"] = read_sysctls()
    seen["after"] = read_sysctls()
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--budget", type=float, default=1800.0, help="seconds; no new run starts after")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root: it runs real clusters", file=sys.stderr)
        return 2
    start = time.monotonic()
    before = read_sysctls()
    pairs, points = [], []
    with tempfile.TemporaryDirectory(prefix="tb-campaign-") as results:
        for i in range(args.pairs):
            if time.monotonic() - start > args.budget:
                break
            pairs.append(one_pair(results))
            print(
                f"pair {i + 1}: {'ok' if pairs[-1]['ok'] else 'FAILED'} (started {pairs[-1]['gap_ms']} ms apart)",
                file=sys.stderr,
                flush=True,
            )
        plan = [(line, delay) for delay in DELAYS for line in LINES][: args.points]
        for i, (line, delay) in enumerate(plan):
            if time.monotonic() - start > args.budget:
                break
            first, then = PAIRS_OF_SIGNALS[i % len(PAIRS_OF_SIGNALS)]
            points.append(one_point(results, line, delay, first, then))
            p = points[-1]
            print(
                f"point {p['point']}: {'ok' if p['ok'] else 'FAILED'} (exit {p['code']}, {p['signals']}, "
                f"{p['noted']} noted, left {len(p['left'])})",
                file=sys.stderr,
                flush=True,
            )
        folders = [r["folder"] for p in pairs for r in p["runs"]]
        raised = nested_sysctls(results)
    after = read_sysctls()
    summary = {
        "pairs": len(pairs),
        "pairs_ok": sum(p["ok"] for p in pairs),
        "distinct_folders": len(set(folders)),
        "runs": len(folders),
        "max_gap_ms": max((p["gap_ms"] for p in pairs), default=None),
        "points": len(points),
        "points_ok": sum(p["ok"] for p in points),
        "points_left_something": sum(bool(p["left"]) for p in points),
        "sysctls_before": before,
        "sysctls_after": after,
        "sysctls_same": before == after,
        "sysctls_nested": raised,
        "seconds": round(time.monotonic() - start, 1),
    }
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "benchmarks", "results", "concurrency-campaign.json"), "w") as handle:
        json.dump({"summary": summary, "pairs": pairs, "points": points}, handle, indent=2)
    print("| what | result |\n|---|---|")
    print(
        f"| concurrent quickstart pairs (started ≤ {summary['max_gap_ms']} ms apart) | "
        f"{summary['pairs_ok']}/{summary['pairs']} pairs passed, {summary['distinct_folders']} distinct "
        f"results folders for {summary['runs']} runs |"
    )
    print(
        f"| double signal at points of a run | {summary['points_ok']}/{summary['points']} clean "
        f"(exit 130, nothing left, no false claim); {summary['points_left_something']} left something |"
    )
    print(
        f"| neighbour sysctls gc_thresh1/2/3 | before {before}, after {after}: "
        f"{'same' if summary['sysctls_same'] else 'CHANGED'} |"
    )
    print(
        f"| two instances raising them, one inside the other's life | {raised['before']} -> "
        f"{raised['during_small']} -> {raised['during_big']} -> {raised['after_big']} (the first still "
        f"needs these) -> {raised['after']} |"
    )
    print(f"| time | {summary['seconds']} s |")
    nested_ok = (
        raised["during_small"] == raised["want_small"]
        and raised["during_big"] == raised["want_big"]
        and raised["after_big"] == raised["want_small"]
        and raised["after"] == raised["before"]
    )
    ok = (
        summary["pairs_ok"] == summary["pairs"]
        and summary["points_ok"] == summary["points"]
        and summary["sysctls_same"]
        and summary["distinct_folders"] == summary["runs"]
        and nested_ok
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
