"""Single-stack IPv6 clusters (issue 15, spec/ipv6.py): kind's defaults, the refusals, a plan
with IPv6 addresses only (golden), and the IPv6 kernel lines, policy table and probes."""

from __future__ import annotations

import ipaddress
import json
import pathlib
import subprocess
import sys

import pytest

from testbed.emu.controllers import _lb_line
from testbed.emu.ipv6only import bridge_lines6, member_lines6, router_lines_of6
from testbed.emu.pods import node_batch
from testbed.errors import SpecError
from testbed.experiment.expand import Party, PlannedProbe
from testbed.experiment.family import single_stack_probes
from testbed.kubeproxy import build_ruleset
from testbed.kubeproxy.render import render_nft
from testbed.plan.build import plan_cluster
from testbed.plan.ipv6 import is_ipv6, policy_script6
from testbed.plan.services import parse_lb_pool
from testbed.rules.render_iptables import render_restore
from testbed.spec.model import Manifests
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from ._golden import check_golden
from .test_dualstack import cluster, one_problem  # the same kind Cluster text and one-line check

REPO = pathlib.Path(__file__).resolve().parents[2]


def _ipv6_plan(*extra: str):
    spec = load_topology(str(REPO / "topologies" / "ipv6.yaml"))
    files = [str(REPO / "manifests" / "quickstart-app.yaml"), str(REPO / "manifests" / "ipv6-services.yaml"), *extra]
    return plan_cluster(spec, load_manifests(files), 1)


def _strings(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def _is_ipv4(text: str) -> bool:
    try:
        return ipaddress.ip_network(text, strict=False).version == 4
    except ValueError:
        return False


def test_ipv6_takes_kinds_defaults_as_the_primary_ranges(topology):
    spec = topology(cluster("{ipFamily: ipv6}"))
    assert (spec.ip_family, spec.pod_subnet, spec.service_subnet) == ("ipv6", "fd00:10:244::/56", "fd00:10:96::/112")
    assert (spec.underlay_subnet, spec.node_cidr_prefix) == ("fd00:192:168:1::/64", 64)
    given = topology(cluster("{ipFamily: ipv6, podSubnet: 'fd00:1::/56'}", "underlay: {subnet: 'fd00:9::/64'}"))
    assert (given.pod_subnet, given.underlay_subnet) == ("fd00:1::/56", "fd00:9::/64")


@pytest.mark.parametrize(
    ("networking", "testbed", "expected"),
    [
        (  # the three bad inputs (the third is test_require_dual_stack_...)
            "{podSubnet: 'fd00:10:244::/56'}",
            "",
            "networking.podSubnet: 'fd00:10:244::/56': an IPv6 or dual-stack range needs ipFamily: dual",
        ),
        (
            "{ipFamily: ipv6}",
            "podCIDRPrefixIPv6: 120",
            "podCIDRPrefixIPv6: /120 is more than 16 bits longer than podSubnet fd00:10:244::/56 "
            "(kube-controller-manager's node-cidr-mask-size-ipv6 limit)",
        ),
        (
            "{ipFamily: ipv6, podSubnet: 10.244.0.0/16}",
            "",
            "networking.podSubnet: '10.244.0.0/16': an IPv4 range needs ipFamily: ipv4 or dual",
        ),
        (
            "{ipFamily: ipv6, serviceSubnet: 'fd00:10:96::/112,10.96.0.0/16'}",
            "",
            "networking.serviceSubnet: 'fd00:10:96::/112,10.96.0.0/16': two CIDRs (dual-stack) need ipFamily: dual",
        ),
        (
            "{ipFamily: ipv6, serviceSubnet: 'fd00:10:96::/64'}",
            "",
            "networking.serviceSubnet: fd00:10:96::/64 is too large: an IPv6 serviceSubnet is /108 or smaller",
        ),
        (
            "{ipFamily: ipv6, serviceSubnet: 'fd00:10:96::/126'}",
            "",
            "networking.serviceSubnet: fd00:10:96::/126 is too small: the cluster's own Services take its 1st and "
            "10th addresses (kubernetes, kube-dns); use a /124 or larger",
        ),
        (
            "{ipFamily: ipv6}",
            "underlay: {subnet: 192.168.1.0/24}",
            "underlay.subnet: '192.168.1.0/24': an ipFamily ipv6 cluster's underlay is IPv6 (underlay.subnetIPv6, default fd00:192:168:1::/64)",
        ),
        (  # racks: each subnet's cidr is IPv6 (or its cidrIPv6 is given: tests/unit/test_ipv6_routes.py)
            "{ipFamily: ipv6}",
            "underlay: {subnets: [{name: a, cidr: 'fd00:1::/64'}, {name: b, cidr: 192.168.2.0/24}]}",
            "underlay.subnets[b].cidr: '192.168.2.0/24': an ipFamily ipv6 cluster's ranges are IPv6",
        ),
        (
            "{ipFamily: ipv6}",
            "externalHosts: [{name: laptop, ip: 192.168.1.10}]",
            "externalHosts[laptop].ip: 192.168.1.10 is not a host address of the underlay fd00:192:168:1::/64",
        ),
    ],
)
def test_bad_input_is_one_line_naming_the_field(topology, networking, testbed, expected):
    assert one_problem(topology, cluster(networking, testbed)) == expected


def test_the_plan_has_ipv6_addresses_only_and_matches_golden():
    plan = _ipv6_plan()
    data = plan.to_dict()
    assert is_ipv6(plan) and plan.dual is None
    assert [s for s in _strings(data) if _is_ipv4(s)] == []
    assert [(n.name, n.host_ip, n.pod_cidr, n.gateway) for n in plan.nodes] == [
        ("kind-control-plane", "fd00:192:168:1::2", "fd00:10:244::/64", "fd00:10:244::1"),
        ("kind-worker", "fd00:192:168:1::3", "fd00:10:244:1::/64", "fd00:10:244:1::1"),
        ("kind-worker2", "fd00:192:168:1::4", "fd00:10:244:2::/64", "fd00:10:244:2::1"),
    ]
    assert {(p.prefix, p.gateway) for p in plan.pods if p.node == "kind-worker"} == {(64, "fd00:10:244:1::1")}
    assert plan.services is not None
    assert plan.services.service("kube-system", "kube-dns").cluster_ip == "fd00:10:96::a"
    assert plan.services.service("default", "kubernetes").cluster_ip == "fd00:10:96::1"
    assert all(":" in e.ip for sl in plan.services.slices for e in sl.endpoints)
    a, _cnames = plan.dns_records
    assert a and all(":" in ip for _, ip in a)  # AAAA records only
    check_golden("ipv6-plan.json", json.dumps(data, indent=2, sort_keys=True) + "\n")
    assert _ipv6_plan() == plan  # deterministic


def test_services_get_the_api_servers_families_and_messages(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: both}\n"
        "spec: {ipFamilyPolicy: RequireDualStack, selector: {app: echo}, ports: [{port: 80}]}\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: four}\n"
        "spec: {ipFamilies: [IPv4], selector: {app: echo}, ports: [{port: 80}]}\n",
        encoding="utf-8",
    )
    with pytest.raises(SpecError) as info:
        _ipv6_plan(str(bad))
    assert [(p.document, p.path, p.message) for p in info.value.problems] == [
        (
            "Service default/both",
            "spec.ipFamilyPolicy",
            "RequireDualStack cannot be satisfied: this cluster is IPv6 single-stack",
        ),
        ("Service default/four", "spec.ipFamilies[0]", "'IPv4': not configured on this cluster (IPv6 single-stack)"),
    ]


def test_bad_input_through_the_cli_is_one_line_exit_2(tmp_path):
    topo = tmp_path / "t.yaml"
    topo.write_text(cluster("{ipFamily: ipv6}", "podCIDRPrefixIPv6: 120"), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "testbed", "plan", str(topo)], capture_output=True, text=True, check=False, cwd=REPO
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "podCIDRPrefixIPv6: /120 is more than 16 bits longer" in result.stderr


def test_kernel_lines_are_ipv6_without_dad():
    plan = _ipv6_plan()
    node = plan.node("kind-worker")
    pods = [p for p in plan.pods if p.node == node.name]
    routes = [r for r in plan.routes if r.node == node.name]
    lines = node_batch(node, pods, routes, "t", 1500)
    assert "addr add fd00:10:244:1::1/64 dev cni0 nodad" in lines and "addr add fe80::1/64 dev cni0 nodad" in lines
    assert "route replace fd00:10:244::/64 via fd00:192:168:1::2 dev eth0" in lines
    assert [line for line in lines if any(_is_ipv4(w) for w in line.replace("/", " /").split())] == []
    assert bridge_lines6("cni0", "fd00:10:244:1::1", "64")[0] == "addr add fd00:10:244:1::1/64 dev cni0 nodad"
    assert member_lines6("fd00:192:168:1::a", 64) == [
        "addr add fd00:192:168:1::a/64 dev eth0 nodad",
        "addr add fe80::a/64 dev eth0 nodad",
    ]


def test_kube_proxy_rules_and_policy_table_are_ipv6():
    plan = _ipv6_plan(str(REPO / "manifests" / "ipv6-policy.yaml"))
    assert plan.services is not None
    node = plan.node("kind-worker")
    ruleset = build_ruleset(plan.services, node.name, node.host_ip, plan.pod_subnet, "iptables", None, node.pod_cidr)
    text = render_restore(ruleset.tables)
    assert "-d fd00:10:96::a --dport 53" in text and "--to-destination [fd00:10:244::" in text
    assert plan.world.ip_version == 6
    script = policy_script6(_nft(plan, node.name))
    assert "ipv4_addr" not in script and "ip saddr" not in script and "ipv6_addr" in script
    assert "fd00:192:168:1::a" in script  # the ipBlock's except, as an IPv6 element


def test_nftables_mode_writes_the_ip6_kube_proxy_table(topology):
    spec = topology(cluster("{ipFamily: ipv6, kubeProxyMode: nftables}"))
    assert spec.kube_proxy_mode == "nftables"
    files = [str(REPO / "manifests" / "quickstart-app.yaml"), str(REPO / "manifests" / "ipv6-services.yaml")]
    plan = plan_cluster(spec, load_manifests(files), 1)
    assert plan.services is not None
    text = render_nft(plan.kube_proxy_rulesets["kind-worker"])
    assert "table ip6 kube-proxy" in text and "table ip kube-proxy" not in text
    assert "ipv6_addr" in text and "ipv4_addr" not in text
    assert "dnat to [fd00:10:244:" in text and not any(_is_ipv4(w.strip("{},;")) for w in text.split())


def test_vxlan_is_flannels_ipv6_backend(topology):
    spec = topology(cluster("{ipFamily: ipv6}", "routing: vxlan"))
    plan = plan_cluster(spec, load_manifests([str(REPO / "manifests" / "quickstart-app.yaml")]), 1)
    assert plan.network is not None and plan.network.pod_mtu == 1430  # flannel-v6.1's: underlay - 70
    worker = next(v for v in plan.network.vteps if v.node == "kind-worker")
    assert (worker.dev, worker.address, worker.mtu, worker.local) == (
        "flannel-v6.1",
        "fd00:10:244:1::/128",
        1430,
        "fd00:192:168:1::3",
    )
    assert dict(worker.neighbours)["fd00:10:244::"] and set(dict(worker.fdb).values()) == {
        "fd00:192:168:1::2",
        "fd00:192:168:1::4",
    }
    routes = {(r.dst, r.via, r.dev) for r in plan.routes if r.node == "kind-worker"}
    assert routes == {
        ("fd00:10:244::/64", "fd00:10:244::", "flannel-v6.1"),
        ("fd00:10:244:2::/64", "fd00:10:244:2::", "flannel-v6.1"),
    }
    lines = node_batch(
        plan.node("kind-worker"), [], [r for r in plan.routes if r.node == "kind-worker"], "t", 1430, vtep=worker
    )
    assert "route replace fd00:10:244::/64 via fd00:10:244:: dev flannel-v6.1 onlink" in lines
    assert "addr add fd00:10:244:1::/128 dev flannel-v6.1 nodad" in lines


def test_cloud_routes_router_has_an_ipv6_side(topology):
    spec = topology(cluster("{ipFamily: ipv6}", "routing: cloud-routes"))
    plan = plan_cluster(spec, load_manifests([str(REPO / "manifests" / "quickstart-app.yaml")]), 1)
    assert plan.network is not None
    (router,) = plan.network.routers
    assert router_lines_of6(router, 1500) == [
        "link set eth0 mtu 1500 up",
        "addr add fd00:192:168:1::1/64 dev eth0 nodad",
        "addr add fe80::1/64 dev eth0 nodad",
        "route replace fd00:10:244::/64 via fd00:192:168:1::2 dev eth0",
        "route replace fd00:10:244:1::/64 via fd00:192:168:1::3 dev eth0",
        "route replace fd00:10:244:2::/64 via fd00:192:168:1::4 dev eth0",
    ]
    assert {(r.dst, r.via) for r in plan.routes if r.node == "kind-worker"} == {
        ("fd00:10:244::/56", "fd00:192:168:1::1")
    }


def test_load_balancer_takes_the_ipv6_pool_and_is_held_on_eth0():
    plan = _ipv6_plan(str(REPO / "manifests" / "ipv6" / "edges.yaml"))
    assert plan.services is not None
    lb = plan.services.service("default", "echo-lb")
    assert lb.load_balancer_ingress == ("fd00:192:168:1::c8",) and ":" in lb.cluster_ip
    assert set(plan.lb_announcers) == {"fd00:192:168:1::c8"}
    assert _lb_line("fd00:192:168:1::c8", True) == "addr replace fd00:192:168:1::c8/128 dev eth0 nodad preferred_lft 0"
    assert _lb_line("192.168.1.200", True) == "addr replace 192.168.1.200/32 dev lo"  # IPv4 as before
    assert parse_lb_pool("fd00:192:168:1::c8-fd00:192:168:1::c9", 6) == ["fd00:192:168:1::c8", "fd00:192:168:1::c9"]
    with pytest.raises(ValueError, match="more than 4096 addresses"):
        parse_lb_pool("fd00::/64", 6)


def test_external_ips_are_ipv6_and_routed_by_128():
    plan = _ipv6_plan(str(REPO / "manifests" / "ipv6" / "edges.yaml"))
    assert plan.services is not None
    assert plan.services.service("default", "echo-external").external_ips == ("2001:db8:198:51:100::7",)
    (route,) = plan.service_routes
    assert (route.member, route.dst, route.via) == (
        "laptop",
        "2001:db8:198:51:100::7/128",
        plan.node("kind-worker").host_ip,
    )
    node = plan.node("kind-worker")
    ruleset = build_ruleset(plan.services, node.name, node.host_ip, plan.pod_subnet, "iptables", None, node.pod_cidr)
    assert "-p tcp -d 2001:db8:198:51:100::7 --dport 8080 -j KUBE-EXT-" in render_restore(ruleset.tables)


def _nft(plan, node: str) -> str:
    from testbed.netpol.compiler import reconcile_rulesets

    return reconcile_rulesets({}, dict(plan.policy_rulesets))[node].script


def _probe(protocol: str, dst_ip: str, method: str = "socket") -> PlannedProbe:
    src = Party("pod", "a", "default", "kind-worker", "fd00:10:244:1::2", "k")
    return PlannedProbe(
        group="g",
        attempt=0,
        src=src,
        dst=src,
        dst_ip=dst_ip,
        protocol=protocol,
        port=80,
        port_name="",
        container="c",
        communication="x",
        expect_outcome="connected",
        expect_sources=("127.0.0.1",),
        timeout=1.0,
        method=method,
    )


def test_probes_go_to_ipv6_localhost_sctp_scapy_iperf3_and_http_pass():
    (p,) = single_stack_probes([_probe("TCP", "127.0.0.1")])
    assert (p.dst_ip, p.expect_sources) == ("::1", ("::1",))
    kinds = [_probe("SCTP", "fd00:10:244:1::3"), _probe("TCP", "fd00:10:244:1::3", "scapy")]
    kinds.append(_probe("TCP", "fd00:10:244:1::3", "iperf3"))
    kinds.append(_probe("TCP", "fd00:10:244:1::3", "http"))  # http://[fd00:10:244:1::3]/ (traffic/http.py)
    assert single_stack_probes(kinds) == kinds  # sent over IPv6 as they are, by the dual-stack machinery


def test_policy_tiers_compile_into_the_ipv6_policy_table():
    plan = _ipv6_plan(str(REPO / "manifests" / "dual-stack" / "tiers.yaml"))
    assert plan.tiers and plan.world.ip_version == 6
    script = policy_script6(_nft(plan, "kind-worker"))
    assert "fd00:10:244::/56" in script and "ipv4_addr" not in script and "ip saddr" not in script
    assert not any(_is_ipv4(w.strip("{},;")) for w in script.split())


def test_an_ipv4_plan_is_not_ipv6():
    spec = load_topology(str(REPO / "topologies" / "three-nodes.yaml"))
    assert not is_ipv6(plan_cluster(spec, Manifests()))


def test_hostports_and_the_ingress_are_built_over_ipv6(tmp_path):
    """Refused before (issue 15): the portmap plugin's IPv6 rules and the ingress controller over
    IPv6 (tests/unit/test_hostports_ipv6.py, test_ingress_ipv6.py say how)."""
    spec = load_topology(str(REPO / "topologies" / "ipv6.yaml"))
    hostport = tmp_path / "hp.yaml"
    hostport.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: hp}\n"
        "spec: {containers: [{name: c, image: x, ports: [{containerPort: 80, hostPort: 8080}]}]}\n",
        encoding="utf-8",
    )
    plan = plan_cluster(spec, load_manifests([str(hostport), str(REPO / "manifests" / "ingress-demo.yaml")]))
    assert plan.ingress is not None and {t.family for t in plan.hostport_tables.values()} == {"ip6"}
