"""Packet capture at chosen points of the emulation, saved as pcap (tcpdump from Debian).

Where it sits: experiment steps start captures before their probes and stop them after; the
files land in results/<run>/pcap/. Each capture is one `tcpdump` Daemon (emu/daemon.py)
inside a node, pod or host namespace, bounded in packets (-c) and stopped by us at the end of
the step, so it never outlives the run; its PID goes in the ledger so teardown and `clean`
catch it. tcpdump's stderr goes to a log file: a filter or interface it rejects at run time
is a CaptureError quoting tcpdump's own words, and the count it prints at exit is read there.
"""

from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import dataclass, field

from ..emu.daemon import Daemon
from ..emu.runner import Runner
from ..errors import CaptureError, DaemonError


@dataclass
class Capture:
    netns: str  # namespace name (/run/netns/<name>)
    interface: str  # e.g. eth0, cni0, any
    path: str  # pcap file to write
    bpf: str = ""  # capture filter, e.g. "tcp port 80"
    max_packets: int = 10000
    log: str = ""  # tcpdump's stderr; default: beside the pcap file, removed once read
    at: str = ""  # for messages: the pod, node or host the user named (default: the namespace)
    daemon: Daemon | None = field(default=None, repr=False)

    def argv(self) -> list[str]:
        """tcpdump's command line (the Daemon runs it in `netns`)."""
        argv = [
            "tcpdump",
            "-i",
            self.interface,
            "-n",
            "-U",
            "-w",
            self.path,
            "-c",
            str(self.max_packets),
            "--immediate-mode",
        ]
        return argv + (self.bpf.split() if self.bpf else [])

    def _log(self) -> str:
        return self.log or self.path + ".log"

    def start(self, runner: Runner | None = None, timeout: float = 3.0) -> int:
        """Start tcpdump; returns its pid once it is capturing (it creates the file then)."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        where = self.at or self.netns
        self.daemon = Daemon(
            f"tcpdump at {where} on {self.interface}",
            self.argv(),
            self._log(),
            netns=self.netns,
            ready=lambda _d: os.path.exists(self.path),
            ready_timeout=timeout,
            stop_signal=signal.SIGINT,
        )
        try:
            pid = self.daemon.start(runner or Runner())
        except DaemonError as exc:
            self.daemon.stop()
            said = self._said()
            self._drop_log(self.daemon)
            self.daemon = None
            raise CaptureError(
                f"capture at {where} on {self.interface}"
                f"{f' with filter {self.bpf[:80]!r}' if self.bpf else ''} failed: "
                f"{said or exc}"
            ) from None
        time.sleep(0.05)  # the file exists just before the socket is attached
        return pid

    def _said(self) -> str:
        """tcpdump's error, e.g. "tcpdump: eth9: No such device exists (...)"."""
        assert self.daemon is not None
        lines = [line for line in self.daemon.log_tail(5).split(" | ") if line.startswith("tcpdump:")]
        return lines[-1] if lines else ""

    def stop(self) -> int:
        """Stop and return the number of packets written (tcpdump's own count)."""
        if self.daemon is None or self.daemon.proc is None:
            return 0
        daemon, self.daemon = self.daemon, None
        time.sleep(0.05)  # let the last replies land
        daemon.stop()
        match = re.search(r"(\d+) packets? captured", daemon.log_tail(10))
        self._drop_log(daemon)
        return int(match.group(1)) if match else 0

    def _drop_log(self, daemon: Daemon) -> None:
        if not self.log:  # our own temporary log beside the pcap file
            try:
                os.unlink(daemon.log)
            except OSError:
                pass
