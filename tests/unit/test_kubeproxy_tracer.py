"""The packet tracer over the rule model (kubeproxy/tracer.py), in both modes.

What a new connection becomes on a node: DNAT to which endpoint with which probability, source
kept or masqueraded (and to which address), REJECT, DROP or untouched. The expectations are
Kubernetes' documented behaviour (pod -> ClusterIP keeps the pod IP; external -> NodePort with
Cluster policy shows a node IP; with Local, the client's IP and only local endpoints; hairpin
traffic is masqueraded), and both modes must agree.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from testbed.kubeproxy import Packet, build_ruleset, trace
from testbed.plan.build import plan_cluster
from testbed.plan.services import plan_services
from testbed.spec.model import Manifests, ObjectRef
from testbed.spec.services import ServicePort, ServiceSpec

from ._services import LAPTOP, NODES, POD_SUBNET, POOL, REPO, SEED, world
from ._yaml import kind_cluster

MODES = ("iptables", "nftables")
THIRD, HALF, QUARTER = Fraction(1, 3), Fraction(1, 2), Fraction(1, 4)


def run(
    node: str,
    mode: str,
    src: str,
    dst: str,
    port: int,
    proto: str = "TCP",
    entry: str = "pod",
    plan=None,
    remembered=(),
):
    host_ip, cidr = NODES[node]
    rs = build_ruleset(plan or world()[3], node, host_ip, POD_SUBNET, mode)
    return trace(rs, Packet(src, dst, port, proto, entry), pod_cidr=cidr, remembered=remembered)


def svc_ip(name: str, plan=None) -> str:
    return (plan or world()[3]).service("default", name).cluster_ip


def client(node: str) -> str:
    """A pod address on `node` that no endpoint uses."""
    return NODES[node][1].replace("0/24", "50")


STABLE = {"10.244.1.2:8080", "10.244.1.3:8080", "10.244.2.3:8080"}


def test_fixture_placement_is_what_these_tests_assume():
    placed = sorted((p.node, p.ip) for p in world()[2])
    assert placed == [
        ("kind-worker", "10.244.1.2"),
        ("kind-worker", "10.244.1.3"),
        ("kind-worker2", "10.244.2.2"),
        ("kind-worker2", "10.244.2.3"),
    ]
    assert next(p.ip for p in world()[2] if p.name == "web-canary") == "10.244.2.2"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("node", sorted(NODES))
def test_pod_to_cluster_ip_spreads_evenly_and_keeps_the_pod_ip(node, mode):
    t = run(node, mode, client(node), svc_ip("web"), 80)
    assert t.endpoints() == {ep: THIRD for ep in STABLE}
    assert t.verdicts == {"dnat"} and t.masqueraded is False
    assert {o.source for o in t.outcomes} == {client(node)}
    assert {o.delivery for o in t.outcomes} == {"forward"}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("node", sorted(NODES))
def test_external_to_node_port_with_cluster_policy_is_masqueraded(node, mode):
    host_ip, cidr = NODES[node]
    t = run(node, mode, LAPTOP, host_ip, 30080, entry="underlay")
    assert t.endpoints() == {ep: THIRD for ep in STABLE} and t.masqueraded is True
    gateway = cidr.replace("0/24", "1")
    for o in t.outcomes:
        local = o.endpoint.startswith(cidr.rsplit(".", 1)[0] + ".")
        assert o.source == (gateway if local else host_ip), "masquerade takes the outgoing interface's address"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dst_port", [("lb", 80), ("nodeport", None)])
def test_external_with_local_policy_reaches_only_local_endpoints_and_keeps_the_source(mode, dst_port):
    plan = world()[3]
    lb = plan.service("default", "web-lb")
    for node, expected in (
        ("kind-worker", {"10.244.1.2:8080": HALF, "10.244.1.3:8080": HALF}),
        ("kind-worker2", {"10.244.2.3:8080": Fraction(1)}),
        ("kind-control-plane", {}),
    ):
        dst, port = (
            (lb.load_balancer_ingress[0], 80) if dst_port[0] == "lb" else (NODES[node][0], lb.ports[0].node_port)
        )
        t = run(node, mode, LAPTOP, dst, port, entry="underlay")
        assert t.endpoints() == expected, node
        if expected:
            assert t.masqueraded is False and {o.source for o in t.outcomes} == {LAPTOP}
        else:
            assert t.verdicts == {"drop"}, "no local endpoint: dropped, as the cloud's health check says"


@pytest.mark.parametrize("mode", MODES)
def test_pod_to_a_local_policy_load_balancer_is_short_circuited_to_every_endpoint(mode):
    node = "kind-control-plane"
    t = run(node, mode, client(node), world()[3].service("default", "web-lb").load_balancer_ingress[0], 80)
    assert t.endpoints() == {ep: THIRD for ep in STABLE} and t.masqueraded is False


@pytest.mark.parametrize("mode", MODES)
def test_the_node_itself_to_its_node_ports_is_masqueraded(mode):
    node = "kind-control-plane"
    host_ip = NODES[node][0]
    t = run(node, mode, host_ip, host_ip, 30080, entry="local")
    assert t.endpoints() == {ep: THIRD for ep in STABLE} and t.masqueraded is True
    lb_np = world()[3].service("default", "web-lb").ports[0].node_port
    t = run(node, mode, host_ip, host_ip, lb_np, entry="local")  # Local policy, no local endpoint
    assert t.endpoints() == {ep: THIRD for ep in STABLE} and t.masqueraded is True


@pytest.mark.parametrize("mode", MODES)
def test_a_pod_reaching_its_own_service_is_masqueraded_hairpin(mode):
    t = run("kind-worker", mode, "10.244.1.2", svc_ip("web"), 80)
    assert t.endpoints() == {ep: THIRD for ep in STABLE}
    by = {o.endpoint: o for o in t.outcomes}
    assert by["10.244.1.2:8080"].masqueraded and by["10.244.1.2:8080"].source == "10.244.1.1"
    assert not by["10.244.1.3:8080"].masqueraded and by["10.244.1.3:8080"].source == "10.244.1.2"
    assert t.masqueraded is None  # it depends on the endpoint drawn


@pytest.mark.parametrize("mode", MODES)
def test_a_service_without_endpoints_is_rejected(mode):
    for node in NODES:
        t = run(node, mode, client(node), svc_ip("nobody"), 80)
        assert t.verdicts == {"reject"} and t.probability("reject") == 1


@pytest.mark.parametrize("mode", MODES)
def test_session_affinity(mode):
    t = run("kind-worker2", mode, client("kind-worker2"), svc_ip("web-sticky"), 80)
    assert t.endpoints() == {ep: THIRD for ep in STABLE}
    t = run("kind-worker2", mode, client("kind-worker2"), svc_ip("web-sticky"), 80, remembered={"10.244.1.3:8080"})
    assert t.endpoints() == {"10.244.1.3:8080": Fraction(1)}
    t = run("kind-worker2", mode, client("kind-worker2"), svc_ip("web"), 80, remembered={"10.244.1.3:8080"})
    assert t.endpoints() == {ep: THIRD for ep in STABLE}, "no affinity without sessionAffinity: ClientIP"


@pytest.mark.parametrize("mode", MODES)
def test_named_target_ports_resolve_per_pod(mode):
    ip = svc_ip("web-all")
    t = run("kind-worker", mode, client("kind-worker"), ip, 80)
    assert t.endpoints() == {ep: QUARTER for ep in STABLE | {"10.244.2.2:8081"}}
    t = run("kind-worker", mode, client("kind-worker"), ip, 9100)
    assert t.endpoints() == {ep.replace("8080", "9100"): THIRD for ep in STABLE}
    t = run("kind-worker", mode, client("kind-worker"), ip, 53, "UDP")
    assert t.endpoints() == {ep.replace("8080", "5353"): QUARTER for ep in STABLE | {"10.244.2.2:8080"}}


def test_ports_a_cluster_ip_does_not_serve():
    ip = svc_ip("web-all")
    # nftables rejects unknown ports of ClusterIPs and drops unallocated ClusterIPs (cluster-ips-check);
    # iptables mode leaves both untouched (routed on, to nowhere).
    assert run("kind-worker", "nftables", client("kind-worker"), ip, 53, "TCP").verdicts == {"reject"}
    assert run("kind-worker", "iptables", client("kind-worker"), ip, 53, "TCP").verdicts == {"accept"}
    assert run("kind-worker", "nftables", client("kind-worker"), "10.96.200.200", 80).verdicts == {"drop"}
    assert run("kind-worker", "iptables", client("kind-worker"), "10.96.200.200", 80).verdicts == {"accept"}


@pytest.mark.parametrize("mode", MODES)
def test_kubernetes_service_reaches_the_api_server(mode):
    t = run("kind-worker", mode, client("kind-worker"), "10.96.0.1", 443)
    assert t.endpoints() == {"192.168.1.2:6443": Fraction(1)} and t.masqueraded is False
    t = run("kind-worker", mode, LAPTOP, "10.96.0.1", 443, entry="underlay")
    assert t.masqueraded is True, "off-cluster sources reaching a ClusterIP are masqueraded"


@pytest.mark.parametrize("mode", MODES)
def test_pod_to_pod_is_untouched(mode):
    t = run("kind-worker", mode, "10.244.1.2", "10.244.2.3", 8080)
    assert t.verdicts == {"accept"} and t.masqueraded is False
    (o,) = t.outcomes
    assert (o.source, o.destination, o.delivery) == ("10.244.1.2", "10.244.2.3:8080", "forward")


def test_both_modes_agree_on_every_documented_flow():
    plan = world()[3]
    lb = plan.service("default", "web-lb")
    flows = []
    for node, (host_ip, _) in NODES.items():
        for name, port, proto in (
            ("web", 80, "TCP"),
            ("web-sticky", 80, "TCP"),
            ("web-all", 80, "TCP"),
            ("web-all", 53, "UDP"),
            ("nobody", 80, "TCP"),
            ("web-lb", 80, "TCP"),
            ("kubernetes", 443, "TCP"),
        ):
            for src in (client(node), "10.244.1.2"):
                flows.append((node, src, svc_ip(name), port, proto, "pod"))
        for dst, port in ((host_ip, 30080), (host_ip, lb.ports[0].node_port), (lb.load_balancer_ingress[0], 80)):
            flows.append((node, LAPTOP, dst, port, "TCP", "underlay"))
            flows.append((node, host_ip, dst, port, "TCP", "local"))
            flows.append((node, client(node), dst, port, "TCP", "pod"))
    for node, src, dst, port, proto, entry in flows:
        a = run(node, "iptables", src, dst, port, proto, entry)
        b = run(node, "nftables", src, dst, port, proto, entry)
        summary = lambda t: sorted((o.probability, o.verdict, o.endpoint, o.masqueraded, o.source) for o in t.outcomes)  # noqa: E731
        assert summary(a) == summary(b), (
            f"{node}: {src} -> {dst}:{port}/{proto} from {entry}\n{a.explain()}\n{b.explain()}"
        )


# -- variants of the fixture ------------------------------------------------------------------------


def _variant(*services: ServiceSpec):
    cluster, manifests, pods, _ = world()
    extra = Manifests(services=manifests.services + services)
    return plan_services(cluster, extra, list(pods), SEED, POOL)


def _spec(name: str, **kw) -> ServiceSpec:
    kw.setdefault("selector", {"app": "web", "track": "stable"})
    kw.setdefault("ports", (ServicePort("", 80, "TCP", 8080),))
    return ServiceSpec(ref=ObjectRef("variant.yaml", "Service", "default", name), **kw)


@pytest.mark.parametrize("mode", MODES)
def test_internal_traffic_policy_local(mode):
    plan = _variant(_spec("web-local", internal_traffic_policy="Local"))
    ip = svc_ip("web-local", plan)
    assert run("kind-worker", mode, client("kind-worker"), ip, 80, plan=plan).endpoints() == {
        "10.244.1.2:8080": HALF,
        "10.244.1.3:8080": HALF,
    }
    t = run("kind-control-plane", mode, client("kind-control-plane"), ip, 80, plan=plan)
    assert t.verdicts == {"drop"}


@pytest.mark.parametrize("mode", MODES)
def test_both_policies_local(mode):
    plan = _variant(_spec("both", type="NodePort", internal_traffic_policy="Local", external_traffic_policy="Local"))
    np = plan.service("default", "both").ports[0].node_port
    t = run("kind-worker2", mode, LAPTOP, NODES["kind-worker2"][0], np, entry="underlay", plan=plan)
    assert t.endpoints() == {"10.244.2.3:8080": Fraction(1)} and t.masqueraded is False
    t = run("kind-control-plane", mode, client("kind-control-plane"), NODES["kind-control-plane"][0], np, plan=plan)
    assert t.endpoints() == {ep: THIRD for ep in STABLE}, "pods short-circuit to every endpoint"


@pytest.mark.parametrize("mode", MODES)
def test_node_port_without_endpoints_is_rejected(mode):
    plan = _variant(_spec("empty", type="NodePort", selector={"app": "none"}))
    np = plan.service("default", "empty").ports[0].node_port
    t = run("kind-worker", mode, LAPTOP, NODES["kind-worker"][0], np, entry="underlay", plan=plan)
    assert t.verdicts == {"reject"}


@pytest.mark.parametrize("mode", MODES)
def test_external_ips(mode):
    plan = _variant(_spec("ext", external_ips=("192.168.1.99",), external_traffic_policy="Cluster"))
    t = run("kind-worker", mode, LAPTOP, "192.168.1.99", 80, entry="underlay", plan=plan)
    assert t.endpoints() == {ep: THIRD for ep in STABLE} and t.masqueraded is True


@pytest.mark.parametrize("mode", MODES)
def test_load_balancer_source_ranges(mode):
    plan = _variant(
        _spec(
            "fw",
            type="LoadBalancer",
            external_traffic_policy="Cluster",
            load_balancer_source_ranges=("192.168.1.10/32",),
        )
    )
    ip = plan.service("default", "fw").load_balancer_ingress[0]
    assert run("kind-worker", mode, LAPTOP, ip, 80, entry="underlay", plan=plan).endpoints() == {
        ep: THIRD for ep in STABLE
    }
    assert run("kind-worker", mode, "192.168.1.11", ip, 80, entry="underlay", plan=plan).verdicts == {"drop"}
    np = plan.service("default", "fw").ports[0].node_port
    t = run("kind-worker", mode, "192.168.1.11", NODES["kind-worker"][0], np, entry="underlay", plan=plan)
    assert t.verdicts == {"dnat"}, "NodePorts are not subject to loadBalancerSourceRanges"


@pytest.mark.parametrize("mode", MODES)
def test_scenario002_laptop_reaches_the_node_port_on_every_node(topology, mode):
    from testbed.spec.workloads import load_manifests

    cluster = topology(kind_cluster(2, "externalHosts: [{name: laptop, ip: 192.168.1.10}]"))
    m = load_manifests([str(REPO / "manifests" / "seed002-nodeport.yaml")])
    pods = [p for p in plan_cluster(cluster, m, 1).pods if p.namespace == "default"]
    plan = plan_services(cluster, m, pods, 1, None)
    (pod,) = pods
    for node, (host_ip, _) in NODES.items():
        rs = build_ruleset(plan, node, host_ip, cluster.pod_subnet, mode)
        t = trace(rs, Packet(LAPTOP, host_ip, 30008, "TCP", "underlay"))
        assert t.endpoints() == {f"{pod.ip}:80": Fraction(1)} and t.masqueraded is True


def test_explain_names_the_chains():
    text = run("kind-worker", "iptables", client("kind-worker"), svc_ip("web"), 80).explain()
    assert text.splitlines()[0] == f"kind-worker (iptables): 10.244.1.50 -> {svc_ip('web')}:80/TCP from pod"
    assert "1/3  DNAT to 10.244.1.2:8080, source kept 10.244.1.50, forward" in text
    assert "nat/KUBE-SERVICES > nat/KUBE-SVC-" in text


def test_unknown_entry_is_refused():
    with pytest.raises(ValueError, match="entry must be one of pod, underlay, local"):
        run("kind-worker", "iptables", LAPTOP, "10.96.0.1", 443, entry="moon")


@pytest.mark.parametrize("mode", MODES)
def test_a_load_balancer_ip_held_by_the_node_is_delivered_through_input(mode):
    lb = world()[3].service("default", "web-lb").load_balancer_ingress[0]
    host_ip, cidr = NODES["kind-worker"]
    rs = build_ruleset(world()[3], "kind-worker", host_ip, POD_SUBNET, mode)
    t = trace(rs, Packet(LAPTOP, lb, 80, "TCP", "underlay"), pod_cidr=cidr, local_ips=[lb])
    assert t.endpoints() == {"10.244.1.2:8080": HALF, "10.244.1.3:8080": HALF} and t.masqueraded is False
    rs = build_ruleset(world()[3], "kind-control-plane", NODES["kind-control-plane"][0], POD_SUBNET, mode)
    t = trace(rs, Packet(LAPTOP, lb, 80, "TCP", "underlay"), local_ips=[lb])
    assert t.verdicts == {"drop"} and {o.chains[-1] for o in t.outcomes} & {
        "filter/KUBE-EXTERNAL-SERVICES",
        "kube-proxy/service-endpoints-check",
    }
