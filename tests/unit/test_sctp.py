"""testbed.wire.sctp: our bytes dissected by scapy, and scapy's bytes parsed by us."""

from __future__ import annotations

import os
import struct

import pytest
from scapy.all import raw
from scapy.layers.inet import IP
from scapy.layers.sctp import (
    SCTP,
    SCTPChunkAbort,
    SCTPChunkCookieAck,
    SCTPChunkCookieEcho,
    SCTPChunkInit,
    SCTPChunkInitAck,
    SCTPChunkParamStateCookie,
)
from scapy.layers.sctp import crc32c as scapy_crc32c

from testbed.wire import sctp


def scapy_checksum_ok(data: bytes) -> bool:
    """scapy's CRC32c over our exact bytes (checksum field zeroed) equals the field scapy reads.

    Not "let scapy rebuild the packet": scapy treats the final chunk padding as a separate
    Padding layer and leaves it out of its checksum, whereas the CRC covers the whole packet.
    """
    return SCTP(data).chksum == scapy_crc32c(data[:8] + b"\0\0\0\0" + data[12:])


def test_crc32c_known_vector_and_scapy_agree():
    assert sctp.crc32c(b"123456789") == 0xE3069283  # RFC 3720 / iSCSI check value
    assert sctp.crc32c(b"") == 0
    for n in (1, 7, 64, 301):
        data = os.urandom(n)
        # scapy returns the value byte-swapped for its big-endian field; compare as wire bytes
        assert sctp.crc32c(data).to_bytes(4, "little") == scapy_crc32c(data).to_bytes(4, "big")
    # continuing a running CRC equals one pass
    assert sctp.crc32c(b"6789", sctp.crc32c(b"12345")) == sctp.crc32c(b"123456789")


def test_init_dissected_by_scapy():
    data = sctp.build_init(40000, 9000, 0xDEADBEEF, a_rwnd=5000, os_streams=3, mis_streams=7, tsn=42)
    pkt = SCTP(data)
    assert (pkt.sport, pkt.dport, pkt.tag) == (40000, 9000, 0)  # INIT carries tag 0
    assert scapy_checksum_ok(data)
    chunk = pkt[SCTPChunkInit]
    assert chunk.type == 1
    assert (chunk.init_tag, chunk.a_rwnd, chunk.n_out_streams, chunk.n_in_streams, chunk.init_tsn) == (
        0xDEADBEEF,
        5000,
        3,
        7,
        42,
    )
    assert chunk.len == 20
    # and scapy, rebuilding the packet from its fields (checksum included), gets our bytes
    assert raw(pkt) == data


def test_init_ack_with_cookie_dissected_by_scapy():
    cookie = b'{"pod":"web-1","x":1}'  # 21 bytes: odd, exercises padding
    data = sctp.build_init_ack(9000, 40000, vtag=0xDEADBEEF, itag=0x01020304, cookie=cookie)
    pkt = SCTP(data)
    assert (pkt.sport, pkt.dport, pkt.tag) == (9000, 40000, 0xDEADBEEF)
    assert scapy_checksum_ok(data)
    chunk = pkt[SCTPChunkInitAck]
    assert chunk.type == 2 and chunk.init_tag == 0x01020304
    assert pkt[SCTPChunkParamStateCookie].cookie == cookie
    # RFC 9260 3.2: the chunk length excludes the final padding, the packet includes it
    assert chunk.len == 4 + 16 + 4 + len(cookie)
    assert len(data) % 4 == 0


def test_abort_t_bit_dissected_by_scapy():
    plain = SCTP(sctp.build_abort(9000, 40000, 0x11111111, t_bit=False))
    reflected = SCTP(sctp.build_abort(9000, 40000, 0x22222222, t_bit=True))
    assert plain[SCTPChunkAbort].TCB == 0 and plain.tag == 0x11111111
    assert reflected[SCTPChunkAbort].TCB == 1 and reflected.tag == 0x22222222
    assert scapy_checksum_ok(raw(plain)) and scapy_checksum_ok(raw(reflected))


def test_cookie_echo_and_ack_dissected_by_scapy():
    echo = SCTP(sctp.build_cookie_echo(1, 2, 7, b"abc"))
    assert echo.tag == 7 and echo[SCTPChunkCookieEcho].cookie.rstrip(b"\0") == b"abc"
    ack = SCTP(sctp.build_cookie_ack(2, 1, 9))
    assert ack.tag == 9 and SCTPChunkCookieAck in ack


def test_parse_scapy_init_ack():
    built = raw(
        SCTP(sport=80, dport=33000, tag=0xCAFE)
        / SCTPChunkInitAck(
            init_tag=77,
            a_rwnd=1000,
            n_out_streams=2,
            n_in_streams=3,
            init_tsn=5,
            params=[SCTPChunkParamStateCookie(cookie=b"hello")],
        )
    )
    pkt = sctp.parse(built)
    assert (pkt.sport, pkt.dport, pkt.vtag) == (80, 33000, 0xCAFE)
    assert pkt.first_type == sctp.INIT_ACK
    info = pkt.init_info()
    assert (info.itag, info.a_rwnd, info.os_streams, info.mis_streams, info.tsn) == (77, 1000, 2, 3, 5)
    assert info.cookie == b"hello"


def test_parse_scapy_init_and_abort():
    init = sctp.parse(raw(SCTP(sport=5, dport=6, tag=0) / SCTPChunkInit(init_tag=99)))
    assert init.first_type == sctp.INIT and init.init_info().itag == 99 and init.vtag == 0
    abort = sctp.parse(raw(SCTP(sport=6, dport=5, tag=99) / SCTPChunkAbort(TCB=1)))
    assert abort.first_type == sctp.ABORT and abort.chunks[0].flags & sctp.ABORT_T_BIT
    assert abort.init_info() is None


def test_our_builders_roundtrip_through_parse():
    data = sctp.build_init_ack(1, 2, 3, 4, b"x" * 10)
    pkt = sctp.parse(data)
    assert pkt.init_info().cookie == b"x" * 10 and pkt.chunk(sctp.INIT_ACK) is not None
    assert sctp.peek_header(data) == (1, 2, 3, sctp.INIT_ACK)


def test_parse_rejects_bad_packets():
    good = bytearray(sctp.build_init(1, 2, 3))
    bad = bytes(good[:12]) + bytes([good[12] ^ 1]) + bytes(good[13:])
    with pytest.raises(sctp.SctpError, match="CRC32c"):
        sctp.parse(bad)
    assert sctp.parse(bad, verify=False).vtag == 0  # checksum ignored on request
    with pytest.raises(sctp.SctpError):
        sctp.parse(bytes(good[:8]))
    # a chunk claiming more bytes than the packet holds
    broken = bytes(good[:14]) + struct.pack("!H", 200) + bytes(good[16:])
    with pytest.raises(sctp.SctpError, match="chunk length"):
        sctp.parse(broken, verify=False)
    with pytest.raises(ValueError):
        sctp.build_init(1, 2, 0)


def test_strip_ipv4_with_and_without_options():
    payload = sctp.build_init(1, 2, 3)
    plain = raw(IP(src="10.0.0.1", dst="10.0.0.2", proto=132) / payload)
    assert sctp.strip_ipv4(plain) == ("10.0.0.1", "10.0.0.2", payload)
    with_opts = raw(IP(src="10.0.0.1", dst="10.0.0.2", proto=132, options=b"\x01\x01\x01\x00") / payload)
    assert with_opts[0] & 0x0F == 6
    assert sctp.strip_ipv4(with_opts)[2] == payload
    # trailing bytes beyond the IP total length (e.g. Ethernet padding) are dropped
    assert sctp.strip_ipv4(plain + b"\0\0")[2] == payload
    with pytest.raises(sctp.SctpError):
        sctp.strip_ipv4(b"\x60" + bytes(39))  # IPv6
