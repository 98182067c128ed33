"""The cluster DNS's AAAA records in a dual-stack cluster (issue 15; pure, plan/).

Beside plan/dns.py's A records, as CoreDNS's kubernetes plugin answers them: a dual-stack
Service's name has its IPv6 ClusterIP, a dual-stack headless Service's name its ready IPv6
endpoints, and every pod `<address with - for :>.<namespace>.pod.<domain>` its IPv6 address.
dnsmasq reads them from the same hosts file (emu/dns.py): an IPv6 line answers AAAA (and PTR).
Pods keep their resolv.conf: kube-dns stays an IPv4 SingleStack Service, as kubeadm makes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .dns import DOMAIN
from .pod import PodPlan
from .service_model import ServicesPlan

if TYPE_CHECKING:  # the Plan gives its records (Plan.dns_records)
    from .dualstack import DualStackPlan


def aaaa_records(
    dual: DualStackPlan | None, services: ServicesPlan | None, pods: Sequence[PodPlan], domain: str = DOMAIN
) -> list[tuple[str, str]]:
    """(name, IPv6 address) records; none for an IPv4 cluster."""
    if dual is None:
        return []
    out: set[tuple[str, str]] = set()
    for svc in services.services if services else ():
        fams = dual.services.get(svc.key)
        if fams is None or "IPv6" not in fams.families:
            continue
        name = f"{svc.name}.{svc.namespace}.svc.{domain}"
        if svc.headless:
            for sl in dual.slices(services):
                if (sl.namespace, sl.service) == (svc.namespace, svc.name):
                    out.update((name, e.ip) for e in sl.endpoints if e.ready or svc.publish_not_ready_addresses)
        elif ip6 := fams.ip_of("IPv6"):
            out.add((name, ip6))
    for pod in pods:
        ip6 = dual.pods.get(pod.key)
        if ip6:
            out.add((f"{ip6.replace(':', '-')}.{pod.namespace}.pod.{domain}", ip6))
    return sorted(out)
