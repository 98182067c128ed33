"""kube-proxy's IPv6 proxier (issue 15): table ip6 kube-proxy in nftables mode, per family.

Upstream runs one proxier per family; in a dual-stack cluster the IPv6 one compiles the same
rules over the IPv6 view of the plan (emu/dualstack.py ipv6_view). Here: the ip6 table as
upstream lays it out, packets traced through it, partial syncs that equal a full load, the
per-family nodePortAddresses and local-traffic detector, and changes travelling to the IPv6
proxier as they do to the IPv4 one (each node's view, terminating endpoints).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import pathlib

import pytest
import yaml

from testbed.emu.dualstack import ipv6_view
from testbed.kubeproxy import build_ruleset, render
from testbed.kubeproxy.conntrack import conntrack_flushes
from testbed.kubeproxy.iptables import localhost_node_ports
from testbed.kubeproxy.partial import needs_full_sync, render_sync
from testbed.kubeproxy.replay import replay, summary
from testbed.plan.build import plan_cluster
from testbed.plan.conditions import PodConditions
from testbed.plan.dualstack import with_known_pods
from testbed.plan.services import update_endpoints
from testbed.rules import Packet, trace
from testbed.spec.kube_proxy_config import KubeProxyConfig
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from .test_kubeproxy_partial import nft_apply

REPO = pathlib.Path(__file__).resolve().parents[2]
TOPOLOGY = REPO / "topologies" / "dual-stack-nftables.yaml"
SERVICES = REPO / "manifests" / "dual-stack-services.yaml"
FLOWS = REPO / "tests" / "upstream" / "kube_proxy_flows.yaml"


def _plan(topology: pathlib.Path = TOPOLOGY):
    plan = plan_cluster(load_topology(str(topology)), load_manifests([str(SERVICES)]))
    assert plan.dual is not None and plan.services is not None
    return plan


def test_the_ip6_table_is_laid_out_as_upstreams():
    plan = _plan()
    view = ipv6_view(plan)
    assert view is not None and view.kube_proxy_mode == "nftables"
    dual = plan.dual
    node6 = dual.node("kind-worker").host_ip
    rs = view.kube_proxy_rulesets["kind-worker"]
    (table,) = rs.tables
    assert (table.family, table.name) == ("ip6", "kube-proxy")
    text = render(rs)
    assert 'add table ip6 kube-proxy { comment "rules for kube-proxy" ; }' in text
    assert "ipv4_addr" not in text and " ip daddr" not in text and " ip saddr" not in text
    assert "add map ip6 kube-proxy service-ips { type ipv6_addr . inet_proto . inet_service : verdict" in text
    assert "add rule ip6 kube-proxy services ip6 daddr . meta l4proto . th dport vmap @service-ips" in text
    assert f"add element ip6 kube-proxy nodeport-ips {{ {node6} }}" in text
    assert f"ip6 daddr {{ {dual.service_subnet} }} drop" in text  # unallocated ClusterIPs
    # ClusterIPs of the dual-stack Services only, each its IPv6 one; endpoints by their IPv6
    prefer6 = dual.services["default/echo-prefer"].cluster_ips[1]
    require6 = dual.services["default/echo-require"].cluster_ips[1]
    assert set(table.set("cluster-ips").elements) == {prefer6, require6}
    for ip6 in (dual.pods[p.key] for p in plan.pods if p.labels.get("app") == "echo"):
        assert f"dnat to [{ip6}]:80" in text
        assert f"__{ip6.replace(':', '.')}/80" in text  # upstream's chain names: dots for colons
    # the IPv4 proxier's table is as it was: table ip, IPv4 only
    (table4,) = plan.kube_proxy_rulesets["kind-worker"].tables
    assert table4.family == "ip" and "fd00:" not in render(plan.kube_proxy_rulesets["kind-worker"])


def test_ipv6_packets_through_the_ip6_table():
    plan = _plan()
    view = ipv6_view(plan)
    assert view is not None
    dual = plan.dual
    echo = [p for p in plan.pods if p.labels.get("app") == "echo"]
    client = echo[0]
    rs = view.kube_proxy_rulesets[client.node]
    prefer6 = dual.services["default/echo-prefer"].cluster_ips[1]
    t = trace(rs, Packet(dual.pods[client.key], prefer6, 80, "TCP", "pod"), pod_cidr=dual.node(client.node).pod_cidr)
    assert set(t.endpoints()) == {f"[{dual.pods[p.key]}]:80" for p in echo} and t.masqueraded is None  # hairpin
    laptop6 = dual.externals["laptop"]
    node6 = dual.node(client.node).host_ip
    t = trace(rs, Packet(laptop6, node6, 30080, "TCP", "underlay"))
    assert set(t.endpoints()) == {f"[{dual.pods[p.key]}]:80" for p in echo} and t.masqueraded is True
    # no endpoint of UDP port 80 on a ClusterIP: rejected (ICMPv6 port unreachable)
    assert trace(rs, Packet(dual.pods[client.key], prefer6, 80, "UDP", "pod")).verdicts == {"reject"}
    # netfilter never shows an IPv6 packet to table ip kube-proxy: untouched there
    rs4 = plan.kube_proxy_rulesets[client.node]
    assert trace(rs4, Packet(dual.pods[client.key], prefer6, 80, "TCP", "pod")).verdicts == {"accept"}


def _steps(plan):
    services, dual = plan.services, plan.dual
    echo = sorted(p.full_name for p in plan.pods if p.labels.get("app") == "echo")
    pods = [p for p in plan.pods if p.namespace == "default"]
    sticky = dataclasses.replace(
        services,
        services=tuple(
            dataclasses.replace(s, session_affinity="ClientIP") if s.name == "echo-prefer" else s
            for s in services.services
        ),
    )
    v4 = [
        ("base", services),
        ("one echo pod gone", update_endpoints(services, [p for p in pods if p.full_name != echo[0]])),
        ("one not ready", update_endpoints(services, pods, not_ready=[echo[1]])),
        ("every one terminating", update_endpoints(services, pods, terminating=echo)),
        ("ClientIP affinity", sticky),
        ("every endpoint gone", update_endpoints(services, [])),
        ("base again", services),
    ]
    return [(what, dual.ipv6_services(s)) for what, s in v4]


@pytest.mark.parametrize("node", ["kind-control-plane", "kind-worker", "kind-worker2"])
def test_ip6_partial_syncs_through_changes_equal_a_full_load(node):
    plan = _plan()
    dual = plan.dual
    n6 = dual.node(node)
    rulesets = [
        (what, build_ruleset(s, node, n6.host_ip, dual.pod_subnet, "nftables", None, n6.pod_cidr))
        for what, s in _steps(plan)
    ]

    def apply(state: dict, text: str) -> None:
        assert "table ip " not in text and " ip kube-proxy " not in text, "an IPv4 line in the ip6 sync"
        nft_apply(state, text.replace(" ip6 kube-proxy", " ip kube-proxy"))  # the model's table name

    live: dict = {}
    first = render_sync(rulesets[0][1], None, needs_full_sync(None, False, 0.0))
    assert first.full
    apply(live, first.text)
    partial = 0
    for (_, previous), (what, ruleset) in zip(rulesets, rulesets[1:]):
        sync = render_sync(ruleset, previous, full=False)
        assert not sync.full, what
        apply(live, sync.text)
        fresh: dict = {}
        apply(fresh, render(ruleset))
        assert live == fresh, what
        partial += bool(sync.text)
    assert partial == len(rulesets) - 1  # every step changes the IPv6 endpoints of this node
    # a partial sync names only what changed: the affinity step touches echo-prefer alone
    sync = render_sync(rulesets[4][1], rulesets[3][1], full=False).text
    touched = [line for line in sync.splitlines() if line.startswith(("add chain", "flush chain", "add set"))]
    assert touched and all("default/echo-prefer/" in line for line in touched)


def test_node_port_addresses_and_the_local_detector_per_family():
    v4, v6 = "192.168.1.3", "fd00:192:168:1::3"
    both = KubeProxyConfig(node_port_addresses=("192.168.1.0/24", "fd00:192:168:1::/64"))
    assert both.node_port_ips(v4, "nftables") == (v4,) and both.node_port_ips(v6, "nftables") == (v6,)
    only4 = KubeProxyConfig(node_port_addresses=("192.168.1.0/24",))
    assert only4.node_port_ips(v6, "nftables") is None  # none of its family: every local address
    assert KubeProxyConfig(node_port_addresses=("primary",)).node_port_ips(v6, "iptables") == (v6,)
    assert KubeProxyConfig(node_port_addresses=("::/0",)).node_port_ips(v6, "nftables") is None
    # localhost NodePorts are IPv4 only: never on ::1
    assert localhost_node_ports(KubeProxyConfig(), v4) and not localhost_node_ports(KubeProxyConfig(), v6)
    plan = _plan()
    dual = plan.dual
    services6 = dual.ipv6_services(plan.services)
    node = dual.node("kind-worker")
    for mode, loopback in (("nftables", "ip6 daddr != ::1"), ("iptables", "! -d ::1/128")):
        text = render(build_ruleset(services6, node.name, node.host_ip, dual.pod_subnet, mode, only4, node.pod_cidr))
        assert loopback in text and "127.0.0.0/8" not in text, mode
    # an IPv4 clusterCIDR is no detector for the IPv6 proxier (upstream's per-family detectors)
    cidr4 = KubeProxyConfig(cluster_cidr="10.244.0.0/16")
    text = render(build_ruleset(services6, node.name, node.host_ip, dual.pod_subnet, "nftables", cidr4, node.pod_cidr))
    assert "10.244.0.0" not in text and "saddr != " not in text
    per_node = KubeProxyConfig(detect_local_mode="NodeCIDR")
    text = render(
        build_ruleset(services6, node.name, node.host_ip, dual.pod_subnet, "nftables", per_node, node.pod_cidr)
    )
    assert f"ip6 saddr != {node.pod_cidr}" in text


def test_changes_travel_to_the_ipv6_proxier_as_to_the_ipv4_one():
    """A node whose kube-proxy is behind programs its own (IPv6) view; the others the new one."""
    plan = _plan()
    dual = plan.dual
    echo = [p for p in plan.pods if p.labels.get("app") == "echo"]
    gone = echo[0]
    now = update_endpoints(plan.services, [p for p in plan.pods if p.key != gone.key])
    behind = dataclasses.replace(
        plan, services=now, conditions=PodConditions(proxy_views={"kind-worker": plan.services})
    )
    view = ipv6_view(behind)
    assert view is not None and view.conditions is not None
    target = f"dnat to [{dual.pods[gone.key]}]:80"
    assert target in render(view.kube_proxy_rulesets["kind-worker"])  # still its old view
    assert target not in render(view.kube_proxy_rulesets["kind-worker2"])
    assert view.conditions.services_of("kind-worker", view.services).service_subnet == dual.service_subnet
    # every endpoint terminating but serving: the IPv6 rules fall back to them, as IPv4's do
    names = [p.full_name for p in echo]
    ending = dataclasses.replace(plan, services=update_endpoints(plan.services, plan.pods, terminating=names))
    ending6 = ipv6_view(ending)
    assert ending6 is not None and ending6.services is not None
    (prefer,) = [s for s in ending6.services.slices if s.service == "echo-prefer"]
    assert {e.ip for e in prefer.endpoints if e.terminating and e.serving and not e.ready} == {
        dual.pods[p.key] for p in echo
    }
    text = render(ending6.kube_proxy_rulesets["kind-worker"])
    assert all(f"dnat to [{dual.pods[p.key]}]:80" in text for p in echo)
    # and once they stop serving, nothing is left: the ClusterIP rejects
    exited = update_endpoints(plan.services, plan.pods, terminating=names, not_ready=names)
    gone6 = ipv6_view(dataclasses.replace(plan, services=exited))
    assert gone6 is not None and "dnat to [" not in render(gone6.kube_proxy_rulesets["kind-worker"])


def test_pods_the_plan_no_longer_lists_keep_their_ipv6_address():
    """A terminating pod added back by a paced change, or one a lagging node still holds, keeps
    the IPv6 address it had (host-local's: the IPv4 offset in the node's /64)."""
    plan = _plan()
    pod = next(p for p in plan.pods if p.labels.get("app") == "echo")
    address = plan.dual.pods[pod.key]
    forgotten = dataclasses.replace(
        plan, dual=dataclasses.replace(plan.dual, pods={k: v for k, v in plan.dual.pods.items() if k != pod.key})
    )
    assert with_known_pods(forgotten, [pod]).dual.pods[pod.key] == address
    assert with_known_pods(plan, [pod]) is plan  # nothing to add


def test_ipv6_conntrack_flushes_name_their_family():
    plan = _plan()
    dual = plan.dual
    before = dual.ipv6_services(plan.services)
    echo = sorted(p.name for p in plan.pods if p.labels.get("app") == "echo")
    after = dual.ipv6_services(update_endpoints(plan.services, [p for p in plan.pods if p.name != echo[0]]))
    flushes = conntrack_flushes(before, after)
    assert flushes and all(f.argv()[:6] == ["conntrack", "-D", "-p", "udp", "-f", "ipv6"] for f in flushes)
    assert all(ipaddress.ip_address(f.dst_nat).version == 6 for f in flushes if f.dst_nat)
    v4 = conntrack_flushes(plan.services, update_endpoints(plan.services, [p for p in plan.pods if p.name != echo[0]]))
    assert v4 and all("-f" not in f.argv() for f in v4)


def test_upstreams_ipv6_packet_flows_run_in_both_modes():
    results = replay(yaml.safe_load(FLOWS.read_text()), ("iptables", "nftables"))
    six = [r for r in results if "/ipv6" in r.test]
    for mode in ("iptables", "nftables"):
        mine = [r for r in six if r.mode == mode]
        assert sum(r.status == "match" for r in mine) >= 7, summary(mine)
        assert not [r for r in mine if r.status == "mismatch"], summary(mine)
