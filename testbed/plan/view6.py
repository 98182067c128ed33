"""A dual-stack plan seen over its IPv6 family: the oracle, the rule tracer and the drop checks
of IPv6 flows (issue 15; pure, plan/).

`ipv6_plan(plan)` is the same desired state with every address swapped for its IPv6 twin:
pods, nodes (HOST-IP, cni0 gateway, pod /64), external hosts, the pod and service subnets, the
dual-stack Services with their IPv6 ClusterIPs and EndpointSlices. Its `world` is the IPv6 policy
world (plan/dualstack.py's ipv6_world: ipBlocks and tier networks give their IPv6 prefixes), its
`rulesets` the tables the IPv6 side of every node holds: kube-proxy's IPv6 proxier (iptables
mode, as emu/kubeproxy6.py loads it) and the IPv6 policy table under its kernel name
(testbed-netpol6), so `explain --trace` and a logged IPv6 drop name the same rules, and the
portmap plugin's IPv6 hostPort table (plan/hostports6.py: ip6tables' nat rules or `table ip6
cni_hostport`), after kube-proxy's as on the IPv4 side. The egress masquerade and the outside
world are IPv4 only so far: none here.

`family_plan(plan, ip)` picks the view an address belongs to: the plan itself for IPv4.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from functools import cached_property

from ..netpol.nft import TABLE
from ..netpol.world import World
from ..rules.model import Ruleset, Table
from .dualstack import TABLE6, ipv6_world
from .model import Plan
from .rulesets import merged_rulesets


class Plan6(Plan):
    """The IPv6 view of a dual-stack plan (built by ipv6_plan; `dual` is None in it)."""

    origin: Plan  # the dual-stack plan it views (set by ipv6_plan)

    @cached_property
    def world(self) -> World:
        return ipv6_world(self.origin)

    @cached_property
    def egress_tables(self) -> Mapping[str, Table]:
        return {}  # the outside world is IPv4 only so far

    @cached_property
    def hostport_tables(self) -> Mapping[str, Table]:
        from .hostports6 import hostport_tables6  # deferred: only an IPv6 view needs it

        return hostport_tables6(self.origin)  # the portmap plugin's IPv6 rules, as emu/hostports.py loads them

    @cached_property
    def rulesets(self) -> Mapping[str, Ruleset]:
        return {
            node: dataclasses.replace(
                r, tables=tuple(dataclasses.replace(t, name=TABLE6) if t.name == TABLE else t for t in r.tables)
            )
            for node, r in merged_rulesets(self).items()
        }


class NotDualStack(ValueError):
    """An IPv6 view of a plan without an IPv6 half."""


def ipv6_plan(plan: Plan) -> Plan:
    """The plan seen over IPv6 (NotDualStack for an IPv4 cluster)."""
    if isinstance(plan, Plan6):
        return plan
    dual = plan.dual
    if dual is None:
        raise NotDualStack("IPv6 needs a dual-stack cluster (networking.ipFamily: dual)")
    fields = {f.name: getattr(plan, f.name) for f in dataclasses.fields(plan) if f.init}
    fields.update(
        pods=tuple(dataclasses.replace(p, ip=dual.pods[p.key]) for p in plan.pods if p.key in dual.pods),
        nodes=tuple(
            dataclasses.replace(
                n,
                host_ip=dual.node(n.name).host_ip,
                gateway=dual.node(n.name).gateway,
                pod_cidr=dual.node(n.name).pod_cidr,
            )
            for n in plan.nodes
        ),
        externals=tuple(
            dataclasses.replace(x, ip=dual.externals[x.name]) for x in plan.externals if x.name in dual.externals
        ),
        pod_subnet=dual.pod_subnet,
        service_subnet=dual.service_subnet,
        services=dual.ipv6_services(plan.services) if plan.services is not None else None,
        conditions=None,  # the IPv6 proxier sees the current state (emu/dualstack.py's ipv6_view)
        dual=None,
    )
    view = Plan6(**fields)
    object.__setattr__(view, "origin", plan)
    return view


def family_plan(plan: Plan, ip: str) -> Plan:
    """The view `ip` belongs to: the IPv6 one for an IPv6 address of a dual-stack plan."""
    return ipv6_plan(plan) if ":" in ip and plan.dual is not None else plan
