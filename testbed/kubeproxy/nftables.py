"""kube-proxy's nftables mode (pkg/proxy/nftables/proxier.go), as a Ruleset.

One table per family, as upstream runs one proxier per family: `ip kube-proxy` for IPv4 and, in
a dual-stack cluster, `ip6 kube-proxy` for IPv6 (the IPv6 proxier's ServicesPlan: its
serviceCIDR says which). Both are laid out alike, as upstream (v1.33+); the ip6 one has
ipv6_addr keys, `ip6 daddr`/`ip6 saddr` matches, `dnat to [address]:port`, `ip6 daddr != ::1`
where IPv4 excludes 127.0.0.0/8, and rejects with ICMPv6 port unreachable (nft's `reject` in
an ip6 table; upstream has no other ICMPv6 rule):
- base chains filter-prerouting-pre-dnat / filter-output-pre-dnat (priority -110: firewall-check
  on pre-DNAT addresses), filter-input / filter-forward / filter-output (priority 0:
  nodeport-endpoints-check, service-endpoints-check, cluster-ips-check), nat-prerouting /
  nat-output (-100: services) and nat-postrouting (100: masquerading);
- dispatch by verdict maps: `services` looks `ip daddr . meta l4proto . th dport` up in
  @service-ips (ClusterIPs to service-<hash>-ns/name/proto/port, external and load-balancer IPs
  to external-...), then, for destinations in @nodeport-ips (this node's HOST-IP),
  `meta l4proto . th dport` in @service-nodeports;
- service chains: masquerade off-cluster sources, affinity lookups `ip saddr @affinity-...`,
  then `numgen random mod N vmap { 0 : goto endpoint-... , ... }`; endpoint chains mark
  hairpin traffic (source = the endpoint) and `dnat to ip:port`;
- services without endpoints: @no-endpoint-services / @no-endpoint-nodeports send them to
  reject-chain (or drop when only Local endpoints are missing); cluster-ips-check rejects
  unknown ports of a ClusterIP and drops unallocated addresses of serviceSubnet;
- mark-for-masquerade sets 0x4000, masquerading masquerades (fully-random) what carries it.
A full sync deletes and recreates the table in one transaction (render.py), atomic and
idempotent; a partial one (partial.py) rewrites only what changed, also in one transaction.
"""

from __future__ import annotations

import ipaddress
from typing import Any, cast

from ..plan.service_model import ResolvedEndpoint, ServicesPlan
from ..rules.model import (
    Addr,
    AddrType,
    Chain,
    Comment,
    CtState,
    Dnat,
    Drop,
    Goto,
    InSet,
    Jump,
    Log,
    MapElement,
    MarkMatch,
    Masquerade,
    NftMap,
    NftSet,
    NumgenVmap,
    Proto,
    RecentCheck,
    RecentSet,
    Reject,
    Return,
    Rule,
    Ruleset,
    SetMark,
    Table,
    Verdict,
    Vmap,
)
from ..spec.kube_proxy_config import KubeProxyConfig
from .common import (
    LOOPBACK,
    MASQ_MARK,
    LocalTraffic,
    ProxiedPort,
    ipv6,
    local_traffic,
    nft_chain_base,
    nft_endpoint_chain_base,
    service_ports,
)
from .fragments import Call, ChainLists, Fragments, Recorder, fold_owned, prebuilt, replay

TABLE = "kube-proxy"
_KEY3 = ("daddr", "l4proto", "dport")
_KEY2 = ("l4proto", "dport")
_IP_KEY_TYPE = "{addr} . inet_proto . inet_service : verdict"
_PORT_KEY_TYPE = "inet_proto . inet_service : verdict"
_BASE = (  # name, type, hook, priority
    ("filter-prerouting-pre-dnat", "filter", "prerouting", -110),
    ("filter-output-pre-dnat", "filter", "output", -110),
    ("filter-input", "filter", "input", 0),
    ("filter-forward", "filter", "forward", 0),
    ("filter-output", "filter", "output", 0),
    ("nat-prerouting", "nat", "prerouting", -100),
    ("nat-output", "nat", "output", -100),
    ("nat-postrouting", "nat", "postrouting", 100),
)
_NEW = CtState(("NEW",))


class _Table(ChainLists):
    def __init__(self, family: str = "ip") -> None:
        self.family = family  # ip | ip6
        self.chains: dict[str, list[Rule]] = {}
        super().__init__(self.chains)
        self.meta: dict[str, tuple[Any, ...]] = {}
        self.sets: dict[str, NftSet] = {}
        self.set_elements: dict[str, list[str]] = {}
        self.maps: dict[str, NftMap] = {}
        self.map_elements: dict[str, list[MapElement]] = {}
        self.map_keys: dict[str, set[tuple[str, ...]]] = {}

    def chain(self, name: str, hook: tuple[Any, ...] = (None, None, None), comment: str = "") -> None:
        if name not in self.chains:
            self.chains[name] = []
            self.meta[name] = (*hook, comment)

    def _declare_placed(self, chain: Chain) -> None:
        self.chain(chain.name, comment=chain.comment)

    def add_set(self, s: NftSet) -> None:
        self.sets[s.name] = s
        self.set_elements.setdefault(s.name, [])

    def add_map(self, m: NftMap) -> None:
        self.maps[m.name] = m
        self.map_elements.setdefault(m.name, [])

    def element(self, container: str, key: tuple[str, ...], verdict: Verdict | None = None, comment: str = "") -> None:
        if verdict is None:
            if key[0] not in self.set_elements[container]:  # a multi-port Service's ClusterIP once
                self.set_elements[container].append(key[0])
        elif key not in self.map_keys.setdefault(container, set()):  # the first element of a key stays
            self.map_keys[container].add(key)
            self.map_elements[container].append(MapElement(key, verdict, comment))

    def build(self) -> Table:
        chains = tuple(
            self.placed[name]
            if name in self.placed
            else Chain(
                name,
                tuple(rules),
                hook=self.meta[name][1],
                type=self.meta[name][0],
                priority=self.meta[name][2],
                comment=self.meta[name][3],
            )
            for name, rules in self.chains.items()
        )
        sets = tuple(
            NftSet(s.name, s.type, tuple(self.set_elements[s.name]), s.flags, s.timeout, s.comment)
            for s in self.sets.values()
        )
        maps = tuple(NftMap(m.name, m.type, m.comment, tuple(self.map_elements[m.name])) for m in self.maps.values())
        return Table(TABLE, chains, self.family, sets, maps, comment="rules for kube-proxy")


def build_nftables(
    plan: ServicesPlan,
    node: str,
    host_ip: str,
    pod_subnet: str,
    config: KubeProxyConfig | None = None,
    node_pod_cidr: str = "",
) -> Ruleset:
    """The nftables-mode rules of one node (NodePorts on its HOST-IP: nodePortAddresses = primary,
    unless the topology's KubeProxyConfiguration says otherwise), in the table of the plan's
    family: `ip6 kube-proxy` for an IPv6 ServicesPlan (host_ip and pod_subnet then IPv6 too)."""
    local = local_traffic(config, pod_subnet, node_pod_cidr)
    node_ips = config.node_port_ips(host_ip, "nftables") if config is not None else (host_ip,)
    six = ipv6(plan.service_subnet)
    addr = "ipv6_addr" if six else "ipv4_addr"
    ip_key = _IP_KEY_TYPE.format(addr=addr)
    # MatchAll: `fib daddr type local` but never the loopback (no localhost NodePorts here).
    node_port_match: tuple[Any, ...] = (
        (AddrType("daddr"), Addr("daddr", ("::1" if six else LOOPBACK,), negate=True))
        if node_ips is None
        else (InSet("daddr", "nodeport-ips"),)
    )
    t = _Table("ip6" if six else "ip")
    t.add_set(NftSet("cluster-ips", addr, comment="Active ClusterIPs"))
    t.add_set(NftSet("nodeport-ips", addr, comment="IPs that accept NodePort traffic"))
    t.add_map(NftMap("firewall-ips", ip_key, "destinations that are subject to LoadBalancerSourceRanges"))
    t.add_map(
        NftMap(
            "no-endpoint-nodeports",
            _PORT_KEY_TYPE,
            "vmap to drop or reject packets to service nodeports with no endpoints",
        )
    )
    t.add_map(NftMap("no-endpoint-services", ip_key, "vmap to drop or reject packets to services with no endpoints"))
    t.add_map(NftMap("service-ips", ip_key, "ClusterIP, ExternalIP and LoadBalancer IP traffic"))
    t.add_map(NftMap("service-nodeports", _PORT_KEY_TYPE, "NodePort traffic"))
    for name, typ, hook, prio in _BASE:
        t.chain(name, (typ, hook, prio))
    for name in (
        "cluster-ips-check",
        "firewall-check",
        "mark-for-masquerade",
        "masquerading",
        "nodeport-endpoints-check",
    ):
        t.chain(name)
    t.chain("reject-chain", comment="helper for @no-endpoint-services / @no-endpoint-nodeports")
    t.chain("services")
    t.chain("service-endpoints-check")

    t.add(
        "cluster-ips-check",
        [InSet("daddr", "cluster-ips"), Log(), Comment("Reject traffic to invalid ports of ClusterIPs")],
        Reject(),
    )
    t.add(
        "cluster-ips-check",
        [
            Addr("daddr", (plan.service_subnet,), literal_set=True),
            Log(),
            Comment("Drop traffic to unallocated ClusterIPs"),
        ],
        Drop(),
    )
    t.add("filter-prerouting-pre-dnat", [_NEW], Jump("firewall-check"))
    t.add("filter-forward", [_NEW], Jump("service-endpoints-check"))
    t.add("filter-forward", [_NEW], Jump("cluster-ips-check"))
    t.add("filter-input", [_NEW], Jump("nodeport-endpoints-check"))
    t.add("filter-input", [_NEW], Jump("service-endpoints-check"))
    t.add("filter-output", [_NEW], Jump("service-endpoints-check"))
    t.add("filter-output-pre-dnat", [_NEW], Jump("firewall-check"))
    t.add("filter-output", [_NEW], Jump("cluster-ips-check"))
    t.add("firewall-check", [], Vmap(_KEY3, "firewall-ips"))
    t.add("mark-for-masquerade", [], SetMark("or", MASQ_MARK))
    t.add("masquerading", [MarkMatch(MASQ_MARK, 0)], Return())
    t.add("masquerading", [], SetMark("xor", MASQ_MARK))
    t.add("masquerading", [], Masquerade())
    t.add("nat-output", [], Jump("services"))
    t.add("nat-postrouting", [], Jump("masquerading"))
    t.add("nat-prerouting", [], Jump("services"))
    t.add("nodeport-endpoints-check", [*node_port_match], Vmap(_KEY2, "no-endpoint-nodeports"))
    t.add("reject-chain", [Log()], Reject())
    t.add("services", [], Vmap(_KEY3, "service-ips"))
    t.add("services", [*node_port_match], Vmap(_KEY2, "service-nodeports"))
    t.add("service-endpoints-check", [], Vmap(_KEY3, "no-endpoint-services"))
    for ip in node_ips or ():
        if not ipaddress.ip_address(ip).is_loopback:  # upstream skips the loopback: no localhost NodePorts
            t.element("nodeport-ips", (ip,))

    for sp in service_ports(plan, node):
        replay(_fragments(sp, host_ip, local), t)
    return Ruleset(node, (t.build(),), "nftables", host_ip, pod_subnet, plan.service_subnet)


def _fragment(sp: ProxiedPort, host_ip: str, local: LocalTraffic) -> tuple[Call, ...]:
    """A Service port's calls on the table (fragments.py caches them)."""
    t = Recorder()
    _service_port(cast(_Table, t), sp, host_ip, local)
    return fold_owned(prebuilt(t.calls), "chain", _user_chain)


def _user_chain(declared: Call, rules: tuple[Rule, ...]) -> Chain | None:
    """A chain of the Service port's own (service-, endpoint-...), as build() would make it;
    None for a base chain (a fragment declares none today)."""
    _, args, kwargs = declared
    if len(args) != 1 or kwargs:
        return None
    return Chain(args[0], rules, hook=None, type=None, priority=None, comment="")


_fragments = Fragments(_fragment)


def _endpoint_chain(sp: ProxiedPort, ep: ResolvedEndpoint) -> str:
    s = sp.service
    return "endpoint-" + nft_endpoint_chain_base(s.namespace, s.name, sp.protocol, sp.port.name, str(ep))


def _affinity_set(sp: ProxiedPort, ep: ResolvedEndpoint) -> str:
    s = sp.service
    return "affinity-" + nft_endpoint_chain_base(s.namespace, s.name, sp.protocol, sp.port.name, str(ep))


def _service_port(t: _Table, sp: ProxiedPort, host_ip: str, local: LocalTraffic) -> None:
    svc, proto, ns = sp.service, sp.protocol, sp.name_string
    base = nft_chain_base(svc.namespace, svc.name, proto, sp.port.name)
    cluster_chain, local_chain = "service-" + base, "local-" + base
    ext_chain, fw_chain = "external-" + base, "firewall-" + base
    has_any, has_int, has_ext = sp.has_endpoints, sp.has_internal_endpoints, sp.has_external_endpoints
    uses_cluster = bool(sp.cluster_endpoints)
    uses_local = bool(sp.local_endpoints) and sp.uses_local_endpoints
    internal_chain = local_chain if sp.internal_local else cluster_chain
    external_policy_chain = local_chain if sp.external_local else cluster_chain
    uses_ext = has_any and sp.externally_accessible
    uses_fw = bool(sp.lb_ips) and bool(svc.load_balancer_source_ranges)
    # No usable endpoint: reject when the Service has none at all, drop when only a Local
    # policy finds none on this node.
    int_filter = ext_filter = Goto("reject-chain") if not has_any else Drop()
    port = str(sp.port.port)

    # Chains first (ensureChain), so that rules and elements can refer to them.
    for ep in sp.reachable:
        t.chain(_endpoint_chain(sp, ep))
    if uses_cluster:
        t.chain(cluster_chain)
    if uses_local:
        t.chain(local_chain)
    if uses_ext:
        t.chain(ext_chain)
    if uses_fw:
        t.chain(fw_chain)

    t.element("cluster-ips", (svc.cluster_ip,))
    if has_int:
        t.element("service-ips", (svc.cluster_ip, proto, port), Goto(internal_chain))
    else:
        t.element("no-endpoint-services", (svc.cluster_ip, proto, port), int_filter, ns)
    for ip in svc.external_ips:
        if has_any:
            t.element("service-ips", (ip, proto, port), Goto(ext_chain))
        if not has_ext:
            t.element("no-endpoint-services", (ip, proto, port), ext_filter, ns)
    for ip in sp.lb_ips:
        if has_any:
            t.element("service-ips", (ip, proto, port), Goto(ext_chain))
        if uses_fw:
            t.element("firewall-ips", (ip, proto, port), Goto(fw_chain))
    if not has_ext:
        for ip in sp.lb_ips:
            t.element("no-endpoint-services", (ip, proto, port), ext_filter, ns)
    if sp.node_port:
        if has_any:
            t.element("service-nodeports", (proto, str(sp.node_port)), Goto(ext_chain))
        if not has_ext:
            t.element("no-endpoint-nodeports", (proto, str(sp.node_port)), ext_filter, ns)

    if has_int and local.masquerade_all:
        t.add(internal_chain, [Addr("daddr", (svc.cluster_ip,))], Jump("mark-for-masquerade"))
    elif has_int and local.cidr is not None:
        t.add(
            internal_chain,
            [Addr("daddr", (svc.cluster_ip,)), Addr("saddr", (local.cidr,), negate=True)],
            Jump("mark-for-masquerade"),
        )
    if uses_ext:
        if not sp.external_local:
            t.add(ext_chain, [], Jump("mark-for-masquerade"))
        else:
            if local.cidr is not None:
                t.add(
                    ext_chain, [Addr("saddr", (local.cidr,)), Comment("short-circuit pod traffic")], Goto(cluster_chain)
                )
            t.add(ext_chain, [AddrType("saddr"), Comment("masquerade local traffic")], Jump("mark-for-masquerade"))
            t.add(ext_chain, [AddrType("saddr"), Comment("short-circuit local traffic")], Goto(cluster_chain))
        if has_ext:
            t.add(ext_chain, [], Goto(external_policy_chain))
    if uses_fw:
        sources = list(svc.load_balancer_source_ranges)
        if any(ipaddress.ip_address(host_ip) in ipaddress.ip_network(c) for c in sources):
            sources += list(sp.lb_ips)
        t.add(fw_chain, [Addr("saddr", tuple(sources), negate=True, literal_set=True), Log()], Drop())
    if sp.affinity:
        addr = "ipv6_addr" if ":" in svc.cluster_ip else "ipv4_addr"  # the proxier's family
        for ep in sp.reachable:
            t.add_set(NftSet(_affinity_set(sp, ep), addr, flags=("dynamic", "timeout"), timeout=svc.affinity_timeout))
    if uses_cluster:
        _endpoint_rules(t, sp, cluster_chain, sp.cluster_endpoints)
    if uses_local:
        _endpoint_rules(t, sp, local_chain, sp.local_endpoints)
    for ep in sp.reachable:
        chain = _endpoint_chain(sp, ep)
        t.add(chain, [Addr("saddr", (ep.ip,))], Jump("mark-for-masquerade"))
        if sp.affinity:
            t.add(chain, [RecentSet(_affinity_set(sp, ep), str(ep))], None)
        t.add(chain, [Proto(proto)], Dnat(ep.ip, ep.port))


def _endpoint_rules(t: _Table, sp: ProxiedPort, chain: str, endpoints: tuple[ResolvedEndpoint, ...]) -> None:
    if sp.affinity:
        for ep in endpoints:
            t.add(
                chain,
                [RecentCheck(_affinity_set(sp, ep), sp.service.affinity_timeout, str(ep))],
                Goto(_endpoint_chain(sp, ep)),
            )
    t.add(chain, [], NumgenVmap(tuple(_endpoint_chain(sp, ep) for ep in endpoints)))
