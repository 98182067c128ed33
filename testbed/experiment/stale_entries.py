"""Probes that met a conntrack entry left by an unanswered SYN (pure; experiment/run.py).

A TCP SYN that got no answer (its endpoint's node was down, a pod was gone) leaves a conntrack
entry in SYN_SENT on the node that NATed it, for nf_conntrack_tcp_timeout_syn_sent (120 s), with
its DNAT to that endpoint. kube-proxy deletes the entries of removed endpoints for UDP and SCTP
only (emu/controllers.py does the same), so the entry outlives the endpoint. When the client's
kernel later hands a new connection the same source port towards the same address and port
(its port choice revisits ports: seen in runs of fault-node-failure.yaml), that SYN matches the
old entry and goes where the first one went, whatever kube-proxy's rules say now; a real cluster
behaves the same. The Service's current state does not decide such a probe: the stale entry does.

So a probe expected to connect whose 5-tuple (TCP, source address and port, destination address
and port) repeats one that went unanswered (timeout, unreachable) less than the SYN_SENT timeout
earlier is expected `any`, `expected_by` conntrack. The match is exact (every row has its `sport`),
so which rows these are is known from the dataset, not hoped for: the other probes must still
connect, and a report or test can count these.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SYN_SENT_TIMEOUT_S = 120.0  # net.netfilter.nf_conntrack_tcp_timeout_syn_sent, the kernel's default
# an unanswered probe may retransmit its SYN until its own timeout, which renews the entry
RETRANSMIT_SLACK_S = 10.0
UNANSWERED = ("timeout", "unreachable")  # a refused SYN's entry closes: the next SYN starts afresh
EXPECTED_BY = "conntrack"


def _key(row: dict[str, Any]) -> tuple[str, int, str, int] | None:
    if row.get("protocol") != "TCP" or not row.get("sport"):
        return None
    return (str(row["src_ip"]), int(row["sport"]), str(row["dst_ip"]), int(row["port"]))


def mark_stale_entries(rows: Iterable[dict[str, Any]]) -> int:
    """Mark, in place, the rows expected to connect that reused the 5-tuple of an unanswered SYN
    still in conntrack (module docstring); returns how many."""
    unanswered: dict[tuple[str, int, str, int], float] = {}  # 5-tuple -> when its SYN went unanswered
    marked = 0
    for row in sorted(rows, key=lambda r: float(r["timestamp"])):
        key = _key(row)
        if key is None:
            continue
        stamp = float(row["timestamp"])
        earlier = unanswered.get(key)
        if (
            earlier is not None
            and stamp - earlier < SYN_SENT_TIMEOUT_S + RETRANSMIT_SLACK_S
            and row["expected_outcome"] == "connected"
        ):
            row["expected_outcome"] = "any"
            row["expected_by"] = EXPECTED_BY
            row["outcome_ok"] = True
            marked += 1
        if row["outcome"] in UNANSWERED:
            unanswered[key] = stamp
        else:  # answered: that entry left SYN_SENT (established or closed), the next SYN starts afresh
            unanswered.pop(key, None)
    return marked
