"""Probes over IPv6 without a cluster (issue 15): crafted packets and their answers, the nflog
flow of an IPv6 packet's head (drop evidence), the agent's SCTP answers to an IPv6 peer, the
source port of an iperf3 run; checked by dissecting with scapy."""

from __future__ import annotations

import ipaddress
import json

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import TCP, UDP, TCPerror, UDPerror
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ParamProblem,
    IPerror6,
    IPv6,
    IPv6ExtHdrHopByHop,
)
from scapy.packet import Raw

from testbed.agent.sctp_responder import SctpResponder
from testbed.traffic.crafted import Crafted, build_packet, classify6, proto_number
from testbed.traffic.throughput import parse
from testbed.wire import nflog, sctp
from testbed.wire.reply import PortIdentity, decode_reply

SRC, DST = "fd00:10:244:1::2", "fd00:10:244:2::3"
P = dict(src_netns="", dst_ip=DST, timeout=1.0)


def test_ipv6_packets_are_what_they_claim():
    syn = IPv6(build_packet(Crafted(1, protocol="TCP", port=80, **P), SRC, 40000, 1234))
    assert (syn.src, syn.dst, syn.nh, syn[TCP].dport, str(syn[TCP].flags), syn[TCP].seq) == (SRC, DST, 6, 80, "S", 1234)
    assert syn.fl == 1234 and syn.hlim == 64
    udp = IPv6(build_packet(Crafted(2, protocol="UDP", port=53, **P), SRC, 40001, 5))
    assert udp[UDP].dport == 53 and bytes(udp[UDP].payload) == b"PROBE 2\n"
    echo = IPv6(build_packet(Crafted(3, protocol="ICMP", **P), "fd00::99", 777, 9))
    assert echo.src == "fd00::99" and echo[ICMPv6EchoRequest].id == 777  # any source address
    init = IPv6(build_packet(Crafted(4, protocol="SCTP", port=7777, **P), SRC, 40002, 0xABCDEF))
    assert init.nh == 132 and proto_number(Crafted(4, protocol="ICMP", **P)) == 58
    parsed = sctp.parse(bytes(init.payload))
    assert parsed.dport == 7777 and parsed.init_info().itag == 0xABCDEF


def _from(src: str, proto: int, layer) -> tuple[str, int, bytes]:
    """What an IPv6 raw socket reads: the source beside a payload without IP header."""
    return src, proto, bytes(layer)


def test_ipv6_answers_are_classified():
    tcp = Crafted(1, protocol="TCP", port=80, **P)
    assert classify6(tcp, 40000, 1, *_from(DST, 6, TCP(sport=80, dport=40000, flags="SA")))[:2] == (
        "connected",
        "SYN-ACK",
    )
    assert classify6(tcp, 40000, 1, *_from(DST, 6, TCP(sport=80, dport=40000, flags="RA")))[:2] == ("refused", "RST")
    assert classify6(tcp, 40000, 1, *_from(DST, 6, TCP(sport=80, dport=40999, flags="SA"))) is None
    assert classify6(tcp, 40000, 1, *_from("fd00::1", 6, TCP(sport=80, dport=40000, flags="SA"))) is None
    prohibited = ICMPv6DestUnreach(code=1) / IPerror6(src=SRC, dst=DST, nh=6) / TCPerror(sport=40000, dport=80)
    assert classify6(tcp, 40000, 1, *_from("fd00:10:244:2::1", 58, prohibited))[0] == "unreachable"
    udp = Crafted(2, protocol="UDP", port=53, **P)
    reply = UDP(sport=53, dport=40001) / b'{"pod": "web", "namespace": "default", "peer_ip": "fd00:10:244:1::2"}'
    outcome, _, data = classify6(udp, 40001, 1, *_from(DST, 17, reply))
    assert outcome == "connected" and data["peer_ip"] == SRC
    unreach = ICMPv6DestUnreach(code=4) / IPerror6(src=SRC, dst=DST, nh=17) / UDPerror(sport=40001, dport=53)
    assert classify6(udp, 40001, 1, *_from(DST, 58, unreach))[0] == "refused"
    echo = Crafted(3, protocol="ICMP", **P)
    assert classify6(echo, 777, 1, *_from(DST, 58, ICMPv6EchoReply(id=777)))[:2] == ("connected", "echo reply")
    assert classify6(echo, 777, 1, *_from(DST, 58, ICMPv6EchoReply(id=778))) is None
    sc = Crafted(4, protocol="SCTP", port=7777, **P)
    ack = sctp.build_init_ack(7777, 40002, 99, 5, b'{"pod": "web", "peer_ip": "fd00:10:244:1::2"}')
    outcome, detail, data = classify6(sc, 40002, 99, DST, 132, ack)
    assert (outcome, detail, data["pod"]) == ("connected", "INIT-ACK", "web")
    assert classify6(sc, 40002, 99, DST, 132, sctp.build_abort(7777, 40002, 99, False))[:2] == ("refused", "ABORT")
    # no SCTP stack and no responder: the unknown next header is IPv6's "protocol unreachable"
    problem = ICMPv6ParamProblem(code=1, ptr=6) / IPerror6(src=SRC, dst=DST, nh=132) / Raw(b"\0" * 8)
    assert classify6(sc, 40002, 99, *_from(DST, 58, problem))[0] == "refused"


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    proto=st.sampled_from([6, 17, 132, 58]),
    src=st.ip_addresses(v=6).map(str),
    dst=st.ip_addresses(v=6).map(str),
    sport=st.integers(1, 0xFFFF),
    dport=st.integers(1, 0xFFFF),
    tag=st.integers(1, 2**32 - 1),
    hop_by_hop=st.booleans(),
)
def test_flow_of_an_ipv6_head(proto, src, dst, sport, dport, tag, hop_by_hop):
    if proto == 6:
        l4 = TCP(sport=sport, dport=dport, flags="S")
    elif proto == 17:
        l4 = UDP(sport=sport, dport=dport)
    elif proto == 132:
        l4 = Raw(sctp.build_init(sport, dport, tag))
    else:
        l4 = ICMPv6EchoRequest(id=sport)
    head = (
        IPv6(src=src, dst=dst, nh=proto) / l4
        if not hop_by_hop
        else IPv6(src=src, dst=dst) / IPv6ExtHdrHopByHop(nh=proto) / l4
    )
    flow = nflog.flow_of(bytes(head)[:128])  # the bytes the drop log copies
    s, d = str(ipaddress.IPv6Address(src)), str(ipaddress.IPv6Address(dst))
    if proto == 58:
        assert flow == nflog.Flow(58, s, d, sport, 0)
    else:
        assert flow == nflog.Flow(proto, s, d, sport, dport, tag if proto == 132 else 0)


def test_flow_of_ignores_what_no_probe_sends():
    assert nflog.flow_of(bytes(IPv6(src=SRC, dst=DST) / ICMPv6EchoReply(id=5))) is None  # not a request
    assert nflog.flow_of(bytes(IPv6(src=SRC, dst=DST))[:39]) is None  # too short


def test_the_sctp_responder_answers_an_ipv6_peer_from_the_address_it_reached():
    who = PortIdentity("web", "default", "kind-worker", "nginx", "SCTP", 7777)
    responder = SctpResponder({7777: who})
    ack = sctp.parse(responder.handle(SRC, DST, sctp.build_init(40000, 7777, 42)))
    info = ack.init_info()
    assert ack.vtag == 42 and info is not None
    reply = decode_reply(info.cookie or b"")
    assert (reply["peer_ip"], reply["peer_port"], reply["local_ip"]) == (SRC, 40000, DST)
    refused = sctp.parse(responder.handle(SRC, DST, sctp.build_init(40001, 9, 43)))
    assert refused.chunk(sctp.ABORT) is not None and refused.vtag == 43
    assert responder.handle(SRC, "ff02::1", sctp.build_init(40002, 7777, 44)) is None  # multicast: silent
    assert responder.handle("10.244.1.2", "224.0.0.1", sctp.build_init(40002, 7777, 44)) is None


def test_an_iperf3_run_reports_its_source_port():
    out = {
        "start": {"connected": [{"local_host": SRC, "local_port": 51234, "remote_host": DST, "remote_port": 5201}]},
        "end": {"sum_received": {"bits_per_second": 8e9}, "sum_sent": {"retransmits": 0}, "streams": [{}]},
    }
    r = parse(json.dumps(out))
    assert (r.outcome, r.sport, r.mbps) == ("connected", 51234, 8000.0)


def test_a_dual_stack_run_gets_a_reachability_matrix_per_family():
    from testbed.analysis import from_rows, reachability_matrices

    from .synthetic_runs import row, synthetic_rows

    rows = synthetic_rows()
    assert [m.family for m in reachability_matrices(from_rows(rows))] == ["", "", "", ""]  # IPv4 only: as before
    for r in rows:
        r["family"] = "IPv4"
    six = [
        row(src_name="a", dst_name="c", outcome="timeout", expected_outcome="connected", family="IPv6"),
        row(src_name="c", dst_name="a", family="IPv6"),
    ]
    matrices = reachability_matrices(from_rows(rows + six))
    baseline = [(m.protocol, m.family) for m in matrices if m.step == "baseline"]
    assert baseline == [("TCP", "IPv4"), ("UDP", "IPv4"), ("TCP", "IPv6")]
    v6 = next(m for m in matrices if m.family == "IPv6")
    v4 = next(m for m in matrices if m.family == "IPv4" and m.protocol == "TCP" and m.step == "baseline")
    assert v6.title == "baseline — TCP over IPv6" and int(v6.probes.to_numpy().sum()) == 2
    assert int(v6.mismatches.to_numpy().sum()) == 1 and v6.outcome.at["a", "c:80"] == "timeout"
    assert int(v4.probes.to_numpy().sum()) == 8  # the IPv4 cells keep their own probes only
