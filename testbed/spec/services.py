"""core/v1 Service: strict decoding and the API server's validation (an extension of workloads.py).

Registered in workloads.EXTENSIONS: `decode_service(doc, ref, labels, annotations)` receives the
cursor on one `kind: Service` object and returns a frozen `ServiceSpec` (into
Manifests.services), or None having reported every problem on the cursor. Defaults are the
API server's: type ClusterIP, protocol TCP, targetPort = port, sessionAffinity None (ClientIP
timeout 10800 s), externalTrafficPolicy Cluster for externally reachable Services,
internalTrafficPolicy Cluster, allocateLoadBalancerNodePorts true.

Validation follows k8s.io/kubernetes/pkg/apis/core/validation (ValidateService): port names
required and unique when there are several ports, (port, protocol) unique, nodePort only for
NodePort/LoadBalancer and within 30000-32767, clusterIP None only for ClusterIP, externalName
required (and a DNS name) for ExternalName, externalTrafficPolicy only for externally reachable
Services, loadBalancer* fields only for LoadBalancer... Addresses (ClusterIP, NodePort,
LoadBalancer ingress) are allocated by plan/services.py, which also checks explicit ones
against the cluster (inside serviceSubnet, not already taken).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .decode import Doc
from .labels import check_labels
from .model import PROTOCOLS, Named, ObjectRef
from .names import dns1035_label_error, dns1123_subdomain_error, label_key_error, port_name_error

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
NODE_PORT_RANGE = (30000, 32767)  # kube-apiserver --service-node-port-range default
DEFAULT_AFFINITY_TIMEOUT = 10800  # core/v1 DefaultClientIPServiceAffinitySeconds
MAX_AFFINITY_TIMEOUT = 86400
HEADLESS = "None"

_SPEC_KNOWN = (
    "type",
    "clusterIP",
    "clusterIPs",
    "ports",
    "selector",
    "sessionAffinity",
    "sessionAffinityConfig",
    "externalTrafficPolicy",
    "internalTrafficPolicy",
    "externalName",
    "externalIPs",
    "loadBalancerIP",
    "loadBalancerSourceRanges",
    "loadBalancerClass",
    "allocateLoadBalancerNodePorts",
    "healthCheckNodePort",
    "publishNotReadyAddresses",
    "ipFamilies",
    "ipFamilyPolicy",
)
_SPEC_IGNORED = ("trafficDistribution",)  # topology-aware routing: one zone here, no effect
_PORT_KNOWN = ("name", "port", "targetPort", "protocol", "nodePort", "appProtocol")


@dataclass(frozen=True)
class ServicePort:
    """One entry of spec.ports. target_port is a number or a containerPort name."""

    name: str
    port: int
    protocol: str = "TCP"
    target_port: int | str = 0  # decode_service sets it to `port` when omitted
    node_port: int | None = None  # requested in the manifest; None = allocate if the type needs one
    app_protocol: str = ""


@dataclass(frozen=True)
class ServiceSpec(Named):
    """A Service as declared (after defaulting). Allocation happens in plan/services.py."""

    ref: ObjectRef
    type: str = "ClusterIP"
    ports: tuple[ServicePort, ...] = ()
    selector: Mapping[str, str] = field(default_factory=dict)  # empty: no managed endpoints
    cluster_ip: str = ""  # "" allocate, "None" headless, or the requested address
    session_affinity: str = "None"  # None | ClientIP
    affinity_timeout: int = DEFAULT_AFFINITY_TIMEOUT
    external_traffic_policy: str = ""  # Cluster | Local for externally reachable Services, else ""
    internal_traffic_policy: str = "Cluster"
    external_name: str = ""
    external_ips: tuple[str, ...] = ()
    load_balancer_ip: str = ""  # deprecated field, honoured as a request by the emulated cloud
    load_balancer_source_ranges: tuple[str, ...] = ()
    load_balancer_class: str = ""
    allocate_load_balancer_node_ports: bool = True
    health_check_node_port: int | None = None
    publish_not_ready_addresses: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    path: str = ""  # the object's path in its file ("" or "items[2]"), for messages
    # as given ("" / () when unset); the API server's defaulting against the cluster's families
    # is plan/service_families.py's (issue 15)
    ip_families: tuple[str, ...] = ()
    ip_family_policy: str = ""

    @property
    def headless(self) -> bool:
        return self.cluster_ip == HEADLESS

    @property
    def externally_accessible(self) -> bool:
        """NodePort, LoadBalancer or externalIPs (apiservice.ExternallyAccessible)."""
        return self.type in ("NodePort", "LoadBalancer") or (bool(self.external_ips) and self.type != "ExternalName")

    @property
    def needs_node_ports(self) -> bool:
        return self.type == "NodePort" or (self.type == "LoadBalancer" and self.allocate_load_balancer_node_ports)

    def field_path(self, suffix: str) -> str:
        """`spec.clusterIP` as a path inside the file (prefixed when the Service sits in a List)."""
        return f"{self.path}.{suffix}" if self.path else suffix


def _dns1123_label_error(name: str) -> str | None:
    if len(name) > 63 or not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", name):
        return f"{name!r} is not a valid port name (lower-case letters, digits and '-', at most 63)"
    return None


def _case_hint(key: str, allowed: set[str]) -> str:
    hint = {k.lower(): k for k in allowed}.get(key.lower())
    return f" (did you mean {hint!r}? field names are case-sensitive)" if hint else ""


def _check_keys(doc: Doc, known: Iterable[str], ignored: Iterable[str] = ()) -> None:
    """Doc.check_keys, plus a hint when only the case is wrong (scenario 002 writes `NodePort:`)."""
    doc.check_keys(known, ignored, _case_hint)


def _ipv4(text: str) -> ipaddress.IPv4Address | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return ip if isinstance(ip, ipaddress.IPv4Address) else None


def _special_ip_error(ip: ipaddress.IPv4Address) -> str | None:
    """ValidateNonSpecialIP: no unspecified, loopback, link-local or multicast addresses."""
    if ip.is_unspecified:
        return "may not be unspecified (0.0.0.0)"
    if ip.is_loopback:
        return "may not be in the loopback range (127.0.0.0/8)"
    if ip.is_link_local:
        return "may not be in the link-local range (169.254.0.0/16)"
    if ip.is_multicast:
        return "may not be a multicast address"
    return None


def decode_service(
    doc: Doc, ref: ObjectRef, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> ServiceSpec | None:
    """Decode and validate one Service object; problems go to `doc`, None when it has any."""
    known_problems = len(doc.problems.items)
    doc.check_keys(("apiVersion", "kind", "metadata", "spec"), ("status",))
    name_err = dns1035_label_error(ref.name)
    if name_err and not dns1123_subdomain_error(ref.name):  # workloads.py reported the others
        doc.error(name_err, "metadata.name")
    spec = doc.mapping("spec", required=True)
    if spec is None:
        return None
    _check_keys(spec, _SPEC_KNOWN, _SPEC_IGNORED)

    svc_type = spec.str("type", default="ClusterIP") or "ClusterIP"
    if svc_type not in SERVICE_TYPES:
        spec.error(f"must be one of {', '.join(SERVICE_TYPES)}, got {svc_type!r}", "type")
        svc_type = "ClusterIP"
    external_ips = _decode_external_ips(spec, svc_type)
    cluster_ip = _decode_cluster_ip(spec, svc_type)
    lb = svc_type == "LoadBalancer"
    allocate_np = spec.bool("allocateLoadBalancerNodePorts", default=None)
    if allocate_np is not None and not lb:
        spec.error("may only be used when `type` is 'LoadBalancer'", "allocateLoadBalancerNodePorts")
    ports = _decode_ports(spec, svc_type, cluster_ip == HEADLESS)

    selector = spec.string_map("selector")
    check_labels(spec.field("selector"), selector)

    affinity = spec.str("sessionAffinity", default="None") or "None"
    if affinity not in ("None", "ClientIP"):
        spec.error(f"must be None or ClientIP, got {affinity!r}", "sessionAffinity")
    timeout = _decode_affinity_config(spec, affinity)

    reachable = svc_type in ("NodePort", "LoadBalancer") or (bool(external_ips) and svc_type != "ExternalName")
    etp = spec.str("externalTrafficPolicy", default="") or ""
    if etp and etp not in ("Cluster", "Local"):
        spec.error(f"must be Cluster or Local, got {etp!r}", "externalTrafficPolicy")
        etp = ""
    elif etp and not reachable:
        spec.error(
            "may only be set for externally-accessible services (type NodePort or LoadBalancer, or with externalIPs)",
            "externalTrafficPolicy",
        )
        etp = ""
    if reachable and not etp:
        etp = "Cluster"
    itp = spec.str("internalTrafficPolicy", default="Cluster") or "Cluster"
    if itp not in ("Cluster", "Local"):
        spec.error(f"must be Cluster or Local, got {itp!r}", "internalTrafficPolicy")
        itp = "Cluster"

    external_name = spec.str("externalName", default="") or ""
    if svc_type == "ExternalName":
        if not external_name:
            spec.error("required field is missing for type ExternalName", "externalName")
        else:
            if dns1123_subdomain_error(external_name.removesuffix(".")):
                spec.error(
                    f"must be a lower-case DNS name such as db.example.com, got {external_name!r}", "externalName"
                )

    lb_ip = spec.str("loadBalancerIP", default="") or ""
    if lb_ip:
        if not lb:
            spec.error("may only be used when `type` is 'LoadBalancer'", "loadBalancerIP")
        elif _ipv4(lb_ip) is None:
            spec.error(f"{lb_ip!r} is not an IPv4 address", "loadBalancerIP")
    ranges = _decode_source_ranges(spec, lb)
    lb_class = spec.str("loadBalancerClass", default="") or ""
    if lb_class:
        if not lb:
            spec.error("may only be used when `type` is 'LoadBalancer'", "loadBalancerClass")
        elif label_key_error(lb_class):
            spec.error(f"{lb_class!r} is not a qualified name (e.g. example.com/my-lb)", "loadBalancerClass")
    hcnp = spec.int("healthCheckNodePort", default=None, minimum=1, maximum=65535)
    if hcnp is not None and not (lb and etp == "Local"):
        spec.error(
            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            "healthCheckNodePort",
        )
        hcnp = None
    publish = spec.bool("publishNotReadyAddresses", default=False)
    ip_families, ip_family_policy = _decode_ip_families(spec)

    if len(doc.problems.items) != known_problems:
        return None
    return ServiceSpec(
        ref=ref,
        type=svc_type,
        ports=ports,
        selector=selector if svc_type != "ExternalName" else {},
        cluster_ip=cluster_ip,
        session_affinity=affinity,
        affinity_timeout=timeout,
        external_traffic_policy=etp,
        internal_traffic_policy=itp,
        external_name=external_name if svc_type == "ExternalName" else "",
        external_ips=external_ips,
        load_balancer_ip=lb_ip,
        load_balancer_source_ranges=ranges,
        load_balancer_class=lb_class,
        allocate_load_balancer_node_ports=True if allocate_np is None else allocate_np,
        health_check_node_port=hcnp,
        publish_not_ready_addresses=bool(publish),
        ip_families=ip_families,
        ip_family_policy=ip_family_policy,
        labels=dict(labels),
        annotations=dict(annotations),
        path=doc.path,
    )


def _decode_cluster_ip(spec: Doc, svc_type: str) -> str:
    cluster_ip = spec.str("clusterIP", default="") or ""
    ips: list[str] = []
    for idoc in spec.items("clusterIPs"):
        if isinstance(idoc.value, str):
            ips.append(idoc.value)
        else:
            idoc.error(f"expected a string, got {idoc.value!r}")
    if len(ips) > 1:
        spec.error("only one address can be given: this cluster is IPv4 single-stack", "clusterIPs")
    if ips and cluster_ip and ips[0] != cluster_ip:
        spec.error(f"must start with clusterIP {cluster_ip!r}, got {ips[0]!r}", "clusterIPs[0]")
    cluster_ip = cluster_ip or (ips[0] if ips else "")
    where = "clusterIP" if spec.field("clusterIP").present() or not ips else "clusterIPs[0]"
    if not cluster_ip:
        return ""
    if svc_type == "ExternalName":
        spec.error("must be empty for type ExternalName", where)
        return ""
    if cluster_ip == HEADLESS:
        if svc_type != "ClusterIP":
            spec.error(f"may not be 'None' for type {svc_type} (only a ClusterIP Service can be headless)", where)
        return HEADLESS
    ip = _ipv4(cluster_ip)
    if ip is None:
        spec.error(f"{cluster_ip!r} must be 'None' or an IPv4 address", where)
        return ""
    return str(ip)


def _decode_ports(spec: Doc, svc_type: str, headless: bool) -> tuple[ServicePort, ...]:
    ports: list[ServicePort] = []
    node = spec.field("ports")
    raw = node.value if isinstance(node.value, list) else []
    if not node.present() or (isinstance(node.value, list) and not node.value):
        if not headless and svc_type != "ExternalName":
            spec.error("at least one port is required (only headless and ExternalName Services may have none)", "ports")
        return ()
    several = len(raw) > 1
    names: dict[str, int] = {}
    seen: dict[tuple[int, str], int] = {}
    node_ports: dict[tuple[int, str], int] = {}
    for i, pdoc in enumerate(spec.items("ports")):
        if not pdoc.is_mapping():
            continue
        _check_keys(pdoc, _PORT_KNOWN)
        name = pdoc.str("name", default="") or ""
        if several and not name:
            pdoc.error("required when a Service has more than one port", "name")
        elif name:
            err = _dns1123_label_error(name)
            if err:
                pdoc.error(err, "name")
            if name in names:
                pdoc.error(f"duplicate port name {name!r} (also spec.ports[{names[name]}])", "name")
            names.setdefault(name, i)
        number = pdoc.int("port", required=True, minimum=1, maximum=65535)
        protocol = pdoc.str("protocol", default="TCP") or "TCP"
        if protocol not in PROTOCOLS:
            pdoc.error(f"must be one of {', '.join(PROTOCOLS)}, got {protocol!r}", "protocol")
        target = _decode_target_port(pdoc, number)
        node_port = pdoc.int("nodePort", default=None)
        if node_port is not None:
            if svc_type in ("ClusterIP", "ExternalName"):
                pdoc.error(f"may not be used when `type` is {svc_type!r}", "nodePort")
                node_port = None
            elif not NODE_PORT_RANGE[0] <= node_port <= NODE_PORT_RANGE[1]:
                pdoc.error(
                    f"provided port {node_port} is not in the valid range. The range of valid ports is "
                    f"{NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}",
                    "nodePort",
                )
                node_port = None
            elif (node_port, protocol) in node_ports:
                pdoc.error(
                    f"duplicate nodePort {node_port}/{protocol} (also spec.ports[{node_ports[(node_port, protocol)]}])",
                    "nodePort",
                )
            else:
                node_ports[(node_port, protocol)] = i
        app = pdoc.str("appProtocol", default="") or ""
        if number is None:
            continue
        if (number, protocol) in seen:
            pdoc.error(f"duplicate port {number}/{protocol} (also spec.ports[{seen[(number, protocol)]}])")
        seen.setdefault((number, protocol), i)
        ports.append(ServicePort(name, number, protocol, target if target is not None else number, node_port, app))
    return tuple(ports)


def _decode_target_port(pdoc: Doc, number: int | None) -> int | str | None:
    """IntOrString: a number 1-65535 or an IANA service name (a containerPort's name)."""
    node = pdoc.field("targetPort")
    if not node.present():
        return number
    value: Any = node.value
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        node.error(f"expected a port number or a port name, got {value!r}")
        return None
    if isinstance(value, int):
        if value == 0:
            return number  # zero means unset, as in the API
        if not 1 <= value <= 65535:
            node.error(f"{value} is out of range [1, 65535]")
            return None
        return value
    if value.isdigit():
        node.error(f"{value!r} is a string: write the number unquoted, or a containerPort name")
        return None
    err = port_name_error(value)
    if err:
        node.error(err)
        return None
    return value


def _decode_affinity_config(spec: Doc, affinity: str) -> int:
    cfg = spec.mapping("sessionAffinityConfig")
    if cfg is None:
        return DEFAULT_AFFINITY_TIMEOUT
    if affinity != "ClientIP":
        spec.error("must not be set when sessionAffinity is None", "sessionAffinityConfig")
        return DEFAULT_AFFINITY_TIMEOUT
    cfg.check_keys(("clientIP",))
    client = cfg.mapping("clientIP")
    if client is None:
        return DEFAULT_AFFINITY_TIMEOUT
    client.check_keys(("timeoutSeconds",))
    timeout = client.int("timeoutSeconds", default=DEFAULT_AFFINITY_TIMEOUT, minimum=1, maximum=MAX_AFFINITY_TIMEOUT)
    return DEFAULT_AFFINITY_TIMEOUT if timeout is None else timeout


def _decode_external_ips(spec: Doc, svc_type: str) -> tuple[str, ...]:
    out: list[str] = []
    for idoc in spec.items("externalIPs"):
        if not isinstance(idoc.value, str):
            idoc.error(f"expected a string, got {idoc.value!r}")
            continue
        ip = _ipv4(idoc.value)
        if ip is None and ":" in idoc.value:  # IPv6: a dual-stack cluster's IPv6 proxier takes it (plan/edges6.py)
            err6 = _ipv6_external_ip(idoc.value)
            if err6.startswith("!"):
                idoc.error(err6[1:])
            else:
                out.append(err6)
            continue
        if ip is None:
            idoc.error(f"{idoc.value!r} is not an IPv4 address")
            continue
        err = _special_ip_error(ip)
        if err:
            idoc.error(err)
            continue
        out.append(str(ip))
    if out and svc_type == "ExternalName":
        spec.error("may not be set for type ExternalName", "externalIPs")
        return ()
    return tuple(out)


def _ipv6_external_ip(text: str) -> str:
    """An IPv6 externalIP in its canonical form, or "!" + the API server's complaint
    (ValidateNonSpecialIP: no unspecified, loopback, link-local or multicast address)."""
    try:
        ip = ipaddress.IPv6Address(text.strip())
    except ValueError:
        return f"!{text[:60]!r} is not an IPv4 or IPv6 address"
    if ip.is_unspecified or ip.is_loopback or ip.is_link_local or ip.is_multicast:
        return f"!{str(ip)!r} may not be unspecified, loopback, link-local or multicast"
    return str(ip)


def _decode_source_ranges(spec: Doc, lb: bool) -> tuple[str, ...]:
    out: list[str] = []
    if spec.field("loadBalancerSourceRanges").present() and not lb:
        spec.error("may only be used when `type` is 'LoadBalancer'", "loadBalancerSourceRanges")
        return ()
    for rdoc in spec.items("loadBalancerSourceRanges"):
        if not isinstance(rdoc.value, str):
            rdoc.error(f"expected a string, got {rdoc.value!r}")
            continue
        try:
            net = ipaddress.ip_network(rdoc.value.strip(), strict=False)
        except ValueError:
            rdoc.error(f"{rdoc.value!r} is not a CIDR such as 203.0.113.0/24")
            continue
        if net.version != 4:
            rdoc.error(f"{rdoc.value!r}: only IPv4 is emulated")
            continue
        out.append(str(net))
    return tuple(out)


def _decode_ip_families(spec: Doc) -> tuple[tuple[str, ...], str]:
    """(ipFamilies, ipFamilyPolicy as given, "" if unset). What the cluster can satisfy (the API
    server's defaulting, RequireDualStack on a single-stack cluster) is checked when planning
    against the cluster (plan/service_families.py)."""
    families: list[str] = []
    for fdoc in spec.items("ipFamilies"):
        if fdoc.value not in ("IPv4", "IPv6"):
            fdoc.error(f"must be IPv4 or IPv6, got {fdoc.value!r}")
        else:
            families.append(fdoc.value)
    policy = spec.str("ipFamilyPolicy", default="") or ""
    if policy and policy not in ("SingleStack", "PreferDualStack", "RequireDualStack"):
        spec.error(f"must be SingleStack, PreferDualStack or RequireDualStack, got {policy!r}", "ipFamilyPolicy")
    return tuple(families), policy
