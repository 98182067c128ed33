"""hostPorts on every node: the portmap CNI plugin's rules, loaded per node (emu/).

The tables come from the pure core (Plan.hostport_tables, rules/portmap.py) in the node's
backend (iptables-restore --noflush, or `nft -f` recreating table ip cni_hostport). A node is
touched only when its table changed; the iptables backend's jumps from PREROUTING, OUTPUT and
POSTROUTING are added once, the first time a node gets hostPorts, and stay (as the plugin
leaves its top-level chains). A node whose last hostPort pod left keeps empty chains.
IPv6 (issue 15): an IPv6 table (family ip6: a single-stack IPv6 node's, or a dual-stack node's
second table, plan/hostports6.py) goes through ip6tables-restore or `nft -f` as table ip6
cni_hostport, beside the IPv4 one.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..plan.hostports6 import hostport_tables6
from ..plan.model import Plan
from ..rules import portmap
from ..rules.model import Table
from .daemon import Daemon
from .ledger import Ledger, netns_name
from .rules import ip6tables_restore, iptables_restore, nft_load
from .runner import Runner


class HostPorts:
    phase = "controllers"

    def __init__(self, runner: Runner, ledger: Ledger) -> None:
        self.runner, self.ledger = runner, ledger
        self.loaded: dict[str, Table] = {}  # node -> the table it holds
        self.loaded6: dict[str, Table] = {}  # dual-stack: node -> its IPv6 table

    def sync(self, desired: Plan) -> None:
        self._sync(desired, desired.hostport_tables, self.loaded)
        self._sync(desired, hostport_tables6(desired), self.loaded6)

    def _sync(self, desired: Plan, tables: Mapping[str, Table], loaded: dict[str, Table]) -> None:
        for node in desired.nodes:
            had = loaded.get(node.name)
            want = tables.get(node.name)
            if want is None:
                if had is None:
                    continue
                # its last hostPort pod left
                want = portmap.node_table((), desired.kube_proxy_mode, ipv6=had.family == "ip6")
            if want == had:
                continue
            netns = netns_name(self.ledger.tag, node.key)
            text = portmap.render(want, had)
            if want.kind == "iptables":
                restore = ip6tables_restore if want.family == "ip6" else iptables_restore
                restore(self.runner, netns, text)
                if had is None:
                    restore(self.runner, netns, portmap.render_bootstrap(want))
            else:
                nft_load(self.runner, netns, text)
            loaded[node.name] = want

    def daemons(self) -> list[Daemon]:
        return []

    def stop(self) -> None:
        self.loaded.clear()  # the rules go with the node namespaces
        self.loaded6.clear()
