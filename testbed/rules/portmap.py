"""The portmap CNI plugin's hostPort rules, compiled into the rule model (pure).

What containernetworking/plugins' `portmap` does on a node for each pod with hostPorts
(plugins/meta/portmap), in its two backends; the testbed picks the backend of the node's
kube-proxy mode (iptables -> iptables, nftables or none -> nftables):

- iptables (nat table): PREROUTING and OUTPUT jump to CNI-HOSTPORT-DNAT for local destinations
  (`-m addrtype --dst-type LOCAL`); there, one rule per port sends the pod's ports to its chain
  CNI-DN-<hash>, which marks hairpin traffic (source in the pod's network, i.e. a pod of the same
  node) and localhost traffic for masquerade (CNI-HOSTPORT-SETMARK, mark 0x2000) and DNATs
  `[hostIP:]hostPort` to `podIP:containerPort`; POSTROUTING masquerades the marked packets
  (CNI-HOSTPORT-MASQ). The plugin groups a pod's ports with `-m multiport`; here each port has
  its own rule (the same match, one port at a time).
- nftables (table ip cni_hostport): prerouting and output jump, for local destinations only
  (`fib daddr type local`, as since containernetworking/plugins#1210), to hostports_all, which
  jumps to hostip_hostports (mappings with a hostIP) and hostports; masquerading (postrouting)
  masquerades only true hairpin (pod to itself) and localhost traffic.

Everything else keeps its source address: a client outside the node (the laptop, a pod on
another node) is seen by the pod with its own address, as in a real cluster.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence

from ..plan.pod import PodPlan
from .model import (
    Addr,
    AddrType,
    Chain,
    Comment,
    Dnat,
    DPort,
    Jump,
    MarkMatch,
    Masquerade,
    Part,
    Proto,
    Rule,
    SetMark,
    Table,
)
from .render_iptables import iptables_rule, render_restore
from .render_nft import render_commands

NETWORK_NAME = "kindnet"  # the CNI network name in the rule comments (kind's CNI)
MASQ_MARK = 0x2000  # markMasqBit 13, the plugin's default
DNAT_CHAIN = "CNI-HOSTPORT-DNAT"
SETMARK_CHAIN = "CNI-HOSTPORT-SETMARK"
MASQ_CHAIN = "CNI-HOSTPORT-MASQ"
NFT_TABLE = "cni_hostport"


def container_id(pod: PodPlan) -> str:
    """The pod sandbox's container ID (64 hex digits, as containerd's), stable per pod uid."""
    return hashlib.sha256(f"sandbox/{pod.uid}".encode()).hexdigest()


def dn_chain(pod: PodPlan) -> str:
    """utils.FormatChainName: CNI-DN- + sha512(network name + container ID), cut to 28 characters."""
    digest = hashlib.sha512((NETWORK_NAME + container_id(pod)).encode()).hexdigest()
    return f"CNI-DN-{digest}"[:28]


def mapped_pods(pods: Sequence[PodPlan]) -> list[PodPlan]:
    """Pods whose hostPorts the plugin forwards (a hostNetwork pod binds its ports itself)."""
    return [p for p in pods if p.host_ports and not p.host_network]


def iptables_table(pods: Sequence[PodPlan]) -> Table:
    """The nat table's portmap chains for these pods (one node's)."""
    entries: list[Rule] = []
    chains: list[Chain] = []
    # The plugin prepends each new pod's entry rules: the most recent pod comes first.
    for pod in reversed(mapped_pods(pods)):
        comment = Comment(f'dnat name: "{NETWORK_NAME}" id: "{container_id(pod)}"')
        chain = dn_chain(pod)
        rules: list[Rule] = []
        network = str(ipaddress.ip_network(f"{pod.ip}/{pod.prefix}", strict=False))
        for hp in pod.host_ports:
            proto = Proto(hp.protocol.lower())
            entries.append(Rule((proto, comment, DPort.of(hp.host_port)), Jump(chain)))
            base: tuple[Part, ...] = (proto, DPort.of(hp.host_port))
            if hp.host_ip and hp.host_ip != "0.0.0.0":
                base += (Addr("daddr", (f"{hp.host_ip}/32",)),)
            rules += [
                Rule((*base, Addr("saddr", (network,))), Jump(SETMARK_CHAIN)),  # hairpin
                Rule((*base, Addr("saddr", ("127.0.0.1/32",))), Jump(SETMARK_CHAIN)),  # localhost
                Rule(base, Dnat(pod.ip, hp.container_port)),
            ]
        chains.append(Chain(chain, tuple(rules)))
    local = (AddrType("daddr"),)
    return Table(
        "nat",
        (
            Chain("PREROUTING", (Rule(local, Jump(DNAT_CHAIN)),), hook="prerouting", type="nat", priority=-100),
            Chain("OUTPUT", (Rule(local, Jump(DNAT_CHAIN)),), hook="output", type="nat", priority=-100),
            Chain(
                "POSTROUTING",
                (Rule((Comment("CNI portfwd requiring masquerade"),), Jump(MASQ_CHAIN)),),
                hook="postrouting",
                type="nat",
                priority=100,
            ),
            Chain(DNAT_CHAIN, tuple(entries)),
            Chain(SETMARK_CHAIN, (Rule((Comment("CNI portfwd masquerade mark"),), SetMark("or", MASQ_MARK)),)),
            Chain(MASQ_CHAIN, (Rule((MarkMatch(MASQ_MARK, MASQ_MARK),), Masquerade(fully_random=False)),)),
            *chains,
        ),
        kind="iptables",
    )


def nft_table(pods: Sequence[PodPlan]) -> Table:
    """table ip cni_hostport for these pods (one node's), as the nftables backend builds it."""
    hostip: list[Rule] = []
    hostports: list[Rule] = []
    masq: list[Rule] = []
    for pod in mapped_pods(pods):
        comment = Comment(container_id(pod))
        for hp in pod.host_ports:
            match = (Proto(hp.protocol.lower()), DPort.of(hp.host_port))
            if hp.host_ip and hp.host_ip != "0.0.0.0":
                hostip.append(Rule((Addr("daddr", (hp.host_ip,)), *match, comment), Dnat(pod.ip, hp.container_port)))
            else:
                hostports.append(Rule((*match, comment), Dnat(pod.ip, hp.container_port)))
        masq += [
            Rule((Addr("saddr", (pod.ip,)), Addr("daddr", (pod.ip,)), comment), Masquerade(fully_random=False)),
            Rule((Addr("saddr", ("127.0.0.1",)), Addr("daddr", (pod.ip,)), comment), Masquerade(fully_random=False)),
        ]
    local = (AddrType("daddr"),)
    return Table(
        NFT_TABLE,
        (
            Chain("hostports", tuple(hostports)),
            Chain("hostip_hostports", tuple(hostip)),
            Chain("hostports_all", (Rule((), Jump("hostip_hostports")), Rule((), Jump("hostports")))),
            Chain("prerouting", (Rule(local, Jump("hostports_all")),), hook="prerouting", type="nat", priority=-100),
            Chain("output", (Rule(local, Jump("hostports_all")),), hook="output", type="nat", priority=-100),
            Chain("masquerading", tuple(masq), hook="postrouting", type="nat", priority=100),
        ),
        family="ip",
        comment="CNI portmap plugin",
    )


def backend(kube_proxy_mode: str) -> str:
    """The portmap backend of a node: its kube-proxy's tool (nftables when kube-proxy is off)."""
    return "iptables" if kube_proxy_mode == "iptables" else "nftables"


def node_table(pods: Sequence[PodPlan], kube_proxy_mode: str) -> Table:
    """One node's portmap table in its backend."""
    return iptables_table(pods) if backend(kube_proxy_mode) == "iptables" else nft_table(pods)


# -- text ------------------------------------------------------------------------------------------


def render(table: Table, previous: Table | None = None) -> str:
    """The text that loads `table`: `iptables-restore --noflush` input (the user chains, with the
    CNI-DN chains of `previous` that are gone flushed and deleted) or `nft -f` input (the table
    recreated in one transaction: add, delete, add)."""
    if table.kind == "iptables":
        now = {c.name for c in table.chains}
        gone = [c.name for c in (previous.chains if previous else ()) if c.name not in now]
        return render_restore((table,), "# portmap (iptables backend): iptables-restore --noflush", {"nat": gone})
    # knftables' command style, as the plugin writes it (numeric priorities: nft takes no
    # `dstnat` on the output hook)
    return render_commands((table,), "# portmap (nftables backend): nft -f")


def render_bootstrap(table: Table) -> str:
    """The jumps from the built-in chains, once per node (iptables backend): appended to
    PREROUTING and OUTPUT (after kube-proxy's), inserted first in POSTROUTING, as the plugin does."""
    lines = ["*nat"]
    for chain in table.chains:
        if chain.base:
            for rule in chain.rules:
                if chain.name == "POSTROUTING":
                    lines.append(iptables_rule(f"{chain.name} 1", rule, op="-I"))
                else:
                    lines.append(iptables_rule(chain.name, rule))
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"
