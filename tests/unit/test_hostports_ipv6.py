"""hostPorts over IPv6 (issue 15): the portmap CNI plugin's rules for a pod's IPv6 address
(rules/portmap.py), as containernetworking/plugins writes them per container IP: ip6tables' nat
table with the same chains, or `table ip6 cni_hostport`; no localhost rule (IPv4 only, the
plugin's `if !isV6`), the DNAT target `[addr]:port`, a hostIP of the other family skipped. A
single-stack IPv6 plan's tables are IPv6; a dual-stack node gets an IPv6 table beside its IPv4
one (plan/hostports6.py), which stays exactly as before."""

from __future__ import annotations

import dataclasses
import pathlib

from testbed.experiment.expand import expand
from testbed.experiment.load import load_experiment
from testbed.plan.build import plan_cluster
from testbed.plan.hostports6 import hostport_tables6
from testbed.plan.pod import HostPortPlan
from testbed.rules import portmap
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

REPO = pathlib.Path(__file__).resolve().parents[2]


def _plan(name: str, mode: str = ""):
    exp = load_experiment(str(REPO / "experiments" / name))
    topology = load_topology(exp.topology)
    if mode:
        topology = dataclasses.replace(topology, kube_proxy_mode=mode)
    return exp, plan_cluster(topology, load_manifests(list(exp.manifests)), seed=exp.seed)


def test_a_single_stack_ipv6_node_gets_ip6tables_rules_without_the_localhost_one():
    _, plan = _plan("ipv6-http.yaml")
    table = plan.hostport_tables["kind-worker2"]
    assert table.kind == "iptables" and table.family == "ip6"
    text = portmap.render(table)
    assert text.startswith("# portmap (iptables backend): ip6tables-restore --noflush")
    pod = plan.find_pod("web-hostport")
    assert f"-j DNAT --to-destination [{pod.ip}]:80" in text and f"[{pod.ip}]:53" in text
    assert "-s fd00:10:244:2::/64 -j CNI-HOSTPORT-SETMARK" in text  # hairpin: the pod's /64
    assert "127.0.0.1" not in text and "::1" not in text
    assert "-m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT" in portmap.render_bootstrap(table)


def test_the_nftables_backend_writes_table_ip6_cni_hostport():
    _, plan = _plan("dual-stack-http.yaml")  # kube-proxy nftables: the nftables backend
    assert plan.hostport_tables["kind-worker2"].family == "ip"  # the IPv4 table as before
    four = portmap.render(plan.hostport_tables["kind-worker2"])
    assert "add table ip cni_hostport" in four and "ip saddr 127.0.0.1" in four
    six = hostport_tables6(plan)
    assert set(six) == {"kind-worker2"} and six["kind-worker2"].family == "ip6"
    text = portmap.render(six["kind-worker2"])
    v6 = plan.dual.pods[plan.find_pod("web-hostport").key]
    assert "add table ip6 cni_hostport" in text and f"tcp dport 8080 dnat to [{v6}]:80" in text
    assert f"masquerading ip6 saddr {v6} ip6 daddr {v6} masquerade" in text
    assert text.count("masquerade comment") == 1  # hairpin only: no localhost rule over IPv6


def test_a_dual_stack_iptables_node_gets_both_tables():
    _, plan = _plan("dual-stack-http.yaml", "iptables")
    four, six = plan.hostport_tables["kind-worker2"], hostport_tables6(plan)["kind-worker2"]
    assert (four.kind, four.family, six.kind, six.family) == ("iptables", "ip", "iptables", "ip6")
    assert "127.0.0.1/32" in portmap.render(four) and "127.0.0.1" not in portmap.render(six)
    assert [c.name for c in four.chains] == [c.name for c in six.chains]  # the plugin's chains, per family


def test_a_host_ip_of_the_other_family_is_skipped():
    _, plan = _plan("dual-stack-http.yaml", "iptables")
    pod = plan.find_pod("web-hostport")
    node4, node6 = plan.node("kind-worker2").host_ip, plan.dual.node("kind-worker2").host_ip
    pinned = dataclasses.replace(
        pod, host_ports=(HostPortPlan(8080, 80, "TCP", node4), HostPortPlan(9090, 90, "TCP", node6))
    )
    twins = {pod.key: (plan.dual.pods[pod.key], 64)}
    four, six = (
        portmap.render(portmap.iptables_table([pinned])),
        portmap.render(portmap.iptables_table([pinned], twins)),
    )
    assert f"-d {node4}/32" in four and "--dport 9090 -j DNAT" not in four and "--dport 9090 -d" not in four
    assert f"-d {node6}/128" in six and "--dport 8080 -d" not in six and f"[{twins[pod.key][0]}]:90" in six
    nft6 = portmap.render(portmap.nft_table([pinned], twins, ipv6=True))
    assert f"hostip_hostports ip6 daddr {node6} tcp dport 9090" in nft6 and "dport 8080" not in nft6


def test_hostport_probes_over_ipv6_expect_what_portmap_leaves():
    exp, plan = _plan("dual-stack-http.yaml")
    groups = {g.name: g for s in exp.steps for g in s.probes}
    pods = expand(plan, groups["pods-to-hostport-v6"])
    gateway6 = plan.dual.node("kind-worker2").gateway
    hairpin = [p for p in pods if p.src.name == "web-hostport"]
    neighbour = [p for p in pods if p.src.name == "neighbour"]
    assert hairpin and all(p.expect_sources == (gateway6,) for p in hairpin)  # masqueraded to cni0
    assert neighbour and all(p.expect_sources == (p.src.ip,) and ":" in p.src.ip for p in neighbour)  # nft: kept
    (web,) = expand(plan, groups["http-to-hostport-v6"])
    assert web.method == "http" and web.http_path == "/" and web.dst_ip == plan.dual.node("kind-worker2").host_ip
