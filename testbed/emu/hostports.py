"""hostPorts on every node: the portmap CNI plugin's rules, loaded per node (emu/).

The tables come from the pure core (Plan.hostport_tables, rules/portmap.py) in the node's
backend (iptables-restore --noflush, or `nft -f` recreating table ip cni_hostport). A node is
touched only when its table changed; the iptables backend's jumps from PREROUTING, OUTPUT and
POSTROUTING are added once, the first time a node gets hostPorts, and stay (as the plugin
leaves its top-level chains). A node whose last hostPort pod left keeps empty chains.
"""

from __future__ import annotations

from ..plan.model import Plan
from ..rules import portmap
from ..rules.model import Table
from .daemon import Daemon
from .ledger import Ledger, netns_name
from .rules import iptables_restore, nft_load
from .runner import Runner


class HostPorts:
    phase = "controllers"

    def __init__(self, runner: Runner, ledger: Ledger) -> None:
        self.runner, self.ledger = runner, ledger
        self.loaded: dict[str, Table] = {}  # node -> the table it holds

    def sync(self, desired: Plan) -> None:
        tables = desired.hostport_tables
        for node in desired.nodes:
            had = self.loaded.get(node.name)
            want = tables.get(node.name)
            if want is None:
                if had is None:
                    continue
                want = portmap.node_table((), desired.kube_proxy_mode)  # its last hostPort pod left
            if want == had:
                continue
            netns = netns_name(self.ledger.tag, node.key)
            text = portmap.render(want, had)
            if want.kind == "iptables":
                iptables_restore(self.runner, netns, text)
                if had is None:
                    iptables_restore(self.runner, netns, portmap.render_bootstrap(want))
            else:
                nft_load(self.runner, netns, text)
            self.loaded[node.name] = want

    def daemons(self) -> list[Daemon]:
        return []

    def stop(self) -> None:
        self.loaded.clear()  # the rules go with the node namespaces
