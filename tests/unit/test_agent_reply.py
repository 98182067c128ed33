"""The agent's pure parts: reply objects, TCP request framing, the SCTP responder, the config."""

from __future__ import annotations

import json

import pytest
from scapy.all import raw
from scapy.layers.sctp import (
    SCTP,
    SCTPChunkAbort,
    SCTPChunkCookieAck,
    SCTPChunkData,
    SCTPChunkInit,
    SCTPChunkInitAck,
    SCTPChunkParamStateCookie,
)

from testbed.agent.config import ConfigError, parse_config
from testbed.agent.sctp_responder import SctpResponder
from testbed.wire import sctp
from testbed.wire.reply import (
    MAX_REQUEST_BYTES,
    REPLY_KEYS,
    PortIdentity,
    ReplyEncoder,
    decode_reply,
    encode_reply,
    make_reply,
    parse_request,
    tcp_response,
)

NGINX = PortIdentity("web-1", "default", "kind-worker", "nginx", "TCP", 80)
SIDE = PortIdentity("web-1", "default", "kind-worker", "side", "SCTP", 9000)


# --- reply objects --------------------------------------------------------------------------------


def test_reply_has_exactly_the_documented_keys():
    reply = make_reply(NGINX, "10.244.2.3", 41000, "10.244.1.2")
    assert tuple(reply) == REPLY_KEYS
    assert reply["container"] == "nginx" and reply["port"] == 80 and reply["protocol"] == "TCP"
    assert (reply["peer_ip"], reply["peer_port"], reply["local_ip"]) == ("10.244.2.3", 41000, "10.244.1.2")


def test_encode_decode_roundtrip_and_garbage():
    data = encode_reply(NGINX, "1.2.3.4", 5, "6.7.8.9")
    assert b" " not in data and b"\n" not in data  # compact: one line, one datagram
    assert decode_reply(data) == make_reply(NGINX, "1.2.3.4", 5, "6.7.8.9")
    assert decode_reply(b"<html>") is None
    assert decode_reply(b"\xff\xfe") is None
    assert decode_reply(b'{"other": 1}') is None
    assert decode_reply(b"[1, 2]") is None


# --- TCP request framing -------------------------------------------------------------------------


def test_probe_line_complete_only_at_newline():
    assert parse_request(b"PROBE 7") is None
    req = parse_request(b"PROBE 7\n")
    assert req is not None and not req.http and req.line == b"PROBE 7"
    assert parse_request(b"PROBE 7\r\n").line == b"PROBE 7"


def test_final_forces_an_answer():
    assert parse_request(b"", final=True).http is False  # nc that sends nothing, then EOF
    assert parse_request(b"PRO", final=True).line == b"PRO"
    big = b"x" * MAX_REQUEST_BYTES  # the 4 KiB bound counts as final without any newline
    assert parse_request(big) is not None


def test_http_waits_for_the_blank_line():
    assert parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n") is None
    req = parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert req.http and req.method == "GET"
    assert parse_request(b"HEAD /x HTTP/1.0\n\n").method == "HEAD"  # bare LF endings
    # headers never finished, but the client closed: answer anyway
    assert parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n", final=True).http


def test_http_waits_for_a_declared_body():
    head = b"POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\n"
    assert parse_request(head + b"ab") is None
    assert parse_request(head + b"abcde").method == "POST"
    assert parse_request(head + b"ab", final=True).method == "POST"


def test_not_http_unless_method_and_version():
    assert not parse_request(b"GET\n").http
    assert not parse_request(b"get / HTTP/1.1\n").http  # methods are case-sensitive
    assert not parse_request(b"PROBE 1 HTTP/1.1\n").http


def test_tcp_response_line_and_http():
    body = encode_reply(NGINX, "1.2.3.4", 5, "6.7.8.9")
    assert tcp_response(parse_request(b"PROBE 1\n"), body) == body + b"\n"
    resp = tcp_response(parse_request(b"GET / HTTP/1.1\r\n\r\n"), body)
    head, _, got = resp.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    headers = dict(line.split(b": ", 1) for line in lines[1:])
    assert headers[b"Content-Type"] == b"application/json"
    assert int(headers[b"Content-Length"]) == len(body) and got == body
    assert headers[b"Connection"] == b"close"
    assert json.loads(got)["pod"] == "web-1"
    head_only = tcp_response(parse_request(b"HEAD / HTTP/1.1\r\n\r\n"), body)
    assert head_only.endswith(b"\r\n\r\n") and body not in head_only
    assert f"Content-Length: {len(body)}".encode() in head_only


# --- SCTP responder -----------------------------------------------------------------------------


def responder() -> SctpResponder:
    return SctpResponder({9000: SIDE})


def test_init_to_declared_port_gets_init_ack_with_reply_cookie():
    r = responder()
    init = raw(SCTP(sport=40000, dport=9000, tag=0) / SCTPChunkInit(init_tag=0xABCD))
    out = SCTP(r.handle("10.244.2.3", "10.244.1.2", init))
    assert (out.sport, out.dport, out.tag) == (9000, 40000, 0xABCD)
    assert out[SCTPChunkInitAck].init_tag != 0
    reply = json.loads(out[SCTPChunkParamStateCookie].cookie)
    assert reply["container"] == "side" and reply["protocol"] == "SCTP"
    assert (reply["peer_ip"], reply["peer_port"], reply["local_ip"]) == ("10.244.2.3", 40000, "10.244.1.2")
    sctp.parse(raw(out))  # our own checksum verifies


def test_init_to_undeclared_port_gets_abort_with_init_tag_and_t_bit_clear():
    out = SCTP(
        responder().handle(
            "10.0.0.1", "10.0.0.2", raw(SCTP(sport=1234, dport=9001, tag=0) / SCTPChunkInit(init_tag=0x5555))
        )
    )
    assert (out.sport, out.dport, out.tag) == (9001, 1234, 0x5555)
    assert out[SCTPChunkAbort].TCB == 0  # RFC 9260 8.4 rule 3: tag not reflected


def test_silent_on_everything_else():
    r = responder()
    others = [
        SCTP(sport=9000, dport=40000, tag=5) / SCTPChunkInitAck(init_tag=6),  # a prober's
        SCTP(sport=9000, dport=40000, tag=5) / SCTPChunkAbort(),
        SCTP(sport=1, dport=9000, tag=5) / SCTPChunkData(data=b"x"),
        SCTP(sport=1, dport=9000, tag=7) / SCTPChunkInit(init_tag=8),  # INIT must carry tag 0
        SCTP(sport=1, dport=9000, tag=0) / SCTPChunkInit(init_tag=0),  # initiate tag 0 invalid
    ]
    for pkt in others:
        assert r.handle("10.0.0.1", "10.0.0.2", raw(pkt)) is None
    init = bytearray(raw(SCTP(sport=1, dport=9000, tag=0) / SCTPChunkInit(init_tag=8)))
    init[-1] ^= 0xFF  # corrupt: a real stack drops bad checksums silently
    assert r.handle("10.0.0.1", "10.0.0.2", bytes(init)) is None
    assert r.handle("10.0.0.1", "239.1.1.1", raw(SCTP(sport=1, dport=9000) / SCTPChunkInit(init_tag=8))) is None
    assert r.handle("10.0.0.1", "10.0.0.2", b"short") is None


def test_cookie_echo_answered_until_abort():
    r = responder()
    init = raw(SCTP(sport=40000, dport=9000, tag=0) / SCTPChunkInit(init_tag=0x1111))
    ack = sctp.parse(r.handle("10.0.0.1", "10.0.0.2", init))
    info = ack.init_info()
    echo = sctp.build_cookie_echo(40000, 9000, info.itag, info.cookie)
    out = SCTP(r.handle("10.0.0.1", "10.0.0.2", echo))
    assert SCTPChunkCookieAck in out and out.tag == 0x1111
    # a COOKIE-ECHO with the wrong tag, or from elsewhere, is not ours
    assert r.handle("10.0.0.1", "10.0.0.2", sctp.build_cookie_echo(40000, 9000, info.itag ^ 1, info.cookie)) is None
    assert r.handle("10.0.0.9", "10.0.0.2", echo) is None
    assert r.handle("10.0.0.1", "10.0.0.2", sctp.build_abort(40000, 9000, info.itag)) is None
    assert r.handle("10.0.0.1", "10.0.0.2", echo) is None  # forgotten after ABORT


def test_update_changes_declared_ports():
    r = responder()
    init = raw(SCTP(sport=1, dport=9100, tag=0) / SCTPChunkInit(init_tag=3))
    assert sctp.parse(r.handle("a", "10.0.0.2", init)).first_type == sctp.ABORT
    r.update({9100: SIDE})
    assert sctp.parse(r.handle("a", "10.0.0.2", init)).first_type == sctp.INIT_ACK


# --- configuration -----------------------------------------------------------------------------

GOOD = {
    "pods": [
        {
            "netns": "/run/netns/x",
            "pod": "web-1",
            "namespace": "default",
            "node": "kind-worker",
            "ip": "10.244.1.2",
            "ports": [
                {"container": "nginx", "name": "http", "port": 80, "protocol": "TCP"},
                {"container": "side", "name": "", "port": 9000, "protocol": "SCTP"},
            ],
        }
    ]
}


def test_config_parses():
    cfg = parse_config(GOOD)
    pod = cfg.pods[0]
    assert pod.label == "default/web-1" and [p.port for p in pod.ports] == [80, 9000]
    assert pod.identity(pod.ports[1]) == SIDE


def test_config_reports_every_problem_at_once():
    bad = {
        "pods": [
            {
                "netns": "",
                "pod": "p",
                "namespace": "n",
                "ports": [
                    {"container": "c", "port": 0, "protocol": "TCP"},
                    {"container": "c", "port": 80, "protocol": "ICMP"},
                    {"container": "c", "port": True},
                ],
            }
        ]
    }
    with pytest.raises(ConfigError) as info:
        parse_config(bad, "f.json")
    text = str(info.value)
    assert "pods[0].netns" in text and "ports[0].port" in text
    assert "ports[1].protocol" in text and "ports[2].port" in text
    with pytest.raises(ConfigError):
        parse_config({"pod": []})


@pytest.mark.parametrize(
    "who, peer_ip, peer_port, local_ip",
    [
        (PortIdentity("web-1", "default", "kind-worker", "c", "TCP", 80), "10.244.1.2", 40000, "10.244.2.3"),
        (PortIdentity("a", "x", "n", "cont", "TCP", 65535), "fd00:10:244::5", 1, "fe80::1%eth0"),
        (PortIdentity('q"uo\\te', "n\u00e9", "node", "c", "UDP", 1), "192.168.1.2", 0, "0.0.0.0"),
    ],
)
def test_the_reply_encoder_writes_encode_replys_bytes(who, peer_ip, peer_port, local_ip):
    encode = ReplyEncoder(who)
    assert encode(peer_ip, peer_port, local_ip) == encode_reply(who, peer_ip, peer_port, local_ip)
    assert encode.who == who
