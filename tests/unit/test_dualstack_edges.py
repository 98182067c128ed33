"""The IPv6 edges of a dual-stack cluster (issue 15): racks and the router, the outside world and
kind's IPv6 masquerade, IPv6 LoadBalancer and external addresses, hostNetwork pods' status."""

from __future__ import annotations

import os

import pytest

from testbed.emu.edges6 import lb_line6
from testbed.errors import SpecError
from testbed.experiment.family import ipv6_addresses
from testbed.plan import edges6
from testbed.plan.build import plan_cluster, replan
from testbed.plan.dualstack import external_ip_column, pod_ips
from testbed.rules.egress6 import egress6_nft
from testbed.spec.model import Manifests
from testbed.spec.topology import load_topology
from testbed.spec.underlay6 import twin
from testbed.spec.workloads import load_manifests

from .test_dualstack import one_problem  # the one-line check shared with the dual-stack tests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EDGES = os.path.join(ROOT, "topologies", "dual-stack-edges.yaml")
MANIFESTS = [os.path.join(ROOT, "manifests", f) for f in ("quickstart-app.yaml", "dual-stack-services.yaml")]
EDGE_SERVICES = os.path.join(ROOT, "manifests", "dual-stack-edges.yaml")

RACKS = """underlay:
  subnets:
    - {name: rack1, cidr: 192.168.1.0/24}
    - {name: rack2, cidr: 192.168.2.0/24}
    - {name: internet, cidr: 203.0.113.0/24, outside: true}
nodes: [{name: kind-worker2, rack: rack2}]
externalHosts: [{name: laptop, ip: 192.168.2.10}, {name: example-com, ip: 203.0.113.10}]"""


def cluster(testbed: str, networking: str = "{ipFamily: dual}") -> str:
    text = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"
    text += f"nodes: [{{role: control-plane}}, {{role: worker}}, {{role: worker}}]\nnetworking: {networking}\n"
    return text + f"---\napiVersion: testbed/v1alpha1\nkind: TestbedConfig\n{testbed}\n"


def test_racks_twins_read_like_their_ipv4_networks():
    assert twin("192.168.1.0/24", False) == "fd00:192:168:1::/64"  # the one-subnet default's reading
    assert twin("192.168.2.0/24", False) == "fd00:192:168:2::/64"
    assert twin("203.0.113.0/24", True) == "2001:db8:203:0:113::/80"  # the documentation ranges
    assert twin("10.0.0.128/25", False) == "fd00:10:0:0:128::/80"  # longer than /24: the 4th octet too
    assert twin("10.0.0.0/25", False) != twin("10.0.0.128/25", False)


def test_racks_in_dual_get_an_ipv6_segment_each_and_routes_via_the_router(topology):
    plan = plan_cluster(topology(cluster(RACKS)), Manifests())
    dual = plan.dual
    assert dual is not None
    assert [(r.name, r.cidr, r.router_ip) for r in dual.racks] == [
        ("rack1", "fd00:192:168:1::/64", "fd00:192:168:1::1"),
        ("rack2", "fd00:192:168:2::/64", "fd00:192:168:2::1"),
        ("internet", "2001:db8:203:0:113::/80", "2001:db8:203:0:113::1"),
    ]
    # members keep their IPv4 host number in their rack's segment
    assert [(n.name, n.host_ip) for n in dual.nodes] == [
        ("kind-control-plane", "fd00:192:168:1::2"),
        ("kind-worker", "fd00:192:168:1::3"),
        ("kind-worker2", "fd00:192:168:2::2"),
    ]
    assert dual.externals == {"laptop": "fd00:192:168:2::a", "example-com": "2001:db8:203:0:113::a"}
    assert dual.prefix_of("example-com") == 80 and dual.prefix_of("kind-worker2") == 64
    assert [(r.dst, r.via) for r in dual.underlay_routes if r.node == "kind-worker2"] == [
        ("fd00:192:168:1::/64", "fd00:192:168:2::1"),
        ("2001:db8:203:0:113::/80", "fd00:192:168:2::1"),
    ]
    assert [(r.dst, r.via) for r in dual.underlay_routes if r.node == "example-com"] == [
        ("fd00:192:168:1::/64", "2001:db8:203:0:113::1"),
        ("fd00:192:168:2::/64", "2001:db8:203:0:113::1"),
    ]
    # host-gw stays on a segment, as in IPv4: kind-worker2 (rack2) routes no peer's /64
    assert [r.dst for r in dual.routes if r.node == "kind-worker"] == ["fd00:10:244::/64"]
    assert not [r for r in dual.routes if r.node == "kind-worker2"]
    assert edges6.router_lines6(plan, dual.racks) == [
        "addr add fd00:192:168:1::1/64 dev eth0 nodad",
        "addr add fd00:192:168:2::1/64 dev eth1 nodad",
        "addr add 2001:db8:203:0:113::1/80 dev eth2 nodad",
    ]
    assert plan_cluster(topology(cluster(RACKS)), Manifests()) == plan  # deterministic


def test_a_racks_cidr_ipv6_is_taken_and_checked(topology):
    given = RACKS.replace("cidr: 192.168.2.0/24}", "cidr: 192.168.2.0/24, cidrIPv6: 'fd00:aa::/64'}")
    plan = plan_cluster(topology(cluster(given)), Manifests())
    assert plan.dual is not None and plan.dual.node("kind-worker2").host_ip == "fd00:aa::2"
    clash = RACKS.replace("cidr: 192.168.2.0/24}", "cidr: 192.168.2.0/24, cidrIPv6: 'fd00:192:168:1::/64'}")
    assert one_problem(topology, cluster(clash)) == (
        "underlay.subnets[rack2].cidrIPv6: fd00:192:168:1::/64 overlaps underlay.subnets[rack1].cidrIPv6 fd00:192:168:1::/64"
    )
    small = RACKS.replace("cidr: 192.168.2.0/24}", "cidr: 192.168.2.0/24, cidrIPv6: 'fd00:aa::/124'}")
    assert one_problem(topology, cluster(small)) == (
        "underlay.subnets[rack2].cidrIPv6: fd00:aa::/124 is too small for the host numbers of 192.168.2.0/24 (at most /120)"
    )
    pods = RACKS.replace("cidr: 192.168.2.0/24}", "cidr: 192.168.2.0/24, cidrIPv6: 'fd00:10:244:5::/64'}")
    assert one_problem(topology, cluster(pods)) == (
        "underlay.subnets[rack2].cidrIPv6: fd00:10:244:5::/64 overlaps networking.podSubnet fd00:10:244::/56"
    )
    both = RACKS.replace("underlay:\n", "underlay:\n  subnetIPv6: 'fd00:1::/64'\n")
    assert (
        one_problem(topology, cluster(both))
        == "underlay.subnetIPv6: with subnets (racks), give each subnet its cidrIPv6"
    )


def test_an_ipv4_cluster_with_racks_is_as_before(topology):
    given = RACKS.replace("cidr: 192.168.2.0/24}", "cidr: 192.168.2.0/24, cidrIPv6: 'fd00:aa::/64'}")
    spec = topology(cluster(given, "{podSubnet: 10.244.0.0/16}"))
    assert all(s.cidr_v6 == "" for s in spec.underlay_subnets)  # dropped, as underlay.subnetIPv6 is
    plan = plan_cluster(spec, Manifests())
    assert plan.dual is None and "cidr_v6" not in str(plan.to_dict())


def test_kinds_ipv6_masquerade_excludes_only_the_pod_subnet_and_local_addresses():
    text = egress6_nft("fd00:10:244::/56")
    rules = [line.strip() for line in text.splitlines() if "comment" in line]
    assert rules == [
        'fib daddr type local return comment "kind-masq-agent: traffic to the node itself is not masqueraded"',
        'ip6 daddr fd00:10:244::/56 return comment "kind-masq-agent: local traffic is not subject to MASQUERADE"',
        'masquerade comment "kind-masq-agent: outbound traffic is subject to MASQUERADE (must be last in chain)"',
    ]
    assert "table ip6 testbed-egress6 {" in text and "priority srcnat + 10" in text


def _edges_plan():
    return plan_cluster(load_topology(EDGES), load_manifests([*MANIFESTS, EDGE_SERVICES]), seed=1)


def test_a_dual_stack_load_balancer_gets_an_address_per_family_from_metallbs_annotation():
    plan = _edges_plan()
    dual = plan.dual
    assert dual is not None and plan.services is not None
    lb = plan.services.service("default", "echo-lb")
    assert lb.load_balancer_ingress == ("192.168.1.240",)  # the annotation's IPv6 entry is not IPv4's
    assert dual.lb_ingress == {"default/echo-lb": ("fd00:192:168:1::f0",)}
    assert external_ip_column(plan, lb) == "192.168.1.240,fd00:192:168:1::f0"
    holder = edges6.lb_announcers6(plan, dual.lb_ingress)["fd00:192:168:1::f0"]
    assert holder in ("kind-worker", "kind-worker2")  # not the control plane (exclude-from-external-load-balancers)
    assert lb_line6("fd00:192:168:1::f0", True) == "addr replace fd00:192:168:1::f0/128 dev eth0 nodad preferred_lft 0"
    # the IPv6 proxier sees both addresses of the Service's IPv6 side
    view = dual.ipv6_services(plan.services)
    assert view.service("default", "echo-lb").load_balancer_ingress == ("fd00:192:168:1::f0",)
    assert view.service("default", "echo-external").external_ips == ("2001:db8:198:51:100::7",)
    assert view.service("default", "echo-external").load_balancer_ingress == ()
    # probes over IPv6 find the twins
    twins = ipv6_addresses(plan)
    assert twins["192.168.1.240"] == "fd00:192:168:1::f0" and twins["198.51.100.7"] == "2001:db8:198:51:100::7"


def test_ipv6_lb_addresses_are_kept_across_replans_and_taken_from_the_pool_otherwise(tmp_path):
    first = tmp_path / "lb.yaml"
    first.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {type: LoadBalancer, ipFamilyPolicy: PreferDualStack,"
        " selector: {app: echo}, ports: [{port: 80}]}\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec: {type: LoadBalancer, ipFamilyPolicy: RequireDualStack,"
        " selector: {app: echo}, ports: [{port: 80}]}\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: c}\nspec: {type: LoadBalancer, selector: {app: echo}, ports: [{port: 80}]}\n"
    )
    spec = load_topology(EDGES)
    plan = plan_cluster(spec, load_manifests([*MANIFESTS, str(first)]))
    assert plan.dual is not None
    assert plan.dual.lb_ingress == {"default/a": ("fd00:192:168:1::c8",), "default/b": ("fd00:192:168:1::c9",)}
    only_b = tmp_path / "b.yaml"
    only_b.write_text(first.read_text().split("---\n")[1])
    again = replan(spec, load_manifests([*MANIFESTS, str(only_b)]), prev=plan)
    assert again.dual is not None and again.dual.lb_ingress == {"default/b": ("fd00:192:168:1::c9",)}


def test_ipv6_external_ips_are_routed_from_every_outside_host_and_the_router():
    plan = _edges_plan()
    dual = plan.dual
    assert dual is not None
    routes = edges6.service_routes6(
        plan, dual.external_ips, dual.lb_ingress, {n.name: n.host_ip for n in dual.nodes}, dual.racks
    )
    node = next(r.via for r in routes if r.member == "router")
    assert [(r.member, r.line()) for r in routes] == [
        ("laptop", "route replace 2001:db8:198:51:100::7/128 via fd00:192:168:2::1 dev eth0"),
        ("example-com", "route replace 2001:db8:198:51:100::7/128 via 2001:db8:203:0:113::1 dev eth0"),
        ("router", f"route replace 2001:db8:198:51:100::7/128 via {node} dev eth0"),
    ]
    assert node in {n.host_ip for n in dual.nodes}


def test_an_ipv6_external_ip_needs_a_dual_stack_cluster(topology, tmp_path):
    svc = tmp_path / "svc.yaml"
    svc.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {selector: {a: b}, ports: [{port: 80}],"
        " externalIPs: ['2001:db8::7']}\n"
    )
    with pytest.raises(SpecError) as info:
        plan_cluster(topology(cluster("externalHosts: []", "{podSubnet: 10.244.0.0/16}")), load_manifests([str(svc)]))
    (p,) = info.value.problems
    assert (p.path, p.message) == (
        "spec.externalIPs[0]",
        "'2001:db8::7': an IPv6 address needs a dual-stack cluster (networking.ipFamily: dual)",
    )
    svc.write_text(svc.read_text().replace("2001:db8::7", "fe80::7"))
    with pytest.raises(SpecError) as info:
        load_manifests([str(svc)])
    assert "may not be unspecified, loopback, link-local or multicast" in info.value.problems[0].message


def test_ipv6_probes_from_pods_leaving_the_pod_subnet_expect_their_nodes_address():
    from testbed.experiment.load import load_experiment

    exp = load_experiment(os.path.join(ROOT, "experiments", "dual-stack-edges.yaml"))
    assert exp is not None  # the shipped experiment loads and its probes expand (experiment/check.py)
    from testbed.experiment.expand import expand

    plan = _edges_plan()
    dual = plan.dual
    assert dual is not None
    groups = {g.name: g for step in exp.steps for g in step.probes}
    laptop = expand(plan, groups["pods-to-laptop-v6"])
    assert laptop and all(
        p.expect_sources == (dual.node(p.src.node).host_ip,) and "SNAT expected" in p.communication for p in laptop
    )
    internet = expand(plan, groups["pods-to-internet-v6"])
    assert internet and all(p.expect_sources == (dual.node(p.src.node).host_ip,) for p in internet)
    assert all(p.dst_ip == "2001:db8:203:0:113::a" for p in internet)
    # a pod to a LoadBalancer address is DNATed on its node first: kind's masquerade does not apply
    lb = expand(plan, groups["pods-to-lb-v6"])
    assert lb and all("kind's IPv6 masquerade" not in p.communication for p in lb)


def test_host_network_pods_list_their_nodes_ipv6_address(topology):
    manifests = load_manifests([os.path.join(ROOT, "manifests", "pod-networking.yaml")])
    plan = plan_cluster(topology(cluster("externalHosts: []")), manifests)
    assert plan.dual is not None
    pod = next(p for p in plan.pods if p.name == "node-metrics")
    node = plan.dual.node(pod.node)
    assert pod_ips(plan, pod.key, pod.ip) == [pod.ip, node.host_ip]
    assert plan.dual.host_network == {pod.key: node.host_ip}


@pytest.mark.parametrize(
    "rack, expected",
    [
        (
            "{name: rack2, cidr: 192.168.2.5/24}",
            "underlay.subnets[rack2].cidr: '192.168.2.5/24' is not a valid network",
        ),
        ("{name: rack2, cidr: 'fd00:2::/64'}", "underlay.subnets[rack2].cidr: 'fd00:2::/64': only IPv4 is emulated"),
        (
            "{name: rack2, cidr: 192.168.2.0/24, cidrIPv6: nope}",
            "underlay.subnets[rack2].cidrIPv6: 'nope' is not a valid network",
        ),
        (
            "{name: rack2, cidr: 192.168.2.0/24, cidrIPv6: 10.9.0.0/16}",
            "underlay.subnets[rack2].cidrIPv6: '10.9.0.0/16' is not an IPv6 network",
        ),
        (
            "{name: rack2, cidr: 192.168.2.0/24, cidrIPv6: 'ff02::/64'}",
            "underlay.subnets[rack2].cidrIPv6: ff02::/64: it cannot be given",
        ),
    ],
)
def test_bad_racks_in_dual_are_one_line_naming_the_field(topology, rack, expected):
    text = cluster(f"underlay:\n  subnets:\n    - {{name: rack1, cidr: 192.168.1.0/24}}\n    - {rack}")
    assert one_problem(topology, text).startswith(expected)


def test_the_first_racks_bad_cidr_ipv6_names_that_rack(topology):
    text = cluster(
        "underlay:\n  subnets:\n    - {name: rack1, cidr: 192.168.1.0/24, cidrIPv6: nope}\n    - {name: rack2, cidr: 192.168.2.0/24}"
    )
    assert one_problem(topology, text).startswith("underlay.subnets[rack1].cidrIPv6: 'nope' is not a valid network")
