"""The conformance suite's cluster variants over IPv6 (issue 15; pure): the model's 3-node
cluster, single-stack IPv6 or dual-stack, in each routing mode and kube-proxy mode.

`mode_topology(family, routing, proxy)` is the text of a kind config (with its TestbedConfig)
for `testbed conformance --topology`: topologies/ipv6.yaml's cluster for ipv6 (IPv6 nodes, pods
and underlay only), data/three-nodes-dual.yaml's for dual, with `routing` and `kubeProxyMode`
set. benchmarks/conformance_modes.py runs the whole suite in all 16 (FAMILIES x ROUTINGS x
PROXIES), or with --tiered the tiered one; tests/integration/test_conformance_modes.py a subset
of it in each, and `tiered_slice` of the tiered suite: every tiered case in exactly one variant.
"""

from __future__ import annotations

FAMILIES = ("ipv6", "dual")
ROUTINGS = ("host-gw", "cloud-routes", "vxlan", "bgp")
PROXIES = ("iptables", "nftables")

_HEAD = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes: [{role: control-plane}, {role: worker}, {role: worker}]\n"
_NETWORKING = {
    # topologies/ipv6.yaml: kind's IPv6 defaults (pods fd00:10:244::/56, a /64 per node)
    "ipv6": "networking:\n  ipFamily: ipv6\n",
    # data/three-nodes-dual.yaml: the IPv4 model's ranges, IPv4 first, with kind's IPv6 defaults
    "dual": (
        "networking:\n  ipFamily: dual\n  podSubnet: 10.244.0.0/16,fd00:10:244::/56\n"
        "  serviceSubnet: 10.96.0.0/12,fd00:10:96::/112\n"
    ),
}
_TESTBED = {
    "ipv6": 'underlay: {subnetIPv6: "fd00:192:168:1::/64"}\nexternalHosts: [{name: laptop}]\n',
    "dual": (
        'underlay: {subnet: 192.168.1.0/24, subnetIPv6: "fd00:192:168:1::/64"}\npodCIDRPrefix: 24\n'
        "externalHosts: [{name: laptop, ip: 192.168.1.10}]\n"
    ),
}


def mode_topology(family: str, routing: str, proxy: str) -> str:
    """The kind config of the model cluster in `family` (FAMILIES), `routing` and `proxy` mode."""
    if family not in FAMILIES or routing not in ROUTINGS or proxy not in PROXIES:
        raise ValueError(f"no such variant: {family[:20]} {routing[:20]} {proxy[:20]}")
    return (
        f"# the conformance model's cluster, {family}, routing {routing}, kube-proxy {proxy}\n"
        + _HEAD
        + _NETWORKING[family]
        + f"  kubeProxyMode: {proxy}\n---\napiVersion: testbed/v1alpha1\nkind: TestbedConfig\n"
        + _TESTBED[family]
        + f"routing: {routing}\n"
    )


def variants() -> list[tuple[str, str, str]]:
    """The 16 variants, (family, routing, proxy), in the campaign's order."""
    return [(f, r, p) for f in FAMILIES for r in ROUTINGS for p in PROXIES]


def tiered_slice(family: str, routing: str, proxy: str, names: list[str]) -> tuple[str, ...]:
    """The tiered cases (`names`, in the suite's order) one variant runs in CI: every 16th from
    the variant's position, so the 16 slices share the suite out (2 or 3 cases each of its 40),
    each case run in one variant, with the cost of 2.5 cases a variant instead of 40."""
    every = variants()
    return tuple(names[every.index((family, routing, proxy)) :: len(every)])
