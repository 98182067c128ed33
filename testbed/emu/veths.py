"""The pods' veth pairs on a node, made by rtnetlink requests packed in-process (emu/).

What emu/pods.py's node_batch writes as `ip` lines for each pod (its pod lines are the
reference these requests are checked against, tests/integration/test_veths.py), made
without a process: one rtnetlink socket opened inside the node's namespace sends every pod's
requests, a chunk at a time, and reads the acknowledgements. Per pod:

1. the pair, created with both ends final: the node's end named, sized and enslaved to cni0 in
   the same request (IFLA_MASTER), the pod's end born as eth0 inside the pod's namespace
   (IFLA_NET_NS_FD of the peer), nothing moved afterwards;
2. the node's end: no IPv6 link-local address (addrgenmode none, before its link is ready; see
   node_batch) and, on a bridge, hairpin mode;
3. without a bridge (bgp), its /32 route to the pod.

The node's end is made up (IFF_UP in the creating request, which the kernel applies as `ip
link set up` once the pair is registered): one request less per pod under the rtnl lock than
a separate `link set up`, with the same outcome. Its peer, eth0, is down until the pod's own
setup, so the node's end has no carrier and IPv6 does not consider the link ready (no
link-local address, no DAD, no MLD) when addrgenmode none reaches it right after; by the time
eth0 comes up and the carrier with it, both ends have addrgenmode none, as when the node's
end was brought up last.

Why not `ip -n <node> -batch`: at 10,000 pods each such process copied the VM's whole mount
table into a mount namespace of its own (`ip -n` makes one, as `ip netns exec` does: 10,000+
namespace mounts, 2 s of system CPU over the build's 50 nodes), and parsed, looked up and sent
each line on its own. Each end also asks for one transmit and one receive queue: without it a
veth gets one per possible CPU and is then cut down to one, and shrinking the queues of a
registered device waits for an RCU grace period under the rtnl lock (synchronize_net in
netif_set_real_num_tx_queues), twice per pod.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import KernelError
from ..netns import in_netns
from .netlink import (
    IFF_UP,
    IFLA_AF_SPEC,
    IFLA_INET6_ADDR_GEN_MODE,
    IN6_ADDR_GEN_MODE_NONE,
    NLM_F_CREATE,
    NLM_F_EXCL,
    RT_SCOPE_LINK,
    RT_TABLE_MAIN,
    RTA_DST,
    RTA_OIF,
    RTM_NEWLINK,
    RTM_NEWROUTE,
    RTN_UNICAST,
    RtnlSocket,
    _attr,
)

IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO = 3, 4, 10, 18
IFLA_NET_NS_FD, IFLA_NUM_TX_QUEUES, IFLA_NUM_RX_QUEUES = 28, 31, 32
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA = 1, 2, 4, 5
VETH_INFO_PEER, IFLA_BRPORT_MODE = 1, 4
NLM_F_REPLACE, RTPROT_BOOT = 0x100, 3  # `ip route replace`: create or replace, proto boot
CHUNK = 32  # pods per send: 2-3 acknowledgements each must fit the socket's receive buffer

_IFINFOMSG = struct.Struct("=BxHiII")
_RTMSG = struct.Struct("=BBBBBBBBI")
_U32 = struct.Struct("=I")


@dataclass(frozen=True)
class PodLink:
    """One pod's pair: the node's end, the pod's namespace (its end is eth0 there), its IPv4."""

    host: str
    netns: str  # the pod's namespace, as named under /run/netns
    ip: str


def _name(name: str) -> bytes:
    return _attr(IFLA_IFNAME, name.encode() + b"\0")


def _queues() -> bytes:
    return _attr(IFLA_NUM_TX_QUEUES, _U32.pack(1)) + _attr(IFLA_NUM_RX_QUEUES, _U32.pack(1))


def veth_create(host: str, netns_fd: int, mtu: int, master: int = 0, up: bool = False) -> tuple[int, int, bytes]:
    """`ip link add HOST mtu M [master BR] [up] type veth peer name eth0 mtu M netns POD`, one queue each."""
    peer = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _name("eth0") + _attr(IFLA_MTU, _U32.pack(mtu))
    peer += _attr(IFLA_NET_NS_FD, _U32.pack(netns_fd)) + _queues()
    info = _attr(IFLA_INFO_KIND, b"veth") + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer))
    flags = IFF_UP if up else 0
    body = (
        _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, flags, flags)
        + _name(host)
        + _attr(IFLA_MTU, _U32.pack(mtu))
        + _queues()
    )
    if master:
        body += _attr(IFLA_MASTER, _U32.pack(master))
    return RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body + _attr(IFLA_LINKINFO, info)


def port_setup(host: str, hairpin: bool) -> tuple[int, int, bytes]:
    """`ip link set HOST addrgenmode none` [and `type bridge_slave hairpin on`], the link still down."""
    inet6 = _attr(socket.AF_INET6, _attr(IFLA_INET6_ADDR_GEN_MODE, bytes([IN6_ADDR_GEN_MODE_NONE])))
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _name(host) + _attr(IFLA_AF_SPEC, inet6)
    if hairpin:
        slave = _attr(IFLA_INFO_SLAVE_KIND, b"bridge") + _attr(IFLA_INFO_SLAVE_DATA, _attr(IFLA_BRPORT_MODE, b"\1"))
        body += _attr(IFLA_LINKINFO, slave)
    return RTM_NEWLINK, 0, body


def host_route(ip: str, oif: int) -> tuple[int, int, bytes]:
    """`ip route replace IP/32 dev HOST scope link` (proto boot, as ip makes it)."""
    body = _RTMSG.pack(socket.AF_INET, 32, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_LINK, RTN_UNICAST, 0)
    body += _attr(RTA_DST, socket.inet_aton(ip)) + _attr(RTA_OIF, struct.pack("=i", oif))
    return RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, body


def add_pod_links(node_netns: str, links: Sequence[PodLink], mtu: int, bridge: str = "", folder: str = "") -> None:
    """Every pod's pair on the node (its namespace named `node_netns`): enslaved to `bridge`
    with hairpin on, or, without a bridge, routed by a /32. Raises KernelError naming the pod
    and the request the kernel refused."""
    folder = folder or "/run/netns"
    with in_netns(os.path.join(folder, node_netns)):
        master = socket.if_nametoindex(bridge) if bridge else 0
        with RtnlSocket() as rtnl:
            for i in range(0, len(links), CHUNK):
                _chunk(rtnl, links[i : i + CHUNK], mtu, master, folder, node_netns)


def _chunk(rtnl: RtnlSocket, links: Sequence[PodLink], mtu: int, master: int, folder: str, node: str) -> None:
    fds: list[int] = []
    try:
        for link in links:
            fds.append(os.open(os.path.join(folder, link.netns), os.O_RDONLY | os.O_CLOEXEC))
        requests, what = [], []
        for link, fd in zip(links, fds):
            for request, text in (
                (
                    veth_create(link.host, fd, mtu, master, up=True),  # eth0 still down: no carrier yet
                    f"link add {link.host} up type veth peer name eth0 netns {link.netns}",
                ),
                (port_setup(link.host, hairpin=bool(master)), f"link set {link.host} addrgenmode none"),
            ):
                requests.append(request)
                what.append(text)
        rtnl.request_all(requests, what=what)
        if not master:  # routed (bgp): each pod by a /32 to its veth, known by index once made
            routes = [host_route(link.ip, socket.if_nametoindex(link.host)) for link in links]
            rtnl.request_all(routes, what=[f"route replace {link.ip}/32 dev {link.host} scope link" for link in links])
    except OSError as exc:  # a refused request (NetlinkError), a pod namespace that cannot be opened
        raise KernelError(["netlink", f"(node netns {node})"], exc.errno or 1, str(exc)) from None
    finally:
        for fd in fds:
            os.close(fd)
