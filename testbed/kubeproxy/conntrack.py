"""Which conntrack entries kube-proxy deletes when Services or endpoints change (pure).

Rules only apply to new connections: a UDP or SCTP "connection" to a removed endpoint, or one
that was rejected while a Service had no endpoint, would live on in conntrack and blackhole the
client. Upstream (pkg/proxy/conntrack CleanStaleEntries) therefore deletes, for UDP and SCTP:
- the entries of every Service IP (ClusterIP, external IPs, load-balancer IPs) and NodePort of
  a service port that went from no endpoint to some;
- the entries DNATed to an endpoint that is gone, per Service IP and per NodePort.
These are the `conntrack -D` commands of kube-proxy's exec-based implementation; run them in
every node after applying the new rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..plan.service_model import ServicePlan, ServicesPlan

NEEDS_CLEARING = ("UDP", "SCTP")


@dataclass(frozen=True)
class ConntrackFlush:
    protocol: str  # lower case: udp | sctp
    orig_dst: str | None = None  # a Service IP the client used
    dport: int | None = None  # a NodePort the client used
    dst_nat: str | None = None  # only entries DNATed to this (removed) endpoint
    why: str = ""
    family: str = ""  # "ipv6" for the IPv6 proxier's (conntrack's default family is ipv4)

    def argv(self) -> list[str]:
        argv = ["conntrack", "-D", "-p", self.protocol] + (["-f", self.family] if self.family else [])
        if self.orig_dst:
            argv += ["--orig-dst", self.orig_dst]
        if self.dport:
            argv += ["--dport", str(self.dport)]
        if self.dst_nat:
            argv += ["--dst-nat", self.dst_nat]
        return argv


def _service_ips(svc: ServicePlan) -> list[str]:
    return [svc.cluster_ip, *svc.external_ips, *svc.load_balancer_ingress]


def conntrack_flushes(old: ServicesPlan | None, new: ServicesPlan) -> list[ConntrackFlush]:
    """The deletions that make `new` effective for UDP and SCTP flows that `old` let through."""
    out: list[ConntrackFlush] = []
    old_services = {s.key: s for s in old.services} if old else {}
    family = "ipv6" if ":" in new.service_subnet else ""
    for svc in new.services:
        if not svc.proxied:
            continue
        before = old_services.get(svc.key)
        for port in svc.ports:
            if port.protocol not in NEEDS_CLEARING:
                continue
            proto = port.protocol.lower()
            now = {e.ip for e in new.endpoints(svc.namespace, svc.name, port.name, port.protocol) if e.ready}
            was: set[str] = set()
            if (
                before is not None
                and old is not None
                and any(p.name == port.name and p.protocol == port.protocol for p in before.ports)
            ):
                was = {e.ip for e in old.endpoints(svc.namespace, svc.name, port.name, port.protocol) if e.ready}
            name = f"{svc.key}:{port.name}" if port.name else svc.key
            if now and not was:
                why = f"{name}/{port.protocol} has endpoints again"
                out += [ConntrackFlush(proto, orig_dst=ip, why=why, family=family) for ip in _service_ips(svc)]
                if port.node_port:
                    out.append(ConntrackFlush(proto, dport=port.node_port, why=why, family=family))
            for ip in sorted(was - now):
                why = f"{name}/{port.protocol} lost endpoint {ip}"
                out += [
                    ConntrackFlush(proto, orig_dst=sip, dst_nat=ip, why=why, family=family) for sip in _service_ips(svc)
                ]
                if port.node_port:
                    out.append(ConntrackFlush(proto, dport=port.node_port, dst_nat=ip, why=why, family=family))
    return out
