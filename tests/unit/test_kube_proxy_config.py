"""kube-proxy's configuration (spec/kube_proxy_config.py): decoded from kind's kubeadm patch,
refused in one line when wrong, and applied to both modes' rules (issue 19 item 4).

Expectations are upstream's (pkg/proxy/iptables/proxier.go, pkg/proxy/nftables/proxier.go):
KUBE-SERVICES' last rule jumps to KUBE-NODEPORTS for each nodePortAddresses address (or every
local one, loopback only with localhost NodePorts); nftables fills @nodeport-ips (never with
the loopback) or matches `fib daddr type local`; masqueradeAll masquerades every ClusterIP
packet; detectLocalMode picks the CIDR of the local-traffic detector.
"""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from testbed.errors import SpecError
from testbed.kubeproxy import Packet, build_ruleset, localhost_node_ports, render, trace
from testbed.lifecycle.delays import Delays, with_kube_proxy_periods
from testbed.lifecycle.timers import Timers
from testbed.spec.kube_proxy_config import KubeProxyConfig, seconds
from testbed.spec.topology import load_topology

from ._services import LAPTOP, NODES, POD_SUBNET, world

MODES = ("iptables", "nftables")
NODE = "kind-worker"
HOST_IP, NODE_CIDR = NODES[NODE]


def topology(tmp_path, body: str, mode: str = "iptables") -> str:
    patch = textwrap.indent(textwrap.dedent(body).strip("\n"), "      ")
    text = (
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes: [{role: control-plane}, {role: worker}]\n"
        f"networking: {{kubeProxyMode: {mode}}}\n"
        "kubeadmConfigPatches:\n  - |\n"
        "      apiVersion: kubeproxy.config.k8s.io/v1alpha1\n      kind: KubeProxyConfiguration\n"
        f"{patch}\n"
    )
    path = tmp_path / "topology.yaml"
    path.write_text(text)
    return str(path)


def error_of(tmp_path, body: str, mode: str = "iptables") -> str:
    with pytest.raises(SpecError) as exc:
        load_topology(topology(tmp_path, body, mode))
    assert len(exc.value.problems) == 1, exc.value.problems
    line = str(exc.value.problems[0])
    assert "\n" not in line
    return line


def rules(mode: str, config: KubeProxyConfig | None):
    return build_ruleset(world()[3], NODE, HOST_IP, POD_SUBNET, mode, config, NODE_CIDR)


def go(mode: str, config: KubeProxyConfig | None, src: str, dst: str, port: int, entry: str):
    return trace(rules(mode, config), Packet(src, dst, port, "TCP", entry), pod_cidr=NODE_CIDR)


def node_port() -> int:
    return 30080  # the fixture's NodePort Service (data/services/app.yaml)


# -- decoding ---------------------------------------------------------------------------------


def test_a_kube_proxy_configuration_patch_is_decoded(tmp_path):
    spec = load_topology(
        topology(
            tmp_path,
            """
            nodePortAddresses: [192.168.1.0/24, 127.0.0.0/8]
            clusterCIDR: 10.244.0.0/16
            detectLocalMode: NodeCIDR
            syncPeriod: 1m
            iptables: {masqueradeAll: true, localhostNodePorts: false, minSyncPeriod: 500ms}
            nftables: {masqueradeAll: false}
            conntrack: {maxPerCore: 0}
            """,
        )
    )
    assert spec.kube_proxy == KubeProxyConfig(
        node_port_addresses=("192.168.1.0/24", "127.0.0.0/8"),
        localhost_node_ports=False,
        masquerade_all=True,
        cluster_cidr="10.244.0.0/16",
        detect_local_mode="NodeCIDR",
        sync_period=60.0,
        min_sync_period=0.5,
    )
    assert not any("kubeadmConfigPatches" in n for n in spec.notes), "applied, not ignored"


def test_the_running_modes_block_is_the_one_read(tmp_path):
    spec = load_topology(
        topology(tmp_path, "iptables: {masqueradeAll: true}\nnftables: {syncPeriod: 10s}", mode="nftables")
    )
    assert spec.kube_proxy is not None
    assert spec.kube_proxy.masquerade_all is False and spec.kube_proxy.sync_period == 10.0


def test_without_a_patch_there_is_no_configuration(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n")
    assert load_topology(str(path)).kube_proxy is None


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ("nodePortAddresses: [10.0.0.300/8]", "nodePortAddresses[0]", "is not a CIDR"),
        ("nodePortAddresses: 192.168.1.0/24", "nodePortAddresses", "expected a list"),
        ("nodePortAddresses: [primary, 10.0.0.0/8]", "nodePortAddresses", "cannot be combined"),
        ("detectLocalMode: InterfaceNamePrefix", "detectLocalMode", "must be one of ClusterCIDR, NodeCIDR"),
        ("clusterCIDR: banana", "clusterCIDR", "is not a CIDR"),
        ("syncPeriod: 30", "syncPeriod", "expected a string"),
        ("syncPeriod: 30 seconds", "syncPeriod", "is not a duration"),
        ("iptables: {minSyncPeriod: 2h}", "iptables.minSyncPeriod", "at most 1h"),
        ("iptables: {localhostNodePorts: yes please}", "iptables.localhostNodePorts", "expected a boolean"),
        ("iptables: {masqueradeBit: 15}", "iptables.masqueradeBit", "only the default 14"),
        ("nftables: {localhostNodePorts: true}", "nftables", "unknown field"),
        ("mode: nftables", "mode", "differs from networking.kubeProxyMode"),
        ("bogus: 1", "KubeProxyConfiguration", "unknown field"),
    ],
)
def test_bad_values_are_one_line_naming_the_field(tmp_path, body, field, words):
    line = error_of(tmp_path, body)
    assert "kubeadmConfigPatches[0]: KubeProxyConfiguration" in line and field in line and words in line, line


def test_a_huge_value_is_not_echoed(tmp_path):
    line = error_of(tmp_path, f"clusterCIDR: {'x' * 5000}")
    assert len(line) < 400


def test_go_durations():
    assert seconds("1m30s") == 90.0 and seconds("250ms") == 0.25 and seconds("1h") == 3600.0
    assert seconds("") is None and seconds("5") is None and seconds("-1s") is None


# -- rules -------------------------------------------------------------------------------------


def test_without_a_configuration_the_rules_are_the_historical_ones():
    for mode in MODES:
        assert render(rules(mode, None)) == render(build_ruleset(world()[3], NODE, HOST_IP, POD_SUBNET, mode))


@pytest.mark.parametrize("mode", MODES)
def test_node_port_addresses_outside_the_node_answer_on_no_address(mode):
    config = KubeProxyConfig(node_port_addresses=("10.99.0.0/16",))
    t = go(mode, config, LAPTOP, HOST_IP, node_port(), "underlay")
    assert t.endpoints() == {} and t.verdicts == {"accept"}, "not a NodePort on this address: untouched"
    assert go(
        mode, KubeProxyConfig(node_port_addresses=("192.168.1.0/24",)), LAPTOP, HOST_IP, node_port(), "underlay"
    ).endpoints()


def test_iptables_node_port_jumps_follow_node_port_addresses():
    text = render(rules("iptables", KubeProxyConfig(node_port_addresses=("192.168.1.0/24",))))
    assert (
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 192.168.1.3 -j KUBE-NODEPORTS'
        in text
    )
    text = render(rules("iptables", KubeProxyConfig()))  # unset: MatchAll, localhost allowed
    assert "-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS" in text
    assert "KUBE-FIREWALL" in text and "! --ctstate RELATED,ESTABLISHED,DNAT -j DROP" in text
    text = render(rules("iptables", KubeProxyConfig(localhost_node_ports=False)))
    assert "-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS" in text
    assert "KUBE-FIREWALL" not in text


def test_localhost_node_ports_only_where_upstream_has_them():
    assert localhost_node_ports(KubeProxyConfig(), HOST_IP)
    assert localhost_node_ports(KubeProxyConfig(node_port_addresses=("127.0.0.0/8",)), HOST_IP)
    assert not localhost_node_ports(KubeProxyConfig(node_port_addresses=("primary",)), HOST_IP)
    assert not localhost_node_ports(KubeProxyConfig(localhost_node_ports=False), HOST_IP)
    assert not localhost_node_ports(None, HOST_IP)


def test_the_node_reaches_its_node_port_on_localhost_in_iptables_mode_only():
    config = KubeProxyConfig()
    t = go("iptables", config, "127.0.0.1", "127.0.0.1", node_port(), "local")
    assert t.endpoints() and t.masqueraded is True, "DNATed and masqueraded off the loopback"
    t = go("nftables", config, "127.0.0.1", "127.0.0.1", node_port(), "local")
    assert t.endpoints() == {}, "nftables mode has no localhost NodePorts"
    t = go("iptables", KubeProxyConfig(localhost_node_ports=False), "127.0.0.1", "127.0.0.1", node_port(), "local")
    assert t.endpoints() == {}


def test_nftables_node_port_ips_set_and_match_all():
    nft = render(rules("nftables", KubeProxyConfig(node_port_addresses=("192.168.1.0/24", "127.0.0.0/8"))))
    assert "add element ip kube-proxy nodeport-ips { 192.168.1.3 }" in nft and "127.0.0.1" not in nft
    nft = render(rules("nftables", KubeProxyConfig(node_port_addresses=("0.0.0.0/0",))))
    assert "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports" in nft
    assert "add element ip kube-proxy nodeport-ips" not in nft


@pytest.mark.parametrize("mode", MODES)
def test_masquerade_all_masquerades_pods_to_cluster_ips(mode):
    web = world()[3].service("default", "web").cluster_ip
    pod = NODE_CIDR.replace("0/24", "50")
    assert go(mode, None, pod, web, 80, "pod").masqueraded is False
    assert go(mode, KubeProxyConfig(masquerade_all=True), pod, web, 80, "pod").masqueraded is True


@pytest.mark.parametrize("mode", MODES)
def test_detect_local_mode_node_cidr_treats_other_nodes_pods_as_off_cluster(mode):
    web = world()[3].service("default", "web").cluster_ip
    other_pod = "10.244.2.50"  # a pod of kind-worker2, routed in through the underlay
    node_cidr = KubeProxyConfig(detect_local_mode="NodeCIDR")
    assert go(mode, None, other_pod, web, 80, "underlay").masqueraded is False
    assert go(mode, node_cidr, other_pod, web, 80, "underlay").masqueraded is True
    empty = KubeProxyConfig(cluster_cidr="")  # ClusterCIDR without one: no detector at all
    assert go(mode, empty, LAPTOP, web, 80, "underlay").masqueraded is False


def test_sync_periods_feed_the_lifecycle_delays():
    config = KubeProxyConfig(sync_period=60.0, min_sync_period=0.5)
    delays = with_kube_proxy_periods(Delays(), config)
    assert (delays.kube_proxy_sync_period, delays.kube_proxy_min_sync_period) == (60.0, 0.5)
    assert dataclasses.replace(delays, kube_proxy_sync_period=30.0, kube_proxy_min_sync_period=1.0) == Delays()
    assert with_kube_proxy_periods(Delays(timers=Timers(time_scale=0.5)), KubeProxyConfig()) == Delays(
        timers=Timers(time_scale=0.5)
    )
    own = Delays(kube_proxy_min_sync_period=2.0)  # the experiment's own setting wins
    assert with_kube_proxy_periods(own, config).kube_proxy_min_sync_period == 2.0


def test_an_ipv6_node_port_cidr_is_left_to_the_ipv6_proxier():
    """Upstream's NewNodePortAddresses keeps a proxier's own family: an IPv4 node ignores
    fd00::/64, and with no IPv4 CIDR left it answers on every local address."""
    assert KubeProxyConfig(node_port_addresses=("fd00::/64", "192.168.0.0/24")).node_port_ips(
        "192.168.0.2", "nftables"
    ) == ("192.168.0.2",)
    assert KubeProxyConfig(node_port_addresses=("fd00::/64",)).node_port_ips("192.168.0.2", "nftables") is None
