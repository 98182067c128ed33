"""Expand probe groups into concrete probes against a Plan (pure).

Each concrete probe carries everything the dataset needs about both ends and the kind of
communication it exercises — scenario 001's four kinds, split the way the NAT-free analysis
reports them: container-to-container (localhost), pod-to-pod on one node and across
nodes, node-to-pod, external-to-pod. The expected source addresses say what a NAT-free
network shows the server: the pod's own IP; for a node, the address its route to the pod
uses (cni0's gateway for its own pods, its HOST-IP towards other nodes' pods).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import Problem, SpecError
from ..ingress import controller_config, route
from ..netpol.oracle import Flow, decide
from ..plan.ingress6 import with_both_families
from ..plan.model import Plan, PodPlan
from ..plan.network import node_source_ip
from .model import Endpoints, PodSelection, ProbeGroup


@dataclass(frozen=True)
class Party:
    kind: str  # pod | node | external
    name: str
    namespace: str
    node: str
    ip: str
    key: str  # netns key


@dataclass(frozen=True)
class PlannedProbe:
    group: str
    attempt: int
    src: Party
    dst: Party
    dst_ip: str  # where the packet is sent (127.0.0.1 for localhost)
    protocol: str
    port: int
    port_name: str
    container: str  # the destination container that declares the port
    communication: str
    expect_outcome: str
    expect_sources: tuple[str, ...]  # () = any source accepted
    timeout: float
    method: str = "socket"
    source_ip: str | None = None  # scapy: the address the packet claims to come from
    seconds: float = 1.0  # iperf3: measurement length
    service: str = ""  # ns/name when the probe goes through a Service
    service_port: int = 0
    dns_name: str = ""  # resolved in the source's namespace just before sending
    expected_by: str = "experiment"  # or "oracle": expect_outcome came from the NetworkPolicy oracle
    http_host: str = ""  # http probes: Host header, path and scheme
    http_path: str = ""
    http_scheme: str = ""
    expect_answer: tuple[str, ...] = ()  # ns/pod names one of which must answer ('' = any)


def select_pods(plan: Plan, sel: PodSelection) -> list[PodPlan]:
    """Pods matching the selection; kube-system's only when it is named (like kubectl without -A)."""
    return [
        p
        for p in plan.pods
        if (p.namespace == sel.namespace if sel.namespace is not None else p.namespace != "kube-system")
        and (not sel.names or p.name in sel.names or p.full_name in sel.names)
        and sel.selector.matches(p.labels)
    ]


def _pod_party(p: PodPlan) -> Party:
    return Party("pod", p.name, p.namespace, p.node, p.ip, p.key)


def sources(plan: Plan, ep: Endpoints) -> list[Party]:
    if ep.pods is not None:
        return [_pod_party(p) for p in select_pods(plan, ep.pods)]
    if ep.nodes is not None:
        return [
            Party("node", n.name, "", n.name, n.host_ip, n.key)
            for n in plan.nodes
            if not ep.nodes or n.name in ep.nodes
        ]
    return [
        Party("external", x.name, "", "", x.ip, x.key)
        for x in plan.externals
        if not ep.hosts or x.name in (ep.hosts or ())
    ]


def _ports(pod: PodPlan, group: ProbeGroup) -> Iterator[tuple[int, str, str, str]]:
    """(port, protocol, port name, container) to probe on `pod`.

    Without `ports`, every declared containerPort, filtered by `protocols`. With `ports`,
    exactly those: a name resolves on this pod (as a named targetPort would); a number is
    probed even when the pod does not declare it (a closed port must be refused), with the
    given protocols, else the protocols it is declared with, else TCP.
    """
    if group.method == "iperf3":  # one measurement per path, on iperf3's own port
        yield 5201, "TCP", "iperf3", ""
        return
    if "ICMP" in group.protocols:
        yield 0, "ICMP", "", ""
    if not group.ports:
        for port in pod.ports:
            if not group.protocols or port.protocol in group.protocols:
                yield port.port, port.protocol, port.name, port.container
        return
    for want in group.ports:
        if isinstance(want, str):
            for port in pod.ports:
                if port.name == want:
                    for proto in [x for x in group.protocols if x != "ICMP"] or (port.protocol,):
                        yield port.port, proto, port.name, port.container
            continue
        declared = [p for p in pod.ports if p.port == want]
        for proto in (
            [x for x in group.protocols if x != "ICMP"]
            or tuple(dict.fromkeys(p.protocol for p in declared))
            or ("TCP",)
        ):
            match = next((p for p in declared if p.protocol == proto), None)
            yield want, proto, match.name if match else "", match.container if match else ""


def _with_http(probe: PlannedProbe, group: ProbeGroup) -> PlannedProbe:
    """`probe` with the HTTP request of an `http:` group (host, path, scheme); else itself."""
    if group.http is None:
        return probe
    return dataclasses.replace(
        probe, http_host=group.http.host, http_path=group.http.path, http_scheme=group.http.scheme
    )


def _http_probes(probes: list[PlannedProbe], group: ProbeGroup) -> list[PlannedProbe]:
    """An `http:` group's requests: its TCP probes only (HTTP is over TCP; a pod's UDP and SCTP
    ports are not asked), each with the request; any other group's probes as they are."""
    return [_with_http(p, group) for p in probes if group.http is None or p.protocol == "TCP"]


def communication(src: Party, dst: Party, localhost: bool) -> str:
    if localhost:
        return "container-to-container"
    if src.kind == "pod":
        return "pod-to-pod (same node)" if src.node == dst.node else "pod-to-pod (across nodes)"
    if src.kind == "node":
        return "node-to-pod (same node)" if src.node == dst.node else "node-to-pod (across nodes)"
    return "external-to-pod"


def expected_sources(plan: Plan, src: Party, dst: Party, localhost: bool) -> tuple[str, ...]:
    if localhost:
        return ("127.0.0.1",)
    if src.kind == "node":
        return (node_source_ip(plan, src.name, dst.node),)  # depends on the routing mode
    return (src.ip,)


def node_addresses(plan: Plan) -> tuple[str, ...]:
    """Every address a node may SNAT to: HOST-IPs and cni0 gateways, and with vxlan its VTEP's
    (kube-proxy's MASQUERADE takes the address of the device a packet leaves by: flannel.1, or
    flannel-v6.1, when the endpoint is on another node)."""
    vteps = {v.address.split("/")[0] for v in plan.network.vteps} if plan.network is not None else set()
    return tuple(sorted({a for n in plan.nodes for a in (n.host_ip, n.gateway)} | vteps))


def _service_probes(plan: Plan, group: ProbeGroup, srcs: list[Party]) -> list[PlannedProbe]:
    """Probes to a Service: its ClusterIP, every (chosen) node's NodePort, its LB IPs, or its name."""
    target = group.target.service
    assert target is not None
    svc = plan.services.find(f"{target.namespace}/{target.name}") if plan.services else None
    if svc is None:
        raise SpecError(
            [
                Problem(
                    "experiment",
                    f"probes[{group.name}].to.service",
                    f"no Service {target.namespace}/{target.name} in the cluster",
                )
            ]
        )
    out: list[PlannedProbe] = []
    ports = [p for p in svc.ports if not group.ports or p.port in group.ports or p.name in group.ports]
    if group.http is not None and not group.ports:  # the Service port that speaks the scheme
        ports = [
            p for p in ports if p.name == group.http.scheme or p.port == (443 if group.http.scheme == "https" else 80)
        ][:1]
    ports = [p for p in ports if not group.protocols or p.protocol in group.protocols]
    for attempt in range(group.repeat):
        for src in srcs:
            for port in ports:
                if target.via == "nodePort":
                    if not port.node_port:
                        continue
                    dests = [
                        (n.host_ip, port.node_port) for n in plan.nodes if not target.nodes or n.name in target.nodes
                    ]
                elif target.via == "loadBalancer":
                    dests = [(ip, port.port) for ip in svc.load_balancer_ingress]
                elif target.via == "externalIP":
                    dests = [(ip, port.port) for ip in svc.external_ips]
                elif target.hostname:
                    out += [_with_http(p, group) for p in _hostname_probes(plan, group, src, svc, port, attempt)]
                    continue
                else:
                    dests = [(svc.cluster_ip, port.port)]
                for ip, number in dests:
                    dst = Party("service", svc.name, svc.namespace, "", ip, "")
                    external = target.via in ("nodePort", "loadBalancer", "externalIP")
                    want: tuple[str, ...] = ()
                    if group.expect.source_ip == "node":
                        want = node_addresses(plan)
                    elif group.expect.source_ip == "sender":
                        want = (
                            (src.ip,)
                            if src.kind != "node"
                            else tuple(a for n in plan.nodes if n.name == src.name for a in (n.host_ip, n.gateway))
                        )
                    comm = f"{src.kind}-to-service ({'ClusterIP' if not external else target.via})"
                    if target.via == "dns":
                        comm = f"{src.kind}-to-service (DNS name)"
                    if group.http is not None and group.http.host:  # no host: a plain HTTP request
                        comm = f"{src.kind}-to-ingress ({group.http.scheme})"
                        want = ()  # the backend sees the ingress controller, by design
                    out.append(
                        PlannedProbe(
                            group.name,
                            attempt,
                            src,
                            dst,
                            ip,
                            port.protocol,
                            number,
                            port.name,
                            "",
                            comm,
                            group.expect.outcome,
                            want,
                            group.timeout,
                            group.method,
                            group.source_ip,
                            group.seconds,
                            svc.key,
                            port.port,
                            f"{svc.name}.{svc.namespace}.svc.cluster.local" if target.via == "dns" else "",
                            http_host=group.http.host if group.http else "",
                            http_path=group.http.path if group.http else "",
                            http_scheme=group.http.scheme if group.http else "",
                        )
                    )
    return out


def oracle_outcome(world: Any, src: Party, dst_pods: list[PodPlan], port: int, protocol: str) -> str:
    """connected / blocked as NetworkPolicy semantics predict (any: endpoints disagree)."""
    who = _who(world, src)
    verdicts = set()
    for pod in dst_pods:
        # a hostNetwork pod is its node for policies: its address, not a pod of the world
        dst = pod.ip if pod.host_network else f"{pod.namespace}/{pod.name}"
        flow = Flow(who, dst, None if protocol == "ICMP" else int(port), protocol)
        verdicts.add(decide(flow, world).allowed)
    if verdicts == {True}:
        return "connected"
    if verdicts == {False}:
        return "blocked"
    return "any"


def _who(world: Any, src: Party) -> str:
    """The sender as the oracle knows it: a pod by name, anything else (a hostNetwork pod too) by address."""
    if src.kind == "pod" and world.find_pod(f"{src.namespace}/{src.name}") is not None:
        return f"{src.namespace}/{src.name}"
    return src.ip


def _with_oracle(probes: list[PlannedProbe], plan: Plan, world: Any) -> list[PlannedProbe]:
    """Replace expect_outcome "oracle" by the oracle's verdict for each probe."""
    if world is None:
        raise SpecError([Problem("experiment", "expect.outcome", "`oracle` needs the cluster's manifests")])
    by_name = {(p.namespace, p.name): p for p in plan.pods}
    out = []
    for p in probes:
        if p.expect_outcome != "oracle":
            out.append(p)
            continue
        if p.dst.kind == "external":  # egress to an address outside the cluster: ipBlock rules decide
            allowed = decide(Flow(_who(world, p.src), p.dst_ip, p.port or None, p.protocol), world).allowed
            out.append(
                dataclasses.replace(p, expect_outcome="connected" if allowed else "blocked", expected_by="oracle")
            )
            continue
        if p.dst.kind == "pod" and p.communication.endswith("(hostPort)"):
            from .hostports import oracle_flow  # it builds on this module

            out.append(oracle_flow(p, plan, world, by_name[(p.dst.namespace, p.dst.name)]))
            continue
        if p.dst.kind == "pod":
            targets = [by_name[(p.dst.namespace, p.dst.name)]]
            port = p.port
        else:  # a Service: the policy applies to the endpoint the packet is DNATed to
            assert plan.services is not None, "a Service probe comes from a plan with Services"
            svc = plan.services.service(p.dst.namespace, p.dst.name)
            sport = next(x for x in svc.ports if x.port == p.service_port and x.protocol == p.protocol)
            eps = plan.services.endpoints(svc.namespace, svc.name, sport.name, sport.protocol)
            targets = [by_name[(svc.namespace, e.pod)] for e in eps if (svc.namespace, e.pod) in by_name]
            port = eps[0].port if eps else 0
        # (container-to-container probes need no case of their own: the oracle lets a pod reach itself)
        verdict = oracle_outcome(world, p.src, targets, port, p.protocol) if targets else "blocked"
        out.append(dataclasses.replace(p, expect_outcome=verdict, expected_by="oracle"))
    return out


def expand(plan: Plan, group: ProbeGroup, world: Any = None, ingresses: Any = ()) -> list[PlannedProbe]:
    """Concrete probes of a group; `world` (netpol.World) resolves `expect: oracle`, and for
    HTTP probes the Ingress objects do (where ingress-nginx would route the request)."""
    probes = _expand(plan, group)
    family = group.family
    if not family:  # the cluster's primary family, as kubectl sees a pod's podIP (experiment/family.py)
        from .family import default_family  # it imports this module

        family = default_family(plan, group.source_ip)
    if ":" in plan.pod_subnet:  # a single-stack IPv6 cluster: its addresses are IPv6 already (spec/ipv6.py)
        from .family import no_ipv4, single_stack_probes  # it imports this module

        no_ipv4(family)
        probes = single_stack_probes(probes)
    elif family == "IPv6":  # a dual-stack cluster's IPv6 addresses and policy world (issue 15)
        from ..plan.dualstack import ipv6_world
        from .family import ipv6_probes  # it imports this module

        probes = ipv6_probes(plan, probes)
        world = ipv6_world(plan) if group.expect.outcome == "oracle" else world
    elif plan.dual is not None:  # an IPv6-first cluster's IPv4 probes reach IPv4 Services only (plan/v6first.py)
        from .family import ipv4_probes  # it imports this module

        probes = ipv4_probes(plan, probes)
    if group.expect.outcome == "oracle" and group.http is not None:
        return _with_ingress_oracle(probes, plan, ingresses)
    if group.expect.outcome == "oracle":
        probes = _with_oracle(probes, plan, world)
    return probes


def _with_ingress_oracle(probes: list[PlannedProbe], plan: Plan, ingresses: Any) -> list[PlannedProbe]:
    """Expected status and answering pods from the ingress controller's routing (ingress/routes.py)."""
    assert plan.services is not None, "an HTTP probe goes through a Service: the plan has Services"
    services = with_both_families(plan)  # a dual-stack backend's IPv6 endpoints too (plan/ingress6.py)
    assert services is not None
    config = controller_config(ingresses, services)
    by_address = {(p.ip, q.port): f"{p.namespace}/{p.name}" for p in plan.pods for q in p.ports}
    if plan.dual is not None:
        by_address |= {
            (plan.dual.pods[p.key], q.port): f"{p.namespace}/{p.name}"
            for p in plan.pods
            if p.key in plan.dual.pods
            for q in p.ports
        }
    out = []
    for p in probes:
        r = route(config, p.http_host, p.http_path, p.http_scheme)
        if r.status:
            out.append(dataclasses.replace(p, expect_outcome=f"http-{r.status}", expected_by="oracle"))
            continue
        pods = tuple(
            sorted(
                {
                    by_address[(ip.strip("[]"), int(port))]
                    for ip, _, port in (e.rpartition(":") for e in r.endpoints)
                    if (ip.strip("[]"), int(port)) in by_address
                }
            )
        )
        out.append(
            dataclasses.replace(
                p, expect_outcome="connected", expected_by="oracle", expect_answer=pods, container=r.backend
            )
        )
    return out


def _host_probes(plan: Plan, group: ProbeGroup, srcs: list[Party]) -> list[PlannedProbe]:
    """Probes to external hosts' ports: the outside world (egress, SNAT expected) or the underlay."""
    hosts = [x for x in plan.externals if not group.target.hosts or x.name in group.target.hosts]
    out: list[PlannedProbe] = []
    for attempt in range(group.repeat):
        for src in srcs:
            for host in hosts:
                dst = Party("external", host.name, "", "", host.ip, host.key)
                for port in host.ports:
                    if group.ports and port.port not in group.ports and port.name not in group.ports:
                        continue
                    if group.protocols and port.protocol not in group.protocols:
                        continue
                    if host.outside and src.kind == "pod":
                        # egress: the node masquerades the pod (the one NAT Kubernetes expects)
                        want: tuple[str, ...] = (plan.node(src.node).host_ip,)
                        comm = "pod-to-outside (egress, SNAT expected)"
                    else:
                        want = (src.ip,)
                        comm = f"{src.kind}-to-external"
                    if group.expect.source_ip == "any":
                        want = ()
                    out.append(
                        PlannedProbe(
                            group.name,
                            attempt,
                            src,
                            dst,
                            host.ip,
                            port.protocol,
                            port.port,
                            port.name,
                            host.name,
                            comm,
                            group.expect.outcome,
                            want,
                            group.timeout,
                            group.method,
                            group.source_ip,
                            group.seconds,
                        )
                    )
    return out


def _expand(plan: Plan, group: ProbeGroup) -> list[PlannedProbe]:
    out: list[PlannedProbe] = []
    srcs = sources(plan, group.source)
    if group.target.service is not None:
        return _service_probes(plan, group, srcs)
    if group.target.hosts is not None:
        return _host_probes(plan, group, srcs)
    if group.target.host_port is not None:
        from .hostports import host_port_probes  # it builds on this module's Party and PlannedProbe

        return _http_probes(host_port_probes(plan, group, srcs), group)
    by_key = {p.key: p for p in plan.pods}
    for attempt in range(group.repeat):
        for src in srcs:
            if group.target.localhost:
                pod = by_key[src.key]
                pairs = [(pod, port) for port in _ports(pod, group)]
            else:
                targets = select_pods(plan, group.target.pods or PodSelection())
                pairs = [(pod, port) for pod in targets if pod.key != src.key for port in _ports(pod, group)]
            for pod, (number, proto, port_name, container) in pairs:
                dst = _pod_party(pod)
                local = group.target.localhost
                want = (
                    ()
                    if group.expect.source_ip == "any"
                    else ((group.source_ip,) if group.source_ip else expected_sources(plan, src, dst, local))
                )
                out.append(
                    PlannedProbe(
                        group.name,
                        attempt,
                        src,
                        dst,
                        "127.0.0.1" if local else pod.ip,
                        proto,
                        number,
                        port_name,
                        container,
                        communication(src, dst, local),
                        group.expect.outcome,
                        want,
                        group.timeout,
                        group.method,
                        group.source_ip,
                        group.seconds,
                    )
                )
    return _http_probes(out, group)  # HTTP to pod IPs (issue 15: `http://[addr]:port/` too)


def _hostname_probes(
    plan: Plan, group: ProbeGroup, src: Party, svc: Any, port: Any, attempt: int
) -> list[PlannedProbe]:
    """A pod's own DNS name under a headless Service (<hostname>.<service>.<ns>.svc, plan/dns.py):
    resolved by the source just before sending, then the pod itself on the Service port's target
    (no kube-proxy on the way, so the pod sees the sender's own address)."""
    target = group.target.service
    assert target is not None
    pod = next(
        (
            p
            for p in plan.pods
            if p.namespace == svc.namespace and (p.hostname or p.name) == target.hostname and p.subdomain == svc.name
        ),
        None,
    )
    if pod is None:
        return []
    number = port.target_port if isinstance(port.target_port, int) else pod.resolve(port.target_port, port.protocol)
    if number is None:
        return []
    dst = _pod_party(pod)
    return [
        PlannedProbe(
            group.name,
            attempt,
            src,
            dst,
            pod.ip,
            port.protocol,
            number,
            port.name,
            "",
            f"{src.kind}-to-pod (DNS name)",
            group.expect.outcome,
            expected_sources(plan, src, dst, False) if group.expect.source_ip == "sender" else (),
            group.timeout,
            group.method,
            group.source_ip,
            group.seconds,
            dns_name=f"{target.hostname}.{svc.name}.{svc.namespace}.svc.cluster.local",
        )
    ]
