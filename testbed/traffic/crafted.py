"""scapy-crafted probes: one packet each, classified by the answer the network gives.

Where it sits: beside the socket prober (traffic/prober.py), for what a socket cannot say or
do. ICMP echo; TCP SYN telling accepted (SYN-ACK), refused (RST) and filtered (no answer, or
an ICMP error) apart, as a port scanner does; UDP with the agent's reply; SCTP INIT (the
agent's userspace responder answers INIT-ACK or ABORT); and any source address, e.g. an
address inside or outside an ipBlock, which a socket bound to real addresses cannot send.

Packets are built and dissected with scapy; they are sent through a raw IP socket opened
inside the source namespace (IP_HDRINCL) and answers are read from raw sockets of the same
namespace, so everything crosses the emulated dataplane. Over IPv6 (a dual-stack cluster's
IPv6 addresses, issue 15) the same four kinds: ICMPv6 echo for ICMP, TCP, UDP and SCTP, sent
through an IPv6 IPPROTO_RAW socket (which takes the whole packet, header included) and answered
on IPv6 raw sockets, which read no IP header: the answer's source comes with it, and the ICMPv6
errors quote the probe (destination unreachable, or the parameter problem of an unknown next
header, IPv6's "protocol unreachable"). All probes of a call are in flight
at once; blocked flows cost one timeout in total, or less with drop evidence: given the
cluster's DropLog (traffic/droplog.py), a probe whose packet a node logged as dropped ends at
once (`timeout`, evidence `drop-log`, and where), as in the socket prober.
"""

from __future__ import annotations

import dataclasses
import random
import select
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..netns import NetnsSwitcher
from ..wire import sctp
from ..wire.reply import decode_reply
from .droplog import FlowIndex
from .prober import evidence_of

if TYPE_CHECKING:
    from .droplog import DropLog

PROTOCOLS = ("ICMP", "TCP", "UDP", "SCTP")
_PROTO_NUM = {
    "ICMP": socket.IPPROTO_ICMP,
    "TCP": socket.IPPROTO_TCP,
    "UDP": socket.IPPROTO_UDP,
    "SCTP": sctp.PROTO_SCTP,
}
_PROTO_NUM6 = {**_PROTO_NUM, "ICMP": socket.IPPROTO_ICMPV6}


def is_ipv6(probe: Crafted) -> bool:
    return ":" in probe.dst_ip


def proto_number(probe: Crafted) -> int:
    """The IP protocol (IPv6: next header) number of the probe's packet."""
    return (_PROTO_NUM6 if is_ipv6(probe) else _PROTO_NUM)[probe.protocol]


@dataclass(frozen=True)
class Crafted:
    id: int
    src_netns: str  # namespace file; "" = the caller's own
    dst_ip: str
    protocol: str  # ICMP | TCP | UDP | SCTP
    port: int = 0  # destination port (not for ICMP)
    timeout: float = 1.0
    src_ip: str | None = None  # None: the address the namespace's route picks


@dataclass(frozen=True)
class CraftedResult:
    id: int
    outcome: str  # connected | refused | timeout | unreachable
    latency_ms: float | None
    reply: dict | None  # the agent's JSON (UDP and SCTP answers carry it)
    detail: str  # what answered: "SYN-ACK", "RST", "ICMP type 3 code 13", ...
    sent: bytes  # the packet sent (IP header included), for captures and tests
    evidence: str = ""  # how a failure was known: drop-log | timeout | reset
    drop_at: str = ""  # node/table/chain[rule] (verdict) of a logged drop or reject of the packet
    sport: int = 0  # the packet's source port (ICMP: the echo identifier)


def build_packet(probe: Crafted, src_ip: str, sport: int, token: int) -> bytes:
    """The probe's IP packet (pure, built with scapy); over IPv6 the flow label carries the token,
    as IPv4's id does, and ICMP is an ICMPv6 echo request."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP  # deferred: scapy takes ~0.5 s to import
    from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6  # deferred
    from scapy.packet import Raw  # deferred

    v6 = is_ipv6(probe)
    ip = (
        IPv6(src=src_ip, dst=probe.dst_ip, hlim=64, fl=token & 0xFFFFF)
        if v6
        else IP(src=src_ip, dst=probe.dst_ip, id=token & 0xFFFF, ttl=64)
    )
    if probe.protocol == "ICMP":
        if v6:
            return bytes(ip / ICMPv6EchoRequest(id=sport, seq=token & 0xFFFF, data=b"testbed"))
        return bytes(ip / ICMP(type=8, id=sport, seq=token & 0xFFFF) / b"testbed")
    if probe.protocol == "TCP":
        return bytes(ip / TCP(sport=sport, dport=probe.port, flags="S", seq=token))
    if probe.protocol == "UDP":
        return bytes(ip / UDP(sport=sport, dport=probe.port) / f"PROBE {probe.id}\n".encode())
    if probe.protocol == "SCTP":
        ip.setfieldval("nh" if v6 else "proto", sctp.PROTO_SCTP)
        return bytes(ip / Raw(sctp.build_init(sport, probe.port, token)))
    raise ValueError(f"unknown protocol {probe.protocol!r}")


def classify6(
    probe: Crafted, sport: int, token: int, src: str, proto: int, payload: bytes
) -> tuple[str, str, dict | None] | None:
    """What an answer read from an IPv6 raw socket (no IP header: its source address and next
    header come beside it) means for a probe, or None if it is not an answer to it (pure)."""
    from scapy.layers.inet import TCP, UDP, TCPerror, UDPerror  # deferred
    from scapy.layers.inet6 import (  # deferred
        ICMPv6DestUnreach,
        ICMPv6EchoReply,
        ICMPv6ParamProblem,
        IPerror6,
        IPv6,
    )

    pkt = IPv6(bytes(IPv6(src=src, dst="::", nh=proto, plen=len(payload))) + payload)
    err = pkt.getlayer(ICMPv6DestUnreach)
    if err is None:
        err = pkt.getlayer(ICMPv6ParamProblem)
    if err is not None and pkt.haslayer(IPerror6):
        inner = pkt[IPerror6]
        if inner.dst != _canonical6(probe.dst_ip) or inner.nh != proto_number(probe):
            return None
        if probe.protocol == "TCP" and (not pkt.haslayer(TCPerror) or pkt[TCPerror].sport != sport):
            return None
        if probe.protocol == "UDP" and (not pkt.haslayer(UDPerror) or pkt[UDPerror].sport != sport):
            return None
        # port unreachable, or a next header nobody takes (IPv6's protocol unreachable): refused
        refused = (err.type, err.code) in ((1, 4), (4, 1))
        return "refused" if refused else "unreachable", f"ICMPv6 type {err.type} code {err.code} from {src}", None
    if src != _canonical6(probe.dst_ip):
        return None
    if probe.protocol == "ICMP" and pkt.haslayer(ICMPv6EchoReply) and pkt[ICMPv6EchoReply].id == sport:
        return "connected", "echo reply", None
    if probe.protocol == "TCP" and proto == socket.IPPROTO_TCP:
        tcp = pkt[TCP] if pkt.haslayer(TCP) else None
        if tcp is None or tcp.sport != probe.port or tcp.dport != sport:
            return None
        if tcp.flags.S and tcp.flags.A:
            return "connected", "SYN-ACK", None
        return ("refused", "RST", None) if tcp.flags.R else None
    if probe.protocol == "UDP" and proto == socket.IPPROTO_UDP and pkt.haslayer(UDP):
        if pkt[UDP].sport == probe.port and pkt[UDP].dport == sport:
            return "connected", "UDP reply", decode_reply(bytes(pkt[UDP].payload))
        return None
    if probe.protocol == "SCTP" and proto == sctp.PROTO_SCTP:
        return _classify_sctp(probe, sport, token, payload)
    return None


def _canonical6(ip: str) -> str:
    return socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, ip))


def _classify_sctp(probe: Crafted, sport: int, token: int, payload: bytes) -> tuple[str, str, dict | None] | None:
    try:
        answer = sctp.parse(payload)
    except sctp.SctpError:
        return None
    if answer.sport != probe.port or answer.dport != sport:
        return None
    if answer.chunk(sctp.INIT_ACK) is not None and answer.vtag == token:
        info = answer.init_info()
        return "connected", "INIT-ACK", decode_reply((info.cookie if info else None) or b"")
    if answer.chunk(sctp.ABORT) is not None:
        return "refused", "ABORT", None
    return None


def classify(probe: Crafted, sport: int, token: int, packet: bytes) -> tuple[str, str, dict | None] | None:
    """What an answer means for a probe, or None if it is not an answer to it (pure)."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, TCPerror, UDPerror  # deferred

    pkt = IP(packet)
    if pkt.haslayer(ICMP) and pkt[ICMP].type == 3 and pkt.haslayer(IPerror):
        inner = pkt[IPerror]
        if inner.dst != probe.dst_ip or inner.proto != _PROTO_NUM[probe.protocol]:
            return None
        if probe.protocol == "TCP" and (not pkt.haslayer(TCPerror) or pkt[TCPerror].sport != sport):
            return None
        if probe.protocol == "UDP" and (not pkt.haslayer(UDPerror) or pkt[UDPerror].sport != sport):
            return None
        code = pkt[ICMP].code
        outcome = "refused" if code in (2, 3) else "unreachable"  # protocol/port unreachable: refused
        return outcome, f"ICMP type 3 code {code} from {pkt.src}", None
    if pkt.src != probe.dst_ip:
        return None
    if probe.protocol == "ICMP" and pkt.haslayer(ICMP) and pkt[ICMP].type == 0 and pkt[ICMP].id == sport:
        return "connected", "echo reply", None
    if probe.protocol == "TCP" and pkt.haslayer(TCP) and pkt[TCP].sport == probe.port and pkt[TCP].dport == sport:
        flags = pkt[TCP].flags
        if flags.S and flags.A:
            return "connected", "SYN-ACK", None
        if flags.R:
            return "refused", "RST", None
        return None
    if probe.protocol == "UDP" and pkt.haslayer(UDP) and pkt[UDP].sport == probe.port and pkt[UDP].dport == sport:
        return "connected", "UDP reply", decode_reply(bytes(pkt[UDP].payload))
    if probe.protocol == "SCTP" and pkt.proto == sctp.PROTO_SCTP:
        return _classify_sctp(probe, sport, token, bytes(pkt.payload))
    return None


def _source_ip(dst: str) -> str:
    """The address this namespace's routing picks to reach dst (no packet is sent)."""
    with socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((dst, 9))
        return s.getsockname()[0]


def run_crafted(probes: Sequence[Crafted], evidence: DropLog | None = None) -> list[CraftedResult]:
    """Send every probe at once from its namespace; classify the answers (same order). With
    `evidence`, a probe whose packet is logged as dropped ends when the log is read."""
    flights = []
    # each raw socket reading answers -> (the probes of its namespace, IPv6?, protocol number)
    listeners: dict[socket.socket, tuple[list, bool, int]] = {}
    inbox = evidence.subscribe() if evidence is not None else None
    keys: FlowIndex[int] = FlowIndex()  # flow of a probe's packet -> its index
    drops: dict[int, str] = {}  # index -> where its packet was rejected (logged)
    with NetnsSwitcher() as switcher:
        by_ns: dict[str, list[int]] = {}
        for i, p in enumerate(probes):
            by_ns.setdefault(p.src_netns, []).append(i)
        for ns, idxs in by_ns.items():
            mine: list = []
            with switcher.entered(ns):
                senders: dict[bool, socket.socket] = {}
                for v6 in sorted({is_ipv6(probes[i]) for i in idxs}):
                    family = socket.AF_INET6 if v6 else socket.AF_INET
                    # IPPROTO_RAW: the packet goes out as built, header included (IPv6 too)
                    senders[v6] = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW)
                    for name in sorted({probes[i].protocol for i in idxs if is_ipv6(probes[i]) == v6} | {"ICMP"}):
                        num = (_PROTO_NUM6 if v6 else _PROTO_NUM)[name]
                        listeners[socket.socket(family, socket.SOCK_RAW | socket.SOCK_NONBLOCK, num)] = (mine, v6, num)
                for i in idxs:
                    p = probes[i]
                    src = p.src_ip or _source_ip(p.dst_ip)
                    sport, token = random.randint(32768, 60999), random.getrandbits(32) or 1
                    flights.append((i, p, sport, token, build_packet(p, src, sport, token), mine))
                    keys.add(i, proto_number(p), src, sport, p.dst_ip, 0 if p.protocol == "ICMP" else p.port, token)
            for i, p, sport, token, packet, group in [f for f in flights if f[5] is mine]:
                group.append([i, p, sport, token, packet, time.monotonic(), None])
                senders[is_ipv6(p)].sendto(packet, (p.dst_ip, 0))
            for sender in senders.values():
                sender.close()
    results: list[CraftedResult | None] = [None] * len(probes)
    sent = {f[0]: f[4] for f in flights}
    sports = {f[0]: f[2] for f in flights}
    deadline = time.monotonic() + max((p.timeout for p in probes), default=0)
    watched = (evidence.fds() + [inbox.fd]) if evidence is not None and inbox is not None else []

    def read_evidence() -> None:
        assert evidence is not None and inbox is not None
        evidence.pump()
        for ev in inbox.take():
            i = keys.match(ev.flow)
            if i is None or results[i] is not None:
                continue
            drops[i] = ev.where()
            if ev.verdict == "drop":
                p = probes[i]
                results[i] = CraftedResult(
                    p.id, "timeout", None, None, f"dropped at {ev.where()}", sent[i], "drop-log", ev.where(), sports[i]
                )

    try:
        while time.monotonic() < deadline and any(r is None for r in results):
            waiting: list[Any] = list(listeners) + watched
            ready, _, _ = select.select(waiting, [], [], max(0.0, deadline - time.monotonic()))
            if watched and any(isinstance(fd, int) for fd in ready):
                read_evidence()
            for sock in ready:
                if isinstance(sock, int):  # a drop log or the inbox: read above
                    continue
                group, v6, num = listeners[sock]
                while True:
                    try:
                        data, peer = sock.recvfrom(65535)
                    except BlockingIOError:
                        break
                    now = time.monotonic()
                    for entry in group:
                        i, p, sport, token, packet, t0, _ = entry
                        if results[i] is not None or now - t0 > p.timeout or is_ipv6(p) != v6:
                            continue
                        verdict = (
                            classify6(p, sport, token, peer[0], num, data) if v6 else classify(p, sport, token, data)
                        )
                        if verdict:
                            outcome, detail, reply = verdict
                            results[i] = CraftedResult(
                                p.id, outcome, (now - t0) * 1000, reply, detail, packet, sport=sport
                            )
                            break
        if watched:
            read_evidence()  # a REJECT logs before it answers: say where the refused ones were refused
    finally:
        for sock in listeners:
            sock.close()
        if evidence is not None and inbox is not None:
            evidence.unsubscribe(inbox)
    return [
        _with_evidence(r, drops.get(i, ""))
        if r
        else CraftedResult(p.id, "timeout", None, None, "no answer", sent[i], "timeout", sport=sports[i])
        for i, (r, p) in enumerate(zip(results, probes))
    ]


def _with_evidence(r: CraftedResult, drop_at: str) -> CraftedResult:
    if r.evidence:
        return r
    return dataclasses.replace(r, evidence=evidence_of(r.outcome), drop_at=drop_at if r.outcome != "connected" else "")
