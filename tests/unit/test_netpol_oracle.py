"""The oracle (netpol/oracle.py) on the edge cases of the NetworkPolicy semantics.

The world: namespaces x (team=red), y (team=blue), z; pods a, b, c in each, labelled pod=<name>,
serving 80 and 81 on TCP, UDP and SCTP (named serve-<port>-<proto>); nodes n0..n2 (x/a on n0,
x/b on n1, x/c on n2, y/a on n1, ...); an external host `laptop` at 192.168.1.10.
"""

from __future__ import annotations

import dataclasses

import pytest

from testbed.netpol import Flow, UnknownEndpoint, World, decide, explain_flow, explain_pod, truth_table
from testbed.netpol.oracle import ALLOWED, BYPASS, NO_POD, NO_RULE, NODE_LOCAL, NOT_A_POD, NOT_ISOLATED, SELF

from ._netpol import NAMESPACES, NODES, egress_ports_world, http_named_pods, named_port, pod_info, xyz_pods, xyz_world

PODS = [f"{ns}/{p}" for ns in "xyz" for p in "abc"]


def ok(world: World, src: str, dst: str, port: int | None = 80, proto: str = "TCP") -> bool:
    return decide(Flow(src, dst, port, proto), world).allowed


def allowed_sources(world: World, dst: str, port: int | None = 80, proto: str = "TCP") -> set[str]:
    return {s for s in PODS if ok(world, s, dst, port, proto)}


def test_no_policy_allows_everything():
    w = xyz_world()
    assert all(truth_table(w, PODS, PODS, [80, 81], ["TCP", "UDP", "SCTP", "ICMP"]).values())
    v = decide(Flow("x/a", "y/b", 80), w)
    assert (v.egress.reason, v.ingress.reason) == (NOT_ISOLATED, NOT_ISOLATED)
    assert not v.egress.isolated and v.deciding_policies == ()


def test_empty_pod_selector_isolates_every_pod_of_its_namespace_only():
    w = xyz_world("metadata: {name: deny}\nspec: {podSelector: {}}")
    assert allowed_sources(w, "x/a") == {"x/a"}  # only itself (self-traffic)
    assert allowed_sources(w, "y/a") == set(PODS)  # other namespaces untouched
    assert ok(w, "x/a", "y/b")  # x's egress is not isolated
    v = decide(Flow("y/a", "x/b", 80), w)
    assert v.ingress.reason == NO_RULE and v.ingress.selecting == ("x/deny",)
    assert v.ingress.misses[0].rule == "spec.ingress"
    assert v.deciding_policies == ("x/deny",)


def test_a_policy_in_another_namespace_does_not_select():
    w = xyz_world("metadata: {name: deny, namespace: y}\nspec: {podSelector: {matchLabels: {pod: a}}}")
    assert allowed_sources(w, "x/a") == set(PODS)
    assert allowed_sources(w, "y/a") == {"y/a"}
    assert allowed_sources(w, "y/b") == set(PODS)


def test_policy_types_inferred_from_egress_rules_isolate_both_directions():
    w = xyz_world("""
        metadata: {name: p}
        spec:
          podSelector: {matchLabels: {pod: a}}
          egress: [{to: [{podSelector: {}}]}]
    """)
    assert allowed_sources(w, "x/a") == {"x/a"}  # Ingress inferred: deny all in
    assert ok(w, "x/a", "x/b") and not ok(w, "x/a", "y/b")  # egress only to x's pods


def test_egress_only_policy_leaves_ingress_alone_and_ignores_its_ingress_rules():
    w = xyz_world("""
        metadata: {name: p}
        spec:
          podSelector: {matchLabels: {pod: a}}
          policyTypes: [Egress]
          ingress: [{from: [{podSelector: {matchLabels: {pod: nobody}}}]}]
    """)
    assert allowed_sources(w, "x/a") == set(PODS)
    assert not ok(w, "x/a", "y/b") and not ok(w, "x/a", "laptop")  # deny all egress
    assert ok(w, "x/a", "x/a")  # but not to itself
    assert "ingress rules, but its policyTypes (Egress) leave ingress alone" in explain_pod(w, "x/a")


def test_deny_all_ingress_and_egress():
    w = xyz_world("""
        metadata: {name: lockdown}
        spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
    """)
    for pod in ("x/a", "x/b", "x/c"):
        assert allowed_sources(w, pod) == {pod}
        assert {d for d in PODS if ok(w, pod, d)} == {pod}
    v = decide(Flow("x/a", "x/b", 80), w)
    assert (v.egress.reason, v.ingress.reason) == (NO_RULE, NO_RULE)


def test_both_ends_must_allow():
    w = xyz_world("""
        metadata: {name: no-egress}
        spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Egress]}
        ---
        metadata: {name: allow-all-in, namespace: y}
        spec: {podSelector: {}, ingress: [{}]}
    """)
    v = decide(Flow("x/a", "y/b", 80), w)
    assert not v.allowed and not v.egress.allowed and v.ingress.allowed
    assert v.ingress.allows[0].policy == "y/allow-all-in" and v.ingress.allows[0].peer is None
    assert ok(w, "x/b", "y/b")


def test_pod_and_namespace_selectors_in_one_peer_are_anded_in_two_peers_ored():
    anded = xyz_world("""
        metadata: {name: p}
        spec:
          podSelector: {matchLabels: {pod: c}}
          ingress:
            - from: [{namespaceSelector: {matchLabels: {team: blue}}, podSelector: {matchLabels: {pod: a}}}]
    """)
    ored = xyz_world("""
        metadata: {name: p}
        spec:
          podSelector: {matchLabels: {pod: c}}
          ingress:
            - from: [{namespaceSelector: {matchLabels: {team: blue}}}, {podSelector: {matchLabels: {pod: a}}}]
    """)
    assert allowed_sources(anded, "x/c") == {"y/a", "x/c"}
    assert allowed_sources(ored, "x/c") == {"y/a", "y/b", "y/c", "x/a", "x/c"}
    v = decide(Flow("x/a", "x/c", 80), ored)
    assert v.ingress.allows[0].path == "spec.ingress[0].from[1]"


def test_empty_namespace_selector_means_every_namespace_and_pod_selector_alone_means_own_namespace():
    all_ns = xyz_world("""
        metadata: {name: p}
        spec: {podSelector: {}, ingress: [{from: [{namespaceSelector: {}}]}]}
    """)
    own_ns = xyz_world("""
        metadata: {name: p}
        spec: {podSelector: {}, ingress: [{from: [{podSelector: {}}]}]}
    """)
    assert allowed_sources(all_ns, "x/b") == set(PODS)
    assert not ok(all_ns, "laptop", "x/b")  # selectors match pods only
    assert allowed_sources(own_ns, "x/b") == {"x/a", "x/b", "x/c"}


def test_namespace_selector_on_the_automatic_name_label():
    w = xyz_world("""
        metadata: {name: p}
        spec:
          podSelector: {}
          ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}}]}]
    """)
    assert allowed_sources(w, "x/a") == {"x/a", "z/a", "z/b", "z/c"}


@pytest.mark.parametrize(
    "expression,sources",
    [
        ("{key: tier, operator: In, values: [web, db]}", {"x/a", "y/b"}),
        ("{key: tier, operator: NotIn, values: [web]}", set(PODS) - {"x/a"}),  # lacking the key matches
        ("{key: tier, operator: Exists}", {"x/a", "y/b"}),
        ("{key: tier, operator: DoesNotExist}", {"x/b", "x/c", "y/a", "y/c", "z/a", "z/b", "z/c"}),
    ],
)
def test_match_expressions(expression, sources):
    pods = [
        dataclasses.replace(p, labels={**p.labels, "tier": "web"})
        if p.full_name == "x/a"
        else dataclasses.replace(p, labels={**p.labels, "tier": "db"})
        if p.full_name == "y/b"
        else p
        for p in xyz_pods()
    ]
    w = xyz_world(
        f"""
        metadata: {{name: p}}
        spec:
          podSelector: {{matchLabels: {{pod: c}}}}
          ingress: [{{from: [{{namespaceSelector: {{}}, podSelector: {{matchExpressions: [{expression}]}}}}]}}]
    """,
        pods=pods,
    )
    assert allowed_sources(w, "x/c") == sources | {"x/c"}


def test_ip_block_with_except_matches_external_hosts_nodes_and_pod_ips():
    w = xyz_world("""
        metadata: {name: p}
        spec:
          podSelector: {matchLabels: {pod: b}}
          ingress:
            - from:
                - ipBlock: {cidr: 192.168.1.0/24, except: [192.168.1.10/32]}
                - ipBlock: {cidr: 10.244.0.0/16, except: [10.244.2.0/24]}
    """)
    assert not ok(w, "laptop", "x/b")  # 192.168.1.10 is excepted
    assert ok(w, "192.168.1.11", "x/b") and not ok(w, "8.8.8.8", "x/b")
    assert ok(w, "n0", "x/b")  # another node: by ipBlock
    # pod IPs match ipBlocks too (our choice, as most implementations): pods on n0 and n1 yes,
    # pods on n2 (10.244.2.0/24, excepted) no
    assert allowed_sources(w, "x/b") == {"x/a", "x/b", "y/a", "y/c", "z/b", "z/c"}
    v = decide(Flow("192.168.1.11", "x/b", 80), w)
    assert v.src.label() == "192.168.1.11 (outside the cluster)"
    assert v.ingress.allows[0].peer_text == "from addresses in 192.168.1.0/24 except 192.168.1.10/32"


def test_egress_ip_block_to_outside():
    w = xyz_world("""
        metadata: {name: p}
        spec:
          podSelector: {}
          policyTypes: [Egress]
          egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}}]}]
    """)
    assert ok(w, "x/a", "8.8.8.8", 53, "UDP") and ok(w, "x/a", "laptop")
    assert not ok(w, "x/a", "y/a")
    v = decide(Flow("x/a", "8.8.8.8", 443), w)
    assert v.ingress.reason == NOT_A_POD and v.egress.reason == ALLOWED


def test_named_ports_resolve_on_the_destination_pod_and_protocol():
    w = egress_ports_world("[{port: http}, {port: serve-81-udp, protocol: UDP}]", http_named_pods())
    assert ok(w, "x/a", "x/b", 80) and not ok(w, "x/a", "x/b", 8080)  # x's http is 80
    assert ok(w, "x/a", "y/b", 8080) and not ok(w, "x/a", "y/b", 80)  # y's http is 8080
    assert not ok(w, "x/a", "y/b", 8080, "UDP")  # http is a TCP port
    assert ok(w, "x/a", "z/a", 81, "UDP") and not ok(w, "x/a", "z/a", 81, "TCP")
    assert not ok(w, "x/a", "laptop", 80)  # names resolve on pods only
    v = decide(Flow("x/a", "y/b", 8080), w)
    assert v.egress.allows[0].port_text == "on TCP port named 'http' (= TCP 8080 on y/b)"
    miss = decide(Flow("x/a", "laptop", 80), w).egress.misses[0].reason
    assert "a port name resolves on pods only" in miss


def test_named_port_protocol_must_match_the_container_port():
    pods = [dataclasses.replace(p, ports=(named_port("dns", 53, "UDP"),)) for p in xyz_pods()]
    w = xyz_world(
        """
        metadata: {name: p}
        spec: {podSelector: {}, ingress: [{ports: [{port: dns}]}]}
    """,
        pods=pods,
    )  # protocol defaults to TCP
    assert not ok(w, "y/a", "x/a", 53, "UDP") and not ok(w, "y/a", "x/a", 53, "TCP")
    assert "x/a has no TCP port named 'dns'" in decide(Flow("y/a", "x/a", 53), w).ingress.misses[0].reason


def test_end_port_ranges_and_protocols():
    w = xyz_world("""
        metadata: {name: p}
        spec:
          podSelector: {}
          ingress:
            - ports: [{port: 80, endPort: 81}, {protocol: UDP, port: 53}, {protocol: SCTP}]
    """)
    assert ok(w, "y/a", "x/a", 80) and ok(w, "y/a", "x/a", 81) and not ok(w, "y/a", "x/a", 82)
    assert not ok(w, "y/a", "x/a", 79)
    assert ok(w, "y/a", "x/a", 53, "UDP") and not ok(w, "y/a", "x/a", 80, "UDP")
    assert ok(w, "y/a", "x/a", 1234, "SCTP") and ok(w, "y/a", "x/a", 80, "SCTP")
    assert not ok(w, "y/a", "x/a", None, "ICMP")  # a port list excludes ICMP
    v = decide(Flow("y/a", "x/a", 81), w)
    assert v.ingress.allows[0].port_text == "on TCP ports 80-81"


def test_rules_without_ports_allow_icmp():
    w = xyz_world("metadata: {name: p}\nspec: {podSelector: {}, ingress: [{from: [{podSelector: {}}]}]}")
    assert ok(w, "x/b", "x/a", None, "ICMP") and not ok(w, "y/b", "x/a", None, "ICMP")


def test_two_policies_add_up():
    one = """
        metadata: {name: from-y}
        spec: {podSelector: {matchLabels: {pod: a}}, ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}], ports: [{port: 80}]}]}
    """
    two = """
        metadata: {name: from-z}
        spec: {podSelector: {matchLabels: {pod: a}}, ingress: [{from: [{namespaceSelector: {matchLabels: {ns: z}}}], ports: [{port: 81}]}]}
    """
    w1, w2 = xyz_world(one), xyz_world(one + "---" + two)
    assert allowed_sources(w1, "x/a", 80) == {"x/a", "y/a", "y/b", "y/c"}
    assert allowed_sources(w2, "x/a", 80) == {"x/a", "y/a", "y/b", "y/c"}
    assert allowed_sources(w2, "x/a", 81) == {"x/a", "z/a", "z/b", "z/c"}
    v = decide(Flow("z/b", "x/a", 81), w2)
    assert v.ingress.selecting == ("x/from-y", "x/from-z")
    assert [a.policy for a in v.ingress.allows] == ["x/from-z"]
    assert [m.policy for m in v.ingress.misses] == ["x/from-y"]


def test_traffic_with_the_pods_own_node_is_always_allowed():
    w = xyz_world("metadata: {name: lockdown}\nspec: {podSelector: {}, policyTypes: [Ingress, Egress]}")
    # x/a runs on n0 (192.168.1.2, cni0 10.244.0.1)
    for src in ("n0", "192.168.1.2", "10.244.0.1"):
        v = decide(Flow(src, "x/a", 80), w)
        assert v.allowed and v.bypass == NODE_LOCAL and v.ingress.reason == BYPASS
    assert ok(w, "x/a", "n0") and ok(w, "x/a", "10.244.0.1")
    assert not ok(w, "n1", "x/a") and not ok(w, "x/a", "n1")  # other nodes are ordinary peers


def test_a_pod_cannot_block_itself_and_no_pod_no_policy():
    w = xyz_world("metadata: {name: lockdown}\nspec: {podSelector: {}, policyTypes: [Ingress, Egress]}")
    v = decide(Flow("x/a", "x/a", 80), w)
    assert v.allowed and v.bypass == SELF
    assert "cannot block access to itself" in explain_flow(v)
    v = decide(Flow("laptop", "n1", 22), w)
    assert v.allowed and v.bypass == NO_POD


def test_relabelling_and_namespace_labels_change_the_verdict():
    w = xyz_world("""
        metadata: {name: p}
        spec:
          podSelector: {}
          ingress: [{from: [{namespaceSelector: {matchLabels: {team: blue}}, podSelector: {matchLabels: {role: client}}}]}]
    """)
    assert not ok(w, "y/a", "x/a")
    w2 = w.with_pod_labels("y/a", {"pod": "a", "role": "client"})
    assert ok(w2, "y/a", "x/a")
    assert not ok(w2.with_namespace_labels("y", {"team": "green"}), "y/a", "x/a")
    assert w2.namespace_labels("y")["kubernetes.io/metadata.name"] == "y"


def test_truth_table_covers_every_combination():
    w = xyz_world("metadata: {name: p}\nspec: {podSelector: {matchLabels: {pod: a}}, ingress: [{ports: [{port: 80}]}]}")
    table = truth_table(w, ["y/b", "laptop"], ["x/a", "x/b"], [80, 81], ["TCP", "UDP", "ICMP"])
    assert len(table) == 2 * 2 * (2 * 2 + 1)
    assert table[("y/b", "x/a", 80, "TCP")] and not table[("y/b", "x/a", 81, "TCP")]
    assert not table[("laptop", "x/a", 80, "UDP")] and not table[("laptop", "x/a", None, "ICMP")]
    assert table[("laptop", "x/b", None, "ICMP")]


def test_endpoints_by_name_ip_node_and_host():
    w = xyz_world()
    assert w.endpoint("x/a").pod.full_name == "x/a"
    assert w.endpoint("10.244.0.10").pod.full_name == "x/a"
    assert w.endpoint("n1").node == "n1" and w.endpoint("n1").ip == "192.168.1.3"
    assert w.endpoint("laptop").host == "laptop"
    with pytest.raises(UnknownEndpoint, match="ambiguous"):
        w.endpoint("a")
    with pytest.raises(UnknownEndpoint, match="no pod, node or external host called 'nginx'"):
        w.endpoint("nginx")
    with pytest.raises(UnknownEndpoint, match="no pod 'x/zz'"):
        w.endpoint("x/zz")
    unique = World.build([pod_info("default", "web", "10.244.1.5", "n1")], {}, (), NODES)
    assert unique.endpoint("web").pod.name == "web"


@pytest.mark.parametrize("port,proto", [(None, "TCP"), (0, "UDP"), (70000, "SCTP"), (80, "ICMP"), (80, "GRE")])
def test_flows_are_validated(port, proto):
    with pytest.raises(ValueError):
        Flow("x/a", "x/b", port, proto)


def test_world_adds_implicit_namespaces_and_the_name_label():
    w = World.build(xyz_pods(), NAMESPACES)
    assert set(w.namespaces) == {"default", "kube-system", "kube-public", "kube-node-lease", "x", "y", "z"}
    assert w.namespaces["x"] == {"ns": "x", "team": "red", "kubernetes.io/metadata.name": "x"}
    assert w.namespaces["default"] == {"kubernetes.io/metadata.name": "default"}


def test_flows_from_command_line_words():
    assert Flow.of("a", "b", "80") == Flow("a", "b", 80, "TCP")
    assert Flow.of("a", "b", "53/udp") == Flow("a", "b", 53, "UDP")
    assert Flow.of("a", "b", "icmp") == Flow("a", "b", None, "ICMP")
    for bad in ("http", "80/GRE", "0/TCP", "icmp/1"):
        with pytest.raises(ValueError):
            Flow.of("a", "b", bad)
