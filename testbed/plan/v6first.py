"""An IPv6-first dual-stack plan (issue 15; pure, plan/): which family the API objects put first.

The plan of an IPv6-first cluster (spec/v6first.py) has the two halves of any dual-stack plan:
the IPv4 one in the Plan's own fields and the IPv6 one in plan/dualstack.py's DualStackPlan,
whose `families` is ("IPv6", "IPv4"). What changes is what Kubernetes derives from the primary
family, all here so that an IPv4-first plan is untouched:

- order: a pod's podIPs (status.podIP is the first), a node's InternalIPs and podCIDRs;
- Services: kube-apiserver's defaulting with the IPv6 primary (plan/service_families.py
  `resolve`): SingleStack gets an IPv6 ClusterIP only, PreferDualStack [IPv6, IPv4]. The
  ServicesPlan still allocates every Service an IPv4 address (its IPv6 ClusterIP mirrors that
  offset, as in an IPv4-first cluster, so both are deterministic), but a Service without the
  IPv4 family has no IPv4 ClusterIP in the API: `ipv4_side` drops it (and its slices) from what
  the IPv4 proxier compiles and from the DNS A records, so that address is never programmed,
  answered or shown; spec.clusterIP and the CLUSTER-IP column are the primary ClusterIP;
- kube-dns: SingleStack, so its ClusterIP is IPv6 (the tenth address of the IPv6 serviceSubnet),
  every pod's resolv.conf nameserver, served by dnsmasq on its pod's IPv6 address.

Not built yet, refused in one line: LoadBalancer Services and externalIPs (their IPv4 and IPv6
addresses are planned for an IPv4-first cluster's Services), racks and advertiseServiceSubnet
(spec/v6first.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import Problem
from ..spec.services import ServiceSpec
from .service_model import EndpointSlicePlan, ServicePlan, ServicesPlan

if TYPE_CHECKING:  # the Plan and its IPv6 half call these on themselves
    from .dualstack import DualStackPlan
    from .model import Plan


def is_v6first(dual: DualStackPlan | None) -> bool:
    """True for the IPv6 half of an IPv6-first dual-stack plan."""
    return dual is not None and dual.families[0] == "IPv6"


def ipv4_side(services: ServicesPlan, dual: DualStackPlan | None) -> ServicesPlan:
    """The Services as the IPv4 proxier and the DNS A records see them: `services` itself but in
    an IPv6-first cluster, where the Services without the IPv4 family (and their slices) are left
    out."""
    if not is_v6first(dual):
        return services
    assert dual is not None
    gone = {
        k for k, f in dual.services.items() if f.families and "IPv4" not in f.families
    }  # ExternalName (no families) stays: a CNAME of either family
    if not gone:
        return services
    return dataclasses.replace(
        services,
        services=tuple(s for s in services.services if s.key not in gone),
        slices=tuple(sl for sl in services.slices if f"{sl.namespace}/{sl.service}" not in gone),
    )


def primary_cluster_ip(plan: Plan, svc: ServicePlan) -> str:
    """A Service's spec.clusterIP: its first family's ClusterIP (the ServicePlan's own in an
    IPv4-first or single-stack cluster)."""
    if not is_v6first(plan.dual) or not svc.proxied:
        return svc.cluster_ip
    assert plan.dual is not None
    fams = plan.dual.services.get(svc.key)
    return fams.cluster_ips[0] if fams is not None and fams.cluster_ips else svc.cluster_ip


def cluster_ip_column(plan: Plan, svc: ServicePlan) -> str:
    """kubectl's CLUSTER-IP: spec.clusterIP."""
    return primary_cluster_ip(plan, svc) or "<none>"


def primary_pod_ip(plan: Plan, key: str, ip: str) -> str:
    """A pod's status.podIP: the first of its podIPs."""
    if not is_v6first(plan.dual):
        return ip
    assert plan.dual is not None
    return plan.dual.pod_ips(key, ip)[0]


def primary_node_ip(plan: Plan, name: str, ip: str) -> str:
    """A node's first InternalIP (its HOST-IP in an IPv4-first cluster)."""
    return plan.dual.node(name).host_ip if is_v6first(plan.dual) and plan.dual is not None else ip


def primary_pod_cidr(plan: Plan, name: str, cidr: str) -> str:
    """A node's spec.podCIDR: the first of its podCIDRs."""
    return plan.dual.node(name).pod_cidr if is_v6first(plan.dual) and plan.dual is not None else cidr


def primary_gateway(plan: Plan, name: str, gateway: str) -> str:
    """The gateway (cni0's address) in a node's primary pod CIDR."""
    return plan.dual.node(name).gateway if is_v6first(plan.dual) and plan.dual is not None else gateway


def primary_slices(plan: Plan) -> tuple[EndpointSlicePlan, ...]:
    """The slices the Endpoints controller mirrors into a Service's v1 Endpoints: those of its
    primary family (an IPv6-first cluster's IPv6 ones for a Service whose first family is IPv6)."""
    if plan.services is None:
        return ()
    if not is_v6first(plan.dual):
        return plan.services.slices
    assert plan.dual is not None
    fams = plan.dual.services
    six = {k for k, f in fams.items() if f.families[:1] == ("IPv6",)}
    return tuple(sl for sl in plan.services.slices if f"{sl.namespace}/{sl.service}" not in six) + tuple(
        sl for sl in plan.dual.slices(plan.services) if f"{sl.namespace}/{sl.service}" in six
    )


def ipv4_plan(plan: Plan) -> Plan:
    """The plan over its IPv4 family (`testbed explain --family ipv4` of an IPv6-first cluster):
    its Services are the IPv4 side's."""
    if not is_v6first(plan.dual) or plan.services is None:
        return plan
    return dataclasses.replace(plan, services=ipv4_side(plan.services, plan.dual))


def refusals(services: Sequence[ServiceSpec]) -> list[Problem]:
    """What the Services of an IPv6-first cluster may not use yet, one line each."""
    out: list[Problem] = []
    for s in services:
        if s.type == "LoadBalancer":
            out.append(
                Problem(
                    s.ref.file,
                    s.field_path("spec.type"),
                    "LoadBalancer in an IPv6-first dual-stack cluster: not built yet (use NodePort, or IPv4 first)",
                    str(s.ref),
                )
            )
        if s.external_ips:
            out.append(
                Problem(
                    s.ref.file,
                    s.field_path("spec.externalIPs"),
                    "externalIPs in an IPv6-first dual-stack cluster: not built yet (use IPv4 first)",
                    str(s.ref),
                )
            )
    return out
