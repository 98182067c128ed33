"""Start, reload and stop the agent: the processes serving every pod's ports (emu/).

The agent (testbed/agent) enters each pod's namespace to open its sockets, so one
interpreter serves thousands of pods; as many agents (shards) run as the open-files limit
needs (plan/agentshards.py), each a Daemon with its own config and log. We keep a pipe on
each one's stdin: if the testbed dies, even by kill -9, the agent sees EOF and exits, so it
never outlives its cluster. A socket an agent could not open fails the start or reload with
its log's first ERROR line (pod, port, cause), never a pod silently left unserved.
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet

from ..errors import DaemonError
from ..netns import raise_nofile_limit
from ..plan.agentshards import Group, namespace_files, plan_shards
from ..plan.model import ExternalPlan, PodPlan, PortPlan
from .daemon import Daemon, stop_all
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


MAX_FILES_ENV = "TESTBED_AGENT_MAX_FILES"  # run the agents under a lower open-files limit (tests)


class AgentError(DaemonError):
    """An agent could not open some pods' sockets (the first cause, and how many)."""


def _said_ready(daemon: Daemon) -> bool:
    """The agent prints `READY n errors=k` on stdout once its sockets match its configuration;
    any error fails the start or reload, naming the first pod and cause from its log."""
    out = daemon.proc.stdout if daemon.proc is not None else None
    if out is None or not select.select([out], [], [], 0.05)[0]:
        return False
    line = out.readline()  # "" at EOF: it died; wait_ready says so next
    if not line.startswith("READY"):
        return False
    errors = next((int(w[7:]) for w in line.split() if w.startswith("errors=") and w[7:].isdigit()), 0)
    if errors:
        raise AgentError(daemon.name, "could not serve every pod", daemon.log, _first_error(daemon.log, errors))
    return True


def _first_error(log: str, errors: int) -> str:
    """The last reconcile's first ERROR line of the log (pod, port, cause) and how many there were."""
    try:
        with open(log, "rb") as handle:
            handle.seek(max(0, os.path.getsize(log) - (1 << 20)))
            lines = handle.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    found = [line for line in lines if line.startswith("ERROR ")][-errors:]
    first = found[0][6:][:200] if found else "see its log"
    return first + (f"; {errors - 1} more" if errors > 1 else "")


def agent_max_files() -> int:
    """The open-files limit each agent runs under: the most this process may give (its hard
    limit, raised as far as the kernel lets root), lowered by TESTBED_AGENT_MAX_FILES."""
    limit = raise_nofile_limit()
    wanted = os.environ.get(MAX_FILES_ENV, "").strip()
    if wanted:
        if not wanted.isdigit() or not 0 < int(wanted) <= 1 << 24:
            raise AgentError(
                "the agent", f"cannot use {MAX_FILES_ENV}={wanted[:20]!r}", "", "expected an integer 1-16777216"
            )
        limit = min(limit, int(wanted))
    return limit


def _groups(
    pods: Sequence[PodPlan], externals: Sequence[ExternalPlan], ipv6: AbstractSet[str] = frozenset()
) -> list[Group]:
    """One group per network namespace (hostNetwork pods share their node's), with its sockets:
    one per TCP/UDP port plus the raw SCTP socket of the namespace, per family served (`ipv6`:
    the keys of the pods and external hosts served on IPv6 too; plan/agentshards.py)."""
    ports: dict[str, int] = {}
    six: set[str] = set()
    for key, n, v6 in [(f"external:{x.key}", _ports(x.ports), x.key in ipv6) for x in externals if x.ports] + [
        (_group_key(p), 0 if p.served_by else _ports(p.ports), p.key in ipv6) for p in pods
    ]:
        ports[key] = ports.get(key, 0) + n
        if v6:  # hostNetwork pods share their node's IPv6 address: served on IPv6 together
            six.add(key)
    return [Group(k, namespace_files(n, k in six)) for k, n in ports.items()]


def _ports(ports: Sequence[PortPlan]) -> int:
    """The TCP/UDP ports among `ports` (SCTP is the namespace's one raw socket)."""
    return sum(q.protocol != "SCTP" for q in ports)


def _group_key(pod: PodPlan) -> str:
    return f"node:{pod.node}" if pod.host_network else pod.key


class AgentShard:
    """One agent process and the pods it serves now."""

    def __init__(self, ledger: Ledger, index: int, max_files: int) -> None:
        name = "agent" if index == 0 else f"agent-{index}"  # the first keeps the names of one agent
        self.index = index
        self.path = os.path.join(ledger.dir, f"{name}.json")
        self.pods: tuple[PodPlan, ...] = ()
        self.externals: Sequence[ExternalPlan] = ()
        self.written: tuple[list[PodPlan], list[ExternalPlan], dict[str, str]] | None = None  # what its config says
        argv = [sys.executable, "-m", "testbed.agent", "--config", self.path, "--tag", ledger.tag]
        self.daemon = Daemon(
            "the agent" if index == 0 else f"agent {index}",
            argv + ["--max-files", str(max_files)],
            os.path.join(ledger.dir, f"{name}.log"),
            ready=_said_ready,
            ready_timeout=30.0,
            stdin_pipe=True,
            stdout_pipe=True,
        )

    def _served(self, closed: set[str], without: AbstractSet[str]) -> list[PodPlan]:
        return [dataclasses.replace(p, ports=()) if p.key in closed else p for p in self.pods if p.key not in without]

    def stale(
        self, closed: set[str], without: AbstractSet[str] = frozenset(), ipv6: Mapping[str, str] | None = None
    ) -> bool:
        """Whether its config would change (pods, closed listeners, external hosts, IPv6 halves)."""
        return (self._served(closed, without), list(self.externals), dict(ipv6 or {})) != self.written

    def write(
        self, tag: str, closed: set[str], without: AbstractSet[str] = frozenset(), ipv6: Mapping[str, str] | None = None
    ) -> None:
        """Write its config; pods in `without` are left out (they are still leaving another agent);
        `ipv6`: dual-stack, netns path -> the pod's IPv6 address (emu/dualstack.py)."""
        served = self._served(closed, without)
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            # dumps, not dump: json.dump encodes in Python, 3-4 times slower at 1,000 pods
            handle.write(json.dumps(with_ipv6(agent_config(served, tag, self.externals), ipv6 or {})))
        os.replace(tmp, self.path)
        self.written = (served, list(self.externals), dict(ipv6 or {}))


class AgentProcess:
    def __init__(self, ledger: Ledger, runner: Runner | None = None) -> None:
        self.ledger = ledger
        self.runner = runner or Runner()
        self.externals: Sequence[ExternalPlan] = ()  # external hosts with ports, served like pods
        self.pods: tuple[PodPlan, ...] = ()  # the pods served now, by every shard
        self.closed: set[str] = set()  # pod keys whose process was killed (a fault): no listeners
        self.ipv6: dict[str, str] = {}  # dual-stack: netns path -> IPv6 address (emu/dualstack.py)
        self.max_files = 0  # each agent's open-files limit, fixed at start
        self.shards: list[AgentShard] = [AgentShard(ledger, 0, 0)]
        self.assignment: dict[str, int] = {}  # group (namespace) -> shard
        self.starting: list[AgentShard] = []  # started without waiting, READY not read yet
        self.reloading: list[tuple[AgentShard, float]] = []  # signalled without waiting (and its timeout)

    @property
    def path(self) -> str:
        return self.shards[0].path

    @property
    def daemon(self) -> Daemon:
        """The first agent (the only one below the open-files limit)."""
        return self.shards[0].daemon

    @property
    def daemons(self) -> list[Daemon]:
        return [s.daemon for s in self.shards]

    @property
    def proc(self) -> subprocess.Popen | None:
        return self.daemon.proc

    def _assign(self, pods: Sequence[PodPlan]) -> None:
        """Plan the shards for `pods` (plan/agentshards.py) and give each its pods."""
        self.assignment = plan_shards(
            _groups(pods, self.externals, self._ipv6_keys(pods)), self.max_files, self.assignment
        )
        count = max(self.assignment.values(), default=0) + 1
        while len(self.shards) < count:
            self.shards.append(AgentShard(self.ledger, len(self.shards), self.max_files))
        mine: dict[int, list[PodPlan]] = {}
        for p in pods:
            mine.setdefault(self.assignment[_group_key(p)], []).append(p)
        for shard in self.shards:
            shard.pods = tuple(mine.get(shard.index, ()))
            shard.externals = [x for x in self.externals if self.assignment.get(f"external:{x.key}") == shard.index]

    def _ipv6_keys(self, pods: Sequence[PodPlan]) -> set[str]:
        """The pods and external hosts whose config entry has an `ip6` (self.ipv6 is by netns path)."""
        tag = self.ledger.tag
        keys = [p.key for p in pods] + [x.key for x in self.externals]
        return {k for k in keys if f"{NETNS_DIR}/{netns_name(tag, k)}" in self.ipv6}

    def start(self, pods: Sequence[PodPlan], timeout: float = 30.0, wait: bool = True) -> None:
        """Start the agents for `pods`; without `wait`, they get ready while the caller goes on
        (the build programs the rules meanwhile) and `wait_started` waits for them."""
        self.max_files = agent_max_files()
        self.shards = [AgentShard(self.ledger, 0, self.max_files)]
        self.assignment = {}
        self._assign(pods)
        self.pods = tuple(pods)
        self._launch(self.shards, timeout, wait)

    def wait_started(self) -> None:
        """Wait until the agents a `start(wait=False)` spawned, or a `serve(wait=False)`
        signalled, said READY (nothing if none)."""
        starting, self.starting = self.starting, []
        for shard in starting:
            shard.daemon.wait_ready()
        self.wait_reloaded()

    def wait_reloaded(self) -> None:
        """Wait until the agents a `serve(wait=False)` signalled said READY (nothing if none):
        their sockets match the new pod set. A failed reload raises here (AgentError)."""
        reloading, self.reloading = self.reloading, []
        for shard, timeout in reloading:
            shard.daemon.wait_ready(timeout)

    def _launch(self, shards: Sequence[AgentShard], timeout: float, wait: bool = True) -> None:
        for shard in shards:
            shard.write(self.ledger.tag, self.closed, ipv6=self.ipv6)
            shard.daemon.ready_timeout = timeout
            shard.daemon.start(self.runner, wait)
            assert shard.daemon.pid is not None
            self.ledger.add_pid(shard.daemon.pid)
            if not wait:
                self.starting.append(shard)

    def serve(self, pods: Sequence[PodPlan], timeout: float = 30.0, wait: bool = True) -> None:
        """Reconcile the agents with a new pod set (SIGHUP), e.g. after scaling. A namespace
        that moves between agents is closed by the one it leaves before the other opens it:
        first every agent drops what leaves it, then the moved pods are opened where they go.
        With wait=False the agents of the last step (of the only one when no pod moves) are
        signalled and not awaited: `wait_reloaded` (or `wait_started`, or the next serve) reads
        their READY, so that the caller can work meanwhile (kube-proxy's sync renders its rules
        while the agent reconciles)."""
        self.wait_started()  # a reload is read once the start's READY is
        before = {p.key: s.index for s in self.shards for p in s.pods}
        self._assign(pods)
        self.pods = tuple(pods)
        moved = {p.key for s in self.shards for p in s.pods if before.get(p.key, s.index) != s.index}
        running = [s for s in self.shards if s.daemon.proc is not None]
        # (awaited when pods move: they must be closed here before they are opened there)
        self._reload(
            [s for s in running if s.stale(self.closed, moved, self.ipv6)], timeout, moved, wait or bool(moved)
        )
        self._launch([s for s in self.shards if s.daemon.proc is None], timeout)
        self._reload([s for s in running if s.stale(self.closed, ipv6=self.ipv6)], timeout, wait=wait)

    def _reload(
        self, shards: Sequence[AgentShard], timeout: float, without: AbstractSet[str] = frozenset(), wait: bool = True
    ) -> None:
        for shard in shards:  # every signal first: the agents reconcile in parallel
            shard.write(self.ledger.tag, self.closed, without, self.ipv6)
            shard.daemon.signal(signal.SIGHUP, "before a reload")
            if not wait:  # before the next signal: a failed one leaves those already sent awaited
                self.reloading.append((shard, timeout))
        if wait:
            for shard in shards:
                shard.daemon.wait_ready(timeout)

    def log_tail(self, lines: int = 20) -> str:
        return self.daemon.log_tail(lines)

    def stop(self) -> None:
        self.starting, self.reloading = [], []
        stop_all(self.daemons)
