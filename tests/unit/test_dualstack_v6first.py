"""An IPv6-first dual-stack cluster (issue 15): IPv6 the primary family of the API objects.

The kind config's order (spec/v6first.py), kube-apiserver's defaulting of a Service's families
with an IPv6 primary, kube-dns's IPv6 ClusterIP in resolv.conf, the order of podIPs, InternalIPs
and podCIDRs, what the IPv4 proxier and the DNS A records see (plan/v6first.py), `testbed
explain`'s default family, experiments' IPv4 probes, and the one-line refusals.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from testbed.cli import main
from testbed.errors import SpecError
from testbed.experiment.expand import expand
from testbed.experiment.model import Endpoints, PodSelection, ProbeGroup, ServiceTarget
from testbed.plan.build import plan_cluster
from testbed.plan.dualstack import node_ips, node_pod_cidrs, pod_ips
from testbed.plan.podnet import resolv_conf
from testbed.plan.v6first import cluster_ip_column, ipv4_side, primary_pod_ip
from testbed.spec.selectors import LabelSelector
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests
from testbed.views import describe_node, describe_pod, get_nodes

from .test_dualstack import cluster, one_problem

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOPOLOGY = os.path.join(REPO, "topologies", "dual-stack-v6first.yaml")
SERVICES = os.path.join(REPO, "manifests", "dual-stack-services.yaml")
POLICY = os.path.join(REPO, "manifests", "dual-stack-policy.yaml")
V6FIRST = (
    "{ipFamily: dual, podSubnet: 'fd00:10:244::/56,10.244.0.0/16', serviceSubnet: 'fd00:10:96::/112,10.96.0.0/16'}"
)


def _plan(*files: str):
    return plan_cluster(load_topology(TOPOLOGY), load_manifests([SERVICES, *files]), seed=1)


def test_ipv6_first_pairs_make_ipv6_the_primary_family(topology):
    spec = topology(cluster(V6FIRST))
    assert (spec.ip_family, spec.primary_family) == ("dual", "IPv6")
    # the two halves stay where an IPv4-first cluster has them (spec/v6first.py)
    assert (spec.pod_subnet, spec.pod_subnet_v6) == ("10.244.0.0/16", "fd00:10:244::/56")
    assert (spec.service_subnet, spec.service_subnet_v6) == ("10.96.0.0/16", "fd00:10:96::/112")
    assert topology(cluster("{ipFamily: dual}")).primary_family == "IPv4"


@pytest.mark.parametrize(
    "networking,testbed,expected",
    [
        (
            "{ipFamily: dual, podSubnet: 'fd00:10:244::/56,10.244.0.0/16', serviceSubnet: '10.96.0.0/16,fd00:10:96::/112'}",
            "",
            "networking.serviceSubnet: '10.96.0.0/16,fd00:10:96::/112': its first family differs from podSubnet's "
            "(IPv6); the testbed emulates one primary family for pods, nodes and Services: list both pairs IPv6 first",
        ),
        (
            "{ipFamily: dual, podSubnet: '10.244.0.0/16,fd00:10:244::/56', serviceSubnet: 'fd00:10:96::/112,10.96.0.0/16'}",
            "",
            "networking.serviceSubnet: 'fd00:10:96::/112,10.96.0.0/16': its first family differs from podSubnet's "
            "(IPv4); the testbed emulates one primary family for pods, nodes and Services: list both pairs IPv4 first",
        ),
        (
            "{ipFamily: dual, podSubnet: 'fd00:10:244::/56,10.244.0.0.0/16'}",
            "",
            "networking.podSubnet: '10.244.0.0.0/16' is not a valid IPv4 CIDR",
        ),
        (
            V6FIRST,
            "advertiseServiceSubnet: true",
            "advertiseServiceSubnet: with an IPv6-first dual-stack cluster: not built yet; use IPv4 first",
        ),
    ],
)
def test_bad_input_is_one_line_naming_the_field(topology, networking, testbed, expected):
    assert one_problem(topology, cluster(networking, testbed)) == expected


def test_racks_are_refused_in_one_line(topology):
    racks = (
        "underlay:\n  subnets:\n    - {name: rack1, cidr: 192.168.1.0/24}\n    - {name: rack2, cidr: 192.168.2.0/24}\n"
        "routing: vxlan"
    )
    assert one_problem(topology, cluster(V6FIRST, racks)) == (
        "underlay.subnets: racks with an IPv6-first dual-stack cluster: not built yet; use one subnet, or IPv4 first"
    )


def test_services_get_the_ipv6_primary_defaults():
    plan = _plan()
    dual = plan.dual
    assert dual is not None and dual.families == ("IPv6", "IPv4")
    fams = {k: (f.policy, f.families, f.cluster_ips) for k, f in dual.services.items()}
    single, prefer = plan.services.service("default", "echo-single"), plan.services.service("default", "echo-prefer")
    assert fams["default/echo-single"][:2] == ("SingleStack", ("IPv6",))
    assert fams["default/echo-prefer"][:2] == ("PreferDualStack", ("IPv6", "IPv4"))
    assert fams["default/echo-prefer"][2][1] == prefer.cluster_ip  # the IPv4 one second
    assert fams["default/echo-require"][:2] == ("RequireDualStack", ("IPv4", "IPv6"))  # as given
    assert fams["default/echo-headless"][1:] == (("IPv6", "IPv4"), ("None",))
    assert fams["kube-system/kube-dns"] == ("SingleStack", ("IPv6",), ("fd00:10:96::a",))
    assert fams["default/kubernetes"] == ("SingleStack", ("IPv6",), ("fd00:10:96::1",))
    # spec.clusterIP and kubectl's column: the primary ClusterIP
    assert cluster_ip_column(plan, single) == fams["default/echo-single"][2][0]
    assert cluster_ip_column(plan, prefer) == fams["default/echo-prefer"][2][0]
    assert ":" in cluster_ip_column(plan, single) and ":" in cluster_ip_column(plan, prefer)


def test_kube_dns_is_ipv6_in_every_pods_resolv_conf():
    plan = _plan()
    assert plan.dns_server == "fd00:10:96::a"
    pod = next(p for p in plan.pods if p.labels.get("app") == "echo")
    assert "nameserver fd00:10:96::a\n" in resolv_conf(pod, plan.dns_server)


def test_the_ipv4_side_leaves_out_the_services_without_ipv4():
    plan = _plan()
    single = plan.services.service("default", "echo-single")
    dns = plan.services.service("kube-system", "kube-dns")
    side = ipv4_side(plan.services, plan.dual)
    assert {s.name for s in side.services} == {"echo-prefer", "echo-require", "echo-headless"}
    assert not [sl for sl in side.slices if sl.service in ("echo-single", "kube-dns")]
    # the IPv4 proxier has no rule for their IPv4 allocations, the IPv6 one has their IPv6 ClusterIPs
    rules4 = plan.kube_proxy_rulesets["kind-worker"]
    text4 = str(rules4)
    assert single.cluster_ip not in text4 and dns.cluster_ip not in text4
    assert plan.services.service("default", "echo-prefer").cluster_ip in text4
    # DNS: AAAA only for the SingleStack IPv6 Service, both for PreferDualStack
    a, _ = plan.dns_records
    names = {}
    for name, ip in a:
        names.setdefault(name, set()).add(ip)
    assert names["echo-single.default.svc.cluster.local"] == {plan.dual.services["default/echo-single"].cluster_ips[0]}
    assert names["echo-prefer.default.svc.cluster.local"] == set(plan.dual.services["default/echo-prefer"].cluster_ips)
    assert names["kube-dns.kube-system.svc.cluster.local"] == {"fd00:10:96::a"}


def test_an_ipv4_first_plan_is_untouched_by_the_ipv4_side():
    plan = plan_cluster(
        load_topology(os.path.join(REPO, "topologies", "dual-stack.yaml")), load_manifests([SERVICES]), seed=1
    )
    assert plan.dual is not None and plan.dual.families == ("IPv4", "IPv6")
    assert ipv4_side(plan.services, plan.dual) is plan.services
    assert plan.dns_server == "10.96.0.10"


def test_pods_and_nodes_list_ipv6_first():
    plan = _plan()
    dual = plan.dual
    pod = next(p for p in plan.pods if p.labels.get("app") == "echo")
    node = plan.node(pod.node)
    assert pod_ips(plan, pod.key, pod.ip) == [dual.pods[pod.key], pod.ip]
    assert primary_pod_ip(plan, pod.key, pod.ip) == dual.pods[pod.key]
    assert node_ips(plan, node.name, node.host_ip) == [dual.node(node.name).host_ip, node.host_ip]
    assert node_pod_cidrs(plan, node.name, node.pod_cidr) == [dual.node(node.name).pod_cidr, node.pod_cidr]
    assert f"IP:           {dual.pods[pod.key]}\nIPs:\n  IP:  {dual.pods[pod.key]}\n  IP:  {pod.ip}\n" in describe_pod(
        plan, pod
    )
    assert f"   {dual.node(node.name).host_ip}   {dual.node(node.name).pod_cidr}   " in get_nodes(plan, wide=True)
    v6 = dual.node(node.name)
    assert f"PodCIDR:      {v6.pod_cidr} (gateway {v6.gateway} on cni0)" in describe_node(plan, node.name)


def test_the_shell_shows_the_primary_family_first():
    from testbed.shell.objects import Catalog

    plan = _plan()
    dual = plan.dual
    objects = Catalog(plan, load_manifests([SERVICES]))
    pod = next(p for p in plan.pods if p.labels.get("app") == "echo")
    obj = objects.find("pods", pod.namespace, pod.name)
    assert obj is not None and obj.fields["status.podIP"] == dual.pods[pod.key]
    doc = obj.body()
    assert doc["status"]["podIP"] == dual.pods[pod.key]
    assert [x["ip"] for x in doc["status"]["podIPs"]] == [dual.pods[pod.key], pod.ip]
    assert doc["status"]["hostIP"] == dual.node(pod.node).host_ip
    svc = objects.find("services", "default", "echo-prefer").body()["spec"]
    assert svc["clusterIP"] == svc["clusterIPs"][0] == dual.services["default/echo-prefer"].cluster_ips[0]
    assert svc["ipFamilies"] == ["IPv6", "IPv4"]
    slices = {
        (o.body()["metadata"]["labels"]["kubernetes.io/service-name"], o.body()["addressType"])
        for o in objects.objects("endpointslices")
    }
    assert ("echo-single", "IPv6") in slices and ("echo-single", "IPv4") not in slices  # no IPv4 slice
    assert {("echo-prefer", "IPv4"), ("echo-prefer", "IPv6")} <= slices
    endpoints = objects.find("endpoints", "default", "echo-single").body()["subsets"][0]["addresses"]
    assert {a["ip"] for a in endpoints} == {dual.pods[p.key] for p in plan.pods if p.labels.get("app") == "echo"}
    node = objects.find("nodes", "", pod.node).body()
    assert node["spec"]["podCIDR"] == dual.node(pod.node).pod_cidr
    assert node["status"]["addresses"][0] == {"type": "InternalIP", "address": dual.node(pod.node).host_ip}


def test_load_balancers_and_external_ips_are_refused_in_one_line(tmp_path):
    bad = tmp_path / "lb.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: lb}\n"
        "spec: {type: LoadBalancer, selector: {app: echo}, ports: [{port: 80}]}\n",
        encoding="utf-8",
    )
    with pytest.raises(SpecError) as info:
        _plan(str(bad))
    assert [(p.path, p.message) for p in info.value.problems] == [
        ("spec.type", "LoadBalancer in an IPv6-first dual-stack cluster: not built yet (use NodePort, or IPv4 first)")
    ]


def test_bad_input_through_the_cli_is_one_line_exit_2(tmp_path):
    topo = tmp_path / "t.yaml"
    topo.write_text(
        cluster("{ipFamily: dual, podSubnet: 'fd00:10:244::/56,10.244.0.0/16'}"),
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "testbed", "plan", str(topo)], capture_output=True, text=True, check=False, cwd=REPO
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "kind's default serviceSubnet (IPv4 first): its first family differs" in result.stderr


def test_explain_defaults_to_the_primary_family(capsys):
    args = ["explain", TOPOLOGY, "-f", SERVICES, "-f", POLICY, "--from", "client", "--to", "svc/echo-single"]
    assert main([*args, "--trace"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("trace client -> svc/echo-single (fd00:10:96::") and "DELIVERED" in out
    assert main([*args, "--family", "ipv4"]) == 2
    assert "svc/echo-single: no IPv4 ClusterIP (SingleStack IPv6); use --family ipv6" in capsys.readouterr().err
    args[-1] = "svc/echo-prefer"
    assert main([*args, "--family", "ipv4", "--trace"]) == 0
    assert "(10.96." in capsys.readouterr().out


def test_ipv4_probes_reach_only_services_with_ipv4():
    plan = _plan()
    web = Endpoints(pods=PodSelection(selector=LabelSelector.of({"app": "echo"})))

    def group(name: str, family: str) -> ProbeGroup:
        return ProbeGroup(f"to-{name}", web, Endpoints(service=ServiceTarget(name)), family=family)

    over6, over4 = expand(plan, group("echo-single", "IPv6")), expand(plan, group("echo-prefer", "IPv4"))
    assert over6 and {p.dst_ip for p in over6} == {plan.dual.services["default/echo-single"].cluster_ips[0]}
    assert over4 and {p.dst_ip for p in over4} == {plan.services.service("default", "echo-prefer").cluster_ip}
    with pytest.raises(SpecError) as info:
        expand(plan, group("echo-single", "IPv4"))
    assert "Service default/echo-single has no IPv4 ClusterIP (SingleStack IPv6" in info.value.problems[0].message
