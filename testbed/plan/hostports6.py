"""hostPorts on a dual-stack node's IPv6 addresses (issue 15; pure, plan/).

The portmap CNI plugin runs once per address of the pod (plugins/meta/portmap forwardPorts is
called with each container IP): a dual-stack pod's hostPorts get the IPv4 rules
(plan/rulesets.py hostport_tables) and the same rules for its IPv6 address in the IPv6 tool,
ip6tables' nat table or `table ip6 cni_hostport` (rules/portmap.py with `twins`), so the
node's IPv6 addresses forward the hostPort too. A single-stack IPv6 plan needs none of this:
its pods' addresses are IPv6 already.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from ..rules.model import Table
from ..rules.portmap import mapped_pods, node_table

if TYPE_CHECKING:
    from .model import Plan


def hostport_tables6(plan: Plan) -> dict[str, Table]:
    """node -> the portmap plugin's IPv6 table, on the dual-stack nodes running hostPort pods."""
    dual = plan.dual
    if dual is None:
        return {}
    out: dict[str, Table] = {}
    for n in plan.nodes:
        pods = mapped_pods(plan.pods_on(n.name))
        if not pods or not any(v.name == n.name for v in dual.nodes):
            continue
        prefix = ipaddress.ip_network(dual.node(n.name).pod_cidr).prefixlen  # the pod's /64, as host-local gives it
        twins = {p.key: (dual.pods[p.key], prefix) for p in pods if p.key in dual.pods}
        out[n.name] = node_table(pods, plan.kube_proxy_mode, twins)
    return out
