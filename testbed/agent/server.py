"""The agent process: one event loop serving every declared port of every emulated pod.

Where it sits: emu/ writes the config (agent/config.py) and starts `python -m testbed.agent` once
per cluster, with a pipe on its stdin; the prober and pods' shells then talk to it. One interpreter
for all pods, not one per pod: starting Python costs tens of milliseconds and megabytes each.

Life cycle:
  start   -> raise RLIMIT_NOFILE, open every socket (entering each pod namespace once), `READY n`
  SIGHUP  -> re-read the config, reconcile (keep, close, open), `READY n` again
  SIGTERM / SIGINT / EOF on stdin (the launcher died) -> close everything, exit 0
A socket that cannot be opened is reported on stderr as one line naming the pod and the port; the
agent serves the rest, and its READY line counts them (`READY n errors=k`) so that the launcher
(emu/agent_proc.py) fails instead of leaving a pod silently unserved.
"""

from __future__ import annotations

import os
import resource
import select
import signal
import stat
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

from testbed.agent.accesslog import AccessLog
from testbed.agent.config import AgentConfig, ConfigError, PodConfig, load_config
from testbed.agent.endpoints import RawSctpEndpoint, TcpConn, TcpListener, UdpEndpoint
from testbed.agent.endpoints6 import RawSctpEndpoint6, TcpListener6, UdpEndpoint6
from testbed.netns import NetnsSwitcher, raise_nofile_limit
from testbed.plan.agentshards import CONNECTION_SHARE, MAX_CONNECTION_RESERVE
from testbed.plan.pod import PortPlan
from testbed.wire.reply import PortIdentity

_ENDPOINTS: dict[str, type[TcpListener | UdpEndpoint]] = {
    "TCP": TcpListener,
    "UDP": UdpEndpoint,
    "TCP6": TcpListener6,
    "UDP6": UdpEndpoint6,
}
NetnsId = tuple[str, int, int]  # path, st_dev, st_ino: a recreated pod reuses the path, not the inode
ListenerKey = tuple[str, NetnsId, int]  # protocol, namespace, port
MAX_OPEN_LOGS = 128  # access-log files kept open between rounds of events, at most
ACCESS_FLUSH_S = 0.2  # a busy agent's access-log lines wait this long at most
ACCESS_LINGER_S = 0.005  # and are written once no event came for this long
ACCESS_FEW_LINES = 4  # or as soon as no event waits, when no more lines than this wait


class Agent:
    def __init__(self, config_path: str, out: TextIO | None = None, err: TextIO | None = None):
        self.config_path = config_path
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.ep = select.epoll()
        self.handlers: dict[int, Callable[[int], None]] = {}
        self.listeners: dict[ListenerKey, TcpListener | UdpEndpoint] = {}
        self.raws: dict[NetnsId, RawSctpEndpoint] = {}
        self.raws6: dict[NetnsId, RawSctpEndpoint] = {}  # dual-stack: the IPv6 raw SCTP sockets
        # Connections waiting for their request, in deadline order: every deadline is
        # "accepted + 2 s", so a FIFO is already sorted and costs O(1) per connection.
        self.timers: deque[TcpConn] = deque()
        self._stop = False
        self._hup = False
        self.errors = 0  # sockets that could not be opened at the last reconcile
        # per-pod access logs next to the config (the instance's folder): `logs POD` in the shell
        self.access = AccessLog(os.path.join(os.path.dirname(os.path.abspath(config_path)), "access"))

    # --- plumbing used by the endpoints -----------------------------------------------------------

    def register(self, fd: int, events: int, handler: Callable[[int], None]) -> None:
        self.ep.register(fd, events)
        self.handlers[fd] = handler

    def modify(self, fd: int, events: int) -> None:
        self.ep.modify(fd, events)

    def unregister(self, fd: int) -> None:
        self.handlers.pop(fd, None)
        try:
            self.ep.unregister(fd)
        except (OSError, ValueError):
            pass

    def add_timer(self, conn: TcpConn) -> None:
        self.timers.append(conn)

    def warn(self, message: str) -> None:
        print(f"WARN {message}", file=self.err, flush=True)

    def error(self, pod: PodConfig, port: PortPlan | None, message: str) -> None:
        where = f"port={port.port}/{port.protocol}" if port else "port=-"
        self.errors += 1
        print(f"ERROR pod={pod.label} {where}: {message}", file=self.err, flush=True)

    @property
    def socket_count(self) -> int:
        return len(self.listeners) + len(self.raws) + len(self.raws6)

    # --- reconcile --------------------------------------------------------------------------------

    def reconcile(self, config: AgentConfig) -> None:
        """Make the open sockets match config: keep what is unchanged, close and open the rest.

        Every pod namespace gets a raw SCTP socket, even without SCTP ports: then an INIT to any
        undeclared port is refused with an ABORT, as by a kernel with SCTP loaded. Without it the
        answer would depend on whether some prober happens to hold a raw socket there (which
        stops the kernel's ICMP "protocol unreachable") - refused or timeout by accident.
        """
        self.errors = 0
        wanted: dict[ListenerKey, tuple[PodConfig, PortPlan]] = {}
        wanted_sctp: dict[NetnsId, dict[int, PortIdentity]] = {}
        pods_in: dict[NetnsId, list[PodConfig]] = {}
        wanted_sctp6: set[NetnsId] = set()
        inodes: dict[str, NetnsId | str] = {}  # path -> identity, or why it cannot be used
        for path in sorted({pod.netns for pod in config.pods}):
            try:
                st = os.stat(path)
                inodes[path] = (path, st.st_dev, st.st_ino)
            except OSError as exc:
                inodes[path] = f"network namespace {path!r}: {exc.strerror}"
        # Several paths may name one namespace (hostNetwork pods: their node's): one identity,
        # so that it gets one raw SCTP socket and one listener per port.
        same: dict[tuple[int, int], NetnsId] = {}
        for path, ident in inodes.items():
            if not isinstance(ident, str):
                inodes[path] = same.setdefault(ident[1:], ident)
        for pod in config.pods:
            ns = inodes[pod.netns]
            if isinstance(ns, str):
                for port in pod.ports or (None,):
                    self.error(pod, port, ns)
                continue
            sctp_ports = wanted_sctp.setdefault(ns, {})
            pods_in.setdefault(ns, []).append(pod)
            if pod.ip6:  # dual-stack: SCTP answered (and refused) on IPv6 too
                wanted_sctp6.add(ns)
            for port in pod.ports:
                if port.protocol == "SCTP":
                    if port.port in sctp_ports:
                        self.error(pod, port, f"already served by {sctp_ports[port.port].pod}")
                    else:
                        sctp_ports[port.port] = pod.identity(port)
                    continue
                key = (port.protocol, ns, port.port)
                if key in wanted:
                    self.error(pod, port, f"already served by {wanted[key][0].label}")
                else:
                    wanted[key] = (pod, port)
                    if pod.ip6:  # dual-stack: the same port on IPv6 (agent/endpoints6.py)
                        wanted[(port.protocol + "6", ns, port.port)] = (pod, port)
        for key in [k for k in self.listeners if k not in wanted]:
            self._close(self.listeners.pop(key))
        for ns in [n for n in self.raws if n not in wanted_sctp]:
            self._close(self.raws.pop(ns))
        for ns in [n for n in self.raws6 if n not in wanted_sctp6]:
            self._close(self.raws6.pop(ns))
        todo: dict[NetnsId, list[tuple[ListenerKey, PodConfig, PortPlan]]] = {}
        for key, (pod, port) in wanted.items():
            if key in self.listeners:
                self.listeners[key].who = pod.identity(port)  # e.g. a container renamed
            else:
                todo.setdefault(key[1], []).append((key, pod, port))
        for ns, ports in wanted_sctp.items():
            if ns in self.raws:
                self.raws[ns].responder.update(ports)
            else:
                todo.setdefault(ns, [])
            if ns in self.raws6:
                self.raws6[ns].responder.update(ports)
            elif ns in wanted_sctp6:
                todo.setdefault(ns, [])
        with NetnsSwitcher() as switcher:  # fresh fds: a path may now name a new namespace
            for ns, items in todo.items():
                self._open_in(switcher, ns, items, wanted_sctp[ns], pods_in[ns], ns in wanted_sctp6)
                # The namespace's fd is no longer needed: keeping one per pod until the end cost
                # a third of the open-files limit (20,000 served 6,666 pods, not 10,000).
                switcher.forget(ns[0])

    def _open_in(
        self,
        switcher: NetnsSwitcher,
        ns: NetnsId,
        items: list[tuple[ListenerKey, PodConfig, PortPlan]],
        sctp_ports: dict[int, PortIdentity],
        pods: list[PodConfig],
        ipv6: bool = False,
    ) -> None:
        """Open the missing sockets of one namespace, entering it once."""
        try:
            with switcher.entered(ns[0]):
                for key, pod, port in items:
                    try:
                        cls = _ENDPOINTS[key[0]]
                        endpoint = cls(self, pod.identity(port))
                    except OSError as exc:
                        self.error(pod, port, exc.strerror or str(exc))
                        continue
                    self.listeners[key] = endpoint
                    self.register(endpoint.sock.fileno(), select.EPOLLIN, endpoint.on_event)
                # the raw SCTP socket of each family served (IPv6: dual-stack, agent/endpoints6.py)
                families: list[tuple[dict[NetnsId, RawSctpEndpoint] | None, type[RawSctpEndpoint], str]] = [
                    (self.raws, RawSctpEndpoint, "raw SCTP socket"),
                    (self.raws6 if ipv6 else None, RawSctpEndpoint6, "raw IPv6 SCTP socket"),
                ]
                for raws, raw_cls, what in families:
                    if raws is None or ns in raws:
                        continue
                    try:
                        raw = raw_cls(self, sctp_ports)
                    except OSError as exc:
                        self._sctp_error(pods, f"{what}: {exc.strerror or exc}")
                    else:
                        raws[ns] = raw
                        self.register(raw.sock.fileno(), select.EPOLLIN, raw.on_event)
        except OSError as exc:  # entering the namespace failed (deleted since we checked)
            for _, pod, port in items:
                self.error(pod, port, str(exc))
            self._sctp_error(pods, str(exc))

    def _sctp_error(self, pods: list[PodConfig], message: str) -> None:
        for pod in pods:
            sctp_ports = [p for p in pod.ports if p.protocol == "SCTP"]
            for port in sctp_ports:
                self.error(pod, port, message)
            if not sctp_ports:  # only the refusals are lost: a warning, not an error
                self.warn(f"pod={pod.label}: SCTP refusals disabled: {message}")

    def _close(self, endpoint: TcpListener | UdpEndpoint | RawSctpEndpoint) -> None:
        self.unregister(endpoint.sock.fileno())
        endpoint.close()

    def _load_and_reconcile(self) -> bool:
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            for line in str(exc).splitlines():
                print(f"ERROR config {line}", file=self.err, flush=True)
            return False
        self.reconcile(config)
        return True

    def _ready(self) -> None:
        print(f"READY {self.socket_count} errors={self.errors}", file=self.out, flush=True)

    # --- the loop -----------------------------------------------------------------------------------

    def _watch_wakeups(self) -> None:
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(w, warn_on_full_buffer=False)  # a signal makes epoll return
        self.register(r, select.EPOLLIN, lambda ev: self._drain(r))
        signal.signal(signal.SIGHUP, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        # The launcher holds a pipe on our stdin: EOF means it died, and we must not linger.
        try:
            mode = os.fstat(0).st_mode
        except OSError:
            return
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            os.set_blocking(0, False)
            self.register(0, select.EPOLLIN, self._on_stdin)

    def _on_signal(self, signum: int, frame: object) -> None:
        if signum == signal.SIGHUP:
            self._hup = True
        else:
            self._stop = True

    def _drain(self, fd: int) -> None:
        try:
            while os.read(fd, 512):
                pass
        except BlockingIOError:
            pass

    def _on_stdin(self, events: int) -> None:
        try:
            data = os.read(0, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._stop = True
            self.unregister(0)

    def _expire(self) -> float:
        """Answer connections whose request deadline passed; return seconds to the next one."""
        timers = self.timers
        now = time.monotonic()
        while timers and (timers[0].closed or timers[0].deadline <= now):
            conn = timers.popleft()
            if not conn.closed:
                conn.on_timeout()
        return max(0.0, timers[0].deadline - now) if timers else -1.0

    def run(self, max_files: int = 0) -> int:
        limit = raise_nofile_limit()
        if 0 < max_files < limit:  # the launcher planned our pods for this limit (plan/agentshards.py)
            resource.setrlimit(resource.RLIMIT_NOFILE, (max_files, max_files))
            limit = max_files
        # An eighth of the descriptors kept for connections (plan/agentshards.py) may hold
        # access-log files open between rounds: 128 at most, none under a small limit.
        self.access.max_open = min(MAX_OPEN_LOGS, min(MAX_CONNECTION_RESERVE, limit // CONNECTION_SHARE) // 8)
        self._watch_wakeups()
        if not self._load_and_reconcile():
            return 2
        self._ready()
        handlers = self.handlers
        poll = self.ep.poll
        access = self.access
        try:
            while not self._stop:
                timeout = self._expire()
                if access.pending:
                    # Access-log lines queued: a few (someone's request: `logs POD` may follow at
                    # once) written as soon as no event waits, a burst's once none came for
                    # ACCESS_LINGER_S (at most ACCESS_FLUSH_S late), one write per pod file: a
                    # round of a busy agent holds a few connections of each of many pods (issue 18).
                    if time.time() - access.since >= ACCESS_FLUSH_S:
                        access.flush()
                    elif access.queued <= ACCESS_FEW_LINES:
                        timeout = 0.0
                    else:
                        timeout = ACCESS_LINGER_S if timeout < 0 else min(timeout, ACCESS_LINGER_S)
                ready = poll(timeout, 1024)
                if not ready:
                    access.flush()
                for fd, events in ready:
                    handler = handlers.get(fd)
                    if handler is not None:
                        try:
                            handler(events)
                        except Exception as exc:  # a bug in one handler must not stop every pod
                            self.warn(f"handler for fd {fd} failed: {exc!r}")
                if self._hup:
                    self._hup = False
                    self._load_and_reconcile()  # on a bad file the old sockets stay
                    self._ready()
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        self.access.close()
        for conn in self.timers:
            conn.close()
        self.timers.clear()
        for endpoint in [*self.listeners.values(), *self.raws.values(), *self.raws6.values()]:
            self._close(endpoint)
        self.listeners.clear()
        self.raws.clear()
        self.raws6.clear()
        signal.set_wakeup_fd(-1)
        self.ep.close()
