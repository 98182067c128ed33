"""kube-proxy, pure: per-node rules from a ServicesPlan (in rules/'s model), their text; rules/ traces them.

    ruleset = build_ruleset(services, node="kind-worker", host_ip="192.168.1.3",
                            pod_subnet="10.244.0.0/16", mode="iptables")
    text = render(ruleset)                      # iptables-restore --noflush / nft -f input
    trace(ruleset, Packet("10.244.1.2", "10.96.0.10", 53, "UDP")).explain()

Modes: iptables (model: iptables.py) and nftables (nftables.py); "none" builds nothing, IPVS
is refused when the topology is loaded (no IPVS in this kernel). No kernel, no subprocess.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import lazy
from ..plan.service_model import ServicesPlan
from ..spec.kube_proxy_config import KubeProxyConfig
from .conntrack import ConntrackFlush, conntrack_flushes
from .iptables import build_iptables, localhost_node_ports
from .nftables import build_nftables
from .render import jump_rules, render, render_iptables_bootstrap, render_iptables_restore, render_nft, stale_chains

# rules/'s names, loaded when first read (testbed/lazy.py): building and loading rules never
# needs the packet tracer these re-exports bring (start-up time of `testbed run`). This package's
# own modules stay imported here: `render` names both a module and a function of it.
if TYPE_CHECKING:
    from ..rules import Outcome, Packet, Ruleset, Trace, check, trace

MODES = ("iptables", "nftables")


def build_ruleset(
    plan: ServicesPlan,
    node: str,
    host_ip: str,
    pod_subnet: str,
    mode: str,
    config: KubeProxyConfig | None = None,
    node_pod_cidr: str = "",
) -> Ruleset:
    """Everything kube-proxy in `mode` programs on `node` (whose HOST-IP takes the NodePorts
    unless `config`, the topology's KubeProxyConfiguration, says otherwise)."""
    if mode == "iptables":
        return build_iptables(plan, node, host_ip, pod_subnet, config, node_pod_cidr)
    if mode == "nftables":
        return build_nftables(plan, node, host_ip, pod_subnet, config, node_pod_cidr)
    raise ValueError(f"kube-proxy mode {mode!r} has no rules here (modes: {', '.join(MODES)})")


__all__ = [
    "MODES",
    "ConntrackFlush",
    "Outcome",
    "Packet",
    "Ruleset",
    "Trace",
    "build_iptables",
    "build_nftables",
    "build_ruleset",
    "check",
    "conntrack_flushes",
    "jump_rules",
    "localhost_node_ports",
    "render",
    "render_iptables_bootstrap",
    "render_iptables_restore",
    "render_nft",
    "stale_chains",
    "trace",
]

if not TYPE_CHECKING:  # hidden from type checkers, which keep flagging a name the package lacks
    __getattr__ = lazy.exports(__name__, __file__)
