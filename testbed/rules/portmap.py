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

IPv6 (issue 15): the plugin runs once per pod address, so a pod's IPv6 address gets the same
rules in the IPv6 tool (ip6tables' nat table, or `table ip6 cni_hostport`) with three
differences the plugin makes: no localhost rule (IPv6 has no route_localnet: ::1 cannot be
DNATed off the host), the DNAT target `[addr]:port`, and a hostIP of the other family is
skipped (that mapping exists in its own family's table only). `twins` (pod key -> its IPv6
address and prefix) builds a dual-stack node's IPv6 table; a single-stack IPv6 plan's pods
have IPv6 addresses already.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping, Sequence

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


def _address(pod: PodPlan, twins: Mapping[str, tuple[str, int]] | None) -> tuple[str, int] | None:
    """The pod address (and prefix) these rules forward to: its own, or its IPv6 twin."""
    if twins is None:
        return pod.ip, pod.prefix
    return twins.get(pod.key)


def _host_ip(host_ip: str, ipv6: bool) -> str | None:
    """A mapping's hostIP in a table of this family: "" (any local address), the address, or
    None when it is of the other family (the plugin skips it: that mapping is the other table's)."""
    if not host_ip:
        return ""
    if (":" in host_ip) != ipv6:
        return None
    return "" if ipaddress.ip_address(host_ip).is_unspecified else host_ip


def iptables_table(
    pods: Sequence[PodPlan], twins: Mapping[str, tuple[str, int]] | None = None, ipv6: bool = False
) -> Table:
    """The nat table's portmap chains for these pods (one node's); `ipv6`: ip6tables' (a
    single-stack IPv6 node, or with `twins` a dual-stack node's IPv6 addresses)."""
    entries: list[Rule] = []
    chains: list[Chain] = []
    ipv6 = ipv6 or twins is not None
    # The plugin prepends each new pod's entry rules: the most recent pod comes first.
    for pod in reversed(mapped_pods(pods)):
        target = _address(pod, twins)
        if target is None:
            continue
        ip, prefix = target
        comment = Comment(f'dnat name: "{NETWORK_NAME}" id: "{container_id(pod)}"')
        chain = dn_chain(pod)
        rules: list[Rule] = []
        network = str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
        for hp in pod.host_ports:
            proto = Proto(hp.protocol.lower())
            host_ip = _host_ip(hp.host_ip, ipv6)
            entries.append(Rule((proto, comment, DPort.of(hp.host_port)), Jump(chain)))
            if host_ip is None:
                continue
            base: tuple[Part, ...] = (proto, DPort.of(hp.host_port))
            if host_ip:
                base += (Addr("daddr", (f"{host_ip}/{128 if ipv6 else 32}",)),)
            rules.append(Rule((*base, Addr("saddr", (network,))), Jump(SETMARK_CHAIN)))  # hairpin
            if not ipv6:
                rules.append(Rule((*base, Addr("saddr", ("127.0.0.1/32",))), Jump(SETMARK_CHAIN)))  # localhost
            rules.append(Rule(base, Dnat(ip, hp.container_port)))
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
        family="ip6" if ipv6 else "ip",  # the tool that loads it: ip6tables-restore for ip6
    )


def nft_table(pods: Sequence[PodPlan], twins: Mapping[str, tuple[str, int]] | None = None, ipv6: bool = False) -> Table:
    """table ip cni_hostport for these pods (one node's), as the nftables backend builds it;
    `ipv6`: table ip6 cni_hostport (a single-stack IPv6 node, or with `twins` a dual-stack one's)."""
    hostip: list[Rule] = []
    hostports: list[Rule] = []
    masq: list[Rule] = []
    ipv6 = ipv6 or twins is not None
    for pod in mapped_pods(pods):
        target = _address(pod, twins)
        if target is None:
            continue
        ip = target[0]
        comment = Comment(container_id(pod))
        for hp in pod.host_ports:
            match = (Proto(hp.protocol.lower()), DPort.of(hp.host_port))
            host_ip = _host_ip(hp.host_ip, ipv6)
            if host_ip:
                hostip.append(Rule((Addr("daddr", (host_ip,)), *match, comment), Dnat(ip, hp.container_port)))
            elif host_ip is not None:
                hostports.append(Rule((*match, comment), Dnat(ip, hp.container_port)))
        masq.append(Rule((Addr("saddr", (ip,)), Addr("daddr", (ip,)), comment), Masquerade(fully_random=False)))
        if not ipv6:  # localhost: IPv4 only
            masq.append(
                Rule((Addr("saddr", ("127.0.0.1",)), Addr("daddr", (ip,)), comment), Masquerade(fully_random=False))
            )
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
        family="ip6" if ipv6 else "ip",
        comment="CNI portmap plugin",
    )


def backend(kube_proxy_mode: str) -> str:
    """The portmap backend of a node: its kube-proxy's tool (nftables when kube-proxy is off)."""
    return "iptables" if kube_proxy_mode == "iptables" else "nftables"


def node_table(
    pods: Sequence[PodPlan],
    kube_proxy_mode: str,
    twins: Mapping[str, tuple[str, int]] | None = None,
    ipv6: bool = False,
) -> Table:
    """One node's portmap table in its backend; `ipv6`: its IPv6 table (`twins`: a dual-stack
    node's IPv6 pod addresses)."""
    build = iptables_table if backend(kube_proxy_mode) == "iptables" else nft_table
    return build(pods, twins, ipv6)


# -- text ------------------------------------------------------------------------------------------


def render(table: Table, previous: Table | None = None) -> str:
    """The text that loads `table`: `iptables-restore --noflush` input (the user chains, with the
    CNI-DN chains of `previous` that are gone flushed and deleted) or `nft -f` input (the table
    recreated in one transaction: add, delete, add)."""
    if table.kind == "iptables":
        now = {c.name for c in table.chains}
        gone = [c.name for c in (previous.chains if previous else ()) if c.name not in now]
        tool = "ip6tables-restore" if table.family == "ip6" else "iptables-restore"  # IPv6: issue 15
        return render_restore((table,), f"# portmap (iptables backend): {tool} --noflush", {"nat": gone})
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
