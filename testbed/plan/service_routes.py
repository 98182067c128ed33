"""Routes that bring Service addresses to a node from outside the cluster (pure; plan/, issue 19).

Kubernetes does not route a Service's `externalIPs` anywhere: the administrator (or the
cloud) routes each of them to a node, whose kube-proxy DNATs it in PREROUTING. Here the
emulated cloud does what a cloud's route table does: every external host and the underlay
router get a /32 route for each external IP via one node's HOST-IP (external hosts in
another rack via their rack's router). The node is chosen as a load balancer's would be
(plan/loadbalancers.py: not excluded from load balancers; with externalTrafficPolicy Local,
only nodes with a ready local endpoint), stable per address. An external IP that is also a
LoadBalancer ingress address is already held by a node there and gets no route.

With the topology's `advertiseServiceSubnet: true` (TestbedConfig), the Service range is
routed the same way, via one node, as Calico advertises serviceClusterIPs over BGP (where the
router would spread it over every node with ECMP; one next hop keeps replies symmetric here):
outside hosts then reach ClusterIPs, and kube-proxy masquerades them (off-cluster sources).

emu/controllers.py (ServiceRoutes) adds and removes these routes as Services change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .loadbalancers import announcer_for, load_balancer_nodes

if TYPE_CHECKING:  # the Plan gives its own (Plan.service_routes)
    from .model import Plan


@dataclass(frozen=True)
class ServiceRoute:
    member: str  # the external host or the router that holds the route
    key: str  # its netns key
    dst: str  # ip/32 or the Service CIDR
    via: str
    dev: str
    why: str

    def line(self) -> str:
        """`ip -batch` line that sets it."""
        return f"route replace {self.dst} via {self.via} dev {self.dev}"


def next_hops(plan: Plan) -> dict[str, str]:
    """Destination (external IP /32, or the Service CIDR when advertised) -> the node it is routed to."""
    out: dict[str, str] = {}
    services = plan.services
    if services is None:
        return out
    eligible = load_balancer_nodes(plan.nodes)
    for svc in services.services:
        for ip in svc.external_ips:
            host = f"{ip}/128" if ":" in ip else f"{ip}/32"  # IPv6: a single-stack IPv6 cluster's
            if ip in svc.load_balancer_ingress or host in out:
                continue
            node = announcer_for(ip, services.load_balancer_targets(svc.namespace, svc.name, eligible))
            if node is not None:
                out[host] = node
    if plan.advertise_service_subnet:
        node = announcer_for(plan.service_subnet, tuple(eligible))
        if node is not None:
            out[plan.service_subnet] = node
    return out


def service_routes(plan: Plan) -> tuple[ServiceRoute, ...]:
    """Every external host's and router's route to the Service addresses, in a stable order."""
    hops = next_hops(plan)
    if not hops:
        return ()
    network = plan.network
    nodes = {n.name: n for n in plan.nodes}

    def rack(member: str) -> str:
        return network.subnet_of(member).name if network is not None else ""

    out: list[ServiceRoute] = []
    for dst, node_name in sorted(hops.items()):
        node = nodes[node_name]
        why = f"{dst} routed to node {node_name}"
        for host in plan.externals:
            if rack(host.name) == rack(node_name):
                out.append(ServiceRoute(host.name, host.key, dst, node.host_ip, "eth0", why))
            elif network is not None and network.subnet_of(host.name).router_ip:
                router_ip = network.subnet_of(host.name).router_ip
                out.append(ServiceRoute(host.name, host.key, dst, router_ip, "eth0", f"{why}, via the router"))
        for router in network.routers if network is not None else ():
            dev = next((i.dev for i in router.interfaces if i.subnet == rack(node_name)), None)
            if dev is not None:
                out.append(ServiceRoute(router.name, router.key, dst, node.host_ip, dev, why))
    return tuple(out)


def routes_by_netns_key(routes: Sequence[ServiceRoute]) -> dict[str, dict[str, ServiceRoute]]:
    """netns key -> destination -> route."""
    out: dict[str, dict[str, ServiceRoute]] = {}
    for r in routes:
        out.setdefault(r.key, {})[r.dst] = r
    return out
