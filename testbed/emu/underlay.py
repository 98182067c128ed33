"""The Mininet part of the emulation: nodes and external hosts on the underlay switch.

Part of emu/ (the shell). Each Kubernetes node is a Mininet Host with its HOST-IP on eth0
(seed 001); seed 002's laptop is another Host. The underlay switch is a Linux bridge
(this kernel has no openvswitch module) that runs in a network namespace of its own, so
nothing — not even a bridge — is added to the VM's root namespace, and no link ever joins
the VM's real uplink (no Mininet NAT node). Every namespace is then given a name under
/run/netns (`ip netns attach`) so the rest of emu/ addresses nodes like pods.
"""

from __future__ import annotations

import os
import resource
from typing import Iterable

from ..plan.model import Plan
from .ledger import Ledger, netns_name
from .runner import Runner


def _mininet():
    """Import Mininet lazily: `testbed plan` and the unit tests must not need it."""
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


def mininet_name(tag: str, key: str) -> str:
    """Mininet's name for a node: tb<tag><key>, so cleanup can recognise its shell."""
    return f"tb{tag}{key}"


class Underlay:
    """Builds and stops the Mininet network for one Plan."""

    def __init__(self, plan: Plan, ledger: Ledger, runner: Runner) -> None:
        self.plan, self.ledger, self.runner = plan, ledger, runner
        self.net = None
        self.hosts: dict[str, object] = {}   # plan key -> mininet Host

    def build(self) -> None:
        Mininet, LinuxBridge = _mininet()
        tag = self.ledger.tag
        net = Mininet(topo=None, build=False, controller=None, autoSetMacs=False, waitConnected=False)
        self.net = net
        switch = net.addSwitch(mininet_name(tag, "s0"), cls=LinuxBridge, inNamespace=True)
        members = [(n.key, n.host_ip, n.underlay_prefix) for n in self.plan.nodes]
        members += [(x.key, x.ip, x.underlay_prefix) for x in self.plan.externals]
        for key, ip, prefix in members:
            host = net.addHost(mininet_name(tag, key), ip=f"{ip}/{prefix}", inNamespace=True)
            net.addLink(host, switch, intfName1="eth0")
            self.hosts[key] = host
        self.hosts["s0"] = switch
        self._attach()  # name the namespaces before anything else can fail
        net.build()
        net.start()
        members_only = [h for k, h in self.hosts.items() if k != "s0"]
        for host in members_only:
            host.cmd("ip link set mtu", self.plan.mtu, "dev eth0")
        self.warm_up(members_only, [ip for _, ip, _ in members])

    @staticmethod
    def warm_up(hosts: list, ips: list[str], rounds: int = 3) -> None:
        """Resolve every underlay neighbour before declaring the cluster ready.

        Right after the switch starts, the first ARP request on a fresh port can be lost and
        costs a 1 s retransmission; a probe with a 1 s timeout would then report a false
        timeout. Each member pings all others at once (in its own shell, concurrently).
        """
        for _ in range(rounds):
            for host in hosts:
                targets = " ".join(ip for ip in ips if ip != host.IP())
                host.sendCmd(f"ok=0; for ip in {targets}; do ping -n -q -c1 -W1 $ip >/dev/null "
                             f"2>&1 & done; for j in $(jobs -p); do wait $j || ok=1; done; echo $ok")
            failed = [h for h in hosts if h.waitOutput().strip().endswith("1")]
            if not failed:
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
        net.stop()

    def keys(self) -> Iterable[str]:
        return self.hosts.keys()
