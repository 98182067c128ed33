"""Cross-node routing of pod CIDRs, one function per mode (part of plan/).

host-gw (flannel's host-gw backend, seed 002's "route 10.244.1.0 via 192.168.1.3"): every
node routes each peer's pod CIDR via that peer's HOST-IP on the shared L2 underlay.
Further modes (cloud-routes, vxlan, bgp) register here with the same signature.
"""

from __future__ import annotations

import ipaddress
from typing import Callable, Sequence

from .model import NodePlan, RoutePlan

RouteMode = Callable[[Sequence[NodePlan]], tuple[list[RoutePlan], list[str]]]


def host_gw(nodes: Sequence[NodePlan]) -> tuple[list[RoutePlan], list[str]]:
    routes: list[RoutePlan] = []
    warnings: list[str] = []
    for node in nodes:
        own = ipaddress.ip_network(node.pod_cidr)
        chosen: dict[str, str] = {}
        for peer in nodes:
            if peer.name == node.name:
                continue
            if ipaddress.ip_network(peer.pod_cidr).overlaps(own):
                # The kernel already delivers this range on cni0: a route to the peer would
                # never be chosen, which is exactly seed 002's failure.
                warnings.append(f"{node.name}: no route to {peer.name}'s pod CIDR {peer.pod_cidr}, "
                                f"it overlaps its own {node.pod_cidr}")
                continue
            if peer.pod_cidr in chosen:
                # One destination, one route: the first peer wins, the other is unreachable.
                warnings.append(f"{node.name}: {peer.name}'s pod CIDR {peer.pod_cidr} is already routed to "
                                f"{chosen[peer.pod_cidr]}; {peer.name}'s pods are unreachable from here")
                continue
            chosen[peer.pod_cidr] = peer.name
            routes.append(RoutePlan(node.name, peer.pod_cidr, peer.host_ip, "eth0",
                                    f"host-gw: pod CIDR of {peer.name} via its HOST-IP"))
    return routes, warnings


MODES: dict[str, RouteMode] = {"host-gw": host_gw}
