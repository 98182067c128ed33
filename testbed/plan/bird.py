"""bird2 configurations for the bgp routing mode, rendered as text (pure, golden-tested).

Modelled on Calico's BIRD template (calico/confd bird.cfg.template): each node announces its
pod CIDR (Calico's IPAM block) from a static blackhole route, keeps its pods' /32 routes to
itself, imports what its peers announce into the kernel, and learns the kernel's own routes so
that next hops behind the underlay router resolve recursively (`gateway recursive`). Peers are
every other node (full mesh, Calico's default), route reflectors, or the top-of-rack router,
which reflects every node's routes and installs them in its own kernel.

The text holds no path: emu/bgp.py gives each daemon its socket, pid file and log on the
command line, under the instance's ledger folder. Timers are shortened (connect after 1 s,
retry every 2 s) so that an emulated cluster converges in seconds rather than minutes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from .network import BgpPeerPlan


def _timers(hold_time: int = 30) -> str:
    """The session timers: hold time as configured (bgp.holdTime), keepalives a third of it."""
    return (
        "  connect delay time 1;\n  connect retry time 2;\n  error wait time 1, 5;\n"
        f"  hold time {hold_time};\n  keepalive time {max(1, hold_time // 3)};\n"
    )


def hold_time_of(config: str) -> int:
    """The hold time a rendered configuration gives its sessions (30 s when it names none)."""
    m = re.search(r"^\s*hold time (\d+);", config, re.MULTILINE)
    return int(m.group(1)) if m else 30


def protocol_name(peer: BgpPeerPlan) -> str:
    """Calico's naming: Mesh_192_168_1_3 for a mesh peer; Rr_/Client_/Tor_ for the others."""
    prefix = {"mesh": "Mesh", "reflector": "Rr", "client": "Client", "tor": "Tor"}.get(peer.role, "Peer")
    return f"{prefix}_{re.sub(r'[^0-9A-Za-z]', '_', peer.ip)}"


def _header(what: str, router_id: str, ipv4: bool = True) -> str:
    """The daemon's head: its router id, logging, the device scan and (ipv4) the connected
    IPv4 subnets; an IPv6-only daemon has its `direct6` in its IPv6 half (_v6_common)."""
    text = (
        f"# bird2 configuration for {what}, rendered by the testbed's plan (plan/bird.py).\n"
        f"router id {router_id};\n"
        "log stderr all;\n\n"
        "protocol device {\n  scan time 10;\n}\n\n"
    )
    if ipv4:
        text += (
            "# Connected underlay subnets: next hops of BGP routes resolve through them.\n"
            'protocol direct {\n  ipv4;\n  interface "eth*";\n}\n\n'
        )
    return text


def _peer_block(peer: BgpPeerPlan, cluster_id: str, local: str | None = None, template: str = "peers") -> str:
    lines = [f"protocol bgp {protocol_name(peer)} from {template} {{", f'  description "{peer.name}";']
    if local is not None:
        lines.append(f"  local {local} as {peer.asn};")
    lines.append(f"  neighbor {peer.ip} as {peer.asn};")
    if peer.role == "client":
        lines += ["  rr client;", f"  rr cluster id {cluster_id};"]
    if peer.passive:
        lines.append("  passive on;  # one side per session: the peer connects to us")
    lines.append("}")
    return "\n".join(lines) + "\n"


def node_config(
    node: str,
    host_ip: str,
    asn: int,
    pod_cidr: str,
    pod_subnet: str,
    peers: Sequence[BgpPeerPlan],
    cluster_id: str = "",
    hold_time: int = 30,
) -> str:
    """Calico-like BIRD on a node: announce the pod CIDR, import the peers' into the kernel. An
    IPv6-only node (ipFamily ipv6): node_config6's IPv6 sessions alone, under Calico's hashed
    router id (hash_router_id)."""
    if ":" in host_ip:
        router_id = hash_router_id(node)
        head = _header(f"node {node} (AS {asn}, IPv6 only, router id hashed from its name)", router_id, ipv4=False)
        six = node_config6(host_ip, asn, pod_cidr, pod_subnet, peers, cluster_id or router_id, hold_time, "ipv6")
        return head + six
    text = _header(f"node {node} (AS {asn})", host_ip)
    text += (
        "# This node's pod CIDR, announced to the peers. As Calico does for its IPAM block, the\n"
        "# kernel gets a blackhole for it: an address without a pod is dropped here, while each\n"
        "# pod has a more specific /32 route to its veth.\n"
        f"protocol static pods {{\n  ipv4;\n  route {pod_cidr} blackhole;\n}}\n\n"
        "# Only pod routes travel: this node's CIDR (not its pods' /32s), and, when this node\n"
        "# reflects routes, the other nodes' CIDRs.\n"
        "filter export_to_peers {\n"
        f"  if net = {pod_cidr} then accept;\n"
        f"  if net ~ [ {pod_cidr}+ ] then reject;\n"
        f"  if net ~ [ {pod_subnet}+ ] then accept;\n"
        "  reject;\n}\n\n"
        "# The kernel: learn its routes (the underlay's, to resolve next hops), program the\n"
        "# routes learned by BGP and the blackhole of the own pod CIDR.\n"
        "protocol kernel {\n  learn;\n  scan time 10;\n  ipv4 {\n    import all;\n"
        "    export where source ~ [ RTS_BGP, RTS_STATIC ];\n  };\n}\n\n"
        "template bgp peers {\n"
        f"  local {host_ip} as {asn};\n"
        "  multihop;\n  strict bind on;\n"
        + _timers(hold_time)
        + "  ipv4 {\n    gateway recursive;\n    import all;\n    export filter export_to_peers;\n  };\n}\n\n"
    )
    text += "\n".join(_peer_block(p, cluster_id or host_ip) for p in peers)
    return text


def router_config(
    router_id: str, asn: int, pod_subnet: str, peers: Sequence[tuple[BgpPeerPlan, str]], hold_time: int = 30
) -> str:
    """The top-of-rack router: every node is its route-reflector client; it installs their routes.

    peers: (peer, the router's own address on that peer's rack). An IPv6-only underlay (its
    pod subnet IPv6, router_id hashed from the router's name): router_config6's sessions alone.
    """
    if ":" in pod_subnet:
        head = _header(f"the top-of-rack router (AS {asn}, route reflector, IPv6 only)", router_id, ipv4=False)
        return head + router_config6(asn, pod_subnet, peers, router_id, hold_time, "ipv6")
    text = _header(f"the top-of-rack router (AS {asn}, route reflector)", router_id)
    text += (
        "# Install every node's pod CIDR, learned from the node itself, in the router's kernel.\n"
        "protocol kernel {\n  scan time 10;\n  ipv4 {\n    import none;\n"
        "    export where source = RTS_BGP;\n  };\n}\n\n"
        "template bgp peers {\n"
        f"  local as {asn};\n"
        "  multihop;\n  strict bind on;\n" + _timers(hold_time) + "  ipv4 {\n    gateway recursive;\n    import all;\n"
        f"    export where net ~ [ {pod_subnet}+ ];\n  }};\n}}\n\n"
    )
    text += "\n".join(_peer_block(p, router_id, local=local) for p, local in peers)
    return text


# -- IPv6 (ipFamily dual) ------------------------------------------------------------------------
# A dual-stack node's bird2 speaks IPv6 over sessions of its own between the nodes' IPv6
# addresses, as Calico's BIRD does (its bird6 template peers with the other nodes' IPv6
# addresses): each route's next hop is then the peer's IPv6 address with no extended next hop,
# and a failure of one family's session leaves the other's routes alone. bird2 runs both
# families in one daemon: the IPv6 half is appended to the IPv4 configuration, which stays as
# it was, with its own direct, static, kernel and bgp protocols (ipv6 channels).


def _v6_common(which: str, family: str = "dual") -> str:
    return (
        f"# IPv6 (ipFamily {family}), over IPv6 sessions of their own (ipv6 channels): {which}.\n"
        'protocol direct direct6 {\n  ipv6;\n  interface "eth*";\n}\n\n'
    )


def node_config6(
    host_ip6: str,
    asn: int,
    pod_cidr6: str,
    pod_subnet6: str,
    peers6: Sequence[BgpPeerPlan],
    cluster_id: str,
    hold_time: int = 30,
    family: str = "dual",
) -> str:
    """The IPv6 half of a node's bird.conf: announce its /64, import the peers' (node_config's
    twin; cluster_id is the IPv4 one: a route reflector's cluster id is a 32-bit number)."""
    text = _v6_common("the node's /64 announced and the peers' imported, as over IPv4", family)
    text += (
        f"protocol static pods6 {{\n  ipv6;\n  route {pod_cidr6} blackhole;\n}}\n\n"
        "filter export_to_peers6 {\n"
        f"  if net = {pod_cidr6} then accept;\n"
        f"  if net ~ [ {pod_cidr6}+ ] then reject;\n"
        f"  if net ~ [ {pod_subnet6}+ ] then accept;\n"
        "  reject;\n}\n\n"
        "protocol kernel kernel6 {\n  learn;\n  scan time 10;\n  ipv6 {\n    import all;\n"
        "    export where source ~ [ RTS_BGP, RTS_STATIC ];\n  };\n}\n\n"
        "template bgp peers6 {\n"
        f"  local {host_ip6} as {asn};\n"
        "  multihop;\n  strict bind on;\n"
        + _timers(hold_time)
        + "  ipv6 {\n    gateway recursive;\n    import all;\n    export filter export_to_peers6;\n  };\n}\n\n"
    )
    text += "\n".join(_peer_block(p, cluster_id, template="peers6") for p in peers6)
    return text


def router_config6(
    asn: int,
    pod_subnet6: str,
    peers6: Sequence[tuple[BgpPeerPlan, str]],
    cluster_id: str,
    hold_time: int = 30,
    family: str = "dual",
) -> str:
    """The IPv6 half of the top-of-rack router's bird.conf (router_config's twin)."""
    text = _v6_common("every node's /64 reflected and installed", family)
    text += (
        "protocol kernel kernel6 {\n  scan time 10;\n  ipv6 {\n    import none;\n"
        "    export where source = RTS_BGP;\n  };\n}\n\n"
        "template bgp peers6 {\n"
        f"  local as {asn};\n"
        "  multihop;\n  strict bind on;\n" + _timers(hold_time) + "  ipv6 {\n    gateway recursive;\n    import all;\n"
        f"    export where net ~ [ {pod_subnet6}+ ];\n  }};\n}}\n\n"
    )
    text += "\n".join(_peer_block(p, cluster_id, local=local, template="peers6") for p, local in peers6)
    return text


# -- IPv6 only (ipFamily ipv6) -------------------------------------------------------------------
# A BGP identifier is a 32-bit number (RFC 4271, RFC 6286), which bird takes from an IPv4 address
# of the host when the configuration names none: an IPv6-only node has none ("Cannot determine
# router ID"). Calico solves it with CALICO_ROUTER_ID=hash: the router id is the first four bytes
# of the SHA-256 of the node's name, the first lowered by 32 when it would fall in 224.0.0.0/3
# (confd's hashToIPv4), so every node gets a stable, distinct id without an IPv4 address. The
# daemon is then the dual-stack daemon's IPv6 half alone, under that router id; a route
# reflector's cluster id is its router id, as bird defaults it (node_config, router_config).


def hash_router_id(name: str) -> str:
    """Calico's router id for a node without IPv4 (CALICO_ROUTER_ID=hash), from its name."""
    first, *rest = hashlib.sha256(name.encode()).digest()[:4]
    return ".".join(str(b) for b in (first - 32 if first > 223 else first, *rest))
