"""The nft compiler (netpol/compiler.py, netpol/nft.py): golden texts, size, updates.

Golden files: golden/netpol/*.nft (UPDATE_GOLDEN=1 to regenerate; review the diff).
"""

from __future__ import annotations

import dataclasses
import functools

import pytest

from testbed.netpol import (
    World,
    compile_cluster,
    compile_node,
    node_script,
    reconcile,
    remove_script,
    render,
    set_updates,
)
from testbed.netpol.nft import sort_elements
from testbed.plan.build import plan_cluster
from testbed.plan.model import PodPlan
from testbed.rules.model import DPort, InSet, NftSet, Proto, Return, Rule, Ruleset
from testbed.rules.render_nft import nft_rule, set_block
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from ._golden import check_golden
from ._netpol import DATA, REPO, egress_ports_world, http_named_pods, named_port, pod_info, xyz_pods, xyz_world

XYZ_POLICIES = (DATA / "xyz-policies.yaml").read_text(encoding="utf-8")


@functools.cache
def xyz_plan_world(seed: int = 1) -> World:
    """The x/y/z pods planned on topologies/three-nodes.yaml (planned once per session)."""
    m = load_manifests([str(DATA / "xyz-pods.yaml"), str(DATA / "xyz-policies.yaml")])
    plan = plan_cluster(load_topology(str(REPO / "topologies" / "three-nodes.yaml")), m, seed)
    return World.from_plan(plan)


@pytest.mark.parametrize("node", ["kind-control-plane", "kind-worker", "kind-worker2"])
def test_xyz_rules_match_golden(node):
    check_golden(f"netpol/xyz-{node}.nft", node_script(xyz_plan_world(), node))


def test_script_recreates_its_own_table_in_one_transaction():
    text = node_script(xyz_plan_world(), "kind-worker")
    lines = text.splitlines()
    assert lines[1:4] == [
        "table inet testbed-netpol",
        "delete table inet testbed-netpol",
        "table inet testbed-netpol {",
    ]
    assert lines[-1] == "}"
    assert text.count("table inet") == 3  # nothing outside its own table
    assert "hook forward priority filter; policy accept;" in text
    forward = text[text.index("chain forward {") :]
    assert (
        forward.index("ct state established,related accept")
        < forward.index("jump check-egress")
        < forward.index("jump check-ingress")
    )
    assert remove_script() == "table inet testbed-netpol\ndelete table inet testbed-netpol\n"


def _scaled_pods(copies: int) -> list[PodPlan]:
    out = []
    for k in range(copies):
        for i, p in enumerate(xyz_pods()):
            node = int(p.node[1:])
            out.append(dataclasses.replace(p, name=f"{p.name}-{k}", ip=f"10.244.{node}.{20 + k * 9 + i}"))
    return out


def test_rule_count_grows_with_policies_not_with_pods():
    small = xyz_world(XYZ_POLICIES)
    large = xyz_world(XYZ_POLICIES, pods=_scaled_pods(20))  # 180 pods
    for node in small.node_names():
        a, b = compile_node(small, node), compile_node(large, node)
        assert a.rule_count() == b.rule_count()
        assert [s.name for s in a.sets] == [s.name for s in b.sets]
        assert sum(len(s.elements) for s in b.sets) > sum(len(s.elements) for s in a.sets)
    fewer = xyz_world(XYZ_POLICIES.split("---")[0])
    assert compile_node(fewer, "n0").rule_count() < compile_node(small, "n0").rule_count()


def test_sets_hold_the_right_addresses():
    w = xyz_world(XYZ_POLICIES)
    rs = compile_node(w, "n1")  # x/b, y/a, z/c live on n1
    ips = {p.full_name: p.ip for p in w.pods}
    assert rs.set("isolated-ingress").elements == sort_elements([ips["x/b"]])  # deny-all-ingress in x
    assert rs.set("isolated-egress").elements == sort_elements([ips["y/a"], ips["z/c"]])
    names = [p.name for p in w.policies]
    allow_web = names.index("allow-web")
    # from[0] = podSelector {} in x: every x pod, cluster-wide
    assert rs.set(f"p{allow_web}-in0-peer0").elements == sort_elements(ips[f"x/{p}"] for p in "abc")
    # from[1] = pods a of namespaces with team=blue: y/a
    assert rs.set(f"p{allow_web}-in0-peer1").elements == (ips["y/a"],)
    limit = names.index("limit-egress")
    block = rs.set(f"p{limit}-eg1-peer0")
    assert block.interval and "10.244.1.0/24" not in block.elements and "10.244.0.0/24" in block.elements


def test_named_ports_are_pod_address_and_resolved_number_pairs():
    w = egress_ports_world(
        "[{port: http}, {port: 443}, {port: 8000, endPort: 8100}, {port: 444}]", http_named_pods(keep_serve_ports=False)
    )
    rs = compile_node(w, "n0")
    named = rs.set("p0-eg0-tcp-http")
    assert named.type == "ipv4_addr . inet_service"
    assert len(named.elements) == 9  # egress: every destination pod
    assert {e.split(" . ")[1] for e in named.elements} == {"80", "8080"}
    (numeric, by_name) = [r for r in rs.chain("check-egress").rules if r.verdict == Return()]
    assert DPort(((443, 444), (8000, 8100))) in numeric.parts
    assert nft_rule(numeric).startswith("ip saddr @p0-pods tcp dport { 443-444, 8000-8100 } counter return")
    assert InSet("daddr . dport", "p0-eg0-tcp-http", "tcp") in by_name.parts


def test_every_port_of_a_protocol_subsumes_its_numbers():
    w = xyz_world("""
        metadata: {name: p}
        spec: {podSelector: {}, ingress: [{ports: [{port: 80}, {protocol: TCP}, {protocol: UDP, port: 53}]}]}
    """)
    rules = [nft_rule(r) for r in compile_node(w, "n0").chain("check-ingress").rules]
    assert rules[0] == 'ip daddr @p0-pods meta l4proto tcp counter accept comment "x/p spec.ingress[0] ports[1]"'
    assert rules[1] == 'ip daddr @p0-pods udp dport 53 counter accept comment "x/p spec.ingress[0] ports[2]"'
    assert len(rules) == 3


def _apply(ruleset: Ruleset, update) -> Ruleset:
    sets = []
    for s in ruleset.sets:
        elements = set(s.elements)
        for change in update.changes:
            if change.set == s.name:
                assert set(change.delete) <= elements and not set(change.add) & elements
                elements = (elements - set(change.delete)) | set(change.add)
        sets.append(dataclasses.replace(s, elements=sort_elements(elements)))
    return dataclasses.replace(ruleset, tables=(dataclasses.replace(ruleset.tables[0], sets=tuple(sets)),))


def test_relabelling_a_pod_is_a_set_update_that_reaches_the_new_ruleset():
    w = xyz_world(XYZ_POLICIES)
    w2 = w.with_pod_labels("y/b", {"pod": "a"}).with_namespace_labels("z", {"team": "blue"})
    for node in w.node_names():
        old, new = compile_node(w, node), compile_node(w2, node)
        update = set_updates(old, new)
        assert update is not None and update
        assert _apply(old, update) == new
    changes = reconcile(w, w2)
    assert {c.action for c in changes.values()} == {"update"}
    text = changes["n2"].script  # y/b lives on n2
    assert "add element inet testbed-netpol isolated-egress { 10.244.2.14 }" not in text  # already there
    assert text.startswith("# NetworkPolicy set updates on node n2\n")
    deletes = [i for i, line in enumerate(text.splitlines()) if line.startswith("delete element")]
    adds = [i for i, line in enumerate(text.splitlines()) if line.startswith("add element")]
    assert adds and (not deletes or max(deletes) < min(adds))


def test_adding_and_removing_pods_are_set_updates():
    w = xyz_world(XYZ_POLICIES)
    extra = pod_info("x", "d", "10.244.1.99", "n1", {"pod": "d", "tier": "web"}, (named_port("serve-80-tcp", 80),))
    w2 = w.with_pods(w.pods + (extra,))
    changes = reconcile(w, w2)
    assert set(changes) == {"n0", "n1", "n2"} and all(c.action == "update" for c in changes.values())
    assert "10.244.1.99 . 80" in changes["n1"].script  # its named port, on its node only
    back = reconcile(w2, w)
    assert all(c.action == "update" and "delete element" in c.script for c in back.values())


def test_policy_changes_reload_and_no_change_does_nothing():
    w = xyz_world(XYZ_POLICIES)
    assert reconcile(w, w) == {}
    w2 = w.with_policies(list(w.policies)[1:])
    changes = reconcile(w, w2)
    assert {c.action for c in changes.values()} == {"load"}
    assert changes["n0"].script == node_script(w2, "n0")
    assert {c.action for c in reconcile(None, w).values()} == {"load"}
    gone = reconcile(w, None)
    assert {c.action for c in gone.values()} == {"remove"} and gone["n1"].script == remove_script()


def test_set_updates_refuse_structural_changes():
    w = xyz_world(XYZ_POLICIES)
    other = xyz_world(XYZ_POLICIES.replace("except: [192.168.1.10/32]", "except: [192.168.1.11/32]"))
    assert set_updates(compile_node(w, "n0"), compile_node(other, "n0")) is None


def test_a_node_without_pods_gets_a_valid_empty_table():
    w = World.build([], {}, xyz_world(XYZ_POLICIES).policies)
    assert compile_cluster(w) == {}
    rs = compile_node(w, "lonely")
    assert all(not s.elements for s in rs.sets if not s.interval)
    assert render(rs).count("elements") == sum(1 for s in rs.sets if s.interval)


def test_rendering_details():
    s = NftSet("a", "ipv4_addr", ("10.0.0.1", "10.0.0.2"), comment='say "hi"')
    assert set_block(s) == [
        "\tset a {",
        "\t\ttype ipv4_addr",
        "\t\tcomment \"say 'hi'\"",
        "\t\telements = { 10.0.0.1, 10.0.0.2 }",
        "\t}",
    ]
    assert nft_rule(Rule((InSet("saddr", "x"),))) == "ip saddr @x"
    assert nft_rule(Rule((Proto("sctp"), DPort.of(7)))) == "sctp dport 7"
    assert sort_elements(["10.0.0.10", "10.0.0.9", "10.0.0.9 . 80"][:2]) == ("10.0.0.9", "10.0.0.10")
    long = xyz_world("metadata: {name: " + "p" * 120 + "}\nspec: {podSelector: {}, ingress: [{}]}")
    rule = nft_rule(compile_node(long, "n0").chain("check-ingress").rules[0])
    comment = rule.split('comment "')[1].rstrip('"')
    assert len(comment) == 128 and comment.endswith("...")
