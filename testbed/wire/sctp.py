"""A minimal SCTP packet codec (RFC 9260): just enough to open and refuse associations by hand.

Where it sits: the kernel this testbed runs on has no SCTP sockets, yet Kubernetes Services and
NetworkPolicies must be checked for SCTP too. So both ends speak SCTP in userspace over raw IP
sockets (protocol 132): the prober (traffic/prober.py) sends INIT and expects INIT-ACK or ABORT,
and the agent (agent/sctp_responder.py) answers like a real stack would. Conntrack and NAT in the
emulated nodes see genuine SCTP packets either way. Pure code: no sockets, no root.

Only the handshake chunks are modelled (INIT, INIT-ACK with its State Cookie, ABORT, COOKIE-ECHO,
COOKIE-ACK); every other chunk is parsed generically as (type, flags, value).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

PROTO_SCTP = 132

# Chunk types (RFC 9260 section 3.2).
INIT = 1
INIT_ACK = 2
ABORT = 6
COOKIE_ECHO = 10
COOKIE_ACK = 11

PARAM_STATE_COOKIE = 7
ABORT_T_BIT = 0x01  # "the Verification Tag is reflected" (RFC 9260 section 3.3.7)

_COMMON = struct.Struct("!HHII")  # src port, dst port, verification tag, checksum
_CHUNK = struct.Struct("!BBH")  # type, flags, length (header + value, without padding)
_INIT_FIXED = struct.Struct("!IIHHI")  # initiate tag, a_rwnd, OS, MIS, initial TSN
_PARAM = struct.Struct("!HH")


class SctpError(ValueError):
    """A packet that is not valid SCTP (too short, bad lengths, bad checksum)."""


# --- CRC32c (Castagnoli), reflected polynomial 0x82F63B78, table-driven -------------------------


def _make_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC_TABLE = _make_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC32c of data (crc32c(b"123456789") == 0xE3069283); pass crc to continue a running sum."""
    table = _CRC_TABLE  # local name: this loop is the agent's hottest path
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _finish(sport: int, dport: int, vtag: int, chunks: bytes) -> bytes:
    """Prepend the common header; the checksum covers the packet with a zero checksum field and
    is stored least-significant byte first (RFC 9260 appendix A, as Linux's sctp_compute_cksum)."""
    head = _COMMON.pack(sport, dport, vtag, 0)
    crc = crc32c(chunks, crc32c(head))
    return head[:8] + crc.to_bytes(4, "little") + chunks


def _chunk(ctype: int, flags: int, value: bytes) -> bytes:
    length = _CHUNK.size + len(value)
    return _CHUNK.pack(ctype, flags, length) + value + b"\0" * (-length % 4)


def _param(ptype: int, value: bytes, last: bool = False) -> bytes:
    """A TLV parameter; the last one of a chunk is left unpadded so that the chunk length
    counts inner padding but not the final padding (RFC 9260 section 3.2)."""
    length = _PARAM.size + len(value)
    return _PARAM.pack(ptype, length) + value + (b"" if last else b"\0" * (-length % 4))


# --- builders ------------------------------------------------------------------------------------


def build_init(
    sport: int,
    dport: int,
    itag: int,
    a_rwnd: int = 106496,
    os_streams: int = 10,
    mis_streams: int = 65535,
    tsn: int | None = None,
) -> bytes:
    """An INIT (verification tag 0, RFC 9260 section 8.5.1) offering initiate tag itag."""
    if not itag:
        raise ValueError("the initiate tag of an INIT must not be 0")
    body = _INIT_FIXED.pack(itag, a_rwnd, os_streams, mis_streams, itag if tsn is None else tsn)
    return _finish(sport, dport, 0, _chunk(INIT, 0, body))


def build_init_ack(
    sport: int,
    dport: int,
    vtag: int,
    itag: int,
    cookie: bytes,
    a_rwnd: int = 106496,
    os_streams: int = 10,
    mis_streams: int = 10,
    tsn: int | None = None,
) -> bytes:
    """An INIT-ACK: vtag is the peer's initiate tag, itag our own, cookie the State Cookie."""
    if not itag:
        raise ValueError("the initiate tag of an INIT-ACK must not be 0")
    body = _INIT_FIXED.pack(itag, a_rwnd, os_streams, mis_streams, itag if tsn is None else tsn)
    body += _param(PARAM_STATE_COOKIE, cookie, last=True)
    return _finish(sport, dport, vtag, _chunk(INIT_ACK, 0, body))


def build_abort(sport: int, dport: int, vtag: int, t_bit: bool = False) -> bytes:
    """An ABORT without error causes; t_bit says vtag is reflected from the packet aborted."""
    return _finish(sport, dport, vtag, _chunk(ABORT, ABORT_T_BIT if t_bit else 0, b""))


def build_cookie_echo(sport: int, dport: int, vtag: int, cookie: bytes) -> bytes:
    return _finish(sport, dport, vtag, _chunk(COOKIE_ECHO, 0, cookie))


def build_cookie_ack(sport: int, dport: int, vtag: int) -> bytes:
    return _finish(sport, dport, vtag, _chunk(COOKIE_ACK, 0, b""))


# --- parsing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    type: int
    flags: int
    value: bytes  # without the 4-byte chunk header and without padding


@dataclass(frozen=True)
class InitInfo:
    """The fixed part and parameters of an INIT or INIT-ACK chunk."""

    itag: int
    a_rwnd: int
    os_streams: int
    mis_streams: int
    tsn: int
    params: dict[int, bytes] = field(default_factory=dict)

    @property
    def cookie(self) -> bytes | None:
        return self.params.get(PARAM_STATE_COOKIE)


@dataclass(frozen=True)
class SctpPacket:
    sport: int
    dport: int
    vtag: int
    checksum: int  # as the CRC32c value (already byte-swapped from the wire)
    chunks: tuple[Chunk, ...]

    @property
    def first_type(self) -> int | None:
        return self.chunks[0].type if self.chunks else None

    def chunk(self, ctype: int) -> Chunk | None:
        return next((c for c in self.chunks if c.type == ctype), None)

    def init_info(self) -> InitInfo | None:
        """The INIT or INIT-ACK content of this packet, if it carries one."""
        c = self.chunk(INIT) or self.chunk(INIT_ACK)
        return parse_init_value(c.value) if c else None


def parse_init_value(value: bytes) -> InitInfo:
    if len(value) < _INIT_FIXED.size:
        raise SctpError("INIT/INIT-ACK chunk too short")
    itag, a_rwnd, os_streams, mis_streams, tsn = _INIT_FIXED.unpack_from(value)
    params: dict[int, bytes] = {}
    pos = _INIT_FIXED.size
    while pos + _PARAM.size <= len(value):
        ptype, plen = _PARAM.unpack_from(value, pos)
        if plen < _PARAM.size or pos + plen > len(value):
            raise SctpError(f"bad parameter length {plen} at offset {pos}")
        params.setdefault(ptype, value[pos + _PARAM.size : pos + plen])
        pos += plen + (-plen % 4)
    return InitInfo(itag, a_rwnd, os_streams, mis_streams, tsn, params)


def peek_header(data: bytes) -> tuple[int, int, int, int | None]:
    """(sport, dport, vtag, first chunk type) without checksum work: lets a busy receiver drop
    packets that are not for it before paying for the CRC."""
    if len(data) < _COMMON.size:
        raise SctpError("shorter than the SCTP common header")
    sport, dport, vtag, _ = _COMMON.unpack_from(data)
    return sport, dport, vtag, data[12] if len(data) > 12 else None


def parse(data: bytes, verify: bool = True) -> SctpPacket:
    """Parse an SCTP packet (IP header already stripped); verify the CRC32c unless told not to."""
    if len(data) < _COMMON.size:
        raise SctpError("shorter than the SCTP common header")
    sport, dport, vtag, _ = _COMMON.unpack_from(data)
    checksum = int.from_bytes(data[8:12], "little")
    if verify:
        computed = crc32c(data[12:], crc32c(data[:8] + b"\0\0\0\0"))
        if computed != checksum:
            raise SctpError(f"bad CRC32c: got {checksum:#010x}, computed {computed:#010x}")
    chunks = []
    pos = _COMMON.size
    while pos + _CHUNK.size <= len(data):
        ctype, flags, length = _CHUNK.unpack_from(data, pos)
        if length < _CHUNK.size or pos + length > len(data):
            raise SctpError(f"bad chunk length {length} at offset {pos}")
        chunks.append(Chunk(ctype, flags, data[pos + _CHUNK.size : pos + length]))
        pos += length + (-length % 4)
    return SctpPacket(sport, dport, vtag, checksum, tuple(chunks))


def strip_ipv4(data: bytes) -> tuple[str, str, bytes]:
    """(source IP, destination IP, payload) of an IPv4 packet, as a raw socket returns it."""
    if len(data) < 20 or data[0] >> 4 != 4:
        raise SctpError("not an IPv4 packet")
    ihl = (data[0] & 0x0F) * 4
    total = int.from_bytes(data[2:4], "big")
    if ihl < 20 or len(data) < ihl:
        raise SctpError("bad IPv4 header length")
    end = total if ihl <= total <= len(data) else len(data)
    return _dotted(data[12:16]), _dotted(data[16:20]), data[ihl:end]


def _dotted(addr: bytes) -> str:
    return f"{addr[0]}.{addr[1]}.{addr[2]}.{addr[3]}"
