"""hostPorts over IPv6 (issue 15): the portmap CNI plugin's rules for a pod's IPv6 address
(rules/portmap.py), as containernetworking/plugins writes them per container IP: ip6tables' nat
table with the same chains, or `table ip6 cni_hostport`; no localhost rule (IPv4 only, the
plugin's `if !isV6`), the DNAT target `[addr]:port`, a hostIP of the other family skipped. A
single-stack IPv6 plan's tables are IPv6; a dual-stack node gets an IPv6 table beside its IPv4
one (plan/hostports6.py), which stays exactly as before."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from testbed.cli import main
from testbed.experiment.expand import expand
from testbed.experiment.load import load_experiment
from testbed.netpol.oracle import Flow
from testbed.plan.build import plan_cluster
from testbed.plan.hostports6 import hostport_tables6
from testbed.plan.pod import HostPortPlan
from testbed.plan.view6 import ipv6_plan
from testbed.rulepath import trace_path
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


@pytest.mark.parametrize(
    "mode,rule,neighbour_masqueraded",
    [
        ("iptables", "nat/CNI-HOSTPORT-DNAT[0]", True),
        ("nftables", "cni_hostport/hostports[0]", False),
    ],
)
def test_explain_traces_the_ipv6_hostport_tables(mode, rule, neighbour_masqueraded):
    """`testbed explain --family ipv6 --trace` follows a flow to a node's IPv6 address through
    the portmap plugin's IPv6 rules (the IPv6 view's rulesets, plan/view6.py), as the IPv4 side
    through its own: DNAT to the pod's IPv6 address, the masquerade each backend does. Before,
    the IPv6 view had no hostPort table and the trace ended at the node itself."""
    _, plan = _plan("dual-stack-http.yaml", mode)
    six = ipv6_plan(plan)
    node6, web6 = plan.dual.node("kind-worker2").host_ip, plan.dual.pods[plan.find_pod("web-hostport").key]
    assert set(six.hostport_tables) == {"kind-worker2"} and six.hostport_tables["kind-worker2"].family == "ip6"
    for src, masqueraded in (("laptop", False), ("neighbour", neighbour_masqueraded), ("kind-worker", False)):
        path = trace_path(six, six.world, Flow(src, "kind-worker2", 8080, "TCP"))
        (branch,) = path.branches
        assert branch.delivered and branch.end == f"delivered to pod default/web-hostport ({web6}) on kind-worker2"
        last = branch.hops[-1].outcome
        assert (last.verdict, last.destination, last.masqueraded) == ("dnat", f"[{web6}]:80", masqueraded), src
        assert any(f"{s.table}/{s.chain}[{s.index}]" == rule for h in last.hooks for s in h.steps if s.matched)
    assert path.destination == node6
    # the IPv4 side is as it was: its own table, the pod's IPv4 address
    four = trace_path(plan, plan.world, Flow("laptop", "kind-worker2", 8080, "TCP"))
    assert four.branches[0].hops[-1].outcome.destination == f"{plan.find_pod('web-hostport').ip}:80"


def test_a_dropped_ipv6_hostport_flow_is_predicted_at_the_policy(tmp_path):
    """With the pod isolated (default-deny ingress), the IPv6 flow's predicted end is the twin
    policy table's ingress check after portmap's DNAT, where the drop log will say it died."""
    from testbed.dropcheck import predicted

    exp, _ = _plan("dual-stack-http.yaml", "iptables")
    topology = dataclasses.replace(load_topology(exp.topology), kube_proxy_mode="iptables")
    deny = REPO / "manifests" / "pod-networking-deny.yaml"
    plan = plan_cluster(topology, load_manifests([str(REPO / "manifests" / "ipv6" / "hostport.yaml"), str(deny)]))
    laptop6 = plan.dual.externals["laptop"]
    node6 = plan.dual.node("kind-worker2").host_ip
    assert predicted(plan, laptop6, node6, 8080, "TCP") == ("kind-worker2/testbed-netpol6/check-ingress[0] (drop)",)
    assert predicted(plan, "192.168.1.10", plan.node("kind-worker2").host_ip, 8080, "TCP") == (
        "kind-worker2/testbed-netpol/check-ingress[0] (drop)",
    )


def test_explain_family_ipv6_on_the_command_line(capsys):
    args = [
        "explain",
        str(REPO / "topologies" / "dual-stack.yaml"),
        "-f",
        str(REPO / "manifests" / "ipv6" / "hostport.yaml"),
    ]
    assert (
        main([*args, "--from", "laptop", "--to", "kind-worker2", "--port", "8080", "--family", "ipv6", "--trace"]) == 0
    )
    out = capsys.readouterr().out
    assert "delivered to pod default/web-hostport (fd00:10:244:" in out and "CNI-HOSTPORT-DNAT" in out
