"""The IPv6 half of a dual-stack plan (issue 15): node /64s, pod and underlay addresses, routes.

Pure, plan/. build.py plans the cluster as always on its IPv4 (primary) family, then
`extend` adds this half when the topology says `ipFamily: dual`; an IPv4 cluster's plan is
untouched (`Plan.dual` stays None and out of its JSON).

Addresses mirror the IPv4 ones, as the host-local IPAM plugin hands them out with one range
per family (kind's dual-stack CNI config): both ranges start after the gateway and advance
together, so a pod with host offset N in its node's IPv4 CIDR has offset N in the node's IPv6
/64, and a recreated pod's new IPv4 address brings a new IPv6 one. Node /64s are carved in node
order like the IPv4 CIDRs (kube-controller-manager's dual-stack range allocator); underlay
members keep their IPv4 host number in the IPv6 underlay segment (with racks, in their rack's:
plan/edges6.py, which also plans the router's IPv6 side, the IPv6 LoadBalancer and external
addresses and the routes that bring them in).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import Problem, SpecError
from ..spec.model import ClusterSpec
from ..spec.services import ServiceSpec
from .model import Plan, PodPlan, RoutePlan
from .service_families import ServiceFamilies, ipv6_services, ipv6_slices, plan_families
from .service_model import EndpointSlicePlan, ServicePlan, ServicesPlan

# Deferred (imported where used; here for type checkers only): what only a dual-stack or IPv6
# cluster needs, and the policy compiler. Every plan passes through `extend`, and `testbed plan`
# of an IPv4 cluster should not load the IPv6 edges and routes or compile a rule (start-up time).
if TYPE_CHECKING:
    from ..netpol.world import World
    from ..rules.model import Ruleset
    from .dualroutes import RouterV6
    from .edges6 import RackV6
    from .network import VtepPlan


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
    # the routing mode's IPv6 objects (plan/dualroutes.py): the router's IPv6 side (cloud-routes,
    # bgp top-of-rack), flannel-v6.1 on each node (vxlan)
    routers: tuple[RouterV6, ...] = ()
    vteps: tuple[VtepPlan, ...] = ()
    # -- the edges (plan/edges6.py): racks and their router, LoadBalancer and external addresses
    racks: tuple[RackV6, ...] = ()  # each underlay subnet's IPv6 segment (() on one subnet)
    prefixes: Mapping[str, int] = field(default_factory=dict)  # member -> its rack segment's prefix
    underlay_routes: tuple[RoutePlan, ...] = ()  # members: the other racks' segments via the router
    lb_ingress: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # Service key -> IPv6 ingress
    external_ips: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # Service key -> IPv6 externalIPs
    host_network: Mapping[str, str] = field(default_factory=dict)  # hostNetwork pod key -> its node's IPv6

    def prefix_of(self, member: str) -> int:
        """The prefix length of a node's or external host's IPv6 underlay segment."""
        return self.prefixes.get(member, self.underlay_prefix)

    def prefix_of_address(self, address: str) -> int:
        """The prefix length of the IPv6 underlay segment holding `address` (a router port's)."""
        ip = ipaddress.IPv6Address(address)
        rack = next((r for r in self.racks if ip in ipaddress.IPv6Network(r.cidr)), None)
        return rack.prefix if rack is not None else self.underlay_prefix

    def vtep(self, node: str) -> VtepPlan | None:
        return next((v for v in self.vteps if v.node == node), None)

    def node(self, name: str) -> NodeV6:
        return next(n for n in self.nodes if n.name == name)

    def ipv6_services(self, services: ServicesPlan) -> ServicesPlan:
        """The IPv6 side of the Services, as kube-proxy's IPv6 proxier sees it: their IPv6
        ClusterIPs and slices, LoadBalancer ingress and externalIPs."""
        view = ipv6_services(services, self.services, self.pods, self.service_subnet)
        if not (self.lb_ingress or self.external_ips):
            return view
        svcs = tuple(
            dataclasses.replace(
                s, load_balancer_ingress=self.lb_ingress.get(s.key, ()), external_ips=self.external_ips.get(s.key, ())
            )
            for s in view.services
        )
        return dataclasses.replace(view, services=svcs)

    def slices(self, services: ServicesPlan | None) -> tuple[EndpointSlicePlan, ...]:
        """The IPv6 EndpointSlices, from the plan's current (IPv4) ones."""
        return ipv6_slices(services, self.services, self.pods) if services is not None else ()

    def pod_ips(self, key: str, ip4: str) -> tuple[str, ...]:
        """A pod's status.podIPs, in family order (a hostNetwork pod's: its node's, as the
        kubelet reports them for a dual-stack node)."""
        ip6 = self.pods.get(key) or self.host_network.get(key)
        if not ip6:
            return (ip4,)
        return (ip6, ip4) if self.families[0] == "IPv6" else (ip4, ip6)

    def ordered(self, ip4: str, ip6: str) -> list[str]:
        """The IPv4 and IPv6 value of a field in family order (InternalIPs, podCIDRs)."""
        return [ip6, ip4] if self.families[0] == "IPv6" else [ip4, ip6]


def extend(
    cluster: ClusterSpec, plan: Plan, services: Sequence[ServiceSpec] = (), previous: DualStackPlan | None = None
) -> Plan:
    """`plan` with its IPv6 half when the cluster is dual-stack; else `plan` itself. `services`
    (the manifests' Services) get their families (plan/service_families.py): SpecError when the
    cluster cannot give a Service what it requires (RequireDualStack on an IPv4 cluster).
    `previous` (the plan this one re-plans) keeps the IPv6 LoadBalancer addresses."""
    if cluster.ip_family == "dual" and cluster.primary_family == "IPv6":  # plan/v6first.py
        from . import v6first  # deferred: see the imports

        problems = v6first.refusals(services)
        if problems:
            raise SpecError(problems)
    if cluster.ip_family != "dual":
        primary = "IPv6" if cluster.ip_family == "ipv6" else "IPv4"  # single-stack (spec/ipv6.py)
        problems = plan_families(plan.services, services, False, primary=primary)[1] if plan.services else []
        if cluster.ip_family == "ipv6":  # what an IPv6 cluster does not build yet (plan/ipv6.py)
            from .ipv6 import refusals as ipv6_refusals  # deferred: see the imports

            problems += ipv6_refusals(cluster.file, plan, services)
        else:
            problems += ipv6_external_ip_problems(services)
        if problems:
            raise SpecError(problems)
        return plan
    from . import edges6  # deferred: see the imports
    from .dualroutes import plan_routes6

    pods6 = ipaddress.IPv6Network(cluster.pod_subnet_v6)
    under6 = ipaddress.IPv6Network(cluster.underlay_subnet_v6)
    racks = edges6.plan_racks(cluster, plan)
    segment = {r.name: ipaddress.IPv6Network(r.cidr) for r in racks}

    def address6(member: str, ip4: str, prefix4: int) -> str:
        base = segment.get(edges6.rack_of(plan, member), under6) if segment else under6
        return str(base.network_address + _host_number(ip4, prefix4))

    cidrs = pods6.subnets(new_prefix=cluster.node_cidr_prefix_v6)
    nodes: list[NodeV6] = []
    for node in plan.nodes:
        cidr = next(cidrs)
        nodes.append(
            NodeV6(
                node.name,
                address6(node.name, node.host_ip, node.underlay_prefix),
                str(cidr),
                str(cidr.network_address + 1),
            )
        )
    pods = _pod_addresses(plan, nodes, plan.pods)
    externals = {x.name: address6(x.name, x.ip, x.underlay_prefix) for x in plan.externals}
    # every underlay member's IPv4 address -> its IPv6 one (nodes, the router's ports: on their
    # rack's segment, where the router holds the first address as in IPv4)
    v6_of = {n.host_ip: v.host_ip for n, v in zip(plan.nodes, nodes, strict=True)}
    rack_router = {r.name: r.router_ip for r in racks if r.router_ip}
    for router in plan.network.routers if plan.network is not None else ():
        for intf in router.interfaces:
            if segment:
                if intf.subnet in rack_router:
                    v6_of[intf.ip] = rack_router[intf.subnet]
            else:
                v6_of[intf.ip] = str(under6.network_address + _host_number(intf.ip, intf.prefix))
    routing6 = plan_routes6(cluster, nodes, plan.network, str(pods6), v6_of)
    routes = routing6.routes
    if segment and cluster.routing == "host-gw":
        # host-gw's next hop is on the node's own segment: across racks there is no route (as in IPv4)
        owner = {n.pod_cidr: n.name for n in nodes}
        routes = tuple(r for r in routes if edges6.rack_of(plan, owner[r.dst]) == edges6.rack_of(plan, r.node))
    families: dict[str, ServiceFamilies] = {}
    if plan.services is not None:
        families, problems = plan_families(
            plan.services, services, True, cluster.service_subnet_v6, primary=cluster.primary_family
        )
        if problems:
            raise SpecError(problems)
    pool6 = edges6.lb_pool6(
        plan.services.lb_pool if plan.services is not None else None, cluster.underlay_subnet, str(under6)
    )
    lb_ingress, lb_warnings = edges6.plan_lb_ingress6(
        plan, services, families, pool6, previous.lb_ingress if previous is not None else {}
    )
    host_v6 = {n.name: n.host_ip for n in nodes}
    dual = DualStackPlan(
        families=("IPv6", "IPv4") if cluster.primary_family == "IPv6" else ("IPv4", "IPv6"),
        pod_subnet=str(pods6),
        service_subnet=cluster.service_subnet_v6,
        underlay_subnet=str(under6),
        underlay_prefix=under6.prefixlen,
        nodes=tuple(nodes),
        pods=pods,
        externals=externals,
        routes=routes,
        services=families,
        routers=routing6.routers,
        vteps=routing6.vteps,
        racks=racks,
        prefixes={m: segment[edges6.rack_of(plan, m)].prefixlen for m in [*host_v6, *externals]} if segment else {},
        underlay_routes=edges6.underlay_routes6(plan, racks),
        lb_ingress=lb_ingress,
        external_ips=edges6.plan_external_ips6(plan, services, families),
        host_network={p.key: host_v6[p.node] for p in plan.pods if p.host_network and p.node in host_v6},
    )
    warnings = tuple(lb_warnings)  # the administrator's tiers are compiled into the IPv6 table too
    network = routing6.network if routing6.network is not None else plan.network
    return dataclasses.replace(plan, dual=dual, network=network, warnings=plan.warnings + warnings)


def ipv6_external_ip_problems(services: Sequence[ServiceSpec]) -> list[Problem]:
    """An IPv6 externalIP on an IPv4 cluster: refused, as before dual-stack (no proxier would
    ever program it)."""
    return [
        Problem(
            s.ref.file,
            s.field_path(f"spec.externalIPs[{i}]"),
            f"{ip!r}: an IPv6 address needs a dual-stack cluster (networking.ipFamily: dual)",
            str(s.ref),
        )
        for s in services
        for i, ip in enumerate(s.external_ips)
        if ":" in ip
    ]


def _pod_addresses(plan: Plan, nodes: Sequence[NodeV6], pods: Iterable[PodPlan]) -> dict[str, str]:
    """pod key -> its IPv6 address: its IPv4 host offset in its node's /64 (host-local's two ranges)."""
    by_name = {n.name: n for n in nodes}
    v4_cidr = {n.name: ipaddress.IPv4Network(n.pod_cidr) for n in plan.nodes}
    return {
        p.key: str(
            ipaddress.IPv6Network(by_name[p.node].pod_cidr).network_address
            + (int(ipaddress.IPv4Address(p.ip)) - int(v4_cidr[p.node].network_address))
        )
        for p in pods
        if p.node in by_name and p.node in v4_cidr and ipaddress.ip_address(p.ip) in v4_cidr[p.node]
    }


def with_known_pods(plan: Plan, pods: Iterable[PodPlan]) -> Plan:
    """`plan` whose IPv6 half also addresses `pods` it does not list: the terminating pods a
    paced change adds back and the pods a node's kube-proxy still holds (plan/lifecycle.py), so
    their IPv6 endpoints keep their conditions (terminating fallback) as the IPv4 ones do. The
    pods of the plan keep theirs."""
    dual = plan.dual
    if dual is None:
        return plan
    extra = _pod_addresses(plan, dual.nodes, [p for p in pods if p.key not in dual.pods])
    if not extra:
        return plan
    return dataclasses.replace(plan, dual=dataclasses.replace(dual, pods={**extra, **dual.pods}))


def _host_number(ip: str, prefix: int) -> int:
    """The host part of an IPv4 underlay address (192.168.1.10/24 -> 10)."""
    return int(ipaddress.IPv4Address(ip)) & ((1 << (32 - prefix)) - 1)


def pod_ips(plan: Plan, key: str, ip: str) -> list[str]:
    """A pod's status.podIPs in family order (just `ip` in an IPv4 cluster)."""
    return list(plan.dual.pod_ips(key, ip)) if plan.dual is not None else [ip]


def node_ips(plan: Plan, name: str, ip: str) -> list[str]:
    """A node's InternalIPs in family order (just its HOST-IP in an IPv4 cluster)."""
    return plan.dual.ordered(ip, plan.dual.node(name).host_ip) if plan.dual is not None else [ip]


def node_pod_cidrs(plan: Plan, name: str, cidr: str) -> list[str]:
    """A node's spec.podCIDRs in family order."""
    return plan.dual.ordered(cidr, plan.dual.node(name).pod_cidr) if plan.dual is not None else [cidr]


def external_ip_column(plan: Plan, svc: ServicePlan) -> str:
    """kubectl's EXTERNAL-IP of a Service: its ingress addresses then its externalIPs, IPv6 ones
    included in a dual-stack cluster (as kubectl lists status.loadBalancer.ingress)."""
    text = svc.external_ip_column()
    if plan.dual is None:
        return text
    extra = [*plan.dual.lb_ingress.get(svc.key, ()), *plan.dual.external_ips.get(svc.key, ())]
    if not extra:
        return text
    return ",".join([*(text.split(",") if text not in ("<pending>", "<none>") else []), *extra])


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
    from ..netpol.world import World  # deferred: see the imports

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
    from ..netpol.compiler import compile_cluster  # deferred: see the imports

    return compile_cluster(ipv6_world(plan))


def ipv6_script(text: str) -> str:
    """An `nft -f` script of the policy table (whole, patch or element updates) as its IPv6 twin:
    table inet testbed-netpol6, IPv6 address types and `ip6` matches. Both tables hook forward at
    the same priority: an IPv4 packet matches nothing in the IPv6 one and the other way round.
    Drop evidence (rules/droplog.py) names the IPv6 table in its log prefixes too, so a logged IPv6
    drop says which table dropped it, as the IPv6 view's tracer does (plan/view6.py)."""
    from ..netpol.nft import TABLE  # deferred: see the imports

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
