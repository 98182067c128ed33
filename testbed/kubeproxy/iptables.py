"""kube-proxy's iptables mode (pkg/proxy/iptables/proxier.go syncProxyRules), as a Ruleset.

Layout as upstream (v1.29+):
- nat: PREROUTING and OUTPUT jump to KUBE-SERVICES, POSTROUTING to KUBE-POSTROUTING.
  KUBE-SERVICES: per service port a `cluster IP` rule to KUBE-SVC-<hash> (KUBE-SVL-<hash> with
  internalTrafficPolicy Local), `external IP` / `loadbalancer IP` rules to KUBE-EXT-<hash>
  (KUBE-FW-<hash> first with loadBalancerSourceRanges), and last the jump to KUBE-NODEPORTS
  for this node's HOST-IP (nodePortAddresses = the primary address, as nftables mode defaults).
  KUBE-SVC-*: masquerade what does not come from podSubnet, then `-m statistic --mode random
  --probability 1/n, 1/(n-1), ...` to KUBE-SEP-*, after `-m recent --rcheck` rules for
  ClientIP affinity. KUBE-EXT-*: Cluster policy marks for masquerade and goes to KUBE-SVC;
  Local policy short-circuits pods and the node itself to KUBE-SVC (local sources
  masqueraded) and sends the rest to KUBE-SVL (local endpoints only, source kept).
  KUBE-SEP-*: mark for masquerade when the source is the endpoint itself (hairpin), then
  DNAT. KUBE-MARK-MASQ sets 0x4000; KUBE-POSTROUTING masquerades what carries it.
- filter: KUBE-SERVICES rejects ClusterIP traffic of services without endpoints (DROP when
  internalTrafficPolicy Local has no local endpoint), KUBE-EXTERNAL-SERVICES does the same
  for external destinations, KUBE-NODEPORTS accepts health-check node ports, KUBE-FORWARD
  accepts marked and established traffic, KUBE-PROXY-FIREWALL drops what
  loadBalancerSourceRanges refuses.

Large clusters as upstream: past 1,000 endpoints (largeClusterEndpointsThreshold, counted over
every proxied service port, ready or not), the KUBE-SVC/SVL rules to endpoints and the KUBE-SEP
rules carry no comment (appendServiceCommentLocked): the text of a 1,000-endpoint Service is a
third smaller and iptables-restore loads it faster (each comment is one more xt match in the kernel).

Not modelled: KUBE-FIREWALL (localhost NodePorts: off with nodePortAddresses = HOST-IP),
KUBE-PROXY-CANARY, topology hints. Partial syncs: partial.py (each Service port's rules are
computed once per change, fragments.py).
"""

from __future__ import annotations

import ipaddress
from fractions import Fraction
from typing import cast

from ..plan.service_model import ResolvedEndpoint, ServicesPlan
from ..rules.model import (
    Accept,
    Addr,
    AddrType,
    Chain,
    Comment,
    CtState,
    Dnat,
    DPort,
    Drop,
    Jump,
    Log,
    MarkMatch,
    Masquerade,
    Part,
    Proto,
    Random,
    RecentCheck,
    RecentSet,
    Reject,
    Return,
    Rule,
    Ruleset,
    SetMark,
    Table,
    Verdict,
)
from ..spec.kube_proxy_config import KubeProxyConfig
from .common import (
    LOOPBACK,
    LOOPBACK6,
    MASQ_MARK,
    LocalTraffic,
    ProxiedPort,
    iptables_chain,
    iptables_endpoint_chain,
    ipv6,
    local_traffic,
    service_ports,
)
from .fragments import Call, ChainLists, Fragments, Recorder, fold_owned, prebuilt, replay

KUBE_SERVICES = "KUBE-SERVICES"
KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES"
KUBE_NODEPORTS = "KUBE-NODEPORTS"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_FORWARD = "KUBE-FORWARD"
KUBE_PROXY_FIREWALL = "KUBE-PROXY-FIREWALL"
KUBE_FIREWALL = "KUBE-FIREWALL"  # kubelet's too: blocks martian localnet traffic (route_localnet)
SERVICE_CHAIN_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-")
LARGE_CLUSTER_ENDPOINTS = 1000  # largeClusterEndpointsThreshold

# Built-in chains and their netfilter hook and priority (nat: dstnat -100 / srcnat 100, filter 0).
_BUILTINS = {
    "nat": (("PREROUTING", "prerouting", -100), ("OUTPUT", "output", -100), ("POSTROUTING", "postrouting", 100)),
    "filter": (("INPUT", "input", 0), ("FORWARD", "forward", 0), ("OUTPUT", "output", 0)),
}
_NEW = CtState(("NEW",))
# The jump rules kube-proxy ensures in the built-in chains (iptablesJumpChains), in the order they
# end up in (each is inserted at the top, so the last one listed upstream comes first).
_JUMPS: dict[str, dict[str, tuple[tuple[tuple[Part, ...], str], ...]]] = {
    "filter": {
        "INPUT": (
            ((_NEW, Comment("kubernetes load balancer firewall")), KUBE_PROXY_FIREWALL),
            ((Comment("kubernetes health check service ports"),), KUBE_NODEPORTS),
            ((_NEW, Comment("kubernetes externally-visible service portals")), KUBE_EXTERNAL_SERVICES),
        ),
        "FORWARD": (
            ((_NEW, Comment("kubernetes load balancer firewall")), KUBE_PROXY_FIREWALL),
            ((Comment("kubernetes forwarding rules"),), KUBE_FORWARD),
            ((_NEW, Comment("kubernetes service portals")), KUBE_SERVICES),
            ((_NEW, Comment("kubernetes externally-visible service portals")), KUBE_EXTERNAL_SERVICES),
        ),
        "OUTPUT": (
            ((_NEW, Comment("kubernetes load balancer firewall")), KUBE_PROXY_FIREWALL),
            ((_NEW, Comment("kubernetes service portals")), KUBE_SERVICES),
        ),
    },
    "nat": {
        "PREROUTING": (((Comment("kubernetes service portals"),), KUBE_SERVICES),),
        "OUTPUT": (((Comment("kubernetes service portals"),), KUBE_SERVICES),),
        "POSTROUTING": (((Comment("kubernetes postrouting rules"),), KUBE_POSTROUTING),),
    },
}


class _Chains(ChainLists):
    """Chains of one table in declaration order, rules appended as syncProxyRules writes them."""

    def __init__(self, table: str, names: tuple[str, ...]) -> None:
        self.table = table
        self.rules: dict[str, list[Rule]] = {}
        super().__init__(self.rules)
        for builtin, _, _ in _BUILTINS[table]:
            self.rules[builtin] = [Rule(parts, Jump(target)) for parts, target in _JUMPS[table].get(builtin, ())]
        for name in names:
            self.declare(name)

    def declare(self, name: str) -> None:
        self.rules.setdefault(name, [])

    def _declare_placed(self, chain: Chain) -> None:
        self.declare(chain.name)

    def table_of(self) -> Table:
        hooks = {name: (hook, prio) for name, hook, prio in _BUILTINS[self.table]}
        chains = []
        for name, rules in self.rules.items():
            placed = self.placed.get(name)
            if placed is not None:
                chains.append(placed)
                continue
            hook, prio = hooks.get(name, (None, None))
            chains.append(Chain(name, tuple(rules), hook=hook, type=self.table if hook else None, priority=prio))
        return Table(self.table, tuple(chains), kind="iptables")


def build_iptables(
    plan: ServicesPlan,
    node: str,
    host_ip: str,
    pod_subnet: str,
    config: KubeProxyConfig | None = None,
    node_pod_cidr: str = "",
) -> Ruleset:
    """The iptables-mode rules of one node (`config`: the topology's KubeProxyConfiguration)."""
    nat = _Chains("nat", (KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ))
    flt = _Chains("filter", (KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS, KUBE_PROXY_FIREWALL))
    local = local_traffic(config, pod_subnet, node_pod_cidr)
    # nodePortAddresses: None matches every local address; the default is the primary one.
    node_ips = config.node_port_ips(host_ip, "iptables") if config is not None else (host_ip,)
    localhost = localhost_node_ports(config, host_ip)
    if localhost:
        _kubelet_firewall(flt)
    nat.add(KUBE_POSTROUTING, [MarkMatch(MASQ_MARK, MASQ_MARK, negate=True)], Return())
    nat.add(KUBE_POSTROUTING, [], SetMark("xor", MASQ_MARK))
    nat.add(KUBE_POSTROUTING, [Comment("kubernetes service traffic requiring SNAT")], Masquerade())
    nat.add(KUBE_MARK_MASQ, [], SetMark("or", MASQ_MARK))
    large = large_cluster(plan)
    for sp in service_ports(plan, node):
        nat_calls, flt_calls = _fragments(sp, host_ip, local, large)
        replay(nat_calls, nat)
        replay(flt_calls, flt)
    last = Comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain")
    if node_ips is None:  # MatchAll: every local address, loopback only with localhost NodePorts
        # (never in IPv6: upstream's IPv6 proxier always writes `! -d ::1/128`)
        loopback = LOOPBACK6 if ipv6(plan.service_subnet) else LOOPBACK
        nat.add(
            KUBE_SERVICES,
            [last, AddrType("daddr"), *(() if localhost else (Addr("daddr", (loopback,), negate=True),))],
            Jump(KUBE_NODEPORTS),
        )
    for ip in node_ips or ():
        if ipaddress.ip_address(ip).is_loopback and not localhost:
            continue  # upstream logs "--nodeport-addresses includes localhost but ..." and skips it
        nat.add(KUBE_SERVICES, [last, Addr("daddr", (ip,))], Jump(KUBE_NODEPORTS))
    flt.add(KUBE_FORWARD, [CtState(("INVALID",))], Drop())
    flt.add(KUBE_FORWARD, [Comment("kubernetes forwarding rules"), MarkMatch(MASQ_MARK, MASQ_MARK)], Accept())
    flt.add(
        KUBE_FORWARD, [Comment("kubernetes forwarding conntrack rule"), CtState(("RELATED", "ESTABLISHED"))], Accept()
    )
    return Ruleset(node, (flt.table_of(), nat.table_of()), "iptables", host_ip, pod_subnet, plan.service_subnet)


def large_cluster(plan: ServicesPlan) -> bool:
    """Upstream's largeClusterMode: more than 1,000 endpoints in all, summed over the proxied
    service ports (endpointsMap holds every endpoint of their slices, ready or not)."""
    total = 0
    for svc in plan.services:
        if svc.proxied:
            for port in svc.ports:
                total += len(plan.endpoints(svc.namespace, svc.name, port.name, port.protocol))
    return total > LARGE_CLUSTER_ENDPOINTS


def localhost_node_ports(config: KubeProxyConfig | None, host_ip: str) -> bool:
    """Whether NodePorts answer on 127.0.0.1 (route_localnet=1 on the node): upstream turns
    iptables.localhostNodePorts off when nodePortAddresses does not include the loopback.
    Without a configuration the testbed keeps its NodePorts on the primary address only."""
    if config is None or not config.localhost_node_ports or ":" in host_ip:
        return False  # localhost NodePorts are IPv4 only (route_localnet has no IPv6 twin)
    ips = config.node_port_ips(host_ip, "iptables")
    return ips is None or "127.0.0.1" in ips


def _kubelet_firewall(flt: _Chains) -> None:
    """KUBE-FIREWALL (CVE-2020-8558): with route_localnet=1, drop packets to 127.0.0.0/8 that
    did not come from it and are not a DNATed or known connection; jumped to from INPUT and OUTPUT."""
    flt.declare(KUBE_FIREWALL)
    flt.add(
        KUBE_FIREWALL,
        [
            Comment("block incoming localnet connections"),
            Addr("daddr", (LOOPBACK,)),
            Addr("saddr", (LOOPBACK,), negate=True),
            CtState(("RELATED", "ESTABLISHED", "DNAT"), negate=True),
        ],
        Drop(),
    )
    for builtin in ("INPUT", "OUTPUT"):
        flt.add(builtin, [], Jump(KUBE_FIREWALL))


def _fragment(
    sp: ProxiedPort, host_ip: str, local: LocalTraffic, large: bool
) -> tuple[tuple[Call, ...], tuple[Call, ...]]:
    """A Service port's nat and filter calls (fragments.py caches them)."""
    nat, flt = Recorder(), Recorder()
    _service_port(cast(_Chains, nat), cast(_Chains, flt), sp, host_ip, local, large)
    return fold_owned(prebuilt(nat.calls), "declare", _user_chain), fold_owned(
        prebuilt(flt.calls), "declare", _user_chain
    )


def _user_chain(declared: Call, rules: tuple[Rule, ...]) -> Chain:
    """A user chain (no hook) of the Service port's own (KUBE-SVC-, KUBE-SEP-...)."""
    return Chain(declared[1][0], rules)


_fragments = Fragments(_fragment)


def _filter_target(sp: ProxiedPort) -> tuple[str, Verdict]:
    """(comment, verdict) of the filter rules for traffic that found no usable endpoint: REJECT
    when the Service has none at all, DROP when only a Local policy finds none on this node."""
    if not sp.has_endpoints:
        return f"{sp.name_string} has no endpoints", Reject()
    return f"{sp.name_string} has no local endpoints", Drop()


def _service_port(
    nat: _Chains, flt: _Chains, sp: ProxiedPort, host_ip: str, local: LocalTraffic, large: bool = False
) -> None:
    ns, proto, svc = sp.name_string, sp.protocol, sp.service
    sep_comment: tuple[Part, ...] = () if large else (Comment(ns),)  # appendServiceCommentLocked
    svc_chain = iptables_chain("KUBE-SVC", ns, proto)
    svl_chain = iptables_chain("KUBE-SVL", ns, proto)
    ext_chain = iptables_chain("KUBE-EXT", ns, proto)
    fw_chain = iptables_chain("KUBE-FW", ns, proto)
    has_any, has_int, has_ext = sp.has_endpoints, sp.has_internal_endpoints, sp.has_external_endpoints
    internal_chain = svl_chain if sp.internal_local else svc_chain
    external_policy_chain = svl_chain if sp.external_local else svc_chain
    uses_ext = has_any and sp.externally_accessible
    cluster_eps = sp.cluster_endpoints
    uses_cluster = bool(cluster_eps)
    uses_local = bool(sp.local_endpoints) and sp.uses_local_endpoints
    uses_fw = has_any and bool(sp.lb_ips) and bool(svc.load_balancer_source_ranges)
    lb_chain = fw_chain if uses_fw else ext_chain
    int_comment, int_target = ext_comment, ext_target = _filter_target(sp)
    port = DPort.of(sp.port.port)

    # Capture the ClusterIP.
    capture: list[Part] = [Proto(proto), Addr("daddr", (svc.cluster_ip,)), port]
    if has_int:
        nat.add(KUBE_SERVICES, [Comment(f"{ns} cluster IP"), *capture], Jump(internal_chain))
    else:
        flt.add(KUBE_SERVICES, [Comment(int_comment), *capture, Log()], int_target)
    # Capture external IPs.
    for ip in svc.external_ips:
        dst: list[Part] = [Proto(proto), Addr("daddr", (ip,)), port]
        if has_any:
            nat.add(KUBE_SERVICES, [Comment(f"{ns} external IP"), *dst], Jump(ext_chain))
        if not has_ext:
            flt.add(KUBE_EXTERNAL_SERVICES, [Comment(ext_comment), *dst, Log()], ext_target)
    # Capture load-balancer ingress.
    for ip in sp.lb_ips:
        dst = [Proto(proto), Addr("daddr", (ip,)), port]
        if has_any:
            nat.add(KUBE_SERVICES, [Comment(f"{ns} loadbalancer IP"), *dst], Jump(lb_chain))
        if uses_fw:
            flt.add(KUBE_PROXY_FIREWALL, [Comment(f"{ns} traffic not accepted by {fw_chain}"), *dst, Log()], Drop())
    if not has_ext:
        for ip in sp.lb_ips:
            flt.add(
                KUBE_EXTERNAL_SERVICES,
                [Comment(ext_comment), Proto(proto), Addr("daddr", (ip,)), port, Log()],
                ext_target,
            )
    # Capture node ports.
    if sp.node_port:
        if has_any:
            nat.add(KUBE_NODEPORTS, [Comment(ns), Proto(proto), DPort.of(sp.node_port)], Jump(ext_chain))
        if not has_ext:
            flt.add(
                KUBE_EXTERNAL_SERVICES,
                [Comment(ext_comment), AddrType("daddr"), Proto(proto), DPort.of(sp.node_port), Log()],
                ext_target,
            )
    if svc.health_check_node_port:
        flt.add(
            KUBE_NODEPORTS,
            [Comment(f"{ns} health check node port"), Proto("tcp"), DPort.of(svc.health_check_node_port)],
            Accept(),
        )

    # Declare the chains in upstream's order: EXT, FW, SVC, SVL, SEP.
    if uses_ext:
        nat.declare(ext_chain)
    if uses_fw:
        nat.declare(fw_chain)
    if uses_cluster:
        nat.declare(svc_chain)
    if uses_local:
        nat.declare(svl_chain)
    reachable = {str(e): e for e in sp.reachable}
    for key in sorted(reachable):
        nat.declare(iptables_endpoint_chain(ns, proto, key))

    # Internal traffic: masquerade off-cluster sources that reach the ClusterIP (every
    # source with masqueradeAll; none without a local-traffic detector).
    if has_int and local.masquerade_all:
        nat.add(internal_chain, [Comment(f"{ns} cluster IP"), *capture], Jump(KUBE_MARK_MASQ))
    elif has_int and local.cidr is not None:
        nat.add(
            internal_chain,
            [Comment(f"{ns} cluster IP"), *capture, Addr("saddr", (local.cidr,), negate=True)],
            Jump(KUBE_MARK_MASQ),
        )
    # External traffic.
    if uses_ext:
        if not sp.external_local:
            nat.add(ext_chain, [Comment(f"masquerade traffic for {ns} external destinations")], Jump(KUBE_MARK_MASQ))
        else:
            if local.cidr is not None:
                nat.add(
                    ext_chain,
                    [Comment(f"pod traffic for {ns} external destinations"), Addr("saddr", (local.cidr,))],
                    Jump(svc_chain),
                )
            nat.add(
                ext_chain,
                [Comment(f"masquerade LOCAL traffic for {ns} external destinations"), AddrType("saddr")],
                Jump(KUBE_MARK_MASQ),
            )
            nat.add(
                ext_chain,
                [Comment(f"route LOCAL traffic for {ns} external destinations"), AddrType("saddr")],
                Jump(svc_chain),
            )
        if has_ext:
            nat.add(ext_chain, [], Jump(external_policy_chain))
    if uses_fw:
        allow = [Comment(f"{ns} loadbalancer IP")]
        for cidr in svc.load_balancer_source_ranges:
            nat.add(fw_chain, [*allow, Addr("saddr", (cidr,))], Jump(ext_chain))
        if any(ipaddress.ip_address(host_ip) in ipaddress.ip_network(c) for c in svc.load_balancer_source_ranges):
            for ip in sp.lb_ips:
                nat.add(fw_chain, [*allow, Addr("saddr", (ip,))], Jump(ext_chain))
        nat.add(fw_chain, [Comment(f"other traffic to {ns} will be dropped by KUBE-PROXY-FIREWALL")], None)
    if uses_cluster:
        _endpoint_rules(nat, sp, svc_chain, cluster_eps, large)
    if uses_local:
        _endpoint_rules(nat, sp, svl_chain, sp.local_endpoints, large)
    for key in sorted(reachable):
        ep = reachable[key]
        sep = iptables_endpoint_chain(ns, proto, key)
        nat.add(sep, [*sep_comment, Addr("saddr", (ep.ip,))], Jump(KUBE_MARK_MASQ))
        parts: list[Part] = [*sep_comment]
        if sp.affinity:
            parts.append(RecentSet(sep, key))
        nat.add(sep, [*parts, Proto(proto)], Dnat(ep.ip, ep.port))


def _endpoint_rules(
    nat: _Chains, sp: ProxiedPort, chain: str, endpoints: tuple[ResolvedEndpoint, ...], large: bool = False
) -> None:
    """writeServiceToEndpointRules: affinity lookups, then 1/n, 1/(n-1) ... random spreading
    (without their comments in a large cluster)."""
    ns, proto = sp.name_string, sp.protocol

    def comment(ep: ResolvedEndpoint) -> list[Part]:
        return [] if large else [Comment(f"{ns} -> {ep}")]

    if sp.affinity:
        for ep in endpoints:
            sep = iptables_endpoint_chain(ns, proto, str(ep))
            nat.add(chain, [*comment(ep), RecentCheck(sep, sp.service.affinity_timeout, str(ep))], Jump(sep))
    n = len(endpoints)
    for i, ep in enumerate(endpoints):
        parts: list[Part] = comment(ep)
        if i < n - 1:
            parts.append(Random(Fraction(1, n - i)))
        nat.add(chain, parts, Jump(iptables_endpoint_chain(ns, proto, str(ep))))
