"""The IPv6 edges of a dual-stack cluster (issue 15; pure, plan/): racks and the underlay router,
the outside world, LoadBalancer and external IPv6 addresses and the routes that bring them in.

plan/dualstack.py's `extend` calls these after it has the nodes' IPv6 half:

- racks: each underlay subnet's IPv6 segment (spec/underlay6.py: its cidrIPv6 or its twin,
  the outside world's in 2001:db8::/32); the router holds the first address of each, as in
  IPv4, and every node and external host routes the other racks' segments via its rack's
  router (plan/underlay.py's routes, one family over);
- LoadBalancer: the emulated cloud's IPv6 pool mirrors the IPv4 one's host numbers in the first
  rack's IPv6 segment (192.168.1.200-249 -> fd00:192:168:1::c8-f9); a Service whose families
  include IPv6 gets one IPv6 ingress address beside its IPv4 one, as MetalLB gives a dual-stack
  Service one address per family from a dual-stack pool — the IPv6 entry of MetalLB's
  `metallb.io/loadBalancerIPs` annotation when it names one, else the first free address.
  Allocations are kept across re-plans (`previous`), as the IPv4 ones are. Each address is
  held by one node (plan/loadbalancers.py's choice, per address);
- externalIPs: a dual-stack Service's IPv6 `externalIPs` (the IPv4 proxier ignores them, as
  upstream's per-family proxiers filter them), routed /128 from every external host and the
  router to one node, as plan/service_routes.py routes the IPv4 ones.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..spec.model import ClusterSpec
from ..spec.services import ServiceSpec
from ..spec.underlay6 import rack_cidrs_v6
from .loadbalancers import announcer_for, load_balancer_nodes
from .model import Plan, RoutePlan
from .service_families import ServiceFamilies
from .service_routes import ServiceRoute
from .services import LB_IPS_ANNOTATIONS, MAX_LB_IPS, parse_lb_pool


@dataclass(frozen=True)
class RackV6:
    """A rack's IPv6 segment and the underlay router's address on it ("" without a router)."""

    name: str
    cidr: str
    router_ip: str

    @property
    def prefix(self) -> int:
        return int(self.cidr.split("/")[1])


def plan_racks(cluster: ClusterSpec, plan: Plan) -> tuple[RackV6, ...]:
    """Every underlay subnet's IPv6 segment, in rack order (() for a one-subnet underlay)."""
    network = plan.network
    if not cluster.underlay_subnets or network is None:
        return ()
    cidrs = rack_cidrs_v6(cluster.underlay_subnets)
    routed = {s.name: bool(s.router_ip) for s in network.subnets}
    return tuple(
        RackV6(s.name, c, str(ipaddress.IPv6Network(c).network_address + 1) if routed.get(s.name) else "")
        for s, c in zip(cluster.underlay_subnets, cidrs)
    )


def rack_of(plan: Plan, member: str) -> str:
    """The rack (underlay subnet name) of a node or external host; "" on one subnet."""
    return plan.network.subnet_of(member).name if plan.network is not None else ""


def underlay_routes6(plan: Plan, racks: Sequence[RackV6]) -> tuple[RoutePlan, ...]:
    """Nodes and external hosts: the other racks' IPv6 segments via their rack's router."""
    if len(racks) < 2:
        return ()
    by_name = {r.name: r for r in racks}
    members = [*(n.name for n in plan.nodes), *(x.name for x in plan.externals)]
    return tuple(
        RoutePlan(member, other.cidr, own.router_ip, "eth0", f"underlay: rack {other.name} (IPv6) via the router")
        for member in members
        for own in (by_name[rack_of(plan, member)],)
        if own.router_ip
        for other in racks
        if other.name != own.name
    )


def router_lines6(plan: Plan, racks: Sequence[RackV6]) -> list[str]:
    """`ip -batch` lines of the router's IPv6 side: its address on each rack port (no DAD)."""
    if plan.network is None or not plan.network.routers:
        return []
    router = plan.network.routers[0]
    by_name = {r.name: r for r in racks}
    lines = []
    for intf in router.interfaces:
        rack = by_name.get(intf.subnet)
        if rack is not None and rack.router_ip:
            lines.append(f"addr add {rack.router_ip}/{rack.prefix} dev {intf.dev} nodad")
    return lines


# -- LoadBalancer and external IPv6 addresses -----------------------------------------------------


def lb_pool6(pool4: str | None, underlay4: str, underlay6: str) -> list[str]:
    """The IPv6 pool: the IPv4 pool's host numbers in the first rack's IPv6 segment."""
    if not pool4:
        return []
    net4, net6 = ipaddress.IPv4Network(underlay4), ipaddress.IPv6Network(underlay6)
    mask = (1 << (32 - net4.prefixlen)) - 1
    return [str(net6.network_address + (int(ipaddress.IPv4Address(ip)) & mask)) for ip in parse_lb_pool(pool4)]


def requested_lb_ips6(s: ServiceSpec) -> tuple[str, ...]:
    """The IPv6 entries of MetalLB's loadBalancerIPs annotation."""
    text = next((s.annotations[a] for a in LB_IPS_ANNOTATIONS if a in s.annotations), "")
    ips = (ip.strip() for ip in text.split(",")[:MAX_LB_IPS])
    return tuple(dict.fromkeys(str(ipaddress.IPv6Address(ip)) for ip in ips if ":" in ip and _is_v6(ip)))


def _is_v6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def plan_lb_ingress6(
    plan: Plan,
    specs: Sequence[ServiceSpec],
    families: Mapping[str, ServiceFamilies],
    pool: Sequence[str],
    previous: Mapping[str, tuple[str, ...]],
) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """(Service key -> its IPv6 ingress address, warnings) for the dual-stack LoadBalancers the
    emulated cloud handles (those that got an IPv4 address; no loadBalancerClass)."""
    out: dict[str, tuple[str, ...]] = {}
    warnings: list[str] = []
    if plan.services is None or not pool:
        return out, warnings
    by_key = {s.key: s for s in specs}
    wants = [
        s
        for s in plan.services.services
        if s.type == "LoadBalancer"
        and s.load_balancer_ingress
        and "IPv6" in families.get(s.key, ServiceFamilies("", (), ())).families
    ]
    free = list(pool)
    asked = {s.key: requested_lb_ips6(by_key[s.key]) if s.key in by_key else () for s in wants}
    for s in wants:  # existing Services keep their address
        old = previous.get(s.key, ())
        if old and all(ip in free for ip in old) and (not asked[s.key] or asked[s.key][:1] == old):
            free.remove(old[0])
            out[s.key] = old
    for s in wants:  # the annotation's IPv6 address
        if s.key in out or not asked[s.key]:
            continue
        ip = asked[s.key][0]
        if ip in free:
            free.remove(ip)
            out[s.key] = (ip,)
        else:
            why = "is not in the pool" if ip not in pool else "is already in use"
            warnings.append(f"Service {s.key}: loadBalancerIPs {ip[:40]} {why} (IPv6); no IPv6 ingress")
    for s in wants:
        if s.key in out or asked[s.key]:
            continue
        if not free:
            warnings.append(f"Service {s.key}: the IPv6 load balancer pool is exhausted; no IPv6 ingress")
            continue
        out[s.key] = (free.pop(0),)
    return out, warnings


def plan_external_ips6(
    plan: Plan, specs: Sequence[ServiceSpec], families: Mapping[str, ServiceFamilies]
) -> dict[str, tuple[str, ...]]:
    """Service key -> its IPv6 externalIPs, for the Services the IPv6 proxier sees (dual-stack)."""
    out: dict[str, tuple[str, ...]] = {}
    for s in specs:
        v6 = tuple(ip for ip in s.external_ips if ":" in ip)
        if v6 and "IPv6" in families.get(s.key, ServiceFamilies("", (), ())).families:
            out[s.key] = v6
    return out


def lb_announcers6(plan: Plan, lb_ingress: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    """IPv6 ingress address -> the node that holds it (plan/loadbalancers.py's choice)."""
    services = plan.services
    if services is None:
        return {}
    eligible = load_balancer_nodes(plan.nodes)
    out: dict[str, str] = {}
    for svc in services.services:
        for ip in lb_ingress.get(svc.key, ()):
            node = announcer_for(ip, services.load_balancer_targets(svc.namespace, svc.name, eligible))
            if node is not None:
                out[ip] = node
    return out


def service_routes6(
    plan: Plan,
    external_ips: Mapping[str, tuple[str, ...]],
    lb_ingress: Mapping[str, tuple[str, ...]],
    host_ip6: Mapping[str, str],
    racks: Sequence[RackV6],
) -> tuple[ServiceRoute, ...]:
    """Every external host's and the router's /128 route to each IPv6 external IP, via the IPv6
    HOST-IP of one node (chosen as for IPv4), in a stable order; with `advertiseServiceSubnet`,
    the IPv6 Service range too (as Calico advertises serviceClusterIPs per family: routed via
    one node as the IPv4 range is, plan/service_routes.py)."""
    services = plan.services
    advertised = plan.dual.service_subnet if plan.advertise_service_subnet and plan.dual is not None else ""
    if services is None or not (external_ips or advertised):
        return ()
    eligible = load_balancer_nodes(plan.nodes)
    hops: dict[str, str] = {}
    held = {ip for ips in lb_ingress.values() for ip in ips}
    for svc in services.services:
        for ip in external_ips.get(svc.key, ()):
            if ip in held or f"{ip}/128" in hops:
                continue
            node = announcer_for(ip, services.load_balancer_targets(svc.namespace, svc.name, eligible))
            if node is not None:
                hops[f"{ip}/128"] = node
    if advertised:
        node = announcer_for(advertised, tuple(eligible))
        if node is not None:
            hops[advertised] = node
    routers = {r.name: r.router_ip for r in racks}
    out: list[ServiceRoute] = []
    for dst, node in sorted(hops.items()):
        why = f"{dst} routed to node {node}"
        for host in plan.externals:
            if rack_of(plan, host.name) == rack_of(plan, node):
                out.append(ServiceRoute(host.name, host.key, dst, host_ip6[node], "eth0", why))
            elif routers.get(rack_of(plan, host.name)):
                out.append(
                    ServiceRoute(
                        host.name, host.key, dst, routers[rack_of(plan, host.name)], "eth0", f"{why}, via the router"
                    )
                )
        for router in plan.network.routers if plan.network is not None else ():
            dev = next((i.dev for i in router.interfaces if i.subnet == rack_of(plan, node)), None)
            if dev is not None:
                out.append(ServiceRoute(router.name, router.key, dst, host_ip6[node], dev, why))
    return tuple(out)


def describe(plan: Plan) -> list[str]:
    """`testbed plan`'s lines for the IPv6 edges (none for a one-subnet cluster without them)."""
    dual = plan.dual
    if dual is None:
        return []
    lines = [f"rack {r.name}: {r.cidr}" + (f", router {r.router_ip}" if r.router_ip else "") for r in dual.racks]
    lines += [f"route on {r.node}: {r.dst} via {r.via} dev {r.dev}  ({r.why})" for r in dual.underlay_routes]
    holders = lb_announcers6(plan, dual.lb_ingress)
    for key, ips in sorted(dual.lb_ingress.items()):
        lines += [f"Service {key}: LoadBalancer ingress {ip} held by {holders.get(ip, 'no node')}" for ip in ips]
    for key, ips in sorted(dual.external_ips.items()):
        lines.append(f"Service {key}: externalIPs {', '.join(ips)}")
    host6 = {n.name: n.host_ip for n in dual.nodes}
    routes = service_routes6(plan, dual.external_ips, dual.lb_ingress, host6, dual.racks)
    lines += [f"route on {r.member}: {r.line().removeprefix('route replace ')}  ({r.why})" for r in routes]
    return lines
