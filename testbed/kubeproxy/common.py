"""What both proxy modes share: chain-name hashes and the per-node view of each service port.

Chain names are computed as upstream computes them, so that a rule dump from the emulation
reads like one from a real node:
- iptables (pkg/proxy/iptables): KUBE-SVC-/SVL-/EXT-/FW- + the first 16 characters of
  base32(sha256(servicePortName + protocol)), KUBE-SEP- + the same over
  servicePortName + protocol + "ip:port"; servicePortName is `ns/name:port` (`ns/name` for an
  unnamed port) and protocol is lower case (default/kubernetes:https -> KUBE-SVC-NPX46M4PTMTKRN6Y);
- nftables (pkg/proxy/nftables): `ns/name/protocol/port` prefixed with the first 8 characters
  of base32(sha256(itself)) (service-ULMVA6XW-ns1/svc1/tcp/p80), endpoints add
  `__ip/port`; names longer than 240 characters are cut with "...".

`service_ports()` is CategorizeEndpoints (pkg/proxy/topology.go) without topology hints:
ready endpoints for Cluster policy, ready local ones for Local policy, and serving-terminating
ones as a fallback when none is ready.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass

from ..plan.service_model import ResolvedEndpoint, ServicePlan, ServicePortPlan, ServicesPlan
from ..spec.kube_proxy_config import KubeProxyConfig

NFT_CHAIN_BASE_MAX = 256 - 16  # knftables.NameLengthMax - chainNamePrefixLengthMax
MASQ_MARK = 0x4000  # kube-proxy --masquerade-bit 14
LOOPBACK = "127.0.0.0/8"
LOOPBACK6 = "::1/128"  # the IPv6 proxier's: iptables writes `! -d ::1/128`, nftables `ip6 daddr != ::1`


def ipv6(subnet: str) -> bool:
    """Is this the IPv6 proxier's range (its serviceCIDR)? Upstream runs one proxier per family;
    here the family follows the ServicesPlan it is given."""
    return ":" in subnet


@dataclass(frozen=True)
class LocalTraffic:
    """What a Service port's masquerade rules depend on besides the port: kube-proxy's
    local-traffic detector (detectLocalMode's CIDR; None: no detector, upstream's noop) and
    masqueradeAll (spec/kube_proxy_config.py)."""

    cidr: str | None
    masquerade_all: bool = False


def local_traffic(config: KubeProxyConfig | None, pod_subnet: str, node_pod_cidr: str) -> LocalTraffic:
    """The node's LocalTraffic; without a configuration, the podSubnet as kind's clusterCIDR."""
    if config is None:
        return LocalTraffic(pod_subnet)
    cidr = config.local_cidr(pod_subnet, node_pod_cidr)
    if cidr is not None and ipv6(cidr) != ipv6(pod_subnet):
        # upstream's detector per family: a clusterCIDR of the other family only is no detector
        cidr = None
    return LocalTraffic(cidr, config.masquerade_all)


@functools.lru_cache(maxsize=1 << 16)
def _b32(text: str) -> str:
    # Every node hashes the same service and endpoint names, and every sync hashes them again.
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()


def port_proto_hash(service_port_name: str, protocol: str) -> str:
    return _b32(service_port_name + protocol)[:16]


def iptables_chain(prefix: str, service_port_name: str, protocol: str) -> str:
    """KUBE-SVC-..., KUBE-SVL-..., KUBE-EXT-..., KUBE-FW-... (prefix without the trailing dash)."""
    return f"{prefix}-{port_proto_hash(service_port_name, protocol)}"


def iptables_endpoint_chain(service_port_name: str, protocol: str, endpoint: str) -> str:
    return "KUBE-SEP-" + _b32(service_port_name + protocol + endpoint)[:16]


def _hash_and_truncate(name: str) -> str:
    name = _b32(name)[:8] + "-" + name
    return name if len(name) <= NFT_CHAIN_BASE_MAX else name[: NFT_CHAIN_BASE_MAX - 3] + "..."


def nft_chain_base(namespace: str, name: str, protocol: str, port_name: str) -> str:
    return _hash_and_truncate(f"{namespace}/{name}/{protocol}/{port_name}")


def nft_endpoint_chain_base(namespace: str, name: str, protocol: str, port_name: str, endpoint: str) -> str:
    ip, _, port = endpoint.rpartition(":")
    # an IPv6 endpoint ("[fd00::1]:80") is named with dots: a chain name cannot hold a colon
    ip = ip.strip("[]").replace(":", ".")
    return _hash_and_truncate(f"{namespace}/{name}/{protocol}/{port_name}__{ip}/{port}")


@dataclass(frozen=True)
class ProxiedPort:
    """One service port as kube-proxy on one node sees it (svcInfo + CategorizeEndpoints)."""

    service: ServicePlan
    port: ServicePortPlan
    cluster_endpoints: tuple[ResolvedEndpoint, ...]
    local_endpoints: tuple[ResolvedEndpoint, ...]
    reachable: tuple[ResolvedEndpoint, ...]  # the union: every endpoint chain this node needs
    has_endpoints: bool  # usable endpoints anywhere in the cluster

    @property
    def name_string(self) -> str:
        """proxy.ServicePortName.String(): `ns/name:port`, or `ns/name` for an unnamed port."""
        base = f"{self.service.namespace}/{self.service.name}"
        return f"{base}:{self.port.name}" if self.port.name else base

    @property
    def protocol(self) -> str:
        return self.port.protocol.lower()

    @property
    def node_port(self) -> int | None:
        return self.port.node_port

    @property
    def lb_ips(self) -> tuple[str, ...]:
        return self.service.load_balancer_ingress

    @property
    def externally_accessible(self) -> bool:
        return bool(self.port.node_port) or bool(self.service.load_balancer_ingress) or bool(self.service.external_ips)

    @property
    def internal_local(self) -> bool:
        return self.service.internal_traffic_policy == "Local"

    @property
    def external_local(self) -> bool:
        return self.externally_accessible and self.service.external_traffic_policy == "Local"

    @property
    def uses_cluster_endpoints(self) -> bool:
        return not self.internal_local or (self.externally_accessible and not self.external_local)

    @property
    def uses_local_endpoints(self) -> bool:
        return self.internal_local or self.external_local

    @property
    def has_internal_endpoints(self) -> bool:
        return self.has_endpoints and (not self.internal_local or bool(self.local_endpoints))

    @property
    def has_external_endpoints(self) -> bool:
        return self.has_endpoints and (not self.external_local or bool(self.local_endpoints))

    @property
    def affinity(self) -> bool:
        return self.service.session_affinity == "ClientIP"


def service_ports(plan: ServicesPlan, node: str) -> list[ProxiedPort]:
    """Every port of every proxied Service (not headless, not ExternalName), sorted by name."""
    if _shared_of[0] is not plan:  # only the plan being compiled is kept
        _shared.clear()
        _shared_of[0] = plan
    out: list[ProxiedPort] = []
    for svc in sorted(plan.services, key=lambda s: (s.namespace, s.name)):
        if not svc.proxied:
            continue
        for port in svc.ports:
            eps = plan.endpoints(svc.namespace, svc.name, port.name, port.protocol)
            out.append(_categorized(svc, port, eps, node))
    return out


_MAX_SHARED = 4096
# (ids of service, port, endpoints) -> (them, the ProxiedPort), for ports whose view is the same
# on every node, within one ServicesPlan (_shared_of): the plan hands every node the same
# endpoints tuple (ServicesPlan.endpoints), so the nodes after the first get the first one's
# ProxiedPort (and fragments.py finds it by identity) instead of sorting 1,000 endpoints again.
# The entry holds its objects, so their ids stay theirs.
_shared: dict[tuple[int, int, int], tuple[ServicePlan, ServicePortPlan, tuple[ResolvedEndpoint, ...], ProxiedPort]] = {}
_shared_of: list[ServicesPlan | None] = [None]


def _categorized(svc: ServicePlan, port: ServicePortPlan, eps: tuple[ResolvedEndpoint, ...], node: str) -> ProxiedPort:
    key = (id(svc), id(port), id(eps))
    found = _shared.get(key)
    if found is not None and found[0] is svc and found[1] is port and found[2] is eps:
        return found[3]
    sp = _categorize(svc, port, eps, node)
    if not sp.uses_local_endpoints:  # the node does not matter
        if len(_shared) >= _MAX_SHARED:
            _shared.clear()
        _shared[key] = (svc, port, eps, sp)
    return sp


def _categorize(svc: ServicePlan, port: ServicePortPlan, eps: tuple[ResolvedEndpoint, ...], node: str) -> ProxiedPort:
    probe = ProxiedPort(svc, port, (), (), (), False)
    cluster: list[ResolvedEndpoint] = []
    local: list[ResolvedEndpoint] = []
    if probe.uses_cluster_endpoints or probe.external_local:
        # (The second case: both policies Local. Upstream's EXT chain still short-circuits pods
        # and the node to the cluster-wide chain, so that chain gets every usable endpoint.)
        cluster = [e for e in eps if e.ready] or [e for e in eps if e.serving and e.terminating]
    has_any = bool(cluster) and probe.uses_cluster_endpoints
    if probe.uses_local_endpoints:
        has_any = has_any or any(e.ready or (e.serving and e.terminating) for e in eps)
        local = [e for e in eps if e.node == node and e.ready] or [
            e for e in eps if e.node == node and e.serving and e.terminating
        ]
    merged = {str(e): e for e in cluster + local}
    reachable = tuple(merged[k] for k in sorted(merged))
    return ProxiedPort(svc, port, tuple(cluster), tuple(local), reachable, has_any)
