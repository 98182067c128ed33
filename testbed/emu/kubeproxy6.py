"""kube-proxy's IPv6 proxier in a dual-stack cluster (issue 15; emu/).

Upstream kube-proxy runs one proxier per family; this is the IPv6 one, iptables mode: the very
rules kubeproxy/iptables.py compiles for IPv4, compiled over the IPv6 view of the plan
(emu/dualstack.py's ipv6_view: the nodes' IPv6 HOST-IPs, the IPv6 pod and service subnets, the
dual-stack Services with their IPv6 ClusterIPs and EndpointSlices) and loaded with
ip6tables-restore. It runs right after the IPv4 KubeProxy (emu/cluster.py); with an IPv4 plan it
does nothing. nftables mode's `ip6` table is not built yet (spec/dualstack.py refuses it).
"""

from __future__ import annotations

from ..plan.model import Plan
from . import rules
from .controllers import KubeProxy
from .dualstack import ipv6_view


class KubeProxy6(KubeProxy):
    """kube-proxy's IPv6 proxier of a dual-stack cluster, iptables mode: the same compiled rules
    (kubeproxy/iptables.py) over the IPv6 view of the plan, loaded with ip6tables-restore."""

    def sync(self, desired: Plan) -> None:
        view = ipv6_view(desired)
        if view is not None:
            super().sync(view)

    def restore(self, ns: str, text: str) -> None:
        rules.ip6tables_restore(self.runner, ns, text)
