"""The ServicesPlan: allocated Services and their EndpointSlices, as plain data (output of plan/services.py).

What the API server, the EndpointSlice controller and the emulated cloud's service controller
would have written into etcd: every Service with its ClusterIP, NodePorts and
status.loadBalancer.ingress, and the EndpointSlices computed from selectors. kubeproxy/ turns
it into per-node rules; the lead's DNS, `get svc` and `get endpointslices` read it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from .jsonvalue import Json, to_json


@dataclass(frozen=True)
class ServicePortPlan:
    name: str
    port: int
    protocol: str
    target_port: int | str  # a number, or a containerPort name resolved per endpoint pod
    node_port: int | None = None
    app_protocol: str = ""


@dataclass(frozen=True)
class ServicePlan:
    namespace: str
    name: str
    type: str  # ClusterIP | NodePort | LoadBalancer | ExternalName
    cluster_ip: str  # an address, "None" (headless) or "" (ExternalName)
    ports: tuple[ServicePortPlan, ...]
    selector: Mapping[str, str]
    session_affinity: str = "None"
    affinity_timeout: int = 10800
    external_traffic_policy: str = ""  # Cluster | Local when externally reachable, else ""
    internal_traffic_policy: str = "Cluster"
    external_name: str = ""
    external_ips: tuple[str, ...] = ()
    load_balancer_ingress: tuple[str, ...] = ()  # status.loadBalancer.ingress[].ip; empty = <pending>
    load_balancer_source_ranges: tuple[str, ...] = ()
    health_check_node_port: int | None = None
    publish_not_ready_addresses: bool = False
    builtin: bool = False  # created by the API server itself (default/kubernetes)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def headless(self) -> bool:
        return self.cluster_ip == "None"

    @property
    def proxied(self) -> bool:
        """kube-proxy programs rules for it (not headless, not ExternalName)."""
        return self.type != "ExternalName" and not self.headless and bool(self.cluster_ip)

    @property
    def externally_accessible(self) -> bool:
        return any(p.node_port for p in self.ports) or bool(self.load_balancer_ingress) or bool(self.external_ips)

    def port(self, name: str) -> ServicePortPlan:
        for p in self.ports:
            if p.name == name:
                return p
        raise KeyError(name)

    # -- kubectl columns -----------------------------------------------------------------
    def cluster_ip_column(self) -> str:
        return self.cluster_ip or "<none>"

    def external_ip_column(self) -> str:
        if self.type == "ExternalName":
            return self.external_name
        ips = list(self.load_balancer_ingress) + [
            ip for ip in self.external_ips if ip not in self.load_balancer_ingress
        ]
        if ips:
            return ",".join(ips)
        return "<pending>" if self.type == "LoadBalancer" else "<none>"

    def ports_column(self) -> str:
        if not self.ports:
            return "<none>"
        return ",".join(
            f"{p.port}:{p.node_port}/{p.protocol}" if p.node_port else f"{p.port}/{p.protocol}" for p in self.ports
        )


@dataclass(frozen=True)
class EndpointPortPlan:
    """discovery/v1 EndpointPort: the service port's name and protocol, the resolved target port."""

    name: str
    port: int
    protocol: str
    app_protocol: str = ""


@dataclass(frozen=True)
class EndpointPlan:
    """discovery/v1 Endpoint (one address), with its conditions and where it runs."""

    ip: str
    node: str  # "" when not a pod on a node (the kubernetes Service)
    pod: str = ""  # targetRef: the pod's name in the slice's namespace
    ready: bool = True
    serving: bool = True
    terminating: bool = False


@dataclass(frozen=True)
class EndpointSlicePlan:
    namespace: str
    name: str
    service: str
    ports: tuple[EndpointPortPlan, ...]
    endpoints: tuple[EndpointPlan, ...]
    address_type: str = "IPv4"
    managed_by: str = "endpointslice-controller.k8s.io"

    def ports_column(self) -> str:
        return ",".join(str(p.port) for p in self.ports) if self.ports else "<unset>"

    def endpoints_column(self, limit: int = 3) -> str:
        ips = [e.ip for e in self.endpoints]
        if not ips:
            return "<none>"
        more = f" + {len(ips) - limit} more..." if len(ips) > limit else ""
        return ",".join(ips[:limit]) + more


@dataclass(frozen=True)
class ResolvedEndpoint:
    """One backend of one service port, as kube-proxy sees it (EndpointsMap entry)."""

    ip: str
    port: int
    node: str
    pod: str = ""
    ready: bool = True
    serving: bool = True
    terminating: bool = False

    def __str__(self) -> str:
        # Go's net.JoinHostPort, as kube-proxy writes an endpoint (and hashes its chain names)
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class ServicesPlan:
    seed: int
    service_subnet: str
    lb_pool: str | None
    services: tuple[ServicePlan, ...]
    slices: tuple[EndpointSlicePlan, ...]
    warnings: tuple[str, ...] = ()

    def service(self, namespace: str, name: str) -> ServicePlan:
        for s in self.services:
            if s.namespace == namespace and s.name == name:
                return s
        raise KeyError(f"{namespace}/{name}")

    def find(self, key: str) -> ServicePlan | None:
        """A Service by `ns/name`, or by name when that is unique across namespaces."""
        if "/" in key:
            ns, name = key.split("/", 1)
            hits = [s for s in self.services if s.namespace == ns and s.name == name]
        else:
            hits = [s for s in self.services if s.name == key]
        return hits[0] if len(hits) == 1 else None

    def slices_of(self, namespace: str, name: str) -> tuple[EndpointSlicePlan, ...]:
        return tuple(s for s in self.slices if s.namespace == namespace and s.service == name)

    def endpoints(
        self,
        namespace: str,
        name: str,
        port_name: str = "",
        protocol: str | None = None,
    ) -> tuple[ResolvedEndpoint, ...]:
        """The backends of one service port, sorted by "ip:port" as kube-proxy sorts them."""
        # Memoized on the (immutable) plan: every node's kube-proxy asks for the same ports, and
        # a Service of 1,000 endpoints cost 2-3 ms a call, 50 calls a change. Not a field, so
        # that equality, asdict() and replace() never see it.
        memo: dict[tuple[str, str, str, str | None], tuple[ResolvedEndpoint, ...]] = self.__dict__.setdefault(
            "_endpoints_memo", {}
        )
        key = (namespace, name, port_name, protocol)
        found = memo.get(key)
        if found is None:
            found = memo[key] = self._endpoints(namespace, name, port_name, protocol)
        return found

    def _endpoints(
        self, namespace: str, name: str, port_name: str, protocol: str | None
    ) -> tuple[ResolvedEndpoint, ...]:
        svc = self.service(namespace, name)
        if protocol is None:
            protocol = svc.port(port_name).protocol
        out: dict[str, ResolvedEndpoint] = {}
        for sl in self.slices_of(namespace, name):
            for ep_port in sl.ports:
                if ep_port.name != port_name or ep_port.protocol != protocol:
                    continue
                for ep in sl.endpoints:
                    r = ResolvedEndpoint(ep.ip, ep_port.port, ep.node, ep.pod, ep.ready, ep.serving, ep.terminating)
                    out.setdefault(str(r), r)
        return tuple(out[k] for k in sorted(out))

    def load_balancer_targets(
        self,
        namespace: str,
        name: str,
        nodes: tuple[str, ...] | list[str],
    ) -> tuple[str, ...]:
        """The nodes an emulated cloud load balancer sends traffic to.

        Cluster policy: every node. Local policy: only nodes whose health check passes, i.e.
        with a ready local endpoint (what healthCheckNodePort reports to a cloud LB).
        """
        svc = self.service(namespace, name)
        if svc.external_traffic_policy != "Local":
            return tuple(nodes)
        local = {e.node for p in svc.ports for e in self.endpoints(namespace, name, p.name, p.protocol) if e.ready}
        return tuple(n for n in nodes if n in local)

    def cluster_ips(self) -> dict[str, str]:
        """ClusterIP -> `ns/name`, for reverse lookups (e.g. naming a probe's destination)."""
        return {s.cluster_ip: s.key for s in self.services if s.proxied}

    def to_dict(self) -> dict[str, Json]:
        return {f: to_json(getattr(self, f)) for f in self.__dataclass_fields__}


def ip_sort_key(ip: str) -> int:
    return int(ipaddress.ip_address(ip))
