"""Turn a ClusterSpec and Manifests into a Plan: controllers, scheduling, IPAM, routes.

The heart of plan/ (pure: no root, no subprocess). Same inputs and seed, same Plan — so a
run is reproducible and `testbed plan` shows exactly what `testbed up` will build.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Iterator

from ..spec.model import ClusterSpec, Manifests, PodTemplate, Workload
from . import routing
from .ipam import HostLocal, node_cidrs, underlay_addresses
from .model import ExternalPlan, NodePlan, Plan, PodPlan, PortPlan
from .naming import NameSource, host_veth_name, template_hash
from .scheduler import schedule

# names.SimpleNameGenerator: generateName is cut to 63 - 5 characters before the random suffix.
MAX_GENERATED_NAME_BASE = 58


def plan_cluster(cluster: ClusterSpec, manifests: Manifests, seed: int = 0) -> Plan:
    cidrs, warnings = node_cidrs(cluster)
    host_ips, external_ips = underlay_addresses(cluster)
    prefix = ipaddress.ip_network(cluster.underlay_subnet).prefixlen
    nodes = tuple(
        NodePlan(name=n.name, role=n.role, index=i, host_ip=host_ips[i], underlay_prefix=prefix,
                 pod_cidr=cidrs[n.name], gateway=str(ipaddress.ip_network(cidrs[n.name]).network_address + 1),
                 labels=dict(n.labels), taints=tuple(f"{t.key}:{t.effect}" for t in n.taints), key=f"n{i}")
        for i, n in enumerate(cluster.nodes))
    externals = tuple(ExternalPlan(h.name, external_ips[h.name], prefix, f"x{i}")
                      for i, h in enumerate(cluster.external_hosts))
    names = NameSource(seed)
    ipam = HostLocal(cidrs)
    load = {n.name: 0 for n in nodes}
    pods: list[PodPlan] = []
    for namespace, name, template, owner in _instances(manifests, names, {p.ref.name for p in manifests.pods}):
        node, why = schedule(template, cluster.nodes, load)
        if node is None:
            warnings.append(f"pod {namespace}/{name} stays Pending: {why}")
            continue
        ip = ipam.allocate(node)
        if ip is None:
            warnings.append(f"pod {namespace}/{name} stays Pending: node {node}'s pod CIDR is full")
            continue
        load[node] += 1
        uid = names.uid(f"{namespace}/{name}")
        pods.append(_pod_plan(namespace, name, uid, node, ip, cidrs[node], ipam.gateway(node), template, owner))
    route_fn = routing.MODES[cluster.routing]
    routes, route_warnings = route_fn(nodes)
    return Plan(cluster=cluster.name, seed=seed, routing=cluster.routing, pod_subnet=cluster.pod_subnet,
                service_subnet=cluster.service_subnet, underlay_subnet=cluster.underlay_subnet,
                mtu=cluster.mtu, nodes=nodes, pods=tuple(pods), routes=tuple(routes),
                externals=externals, warnings=tuple(warnings + route_warnings), notes=cluster.notes,
                ipam_next=dict(ipam.next))


def _instances(manifests: Manifests, names: NameSource,
               taken: set[str]) -> Iterator[tuple[str, str, PodTemplate, str]]:
    """Every pod the manifests ask for: bare pods, then each controller's replicas."""
    for pod in manifests.pods:
        yield pod.ref.namespace, pod.ref.name, pod.template, ""
    for wl in manifests.workloads:
        base, owner, template = _pod_name_base(wl)
        generate_name = f"{base}-"[:MAX_GENERATED_NAME_BASE]
        for _ in range(wl.replicas):
            while True:  # a suffix clash is possible in principle; Kubernetes retries too
                name = generate_name + names.suffix(f"{wl.ref.namespace}/{base}")
                if name not in taken:
                    break
            taken.add(name)
            yield wl.ref.namespace, name, template, owner


def _pod_name_base(wl: Workload) -> tuple[str, str, PodTemplate]:
    """(pod name base, owner, the template the pods get)."""
    if wl.ref.kind == "Deployment":
        # The Deployment owns ReplicaSet <name>-<pod-template-hash>, which owns the pods; the
        # ReplicaSet's template (hence its pods) carries the pod-template-hash label.
        pth = template_hash(wl.template)
        rs = f"{wl.ref.name}-{pth}"
        labels = {**wl.template.labels, "pod-template-hash": pth}
        return rs, f"ReplicaSet/{rs}", dataclasses.replace(wl.template, labels=labels)
    return wl.ref.name, f"{wl.ref.kind}/{wl.ref.name}", wl.template


def _pod_plan(namespace: str, name: str, uid: str, node: str, ip: str, cidr: str, gateway: str,
              template: PodTemplate, owner: str) -> PodPlan:
    ports = tuple(PortPlan(c.name, p.container_port, p.protocol, p.name)
                  for c in template.containers for p in c.ports)
    labels = dict(template.labels)
    return PodPlan(namespace=namespace, name=name, uid=uid, node=node, ip=ip,
                   prefix=ipaddress.ip_network(cidr).prefixlen, gateway=gateway, labels=labels,
                   containers=tuple(c.name for c in template.containers), ports=ports, owner=owner,
                   key=f"{namespace}_{name}", host_veth=host_veth_name(uid))
