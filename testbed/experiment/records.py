"""The tidy probe dataset: one row per probe attempt (pure).

Joins what was planned (both ends, the kind of communication, what was expected) with what
happened (outcome, latency, the source address the server saw, who answered) and judges
each row: did the outcome match, and was the path NAT-free (the server saw the sender's
own address). The columns are documented in COLUMNS; the analysis and reports read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type only: the report reads COLUMNS without expand's plan/, netpol/, ingress/
    from .expand import PlannedProbe
from .httpurl import url

# column -> meaning (written to results/<run>/schema.json with the dataset)
COLUMNS: dict[str, str] = {
    "run_id": "the run's identifier (results folder name)",
    "step": "experiment step name",
    "group": "probe group name in the experiment file",
    "attempt": "repetition index within the group, from 0",
    "timestamp": "UNIX time the probe batch was sent",
    "src_kind": "pod | node | external",
    "src_name": "sending pod, node or external host",
    "src_namespace": "sending pod's namespace ('' otherwise)",
    "src_node": "node the sender runs on ('' for an external host)",
    "src_ip": "the sender's own address (pod IP, HOST-IP, host IP), or the crafted source address",
    "dst_kind": "pod | service",
    "dst_name": "destination pod, or the Service's name",
    "dst_namespace": "destination pod's namespace",
    "dst_node": "node the destination pod runs on",
    "dst_ip": "address the probe was sent to (127.0.0.1 for container-to-container)",
    "service": "namespace/name of the Service the probe went through ('' otherwise); answered_by says which endpoint",
    "service_port": "Service port if any (0 otherwise)",
    "protocol": "TCP | UDP | SCTP | ICMP (scapy only)",
    "port": "destination port",
    "port_name": "the containerPort's name ('' if unnamed)",
    "container": "destination container that declares the port",
    "communication": "kind of communication (seed 001): container-to-container, pod-to-pod (same node / "
    "across nodes), node-to-pod (same node / across nodes), external-to-pod",
    "method": "socket (the fast socket prober) | scapy (a crafted packet; TCP answers carry no reply) | iperf3",
    "outcome": "connected | refused | timeout | unreachable | error | http-<status> (method http, not 2xx)",
    "latency_ms": "TCP connected: the handshake's round trip as the kernel measured it; otherwise the time "
    "from sending to the reply (connected and refused only)",
    "seen_src_ip": "source address the server saw (connected only)",
    "seen_src_port": "source port the server saw (connected only)",
    "answered_by": "pod that answered (namespace/name)",
    "answered_container": "container that answered",
    "expected_outcome": "connected | refused | timeout | unreachable | blocked (timeout or refused) | any; "
    "'oracle' in the experiment becomes connected or blocked as the policy oracle predicts",
    "expected_by": "experiment (written out) | oracle (NetworkPolicy semantics)",
    "expected_src_ips": "space-separated addresses a NAT-free path shows the server ('' = any)",
    "outcome_ok": "the outcome is the expected one",
    "nat_free": "the server saw one of the expected source addresses (empty unless connected)",
    "error": "prober error text, if any",
    "throughput_mbps": "iperf3 goodput of the path in Mbit/s (method iperf3 only)",
    "http_request": "method http: 'scheme://host/path' sent (Host header), or without a host the URL requested, "
    "'http://[addr]:port/' over IPv6 ('' otherwise)",
    "expected_answer": "space-separated ns/pod names one of which must answer ('' = any), e.g. an Ingress backend",
    "evidence": "how a failure was known: drop-log (a node logged the drop of this probe's packet: blocked at "
    "once) | timeout (no answer in time) | reset (an RST or ICMP error came back); '' when connected",
    "drop_at": "where the packet was dropped or rejected, as the node logged it: node/table/chain[rule] (verdict)",
    "drop_owner": "whose rule that is: the NetworkPolicies isolating the pod, a tier policy's rule, a Service",
    "drop_as_traced": "drop_at is where `testbed explain --trace` says the flow ends (empty without drop_at)",
    "family": "IPv4 | IPv6: the address family the probe was sent over (dual-stack clusters, issue 15)",
    "sport": "the client's own source port (scapy ICMP: the echo identifier; 0 when no packet was sent), to "
    "match a failure to conntrack's entries exactly",
}


def outcome_matches(expected: str, outcome: str) -> bool:
    if expected == "any":
        return True
    if expected == "blocked":
        return outcome in ("timeout", "refused")
    return expected == outcome


def make_row(
    run_id: str,
    step: str,
    stamp: float,
    probe: PlannedProbe,
    outcome: str,
    latency_ms: float | None,
    reply: Mapping[str, Any] | None,
    error: str | None,
    evidence: str = "",
    drop_at: str = "",
    sport: int = 0,
) -> dict[str, Any]:
    reply = reply or {}
    seen = str(reply.get("peer_ip", "")) if outcome == "connected" else ""
    answered = f"{reply['namespace']}/{reply['pod']}" if reply.get("pod") else ""
    nat_free: bool | None = None
    if outcome == "connected" and seen:
        nat_free = (not probe.expect_sources) or seen in probe.expect_sources
    return {
        "run_id": run_id,
        "step": step,
        "group": probe.group,
        "attempt": probe.attempt,
        "timestamp": stamp,
        "src_kind": probe.src.kind,
        "src_name": probe.src.name,
        "src_namespace": probe.src.namespace,
        "src_node": probe.src.node,
        "src_ip": probe.source_ip or probe.src.ip,
        "dst_kind": probe.dst.kind,
        "dst_name": probe.dst.name,
        "dst_namespace": probe.dst.namespace,
        "dst_node": probe.dst.node,
        "dst_ip": probe.dst_ip,
        "service": probe.service,
        "service_port": probe.service_port,
        "protocol": probe.protocol,
        "port": probe.port,
        "port_name": probe.port_name,
        "container": probe.container,
        "communication": probe.communication,
        "method": probe.method,
        "outcome": outcome,
        "latency_ms": latency_ms,
        "seen_src_ip": seen,
        "seen_src_port": int(reply.get("peer_port", 0) or 0) if seen else 0,
        "answered_by": answered,
        "answered_container": str(reply.get("container", "")),
        "expected_outcome": probe.expect_outcome,
        "expected_by": probe.expected_by,
        "expected_src_ips": " ".join(probe.expect_sources),
        "outcome_ok": outcome_matches(probe.expect_outcome, outcome)
        and (not probe.expect_answer or outcome != "connected" or answered in probe.expect_answer),
        "nat_free": nat_free,
        "error": error or "",
        "throughput_mbps": None,
        "http_request": f"{probe.http_scheme}://{probe.http_host}{probe.http_path}"
        if probe.http_host
        else (
            url(probe.http_scheme, probe.dns_name or probe.dst_ip, probe.port, probe.http_path)
            if probe.http_scheme
            else ""
        ),
        "expected_answer": " ".join(probe.expect_answer),
        "evidence": evidence,
        "drop_at": drop_at,
        "drop_owner": "",
        "drop_as_traced": None,
        "family": "IPv6" if ":" in probe.dst_ip else "IPv4",
        "sport": sport,
    }


def summarize(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per (step, communication, protocol): counts, outcomes as expected, NAT-free verdict; steps in
    the order the run went through them (not by name), then by communication and protocol."""
    table: dict[tuple[str, str, str], dict[str, Any]] = {}
    steps: dict[str, int] = {}
    for r in rows:
        steps.setdefault(r["step"], len(steps))
        key = (r["step"], r["communication"], r["protocol"])
        t = table.setdefault(
            key,
            {
                "step": key[0],
                "communication": key[1],
                "protocol": key[2],
                "probes": 0,
                "connected": 0,
                "as_expected": 0,
                "nat_checked": 0,
                "nat_free": 0,
            },
        )
        t["probes"] += 1
        t["connected"] += r["outcome"] == "connected"
        t["as_expected"] += bool(r["outcome_ok"])
        if r["nat_free"] is not None:
            t["nat_checked"] += 1
            t["nat_free"] += bool(r["nat_free"])
    return [table[k] for k in sorted(table, key=lambda k: (steps[k[0]], k[1], k[2]))]
