"""Cluster DNS records, as CoreDNS's kubernetes plugin answers them (pure, part of plan/).

<svc>.<ns>.svc.cluster.local: the ClusterIP; for a headless Service every ready endpoint's
address; for an ExternalName Service a CNAME to spec.externalName. <a-b-c-d>.<ns>.pod.cluster.local:
the pod's address. <hostname>.<svc>.<ns>.svc.cluster.local: a headless Service's endpoint
whose pod has spec.hostname and spec.subdomain = the Service's name (the EndpointSlice
controller then sets the endpoint's hostname, which CoreDNS serves) — a StatefulSet's
per-pod names. emu/dns.py hands these to dnsmasq.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .service_model import ServicesPlan

if TYPE_CHECKING:  # the Plan gives its records (Plan.dns_records)
    from .model import PodPlan

DOMAIN = "cluster.local"


def records(
    services: ServicesPlan | None, pods: Sequence[PodPlan], domain: str = DOMAIN
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(A records as (name, ip), CNAMEs as (alias, target)), sorted."""
    a: set[tuple[str, str]] = set()
    cnames: set[tuple[str, str]] = set()
    named = {(p.namespace, p.name): p for p in pods if p.hostname and p.subdomain}
    for svc in services.services if services else ():
        name = f"{svc.name}.{svc.namespace}.svc.{domain}"
        if svc.type == "ExternalName":
            cnames.add((name, svc.external_name))
        elif svc.headless and services is not None:
            for sl in services.slices_of(svc.namespace, svc.name):
                for ep in sl.endpoints:
                    if ep.ready or svc.publish_not_ready_addresses:
                        a.add((name, ep.ip))
                        pod = named.get((svc.namespace, ep.pod))
                        if pod is not None and pod.subdomain == svc.name:
                            a.add((f"{pod.hostname}.{name}", ep.ip))
        elif svc.cluster_ip:
            a.add((name, svc.cluster_ip))
    for pod in pods:
        a.add((f"{pod.ip.replace('.', '-')}.{pod.namespace}.pod.{domain}", pod.ip))
    return sorted(a), sorted(cnames)
