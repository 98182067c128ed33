"""Start, reload and stop the agent: one process serving every pod's ports (emu/).

The agent (testbed/agent) enters each pod's namespace to open its sockets, so one
interpreter serves 1,000 pods. We keep a pipe on its stdin: if the testbed dies, even by
kill -9, the agent sees EOF and exits, so it never outlives its cluster.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import Sequence

from ..errors import TestbedError
from ..plan.model import PodPlan
from .ledger import Ledger, netns_name
from .runner import stop_processes
from .pods import NETNS_DIR


def agent_config(pods: Sequence[PodPlan], tag: str, externals: Sequence = ()) -> dict:
    """Every pod, and every external host that declares ports (e.g. an outside web server)."""
    hosts = [{"netns": f"{NETNS_DIR}/{netns_name(tag, x.key)}", "pod": x.name, "namespace": "external",
              "node": "outside" if x.outside else "underlay",
              "ip": x.ip, "ports": [{"container": x.name, "name": q.name, "port": q.port, "protocol": q.protocol}
                                    for q in x.ports]} for x in externals if x.ports]
    return {"pods": hosts + [{"netns": f"{NETNS_DIR}/{netns_name(tag, p.key)}", "pod": p.name,
                      "namespace": p.namespace, "node": p.node, "ip": p.ip,
                      # the cluster DNS pods' ports are dnsmasq's (emu/dns.py), not the agent's
                      "ports": [] if p.served_by else [{"container": q.container, "name": q.name, "port": q.port,
                                                        "protocol": q.protocol} for q in p.ports]}
                     for p in pods]}  # port-less pods too: their SCTP must be refused with an ABORT


class AgentProcess:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.path = os.path.join(ledger.dir, "agent.json")
        self.proc: subprocess.Popen | None = None
        self.externals: Sequence = ()   # external hosts with ports, served like pods

    def _write(self, pods: Sequence[PodPlan]) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(agent_config(pods, self.ledger.tag, self.externals), handle)
        os.replace(tmp, self.path)

    def start(self, pods: Sequence[PodPlan], timeout: float = 30.0) -> None:
        self._write(pods)
        with open(os.path.join(self.ledger.dir, "agent.log"), "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "testbed.agent", "--config", self.path, "--tag", self.ledger.tag],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                text=True, start_new_session=True)  # Ctrl-C reaches us, and we stop it in order
        self.ledger.add_pid(self.proc.pid)
        self._wait_ready(timeout)

    def reload(self, pods: Sequence[PodPlan], timeout: float = 30.0) -> None:
        """Reconcile the agent with a new pod set (SIGHUP), e.g. after scaling."""
        self._write(pods)
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith("READY"):
                    return
                if not line:
                    break
        raise TestbedError(f"the agent did not become ready (exit {self.proc.poll()}); "
                           f"see {os.path.join(self.ledger.dir, 'agent.log')}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            with open(os.path.join(self.ledger.dir, "agent.log"), encoding="utf-8", errors="replace") as h:
                return "".join(h.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        stop_processes([proc])
        for stream in (proc.stdin, proc.stdout):
            if stream:
                stream.close()
