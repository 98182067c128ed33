"""kube-proxy's configuration: a KubeProxyConfiguration document from kind's kubeadm patches (pure; spec/).

kind passes a `kubeadmConfigPatches` entry of kind KubeProxyConfiguration
(kubeproxy.config.k8s.io/v1alpha1) to kubeadm, which writes it into the kube-proxy ConfigMap;
spec/topology.py finds it among the cluster's patches (beside the node-labels patches of
spec/node_labels.py). The fields that change the rules are decoded, spelled as upstream:

- `nodePortAddresses`: CIDRs, or "primary" (the node's primary address). Unset: every local
  address in iptables mode (`-m addrtype --dst-type LOCAL`, as upstream) and "primary" in
  nftables mode (upstream's default there). Without a KubeProxyConfiguration the testbed keeps
  its historical choice, the primary address in both modes (the golden files depend on it).
- `iptables.localhostNodePorts` (default true): NodePorts answer on 127.0.0.1 in iptables mode
  when nodePortAddresses lets 127.0.0.0/8 in (route_localnet=1 on the node, and the
  KUBE-FIREWALL rule that upstream adds against CVE-2020-8558). nftables mode has none.
- `iptables.masqueradeAll` / `nftables.masqueradeAll` (the running mode's): masquerade every
  packet to a ClusterIP.
- `clusterCIDR` and `detectLocalMode` (ClusterCIDR or NodeCIDR): which sources are "local"
  (pods) for the masquerade and short-circuit rules. ClusterCIDR without a clusterCIDR: no
  detector (upstream's noop), so off-cluster sources are not masqueraded.
- `syncPeriod` / `minSyncPeriod` (top level, or in the mode's block): the lifecycle's Delays
  (lifecycle/delays.py) take them as their kube_proxy_sync_period / kube_proxy_min_sync_period.

Other fields of the document are real but do not change packets here: accepted and ignored.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ..errors import SpecError
from .decode import Doc, load_text

API = "kubeproxy.config.k8s.io/v1alpha1"
KIND = "KubeProxyConfiguration"
DETECT_LOCAL_MODES = ("ClusterCIDR", "NodeCIDR")
MAX_NODE_PORT_ADDRESSES = 32
MAX_SECONDS = 3600.0
_IGNORED = (
    "featureGates",
    "clientConnection",
    "hostnameOverride",
    "bindAddress",
    "healthzBindAddress",
    "metricsBindAddress",
    "bindAddressHardFail",
    "enableProfiling",
    "showHiddenMetricsForVersion",
    "ipvs",
    "winkernel",
    "oomScoreAdj",
    "conntrack",
    "configSyncPeriod",
    "portRange",
    "windowsRunAsService",
    "logging",
)
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(h|m|s|ms))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


@dataclass(frozen=True)
class KubeProxyConfig:
    """The decoded fields; None where the document leaves upstream's default."""

    node_port_addresses: tuple[str, ...] | None = None  # CIDRs and/or "primary"; None: the mode's default
    localhost_node_ports: bool = True  # iptables.localhostNodePorts
    masquerade_all: bool = False
    cluster_cidr: str | None = None  # None: kind's, the podSubnet
    detect_local_mode: str = "ClusterCIDR"
    sync_period: float | None = None  # seconds
    min_sync_period: float | None = None

    def node_port_ips(self, host_ip: str, mode: str) -> tuple[str, ...] | None:
        """The addresses NodePorts answer on (GetNodeIPs); None: every local address (MatchAll).

        A node's addresses here are its primary address and 127.0.0.1 (the loopback; the
        cni0 bridge's gateway address is not a NodePort address of a real node either, as its
        CIDR is never listed in practice)."""
        cidrs = self.node_port_addresses
        if cidrs is None:
            return None if mode == "iptables" else (host_ip,)
        # upstream's NewNodePortAddresses keeps the CIDRs of the proxier's family (the family of
        # host_ip: the IPv6 proxier of a dual-stack cluster gets the node's IPv6 address); none
        # left means the family's zero CIDR (every local address), as does 0.0.0.0/0 or ::/0
        version = ipaddress.ip_address(host_ip).version
        cidrs = tuple(c for c in cidrs if c == "primary" or ipaddress.ip_network(c).version == version)
        if not cidrs or "0.0.0.0/0" in cidrs or "::/0" in cidrs:
            return None
        out: list[str] = []
        for ip in (host_ip, "127.0.0.1" if version == 4 else "::1"):
            if any(
                (c == "primary" and ip == host_ip)
                or (c != "primary" and ipaddress.ip_address(ip) in ipaddress.ip_network(c))
                for c in cidrs
            ):
                out.append(ip)
        return tuple(out)

    def local_cidr(self, pod_subnet: str, node_pod_cidr: str) -> str | None:
        """The local-traffic detector's CIDR; None: no detector (upstream's noop)."""
        if self.detect_local_mode == "NodeCIDR":
            return node_pod_cidr or None
        if self.cluster_cidr is None:
            return pod_subnet
        return self.cluster_cidr or None


def seconds(text: str) -> float | None:
    """A Go duration ("30s", "1m30s", "500ms") in seconds; None when it is not one."""
    if not _DURATION.match(text):
        return None
    return sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(text))


def from_patches(patches: Doc, proxy_mode: str) -> tuple[KubeProxyConfig | None, bool]:
    """(the KubeProxyConfiguration among kind's `kubeadmConfigPatches`, or None; whether a
    patch holds a document of another kind than it and kubeadm's Init/JoinConfiguration)."""
    found: KubeProxyConfig | None = None
    foreign = False
    if not isinstance(patches.value, list):
        return None, False  # node_labels.patch_labels reports the shape
    for i, text in enumerate(patches.value):
        if not isinstance(text, str):
            continue
        pdoc = patches.child(i, text)
        try:
            docs = load_text(text, pdoc.file)
        except SpecError:
            continue  # reported by node_labels.patch_labels
        for _, raw in docs:
            if not isinstance(raw, dict) or raw.get("kind") != KIND:
                foreign = foreign or not (
                    isinstance(raw, dict) and raw.get("kind") in ("InitConfiguration", "JoinConfiguration")
                )
                continue
            doc = Doc(raw, pdoc.file, pdoc.problems, f"{pdoc.path}: {KIND}", pdoc.document)
            if found is not None:
                doc.error("a second KubeProxyConfiguration; kube-proxy reads one")
                continue
            found = decode(doc, proxy_mode)
    return found, foreign


def decode(doc: Doc, proxy_mode: str) -> KubeProxyConfig:
    """One KubeProxyConfiguration document; problems go to doc, one line each."""
    doc.check_keys(
        (
            "apiVersion",
            "kind",
            "mode",
            "nodePortAddresses",
            "iptables",
            "nftables",
            "clusterCIDR",
            "detectLocalMode",
            "detectLocal",
            "syncPeriod",
            "minSyncPeriod",
        ),
        _IGNORED,
    )
    api = doc.str("apiVersion", default=API)
    if api != API:
        doc.error(f"must be {API}, got {str(api)[:60]!r}", "apiVersion")
    mode = doc.str("mode", default="")
    if mode and mode != proxy_mode:
        doc.error(
            f"{mode[:20]!r} differs from networking.kubeProxyMode {proxy_mode!r}: kind sets it from there", "mode"
        )
    addresses = _node_port_addresses(doc)
    blocks: dict[str, tuple[bool, float | None, float | None]] = {}
    localhost = True
    for block in ("iptables", "nftables"):
        bdoc = doc.mapping(block)
        if bdoc is None:
            continue
        known = ("masqueradeAll", "masqueradeBit", "syncPeriod", "minSyncPeriod")
        bdoc.check_keys((*known, "localhostNodePorts") if block == "iptables" else known)
        if block == "iptables":
            localhost = bool(bdoc.bool("localhostNodePorts", default=True))
        bit = bdoc.int("masqueradeBit", default=14, minimum=0, maximum=31)
        if bit is not None and bit != 14:
            bdoc.error("only the default 14 (mark 0x4000) is modelled", "masqueradeBit")
        blocks[block] = (
            bool(bdoc.bool("masqueradeAll", default=False)),
            _duration(bdoc, "syncPeriod"),
            _duration(bdoc, "minSyncPeriod"),
        )
    own = blocks.get(proxy_mode, (False, None, None))
    cidr = doc.str("clusterCIDR")
    if cidr is not None and cidr != "":
        try:
            net = ipaddress.ip_network(cidr)
        except ValueError:
            doc.error(f"{cidr[:60]!r} is not a CIDR", "clusterCIDR")
        else:
            if net.version != 4:
                doc.error(f"{cidr[:60]!r}: only ipv4 clusters are emulated", "clusterCIDR")
    detect = doc.str("detectLocalMode", default="ClusterCIDR") or "ClusterCIDR"
    if detect not in DETECT_LOCAL_MODES:
        doc.error(
            f"must be one of {', '.join(DETECT_LOCAL_MODES)} (interface-based detection is not modelled), "
            f"got {detect[:40]!r}",
            "detectLocalMode",
        )
    if doc.field("detectLocal").present():
        doc.mapping("detectLocal")  # bridgeInterface / interfaceNamePrefix: only for the unmodelled modes
    sync = _duration(doc, "syncPeriod")
    min_sync = _duration(doc, "minSyncPeriod")
    return KubeProxyConfig(
        node_port_addresses=addresses,
        localhost_node_ports=localhost,
        masquerade_all=own[0],
        cluster_cidr=cidr,
        detect_local_mode=detect if detect in DETECT_LOCAL_MODES else "ClusterCIDR",
        sync_period=sync if sync is not None else own[1],
        min_sync_period=min_sync if min_sync is not None else own[2],
    )


def _node_port_addresses(doc: Doc) -> tuple[str, ...] | None:
    node = doc.field("nodePortAddresses")
    if not node.present():
        return None
    if not isinstance(node.value, list):
        node.error('expected a list of CIDRs or "primary"')
        return None
    if len(node.value) > MAX_NODE_PORT_ADDRESSES:
        node.error(f"at most {MAX_NODE_PORT_ADDRESSES} entries, got {len(node.value)}")
        return None
    out: list[str] = []
    for i, value in enumerate(node.value):
        if not isinstance(value, str):
            node.child(i, value).error('expected a CIDR or "primary"')
            continue
        if value != "primary":
            try:
                net = ipaddress.ip_network(value)
            except ValueError:
                node.child(i, value).error(f'{value[:60]!r} is not a CIDR nor "primary"')
                continue
            del net  # an IPv6 CIDR is kept: each family's proxier takes only its own (node_port_ips)
        out.append(value)
    if "primary" in out and len(out) > 1:
        node.error('"primary" cannot be combined with CIDRs')
    return tuple(out) if out else None  # an empty list is upstream's default


def _duration(doc: Doc, key: str) -> float | None:
    text = doc.str(key)
    if text is None:
        return None
    value = seconds(text)
    if value is None or value > MAX_SECONDS:
        doc.error(f'{text[:40]!r} is not a duration such as "30s" or "1m" (at most 1h)', key)
        return None
    return value
