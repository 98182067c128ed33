"""Benchmark: the four routing modes side by side, on one L2 segment and across two racks.

    sudo .venv/bin/python benchmarks/routing_modes.py [--rounds 3] [--iperf 1] [--dual]

For each topologies/routing-<underlay>-<mode>.yaml with manifests/routing-echo.yaml: build
time (and BGP convergence), the pod-to-pod all-pairs matrix (TCP, UDP, SCTP: connected /
total, NAT-free), median TCP connect latency, iperf3 goodput from `client` to a pod on another
node of its rack and in the other rack, the largest ping that crosses with DF set, and
teardown time. Prints one Markdown table. Never a timed assertion: figures for the report.

--dual: instead, each mode on one segment as an IPv4 cluster and as a dual-stack one (the same
topology with `ipFamily: dual`), built alternately: build time and BGP convergence of each, the
dual cluster's pod-to-pod matrix in each family (TCP and UDP), median TCP connect latency
across nodes per family, and the largest IPv6 ping that crosses with DF set (vxlan: flannel-v6.1
is 1430 bytes while pods keep 1450).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from testbed.emu.cluster import EmulatedCluster  # noqa: E402
from testbed.experiment.expand import expand  # noqa: E402
from testbed.experiment.model import Endpoints, PodSelection, ProbeGroup  # noqa: E402
from testbed.experiment.run import probe_rows  # noqa: E402
from testbed.plan.build import plan_cluster  # noqa: E402
from testbed.plan.network import pod_mtu  # noqa: E402
from testbed.spec.selectors import LabelSelector  # noqa: E402
from testbed.spec.topology import load_topology  # noqa: E402
from testbed.spec.workloads import load_manifests  # noqa: E402
from testbed.traffic.throughput import measure  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = ("host-gw", "cloud-routes", "vxlan", "bgp")


def df_ping(cluster, src_key: str, dst: str, size: int) -> bool:
    done = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            cluster.netns(src_key),
            "ping",
            "-6" if ":" in dst else "-4",
            "-n",
            "-q",
            "-c1",
            "-W1",
            "-M",
            "do",
            "-s",
            str(size),
            dst,
        ],
        capture_output=True,
    )
    return done.returncode == 0


def largest_df_ping(cluster, src_key: str, dst: str, mtu: int) -> str:
    """With DF set, MTU - 28 bytes of ICMP payload must cross and one more must not (IPv6:
    MTU - 48, its header being 20 bytes longer)."""
    fits = mtu - (48 if ":" in dst else 28)
    ok, over = df_ping(cluster, src_key, dst, fits), df_ping(cluster, src_key, dst, fits + 1)
    if ok and not over:
        return str(fits)
    return f"{fits}: {'ok' if ok else 'lost'}, {fits + 1}: {'ok' if over else 'lost'}"


def one(underlay: str, mode: str, rounds: int, seconds: float) -> dict:
    topo = os.path.join(ROOT, "topologies", f"routing-{underlay}-{mode}.yaml")
    plan = plan_cluster(load_topology(topo), load_manifests([os.path.join(ROOT, "manifests", "routing-echo.yaml")]), 1)
    echo = PodSelection(selector=LabelSelector.of({"app": "echo"}))
    builds, bgp, teardowns, latencies = [], [], [], []
    out: dict = {"underlay": underlay, "mode": mode, "warnings": len(plan.warnings)}
    for i in range(rounds):
        with EmulatedCluster(plan) as c:
            builds.append(c.timings["build"])
            if "bgp" in c.timings:
                bgp.append(c.timings["bgp"])
            if i == 0:
                rows = probe_rows(
                    c,
                    "bench",
                    "matrix",
                    expand(c.plan, ProbeGroup("p2p", Endpoints(pods=echo), Endpoints(pods=echo), timeout=1.0)),
                )
                out["matrix"] = f"{sum(r['outcome'] == 'connected' for r in rows)}/{len(rows)}"
                out["nat_free"] = all(r["nat_free"] is not False for r in rows)
                cross = [r for r in rows if r["communication"] == "pod-to-pod (across nodes)"]
                out["cross_node_failures"] = sorted({r["outcome"] for r in cross if r["outcome"] != "connected"})
                client, near, far = (c.plan.find_pod(n) for n in ("client", "server-rack1", "server-rack2"))
                for label, dst in (("iperf_same_rack", near), ("iperf_cross_rack", far)):
                    res = measure(c.netns(client.key), c.netns(dst.key), dst.ip, seconds)
                    out[label] = f"{res.mbps:.0f}" if res.mbps else res.outcome
                mtu = pod_mtu(c.plan)
                out["df_max_payload"] = largest_df_ping(c, client.key, far.ip, mtu)
            for _ in range(20):  # 8 connects at a time: latency, not queueing in the prober
                lat = probe_rows(
                    c,
                    "bench",
                    "latency",
                    expand(
                        c.plan,
                        ProbeGroup(
                            "lat",
                            Endpoints(pods=PodSelection(names=("client",))),
                            Endpoints(pods=echo),
                            protocols=("TCP",),
                            timeout=1.0,
                        ),
                    ),
                )
                latencies += [
                    r["latency_ms"]
                    for r in lat
                    if r["outcome"] == "connected" and r["communication"] == "pod-to-pod (across nodes)"
                ]
        teardowns.append(c.timings["teardown"])
    out["build_s"] = statistics.median(builds)
    out["bgp_s"] = statistics.median(bgp) if bgp else None
    out["teardown_s"] = statistics.median(teardowns)
    out["connect_ms"] = statistics.median(latencies) if latencies else None
    return out


def dual_plan(mode: str):
    """routing-l2-<mode>.yaml as it is and with ipFamily dual (kind's IPv6 defaults)."""
    topo = os.path.join(ROOT, "topologies", f"routing-l2-{mode}.yaml")
    manifests = load_manifests([os.path.join(ROOT, "manifests", "routing-echo.yaml")])
    with open(topo, encoding="utf-8") as handle:
        text = handle.read().replace("networking:\n", "networking:\n  ipFamily: dual\n", 1)
    with tempfile.TemporaryDirectory(prefix="testbed-bench-") as tmp:
        path = os.path.join(tmp, f"dual-{mode}.yaml")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return plan_cluster(load_topology(topo), manifests, 1), plan_cluster(load_topology(path), manifests, 1)


def one_dual(mode: str, rounds: int) -> dict:
    plan4, plan = dual_plan(mode)
    echo = PodSelection(selector=LabelSelector.of({"app": "echo"}))
    out: dict = {"mode": mode}
    times: dict[str, list[float]] = {"build4": [], "build6": [], "bgp4": [], "bgp6": []}
    latency: dict[str, list[float]] = {"IPv4": [], "IPv6": []}
    for i in range(rounds):
        with EmulatedCluster(plan4) as c:  # alternately: the machine's load touches both alike
            times["build4"].append(c.timings["build"])
            times["bgp4"] += [c.timings["bgp"]] if "bgp" in c.timings else []
        with EmulatedCluster(plan) as c:
            times["build6"].append(c.timings["build"])
            times["bgp6"] += [c.timings["bgp"]] if "bgp" in c.timings else []
            for family in ("IPv4", "IPv6"):
                if i == 0:
                    group = ProbeGroup(
                        "p2p", Endpoints(pods=echo), Endpoints(pods=echo), protocols=("TCP", "UDP"), family=family
                    )
                    rows = probe_rows(c, "bench", "matrix", expand(c.plan, group))
                    out[f"matrix_{family}"] = f"{sum(r['outcome'] == 'connected' for r in rows)}/{len(rows)}"
                    out[f"nat_free_{family}"] = all(r["nat_free"] is not False for r in rows)
                for _ in range(10):
                    client = Endpoints(pods=PodSelection(names=("client",)))
                    group = ProbeGroup("lat", client, Endpoints(pods=echo), protocols=("TCP",), family=family)
                    lat = probe_rows(c, "bench", "latency", expand(c.plan, group))
                    latency[family] += [
                        r["latency_ms"]
                        for r in lat
                        if r["outcome"] == "connected" and r["communication"] == "pod-to-pod (across nodes)"
                    ]
            if i == 0:
                client, far = c.plan.find_pod("client"), c.plan.find_pod("server-rack2")
                # the path's IPv6 MTU: the pods', or flannel-v6.1's where it is smaller (vxlan)
                mtu6 = min([pod_mtu(c.plan)] + [v.mtu for v in c.plan.dual.vteps])
                out["df6"] = largest_df_ping(c, client.key, c.plan.dual.pods[far.key], mtu6)
    for key, values in times.items():
        out[key] = statistics.median(values) if values else None
    for family, values in latency.items():
        out[f"connect_{family}"] = statistics.median(values) if values else None
    return out


def main_dual(rounds: int) -> None:
    print(
        "| mode | build s IPv4 cluster | build s dual | BGP s IPv4 / dual | pod-to-pod IPv4 | pod-to-pod IPv6 "
        "| NAT-free | TCP connect ms IPv4 / IPv6 (cross-node, median) | largest IPv6 DF ping payload (one more: lost) |"
    )
    print("|" + "---|" * 9)
    for mode in MODES:
        r = one_dual(mode, rounds)
        bgp = f"{r['bgp4']:.2f} / {r['bgp6']:.2f}" if r["bgp4"] is not None else "—"
        nat = "yes" if r["nat_free_IPv4"] and r["nat_free_IPv6"] else "NO"
        print(
            f"| {mode} | {r['build4']:.2f} | {r['build6']:.2f} | {bgp} | {r['matrix_IPv4']} | {r['matrix_IPv6']} "
            f"| {nat} | {r['connect_IPv4']:.3f} / {r['connect_IPv6']:.3f} | {r['df6']} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3, help="builds per mode (median build and teardown time)")
    parser.add_argument("--iperf", type=float, default=1.0, help="seconds per iperf3 measurement")
    parser.add_argument("--dual", action="store_true", help="each mode as an IPv4 and a dual-stack cluster")
    args = parser.parse_args()
    if args.dual:
        main_dual(args.rounds)
        return
    print(
        "| underlay | mode | plan warnings | build s (median) | of which BGP s | teardown s | pod-to-pod "
        "connected | NAT-free | cross-node failures | TCP connect ms (cross-node, median) | iperf3 Mb/s same "
        "rack | iperf3 Mb/s cross rack | largest DF ping payload |"
    )
    print("|" + "---|" * 13)
    for underlay in ("l2", "racks"):
        for mode in MODES:
            r = one(underlay, mode, args.rounds, args.iperf)
            bgp = f"{r['bgp_s']:.2f}" if r["bgp_s"] is not None else "—"
            lat = f"{r['connect_ms']:.3f}" if r["connect_ms"] is not None else "—"
            print(
                f"| {underlay} | {mode} | {r['warnings']} | {r['build_s']:.2f} | {bgp} | {r['teardown_s']:.2f} | "
                f"{r['matrix']} | {'yes' if r['nat_free'] else 'NO'} | {', '.join(r['cross_node_failures']) or '—'} "
                f"| {lat} | {r['iperf_same_rack']} | {r['iperf_cross_rack']} | {r['df_max_payload']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
