"""Plain Mininet, for the ratio the scale issue asks for: N hosts on Linux bridges in namespaces.

The same Mininet calls as emu/underlay.py (LinuxBridge switches with inNamespace=True, hosts
in namespaces, no controller, no NAT), without anything Kubernetes: hosts are spread over
`switches` leaf bridges (a Linux bridge takes at most 1,024 ports) joined by one core bridge.
The run has a ledger and tb<tag> names like a cluster, so `testbed clean --stale` removes
what a crashed benchmark left behind.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from typing import Any

from ..emu.ledger import Ledger
from ..emu.underlay import _mininet, mininet_name


@dataclass(frozen=True)
class MininetFigures:
    hosts: int
    build_s: float  # addHost/addLink/build/start
    stop_s: float  # net.stop()

    @property
    def hosts_per_s(self) -> float:
        return self.hosts / max(self.build_s, 1e-9)


def plain_mininet(hosts: int, switches: int = 10) -> MininetFigures:
    """Build `hosts` plain Mininet hosts, then stop them; returns the timings."""
    Mininet, LinuxBridge = _mininet()
    ledger = Ledger.create()
    net: Any = None  # a Mininet (untyped)
    try:
        start = time.perf_counter()
        net = Mininet(topo=None, build=False, controller=None, autoSetMacs=False, waitConnected=False)
        core = net.addSwitch(mininet_name(ledger.tag, "c0"), cls=LinuxBridge, inNamespace=True)
        leaves = [
            net.addSwitch(mininet_name(ledger.tag, f"s{i}"), cls=LinuxBridge, inNamespace=True)
            for i in range(max(1, switches))
        ]
        for leaf in leaves:
            net.addLink(leaf, core)
        subnet = ipaddress.ip_network("10.0.0.0/16")
        for i in range(hosts):
            host = net.addHost(mininet_name(ledger.tag, f"h{i}"), ip=f"{subnet[i + 1]}/16", inNamespace=True)
            net.addLink(host, leaves[i % len(leaves)], intfName1="eth0")
        for node in net.hosts + net.switches:
            ledger.pids.append(node.pid)
        ledger.save()
        net.build()
        net.start()
        built = time.perf_counter() - start
        start = time.perf_counter()
        net, stopping = None, net
        stopping.stop()
        return MininetFigures(hosts, built, time.perf_counter() - start)
    finally:
        if net is not None:
            net.stop()
        ledger.remove()
