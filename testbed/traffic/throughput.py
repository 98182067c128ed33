"""Throughput per path with iperf3 (Debian's), bounded in time, one path at a time.

Where it sits: experiment probe groups with `method: iperf3` measure each (source, pod)
path in turn — concurrently they would share this VM's two cores and measure each other.
Each measurement is one `iperf3 -s -1` Daemon (serves one test, then exits) in the
destination's namespace, ready once its socket listens, and one `iperf3 -c ... -t <seconds>
-J` run through the runner in the source's; both are bounded in time, so a measurement never
outlives its step.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass

from ..emu.daemon import Daemon, listening
from ..emu.runner import Runner
from ..errors import DaemonError, KernelError


@dataclass(frozen=True)
class ThroughputResult:
    outcome: str  # connected | refused | timeout | error
    mbps: float | None  # receiver-side goodput
    retransmits: int | None
    rtt_ms: float | None  # mean TCP RTT the sender measured
    error: str = ""
    sport: int = 0  # the client's source port (its first stream's), as iperf3 reported it


def measure(
    src_netns: str,
    dst_netns: str,
    dst_ip: str,
    seconds: float = 1.0,
    port: int = 5201,
    protocol: str = "TCP",
    runner: Runner | None = None,
) -> ThroughputResult:
    runner = runner or Runner()
    with tempfile.TemporaryDirectory(prefix="testbed-iperf3-") as tmp:
        # Ready when it listens, seen in /proc/<pid>/net/tcp: a probe connection would use up its one test.
        server = Daemon(
            f"iperf3 server in {dst_netns}",
            ["iperf3", "-s", "-1", "-p", str(port), "-B", dst_ip],
            os.path.join(tmp, "server.log"),
            netns=dst_netns,
            # an IPv6 address (a dual-stack cluster's, issue 15) listens in the tcp6 table
            ready=lambda d: d.pid is not None and listening(d.pid, port, "tcp6" if ":" in dst_ip else "tcp"),
            ready_timeout=3.0,
            grace=0.5,
        )
        try:
            try:
                server.start(runner)
            except DaemonError as exc:
                return ThroughputResult("error", None, None, None, str(exc)[:200])
            argv = [
                "ip",
                "netns",
                "exec",
                src_netns,
                "iperf3",
                "-c",
                dst_ip,
                "-p",
                str(port),
                "-t",
                str(seconds),
                "-J",
                "--connect-timeout",
                "1000",
            ] + (["-u", "-b", "1G"] if protocol == "UDP" else [])
            try:
                out = runner.run(argv, check=False, timeout=seconds + 5)
            except KernelError as exc:  # rc -1: it overran its time; else e.g. iperf3 is not installed
                return ThroughputResult(
                    "timeout" if exc.rc == -1 else "error",
                    None,
                    None,
                    None,
                    "iperf3 client overran" if exc.rc == -1 else str(exc)[:200],
                )
        finally:
            server.stop()
    return parse(out.out, out.err)


def parse(stdout: str, stderr: str = "") -> ThroughputResult:
    """iperf3 -J output -> a result; an unreadable answer is an error row, not an exception."""
    try:
        data = json.loads(stdout)
    except ValueError:
        return ThroughputResult("error", None, None, None, (stderr or stdout).strip()[:200])
    if "error" in data:
        err = str(data["error"])
        outcome = "refused" if "refused" in err else "timeout" if "timed out" in err else "error"
        return ThroughputResult(outcome, None, None, None, err)
    end = data.get("end", {})
    received = end.get("sum_received") or end.get("sum") or {}
    sent = end.get("sum_sent") or {}
    streams = end.get("streams") or [{}]
    rtt = streams[0].get("sender", {}).get("mean_rtt")
    connected = (data.get("start", {}).get("connected") or [{}])[0]
    return ThroughputResult(
        "connected",
        received.get("bits_per_second", 0) / 1e6,
        sent.get("retransmits"),
        rtt / 1000 if rtt else None,
        sport=int(connected.get("local_port", 0) or 0),
    )
