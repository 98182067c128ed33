"""The fast socket prober: thousands of TCP/UDP/SCTP probes per second from any pod namespace.

Where it sits: experiment steps turn "can A reach B on port P?" questions into Probe objects;
run_probes() answers them with real packets through the emulated cluster (veths, bridges, routes,
kube-proxy DNAT, NetworkPolicy filters) and returns one ProbeResult each, carrying the agent's JSON
reply (wire/reply.py: who answered, which source address it saw) for the NAT and policy analysis.

How it stays fast on two cores: one epoll per thread, non-blocking sockets (a large run without
drop evidence has one thread per core, each with its own source namespaces). A socket keeps the
namespace it was created in, so probes are grouped by source namespace and each namespace is
entered once per batch (netns.py); connect/send/recv need no switching. Every probe's
timeout runs concurrently, so N blocked flows cost one timeout, not N; at a deadline the flight's
socket is read once more before any verdict (an answer can be queued there while epoll never
reported it: `_Runner._last_look`). SCTP goes through one raw
socket per source namespace and address family (the kernel has no SCTP), with the handshake built
by wire/sctp.py. A probe to an IPv6 address (a dual-stack cluster's, issue 15) goes over IPv6,
whatever its protocol. Every result carries the client's source port (`sport`).

Drop evidence (traffic/droplog.py): given the cluster's DropLog, the nflog sockets of the nodes
are read in the same epoll loop, and a probe whose own packet (protocol, source address and port;
SCTP: source port and INIT tag) was logged by a dropping rule is finished at once, `timeout` (the
client gets no answer) with evidence `drop-log` and where it died; a logged REJECT only says where
(the ICMP error or RST still decides). Without evidence the timeout decides, as before.
"""

from __future__ import annotations

import errno
import heapq
import os
import random
import select
import socket
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from testbed.netns import NetnsSwitcher, raise_nofile_limit
from testbed.traffic.droplog import FlowIndex
from testbed.wire import sctp
from testbed.wire.reply import decode_reply

if TYPE_CHECKING:
    from testbed.traffic.droplog import DropEvent, DropLog

PROTOCOLS = ("TCP", "UDP", "SCTP")
IP_PKTINFO = 8
IP_RECVERR = 11
IPV6_RECVERR = 25  # linux/in6.h; not exported by Python's socket module
SO_RCVBUFFORCE = 33
_PKTINFO = struct.Struct("=I4s4s")
_PKTINFO6 = struct.Struct("=16sI")  # struct in6_pktinfo: address, ifindex
_EXTENDED_ERR = struct.Struct("=IBBBBII")  # struct sock_extended_err
# A TCP probe's close is abortive (linger 0: one RST, no FIN and ACK back, no TIME_WAIT left
# in the agent), and its handshake's last ACK is delayed (quick ACKs off: the kernel "saves one
# ACK"), so that it goes with the request: 6 packets a probe instead of 10, and 5 with the
# agent's own delayed ACK of the request (agent/endpoints.py), which rides on its answer (issue 18).
_LINGER0 = struct.pack("ii", 1, 0)
_EPOLLET = select.EPOLLET
_EPOLLIN = select.EPOLLIN
_EPOLLERR = select.EPOLLERR | select.EPOLLHUP

# ENOPROTOOPT: ICMP protocol unreachable; EPROTO: its IPv6 form, ICMPv6 parameter problem
# "unrecognized next header"
_REFUSED = {errno.ECONNREFUSED, errno.ENOPROTOOPT, errno.EPROTO}
# EACCES: ICMPv6 "administratively prohibited" (IPv4's code 13 arrives as EHOSTUNREACH)
_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.EACCES}


@dataclass(frozen=True)
class Probe:
    id: int
    src_netns: str  # namespace file (/run/netns/X, /proc/PID/ns/net); "" = the caller's own
    dst_ip: str
    port: int
    protocol: str  # "TCP" | "UDP" | "SCTP"
    timeout: float = 1.0
    src_ip: str | None = None  # bind to this source address if given


@dataclass(frozen=True)
class ProbeResult:
    id: int
    outcome: str  # "connected" | "refused" | "timeout" | "unreachable" | "error"
    latency_ms: float | None  # TCP: the handshake's RTT; UDP, SCTP: send to answer (None without one)
    reply: dict | None  # the agent's JSON reply, when there was one
    error: str | None  # why, for anything but a clean "connected"
    evidence: str = ""  # how a failure was known: drop-log | timeout | reset ("" when connected)
    drop_at: str = ""  # node/table/chain[rule] (verdict) of the logged drop or reject, if one was seen
    # the client's own source port (0 when no socket got one): matches a failure to conntrack's
    # entries exactly, e.g. a reused port meeting the entry of an exited pod
    sport: int = 0


_EVIDENCE = {"timeout": "timeout", "refused": "reset", "unreachable": "reset"}


def evidence_of(outcome: str) -> str:
    """The evidence an outcome carries when no drop log decided it."""
    return _EVIDENCE.get(outcome, "")


_TCP_INFO_RTT = 68  # offset of tcpi_rtt (µs, u32) in struct tcp_info


def _handshake_rtt(sock: socket.socket) -> float | None:
    """The connect's round trip (SYN to SYN-ACK) as the kernel measured it, in seconds.

    A TCP probe's latency is this, not the time until the agent's reply is read: a step sends its
    probes at once, so the reply time of each includes the prober and the agent (one thread each)
    working through all the others — 45 ms for each of 450 probes, whatever the path. The kernel
    timestamps the SYN and its answer itself, so this is the path's own latency (None when the SYN
    was retransmitted and the kernel took no sample: the wall time is used then)."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        rtt_us = struct.unpack_from("=I", info, _TCP_INFO_RTT)[0]
    except (OSError, struct.error):
        return None
    return rtt_us / 1e6 if rtt_us else None


def _outcome_for(err: int) -> str:
    if err in _REFUSED:
        return "refused"
    if err in _UNREACHABLE:
        return "unreachable"
    return "error"


class _Flight:
    """A probe in progress."""

    __slots__ = (
        "idx",
        "probe",
        "sock",
        "t0",
        "connected",
        "buf",
        "latency",
        "done",
        "sport",
        "itag",
        "raw",
        "key",
        "drop",
        "local_ip",
        "late",
    )

    def __init__(self, idx: int, probe: Probe):
        self.idx, self.probe = idx, probe
        self.sock: socket.socket | None = None  # TCP/UDP only
        self.raw: _RawSocket | None = None  # SCTP only, with our source port and initiate tag
        self.sport = self.itag = 0
        self.local_ip = ""
        self.t0 = 0.0
        self.latency: float | None = None
        self.connected = self.done = False
        self.buf = b""
        self.key: tuple[int, str, int, str, int, int] | None = None  # its packets' flow, for drop evidence
        self.drop: DropEvent | None = None  # a logged REJECT of its packet
        self.late = False  # its answer was found by the last look at its deadline (_Runner._last_look)


class _RawSocket:
    """One raw SCTP socket per source namespace and address family; in-flight INITs are found
    by our source port. An IPv4 raw socket reads packets with their IP header, an IPv6 one
    without (the kernel's raw sockets differ so)."""

    def __init__(self, family: int = socket.AF_INET) -> None:
        self.family = family
        self.sock = socket.socket(family, socket.SOCK_RAW | socket.SOCK_NONBLOCK, sctp.PROTO_SCTP)
        # IP_RECVERR: ICMP errors (no route, protocol unreachable) land in the error queue with
        # the offending SCTP header, from which we find the probe.
        if family == socket.AF_INET6:
            self.sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
        else:
            self.sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20)  # bursts of replies
        except OSError:
            pass
        self.by_port: dict[int, _Flight] = {}

    def free_port(self) -> int:
        while True:
            port = random.randint(32768, 60999)
            if port not in self.by_port:
                return port


class _Runner:
    def __init__(self, probes: Sequence[Probe], concurrency: int, evidence: DropLog | None = None):
        self.probes = list(probes)
        self.droplog = evidence
        self.inbox = evidence.subscribe() if evidence is not None else None
        self.evidence_fds: set[int] = set()
        self.by_flow: FlowIndex[_Flight] = FlowIndex()
        self.results: list[ProbeResult | None] = [None] * len(self.probes)
        limit = raise_nofile_limit()
        self.concurrency = max(1, min(concurrency, limit - 64))
        # Refill in chunks so that each namespace is entered for many sockets at a time.
        self.refill_min = max(1, min(64, self.concurrency // 16))
        self.ep = select.epoll()
        self.flights: dict[int, _Flight] = {}  # fd -> TCP/UDP flight
        self.raws: dict[tuple[str, int], _RawSocket] = {}  # (source netns, family) -> raw SCTP socket
        self.raw_fds: dict[int, _RawSocket] = {}
        self.heap: list[tuple[float, int, _Flight]] = []
        self.resend: list[_Flight] = []  # SCTP INITs that met a full socket buffer
        self.next = self.inflight = 0
        self.switcher = NetnsSwitcher()

    # --- life cycle -----------------------------------------------------------------------------------

    def run(self) -> list[ProbeResult]:
        if self.droplog is not None and self.inbox is not None:
            self.evidence_fds = set(self.droplog.fds()) | {self.inbox.fd}
            for fd in self.evidence_fds:
                self.ep.register(fd, _EPOLLIN)
        try:
            while self.next < len(self.probes) or self.inflight:
                free = self.concurrency - self.inflight
                if self.next < len(self.probes) and (free >= self.refill_min or not self.inflight):
                    self._refill(free)
                if self.resend:  # SCTP INITs that met a full buffer: try again
                    pending, self.resend = self.resend, []
                    for f in pending:
                        if not f.done:
                            self._send_init(f)
                if not self.inflight:
                    continue
                for fd, events in self.ep.poll(self._poll_timeout(), 1024):
                    flight = self.flights.get(fd)
                    if flight is not None:
                        self._on_tcp(flight, events) if flight.probe.protocol == "TCP" else self._on_udp(flight, events)
                    elif fd in self.raw_fds:
                        self._on_raw(self.raw_fds[fd], events)
                    elif fd in self.evidence_fds:
                        self._evidence()
                self._expire()
        finally:
            if self.droplog is not None and self.inbox is not None:
                for fd in self.evidence_fds:
                    self.ep.unregister(fd)
                self.droplog.unsubscribe(self.inbox)
            for f in list(self.flights.values()):
                f.sock.close()
            for raw in self.raws.values():
                raw.sock.close()
            self.ep.close()
            self.switcher.close()
        return self.results  # type: ignore[return-value]

    def _poll_timeout(self) -> float:
        if self.resend:
            return 0.001
        heap = self.heap
        while heap and heap[0][2].done:
            heapq.heappop(heap)
        return max(0.0, heap[0][0] - time.perf_counter()) if heap else -1

    def _expire(self) -> None:
        heap, now = self.heap, time.perf_counter()
        while heap and (heap[0][2].done or heap[0][0] <= now):
            _, _, f = heapq.heappop(heap)
            if f.done:
                continue
            self._last_look(f)
            if f.done:
                continue
            if f.connected:  # handshake done, answer incomplete: still a reachable flow
                self._finish(
                    f,
                    "connected",
                    decode_reply(f.buf.split(b"\n", 1)[0]),
                    "no complete reply before timeout" if f.latency is None else None,
                )
            else:
                self._finish(f, "timeout", None, f"no answer within {f.probe.timeout:g}s")

    def _last_look(self, f: _Flight) -> None:
        """Read what the kernel already holds for a flight whose deadline has passed, before any
        timeout verdict: the answer may be queued on its socket while its readiness event never
        came. Measured under CPU load (dual-stack tiered suite, load average 10-15): every one of
        the 159 allowed UDP probes that timed out in a run had the agent's answer queued on its
        socket at the deadline, the agent had answered within a millisecond of the request, the
        socket was in the epoll set (EPOLLIN|EPOLLET) and epoll never reported it. A raw SCTP
        socket (level-triggered) is read once more the same way, errors included."""
        f.late = True
        if f.raw is not None:
            self._on_raw(f.raw, _EPOLLIN | select.EPOLLERR)
        elif f.sock is not None:
            self._on_tcp(f, _EPOLLIN) if f.probe.protocol == "TCP" else self._on_udp(f, _EPOLLIN)

    def _finish(
        self, f: _Flight, outcome: str, reply: dict | None, error: str | None, evidence: str | None = None
    ) -> None:
        if evidence is None and outcome in ("refused", "unreachable") and self.droplog is not None:
            # A REJECT logs before it answers: its log is already queued; read it, to say where.
            self._evidence()
            if f.done:
                return
        f.done = True
        if f.latency is None and f.t0 and outcome in ("refused", "unreachable"):
            f.latency = time.perf_counter() - f.t0  # how long the refusal took to come back
        if f.late and outcome != "timeout" and f.probe.protocol != "TCP":
            # found by the last look: when it arrived is unknown (TCP's RTT is the kernel's own)
            f.latency = None
            error = error or "answer read at the deadline: no readiness event came for it"
        latency = None if f.latency is None else round(f.latency * 1000.0, 3)
        self.results[f.idx] = ProbeResult(
            f.probe.id,
            outcome,
            latency,
            reply,
            error,
            evidence_of(outcome) if evidence is None else evidence,
            f.drop.where() if f.drop is not None else "",
            f.sport,
        )
        self.inflight -= 1
        if f.key is not None:
            self.by_flow.remove(f, *f.key)
        if f.sock is not None:
            self.flights.pop(f.sock.fileno(), None)
            f.sock.close()  # also removes it from epoll
        if f.raw is not None:
            f.raw.by_port.pop(f.sport, None)

    def _finish_err(self, f: _Flight, err: int, detail: str = "") -> None:
        self._finish(f, _outcome_for(err), None, errno.errorcode.get(err, str(err)) + detail)

    def _evidence(self) -> None:
        """Read the nodes' drop logs; finish the probes whose packet was dropped."""
        assert self.droplog is not None and self.inbox is not None
        self.droplog.pump()
        for ev in self.inbox.take():
            f = self.by_flow.match(ev.flow)
            if f is None or f.done:
                continue
            f.drop = ev
            if ev.verdict == "drop":
                self._finish(f, "timeout", None, f"dropped at {ev.where()}", "drop-log")

    def _watch(self, f: _Flight, proto: int) -> None:
        """Remember the flow of a probe's packets, to match drop logs to it; a TCP or UDP probe's
        source port is read here for every probe (the records carry it)."""
        if proto != 132:
            try:
                f.local_ip, f.sport = f.sock.getsockname()[:2]  # type: ignore[union-attr]
            except OSError:
                pass
        if self.droplog is None:
            return
        p = f.probe
        if proto == 132:
            f.key = (132, "", f.sport, p.dst_ip, p.port, f.itag)
        else:
            if not f.sport:
                return
            f.key = (proto, f.local_ip, f.sport, p.dst_ip, p.port, 0)
        self.by_flow.add(f, *f.key)

    def _fail(self, idx: int, outcome: str, error: str) -> None:
        """A probe that never got going: no flight, no socket."""
        self.results[idx] = ProbeResult(self.probes[idx].id, outcome, None, None, error)

    # --- starting probes -------------------------------------------------------------------------------

    def _refill(self, free: int) -> None:
        start, self.next = self.next, min(len(self.probes), self.next + free)
        groups: dict[str, list[int]] = {}
        for idx in range(start, self.next):
            problem = _check(self.probes[idx])
            if problem:
                self._fail(idx, "error", problem)
            else:
                groups.setdefault(self.probes[idx].src_netns, []).append(idx)
        for netns, idxs in groups.items():
            made: list[tuple[int, socket.socket | None]] = []
            try:
                with self.switcher.entered(netns):
                    for idx in idxs:
                        made.append((idx, self._create(netns, idx)))
            except OSError as exc:  # entering the namespace failed: these probes cannot run
                for idx in idxs[len(made) :]:
                    self._fail(idx, "error", str(exc))
            for idx, sock in made:
                if self.results[idx] is None:
                    self._start(idx, sock)

    def _create(self, netns: str, idx: int) -> socket.socket | None:
        """The probe's socket, created in its source namespace (we are inside it now)."""
        p = self.probes[idx]
        try:
            if p.protocol == "SCTP":
                family = socket.AF_INET6 if ":" in p.dst_ip else socket.AF_INET  # dual-stack (issue 15)
                if (netns, family) not in self.raws:
                    raw = self.raws[(netns, family)] = _RawSocket(family)
                    self.raw_fds[raw.sock.fileno()] = raw
                    self.ep.register(raw.sock.fileno(), _EPOLLIN)
                return None
            kind = socket.SOCK_STREAM if p.protocol == "TCP" else socket.SOCK_DGRAM
            family = socket.AF_INET6 if ":" in p.dst_ip else socket.AF_INET  # dual-stack (issue 15)
            sock = socket.socket(family, kind | socket.SOCK_NONBLOCK)
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER0)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
            return sock
        except OSError as exc:  # EMFILE, ...: fail this probe, not the run
            self._fail(idx, "error", f"socket: {exc}")
            return None

    def _start(self, idx: int, sock: socket.socket | None) -> None:
        p = self.probes[idx]
        f = _Flight(idx, p)
        self.inflight += 1
        heapq.heappush(self.heap, (time.perf_counter() + p.timeout, idx, f))
        if p.protocol == "SCTP":
            f.raw = self.raws[(p.src_netns, socket.AF_INET6 if ":" in p.dst_ip else socket.AF_INET)]
            f.sport = f.raw.free_port()
            f.itag = random.getrandbits(32) or 1
            f.raw.by_port[f.sport] = f
            self._watch(f, 132)
            self._send_init(f)
            return
        f.sock = sock
        self.flights[sock.fileno()] = f
        try:
            if p.src_ip:
                sock.bind((p.src_ip, 0))
            f.t0 = time.perf_counter()
            if p.protocol == "TCP":
                err = sock.connect_ex((p.dst_ip, p.port))
                if err not in (0, errno.EINPROGRESS):
                    self._finish_err(f, err)
                    return
                self._watch(f, socket.IPPROTO_TCP)
                # Edge-triggered, IN|OUT at once: one epoll_ctl per probe, and the fd leaves the
                # epoll set by itself when closed.
                self.ep.register(sock.fileno(), select.EPOLLOUT | _EPOLLIN | _EPOLLET)
            else:
                sock.connect((p.dst_ip, p.port))  # no packet; lets ICMP errors reach us
                self._watch(f, socket.IPPROTO_UDP)
                # Level-triggered: the flight reads once and closes, so this costs nothing, and
                # under load edge-triggered UDP sockets lost their event (_last_look): 4 of 7 runs
                # of the tiered dual-stack suite had 14-148 answers found only at the deadline;
                # level-triggered, 0 in 5 runs at load average 9-10 (the last look stays the guard).
                self.ep.register(sock.fileno(), _EPOLLIN)
                f.t0 = time.perf_counter()
                sock.send(b"PROBE %d\n" % p.id)
        except OSError as exc:
            self._finish_err(f, exc.errno or 0)

    def _send_init(self, f: _Flight) -> None:
        p = f.probe
        packet = sctp.build_init(f.sport, p.port, f.itag)
        f.t0 = time.perf_counter()
        try:
            if p.src_ip and f.raw.family == socket.AF_INET6:
                info6 = _PKTINFO6.pack(socket.inet_pton(socket.AF_INET6, p.src_ip), 0)
                f.raw.sock.sendmsg([packet], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, info6)], 0, (p.dst_ip, 0))
            elif p.src_ip:
                f.raw.sock.sendmsg(
                    [packet],
                    [(socket.IPPROTO_IP, IP_PKTINFO, _PKTINFO.pack(0, socket.inet_aton(p.src_ip), b"\0\0\0\0"))],
                    0,
                    (p.dst_ip, 0),
                )
            else:
                f.raw.sock.sendto(packet, (p.dst_ip, 0))
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.ENOBUFS, errno.EINTR):
                self.resend.append(f)
            else:
                self._finish_err(f, exc.errno or 0)

    # --- events ----------------------------------------------------------------------------------------

    def _on_tcp(self, f: _Flight, events: int) -> None:
        sock = f.sock
        if not f.connected:
            if events & _EPOLLERR:
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    self._finish_err(f, err)
                    return
            try:
                sock.send(b"PROBE %d\n" % f.probe.id)
            except BlockingIOError:
                return  # still connecting (spurious edge)
            except OSError as exc:
                self._finish_err(f, exc.errno or 0)
                return
            f.connected = True
            f.latency = _handshake_rtt(sock)
            if not events & (_EPOLLIN | _EPOLLERR):
                return
        while True:  # edge-triggered: read until EAGAIN
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""  # reset after connecting: finish with what we have
            if not data:
                line = f.buf.split(b"\n", 1)[0]
                reply = decode_reply(line) if b"\n" in f.buf else None
                self._finish(f, "connected", reply, None if reply else "closed without a reply")
                return
            f.buf += data
            if b"\n" in data:
                if f.latency is None:
                    f.latency = time.perf_counter() - f.t0
                # The agent's reply is one line and then its FIN: a line that decodes is all
                # there is to read (waiting for the EOF cost one more recv a probe). Anything
                # else (an HTTP server's answer) is read to the end, as before.
                reply = decode_reply(f.buf.split(b"\n", 1)[0])
                if reply is not None:
                    self._finish(f, "connected", reply, None)
                    return

    def _on_udp(self, f: _Flight, events: int) -> None:
        try:
            data = f.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as exc:
            self._finish_err(f, exc.errno or 0)
            return
        f.latency = time.perf_counter() - f.t0
        self._finish(f, "connected", decode_reply(data), None)

    def _on_raw(self, raw: _RawSocket, events: int) -> None:
        if events & select.EPOLLERR:
            self._raw_errors(raw)
        sock = raw.sock
        for _ in range(4096):
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                self._raw_errors(raw)
                continue
            if raw.family == socket.AF_INET6:
                payload = data  # an IPv6 raw socket reads no IP header
            elif len(data) < 20:
                continue
            else:
                payload = data[(data[0] & 0x0F) * 4 :]
            try:
                sport, dport, vtag, ctype = sctp.peek_header(payload)
            except sctp.SctpError:
                continue
            f = raw.by_port.get(dport)
            if f is None or f.probe.port != sport or ctype not in (sctp.INIT_ACK, sctp.ABORT):
                continue
            try:
                pkt = sctp.parse(payload)
            except sctp.SctpError:
                continue  # bad checksum: as if lost
            if ctype == sctp.INIT_ACK and vtag == f.itag:
                info = pkt.init_info()
                f.latency = time.perf_counter() - f.t0
                # Tear the half-open association down at once so no state lingers anywhere.
                try:
                    sock.sendto(sctp.build_abort(f.sport, sport, info.itag), (f.probe.dst_ip, 0))
                except OSError:
                    pass
                self._finish(f, "connected", decode_reply(info.cookie or b""), None)
            elif ctype == sctp.ABORT and vtag in (f.itag, 0):
                f.latency = time.perf_counter() - f.t0
                self._finish(f, "refused", None, "ABORT")

    def _raw_errors(self, raw: _RawSocket) -> None:
        """ICMP errors about our INITs: the queued payload starts with the SCTP ports."""
        for _ in range(4096):
            try:
                data, anc, _, _ = raw.sock.recvmsg(64, 512, socket.MSG_ERRQUEUE)
            except (BlockingIOError, OSError):
                return
            if len(data) < 4:
                continue
            sport, dport = struct.unpack_from("!HH", data)
            f = raw.by_port.get(sport)
            if f is None or f.probe.port != dport:
                continue
            for level, ctype, cdata in anc:
                if (level, ctype) in ((socket.IPPROTO_IP, IP_RECVERR), (socket.IPPROTO_IPV6, IPV6_RECVERR)):
                    err, _, icmp_type, icmp_code, _, _, _ = _EXTENDED_ERR.unpack_from(cdata)
                    self._finish_err(f, err, f" (ICMP type {icmp_type} code {icmp_code})")
                    break


def _check(p: Probe) -> str | None:
    """Why this probe cannot be sent, if so (checked before any packet: never a DNS lookup)."""
    if p.protocol not in PROTOCOLS:
        return f"unknown protocol {p.protocol!r}"
    if not 1 <= p.port <= 65535 or p.timeout <= 0:
        return f"bad port {p.port} or timeout {p.timeout}"
    # over IPv6 (issue 15) every address of the probe is IPv6, else IPv4
    family, name, anywhere = (
        (socket.AF_INET6, "IPv6", "::")
        if isinstance(p.dst_ip, str) and ":" in p.dst_ip
        else (socket.AF_INET, "IPv4", "0.0.0.0")
    )
    for ip in (p.dst_ip, p.src_ip or anywhere):
        try:
            socket.inet_pton(family, ip)
        except (OSError, TypeError):
            return f"not an {name} address: {ip!r}"
    return None


def run_probes(
    probes: Sequence[Probe], concurrency: int = 1024, evidence: DropLog | None = None, workers: int | None = None
) -> list[ProbeResult]:
    """Run every probe, at most `concurrency` at a time; results come back in input order. With
    `evidence` (the cluster's DropLog), a logged drop of a probe's packet blocks it at once.

    Large runs without evidence are split by source namespace over `workers` threads (default:
    one per core, at most MAX_WORKERS): most of a probe's cost is the kernel carrying its packets
    through the emulated hops inside connect/send/close, which run without the GIL, so one thread
    per core keeps both cores busy where one thread left the second to the agent alone. Each
    thread has its own epoll, sockets and namespace switches (setns is per thread)."""
    n = _worker_count(len(probes), workers) if evidence is None else 1
    if n <= 1:
        return _Runner(probes, concurrency, evidence).run()
    return _run_sharded(probes, concurrency, shard_by_source(probes, n))


MAX_WORKERS = 4
MIN_PROBES_PER_WORKER = 1024  # below this a thread's start and the GIL's hand-offs cost more than they save


def _worker_count(probes: int, wanted: int | None) -> int:
    if wanted is None:
        try:
            wanted = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            wanted = os.cpu_count() or 1
    return max(1, min(wanted, MAX_WORKERS, probes // MIN_PROBES_PER_WORKER))


def shard_by_source(probes: Sequence[Probe], n: int) -> list[list[int]]:
    """Probe indexes in n shards of about equal size, every source namespace in one shard only
    (so each is entered by one thread, and an SCTP raw socket exists once per namespace). Same
    probes, same shards: the largest namespaces first, each to the smallest shard so far."""
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(probes):
        groups.setdefault(p.src_netns, []).append(i)
    shards: list[list[int]] = [[] for _ in range(n)]
    for idxs in sorted(groups.values(), key=lambda g: (-len(g), g[0])):
        min(shards, key=len).extend(idxs)
    for shard in shards:
        shard.sort()  # each worker keeps the callers' order (sources grouped as given)
    return [s for s in shards if s]


def _run_sharded(probes: Sequence[Probe], concurrency: int, shards: list[list[int]]) -> list[ProbeResult]:
    out: list[ProbeResult | None] = [None] * len(probes)
    errors: list[BaseException] = []

    def work(idxs: list[int]) -> None:
        try:  # the runner is made in its own thread: it saves that thread's namespace as home
            results = _Runner([probes[i] for i in idxs], max(1, concurrency // len(shards))).run()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)
            return
        for i, r in zip(idxs, results):
            out[i] = r

    threads = [threading.Thread(target=work, args=(s,), name="prober", daemon=True) for s in shards[1:]]
    for t in threads:
        t.start()
    work(shards[0])
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out  # type: ignore[return-value]
