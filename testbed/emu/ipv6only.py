"""The kernel side of a single-stack IPv6 cluster (issue 15, spec/ipv6.py; emu/).

The plan's primary addresses are IPv6 (plan/ipv6.py): the builders that set addresses and routes
do the IPv6 way of the same thing, and nothing IPv4 is ever given to an emulated interface.

- Underlay: Mininet adds its hosts without an address (it drives them through their shells, it
  needs none); each member's eth0 then gets its IPv6 underlay address and a link-local address
  derived from it, both without duplicate address detection (emu/dualstack.py's reasons: the
  addresses are planned unique; a tentative address would hold every packet for a second).
- The underlay router (cloud-routes, racks, bgp top-of-rack): Mininet adds it without an address
  too; its ports get their IPv6 addresses (each its rack's prefix) and link-local ones without
  DAD and IPv6 forwarding, then the route controller's routes (each node's /64 via its IPv6
  HOST-IP, out of the port of that node's rack), as a dual-stack router's IPv6 side does.
- Nodes: IPv6 forwarding, bridged IPv6 through ip6tables (kube-proxy's DNAT between pods of one
  node), cni0's /64 gateway and fe80::1 without DAD, the MLD filter of dual-stack nodes.
- Pods: eth0's address (no DAD, still no link-local: emu/pods.py) and the default route via the
  gateway, on the pod's one rtnetlink socket (emu/pods.py configure_pod).
kube-proxy's rules go through ip6tables-restore, the policy table is written for IPv6
(plan/ipv6.py), the agent serves IPv6 sockets and dnsmasq listens on IPv6 (emu/controllers.py,
emu/dns.py, switching on plan/ipv6.py's is_ipv6).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..plan.dualroutes import RouterV6
from ..plan.network import RouterPlan
from .dualstack import (
    BRIDGE_LINK_LOCAL,
    NODE_SYSCTLS6,
    ROUTER_SYSCTLS6,
    addr6_add,
    default6_add,
    link_local,
    mld_filter,
    router_lines6,
)
from .ledger import netns_name
from .runner import Runner

__all__ = ["addr6_add", "default6_add", "address_members6", "bridge_lines6", "node_setup6", "router_setup6"]


def member_lines6(ip: str, prefix: int) -> list[str]:
    """ip -batch lines giving an underlay member its IPv6 addresses (pure)."""
    return [f"addr add {ip}/{prefix} dev eth0 nodad", f"addr add {link_local(ip)}/64 dev eth0 nodad"]


def address_members6(runner: Runner, tag: str, members: Sequence[tuple[str, str, int]]) -> None:
    """Every node's and external host's eth0: (netns key, IPv6 address, prefix)."""
    for key, ip, prefix in members:
        runner.ip_batch(member_lines6(ip, prefix), netns=netns_name(tag, key))


def bridge_lines6(bridge: str, gateway: str, prefix: str) -> list[str]:
    """cni0's gateway and link-local addresses, without DAD (pure; emu/pods.py node_batch)."""
    return [f"addr add {gateway}/{prefix} dev {bridge} nodad", f"addr add {BRIDGE_LINK_LOCAL}/64 dev {bridge} nodad"]


def node_setup6(runner: Runner, netns: str) -> None:
    """A node's IPv6 sysctls and the bridge table that keeps pods' MLD reports off cni0."""
    from .pods import write_sysctls  # emu/pods.py imports this module

    write_sysctls(netns, NODE_SYSCTLS6)
    runner.run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=mld_filter())


def router_lines_of6(router: RouterPlan, mtu: int) -> list[str]:
    """ip -batch lines inside an IPv6 cluster's router (pure): its ports up at the underlay MTU,
    then the dual-stack router's IPv6 lines (addresses without DAD, link-local, routes), each
    port with its own rack's prefix."""
    lines = [f"link set {i.dev} mtu {mtu} up" for i in router.interfaces]
    for i in router.interfaces:
        lines += router_lines6(RouterV6(router.name, router.key, ((i.dev, i.ip),)), i.prefix)
    return lines + router_lines6(RouterV6(router.name, router.key, (), router.routes), 0)


def router_setup6(runner: Runner, netns: str, router: RouterPlan, mtu: int) -> None:
    """An IPv6 cluster's underlay router: IPv6 forwarding, then its addresses and routes."""
    from .pods import write_sysctls  # emu/pods.py imports this module

    write_sysctls(netns, ROUTER_SYSCTLS6)
    runner.ip_batch(router_lines_of6(router, mtu), netns=netns)
