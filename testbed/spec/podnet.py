"""Decode the pod fields that shape a pod's own network: hostNetwork, hostPort/hostIP,
dnsPolicy, dnsConfig and hostAliases (pure; spec/).

Called by spec/workloads.py for every pod spec (bare pods and templates). It checks what the
API server checks (k8s.io/kubernetes pkg/apis/core/validation: validateHostNetwork,
AccumulateUniqueHostPorts, validateDNSPolicy, validatePodDNSConfig, validateHostAliases) and
applies its defaulting: on a hostNetwork pod every containerPort is a hostPort of the same
number (SetDefaults_PodSpec). plan/podnet.py plans what these fields mean.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable
from typing import Any

from ..errors import excerpt
from .decode import Doc
from .model import Container, ContainerPort, DnsConfig, HostAlias
from .names import dns1123_subdomain_error

# The PodSpec fields decoded here (spec/workloads.py lists them as known).
POD_FIELDS = ("hostNetwork", "dnsPolicy", "dnsConfig", "hostAliases")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
# core/v1 validation's limits (MaxDNSNameservers, MaxDNSSearchPaths, MaxDNSSearchListChars)
MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048
# Bounds of our own (the API server has none): an /etc/hosts of reasonable size.
MAX_HOST_ALIASES = 1000
MAX_HOSTNAMES = 100
MAX_DNS_OPTIONS = 100


def _ip_error(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return f"{excerpt(value)}: must be a valid IP address"
    return None


def decode_host_port(pdoc: Doc) -> tuple[int, str]:
    """A container port's (hostPort, hostIP); (0, "") when it has none."""
    host_port = pdoc.int("hostPort", default=0, minimum=0, maximum=65535) or 0
    host_ip = pdoc.str("hostIP", default="") or ""
    if host_ip:
        err = _ip_error(host_ip)
        if err:
            pdoc.error(err, "hostIP")
            host_ip = ""
        elif ipaddress.ip_address(host_ip).version != 4:
            pdoc.error(f"{excerpt(host_ip)}: the emulated clusters are IPv4 only", "hostIP")
            host_ip = ""
    return host_port, host_ip


def decode_pod_network(spec: Doc, containers: list[Container]) -> tuple[list[Container], dict[str, Any]]:
    """(the containers with hostNetwork's defaulting applied, PodTemplate's network fields)."""
    host_network = bool(spec.bool("hostNetwork", default=False))
    containers = _host_ports(spec, containers, host_network)
    policy = spec.str("dnsPolicy", default="ClusterFirst") or "ClusterFirst"
    if policy not in DNS_POLICIES:
        spec.error(
            f"Unsupported value: {excerpt(policy)}: supported values: {', '.join(repr(p) for p in DNS_POLICIES)}",
            "dnsPolicy",
        )
        policy = "ClusterFirst"
    dns_config = _dns_config(spec)
    if policy == "None":
        if not spec.field("dnsConfig").present():
            spec.error("must provide `dnsConfig` when `dnsPolicy` is None", "dnsConfig")
        elif dns_config is not None and not dns_config.nameservers:
            spec.field("dnsConfig").error(
                "must provide at least one DNS nameserver when `dnsPolicy` is None", "nameservers"
            )
    return containers, {
        "host_network": host_network,
        "dns_policy": policy,
        "dns_config": dns_config,
        "host_aliases": _host_aliases(spec),
    }


def _host_ports(spec: Doc, containers: list[Container], host_network: bool) -> list[Container]:
    """hostNetwork's defaulting and checks, and one hostPort per (hostIP, protocol, port) in a pod."""
    seen: set[tuple[str, str, int]] = set()
    out: list[Container] = []
    for ci, container in enumerate(containers):
        ports: list[ContainerPort] = []
        for pi, port in enumerate(container.ports):
            where = spec.field("containers").child(ci, None).field("ports").child(pi, None)
            if host_network:
                if port.host_port and port.host_port != port.container_port:
                    where.error("must match `hostPort` when `hostNetwork` is true", "containerPort")
                port = dataclasses.replace(port, host_port=port.container_port)
            if port.host_port:
                key = (port.host_ip, port.protocol, port.host_port)
                if key in seen:
                    where.error(f"Duplicate value: {port.protocol.lower()}/{port.host_port}", "hostPort")
                seen.add(key)
            ports.append(port)
        out.append(dataclasses.replace(container, ports=tuple(ports)))
    return out


def _strings(doc: Doc, key: str, limit: int, too_many: str, check: Callable[[str], str | None]) -> list[str]:
    """A list of strings, at most `limit` (`too_many` says so), each passing `check`."""
    out: list[str] = []
    for i, node in enumerate(doc.items(key)):
        if i >= limit:
            doc.error(too_many, key)
            break
        if not isinstance(node.value, str):
            node.error(f"expected a string, got {excerpt(node.value)}")
            continue
        err = check(node.value)
        if err:
            node.error(err)
        else:
            out.append(node.value)
    return out


def _dns_config(spec: Doc) -> DnsConfig | None:
    doc = spec.mapping("dnsConfig")
    if doc is None:
        return None
    doc.check_keys(("nameservers", "searches", "options"))
    nameservers = _strings(
        doc, "nameservers", MAX_NAMESERVERS, f"must not have more than {MAX_NAMESERVERS} nameservers", _ip_error
    )
    searches = _strings(
        doc,
        "searches",
        MAX_SEARCHES,
        f"must not have more than {MAX_SEARCHES} search paths",
        lambda v: dns1123_subdomain_error(v.removesuffix(".")),  # a trailing dot is allowed
    )
    if len(" ".join(searches)) > MAX_SEARCH_CHARS:
        doc.error(
            f"must not have more than {MAX_SEARCH_CHARS} characters (including spaces) in the search list", "searches"
        )
    options: list[tuple[str, str | None]] = []
    for i, node in enumerate(doc.items("options")):
        if i >= MAX_DNS_OPTIONS:
            doc.error(f"at most {MAX_DNS_OPTIONS} options", "options")
            break
        if not node.is_mapping():
            continue
        node.check_keys(("name", "value"))
        name = node.str("name", required=True)
        value = node.str("value")
        if name == "":
            node.error("Required value", "name")
        if name:
            options.append((name, value))
    return DnsConfig(tuple(nameservers), tuple(searches), tuple(options))


def _host_aliases(spec: Doc) -> tuple[HostAlias, ...]:
    out: list[HostAlias] = []
    for i, node in enumerate(spec.items("hostAliases")):
        if i >= MAX_HOST_ALIASES:
            spec.error(f"at most {MAX_HOST_ALIASES} host aliases", "hostAliases")
            break
        if not node.is_mapping():
            continue
        node.check_keys(("ip", "hostnames"))
        ip = node.str("ip", required=True)
        err = _ip_error(ip) if isinstance(ip, str) else None
        if err:
            node.error(err, "ip")
        names = _strings(
            node, "hostnames", MAX_HOSTNAMES, f"at most {MAX_HOSTNAMES} hostnames", dns1123_subdomain_error
        )
        if isinstance(ip, str) and not err:
            out.append(HostAlias(ip, tuple(names)))
    return tuple(out)
