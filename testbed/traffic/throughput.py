"""Throughput per path with iperf3 (Debian's), bounded in time, one path at a time.

Where it sits: experiment probe groups with `method: iperf3` measure each (source, pod)
path in turn — concurrently they would share this VM's two cores and measure each other.
Each measurement is one `iperf3 -s -1` (serves one test, then exits) in the destination's
namespace and one `iperf3 -c ... -t <seconds> -J` in the source's; both are killed if they
overrun, so a measurement never outlives its step.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class ThroughputResult:
    outcome: str                 # connected | refused | timeout | error
    mbps: float | None           # receiver-side goodput
    retransmits: int | None
    rtt_ms: float | None         # mean TCP RTT the sender measured
    error: str = ""


def measure(src_netns: str, dst_netns: str, dst_ip: str, seconds: float = 1.0, port: int = 5201,
            protocol: str = "TCP") -> ThroughputResult:
    server = subprocess.Popen(["ip", "netns", "exec", dst_netns, "iperf3", "-s", "-1", "-p", str(port), "-B", dst_ip],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        time.sleep(0.15)  # the server binds before the client connects
        argv = ["ip", "netns", "exec", src_netns, "iperf3", "-c", dst_ip, "-p", str(port), "-t", str(seconds),
                "-J", "--connect-timeout", "1000"] + (["-u", "-b", "1G"] if protocol == "UDP" else [])
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 5)
        except subprocess.TimeoutExpired:
            return ThroughputResult("timeout", None, None, None, "iperf3 client overran")
        try:
            data = json.loads(out.stdout)
        except ValueError:
            return ThroughputResult("error", None, None, None, (out.stderr or out.stdout).strip()[:200])
        if "error" in data:
            err = str(data["error"])
            outcome = "refused" if "refused" in err else "timeout" if "timed out" in err else "error"
            return ThroughputResult(outcome, None, None, None, err)
        end = data.get("end", {})
        received = end.get("sum_received") or end.get("sum") or {}
        sent = end.get("sum_sent") or {}
        streams = end.get("streams") or [{}]
        rtt = streams[0].get("sender", {}).get("mean_rtt")
        return ThroughputResult("connected", received.get("bits_per_second", 0) / 1e6, sent.get("retransmits"),
                                rtt / 1000 if rtt else None)
    finally:
        if server.poll() is None:
            server.kill()
        server.communicate()
