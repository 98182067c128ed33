"""Services' IP families in a dual-stack cluster (issue 15): the API server's defaulting and
validation of ipFamilyPolicy/ipFamilies, a ClusterIP per family, EndpointSlices per family.

Pure, plan/. plan/services.py allocates every Service on the primary (IPv4) family as always;
this module decides, for each Service, which families it gets — what kube-apiserver's
initIPFamilyFields does — and gives the dual-stack ones their IPv6 ClusterIP and IPv6
EndpointSlices, kept in the plan's DualStackPlan. An IPv4 cluster only gets the validation (a
RequireDualStack Service there fails as the API server refuses it).

Defaulting (single-stack cluster / dual-stack cluster):
  - ExternalName: no families.
  - ipFamilyPolicy unset: SingleStack; a headless Service without selector: RequireDualStack on a
    dual-stack cluster (the API server's rule for such Services), SingleStack otherwise.
  - SingleStack: [primary] (or the one family given); PreferDualStack: [primary] / both;
    RequireDualStack: refused / both.
IPv6 ClusterIPs mirror the IPv4 one's offset in serviceSubnet (the next free offset when it does
not fit), so they are deterministic and stable across re-plans, as the IPv4 ones are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import Problem
from ..spec.services import ServiceSpec
from .service_model import EndpointPlan, EndpointSlicePlan, ServicePlan, ServicesPlan

PRIMARY = "IPv4"  # an IPv6-first cluster passes primary="IPv6" (plan/v6first.py)


@dataclass(frozen=True)
class ServiceFamilies:
    """What the API server wrote into a Service's spec: its policy, families and ClusterIPs."""

    policy: str
    families: tuple[str, ...]
    cluster_ips: tuple[str, ...]  # one per family, in order; ("None",) headless; () ExternalName

    def ip_of(self, family: str) -> str | None:
        """The ClusterIP of `family` (None: the Service has none of that family, or is headless)."""
        if family not in self.families or self.cluster_ips in ((), ("None",)):
            return None
        index = self.families.index(family)
        return self.cluster_ips[index] if index < len(self.cluster_ips) else None


def _problem(spec: ServiceSpec, suffix: str, message: str) -> Problem:
    return Problem(spec.ref.file, spec.field_path(suffix), message, str(spec.ref))


def resolve(spec: ServiceSpec | None, dual: bool, primary: str = PRIMARY) -> tuple[str, tuple[str, ...], list[Problem]]:
    """(ipFamilyPolicy, ipFamilies, problems) of one Service on this cluster (see the module);
    `primary`: a single-stack cluster's family (IPv6 for ipFamily ipv6, spec/ipv6.py), or a
    dual-stack cluster's first (IPv6 for an IPv6-first one, spec/v6first.py)."""
    if spec is None:  # the API server's own Service (default/kubernetes): its primary family
        return "SingleStack", (primary,), []
    if spec.type == "ExternalName":
        return "", (), []
    given, policy = spec.ip_families, spec.ip_family_policy
    if not dual:  # as the testbed always checked an IPv4 cluster's Services: nothing else is refused
        if policy == "RequireDualStack":
            problem = f"RequireDualStack cannot be satisfied: this cluster is {primary} single-stack"
            return policy, (primary,), [_problem(spec, "spec.ipFamilyPolicy", problem)]
        other = [i for i, f in enumerate(given) if f != primary]
        if other:  # the API server: a family the single-stack cluster does not have
            problem = f"{given[other[0]]!r}: not configured on this cluster ({primary} single-stack)"
            return policy or "SingleStack", (primary,), [_problem(spec, f"spec.ipFamilies[{other[0]}]", problem)]
        return policy or "SingleStack", (primary,), []
    problems: list[Problem] = []
    if len(set(given)) != len(given):
        problems.append(_problem(spec, "spec.ipFamilies[1]", f"Duplicate value: {given[1]!r}"))
    if not policy:
        headless_no_selector = spec.cluster_ip == "None" and not spec.selector
        policy = "RequireDualStack" if headless_no_selector else "SingleStack"
    if len(given) > 1 and policy == "SingleStack":
        problems.append(
            _problem(
                spec,
                "spec.ipFamilyPolicy",
                "'SingleStack': must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
            )
        )
    if primary == "IPv6":  # an IPv6-first cluster: the given order, else the cluster's (plan/v6first.py)
        first = given[0] if given else primary
        second = "IPv4" if first == "IPv6" else "IPv6"
        return policy, ((first,) if policy == "SingleStack" else (first, second)), problems
    if given and given[0] != PRIMARY:  # spec/services.py already refused it; kept for direct callers
        problems.append(_problem(spec, "spec.ipFamilies", "only IPv4-primary Services are emulated"))
    families = (PRIMARY,) if policy == "SingleStack" else (PRIMARY, "IPv6")
    return policy, families, problems


def ipv6_cluster_ip(service_subnet_v4: str, service_subnet_v6: str, ip4: str, taken: set[str]) -> str | None:
    """The IPv6 ClusterIP at the IPv4 one's offset (or the next free one); None when full."""
    net4, net6 = ipaddress.ip_network(service_subnet_v4), ipaddress.IPv6Network(service_subnet_v6)
    size = net6.num_addresses - 1  # the network address is never a ClusterIP
    start = int(ipaddress.ip_address(ip4)) - int(net4.network_address)
    for step in range(min(size, 1 << 20)):
        offset = 1 + (start - 1 + step) % size
        ip = str(net6.network_address + offset)
        if ip not in taken:
            taken.add(ip)
            return ip
    return None


def plan_families(
    services: ServicesPlan,
    specs: Sequence[ServiceSpec],
    dual: bool,
    service_subnet_v6: str = "",
    primary: str = PRIMARY,
) -> tuple[dict[str, ServiceFamilies], list[Problem]]:
    """(Service key -> its families and ClusterIPs, problems) for every Service."""
    by_key = {s.key: s for s in specs}
    out: dict[str, ServiceFamilies] = {}
    problems: list[Problem] = []
    taken: set[str] = set()
    for svc in services.services:
        policy, families, found = resolve(None if svc.builtin else by_key.get(svc.key), dual, primary)
        problems += found
        ips: tuple[str, ...] = (svc.cluster_ip,) if svc.cluster_ip else ()
        if dual and "IPv6" in families and svc.proxied:
            ip6 = ipv6_cluster_ip(services.service_subnet, service_subnet_v6, svc.cluster_ip, taken)
            if ip6 is None:
                problems.append(
                    _problem(by_key[svc.key], "spec.ipFamilies", f"serviceSubnet {service_subnet_v6} is full")
                )
            else:  # in family order: an IPv6-first cluster's Services may have no IPv4 one (plan/v6first.py)
                ips = tuple({"IPv4": svc.cluster_ip, "IPv6": ip6}[f] for f in families)
        out[svc.key] = ServiceFamilies(policy, families, ips)
    return out, problems


def ipv6_slices(
    services: ServicesPlan, families: Mapping[str, ServiceFamilies], pod_ips6: Mapping[str, str]
) -> tuple[EndpointSlicePlan, ...]:
    """The IPv6 EndpointSlices of every dual-stack Service, from the IPv4 slices as they are now
    (derived on use, so readiness and endpoint changes made to the IPv4 slices carry over)."""
    out: list[EndpointSlicePlan] = []
    for svc in services.services:
        fams = families.get(svc.key)
        if fams is not None and "IPv6" in fams.families:
            out += _ipv6_slices(svc, services, pod_ips6)
    return tuple(out)


def _ipv6_slices(svc: ServicePlan, services: ServicesPlan, pod_ips6: Mapping[str, str]) -> list[EndpointSlicePlan]:
    """The EndpointSlice controller's IPv6 slices: the IPv4 ones' endpoints by their pods' IPv6."""
    out = []
    for sl in services.slices_of(svc.namespace, svc.name):
        if sl.managed_by != "endpointslice-controller.k8s.io":
            continue
        endpoints = tuple(
            EndpointPlan(pod_ips6[f"{sl.namespace}_{e.pod}"], e.node, e.pod, e.ready, e.serving, e.terminating)
            for e in sl.endpoints
            if f"{sl.namespace}_{e.pod}" in pod_ips6
        )
        # generateName's random suffix, drawn deterministically from the IPv4 slice's name
        suffix = "".join(
            "bcdfghjklmnpqrstvwxz2456789"[b % 27] for b in hashlib.sha256(f"{sl.name}/IPv6".encode()).digest()[:5]
        )
        out.append(
            EndpointSlicePlan(
                sl.namespace, f"{svc.name}-{suffix}", sl.service, sl.ports, endpoints, address_type="IPv6"
            )
        )
    return out


def ipv6_services(
    services: ServicesPlan, families: Mapping[str, ServiceFamilies], pod_ips6: Mapping[str, str], subnet6: str
) -> ServicesPlan:
    """The IPv6 side as kube-proxy's IPv6 proxier sees it: the dual-stack Services with their
    IPv6 ClusterIP (no load balancer or external addresses: those are IPv4 here) and the IPv6
    EndpointSlices."""
    svcs = tuple(
        dataclasses.replace(
            s,
            cluster_ip=ip6,
            load_balancer_ingress=(),
            external_ips=(),
            load_balancer_source_ranges=(),
        )
        for s in services.services
        if s.key in families and s.proxied and (ip6 := families[s.key].ip_of("IPv6"))
    )
    return ServicesPlan(services.seed, subnet6, None, svcs, ipv6_slices(services, families, pod_ips6))
