"""A pod's own network as Kubernetes plans it: hostNetwork, hostPorts, resolv.conf, /etc/hosts
(pure; plan/).

- hostNetwork pods live in their node's network namespace: their pod IP is the node's HOST-IP
  (status.podIP = status.hostIP), their container ports are bound on the node, and the API
  server has made every containerPort a hostPort of the same number (spec/podnet.py).
- hostPorts are a scheduling filter (kube-scheduler's NodePorts plugin, plan/scheduling/ports.py:
  two pods on one node may not ask for the same protocol and port on overlapping host
  addresses, 0.0.0.0 overlapping all) and, on ordinary pods, a DNAT on the node
  (rules/portmap.py: the portmap CNI plugin).
- resolv.conf is what the kubelet writes (pkg/kubelet/network/dns GetPodDNS): dnsPolicy picks
  the base, dnsConfig is merged into it, the result is cut to the resolver's limits.
- /etc/hosts is the kubelet's managed hosts file, with the "# Entries added by HostAliases."
  block (pkg/kubelet/kubelet_pods.go).

The emulated node's own resolver: nothing may leave the emulation and the nodes have no
upstream DNS server, so the emulated kubelet runs as with `--resolv-conf=""` (the kubelet's
documented setting for a node without a resolver). dnsPolicy Default (and ClusterFirst on a
hostNetwork pod) then gives `nameserver 127.0.0.1` and `search .`, as the kubelet writes it:
a lookup is refused at once by the pod's (or node's) own loopback, never sent to the VM's
resolver; dnsConfig can still add nameservers (e.g. kube-dns's ClusterIP). The node's own
/etc/hosts is what Docker writes into a kind node: the localhost lines and `<HOST-IP> <node>`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..spec.model import PodTemplate
from .pod import PodDnsPlan, PodPlan
from .scheduling.ports import host_ports

CLUSTER_DOMAIN = "cluster.local"
DEFAULT_OPTIONS = ("ndots:5",)  # the kubelet's defaultDNSOptions for ClusterFirst
# The resolver's limits the kubelet cuts to (formDNSConfigFitsLimits / validation).
MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048
HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"
HOSTS_HEADER_HOST_NETWORK = "# Kubernetes-managed hosts file (host network).\n"


def network_fields(template: PodTemplate) -> dict[str, Any]:
    """PodPlan's pod-networking fields for a pod of `template`."""
    dns = template.dns_config
    return {
        "host_network": template.host_network,
        "host_ports": host_ports(template),
        "dns": PodDnsPlan(
            template.dns_policy,
            dns.nameservers if dns else (),
            dns.searches if dns else (),
            dns.options if dns else (),
        ),
        "host_aliases": tuple((a.ip, a.hostnames) for a in template.host_aliases),
    }


def same_network(pod: PodPlan, template: PodTemplate) -> bool:
    """A bare pod whose networking fields changed is a new pod (pods are immutable)."""
    fields = network_fields(template)
    return all(getattr(pod, k) == v for k, v in fields.items())


# -- resolv.conf -----------------------------------------------------------------------------------


def dns_type(pod: PodPlan) -> str:
    """The kubelet's getPodDNSType: "none", "cluster" or "host"."""
    policy = pod.dns.policy
    if policy == "None":
        return "none"
    if policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not pod.host_network):
        return "cluster"
    return "host"  # Default; ClusterFirst on a hostNetwork pod falls back to it


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def resolver(
    pod: PodPlan, cluster_dns: str | None, domain: str = CLUSTER_DOMAIN
) -> tuple[list[str], list[str], list[str]]:
    """(nameservers, searches, options) of the pod, as the kubelet's GetPodDNS computes them."""
    kind = dns_type(pod)
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if kind == "cluster" and not cluster_dns:
        kind = "host"  # the kubelet falls back to Default when it knows no cluster DNS
    if kind == "cluster":
        servers = [cluster_dns or ""]
        searches = [f"{pod.namespace}.svc.{domain}", f"svc.{domain}", domain]  # + the node's (none)
        options = list(DEFAULT_OPTIONS)
    elif kind == "host":
        servers, searches = ["127.0.0.1"], ["."]  # the node has no resolver: --resolv-conf=""
    servers = _unique(servers + list(pod.dns.nameservers))
    searches = _unique(searches + list(pod.dns.searches))
    options = _merge_options(options, pod.dns.options)
    # formDNSConfigFitsLimits: the resolver reads at most 3 nameservers and 32 search paths
    searches = searches[:MAX_SEARCHES]
    while searches and len(" ".join(searches)) > MAX_SEARCH_CHARS:
        searches.pop()
    return servers[:MAX_NAMESERVERS], searches, options


def _merge_options(base: list[str], given: Iterable[tuple[str, str | None]]) -> list[str]:
    """mergeDNSOptions: dnsConfig's options override the base's of the same name. The kubelet
    walks a Go map (random order); sorting by name keeps the plan deterministic."""
    merged: dict[str, str] = {}
    for op in base:
        key, _, text = op.partition(":")
        merged[key] = text
    for name, value in given:
        merged[name] = value or ""
    return [f"{n}:{v}" if v else n for n, v in sorted(merged.items())]


def resolv_conf(pod: PodPlan, cluster_dns: str | None, domain: str = CLUSTER_DOMAIN) -> str:
    """The pod's /etc/resolv.conf as the container runtime writes the kubelet's DNS config."""
    servers, searches, options = resolver(pod, cluster_dns, domain)
    lines = []
    if searches:
        lines.append("search " + " ".join(searches))
    lines += [f"nameserver {s}" for s in servers]
    if options:
        lines.append("options " + " ".join(options))
    return "".join(line + "\n" for line in lines)


# -- /etc/hosts ------------------------------------------------------------------------------------


def node_hosts(node: str, host_ip: str) -> str:
    """An emulated node's own /etc/hosts (what Docker writes into a kind node container)."""
    return (
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
        f"{host_ip}\t{node}\n"
    )


def _alias_block(pod: PodPlan) -> str:
    if not pod.host_aliases:
        return ""
    return "\n# Entries added by HostAliases.\n" + "".join(
        f"{ip}\t{chr(9).join(names)}\n" for ip, names in pod.host_aliases
    )


def hosts_file(pod: PodPlan, node_ip: str, hostname: str = "", domain: str = "") -> str:
    """The kubelet's /etc/hosts: managedHostsFileContent (its own IP and name), or on a
    hostNetwork pod nodeHostsFileContent (the node's file); then the HostAliases block.
    `hostname`/`domain`: the pod's hostname (default its name) and, with a subdomain, its domain."""
    if pod.host_network:
        return HOSTS_HEADER_HOST_NETWORK + node_hosts(pod.node, node_ip) + _alias_block(pod)
    # spec.hostname and spec.subdomain (a StatefulSet pod's: its name and serviceName) give the
    # kubelet's `<ip> <hostname>.<subdomain>.<ns>.svc.<domain> <hostname>` line
    name = hostname or pod.hostname or pod.name
    if not domain and pod.subdomain:
        domain = f"{pod.subdomain}.{pod.namespace}.svc.{CLUSTER_DOMAIN}"
    own = f"{pod.ip}\t{name}.{domain}\t{name}\n" if domain else f"{pod.ip}\t{name}\n"
    return (
        HOSTS_HEADER
        + "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        + "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n"
        + own
        + _alias_block(pod)
    )


# -- the API's view (kubectl get pod -o yaml) ---------------------------------------------------


def port_fields(pod: PodPlan, port: int, protocol: str) -> dict[str, Any]:
    """A container port's hostPort and hostIP, as the API server stores them (none: {})."""
    for hp in pod.host_ports:
        if hp.container_port == port and hp.protocol == protocol:
            return {"hostPort": hp.host_port, **({"hostIP": hp.host_ip} if hp.host_ip else {})}
    return {}


def spec_fields(pod: PodPlan) -> dict[str, Any]:
    """The PodSpec's networking fields as the API server returns them (dnsPolicy defaulted)."""
    out: dict[str, Any] = {"dnsPolicy": pod.dns.policy}
    if pod.host_network:
        out["hostNetwork"] = True
    if pod.dns.nameservers or pod.dns.searches or pod.dns.options:
        config: dict[str, Any] = {}
        if pod.dns.nameservers:
            config["nameservers"] = list(pod.dns.nameservers)
        if pod.dns.searches:
            config["searches"] = list(pod.dns.searches)
        if pod.dns.options:
            config["options"] = [{"name": n, **({"value": v} if v is not None else {})} for n, v in pod.dns.options]
        out["dnsConfig"] = config
    if pod.host_aliases:
        out["hostAliases"] = [{"ip": ip, "hostnames": list(names)} for ip, names in pod.host_aliases]
    return out
