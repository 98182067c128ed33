"""Dual-stack (issue 15): kind's ipFamily, the IPv6 half of the plan, its kernel lines, the agent."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import pathlib
import socket
import tempfile

import pytest

from testbed.agent.config import parse_config
from testbed.emu.dualstack import IFA_F_NODAD, addr6_add, link_local, node_lines6, with_ipv6
from testbed.errors import SpecError
from testbed.plan.build import plan_cluster
from testbed.plan.dualstack import node_pod_cidrs, pod_ips, service_family_fields
from testbed.spec.model import Manifests
from testbed.spec.workloads import load_manifests
from testbed.views import describe_pod, dual_stack_lines


def cluster(networking: str, testbed: str = "", workers: int = 2) -> str:
    roles = ", ".join(["{role: control-plane}"] + ["{role: worker}"] * workers)
    text = f"kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes: [{roles}]\nnetworking: {networking}\n"
    if testbed:
        text += f"---\napiVersion: testbed/v1alpha1\nkind: TestbedConfig\n{testbed}\n"
    return text


def one_problem(topology, text: str, error: type = SpecError) -> str:
    with pytest.raises(error) as info:
        topology(text)
    assert len(info.value.problems) == 1, info.value.problems
    (p,) = info.value.problems
    return f"{p.path}: {p.message}"


def test_dual_takes_kinds_defaults_for_the_ipv6_half(topology):
    spec = topology(cluster("{ipFamily: dual}"))
    assert (spec.ip_family, spec.pod_subnet, spec.service_subnet) == ("dual", "10.244.0.0/16", "10.96.0.0/16")
    assert (spec.pod_subnet_v6, spec.service_subnet_v6) == ("fd00:10:244::/56", "fd00:10:96::/112")
    assert (spec.underlay_subnet_v6, spec.node_cidr_prefix_v6) == ("fd00:192:168:1::/64", 64)


def test_dual_reads_comma_separated_pairs(topology):
    spec = topology(
        cluster(
            "{ipFamily: dual, podSubnet: '10.1.0.0/16, fd00:1::/56', serviceSubnet: '10.2.0.0/16,fd00:2::/112'}",
            "underlay: {subnetIPv6: 'fd00:9::/64'}\npodCIDRPrefixIPv6: 72",
        )
    )
    assert (spec.pod_subnet, spec.pod_subnet_v6) == ("10.1.0.0/16", "fd00:1::/56")
    assert (spec.service_subnet, spec.service_subnet_v6) == ("10.2.0.0/16", "fd00:2::/112")
    assert (spec.underlay_subnet_v6, spec.node_cidr_prefix_v6) == ("fd00:9::/64", 72)


def test_an_ipv4_cluster_is_as_before(topology):
    spec = topology(cluster("{podSubnet: 10.244.0.0/16}", "underlay: {subnetIPv6: 'fd00:9::/64'}"))
    assert (spec.ip_family, spec.pod_subnet_v6, spec.service_subnet_v6) == ("ipv4", "", "")
    plan = plan_cluster(spec, Manifests())
    assert plan.dual is None and "dual" not in plan.to_dict()
    assert dual_stack_lines(plan) == []
    assert pod_ips(plan, plan.pods[0].key, plan.pods[0].ip) == [plan.pods[0].ip]


@pytest.mark.parametrize(
    ("networking", "testbed", "expected"),
    [
        (
            "{podSubnet: 'fd00:10:244::/56'}",
            "",
            "networking.podSubnet: 'fd00:10:244::/56': an IPv6 or dual-stack range needs ipFamily: dual",
        ),
        (
            "{serviceSubnet: '10.96.0.0/16,fd00::/112'}",
            "",
            "networking.serviceSubnet: '10.96.0.0/16,fd00::/112': an IPv6 or dual-stack range needs ipFamily: dual",
        ),
        (
            "{ipFamily: dual, podSubnet: '10.1.0.0/16,10.2.0.0/16'}",
            "",
            "networking.podSubnet: '10.1.0.0/16,10.2.0.0/16': the two CIDRs must be of different IP families",
        ),
        (
            "{ipFamily: dual, podSubnet: 'fd00:1::/56,10.1.0.0/16'}",
            "",
            "networking.serviceSubnet: kind's default serviceSubnet (IPv4 first): its first family differs from "
            "podSubnet's (IPv6); the testbed emulates one primary family for pods, nodes and Services: list both pairs "
            "IPv6 first",
        ),
        (
            "{ipFamily: dual, podSubnet: 'a,b,c'}",
            "",
            "networking.podSubnet: 'a,b,c': at most one CIDR per IP family (two)",
        ),
        (
            "{ipFamily: dual}",
            "podCIDRPrefixIPv6: 120",
            "podCIDRPrefixIPv6: /120 is more than 16 bits longer than podSubnet fd00:10:244::/56 (kube-controller-manager's node-cidr-mask-size-ipv6 limit)",
        ),
        (
            "{ipFamily: dual}",
            "podCIDRPrefixIPv6: 48",
            "podCIDRPrefixIPv6: /48 is larger than podSubnet fd00:10:244::/56",
        ),
        (
            "{ipFamily: dual, serviceSubnet: '10.96.0.0/16,fd00:10:96::/64'}",
            "",
            "networking.serviceSubnet: fd00:10:96::/64 is too large: an IPv6 serviceSubnet is /108 or smaller",
        ),
        (
            "{ipFamily: dual, podSubnet: '10.1.0.0/16,fe80::/56'}",
            "",
            "networking.podSubnet: fe80::/56 overlaps fe80::/10 (link-local): it cannot be given to interfaces or routed",
        ),
        (
            "{ipFamily: dual}",
            "underlay: {subnetIPv6: 'fd00:10:244:1::/64'}",
            "networking.podSubnet: fd00:10:244::/56 overlaps underlay.subnetIPv6 fd00:10:244:1::/64",
        ),
        ("{ipFamily: dual4}", "", "networking.ipFamily: must be one of ipv4, ipv6, dual, got 'dual4'"),
    ],
)
def test_bad_input_is_one_line_naming_the_field(topology, networking, testbed, expected):
    assert one_problem(topology, cluster(networking, testbed)) == expected


def test_single_stack_ipv6_is_no_longer_refused(topology):
    # built since: tests/unit/test_ipv6_only.py
    assert topology(cluster("{ipFamily: ipv6}")).ip_family == "ipv6"


def test_pods_mirror_their_ipv4_host_offset_in_their_nodes_64(topology):
    spec = topology(cluster("{ipFamily: dual}", "externalHosts: [{name: laptop, ip: 192.168.1.10}]"))
    plan = plan_cluster(spec, Manifests())
    dual = plan.dual
    assert dual is not None and dual.families == ("IPv4", "IPv6")
    assert [(n.name, n.host_ip, n.pod_cidr, n.gateway) for n in dual.nodes] == [
        ("kind-control-plane", "fd00:192:168:1::2", "fd00:10:244::/64", "fd00:10:244::1"),
        ("kind-worker", "fd00:192:168:1::3", "fd00:10:244:1::/64", "fd00:10:244:1::1"),
        ("kind-worker2", "fd00:192:168:1::4", "fd00:10:244:2::/64", "fd00:10:244:2::1"),
    ]
    for pod in plan.pods:  # CoreDNS
        v4_offset = int(pod.ip.rsplit(".", 1)[1])
        assert dual.pods[pod.key] == f"{dual.node(pod.node).pod_cidr.split('::')[0]}::{v4_offset:x}"
        assert pod_ips(plan, pod.key, pod.ip) == [pod.ip, dual.pods[pod.key]]
        assert f"  IP:  {dual.pods[pod.key]}" in describe_pod(plan, pod)
    assert dual.externals == {"laptop": "fd00:192:168:1::a"}
    assert [(r.node, r.dst, r.via) for r in dual.routes if r.node == "kind-worker"] == [
        ("kind-worker", "fd00:10:244::/64", "fd00:192:168:1::2"),
        ("kind-worker", "fd00:10:244:2::/64", "fd00:192:168:1::4"),
    ]
    assert node_pod_cidrs(plan, "kind-worker", "10.244.1.0/24") == ["10.244.1.0/24", "fd00:10:244:1::/64"]
    assert json.loads(json.dumps(plan.to_dict()))["dual"]["pod_subnet"] == "fd00:10:244::/56"
    assert plan_cluster(spec, Manifests()) == plan  # deterministic


def test_node_lines_add_addresses_without_dad_and_host_gw_routes(topology):
    plan = plan_cluster(topology(cluster("{ipFamily: dual}")), Manifests())
    assert plan.dual is not None
    assert node_lines6(plan.dual, "kind-worker", "cni0") == [
        "addr add fd00:192:168:1::3/64 dev eth0 nodad",
        "addr add fe80::3/64 dev eth0 nodad",
        "addr add fd00:10:244:1::1/64 dev cni0 nodad",
        "addr add fe80::1/64 dev cni0 nodad",
        "route replace fd00:10:244::/64 via fd00:192:168:1::2 dev eth0",
        "route replace fd00:10:244:2::/64 via fd00:192:168:1::4 dev eth0",
    ]
    assert link_local("fd00:192:168:1::a") == "fe80::a"


def test_pod_address_request_asks_for_no_dad():
    kind, _flags, body = addr6_add(7, "fd00:10:244:1::2", 64)
    family, prefix, flags, _scope, index = body[0], body[1], body[2], body[3], int.from_bytes(body[4:8], "little")
    assert (kind, family, prefix, flags & IFA_F_NODAD, index) == (20, socket.AF_INET6, 64, IFA_F_NODAD, 7)
    assert socket.inet_pton(socket.AF_INET6, "fd00:10:244:1::2") in body


def test_agent_config_carries_ip6_only_where_given():
    config = {"pods": [{"netns": "/run/netns/a", "pod": "a", "namespace": "default", "ip": "10.244.1.2", "ports": []}]}
    assert "ip6" not in with_ipv6(json.loads(json.dumps(config)), {})["pods"][0]
    dual = with_ipv6(config, {"/run/netns/a": "fd00:10:244:1::2"})
    assert parse_config(dual).pods[0].ip6 == "fd00:10:244:1::2"
    assert parse_config({"pods": [{**config["pods"][0], "ip6": ""}]}).pods[0].ip6 == ""


SERVICES = pathlib.Path(__file__).resolve().parents[2] / "manifests" / "dual-stack-services.yaml"


def _service_plan(topology, networking: str = "{ipFamily: dual}", extra: str = ""):
    files = [str(SERVICES)]
    if extra:
        path = pathlib.Path(tempfile.mkdtemp()) / "extra.yaml"
        path.write_text(extra, encoding="utf-8")
        files.append(str(path))
    return plan_cluster(topology(cluster(networking)), load_manifests(files))


def test_services_get_the_api_servers_families_and_a_clusterip_per_family(topology):
    plan = _service_plan(topology)
    assert plan.dual is not None and plan.services is not None
    fams = {k: (f.policy, f.families, len(f.cluster_ips)) for k, f in plan.dual.services.items()}
    assert fams == {
        "default/echo-single": ("SingleStack", ("IPv4",), 1),
        "default/echo-prefer": ("PreferDualStack", ("IPv4", "IPv6"), 2),
        "default/echo-require": ("RequireDualStack", ("IPv4", "IPv6"), 2),
        "default/echo-headless": ("PreferDualStack", ("IPv4", "IPv6"), 1),
        "default/kubernetes": ("SingleStack", ("IPv4",), 1),
        "kube-system/kube-dns": ("SingleStack", ("IPv4",), 1),
    }
    prefer = plan.services.service("default", "echo-prefer")
    ip4, ip6 = plan.dual.services[prefer.key].cluster_ips
    assert ip4 == prefer.cluster_ip and ipaddress.ip_address(ip6) in ipaddress.ip_network("fd00:10:96::/112")
    assert int(ipaddress.ip_address(ip6)) & 0xFFFF == int(ipaddress.ip_address(ip4)) & 0xFFFF  # mirrored offset
    assert service_family_fields(plan, prefer.key)["clusterIPs"] == [ip4, ip6]
    # one IPv6 slice per dual-stack Service, its endpoints the pods' IPv6 addresses
    slices6 = {s.service: s for s in plan.dual.slices(plan.services)}
    assert set(slices6) == {"echo-prefer", "echo-require", "echo-headless"}
    echo = sorted(plan.dual.pods[p.key] for p in plan.pods if p.labels.get("app") == "echo")
    assert sorted(e.ip for e in slices6["echo-prefer"].endpoints) == echo
    assert {s.address_type for s in slices6.values()} == {"IPv6"}
    # kube-proxy's IPv6 view: the dual-stack proxied Services only, with their IPv6 ClusterIP
    view = plan.dual.ipv6_services(plan.services)
    assert {s.name: s.cluster_ip for s in view.services} == {
        "echo-prefer": ip6,
        "echo-require": plan.dual.services["default/echo-require"].cluster_ips[1],
    }
    # and the cluster DNS: A and AAAA for dual-stack names, AAAA for every pod
    a = dict(plan.dns_records[0])
    aaaa = [r for r in plan.dns_records[0] if ":" in r[1]]
    assert ("echo-prefer.default.svc.cluster.local", ip6) in aaaa
    assert a["echo-single.default.svc.cluster.local"] == plan.services.service("default", "echo-single").cluster_ip
    assert not [r for r in aaaa if r[0].startswith("echo-single.")]
    assert sorted(ip for n, ip in aaaa if n.startswith("echo-headless.")) == echo
    pod = plan.pods[0]
    ip6_pod = plan.dual.pods[pod.key]
    assert (f"{ip6_pod.replace(':', '-')}.{pod.namespace}.pod.cluster.local", ip6_pod) in aaaa


def test_an_ipv4_cluster_refuses_require_dual_stack_when_planning(topology):
    with pytest.raises(SpecError) as info:
        _service_plan(topology, "{ipFamily: ipv4}")
    (p,) = info.value.problems
    assert (p.document, p.path, p.message) == (
        "Service default/echo-require",
        "spec.ipFamilyPolicy",
        "RequireDualStack cannot be satisfied: this cluster is IPv4 single-stack",
    )


def test_an_ipv4_clusters_services_keep_no_family_fields(topology):
    spec = topology(cluster("{ipFamily: ipv4}"))
    manifests = load_manifests([str(SERVICES)])
    bare = dataclasses.replace(
        manifests, services=tuple(s for s in manifests.services if s.ip_family_policy != "RequireDualStack")
    )
    plan = plan_cluster(spec, bare)
    assert plan.dual is None and service_family_fields(plan, "default/echo-prefer") == {}
    assert not [r for r in plan.dns_records[0] if ":" in r[1]]


def test_single_stack_with_two_families_is_refused(topology):
    extra = """
apiVersion: v1
kind: Service
metadata: {name: two, namespace: default}
spec:
  ipFamilyPolicy: SingleStack
  ipFamilies: [IPv4, IPv6]
  ports: [{port: 80}]
"""
    with pytest.raises(SpecError) as info:
        _service_plan(topology, extra=extra)
    (p,) = info.value.problems
    assert (p.path, p.message) == (
        "spec.ipFamilyPolicy",
        "'SingleStack': must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
    )


def test_nftables_with_dual_is_accepted(topology):
    """Both proxiers in nftables mode: table ip kube-proxy and table ip6 kube-proxy (test_kubeproxy_ip6.py)."""
    assert topology(cluster("{ipFamily: dual, kubeProxyMode: nftables}")).kube_proxy_mode == "nftables"


def test_ipv6_dnat_is_written_with_brackets():
    from testbed.rules.model import Dnat
    from testbed.rules.render_iptables import _VERDICTS

    assert _VERDICTS[Dnat](Dnat("fd00:10:244:1::2", 80)) == "-j DNAT --to-destination [fd00:10:244:1::2]:80"
    assert _VERDICTS[Dnat](Dnat("10.244.1.2", 80)) == "-j DNAT --to-destination 10.244.1.2:80"


POLICY = SERVICES.parent / "dual-stack-policy.yaml"


def test_the_ipv6_policy_world_and_its_oracle(topology):
    from testbed.netpol.oracle import Flow, decide
    from testbed.plan.dualstack import ipv6_world

    plan = plan_cluster(topology(cluster("{ipFamily: dual}")), load_manifests([str(SERVICES), str(POLICY)]))
    assert plan.dual is not None
    world = ipv6_world(plan)
    assert world.ip_version == 6 and {p.ip for p in world.pods} == set(plan.dual.pods.values())
    echo = next(p for p in plan.pods if p.labels.get("app") == "echo")
    dst = plan.dual.pods[echo.key]
    assert decide(Flow(plan.dual.pods["default_client"], dst, 80), world).allowed
    assert not decide(Flow(plan.dual.pods["default_other"], dst, 80), world).allowed
    assert decide(Flow("fd00:192:168:1::2", dst, 80), world).allowed  # the ipBlock
    assert not decide(Flow("fd00:192:168:1::a", dst, 80), world).allowed  # its except
    assert not decide(Flow("10.244.2.2", dst, 80), world).allowed  # an IPv4 source never matches an IPv6 world


def test_the_ipv6_policy_table_is_the_ipv4_ones_twin(topology):
    from testbed.netpol.nft import render
    from testbed.plan.dualstack import ipv6_script, policy_rulesets6

    plan = plan_cluster(topology(cluster("{ipFamily: dual}")), load_manifests([str(SERVICES), str(POLICY)]))
    text = ipv6_script(render(policy_rulesets6(plan)["kind-worker"]))
    assert "table inet testbed-netpol6 {" in text and "type ipv6_addr" in text and "ip6 saddr @" in text
    assert "ipv4_addr" not in text and "ip saddr" not in text and "inet testbed-netpol " not in text
    (block,) = [st for st in policy_rulesets6(plan)["kind-worker"].tables[0].sets if st.interval]
    nets = [ipaddress.ip_network(e) for e in block.elements]  # the except splits the cidr
    assert any(ipaddress.ip_address("fd00:192:168:1::2") in n for n in nets)
    assert not any(ipaddress.ip_address("fd00:192:168:1::a") in n for n in nets)
    assert sum(n.num_addresses for n in nets) == 2**64 - 1 and "10.244." not in text
    # the IPv4 table keeps only the IPv4 side: the IPv6 ipBlock contributes nothing there
    (block4,) = [st for st in plan.policy_rulesets["kind-worker"].tables[0].sets if st.interval]
    assert block4.elements == ()


def test_ipv6_probe_groups_swap_every_address_for_its_twin(topology):
    from testbed.experiment.expand import expand
    from testbed.experiment.family import ipv6_addresses, ipv6_probes
    from testbed.experiment.model import Endpoints, PodSelection, ProbeGroup, ServiceTarget
    from testbed.experiment.records import make_row

    plan = plan_cluster(topology(cluster("{ipFamily: dual}")), load_manifests([str(SERVICES)]))
    assert plan.dual is not None
    web = Endpoints(pods=PodSelection(names=tuple(p.name for p in plan.pods if p.labels.get("app") == "echo")))
    group = ProbeGroup("g", web, web, protocols=("TCP",), family="IPv6")
    probes = expand(plan, group)
    assert probes and all(":" in p.dst_ip and ":" in p.src.ip for p in probes)
    assert all(p.expect_sources == (p.src.ip,) for p in probes if p.src.kind == "pod")
    assert make_row("r", "s", 0.0, probes[0], "connected", 1.0, None, None)["family"] == "IPv6"
    ipv4 = expand(plan, dataclasses.replace(group, family="IPv4"))
    assert make_row("r", "s", 0.0, ipv4[0], "connected", 1.0, None, None)["family"] == "IPv4"
    twin = ipv6_addresses(plan)
    assert [twin[p.dst_ip] for p in ipv4] == [p.dst_ip for p in probes]
    # a Service: its IPv6 ClusterIP; a SingleStack one has none, an error naming it
    prefer = dataclasses.replace(group, target=Endpoints(service=ServiceTarget("echo-prefer")))
    assert {p.dst_ip for p in expand(plan, prefer)} == {plan.dual.services["default/echo-prefer"].cluster_ips[1]}
    single = dataclasses.replace(group, target=Endpoints(service=ServiceTarget("echo-single")))
    with pytest.raises(SpecError, match=r"service echo-single 10\.96\.[0-9.]+ has no IPv6 address"):
        expand(plan, single)
    # SCTP, scapy, iperf3 and HTTP go over IPv6 too (a crafted source is the group's own, IPv6)
    (sctp,) = ipv6_probes(plan, [dataclasses.replace(ipv4[0], protocol="SCTP")])
    assert sctp.protocol == "SCTP" and sctp.dst_ip == probes[0].dst_ip
    (crafted,) = ipv6_probes(plan, [dataclasses.replace(ipv4[0], method="scapy", source_ip=ipv4[0].src.ip)])
    assert crafted.source_ip == probes[0].src.ip
    (web,) = ipv6_probes(plan, [dataclasses.replace(ipv4[0], method="http", http_scheme="http", http_path="/")])
    assert web.method == "http" and web.dst_ip == probes[0].dst_ip and ":" in web.dst_ip
    ipv4_plan = plan_cluster(topology(cluster("{ipFamily: ipv4}")), Manifests())
    coredns = Endpoints(pods=PodSelection(names=(ipv4_plan.pods[0].name,)))
    with pytest.raises(SpecError, match="IPv6 needs a dual-stack cluster"):
        expand(ipv4_plan, ProbeGroup("g", coredns, Endpoints(nodes=()), family="IPv6"))


def test_the_prober_takes_every_protocol_over_ipv6_with_ipv6_addresses_only():
    from testbed.traffic.prober import Probe, _check

    probe = Probe(1, "", "fd00::2", 80, "TCP")
    for proto in ("TCP", "UDP", "SCTP"):
        assert _check(dataclasses.replace(probe, protocol=proto)) is None
    assert _check(dataclasses.replace(probe, dst_ip="fd00::zz")) == "not an IPv6 address: 'fd00::zz'"
    assert _check(dataclasses.replace(probe, src_ip="10.0.0.1")) == "not an IPv6 address: '10.0.0.1'"
    assert _check(dataclasses.replace(probe, src_ip="fd00::3")) is None
    assert _check(Probe(1, "", "10.244.1.2", 80, "TCP")) is None


def test_the_node_bridge_drops_pods_mld_reports():
    from testbed.emu.dualstack import mld_filter

    text = mld_filter()
    assert text.startswith("table bridge testbed-mld {") and "hook prerouting" in text
    assert "icmpv6 type { mld-listener-report, mld2-listener-report } drop" in text


def test_ipv6_slices_follow_the_ipv4_ones_readiness(topology):
    from testbed.plan.services import update_endpoints

    plan = _service_plan(topology)
    assert plan.dual is not None and plan.services is not None
    echo = next(p for p in plan.pods if p.labels.get("app") == "echo")
    down = dataclasses.replace(
        plan, services=update_endpoints(plan.services, plan.pods, not_ready={f"{echo.namespace}/{echo.name}"})
    )
    assert down.dual is not None
    (prefer,) = [s for s in down.dual.slices(down.services) if s.service == "echo-prefer"]
    ready = {e.ip: e.ready for e in prefer.endpoints}
    assert ready[plan.dual.pods[echo.key]] is False and sum(ready.values()) == len(ready) - 1
    assert plan.dual.pods[echo.key] not in [ip for n, ip in down.dns_records[0] if n.startswith("echo-headless.")]
