"""Drop evidence, read live: one nfnetlink_log socket per node namespace (issue 18).

Where it sits: traffic/, beside the probers that use it. Every rule that drops or rejects
(NetworkPolicy, the tiers, kube-proxy's no-endpoint REJECT) is preceded by a rate-limited rule
that logs the packet to nflog group LOG_GROUP with a prefix naming the rule (rules/droplog.py).
A `DropLog` binds that group in each node's namespace (the group is per namespace, so one reader
per node) and turns what the kernel sends into `DropEvent`s: node, rule key, the packet's flow.

Not a Daemon and not a thread: the sockets are read inside the probers' own event loops
(traffic/prober.py's epoll, traffic/crafted.py's select), so a drop is known in the same loop
turn that would have waited for its timeout, with no process, pipe or interpreter in between;
the kernel is asked to flush every packet at once (queue threshold 1). Several probers may run at
once (an experiment's background rounds): each subscribes an `Inbox` with its own eventfd, and
whoever reads the sockets hands every event to every inbox. `TESTBED_DROP_EVIDENCE=0` (or the
commands' `--no-drop-evidence`) turns it off: the timeouts alone decide, as before.

Evidence never makes a verdict faster than what was seen: a probe is blocked the moment the
drop of *its* packet (same protocol, source address and port; SCTP: the INIT's tag) is read,
and a drop that is never logged (over the rate limit, or a packet translated before it was
dropped) still costs its timeout.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from ..netns import NetnsSwitcher
from ..rules.droplog import LOG_GROUP, RuleKey, parse_prefix
from ..wire import nflog

if TYPE_CHECKING:
    from ..emu.cluster import EmulatedCluster

ENV = "TESTBED_DROP_EVIDENCE"
COPY_BYTES = 128  # IP header (with options) and the L4 header: all a flow needs
SO_RCVBUFFORCE = 33
RCVBUF = 4 << 20


def enabled() -> bool:
    """Whether probes look for drop evidence (TESTBED_DROP_EVIDENCE=0 turns it off)."""
    return os.environ.get(ENV, "1").strip() not in ("0", "no", "off", "false")


class DropLogError(OSError):
    """A node's nflog group could not be bound (another reader holds it, or no nfnetlink_log)."""


@dataclass(frozen=True)
class DropEvent:
    node: str
    key: RuleKey
    flow: nflog.Flow
    hook: str
    seen: float  # time.perf_counter() when it was read

    @property
    def verdict(self) -> str:
        return self.key.verdict

    def where(self) -> str:
        """node/table/chain[rule] (verdict), the form rows and reports carry."""
        k = self.key
        return f"{self.node}/{k.table}/{k.chain}[{k.index}] ({k.verdict})"


class Inbox:
    """One prober's share of the events, with an eventfd that wakes its event loop."""

    def __init__(self) -> None:
        self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.events: deque[DropEvent] = deque()

    def take(self) -> list[DropEvent]:
        try:
            os.eventfd_read(self.fd)
        except BlockingIOError:
            pass
        out: list[DropEvent] = []
        while True:  # popleft: another thread's pump may be appending meanwhile
            try:
                out.append(self.events.popleft())
            except IndexError:
                return out

    def close(self) -> None:
        os.close(self.fd)


class DropLog:
    """The nflog readers of a cluster's nodes: open after the build, close before teardown (a
    socket holds its namespace)."""

    def __init__(self, node_netns: Mapping[str, str], group: int = LOG_GROUP) -> None:
        self.group = group
        self.lock = threading.Lock()
        self.socks: dict[int, tuple[str, socket.socket]] = {}
        self.subscribers: list[Inbox] = []
        self.received = self.lost = 0
        try:
            with NetnsSwitcher() as switcher:
                for node, path in node_netns.items():
                    with switcher.entered(path):
                        sock = socket.socket(
                            socket.AF_NETLINK,
                            socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                            nflog.NETLINK_NETFILTER,
                        )
                    self.socks[sock.fileno()] = (node, sock)
                    self._configure(node, sock)
        except BaseException:
            self.close()
            raise

    def _configure(self, node: str, sock: socket.socket) -> None:
        sock.bind((0, 0))
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        except OSError:
            pass
        requests = [
            nflog.config(self.group, 1, bind=True),
            nflog.config(self.group, 2, copy=COPY_BYTES, qthresh=1, timeout=1),
        ]
        for request in requests:
            sock.send(request)
            err = self._ack(sock)
            if err:
                raise DropLogError(
                    err, f"node {node}: nflog group {self.group} could not be configured: {os.strerror(err)}"
                )

    @staticmethod
    def _ack(sock: socket.socket, timeout: float = 2.0) -> int:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                return errno.ETIMEDOUT
            _, errors = nflog.decode(sock.recv(65536))
            if errors:
                return errors[0]

    # -- reading ---------------------------------------------------------------------------------

    def fds(self) -> list[int]:
        return list(self.socks)

    def subscribe(self) -> Inbox:
        """A new inbox; what the sockets held before goes to the earlier subscribers only."""
        with self.lock:
            self._deliver(self._read_all())
            inbox = Inbox()
            self.subscribers.append(inbox)
            return inbox

    def unsubscribe(self, inbox: Inbox) -> None:
        with self.lock:
            if inbox in self.subscribers:
                self.subscribers.remove(inbox)
        inbox.close()

    def pump(self) -> int:
        """Read every socket now and hand what it held to every inbox; the number of events."""
        with self.lock:
            events = self._read_all()
            self._deliver(events)
            return len(events)

    def _deliver(self, events: list[DropEvent]) -> None:
        if not events:
            return
        for inbox in self.subscribers:
            inbox.events.extend(events)
            os.eventfd_write(inbox.fd, 1)

    def _read_all(self) -> list[DropEvent]:
        events: list[DropEvent] = []
        for node, sock in self.socks.values():
            for _ in range(4096):  # bounded: a flood is cut by the rules' limit, and here
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno == errno.ENOBUFS:  # the kernel dropped messages: those probes time out
                        self.lost += 1
                        continue
                    raise
                try:
                    packets, _ = nflog.decode(data)
                except nflog.NflogError:
                    continue
                now = time.perf_counter()
                for p in packets:
                    key = parse_prefix(p.prefix) if p.group == self.group else None
                    flow = nflog.flow_of(p.payload) if key else None
                    if key and flow:
                        self.received += 1
                        events.append(DropEvent(node, key, flow, p.hook, now))
        return events

    def close(self) -> None:
        for _, sock in self.socks.values():
            sock.close()  # releases the group binding with the socket
        self.socks.clear()
        for inbox in self.subscribers:
            inbox.close()
        self.subscribers.clear()

    def __enter__(self) -> DropLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


T = TypeVar("T")


class FlowIndex(Generic[T]):
    """The probes in flight by the flow of their packets, to find the one a logged packet was.

    TCP may give one source port to several connections of a pod (to different destinations), so
    a source address and port alone is not enough: a logged packet matches the probe with its whole
    5-tuple, or else (a Service address translated before the drop) the one probe with its
    protocol, source address and port, only when there is exactly one and it was not sent to the
    logged destination itself. Ambiguous or unknown: no match, the timeout decides. SCTP INITs are
    matched by source port and their random 32-bit tag, which the packet carries."""

    def __init__(self) -> None:
        self.exact: dict[tuple[int, str, int, str, int, int], T] = {}
        self.loose: dict[tuple[int, str, int, int], list[tuple[T, str, int]]] = {}

    @staticmethod
    def _keys(
        proto: int, saddr: str, sport: int, daddr: str, dport: int, tag: int
    ) -> tuple[tuple[int, str, int, str, int, int], tuple[int, str, int, int]]:
        if proto == 132:  # the raw socket's source address is the route's: the tag identifies
            return (132, "", sport, "", 0, tag), (132, "", sport, tag)
        return (proto, saddr, sport, daddr, dport, 0), (proto, saddr, sport, 0)

    def add(self, item: T, proto: int, saddr: str, sport: int, daddr: str, dport: int, tag: int = 0) -> None:
        exact, loose = self._keys(proto, saddr, sport, daddr, dport, tag)
        self.exact[exact] = item
        self.loose.setdefault(loose, []).append((item, daddr, dport))

    def remove(self, item: T, proto: int, saddr: str, sport: int, daddr: str, dport: int, tag: int = 0) -> None:
        exact, loose = self._keys(proto, saddr, sport, daddr, dport, tag)
        if self.exact.get(exact) is item:
            del self.exact[exact]
        left = [c for c in self.loose.get(loose, []) if c[0] is not item]
        if left:
            self.loose[loose] = left
        else:
            self.loose.pop(loose, None)

    def match(self, flow: nflog.Flow) -> T | None:
        exact, loose = self._keys(flow.proto, flow.saddr, flow.sport, flow.daddr, flow.dport, flow.tag)
        hit = self.exact.get(exact)
        if hit is not None or flow.proto == 132:
            return hit
        candidates = self.loose.get(loose, [])
        if len(candidates) == 1 and candidates[0][1:] != (flow.daddr, flow.dport):
            return candidates[0][0]
        return None


def open_drop_log(node_netns: Mapping[str, str]) -> DropLog | None:
    """The cluster's drop log, or None when evidence is turned off."""
    return DropLog(node_netns) if enabled() else None


def cluster_drop_log(cluster: EmulatedCluster) -> DropLog | None:
    """A reader on every node of a built cluster (None when evidence is off); close it before teardown."""
    return open_drop_log({n.name: cluster.netns_path(n.key) for n in cluster.plan.nodes})
