"""Services: ClusterIP / NodePort / LoadBalancer allocation and EndpointSlices (plan/, pure).

Plays three control-plane roles, deterministically from a seed:

- the API server's allocators (pkg/registry/core/service/ipallocator and portallocator):
  explicit addresses are honoured and checked (inside serviceSubnet, not taken); dynamic ones
  are drawn at random, seeded, from the upper band of the range first, the lower band
  (min(max(16, size/16), 256) addresses for ClusterIPs, min(max(16, size/32), 128) ports for
  NodePorts) being kept for static requests, as upstream does. The first address of
  serviceSubnet belongs to `default/kubernetes`, the tenth to kube-dns: dynamic allocation
  never hands them out (an explicit request may, which is how kube-dns gets .10);
- the emulated cloud's service controller (scenario 003's cloud controller manager): a
  LoadBalancer gets the first free address of the pool (`192.168.1.200-192.168.1.250`, a
  CIDR or one address on the underlay), or its spec.loadBalancerIP when free in the pool;
  without a pool it stays <pending>, as on scenario 002's cloud-less cluster;
- the EndpointSlice controller: for each Service with a selector, the pods of its namespace
  whose labels match, each port's targetPort resolved per pod (a named targetPort through
  that pod's containerPort names and the port's protocol; a pod without it is no endpoint
  for that port), grouped into slices of identical ports, 100 endpoints at most per slice.

`plan_services` is the first computation; `update_endpoints` recomputes the slices after pods
changed (scale, delete, relabel) and keeps every allocation; `plan_services(...,
previous=plan)` keeps the allocations of Services that still exist when Services change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import random
from collections.abc import Collection, Iterable, Sequence
from typing import Generic, TypeVar

from ..errors import Problem, SpecError
from ..spec.model import ClusterSpec, Manifests, ObjectRef
from ..spec.services import NODE_PORT_RANGE, ServicePort, ServiceSpec
from .ipam import underlay_addresses
from .model import PodPlan
from .naming import ALPHANUMS
from .service_model import (
    EndpointPlan,
    EndpointPortPlan,
    EndpointSlicePlan,
    ServicePlan,
    ServicePortPlan,
    ServicesPlan,
    ip_sort_key,
)

MAX_ENDPOINTS_PER_SLICE = 100  # kube-controller-manager --max-endpoints-per-slice default
KUBERNETES_SERVICE = ("default", "kubernetes")
API_SERVER_PORT = 6443  # kind's kube-apiserver secure port
KUBE_DNS_OFFSET = 10  # kube-dns at the tenth address of serviceSubnet


# -- the ranges' static bands (upstream calculateRangeOffset) ------------------------------------


def cluster_ip_static_band(size: int) -> int:
    """ipallocator: min(max(16, size/16), 256) addresses at the start kept for static requests."""
    if size <= 16:
        return 0
    return min(max(16, size // 16), 256)


def node_port_static_band(size: int) -> int:
    """portallocator: min(max(16, size/32), 128) ports at the start kept for static requests."""
    if size <= 16:
        return 0
    return min(max(16, size // 32), 128)


def _rng(seed: int, purpose: str, key: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}/{purpose}/{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class _Hosts(Sequence[str]):
    """The host addresses of a network as strings, computed on demand: a /12 has a million."""

    def __init__(self, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> None:
        self.base, self.n = int(net.network_address) + 1, max(0, net.num_addresses - 2)
        self.kind = type(net.network_address)  # IPv6 in an ipFamily ipv6 cluster (spec/ipv6.py)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> str:  # type: ignore[override]  # no slices: never asked for
        if not 0 <= i < self.n:
            raise IndexError(i)
        return str(self.kind(self.base + i))

    def __contains__(self, value: object) -> bool:
        try:
            offset = int(self.kind(str(value))) - self.base
        except ValueError:
            return False
        return 0 <= offset < self.n


T = TypeVar("T", str, int)  # addresses or port numbers


class _Allocator(Generic[T]):
    """A bitmap allocator over values[0..n): owners by value, random scan of the upper band first."""

    def __init__(self, values: Sequence[T], static_band: int, reserved: Iterable[T] = ()) -> None:
        self.values: Sequence[T] = values
        self.band = static_band
        self.owner: dict[T, str] = {}
        self.reserved: set[T] = set(reserved)

    def take(self, value: T, owner: str) -> str | None:
        """Claim `value`; returns the current owner when it is taken by someone else."""
        current = self.owner.get(value)
        if current is not None and current != owner:
            return current
        self.owner[value] = owner
        return None

    def next(self, rng: random.Random, owner: str) -> T | None:
        n = len(self.values)
        for lo, hi in ((self.band, n), (0, self.band)):
            if hi <= lo:
                continue
            start = rng.randrange(lo, hi)
            for step in range(hi - lo):
                value = self.values[lo + (start - lo + step) % (hi - lo)]
                if value not in self.owner and value not in self.reserved:
                    self.owner[value] = owner
                    return value
        return None


# -- the load balancer pool --------------------------------------------------------------------


def parse_lb_pool(text: str, version: int = 4) -> list[str]:
    """`a.b.c.d-a.b.c.e` (inclusive), a CIDR (its host addresses) or one address; ValueError if bad.
    `version` 6: an ipFamily ipv6 cluster's pool (plan/ipv6.py), at most MAX_LB_POOL6 addresses."""
    text = text.strip()
    address = ipaddress.IPv6Address if version == 6 else ipaddress.IPv4Address
    if "-" in text:
        first, _, last = text.partition("-")
        lo, hi = address(first.strip()), address(last.strip())
        if int(hi) < int(lo):
            raise ValueError(f"{hi} comes before {lo}")
        if version == 6 and int(hi) - int(lo) >= MAX_LB_POOL6:
            raise ValueError(f"more than {MAX_LB_POOL6} addresses")
        return [str(address(i)) for i in range(int(lo), int(hi) + 1)]
    if "/" in text:
        net = (ipaddress.IPv6Network if version == 6 else ipaddress.IPv4Network)(text, strict=True)
        if version == 6 and net.num_addresses > MAX_LB_POOL6:
            raise ValueError(f"more than {MAX_LB_POOL6} addresses")
        return [str(a) for a in (net.hosts() if net.prefixlen < net.max_prefixlen - 1 else net)]
    return [str(address(text))]


MAX_LB_POOL6 = 4096  # an IPv6 range is bounded before it is listed


def _check_pool(cluster: ClusterSpec, lb_pool: str, problems: list[Problem]) -> list[str]:
    where = ("loadBalancerPool", "TestbedConfig")
    try:
        pool = parse_lb_pool(lb_pool, 6 if cluster.ip_family == "ipv6" else 4)
    except ValueError as exc:
        problems.append(
            Problem(
                cluster.file,
                where[0],
                f"{lb_pool!r} is not an address range (a.b.c.d-a.b.c.e, a CIDR or one address): " + str(exc),
                where[1],
            )
        )
        return []
    under = ipaddress.ip_network(cluster.underlay_subnet)
    outside = [
        ip
        for ip in pool
        if ipaddress.ip_address(ip) not in under
        or ipaddress.ip_address(ip) in (under.network_address, under.broadcast_address)
    ]
    if outside:
        problems.append(
            Problem(
                cluster.file,
                where[0],
                f"{outside[0]} is not a host address of the "
                f"underlay {under}: load balancer addresses live on the underlay",
                where[1],
            )
        )
        return []
    host_ips, external_ips = underlay_addresses(cluster)
    taken = {ip: f"node {n.name}'s HOST-IP" for ip, n in zip(host_ips, cluster.nodes)}
    taken.update({ip: f"external host {name}" for name, ip in external_ips.items()})
    clash = [ip for ip in pool if ip in taken]
    if clash:
        problems.append(
            Problem(cluster.file, where[0], f"{clash[0]} in {lb_pool} is already {taken[clash[0]]}", where[1])
        )
        return []
    return pool


# -- planning ------------------------------------------------------------------------------------


def kubernetes_service(cluster: ClusterSpec) -> ServiceSpec:
    """default/kubernetes: the API server's own Service at the first address of serviceSubnet."""
    net = ipaddress.ip_network(cluster.service_subnet)
    return ServiceSpec(
        ref=ObjectRef("", "Service", *KUBERNETES_SERVICE),
        ports=(ServicePort("https", 443, "TCP", API_SERVER_PORT),),
        cluster_ip=str(net.network_address + 1),
        labels={"component": "apiserver", "provider": "kubernetes"},
    )


def kube_dns_ip(cluster: ClusterSpec) -> str:
    """The tenth address of serviceSubnet (10.96.0.10 by default), reserved for kube-dns."""
    return str(ipaddress.ip_network(cluster.service_subnet).network_address + KUBE_DNS_OFFSET)


def _problem(spec: ServiceSpec, suffix: str, message: str) -> Problem:
    return Problem(spec.ref.file, spec.field_path(suffix), message, str(spec.ref))


def plan_services(
    cluster: ClusterSpec,
    manifests: Manifests,
    pods: Sequence[PodPlan],
    seed: int = 0,
    lb_pool: str | None = None,
    *,
    previous: ServicesPlan | None = None,
    include_kubernetes: bool = True,
    extra: Sequence[ServiceSpec] = (),
    not_ready: Collection[str] = (),
    terminating: Collection[str] = (),
) -> ServicesPlan:
    """Allocate every Service's addresses and compute the EndpointSlices; SpecError on conflicts.

    `extra` adds Services that are not in the manifests (the lead's kube-dns, for instance);
    `previous` keeps the allocations of Services that still exist (re-plan after a change);
    `not_ready` / `terminating` are pod keys `ns/name` whose endpoints are not ready.
    """
    problems: list[Problem] = []
    warnings: list[str] = []
    specs: list[ServiceSpec] = list(manifests.services) + list(extra)
    builtin: set[str] = set()
    if include_kubernetes:
        for s in specs:
            if (s.namespace, s.name) == KUBERNETES_SERVICE:
                problems.append(
                    _problem(
                        s,
                        "metadata.name",
                        "default/kubernetes is the API server's own Service; it is created by the cluster",
                    )
                )
        specs = [kubernetes_service(cluster)] + [s for s in specs if (s.namespace, s.name) != KUBERNETES_SERVICE]
        builtin.add("default/kubernetes")
    prev = {s.key: s for s in previous.services} if previous else {}

    cluster_ips = _allocate_cluster_ips(cluster, specs, prev, seed, problems)
    node_ports, hc_ports = _allocate_node_ports(specs, prev, seed, problems)
    ingress = _allocate_lb(cluster, specs, prev, lb_pool, problems, warnings)
    if problems:
        raise SpecError(problems)

    services = []
    for s in sorted(specs, key=lambda x: (x.namespace, x.name)):
        ports = tuple(
            ServicePortPlan(
                p.name, p.port, p.protocol, p.target_port, node_ports.get((s.key, p.name, p.protocol)), p.app_protocol
            )
            for p in s.ports
        )
        services.append(
            ServicePlan(
                namespace=s.namespace,
                name=s.name,
                type=s.type,
                cluster_ip=cluster_ips.get(s.key, ""),
                ports=ports,
                selector=dict(s.selector),
                session_affinity=s.session_affinity,
                affinity_timeout=s.affinity_timeout,
                external_traffic_policy=s.external_traffic_policy,
                internal_traffic_policy=s.internal_traffic_policy if s.type != "ExternalName" else "",
                external_name=s.external_name,
                # the proxier's family's (dual-stack IPv6 ones: plan/edges6.py; ipFamily ipv6: the IPv6 ones)
                external_ips=tuple(ip for ip in s.external_ips if (":" in ip) == (":" in cluster.service_subnet)),
                load_balancer_ingress=ingress.get(s.key, ()),
                load_balancer_source_ranges=s.load_balancer_source_ranges,
                health_check_node_port=hc_ports.get(s.key),
                publish_not_ready_addresses=s.publish_not_ready_addresses,
                builtin=s.key in builtin,
            )
        )
        if s.selector and s.type == "ExternalName":
            warnings.append(f"Service {s.key}: type ExternalName ignores its selector")
    plan = ServicesPlan(
        seed=seed,
        service_subnet=cluster.service_subnet,
        lb_pool=lb_pool,
        services=tuple(services),
        slices=(),
        warnings=tuple(warnings),
    )
    slices = compute_slices(plan.services, pods, seed, not_ready=not_ready, terminating=terminating)
    if include_kubernetes:
        slices = (_kubernetes_slice(cluster),) + slices
    return dataclasses.replace(plan, slices=slices)


def update_endpoints(
    plan: ServicesPlan, pods: Sequence[PodPlan], *, not_ready: Collection[str] = (), terminating: Collection[str] = ()
) -> ServicesPlan:
    """The same Services with EndpointSlices recomputed from the current pods (after scaling,
    deleting, recreating or relabelling pods). Allocations never change here; slice names stay
    the same for the same Service and port mapping."""
    managed = compute_slices(plan.services, pods, plan.seed, not_ready=not_ready, terminating=terminating)
    kept = tuple(s for s in plan.slices if s.managed_by != "endpointslice-controller.k8s.io")
    return dataclasses.replace(plan, slices=kept + managed)


def _allocate_cluster_ips(
    cluster: ClusterSpec, specs: list[ServiceSpec], prev: dict[str, ServicePlan], seed: int, problems: list[Problem]
) -> dict[str, str]:
    net = ipaddress.ip_network(cluster.service_subnet)
    usable = _Hosts(net)
    reserved = (str(net.network_address + 1), kube_dns_ip(cluster))
    alloc = _Allocator(usable, cluster_ip_static_band(net.num_addresses), reserved)
    out: dict[str, str] = {}
    wants = [s for s in specs if s.type != "ExternalName" and not s.headless]
    for s in specs:
        if s.headless:
            out[s.key] = "None"
    # Existing Services keep their address, as the API server never changes an allocated ClusterIP.
    for s in wants:
        old = prev.get(s.key)
        if (
            old is not None
            and old.proxied
            and (not s.cluster_ip or s.cluster_ip == old.cluster_ip)
            and old.cluster_ip in alloc.values
            and alloc.take(old.cluster_ip, s.key) is None
        ):
            out[s.key] = old.cluster_ip
    for s in wants:
        if s.key in out or not s.cluster_ip:
            continue
        ip = ipaddress.ip_address(s.cluster_ip)
        if ip not in net:
            problems.append(
                _problem(s, "spec.clusterIP", f"{ip} is not in serviceSubnet {net} (the valid IPs are {net})")
            )
        elif ip in (net.network_address, net.broadcast_address):
            what = "network" if ip == net.network_address else "broadcast"
            problems.append(_problem(s, "spec.clusterIP", f"{ip} is the {what} address of serviceSubnet {net}"))
        else:
            owner = alloc.take(str(ip), s.key)
            if owner is not None:
                problems.append(_problem(s, "spec.clusterIP", f"{ip} is already allocated to Service {owner}"))
            else:
                out[s.key] = str(ip)
    for s in sorted(wants, key=lambda x: x.key):
        if s.key in out or s.cluster_ip:
            continue
        free = alloc.next(_rng(seed, "clusterIP", s.key), s.key)
        if free is None:
            problems.append(_problem(s, "spec.clusterIP", f"serviceSubnet {net} is full"))
        else:
            out[s.key] = free
    return out


def _allocate_node_ports(
    specs: list[ServiceSpec], prev: dict[str, ServicePlan], seed: int, problems: list[Problem]
) -> tuple[dict[tuple[str, str, str], int], dict[str, int]]:
    lo, hi = NODE_PORT_RANGE
    alloc = _Allocator(list(range(lo, hi + 1)), node_port_static_band(hi - lo + 1))
    out: dict[tuple[str, str, str], int] = {}
    hc: dict[str, int] = {}
    wants_hc = [s for s in specs if s.type == "LoadBalancer" and s.external_traffic_policy == "Local"]
    # 1. what existing Services already hold
    for s in specs:
        old = prev.get(s.key)
        if old is None:
            continue
        for p in s.ports:
            if p.node_port is not None or not s.needs_node_ports:
                continue
            try:
                old_np = old.port(p.name).node_port
            except KeyError:
                continue
            if old_np is not None and alloc.take(old_np, s.key) is None:
                out[(s.key, p.name, p.protocol)] = old_np
        if (
            s in wants_hc
            and s.health_check_node_port is None
            and old.health_check_node_port
            and alloc.take(old.health_check_node_port, s.key) is None
        ):
            hc[s.key] = old.health_check_node_port
    # 2. explicit requests (a number is owned by one Service; one Service may use it for two protocols)
    for s in specs:
        for i, p in enumerate(s.ports):
            if p.node_port is None:
                continue
            owner = alloc.take(p.node_port, s.key)
            if owner is not None:
                problems.append(
                    _problem(
                        s,
                        f"spec.ports[{i}].nodePort",
                        f"provided port {p.node_port} is already allocated to Service {owner}",
                    )
                )
            else:
                out[(s.key, p.name, p.protocol)] = p.node_port
        if s.health_check_node_port is not None:
            owner = alloc.take(s.health_check_node_port, s.key)
            if owner is not None or s.health_check_node_port in out.values():
                problems.append(
                    _problem(
                        s,
                        "spec.healthCheckNodePort",
                        f"port {s.health_check_node_port} is already allocated to Service {owner or s.key}",
                    )
                )
            else:
                hc[s.key] = s.health_check_node_port
    # 3. dynamic: a port number shared by two protocols of one Service gets one nodePort
    for s in sorted(specs, key=lambda x: x.key):
        if not s.needs_node_ports:
            continue
        rng = _rng(seed, "nodePort", s.key)
        by_port: dict[int, int] = {}
        for p in s.ports:
            if (s.key, p.name, p.protocol) in out:
                by_port.setdefault(p.port, out[(s.key, p.name, p.protocol)])
        for i, p in enumerate(s.ports):
            key = (s.key, p.name, p.protocol)
            if key in out:
                continue
            shared = by_port.get(p.port)
            if shared is not None and not any(
                k[0] == s.key and k[2] == p.protocol and v == shared for k, v in out.items()
            ):
                out[key] = shared
                continue
            value = alloc.next(rng, s.key)
            if value is None:
                problems.append(_problem(s, f"spec.ports[{i}].nodePort", f"no free port in {lo}-{hi}"))
                continue
            out[key] = value
            by_port.setdefault(p.port, value)
    for s in sorted(wants_hc, key=lambda x: x.key):
        if s.key not in hc:
            value = alloc.next(_rng(seed, "healthCheckNodePort", s.key), s.key)
            if value is not None:
                hc[s.key] = value
    return out, hc


# MetalLB's annotation asking for several ingress addresses (comma-separated, from the pool)
LB_IPS_ANNOTATION = "metallb.io/loadBalancerIPs"
LB_IPS_ANNOTATIONS = (LB_IPS_ANNOTATION, "metallb.universe.tf/loadBalancerIPs")
MAX_LB_IPS = 16


def requested_lb_ips(s: ServiceSpec) -> tuple[str, ...]:
    """The ingress addresses a Service asks for: MetalLB's loadBalancerIPs annotation (several,
    as `status.loadBalancer.ingress`), else spec.loadBalancerIP; () for any free one."""
    text = next((s.annotations[a] for a in LB_IPS_ANNOTATIONS if a in s.annotations), "")
    if text:
        return tuple(dict.fromkeys(ip.strip() for ip in text.split(",")[:MAX_LB_IPS] if ip.strip()))
    return (s.load_balancer_ip,) if s.load_balancer_ip else ()


def _allocate_lb(
    cluster: ClusterSpec,
    specs: list[ServiceSpec],
    prev: dict[str, ServicePlan],
    lb_pool: str | None,
    problems: list[Problem],
    warnings: list[str],
) -> dict[str, tuple[str, ...]]:
    lbs = sorted((s for s in specs if s.type == "LoadBalancer"), key=lambda x: x.key)
    if not lbs:
        if lb_pool:
            _check_pool(cluster, lb_pool, problems)
        return {}
    if not lb_pool:
        for s in lbs:
            warnings.append(
                f"Service {s.key}: no load balancer pool, EXTERNAL-IP stays <pending> "
                "(LoadBalancer needs a cloud, seed 002)"
            )
        return {}
    pool = _check_pool(cluster, lb_pool, problems)
    if not pool:
        return {}
    free = list(pool)
    out: dict[str, tuple[str, ...]] = {}
    handled = [s for s in lbs if not s.load_balancer_class]
    for s in lbs:
        if s.load_balancer_class:
            warnings.append(
                f"Service {s.key}: loadBalancerClass {s.load_balancer_class!r} is not the "
                "emulated cloud's; EXTERNAL-IP stays <pending>"
            )
    wanted = {s.key: requested_lb_ips(s) for s in handled}
    if cluster.ip_family == "dual":  # the annotation's IPv6 addresses go to the IPv6 pool (plan/edges6.py)
        wanted = {k: tuple(ip for ip in ips if ":" not in ip) for k, ips in wanted.items()}
    if cluster.ip_family == "ipv6":  # one family: the annotation's IPv6 addresses (plan/ipv6.py)
        wanted = {k: tuple(ip for ip in ips if ":" in ip) for k, ips in wanted.items()}
    for s in handled:  # existing Services keep their addresses
        old = prev.get(s.key)
        if old is not None and old.load_balancer_ingress:
            ips = old.load_balancer_ingress if wanted[s.key] else old.load_balancer_ingress[:1]
            if all(ip in free for ip in ips) and (not wanted[s.key] or wanted[s.key] == ips):
                for ip in ips:
                    free.remove(ip)
                out[s.key] = ips
    for s in handled:  # spec.loadBalancerIP or MetalLB's loadBalancerIPs annotation, when the pool can give them
        if s.key in out or not wanted[s.key]:
            continue
        missing = [ip for ip in wanted[s.key] if ip not in free]
        if not missing:
            for ip in wanted[s.key]:
                free.remove(ip)
            out[s.key] = wanted[s.key]
        else:
            why = "is not in the pool" if missing[0] not in pool else "is already in use"
            field = (
                "loadBalancerIP"
                if s.load_balancer_ip and not s.annotations.get(LB_IPS_ANNOTATION)
                else "loadBalancerIPs"
            )
            warnings.append(
                f"Service {s.key}: {field} {missing[0][:40]} {why} ({lb_pool}); EXTERNAL-IP stays <pending>"
            )
    for s in handled:
        if s.key in out or wanted[s.key]:
            continue
        if not free:
            warnings.append(
                f"Service {s.key}: the load balancer pool {lb_pool} is exhausted; EXTERNAL-IP stays <pending>"
            )
            continue
        out[s.key] = (free.pop(0),)
    return out


# -- EndpointSlices ------------------------------------------------------------------------------


def resolve_target_port(port: ServicePortPlan, pod: PodPlan) -> int | None:
    """podutil.FindPort: a number as is; a name through the pod's containerPorts of that protocol."""
    if isinstance(port.target_port, int):
        return port.target_port
    for p in pod.ports:
        if p.name == port.target_port and p.protocol == port.protocol:
            return p.port
    return None


def selects(svc: ServicePlan, pod: PodPlan) -> bool:
    return (
        bool(svc.selector)
        and pod.namespace == svc.namespace
        and all(pod.labels.get(k) == v for k, v in svc.selector.items())
    )


def _slice_name(seed: int, svc: ServicePlan, signature: str) -> str:
    digest = hashlib.sha256(f"{seed}/endpointslice/{svc.key}/{signature}".encode()).digest()
    suffix = "".join(ALPHANUMS[b % len(ALPHANUMS)] for b in digest[:5])
    return f"{svc.name[:57]}-{suffix}"


def compute_slices(
    services: Sequence[ServicePlan],
    pods: Sequence[PodPlan],
    seed: int,
    *,
    not_ready: Collection[str] = (),
    terminating: Collection[str] = (),
) -> tuple[EndpointSlicePlan, ...]:
    """The EndpointSlice controller's output for every Service with a selector."""
    not_ready, terminating = set(not_ready), set(terminating)
    out: list[EndpointSlicePlan] = []
    # Pods by (namespace, label, value), in their order: a Service looks only at the pods that
    # carry its selector's first label, not at every pod (1,000 Services x 1,000 pods).
    by_label: dict[tuple[str, str, str], list[PodPlan]] = {}
    for pod in pods:
        for label in pod.labels.items():
            by_label.setdefault((pod.namespace, *label), []).append(pod)
    for svc in services:
        if not svc.selector or svc.type == "ExternalName" or svc.builtin:
            continue
        groups: dict[tuple[EndpointPortPlan, ...], list[EndpointPlan]] = {}
        first = next(iter(svc.selector.items()))
        for pod in by_label.get((svc.namespace, *first), ()):
            if not selects(svc, pod):
                continue
            ports: list[EndpointPortPlan] = []
            for p in svc.ports:
                number = resolve_target_port(p, pod)
                if number is not None:
                    ports.append(EndpointPortPlan(p.name, number, p.protocol, p.app_protocol))
            if svc.ports and not ports:
                continue  # no port of the Service resolves on this pod
            # endpointslice's podToEndpoint: serving is the pod's readiness; ready is serving and
            # not terminating, or always with publishNotReadyAddresses
            gone = pod.full_name in terminating
            serving = pod.full_name not in not_ready
            ready = svc.publish_not_ready_addresses or (serving and not gone)
            groups.setdefault(tuple(ports), []).append(EndpointPlan(pod.ip, pod.node, pod.name, ready, serving, gone))
        if not groups:  # upstream keeps one placeholder slice with no endpoints
            out.append(EndpointSlicePlan(svc.namespace, _slice_name(seed, svc, "placeholder"), svc.name, (), ()))
            continue
        for slice_ports, endpoints in sorted(
            groups.items(), key=lambda kv: [(p.name, p.protocol, p.port) for p in kv[0]]
        ):
            endpoints.sort(key=lambda e: ip_sort_key(e.ip))
            signature = ",".join(f"{p.name}/{p.protocol}/{p.port}" for p in slice_ports)
            for chunk in range(0, len(endpoints), MAX_ENDPOINTS_PER_SLICE):
                sig = signature if chunk == 0 else f"{signature}#{chunk // MAX_ENDPOINTS_PER_SLICE}"
                out.append(
                    EndpointSlicePlan(
                        svc.namespace,
                        _slice_name(seed, svc, sig),
                        svc.name,
                        slice_ports,
                        tuple(endpoints[chunk : chunk + MAX_ENDPOINTS_PER_SLICE]),
                    )
                )
    return tuple(out)


def _kubernetes_slice(cluster: ClusterSpec) -> EndpointSlicePlan:
    """The API server's endpoints: every control-plane node's HOST-IP on port 6443 (no nodeName)."""
    host_ips, _ = underlay_addresses(cluster)
    eps = tuple(EndpointPlan(ip, "") for ip, n in zip(host_ips, cluster.nodes) if n.role == "control-plane")
    return EndpointSlicePlan(
        "default", "kubernetes", "kubernetes", (EndpointPortPlan("https", API_SERVER_PORT, "TCP"),), eps, managed_by=""
    )
