"""The Mininet part of the emulation: nodes and external hosts on the underlay switch.

Part of emu/ (the shell). Each Kubernetes node is a Mininet Host with its HOST-IP on eth0
(scenario 001); scenario 002's laptop is another Host. The underlay switch is a Linux bridge
(this kernel has no openvswitch module) that runs in a network namespace of its own, so
nothing — not even a bridge — is added to the VM's root namespace, and no link ever joins
the VM's real uplink (no Mininet NAT node). Every namespace is then given a name under
/run/netns (`ip netns attach`) so the rest of emu/ addresses nodes like pods.

An underlay of several subnets (racks) has one switch per rack and a router: a Mininet host
with one port per rack switch, forwarding, holding each rack's gateway address; members
route the other racks via it (one `ip -batch` per member). With cloud-routes the router
also gets the route controller's routes, one per node pod CIDR.
"""

from __future__ import annotations

import os
import resource
import sys
import time
import warnings
from collections.abc import Iterable
from typing import Any

from ..plan.ipv6 import is_ipv6
from ..plan.model import Plan, RoutePlan
from ..plan.network import RouterPlan
from .ipv6only import address_members6, router_setup6
from .ledger import Ledger, netns_name
from .pods import write_sysctls
from .runner import Runner
from .warmup import echo_round

# The router forwards between racks like a cloud gateway or a switch's routing engine: no ICMP
# redirects (nodes must keep sending to it), no reverse-path filter, ICMP errors not
# rate-limited (a probe of a dropped flow must see its "unreachable" at once).
ROUTER_SYSCTLS = [
    ("net/ipv4/ip_forward", "1"),
    ("net/ipv4/conf/all/rp_filter", "0"),
    ("net/ipv4/conf/default/rp_filter", "0"),
    ("net/ipv4/conf/all/send_redirects", "0"),
    ("net/ipv4/conf/default/send_redirects", "0"),
    ("net/ipv4/icmp_ratemask", "0"),
]


def route_line(route: RoutePlan) -> str:
    via = f" via {route.via}" if route.via else ""
    return f"route replace {route.dst}{via} dev {route.dev}"


def router_batch(router: RouterPlan, mtu: int) -> list[str]:
    """ip -batch lines inside the router: an address per rack port, then its routes (pure)."""
    lines = []
    for intf in router.interfaces:
        lines += [f"addr replace {intf.ip}/{intf.prefix} dev {intf.dev}", f"link set {intf.dev} mtu {mtu} up"]
    return lines + [route_line(r) for r in router.routes]


def _stdlib_distutils() -> None:
    """Mininet imports distutils.version (StrictVersion). In a virtualenv, setuptools' shim
    (distutils-precedence.pth) answers that import by importing all of setuptools and
    pkg_resources: 0.15 s of every `testbed run` on a quiet VM, 0.6 s on a loaded one. Python
    3.11's own distutils does the same job: import it past the shim. Without it (Python 3.12+,
    or no python3-distutils) the shim serves the import as before."""
    hack = sys.modules.get("_distutils_hack")
    finder = getattr(hack, "DISTUTILS_FINDER", None)
    if "distutils.version" in sys.modules or finder is None or finder not in sys.meta_path:
        return
    sys.meta_path.remove(finder)
    try:
        with warnings.catch_warnings():  # "distutils is deprecated": Mininet's choice, not ours
            warnings.simplefilter("ignore", DeprecationWarning)
            import distutils.version  # noqa: F401
    except ImportError:
        for name in [m for m in sys.modules if m == "distutils" or m.startswith("distutils.")]:
            del sys.modules[name]  # a half-imported stdlib distutils: let the shim start afresh
    finally:
        sys.meta_path.insert(0, finder)


def _mininet():
    """Import Mininet lazily: `testbed plan` and the unit tests must not need it."""
    _stdlib_distutils()
    from mininet import log
    from mininet.net import Mininet
    from mininet.nodelib import LinuxBridge

    log.setLogLevel(os.environ.get("TESTBED_MININET_LOG", "error"))
    # Mininet.init() would run fixLimits(), which rewrites the VM's own sysctls (ARP tables,
    # socket buffers, ...). We only need more file descriptors; raise them ourselves.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    Mininet.inited = True
    return Mininet, LinuxBridge


def skip_low_ifindexes(switch, tag: str, count: int) -> None:
    """Make the switch's ports' interface indexes differ from their peers' (>= count + 2).

    The kernel treats a carrier change as urgent only on a device whose index differs from its
    link's (for a veth, its peer's index); otherwise the event waits for the next linkwatch run,
    up to 1 s, and until then the device's queue discards every frame. A node's eth0 is index 2
    in its namespace and the first port of a fresh switch namespace would be index 2 too: that
    node lost its first second of traffic (the README's "1 s more when a fresh underlay port
    loses its first ARP"). Indexes are allocated cyclically per namespace, so creating and
    deleting veth pairs in the switch's namespace first moves its ports past every peer's index
    (a node's is 2, a router's at most its port count + 1).
    """
    pairs = count // 2 + 1
    lines = [
        f"ip link add tb{tag}x{i} type veth peer name tb{tag}y{i} && ip link del tb{tag}x{i}" for i in range(pairs)
    ]
    switch.cmd("; ".join(lines))


def mininet_name(tag: str, key: str) -> str:
    """Mininet's name for a node: tb<tag><key>, so cleanup can recognise its shell."""
    return f"tb{tag}{key}"


def settle_shell(node, timeout: float = 2.0) -> None:
    """Finish a command a signal interrupted in a node's shell, so that the node can stop.

    An interrupted `node.cmd()` (a signal while the underlay builds) leaves Mininet's
    `node.waiting` set; net.stop() then runs `cmd()` on each switch (LinuxBridge.stop) and
    Mininet's `assert not self.waiting` fails with an empty AssertionError, skipping the
    rest of the stop. Interrupt the command (Ctrl-C on the shell's terminal) and read up to
    the prompt's sentinel; a shell that does not answer in time is about to be killed anyway.
    """
    if not getattr(node, "shell", None) or not getattr(node, "waiting", False):
        return
    try:
        node.sendInt()
        deadline = time.monotonic() + timeout
        while node.waiting and time.monotonic() < deadline:
            node.monitor(timeoutms=100)
    except OSError:
        pass
    node.waiting = False


class Underlay:
    """Builds and stops the Mininet network for one Plan."""

    def __init__(self, plan: Plan, ledger: Ledger, runner: Runner) -> None:
        self.plan, self.ledger, self.runner = plan, ledger, runner
        self.net = None
        self.hosts: dict[str, Any] = {}  # plan key -> mininet Host (untyped)

    def build(self) -> None:
        Mininet, LinuxBridge = _mininet()
        tag = self.ledger.tag
        net = Mininet(topo=None, build=False, controller=None, autoSetMacs=False, waitConnected=False)
        self.net = net
        network = self.plan.network
        racks = [(s.key, s.name) for s in network.subnets] if network is not None else [("s0", "")]
        switches = {
            name: net.addSwitch(mininet_name(tag, key), cls=LinuxBridge, inNamespace=True) for key, name in racks
        }
        routers = network.routers if network is not None else ()
        for switch in switches.values():  # before any link: see skip_low_ifindexes
            skip_low_ifindexes(switch, tag, 1 + max((len(r.interfaces) for r in routers), default=0))
        members = [(n.key, n.name, n.host_ip, n.underlay_prefix) for n in self.plan.nodes]
        members += [(x.key, x.name, x.ip, x.underlay_prefix) for x in self.plan.externals]
        v6 = is_ipv6(self.plan)  # an IPv6 cluster: Mininet sets no address (emu/ipv6only.py does)
        for key, name, ip, prefix in members:
            host = net.addHost(mininet_name(tag, key), ip=None if v6 else f"{ip}/{prefix}", inNamespace=True)
            rack = network.subnet_of(name).name if network is not None else ""
            net.addLink(host, switches[rack], intfName1="eth0")
            self.hosts[key] = host
        for router in routers:
            first = router.interfaces[0]
            address = None if v6 else f"{first.ip}/{first.prefix}"  # IPv6: emu/ipv6only.py router_setup6
            host = net.addHost(mininet_name(tag, router.key), ip=address, inNamespace=True)
            for intf in router.interfaces:
                net.addLink(host, switches[intf.subnet], intfName1=intf.dev)
            self.hosts[router.key] = host
        for key, name in racks:
            self.hosts[key] = switches[name]
        self._attach()  # name the namespaces before anything else can fail
        net.build()
        net.start()
        members_only = [self.hosts[key] for key, _, _, _ in members]
        for host in members_only:
            host.cmd("ip link set mtu", self.plan.mtu, "dev eth0")
        if v6:
            address_members6(self.runner, tag, [(key, ip, prefix) for key, _, ip, prefix in members])
        self._configure_routing()
        ips = [ip for _, _, ip, _ in members] + [i.ip for r in routers for i in r.interfaces]
        own = [(key, ip) for key, _, ip, _ in members] + [(r.key, r.interfaces[0].ip) for r in routers]
        self.warm_up([(f"/run/netns/{netns_name(tag, key)}", [a for a in ips if a != ip]) for key, ip in own])

    def _configure_routing(self) -> None:
        """Routers (forwarding, rack ports, cloud routes), then the members' routes to other racks."""
        network = self.plan.network
        if network is None:
            return
        tag = self.ledger.tag
        for router in network.routers:
            if is_ipv6(self.plan):  # a single-stack IPv6 cluster's router (emu/ipv6only.py)
                router_setup6(self.runner, netns_name(tag, router.key), router, self.plan.mtu)
                continue
            write_sysctls(netns_name(tag, router.key), ROUTER_SYSCTLS)
            self.runner.ip_batch(router_batch(router, self.plan.mtu), netns=netns_name(tag, router.key))
        keys = {n.name: n.key for n in self.plan.nodes} | {x.name: x.key for x in self.plan.externals}
        per_member: dict[str, list[str]] = {}
        for route in network.underlay_routes:
            per_member.setdefault(route.node, []).append(route_line(route))
        for member, lines in per_member.items():
            self.runner.ip_batch(lines, netns=netns_name(tag, keys[member]))

    @staticmethod
    def warm_up(members: list[tuple[str, list[str]]], rounds: int = 3) -> None:
        """Resolve every underlay neighbour before declaring the cluster ready.

        Right after the switch starts, the first ARP request on a fresh port can be lost and
        costs a 1 s retransmission; a probe with a 1 s timeout would then report a false
        timeout. Each member (its namespace, the addresses it pings) sends one echo to every
        other at once, in-process (emu/warmup.py), up to `rounds` rounds until all answered.
        """
        for _ in range(rounds):
            if not echo_round(members):
                return

    def _attach(self) -> None:
        names = []
        lines = []
        for key, host in self.hosts.items():
            name = netns_name(self.ledger.tag, key)
            lines.append(f"netns attach {name} {host.pid}")
            names.append(name)
            self.ledger.add_pid(host.pid)
        self.ledger.add_netns(names)
        self.runner.ip_batch(lines)

    def stop(self) -> None:
        if self.net is None:
            return
        net, self.net = self.net, None
        for node in net.hosts + net.switches:
            settle_shell(node)
        # Every member, router and switch lives in a namespace of its own (inNamespace=True),
        # which the teardown's sweep deletes next (it is in the ledger); the links and the bridge
        # go with it. Mininet's net.stop() would first delete each link end and bridge port from
        # inside the shells: 14 shell round trips for 3 nodes, 0.1 s of every run on a quiet VM.
        for node in net.hosts + net.switches:
            node.terminate()

    def keys(self) -> Iterable[str]:
        return self.hosts.keys()
