"""The agent's sockets and what each does when the event loop says it is ready.

Where it sits: agent/server.py owns the epoll loop, the signals and the reconcile; it creates the
objects below inside each pod's network namespace (a socket keeps the namespace it was created in)
and calls on_event() when epoll reports their fd. All sockets are non-blocking and every handler
works in bounded batches, so one busy pod cannot starve the others.

  TcpListener -> accepts; each connection becomes a TcpConn (read request, answer, close)
  UdpEndpoint -> answers every datagram, from the address it was sent to (IP_PKTINFO)
  RawSctpEndpoint -> one per pod namespace (SCTP ports or not); packets go to an SctpResponder
"""

from __future__ import annotations

import select
import socket
import struct
import time
from typing import TYPE_CHECKING

from testbed.agent.sctp_responder import SctpResponder
from testbed.wire import sctp
from testbed.wire.reply import (
    MAX_REQUEST_BYTES,
    REQUEST_TIMEOUT_S,
    PortIdentity,
    ReplyEncoder,
    encode_reply,
    is_http_request_line,
    parse_request,
    tcp_response,
)

if TYPE_CHECKING:
    from testbed.agent.server import Agent

IP_PKTINFO = 8  # not exported by Python's socket module
SO_RCVBUFFORCE = 33
RCVBUF_BYTES = 4 << 20  # bursts of thousands of probes must not overflow the default ~200 KiB
LISTEN_BACKLOG = 4096
BATCH = 256  # events handled per readiness report before yielding to other sockets

_PKTINFO = struct.Struct("=I4s4s")  # struct in_pktinfo: ifindex, spec_dst, addr
_CMSG_SPACE = socket.CMSG_SPACE(_PKTINFO.size)
_NO_ADDR = b"\0\0\0\0"


def _big_rcvbuf(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF_BYTES)  # root: beyond rmem_max
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)


def _pktinfo(anc: list[tuple[int, int, bytes]]) -> tuple[bytes, bytes] | None:
    """(spec_dst, header destination) from IP_PKTINFO ancillary data."""
    for level, ctype, data in anc:
        if level == socket.IPPROTO_IP and ctype == IP_PKTINFO and len(data) >= _PKTINFO.size:
            _, spec, dst = _PKTINFO.unpack_from(data)
            return spec, dst
    return None


def _no_quickack(sock: socket.socket) -> None:
    """Delayed ACKs on sock (and on what a listener accepts); a kernel that refuses keeps
    its quick ACKs: one packet more a connection, nothing else changes."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
    except OSError:
        pass


def _socket(family: int, kind: int) -> socket.socket:
    sock = socket.socket(family, kind | socket.SOCK_NONBLOCK)
    if family == socket.AF_INET6:  # IPv4 stays with the IPv4 socket (agent/endpoints6.py)
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        except OSError:
            sock.close()
            raise
    return sock


def _plain_line(data: bytes) -> bool:
    """Is data a whole request that is not HTTP (a probe's `PROBE <id>` line)? parse_request
    answers such a request with the JSON line; only its first line counts."""
    nl = data.find(b"\n")
    return nl >= 0 and not is_http_request_line(data[:nl].rstrip(b"\r"))


class TcpListener:
    FAMILY, ANY = socket.AF_INET, "0.0.0.0"  # agent/endpoints6.py: AF_INET6, "::"

    def __init__(self, agent: Agent, who: PortIdentity):
        self.agent = agent
        self.who = who  # and self.encode, its answers' encoder (the setter below)
        # Created in the caller's (the pod's) namespace. SO_REUSEADDR so that a reconcile can
        # reopen a port whose old connections are still in TIME_WAIT.
        self.sock = _socket(self.FAMILY, socket.SOCK_STREAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((self.ANY, who.port))
            self.sock.listen(LISTEN_BACKLOG)
            # Quick ACKs off AFTER listen() (listen() clears the ACK state): each accepted socket
            # is cloned from the listener with it, so the request's ACK waits for the answer and
            # rides on it instead of a pure ACK of its own - 5 packets a probe, not 6 (issue 18).
            # A new connection's first data is otherwise ACKed at once (quick-ACK mode), before
            # the agent could accept it and set the option on the connection itself.
            _no_quickack(self.sock)
        except OSError:
            self.sock.close()
            raise

    @property
    def who(self) -> PortIdentity:
        return self.encode.who

    @who.setter
    def who(self, who: PortIdentity) -> None:  # a reconcile may rename the container
        self.encode = ReplyEncoder(who)

    def on_event(self, events: int) -> None:
        for _ in range(BATCH):
            try:
                csock, peer = self.sock.accept()
            except BlockingIOError:
                return
            except OSError as exc:  # EMFILE, ECONNABORTED: keep serving the rest
                self.agent.warn(f"accept on {self.who.pod}:{self.who.port}: {exc}")
                return
            local_ip: str | None = None
            try:
                addr: str = csock.getsockname()[0]  # asked once: for the log and the reply
            except OSError:
                pass
            else:
                local_ip = addr
                self.agent.access.add(self.who, peer[0], peer[1], addr)
            # The client usually sent its line with the handshake's last ACK: then answer it here,
            # as TcpConn would, without a connection object (issue 18); anything else (no line yet,
            # HTTP, an answer that does not fit the send buffer) goes on as a TcpConn.
            try:
                data = csock.recv(4096, socket.MSG_DONTWAIT)
            except BlockingIOError:
                data = b""
            except OSError:
                csock.close()  # reset by the peer: nobody left to answer
                continue
            else:
                if local_ip is not None and _plain_line(data):
                    answer = self.encode(peer[0], peer[1], local_ip) + b"\n"
                    try:  # MSG_MORE: the FIN of the close() rides on the answer (TcpConn._flush)
                        sent = csock.send(answer, socket.MSG_MORE | socket.MSG_DONTWAIT)
                    except BlockingIOError:
                        sent = 0
                    except OSError:
                        csock.close()
                        continue
                    if sent == len(answer):
                        csock.close()
                        continue
                    conn = TcpConn(self.agent, csock, peer, self.who, local_ip, self.encode)
                    conn.out = answer[sent:]  # rare: the rest sent as a TcpConn sends it
                    conn._flush()
                    continue
            TcpConn(self.agent, csock, peer, self.who, local_ip, self.encode, data).start()

    def close(self) -> None:
        self.sock.close()


class TcpConn:
    """One accepted connection: read the request (bounded), answer once, close."""

    __slots__ = (
        "agent",
        "sock",
        "fd",
        "peer",
        "who",
        "buf",
        "out",
        "deadline",
        "closed",
        "registered",
        "drain",
        "local_ip",
        "encode",
    )

    def __init__(
        self,
        agent: Agent,
        sock: socket.socket,
        peer: tuple[str, int],
        who: PortIdentity,
        local_ip: str | None = None,
        encode: ReplyEncoder | None = None,
        buf: bytes = b"",
    ):
        # accept() hands back a blocking socket: every call below says MSG_DONTWAIT instead of
        # an ioctl per connection to make it non-blocking (issue 18)
        self.agent = agent
        self.sock = sock
        self.fd = sock.fileno()
        self.peer = peer
        self.who = who
        self.buf = buf  # what the listener read already
        self.out = b""
        self.deadline = time.monotonic() + REQUEST_TIMEOUT_S
        self.closed = False
        self.registered = False
        self.drain = False
        self.local_ip = local_ip  # the address the client reached (getsockname), if known yet
        self.encode = encode or ReplyEncoder(who)

    def start(self) -> None:
        # The client often sent its line before we accepted: answer without an epoll round trip.
        self.on_event(select.EPOLLIN)
        if not self.closed:
            self.agent.add_timer(self)

    def on_event(self, events: int) -> None:
        if self.out:
            self._flush()
            return
        final = False
        while len(self.buf) < MAX_REQUEST_BYTES:
            try:
                data = self.sock.recv(4096, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError:
                self.close()  # reset by the peer: nobody left to answer
                return
            if not data:
                final = True
                break
            self.buf += data
            if b"\n" in data:
                break
        request = parse_request(self.buf, final)
        if request is None:
            if not self.registered:
                self.agent.register(self.fd, select.EPOLLIN, self.on_event)
                self.registered = True
        else:
            self.drain = request.http  # an HTTP client may have sent more than we read
            self.respond(request)

    def on_timeout(self) -> None:
        if self.out:
            self.close()  # the peer stopped reading our answer
        else:
            self.respond(parse_request(self.buf, final=True))

    def respond(self, request) -> None:
        local_ip = self.local_ip
        if local_ip is None:
            try:
                local_ip = self.sock.getsockname()[0]
            except OSError:
                self.close()
                return
        body = self.encode(self.peer[0], self.peer[1], local_ip)
        self.out = tcp_response(request, body)
        self._flush()

    def _flush(self) -> None:
        try:
            # MSG_MORE: the answer waits for close(), whose FIN then rides on it - one packet
            # for answer and FIN, and no ACK of the answer alone (issue 18). close() follows at
            # once below; after a partial send, the next send or the close pushes the rest.
            sent = self.sock.send(self.out, socket.MSG_MORE | socket.MSG_DONTWAIT)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.close()
            return
        self.out = self.out[sent:]
        if not self.out:
            self.close()
            return
        # Rare: the answer did not fit in the send buffer; wait until it drains (with a deadline).
        if self.registered:
            self.agent.modify(self.fd, select.EPOLLOUT)
        else:
            self.agent.register(self.fd, select.EPOLLOUT, self.on_event)
            self.registered = True
        self.deadline = time.monotonic() + REQUEST_TIMEOUT_S
        self.agent.add_timer(self)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.drain:
            try:  # unread input at close() turns our FIN into a RST that can eat the answer
                self.sock.recv(65536, socket.MSG_DONTWAIT)
            except OSError:
                pass
        if self.registered:
            self.agent.unregister(self.fd)
        self.sock.close()


class UdpEndpoint:
    FAMILY, ANY = socket.AF_INET, "0.0.0.0"  # agent/endpoints6.py: AF_INET6, "::"
    PKTINFO_OPTION = (socket.IPPROTO_IP, IP_PKTINFO)
    CMSG_SPACE = _CMSG_SPACE

    def __init__(self, agent: Agent, who: PortIdentity):
        self.agent = agent
        self.who = who
        self.sock = _socket(self.FAMILY, socket.SOCK_DGRAM)
        try:
            # IP_PKTINFO: learn which address each datagram was sent to, since we are bound to
            # 0.0.0.0 and must both report it (local_ip) and answer from it.
            self.sock.setsockopt(*self.PKTINFO_OPTION, 1)
            _big_rcvbuf(self.sock)
            self.sock.bind((self.ANY, who.port))
        except OSError:
            self.sock.close()
            raise

    def destination(self, anc: list[tuple[int, int, bytes]]) -> tuple[str, tuple[int, int, bytes]] | None:
        """(the address a datagram was sent to, the ancillary data that answers from it)."""
        info = _pktinfo(anc)
        if info is None:
            return None
        spec, dst = info
        # spec_dst is the kernel's choice of source for a reply: the destination itself
        # for unicast, the interface address for a broadcast.
        return socket.inet_ntoa(dst), (socket.IPPROTO_IP, IP_PKTINFO, _PKTINFO.pack(0, spec, _NO_ADDR))

    def on_event(self, events: int) -> None:
        sock = self.sock
        for _ in range(BATCH):
            try:
                _, anc, _, peer = sock.recvmsg(65535, self.CMSG_SPACE)
            except BlockingIOError:
                return
            except OSError:
                continue
            where = self.destination(anc)
            if where is None:
                continue
            dst, reply_from = where
            self.agent.access.add(self.who, peer[0], peer[1], dst)
            body = encode_reply(self.who, peer[0], peer[1], dst)
            try:
                sock.sendmsg([body], [reply_from], 0, peer)
            except OSError:
                pass  # UDP: a lost answer is a lost datagram

    def close(self) -> None:
        self.sock.close()


class RawSctpEndpoint:
    """The raw protocol-132 socket of one namespace, answering for all its SCTP ports
    (agent/endpoints6.py: its IPv6 twin reads packets without their IP header)."""

    FAMILY = socket.AF_INET
    PKTINFO_OPTION = (socket.IPPROTO_IP, IP_PKTINFO)
    CMSG_SPACE = _CMSG_SPACE

    def __init__(self, agent: Agent, ports: dict[int, PortIdentity]):
        self.agent = agent
        self.responder = SctpResponder(ports)
        self.sock = socket.socket(self.FAMILY, socket.SOCK_RAW | socket.SOCK_NONBLOCK, sctp.PROTO_SCTP)
        try:
            self.sock.setsockopt(*self.PKTINFO_OPTION, 1)
            _big_rcvbuf(self.sock)
        except OSError:
            self.sock.close()
            raise

    def packet(
        self, data: bytes, anc: list[tuple[int, int, bytes]], peer: tuple
    ) -> tuple[str, str, bytes, tuple[int, int, bytes]] | None:
        """(source, destination, SCTP payload, the ancillary data answering from the destination)
        of what was read, or None to ignore it."""
        info = _pktinfo(anc)
        # Only unicast to this namespace: for broadcast spec_dst differs from the header.
        if info is None or info[0] != data[16:20]:
            return None
        try:
            src, dst, payload = sctp.strip_ipv4(data)
        except sctp.SctpError:
            return None
        # Pin the source to the address the INIT was sent to (IP_PKTINFO works on raw sockets
        # too), so the answer matches the peer's and conntrack's view.
        return src, dst, payload, (socket.IPPROTO_IP, IP_PKTINFO, _PKTINFO.pack(0, info[1], _NO_ADDR))

    def on_event(self, events: int) -> None:
        sock = self.sock
        handle = self.responder.handle
        for _ in range(BATCH):
            try:
                data, anc, _, peer = sock.recvmsg(65535, self.CMSG_SPACE)
            except BlockingIOError:
                return
            except OSError:
                continue
            got = self.packet(data, anc, peer)
            if got is None:
                continue
            src, dst, payload, reply_from = got
            out = handle(src, dst, payload)
            if out is None:
                continue
            try:
                sock.sendmsg([out], [reply_from], 0, (src, 0))
            except OSError:
                pass  # like a lost packet: the peer's INIT times out

    def close(self) -> None:
        self.sock.close()
