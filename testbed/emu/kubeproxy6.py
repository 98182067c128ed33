"""kube-proxy's IPv6 proxier in a dual-stack cluster (issue 15; emu/).

Upstream kube-proxy runs one proxier per family; this is the IPv6 one, in the cluster's mode: the
very rules kubeproxy/ compiles for IPv4, compiled over the IPv6 view of the plan
(emu/dualstack.py's ipv6_view: the nodes' IPv6 HOST-IPs and /64s, the IPv6 pod and service
subnets, the dual-stack Services with their IPv6 ClusterIPs and EndpointSlices, each node's own
view while a change travels) and loaded with ip6tables-restore, or as table `ip6 kube-proxy`
with `nft -f` (nftables mode), partially after the first sync as the IPv4 proxier's. It runs
right after the IPv4 KubeProxy (emu/cluster.py) and is stopped and resumed with it (the
kube-proxy-down fault: emu/faults.py); with an IPv4 plan it does nothing.
"""

from __future__ import annotations

from ..plan.model import Plan
from .controllers import KubeProxy
from .dualstack import ipv6_view


class KubeProxy6(KubeProxy):
    """kube-proxy's IPv6 proxier of a dual-stack cluster: the same compiled rules
    (kubeproxy/iptables.py or nftables.py) over the IPv6 view of the plan."""

    def sync(self, desired: Plan) -> None:
        view = ipv6_view(desired)
        if view is not None:
            super().sync(view)

    def resume(self, node: str, desired: Plan) -> None:
        """kube-proxy started again on `node`: the IPv6 proxier too programs the current state."""
        view = ipv6_view(desired)
        if view is None:
            self.paused.discard(node)
        else:
            super().resume(node, view)

    def program(self) -> str:
        return "ip6tables-restore"
