"""Packet capture at chosen points of the emulation, saved as pcap (tcpdump from Debian).

Where it sits: experiment steps start captures before their probes and stop them after; the
files land in results/<run>/pcap/. Each capture is one `tcpdump` inside a node, pod or host
namespace, bounded in packets (-c) and stopped by us at the end of the step, so it never
outlives the run; its PID goes in the ledger so teardown and `clean` catch it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass


@dataclass
class Capture:
    netns: str          # namespace name (/run/netns/<name>)
    interface: str      # e.g. eth0, cni0, any
    path: str           # pcap file to write
    bpf: str = ""       # capture filter, e.g. "tcp port 80"
    max_packets: int = 10000
    proc: subprocess.Popen | None = None

    def argv(self) -> list[str]:
        argv = ["ip", "netns", "exec", self.netns, "tcpdump", "-i", self.interface, "-n", "-U", "-w", self.path,
                "-c", str(self.max_packets), "--immediate-mode"]
        return argv + (self.bpf.split() if self.bpf else [])

    def start(self, timeout: float = 3.0) -> int:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        # tcpdump creates the file once it is listening; wait for it so no probe is missed.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not os.path.exists(self.path):
            if self.proc.poll() is not None:
                raise RuntimeError(f"tcpdump in {self.netns} on {self.interface} failed: "
                                   f"{(self.proc.stderr.read() if self.proc.stderr else '').strip()}")
            time.sleep(0.01)
        time.sleep(0.05)  # the file exists just before the socket is attached
        return self.proc.pid

    def stop(self) -> int:
        """Stop and return the number of packets written (tcpdump's own count)."""
        if self.proc is None:
            return 0
        proc, self.proc = self.proc, None
        time.sleep(0.05)  # let the last replies land
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        for line in (err or "").splitlines():
            if "packets captured" in line:
                return int(line.split()[0])
        return 0
