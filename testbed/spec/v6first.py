"""An IPv6-first dual-stack cluster: kind's `ipFamily: dual` with the IPv6 CIDRs first (issue 15;
spec/, pure).

In Kubernetes the first CIDR of each pair is the primary family: kube-controller-manager lists a
node's podCIDRs in the cluster-cidr order, the kubelet reports podIPs (status.podIP is the
first) and, as kind configures it from the first serviceSubnet, the node's InternalIPs in that
order; kube-apiserver gives a Service without ipFamilies the primary family of its
service-cluster-ip-range (SingleStack: an IPv6 ClusterIP only; PreferDualStack: [IPv6, IPv4]),
and kube-dns (kubeadm's, SingleStack) its IPv6 ClusterIP, the nameserver in every pod's
resolv.conf.

The seam: the plan keeps its two halves as for an IPv4-first cluster (the IPv4 ranges in
ClusterSpec.pod_subnet/service_subnet, the IPv6 ones in the `*_v6` fields, plan/dualstack.py's
IPv6 half beside them), so the kernel gets the same addresses and routes in every routing mode;
`primary_family` says which family the API objects put first (plan/v6first.py: their order,
the Services' families and ClusterIPs, kube-dns, the IPv4 proxier's and the DNS A records' view).

Kubernetes itself accepts a podSubnet and a serviceSubnet of different primary families (kind's
default serviceSubnet is IPv4-first); the testbed emulates one primary family for pods, nodes
and Services, so it refuses that mix in one line, as it refuses what is not built yet.
"""

from __future__ import annotations

import ipaddress

from ..errors import Problem
from .dualstack import KIND


def first_family(value: str) -> str:
    """IPv6 when the first CIDR of a comma-separated pair is IPv6, else IPv4."""
    first = value.split(",")[0].strip()
    try:
        return "IPv6" if ipaddress.ip_network(first, strict=False).version == 6 else "IPv4"
    except ValueError:
        return "IPv4"  # the range checks name the bad CIDR


def primary_family(file: str, pod_subnet: str, service_subnet: str) -> tuple[str, list[Problem]]:
    """(the primary family, problems) of a dual-stack cluster: its podSubnet's first family,
    which its serviceSubnet must share (one line otherwise)."""
    pods, services = first_family(pod_subnet), first_family(service_subnet)
    if pods == services:
        return pods, []
    given = f"{service_subnet[:80]!r}" if service_subnet else "kind's default serviceSubnet (IPv4 first)"
    return pods, [
        Problem(
            file,
            "networking.serviceSubnet",
            f"{given}: its first family differs from podSubnet's ({pods}); the testbed emulates one primary "
            f"family for pods, nodes and Services: list both pairs {pods} first",
            KIND,
        )
    ]


def refusals(file: str, racks: int, advertise: bool) -> list[Problem]:
    """What an IPv6-first dual-stack cluster does not build yet, one line each."""
    out: list[Problem] = []
    if racks > 1:
        out.append(
            Problem(
                file,
                "underlay.subnets",
                "racks with an IPv6-first dual-stack cluster: not built yet; use one subnet, or IPv4 first",
                "TestbedConfig",
            )
        )
    if advertise:
        out.append(
            Problem(
                file,
                "advertiseServiceSubnet",
                "with an IPv6-first dual-stack cluster: not built yet; use IPv4 first",
                "TestbedConfig",
            )
        )
    return out
