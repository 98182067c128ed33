"""Start, reload and stop the agent: one process serving every pod's ports (emu/).

The agent (testbed/agent) enters each pod's namespace to open its sockets, so one
interpreter serves 1,000 pods. We keep a pipe on its stdin: if the testbed dies, even by
kill -9, the agent sees EOF and exits, so it never outlives its cluster.
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Sequence

from ..plan.model import ExternalPlan, PodPlan
from .daemon import Daemon
from .dualstack import with_ipv6
from .ledger import Ledger, netns_name
from .pods import NETNS_DIR
from .runner import Runner


def agent_config(pods: Sequence[PodPlan], tag: str, externals: Sequence[ExternalPlan] = ()) -> dict:
    """Every pod, and every external host that declares ports (e.g. an outside web server)."""
    hosts = [
        {
            "netns": f"{NETNS_DIR}/{netns_name(tag, x.key)}",
            "pod": x.name,
            "namespace": "external",
            "node": "outside" if x.outside else "underlay",
            "ip": x.ip,
            "ports": [{"container": x.name, "name": q.name, "port": q.port, "protocol": q.protocol} for q in x.ports],
        }
        for x in externals
        if x.ports
    ]
    return {
        "pods": hosts
        + [
            {
                "netns": f"{NETNS_DIR}/{netns_name(tag, p.key)}",
                "pod": p.name,
                "namespace": p.namespace,
                "node": p.node,
                "ip": p.ip,
                # the cluster DNS pods' ports are dnsmasq's (emu/dns.py), not the agent's
                "ports": []
                if p.served_by
                else [
                    {"container": q.container, "name": q.name, "port": q.port, "protocol": q.protocol} for q in p.ports
                ],
            }
            for p in pods
        ]
    }  # port-less pods too: their SCTP must be refused with an ABORT


def _said_ready(daemon: Daemon) -> bool:
    """The agent prints READY on stdout once its sockets match its configuration."""
    out = daemon.proc.stdout if daemon.proc is not None else None
    if out is None or not select.select([out], [], [], 0.05)[0]:
        return False
    return out.readline().startswith("READY")  # "" at EOF: it died; wait_ready says so next


class AgentProcess:
    def __init__(self, ledger: Ledger, runner: Runner | None = None) -> None:
        self.ledger = ledger
        self.runner = runner or Runner()
        self.path = os.path.join(ledger.dir, "agent.json")
        self.externals: Sequence[ExternalPlan] = ()  # external hosts with ports, served like pods
        self.pods: tuple[PodPlan, ...] = ()  # the pods it serves now
        self.closed: set[str] = set()  # pod keys whose process was killed (a fault): no listeners
        self.ipv6: dict[str, str] = {}  # dual-stack: netns path -> IPv6 address (emu/dualstack.py)
        # stdin stays a pipe: if the testbed dies, even by kill -9, the agent reads EOF and exits.
        self.daemon = Daemon(
            "the agent",
            [sys.executable, "-m", "testbed.agent", "--config", self.path, "--tag", ledger.tag],
            os.path.join(ledger.dir, "agent.log"),
            ready=_said_ready,
            ready_timeout=30.0,
            stdin_pipe=True,
            stdout_pipe=True,
        )

    @property
    def proc(self) -> subprocess.Popen | None:
        return self.daemon.proc

    def _write(self, pods: Sequence[PodPlan]) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            served = [dataclasses.replace(p, ports=()) if p.key in self.closed else p for p in pods]
            json.dump(with_ipv6(agent_config(served, self.ledger.tag, self.externals), self.ipv6), handle)
        os.replace(tmp, self.path)

    def start(self, pods: Sequence[PodPlan], timeout: float = 30.0) -> None:
        self._write(pods)
        self.pods = tuple(pods)
        self.daemon.ready_timeout = timeout
        self.daemon.start(self.runner)
        assert self.daemon.pid is not None
        self.ledger.add_pid(self.daemon.pid)

    def serve(self, pods: Sequence[PodPlan], timeout: float = 30.0) -> None:
        """Reconcile the agent with a new pod set (SIGHUP), e.g. after scaling."""
        self._write(pods)
        self.pods = tuple(pods)
        self.daemon.signal(signal.SIGHUP, "before a reload")
        self.daemon.wait_ready(timeout)

    def log_tail(self, lines: int = 20) -> str:
        return self.daemon.log_tail(lines)

    def stop(self) -> None:
        self.daemon.stop()
