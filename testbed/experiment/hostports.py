"""Probes to pods through their hostPorts: `to: {hostPort: {names: [...]}}` (pure).

Each selected pod is probed at its node's HOST-IP (or the hostPort's hostIP) on every hostPort,
which the node's portmap rules (rules/portmap.py) DNAT to the pod; a hostNetwork pod's ports
are bound there directly. The expected source (`sourceIP: sender`) is what portmap leaves: the
sender's own address, except where the plugin masquerades: a pod reaching itself (hairpin),
and, in the iptables backend, any pod of the pod's own network (its node's pods), which then
show the node's address towards its pods (cni0's).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

from ..plan.model import Plan, PodPlan
from ..plan.network import node_source_ip
from ..rules.portmap import backend
from .expand import Party, PlannedProbe, oracle_outcome, select_pods
from .model import PodSelection, ProbeGroup


def expected_source(plan: Plan, src: Party, pod: PodPlan) -> str:
    """The address the pod sees for `src` reaching one of its hostPorts."""
    node = plan.node(pod.node)
    if src.kind == "node":
        # the node's own address towards the destination (the HOST-IP it dialled, if its own)
        return node.host_ip if src.name == pod.node else plan.node(src.name).host_ip
    if src.kind != "pod" or pod.host_network:
        return src.ip
    hairpin = src.key == pod.key
    in_network = ipaddress.ip_address(src.ip) in ipaddress.ip_network(f"{pod.ip}/{pod.prefix}", strict=False)
    if hairpin or (backend(plan.kube_proxy_mode) == "iptables" and in_network):
        return node_source_ip(plan, pod.node, pod.node)  # masqueraded towards the pod
    return src.ip


def host_port_probes(plan: Plan, group: ProbeGroup, srcs: list[Party]) -> list[PlannedProbe]:
    target = group.target.host_port or PodSelection()
    out: list[PlannedProbe] = []
    pods = select_pods(plan, target)
    for attempt in range(group.repeat):
        for src in srcs:
            for pod in pods:
                address = plan.node(pod.node).host_ip
                dst = Party("pod", pod.name, pod.namespace, pod.node, pod.ip, pod.key)
                for hp in pod.host_ports:
                    if group.ports and hp.host_port not in group.ports:
                        continue
                    if group.protocols and hp.protocol not in group.protocols:
                        continue
                    declared = next(
                        (q for q in pod.ports if q.port == hp.container_port and q.protocol == hp.protocol), None
                    )
                    want: tuple[str, ...] = ()
                    if group.expect.source_ip == "sender":
                        want = (expected_source(plan, src, pod),)
                    elif group.expect.source_ip == "node":
                        want = tuple(sorted({a for n in plan.nodes for a in (n.host_ip, n.gateway)}))
                    out.append(
                        PlannedProbe(
                            group=group.name,
                            attempt=attempt,
                            src=src,
                            dst=dst,
                            dst_ip=hp.host_ip if hp.host_ip not in ("", "0.0.0.0") else address,
                            protocol=hp.protocol,
                            port=hp.host_port,
                            port_name=declared.name if declared else "",
                            container=declared.container if declared else "",
                            communication=f"{src.kind}-to-pod (hostPort)",
                            expect_outcome=group.expect.outcome,
                            expect_sources=want,
                            timeout=group.timeout,
                            method=group.method,
                            source_ip=group.source_ip,
                            seconds=group.seconds,
                            expect_answer=(pod.full_name,),
                        )
                    )
    return out


def oracle_flow(probe: PlannedProbe, plan: Plan, world: Any, pod: PodPlan) -> PlannedProbe:
    """`expect: oracle` for a hostPort probe: the policy sees the packet after portmap's DNAT (the
    container port) but before its masquerade (postrouting comes after the forward hook's
    filtering), so with the sender's own identity, masqueraded or not (measured: a pod of the
    node, masqueraded by the iptables backend, is still denied by a default-deny policy)."""
    port = next(
        (hp.container_port for hp in pod.host_ports if hp.host_port == probe.port and hp.protocol == probe.protocol),
        probe.port,
    )
    verdict = oracle_outcome(world, probe.src, [pod], port, probe.protocol)
    return dataclasses.replace(probe, expect_outcome=verdict, expected_by="oracle")
