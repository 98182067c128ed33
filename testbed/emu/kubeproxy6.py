"""kube-proxy's IPv6 proxier in a dual-stack cluster (issue 15; emu/).

Upstream kube-proxy runs one proxier per family; this is the IPv6 one, iptables mode: the very
rules kubeproxy/iptables.py compiles for IPv4, compiled over the IPv6 view of the plan
(emu/dualstack.py's ipv6_view: the nodes' IPv6 HOST-IPs, the IPv6 pod and service subnets, the
dual-stack Services with their IPv6 ClusterIPs and EndpointSlices) and loaded with
ip6tables-restore. It runs right after the IPv4 KubeProxy (emu/cluster.py); with an IPv4 plan it
does nothing. nftables mode's `ip6` table is not built yet (spec/dualstack.py refuses it).
"""

from __future__ import annotations

from ..kubeproxy import render, render_iptables_bootstrap
from ..plan.model import NodePlan, Plan
from ..rules.model import Ruleset
from .controllers import KubeProxy
from .dualstack import ipv6_view
from .ledger import netns_name


class KubeProxy6(KubeProxy):
    """kube-proxy's IPv6 proxier of a dual-stack cluster, iptables mode: the same compiled rules
    (kubeproxy/iptables.py) over the IPv6 view of the plan, loaded with ip6tables-restore."""

    def sync(self, desired: Plan) -> None:
        view = ipv6_view(desired)
        if view is not None:
            super().sync(view)

    def _load(self, plan: Plan, node: NodePlan, ruleset: Ruleset) -> None:
        ns = netns_name(self.ledger.tag, node.key)
        first = node.name not in self.bootstrapped
        if first:  # as KubeProxy: a route for the service range, so unmatched packets reach FORWARD
            self.runner.ip_batch([f"route replace {plan.service_subnet} dev eth0"], netns=ns)
        restore = ["ip", "netns", "exec", ns, "ip6tables-restore", "--noflush", "--wait"]
        self.runner.run(restore, input=render(ruleset, self.previous.get(node.name)))
        if first:
            self.runner.run(restore, input=render_iptables_bootstrap(ruleset))
