"""The IPv6 half of a dual-stack plan (issue 15): node /64s, pod and underlay addresses, routes.

Pure, plan/. build.py plans the cluster as always on its IPv4 (primary) family, then
`extend` adds this half when the topology says `ipFamily: dual`; an IPv4 cluster's plan is
untouched (`Plan.dual` stays None and out of its JSON).

Addresses mirror the IPv4 ones, as the host-local IPAM plugin hands them out with one range
per family (kind's dual-stack CNI config): both ranges start after the gateway and advance
together, so a pod with host offset N in its node's IPv4 CIDR has offset N in the node's IPv6
/64, and a recreated pod's new IPv4 address brings a new IPv6 one. Node /64s are carved in node
order like the IPv4 CIDRs (kube-controller-manager's dual-stack range allocator); underlay
members keep their IPv4 host number in the IPv6 underlay segment.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import SpecError
from ..netpol.compiler import compile_cluster
from ..netpol.nft import TABLE
from ..netpol.world import World
from ..rules.model import Ruleset
from ..spec.model import ClusterSpec
from ..spec.services import ServiceSpec
from .model import Plan, RoutePlan
from .service_families import ServiceFamilies, ipv6_services, ipv6_slices, plan_families
from .service_model import EndpointSlicePlan, ServicesPlan


@dataclass(frozen=True)
class NodeV6:
    name: str
    host_ip: str  # the node's address on the IPv6 underlay
    pod_cidr: str  # its /64 of the IPv6 podSubnet
    gateway: str  # first address of pod_cidr, held by cni0


@dataclass(frozen=True)
class DualStackPlan:
    """What a dual-stack cluster adds to the IPv4 plan, in kind's family order."""

    families: tuple[str, ...]  # ("IPv4", "IPv6"): the primary family first
    pod_subnet: str
    service_subnet: str
    underlay_subnet: str
    underlay_prefix: int
    nodes: tuple[NodeV6, ...]
    pods: Mapping[str, str] = field(default_factory=dict)  # pod netns key -> IPv6 address
    externals: Mapping[str, str] = field(default_factory=dict)  # external host name -> IPv6 address
    routes: tuple[RoutePlan, ...] = ()
    # Service key -> the API server's ipFamilyPolicy, ipFamilies and ClusterIPs (plan/service_families.py)
    services: Mapping[str, ServiceFamilies] = field(default_factory=dict)

    def node(self, name: str) -> NodeV6:
        return next(n for n in self.nodes if n.name == name)

    def ipv6_services(self, services: ServicesPlan) -> ServicesPlan:
        """The IPv6 side of the Services, as kube-proxy's IPv6 proxier sees it."""
        return ipv6_services(services, self.services, self.pods, self.service_subnet)

    def slices(self, services: ServicesPlan | None) -> tuple[EndpointSlicePlan, ...]:
        """The IPv6 EndpointSlices, from the plan's current (IPv4) ones."""
        return ipv6_slices(services, self.services, self.pods) if services is not None else ()

    def pod_ips(self, key: str, ip4: str) -> tuple[str, ...]:
        """A pod's status.podIPs, in family order."""
        return (ip4, self.pods[key]) if key in self.pods else (ip4,)


def extend(cluster: ClusterSpec, plan: Plan, services: Sequence[ServiceSpec] = ()) -> Plan:
    """`plan` with its IPv6 half when the cluster is dual-stack; else `plan` itself. `services`
    (the manifests' Services) get their families (plan/service_families.py): SpecError when the
    cluster cannot give a Service what it requires (RequireDualStack on an IPv4 cluster)."""
    if cluster.ip_family != "dual":
        if plan.services is not None:
            problems = plan_families(plan.services, services, False)[1]
            if problems:
                raise SpecError(problems)
        return plan
    pods6 = ipaddress.IPv6Network(cluster.pod_subnet_v6)
    under6 = ipaddress.IPv6Network(cluster.underlay_subnet_v6)
    cidrs = pods6.subnets(new_prefix=cluster.node_cidr_prefix_v6)
    nodes: list[NodeV6] = []
    for node in plan.nodes:
        cidr = next(cidrs)
        nodes.append(
            NodeV6(
                node.name,
                str(under6.network_address + _host_number(node.host_ip, node.underlay_prefix)),
                str(cidr),
                str(cidr.network_address + 1),
            )
        )
    by_name = {n.name: n for n in nodes}
    v4_cidr = {n.name: ipaddress.IPv4Network(n.pod_cidr) for n in plan.nodes}
    pods = {
        p.key: str(
            ipaddress.IPv6Network(by_name[p.node].pod_cidr).network_address
            + (int(ipaddress.IPv4Address(p.ip)) - int(v4_cidr[p.node].network_address))
        )
        for p in plan.pods
        if p.node in by_name and ipaddress.ip_address(p.ip) in v4_cidr[p.node]
    }
    externals = {x.name: str(under6.network_address + _host_number(x.ip, x.underlay_prefix)) for x in plan.externals}
    routes = tuple(
        RoutePlan(n.name, peer.pod_cidr, peer.host_ip, "eth0", f"host-gw: IPv6 pod CIDR of {peer.name} via its HOST-IP")
        for n in nodes
        for peer in nodes
        if peer.name != n.name
    )
    families: dict[str, ServiceFamilies] = {}
    if plan.services is not None:
        families, problems = plan_families(plan.services, services, True, cluster.service_subnet_v6)
        if problems:
            raise SpecError(problems)
    dual = DualStackPlan(
        families=("IPv4", "IPv6"),
        pod_subnet=str(pods6),
        service_subnet=cluster.service_subnet_v6,
        underlay_subnet=str(under6),
        underlay_prefix=under6.prefixlen,
        nodes=tuple(nodes),
        pods=pods,
        externals=externals,
        routes=routes,
        services=families,
    )
    return dataclasses.replace(plan, dual=dual)


def _host_number(ip: str, prefix: int) -> int:
    """The host part of an IPv4 underlay address (192.168.1.10/24 -> 10)."""
    return int(ipaddress.IPv4Address(ip)) & ((1 << (32 - prefix)) - 1)


def pod_ips(plan: Plan, key: str, ip: str) -> list[str]:
    """A pod's status.podIPs in family order (just `ip` in an IPv4 cluster)."""
    return list(plan.dual.pod_ips(key, ip)) if plan.dual is not None else [ip]


def node_ips(plan: Plan, name: str, ip: str) -> list[str]:
    """A node's InternalIPs in family order (just its HOST-IP in an IPv4 cluster)."""
    return [ip, plan.dual.node(name).host_ip] if plan.dual is not None else [ip]


def node_pod_cidrs(plan: Plan, name: str, cidr: str) -> list[str]:
    """A node's spec.podCIDRs in family order."""
    return [cidr, plan.dual.node(name).pod_cidr] if plan.dual is not None else [cidr]


def service_family_fields(plan: Plan, key: str) -> dict[str, str | list[str]]:
    """A dual-stack cluster's Service spec fields clusterIPs, ipFamilies, ipFamilyPolicy ({} in an
    IPv4 cluster, whose Services are shown as before)."""
    if plan.dual is None or key not in plan.dual.services:
        return {}
    f = plan.dual.services[key]
    out: dict[str, str | list[str]] = {"clusterIPs": list(f.cluster_ips)} if f.cluster_ips else {}
    if f.families:
        out |= {"ipFamilies": list(f.families), "ipFamilyPolicy": f.policy}
    return out


# -- NetworkPolicies over IPv6 -------------------------------------------------------------------
TABLE6 = "testbed-netpol6"


def ipv6_world(plan: Plan) -> World:
    """The policy world over the pods', nodes' and hosts' IPv6 addresses: the same policies, whose
    ipBlocks contribute their IPv6 prefixes (the oracle and compiler of IPv6 flows), and so do the
    administrator's tiers' `networks` peers (netpol/tier_compiler.py)."""
    dual = plan.dual
    assert dual is not None
    view = dataclasses.replace(
        plan,
        pods=tuple(dataclasses.replace(p, ip=dual.pods[p.key]) for p in plan.pods if p.key in dual.pods),
        nodes=tuple(
            dataclasses.replace(n, host_ip=dual.node(n.name).host_ip, gateway=dual.node(n.name).gateway)
            for n in plan.nodes
        ),
        externals=tuple(
            dataclasses.replace(x, ip=dual.externals[x.name]) for x in plan.externals if x.name in dual.externals
        ),
        dual=None,
    )
    return dataclasses.replace(World.from_plan(view), ip_version=6)


def policy_rulesets6(plan: Plan) -> dict[str, Ruleset]:
    """node -> the IPv6 NetworkPolicy table: the IPv4 compiler's output over the IPv6 world."""
    return compile_cluster(ipv6_world(plan))


def ipv6_script(text: str) -> str:
    """An `nft -f` script of the policy table (whole, patch or element updates) as its IPv6 twin:
    table inet testbed-netpol6, IPv6 address types and `ip6` matches. Both tables hook forward at
    the same priority: an IPv4 packet matches nothing in the IPv6 one and the other way round.
    Drop evidence (rules/droplog.py) names the IPv6 table in its log prefixes too, so a logged IPv6
    drop says which table dropped it, as the IPv6 view's tracer does (plan/view6.py)."""
    for old, new in (
        (f"inet {TABLE}", f"inet {TABLE6}"),
        (f'"tb drop {TABLE} ', f'"tb drop {TABLE6} '),
        (f'"tb reject {TABLE} ', f'"tb reject {TABLE6} '),
        ("ipv4_addr", "ipv6_addr"),
        ("ip saddr", "ip6 saddr"),
        ("ip daddr", "ip6 daddr"),
    ):
        text = text.replace(old, new)
    return text
