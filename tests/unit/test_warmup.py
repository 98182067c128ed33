"""emu/warmup.py's packets: the echo requests it sends and the replies it accepts (no root)."""

from __future__ import annotations

import struct

from testbed.emu.warmup import ECHO_REPLY, ECHO_REPLY6, ECHO_REQUEST, ECHO_REQUEST6, checksum, echo_request, parse_reply


def test_checksum_of_rfc1071_example() -> None:
    # RFC 1071's worked example: the one's complement sum of these words is 0xddf2
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == (~0xDDF2 & 0xFFFF)
    assert checksum(b"\x01") == (~0x0100 & 0xFFFF)  # an odd length is padded with a zero byte


def test_ipv4_request_carries_a_valid_checksum() -> None:
    packet = echo_request(0x1234, 7, v6=False)
    kind, code, _, ident, seq = struct.unpack_from("!BBHHH", packet)
    assert (kind, code, ident, seq) == (ECHO_REQUEST, 0, 0x1234, 7)
    assert checksum(packet) == 0  # a packet with its checksum sums to 0xffff


def test_ipv6_request_leaves_the_checksum_to_the_kernel() -> None:
    packet = echo_request(0x1234, 7, v6=True)
    assert struct.unpack_from("!BBHHH", packet) == (ECHO_REQUEST6, 0, 0, 0x1234, 7)


def test_replies_are_read_past_the_ipv4_header_only() -> None:
    icmp = struct.pack("!BBHHH", ECHO_REPLY, 0, 0, 9, 3) + b"x"
    header = bytes([0x46]) + bytes(23)  # IHL 6: a 24-byte header with options
    assert parse_reply(header + icmp, v6=False) == (9, 3)
    assert parse_reply(icmp, v6=False) is None  # too short once the header is skipped
    assert parse_reply(struct.pack("!BBHHH", ECHO_REPLY6, 0, 0, 9, 3), v6=True) == (9, 3)


def test_requests_and_errors_are_not_replies() -> None:
    header = bytes([0x45]) + bytes(19)
    assert parse_reply(header + echo_request(9, 3, v6=False), v6=False) is None
    assert parse_reply(header + struct.pack("!BBHHH", 3, 1, 0, 0, 0), v6=False) is None  # unreachable
    assert parse_reply(echo_request(9, 3, v6=True), v6=True) is None
