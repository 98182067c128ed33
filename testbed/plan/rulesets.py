"""The compiled rulesets of every node, part of the desired state (pure; plan/).

Each controller's rules compile into the one netfilter model (testbed/rules/): kube-proxy's
from the ServicesPlan (kubeproxy/), the NetworkPolicy table from the policy world
(netpol/compiler.py), the egress masquerade towards the outside subnets (rules/egress.py).
emu/ loads them; `testbed explain --trace` follows a packet through their merge. The Plan
computes each part on first use (Plan.kube_proxy_rulesets, ...), so a change that touches no
Service never compiles kube-proxy's rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..kubeproxy import build_ruleset
from ..netpol.compiler import compile_cluster
from ..rules.egress import egress_table
from ..rules.model import Ruleset, Table
from ..rules.portmap import mapped_pods, node_table
from .service_model import ServicesPlan
from .v6first import ipv4_side

if TYPE_CHECKING:  # the Plan calls these on itself
    from .model import Plan


def kube_proxy_rulesets(plan: Plan) -> dict[str, Ruleset]:
    """node -> kube-proxy's ruleset in the plan's mode; none without Services or in mode none."""
    if plan.services is None or plan.kube_proxy_mode == "none":
        return {}
    views = plan.conditions
    # an IPv6-first cluster's IPv4 side (plan/v6first.py), once per view; the view is kept with
    # it, so that its id is not reused by another one
    sides: dict[int, tuple[ServicesPlan, ServicesPlan]] = {}

    def side(view: ServicesPlan) -> ServicesPlan:
        if id(view) not in sides:
            sides[id(view)] = (view, ipv4_side(view, plan.dual))
        return sides[id(view)][1]

    return {
        n.name: build_ruleset(
            side(views.services_of(n.name, plan.services) if views is not None else plan.services),
            n.name,
            n.host_ip,
            plan.pod_subnet,
            plan.kube_proxy_mode,
            plan.kube_proxy,
            n.pod_cidr,
        )
        for n in plan.nodes
    }


def policy_rulesets(plan: Plan) -> dict[str, Ruleset]:
    """node -> the NetworkPolicy provider's table, compiled from the plan's policy world."""
    return compile_cluster(plan.world)


def egress_tables(plan: Plan) -> dict[str, Table]:
    """node -> the egress masquerade table; none when the plan has no outside subnet."""
    if not plan.outside_subnets:
        return {}
    table = egress_table(plan.pod_subnet, plan.outside_subnets)
    return {n.name: table for n in plan.nodes}


def hostport_tables(plan: Plan) -> dict[str, Table]:
    """node -> the portmap CNI plugin's table, on the nodes running pods with hostPorts."""
    out: dict[str, Table] = {}
    for n in plan.nodes:
        pods = mapped_pods(plan.pods_on(n.name))
        if pods:
            # a single-stack IPv6 plan's: ip6tables or table ip6 cni_hostport (rules/portmap.py)
            out[n.name] = node_table(pods, plan.kube_proxy_mode, ipv6=":" in plan.pod_subnet)
    return out


def merged_rulesets(plan: Plan) -> dict[str, Ruleset]:
    """node -> every table it holds, in the order emu/ loads them (kube-proxy, policy, egress)."""
    out: dict[str, Ruleset] = {}
    for n in plan.nodes:
        tables: list[Table] = []
        if n.name in plan.kube_proxy_rulesets:
            tables += plan.kube_proxy_rulesets[n.name].tables
        if (plan.policies or plan.tiers) and n.name in plan.policy_rulesets:
            tables += plan.policy_rulesets[n.name].tables
        if n.name in plan.egress_tables:
            tables.append(plan.egress_tables[n.name])
        if n.name in plan.hostport_tables:  # after kube-proxy's, as the plugin appends its jumps
            tables.append(plan.hostport_tables[n.name])
        out[n.name] = Ruleset(
            n.name, tuple(tables), plan.kube_proxy_mode, n.host_ip, plan.pod_subnet, plan.service_subnet
        )
    return out
