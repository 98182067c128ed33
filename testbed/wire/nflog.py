"""nfnetlink_log messages: the configuration the testbed sends, the packets it gets back (pure).

Where it sits: the wire layer, beside the SCTP codec. traffic/droplog.py opens one netlink
socket per node namespace and binds the nflog group the dropping rules log to
(rules/droplog.py); this module builds its configuration requests and decodes what the kernel
sends: per logged packet, the rule's prefix and the packet's first bytes, from which `flow_of`
reads the 5-tuple (and SCTP's initiate tag) to find the probe.

Hand-written because no well-kept Python library decodes NFLOG: pyroute2 covers conntrack,
nfqueue, ipset and nftables but not nfnetlink_log, and python-nflog wraps libnetfilter_log in C.
The format is small (linux/netfilter/nfnetlink_log.h): a netlink header, nfgenmsg, then
attributes; tests/unit/test_nflog.py checks the decoder against an encoder with hypothesis.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass

NETLINK_NETFILTER = 12
AF_UNSPEC, AF_INET = 0, 2
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET = 0
NFULNL_MSG_CONFIG = 1
MSG_PACKET = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET
MSG_CONFIG = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2
NLMSG_DONE = 3

# packet attributes
NFULA_PACKET_HDR = 1
NFULA_IFINDEX_INDEV = 4
NFULA_IFINDEX_OUTDEV = 5
NFULA_PAYLOAD = 9
NFULA_PREFIX = 10
# configuration attributes and commands
NFULA_CFG_CMD = 1
NFULA_CFG_MODE = 2
NFULA_CFG_TIMEOUT = 4
NFULA_CFG_QTHRESH = 5
CMD_BIND = 1
CMD_UNBIND = 2
COPY_PACKET = 2

_NLMSG = struct.Struct("=IHHII")
_NFGEN = struct.Struct("!BBH")  # family, version, res_id: the group, big-endian
_NLA = struct.Struct("=HH")
_NLA_TYPE_MASK = 0x3FFF
_HOOKS = {0: "prerouting", 1: "input", 2: "forward", 3: "output", 4: "postrouting"}


class NflogError(ValueError):
    """A message that is not what nfnetlink_log sends."""


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attr(kind: int, value: bytes) -> bytes:
    return _NLA.pack(_NLA.size + len(value), kind) + value + b"\0" * (_align(len(value)) - len(value))


def _message(kind: int, flags: int, seq: int, family: int, group: int, attrs: bytes) -> bytes:
    body = _NFGEN.pack(family, 0, group) + attrs
    return _NLMSG.pack(_NLMSG.size + len(body), kind, flags, seq, 0) + body


def config(
    group: int, seq: int, *, bind: bool | None = None, copy: int = 0, qthresh: int = 0, timeout: int = 0
) -> bytes:
    """A configuration request for `group` (acknowledged): bind or unbind, copy `copy` bytes of
    each packet, flush after `qthresh` packets or `timeout` hundredths of a second."""
    attrs = b""
    if bind is not None:
        attrs += _attr(NFULA_CFG_CMD, bytes([CMD_BIND if bind else CMD_UNBIND]))
    if copy:
        attrs += _attr(NFULA_CFG_MODE, struct.pack("!IBx", copy, COPY_PACKET))
    if qthresh:
        attrs += _attr(NFULA_CFG_QTHRESH, struct.pack("!I", qthresh))
    if timeout:
        attrs += _attr(NFULA_CFG_TIMEOUT, struct.pack("!I", timeout))
    return _message(MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq, AF_UNSPEC, group, attrs)


@dataclass(frozen=True)
class Logged:
    """One packet the kernel logged: which group, the rule's prefix, the hook, the packet's head."""

    group: int
    prefix: str
    hook: str
    payload: bytes
    indev: int = 0
    outdev: int = 0


def encode_packet(p: Logged, seq: int = 0) -> bytes:
    """The message nfnetlink_log sends for `p` (for tests and documentation)."""
    hook = next((k for k, v in _HOOKS.items() if v == p.hook), 2)
    attrs = _attr(NFULA_PACKET_HDR, struct.pack("!HBx", 0x0800, hook))
    if p.indev:
        attrs += _attr(NFULA_IFINDEX_INDEV, struct.pack("!I", p.indev))
    if p.outdev:
        attrs += _attr(NFULA_IFINDEX_OUTDEV, struct.pack("!I", p.outdev))
    attrs += _attr(NFULA_PREFIX, p.prefix.encode() + b"\0")
    attrs += _attr(NFULA_PAYLOAD, p.payload)
    return _message(MSG_PACKET, 0, seq, AF_INET, p.group, attrs)


def _attrs(data: bytes, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    pos = start
    while pos + _NLA.size <= end:
        length, kind = _NLA.unpack_from(data, pos)
        if length < _NLA.size or pos + length > end:
            raise NflogError(f"attribute of length {length} at {pos} overruns its message")
        yield kind & _NLA_TYPE_MASK, data[pos + _NLA.size : pos + length]
        pos += _align(length)


def decode(data: bytes) -> tuple[list[Logged], list[int]]:
    """The logged packets in one read of the socket, and the errors of acknowledgements (0 = ok);
    anything else (NLMSG_DONE after a batch) is skipped."""
    packets: list[Logged] = []
    errors: list[int] = []
    pos = 0
    while pos + _NLMSG.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSG.unpack_from(data, pos)
        if length < _NLMSG.size or pos + length > len(data):
            raise NflogError(f"netlink message of length {length} at {pos} overruns the read ({len(data)} bytes)")
        body = pos + _NLMSG.size
        if kind == NLMSG_ERROR and length >= _NLMSG.size + 4:
            errors.append(-struct.unpack_from("=i", data, body)[0])
        elif kind == MSG_PACKET and length >= _NLMSG.size + _NFGEN.size:
            _family, _version, res_id = _NFGEN.unpack_from(data, body)
            prefix, hook, payload, indev, outdev = "", "", b"", 0, 0
            for attr, value in _attrs(data, body + _NFGEN.size, pos + length):
                if attr == NFULA_PREFIX:
                    prefix = value.split(b"\0", 1)[0].decode("utf-8", "replace")
                elif attr == NFULA_PACKET_HDR and len(value) >= 3:
                    hook = _HOOKS.get(value[2], str(value[2]))
                elif attr == NFULA_PAYLOAD:
                    payload = value
                elif attr == NFULA_IFINDEX_INDEV and len(value) >= 4:
                    indev = struct.unpack_from("!I", value)[0]
                elif attr == NFULA_IFINDEX_OUTDEV and len(value) >= 4:
                    outdev = struct.unpack_from("!I", value)[0]
            packets.append(Logged(res_id, prefix, hook, payload, indev, outdev))
        pos += _align(length)
    return packets, errors


@dataclass(frozen=True)
class Flow:
    """What identifies a probe's packet: protocol number, addresses, ports; for SCTP the INIT's
    initiate tag; for ICMP echo the identifier in `sport`."""

    proto: int
    saddr: str
    daddr: str
    sport: int
    dport: int
    tag: int = 0


# IPv6 extension headers a probe's packet could carry before its transport header: hop-by-hop
# options, routing, destination options (length in 8-octet units, less the first), fragment (8)
_EXTENSIONS = (0, 43, 60)
_FRAGMENT = 44


def flow_of(packet: bytes) -> Flow | None:
    """The flow of an IPv4 or IPv6 packet's head (None for anything else, or too short to say).
    ICMPv6 echo requests (58, type 128) carry their identifier in `sport`, as ICMP's do."""
    if len(packet) >= 40 and packet[0] >> 4 == 6:
        return _flow6(packet)
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    proto = packet[9]
    saddr, daddr = str(ipaddress.IPv4Address(packet[12:16])), str(ipaddress.IPv4Address(packet[16:20]))
    return _transport(proto, saddr, daddr, packet[ihl:])


def _flow6(packet: bytes) -> Flow | None:
    saddr, daddr = str(ipaddress.IPv6Address(packet[8:24])), str(ipaddress.IPv6Address(packet[24:40]))
    proto, pos = packet[6], 40
    for _ in range(8):  # a bounded walk over the extension headers
        if proto in _EXTENSIONS and len(packet) >= pos + 2:
            proto, pos = packet[pos], pos + (packet[pos + 1] + 1) * 8
        elif proto == _FRAGMENT and len(packet) >= pos + 8:
            if struct.unpack_from("!H", packet, pos + 2)[0] & 0xFFF8:
                return None  # a later fragment carries no transport header
            proto, pos = packet[pos], pos + 8
        else:
            break
    if proto == 58:
        l4 = packet[pos:]
        if len(l4) >= 8 and l4[0] == 128:  # echo request: the identifier
            return Flow(proto, saddr, daddr, struct.unpack_from("!H", l4, 4)[0], 0)
        return None
    return _transport(proto, saddr, daddr, packet[pos:])


def _transport(proto: int, saddr: str, daddr: str, l4: bytes) -> Flow | None:
    if proto in (6, 17, 132) and len(l4) >= 4:
        sport, dport = struct.unpack_from("!HH", l4)
        tag = 0
        if proto == 132 and len(l4) >= 20 and l4[12] == 1:  # an INIT chunk: its initiate tag
            tag = struct.unpack_from("!I", l4, 16)[0]
        return Flow(proto, saddr, daddr, sport, dport, tag)
    if proto == 1 and len(l4) >= 8 and l4[0] == 8:  # echo request: the identifier
        return Flow(proto, saddr, daddr, struct.unpack_from("!H", l4, 4)[0], 0)
    return None
