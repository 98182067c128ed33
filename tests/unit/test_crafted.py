"""Crafted probe packets and the classification of answers, checked by dissecting with scapy."""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, TCPerror
from scapy.packet import Raw

from testbed.traffic.crafted import Crafted, build_packet, classify
from testbed.wire import sctp

P = dict(src_netns="", dst_ip="10.244.2.2", timeout=1.0)


def test_packets_are_what_they_claim():
    syn = IP(build_packet(Crafted(1, protocol="TCP", port=80, **P), "10.244.1.2", 40000, 1234))
    assert (syn.src, syn.dst, syn[TCP].sport, syn[TCP].dport, str(syn[TCP].flags), syn[TCP].seq) == (
        "10.244.1.2",
        "10.244.2.2",
        40000,
        80,
        "S",
        1234,
    )
    udp = IP(build_packet(Crafted(2, protocol="UDP", port=53, **P), "10.244.1.2", 40001, 5))
    assert udp[UDP].dport == 53 and bytes(udp[UDP].payload) == b"PROBE 2\n"
    echo = IP(build_packet(Crafted(3, protocol="ICMP", **P), "192.0.2.7", 777, 9))
    assert echo.src == "192.0.2.7" and echo[ICMP].type == 8 and echo[ICMP].id == 777  # any source address
    init = IP(build_packet(Crafted(4, protocol="SCTP", port=7777, **P), "10.244.1.2", 40002, 0xABCDEF))
    assert init.proto == 132
    parsed = sctp.parse(bytes(init.payload))  # checksum verified (scapy may dissect it as SCTP)
    assert parsed.dport == 7777 and parsed.chunk(sctp.INIT) is not None and parsed.init_info().itag == 0xABCDEF


def test_answers_are_classified():
    probe = Crafted(1, protocol="TCP", port=80, **P)
    synack = bytes(IP(src="10.244.2.2", dst="10.244.1.2") / TCP(sport=80, dport=40000, flags="SA"))
    rst = bytes(IP(src="10.244.2.2", dst="10.244.1.2") / TCP(sport=80, dport=40000, flags="RA"))
    other = bytes(IP(src="10.244.2.2", dst="10.244.1.2") / TCP(sport=80, dport=40999, flags="SA"))
    assert classify(probe, 40000, 1, synack)[:2] == ("connected", "SYN-ACK")
    assert classify(probe, 40000, 1, rst)[:2] == ("refused", "RST")
    assert classify(probe, 40000, 1, other) is None
    prohibited = bytes(
        IP(src="10.244.2.1", dst="10.244.1.2")
        / ICMP(type=3, code=13)
        / IPerror(src="10.244.1.2", dst="10.244.2.2", proto=6)
        / TCPerror(sport=40000, dport=80)
    )
    assert classify(probe, 40000, 1, prohibited)[0] == "unreachable"
    udp = Crafted(2, protocol="UDP", port=53, **P)
    reply = bytes(
        IP(src="10.244.2.2", dst="10.244.1.2")
        / UDP(sport=53, dport=40001)
        / b'{"pod": "web", "namespace": "default", "peer_ip": "10.244.1.2"}'
    )
    outcome, _, data = classify(udp, 40001, 1, reply)
    assert outcome == "connected" and data["peer_ip"] == "10.244.1.2"
    unreach = bytes(
        IP(src="10.244.2.2", dst="10.244.1.2")
        / ICMP(type=3, code=3)
        / IPerror(src="10.244.1.2", dst="10.244.2.2", proto=17)
        / UDP(sport=40001, dport=53)
    )
    assert classify(udp, 40001, 1, unreach)[0] == "refused"
    sc = Crafted(3, protocol="SCTP", port=7777, **P)
    ack = bytes(
        IP(src="10.244.2.2", dst="10.244.1.2", proto=132)
        / Raw(sctp.build_init_ack(7777, 40002, 99, 5, b'{"pod": "web", "peer_ip": "10.244.1.2"}'))
    )
    outcome, detail, data = classify(sc, 40002, 99, ack)
    assert (outcome, detail, data["pod"]) == ("connected", "INIT-ACK", "web")
    abort = bytes(IP(src="10.244.2.2", dst="10.244.1.2", proto=132) / Raw(sctp.build_abort(7777, 40002, 99, False)))
    assert classify(sc, 40002, 99, abort)[:2] == ("refused", "ABORT")
