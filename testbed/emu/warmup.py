"""One ICMP echo from each underlay member to each other, sent in-process (emu/).

Right after the underlay switch starts, the first ARP request on a fresh port can be lost, and
a lost one costs a 1 s retransmission: a probe with a 1 s timeout would report a false
timeout. So the underlay resolves every neighbour before the cluster is declared ready
(emu/underlay.py warm_up), as `ping -c1 -W1` from every member to every other did: each member
sends one echo request to each address and waits up to 1 s for the replies; a round in which
any reply is missing is repeated.

Why not `ping`: one process per pair, 2,450 forks and execs for 50 nodes (2.4 s of a 10,000-pod
build on the 2-core VM, all of it before the first pod). Here one raw ICMP socket per member,
opened inside its namespace (a socket stays in the namespace it was made in), sends every
request and reads the replies: the same packets, the same neighbour resolution, no process.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import time
from collections.abc import Sequence

from ..netns import in_netns

ECHO_REQUEST, ECHO_REPLY = 8, 0
ECHO_REQUEST6, ECHO_REPLY6 = 128, 129
PAYLOAD = b"testbed-warm-up"
_ECHO = struct.Struct("!BBHHH")


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of data."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, v6: bool) -> bytes:
    """An echo request; ICMPv6's checksum is the kernel's to fill (raw ICMPv6 sockets always do)."""
    if v6:
        return _ECHO.pack(ECHO_REQUEST6, 0, 0, ident, seq) + PAYLOAD
    body = _ECHO.pack(ECHO_REQUEST, 0, 0, ident, seq) + PAYLOAD
    return _ECHO.pack(ECHO_REQUEST, 0, checksum(body), ident, seq) + PAYLOAD


def parse_reply(packet: bytes, v6: bool) -> tuple[int, int] | None:
    """(identifier, sequence) of an echo reply (IPv4 raw sockets read the IP header too), else None."""
    if not v6:
        if len(packet) < 20:
            return None
        packet = packet[(packet[0] & 0x0F) * 4 :]
    if len(packet) < _ECHO.size:
        return None
    kind, _, _, ident, seq = _ECHO.unpack_from(packet)
    return (ident, seq) if kind == (ECHO_REPLY6 if v6 else ECHO_REPLY) else None


def echo_round(members: Sequence[tuple[str, Sequence[str]]], timeout: float = 1.0) -> list[str]:
    """Each member (its namespace's path, the addresses it pings) sends one echo request to each
    address at once; returns the members that lacked a reply `timeout` seconds after sending."""
    base = os.getpid() & 0xFF00
    socks: list[tuple[socket.socket, bool]] = []
    missing: dict[int, set[tuple[str, int]]] = {}  # member -> (address, seq) still unanswered
    try:
        for index, (path, targets) in enumerate(members):
            v6 = any(":" in t for t in targets)
            family, proto = (socket.AF_INET6, socket.IPPROTO_ICMPV6) if v6 else (socket.AF_INET, socket.IPPROTO_ICMP)
            with in_netns(path):
                sock = socket.socket(family, socket.SOCK_RAW, proto)
            sock.setblocking(False)
            socks.append((sock, v6))
            ident = (base + index) & 0xFFFF
            missing[index] = set()
            for seq, target in enumerate(targets, 1):
                try:
                    sock.sendto(echo_request(ident, seq, v6), (target, 0))
                except OSError:
                    pass  # unreachable now: its reply stays missing, as ping's would
                missing[index].add((socket.inet_pton(family, target).hex(), seq))
        poller = select.poll()
        by_fd = {sock.fileno(): i for i, (sock, _) in enumerate(socks)}
        for sock, _ in socks:
            poller.register(sock, select.POLLIN)
        deadline = time.monotonic() + timeout
        while any(missing.values()) and (left := deadline - time.monotonic()) > 0:
            for fd, _ in poller.poll(left * 1000):
                index = by_fd[fd]
                sock, v6 = socks[index]
                while True:
                    try:
                        packet, source = sock.recvfrom(2048)
                    except BlockingIOError:
                        break
                    reply = parse_reply(packet, v6)
                    if reply is not None and reply[0] == (base + index) & 0xFFFF:
                        family = socket.AF_INET6 if v6 else socket.AF_INET
                        addr = source[0].split("%")[0]
                        missing[index].discard((socket.inet_pton(family, addr).hex(), reply[1]))
    finally:
        for sock, _ in socks:
            sock.close()
    return [members[i][0] for i, left in missing.items() if left]
