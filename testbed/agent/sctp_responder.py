"""The agent's userspace SCTP endpoint for one network namespace: decides what to answer.

Where it sits: the kernel has no SCTP stack, so agent/server.py opens one raw socket (protocol 132)
in every pod namespace (so that undeclared ports are refused even in pods without SCTP ports) and
hands every packet it sees to SctpResponder.handle(); what comes back is sent to the peer from the
address the packet was sent to. This module is pure (no
sockets) so the refusal rules are unit-tested.

The raw socket sees *every* SCTP packet delivered in the namespace, including the INIT-ACKs and
ABORTs meant for a prober running in the same pod; so we only ever answer INIT and COOKIE-ECHO and
stay silent on everything else (sending "out of the blue" ABORTs would kill the prober's own
handshakes). Like Linux's SCTP stack:
  - INIT to a declared port  -> INIT-ACK whose State Cookie is the JSON reply;
  - INIT to any other port   -> ABORT, verification tag = the INIT's initiate tag, T bit clear
                                (RFC 9260 section 8.4 rule 3);
  - COOKIE-ECHO we recognise -> COOKIE-ACK;  ABORT -> forget the association.
"""

from __future__ import annotations

import ipaddress
import random
from collections import OrderedDict
from collections.abc import Mapping

from testbed.wire import sctp
from testbed.wire.reply import PortIdentity, encode_reply

#: Half-open associations remembered for COOKIE-ECHO; the oldest are dropped beyond this.
MAX_ASSOCIATIONS = 65536


class SctpResponder:
    def __init__(self, ports: Mapping[int, PortIdentity]):
        self.ports: dict[int, PortIdentity] = dict(ports)
        # (peer ip, peer port, our port, our tag) -> peer tag: what a COOKIE-ECHO must match.
        self._assocs: OrderedDict[tuple[str, int, int, int], int] = OrderedDict()
        self.answered = 0
        self.refused = 0

    def update(self, ports: Mapping[int, PortIdentity]) -> None:
        """New declared ports after a reconcile; known associations stay."""
        self.ports = dict(ports)

    def handle(self, src: str, dst: str, payload: bytes) -> bytes | None:
        """The SCTP packet to send back to src (from dst) for this one, or None to stay silent."""
        try:
            sport, dport, vtag, ctype = sctp.peek_header(payload)
        except sctp.SctpError:
            return None
        # Cheap filter first: only these chunk types ever get an answer (see module docstring).
        if ctype not in (sctp.INIT, sctp.COOKIE_ECHO, sctp.ABORT):
            return None
        if ipaddress.IPv6Address(dst).is_multicast if ":" in dst else int(dst.split(".", 1)[0]) >= 224:
            return None  # multicast (IPv4 or IPv6): SCTP is unicast only (the server also drops broadcast)
        try:
            pkt = sctp.parse(payload)  # drops bad checksums, as a real stack does
        except sctp.SctpError:
            return None
        if ctype == sctp.INIT:
            return self._on_init(src, dst, pkt)
        if ctype == sctp.COOKIE_ECHO:
            peer_tag = self._assocs.get((src, sport, dport, vtag))
            return None if peer_tag is None else sctp.build_cookie_ack(dport, sport, peer_tag)
        # ABORT: forget, whichever way the tag was filled in.
        self._assocs.pop((src, sport, dport, vtag), None)
        return None

    def _on_init(self, src: str, dst: str, pkt: sctp.SctpPacket) -> bytes | None:
        if pkt.vtag != 0 or len(pkt.chunks) != 1:
            return None  # an INIT must be alone with tag 0 (RFC 9260 section 6.10); drop it
        try:
            info = pkt.init_info()
        except sctp.SctpError:
            return None
        if info is None or info.itag == 0:
            return None
        who = self.ports.get(pkt.dport)
        if who is None:
            self.refused += 1
            return sctp.build_abort(pkt.dport, pkt.sport, info.itag, t_bit=False)
        my_tag = random.getrandbits(32) or 1
        key = (src, pkt.sport, pkt.dport, my_tag)
        self._assocs[key] = info.itag
        if len(self._assocs) > MAX_ASSOCIATIONS:
            self._assocs.popitem(last=False)
        self.answered += 1
        cookie = encode_reply(who, src, pkt.sport, dst)
        return sctp.build_init_ack(pkt.dport, pkt.sport, info.itag, my_tag, cookie)
