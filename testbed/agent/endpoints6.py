"""The agent's IPv6 sockets for the pods of a dual-stack cluster (issue 15).

Where it sits: beside agent/endpoints.py, whose IPv4 sockets stay as they are; the agent opens
these as well for a pod whose config entry has an `ip6`. Each is IPV6_V6ONLY, so IPv4 keeps being
answered by the IPv4 socket with plain IPv4 addresses in the reply (an IPv4-mapped
::ffff:a.b.c.d would change what the NAT analysis compares).

  TcpListener6 -> TcpListener on an AF_INET6 socket (the connection handling is the same)
  UdpEndpoint6 -> answers every datagram from the address it was sent to (IPV6_RECVPKTINFO)
  RawSctpEndpoint6 -> the raw IPv6 protocol-132 socket of a namespace: the same SctpResponder
                      as the IPv4 one (the kernel has no SCTP sockets in either family)
"""

from __future__ import annotations

import socket
import struct

from testbed.agent.endpoints import RawSctpEndpoint, TcpListener, UdpEndpoint

_PKTINFO6 = struct.Struct("=16sI")  # struct in6_pktinfo: address, ifindex


class TcpListener6(TcpListener):
    FAMILY, ANY = socket.AF_INET6, "::"


class UdpEndpoint6(UdpEndpoint):
    FAMILY, ANY = socket.AF_INET6, "::"
    PKTINFO_OPTION = (socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO)
    CMSG_SPACE = socket.CMSG_SPACE(_PKTINFO6.size)

    def destination(self, anc: list[tuple[int, int, bytes]]) -> tuple[str, tuple[int, int, bytes]] | None:
        for level, ctype, data in anc:
            if level == socket.IPPROTO_IPV6 and ctype == socket.IPV6_PKTINFO and len(data) >= _PKTINFO6.size:
                dst, _ = _PKTINFO6.unpack_from(data)
                # answer from the address the datagram was sent to (any interface)
                return socket.inet_ntop(socket.AF_INET6, dst), (
                    socket.IPPROTO_IPV6,
                    socket.IPV6_PKTINFO,
                    _PKTINFO6.pack(dst, 0),
                )
        return None


class RawSctpEndpoint6(RawSctpEndpoint):
    """The raw IPv6 SCTP socket of one namespace. An IPv6 raw socket reads the SCTP packet without
    its IP header; IPV6_RECVPKTINFO says which address it was sent to, which the answer is sent
    from (as the IPv4 endpoint pins its source with IP_PKTINFO)."""

    FAMILY = socket.AF_INET6
    PKTINFO_OPTION = (socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO)
    CMSG_SPACE = UdpEndpoint6.CMSG_SPACE

    def packet(
        self, data: bytes, anc: list[tuple[int, int, bytes]], peer: tuple
    ) -> tuple[str, str, bytes, tuple[int, int, bytes]] | None:
        for level, ctype, info in anc:
            if level == socket.IPPROTO_IPV6 and ctype == socket.IPV6_PKTINFO and len(info) >= _PKTINFO6.size:
                address, _ = _PKTINFO6.unpack_from(info)
                reply_from = (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, _PKTINFO6.pack(address, 0))
                return peer[0], socket.inet_ntop(socket.AF_INET6, address), data, reply_from
        return None
