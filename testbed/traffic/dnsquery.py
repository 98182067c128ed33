"""Resolve a name the way a pod does: a DNS query from inside its namespace to the cluster DNS.

Where it sits: experiment probes addressed to a Service by DNS name resolve it here first,
in the source pod's namespace, against kube-dns (the address in the pod's resolv.conf), so
the answer, or its absence, is the cluster DNS's own. Queries are built and parsed with
scapy's DNS layer; all queries of a batch are in flight at once.
"""

from __future__ import annotations

import random
import select
import socket
import time
from collections.abc import Sequence

from ..netns import NetnsSwitcher


def resolve_many(
    queries: Sequence[tuple[str, str, str]], timeout: float = 1.0, aaaa: bool = False
) -> dict[tuple[str, str], list[str]]:
    """queries: (netns path, name, server IP) -> {(netns path, name): [A record addresses]}, or
    AAAA records with `aaaa`, whatever the server's family (an IPv4-first dual-stack cluster's
    IPv6 probes ask its IPv4 kube-dns for AAAA, an IPv6-first one's IPv4 probes its IPv6 kube-dns for A)."""
    from scapy.layers.dns import DNS, DNSQR  # deferred: scapy takes ~0.5 s to import

    socks: dict[socket.socket, tuple[str, str, int]] = {}
    with NetnsSwitcher() as switcher:
        for netns, name, server in dict.fromkeys(queries):
            with switcher.entered(netns):
                sock = socket.socket(socket.AF_INET6 if ":" in server else socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            qid = random.getrandbits(16)
            sock.sendto(bytes(DNS(id=qid, rd=1, qd=DNSQR(qname=name, qtype="AAAA" if aaaa else "A"))), (server, 53))
            socks[sock] = (netns, name, qid)
    out: dict[tuple[str, str], list[str]] = {(n, q): [] for n, q, _ in socks.values()}
    want = 28 if aaaa else 1  # the AAAA or A records
    deadline = time.monotonic() + timeout
    try:
        pending = set(socks)
        while pending and time.monotonic() < deadline:
            ready, _, _ = select.select(list(pending), [], [], max(0.0, deadline - time.monotonic()))
            for sock in ready:
                try:
                    data = sock.recv(4096)
                except OSError:
                    pending.discard(sock)
                    continue
                netns, name, qid = socks[sock]
                answer = DNS(data)
                if answer.id != qid:
                    continue
                pending.discard(sock)
                out[(netns, name)] = [rr.rdata for rr in (answer.an or []) if getattr(rr, "type", 0) == want]
    finally:
        for sock in socks:
            sock.close()
    return out
