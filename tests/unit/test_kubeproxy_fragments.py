"""kubeproxy/fragments.py: a Service port's chains built once and shared by every node.

fold_owned turns the recorded calls of a Service port into whole chains placed on each node: the
tables must be exactly those the calls give one by one, in both modes, and the nodes must hold
the very same Chain objects. A ProxiedPort seen again is found by identity (common.py hands the
nodes of a sync the same one), and an equal one by its value.
"""

from __future__ import annotations

import pytest

from testbed.kubeproxy import build_ruleset, iptables, nftables
from testbed.kubeproxy.common import LocalTraffic, service_ports
from testbed.kubeproxy.fragments import Fragments, fold_owned
from testbed.rules.model import Chain, Jump, Rule

from ._services import NODES, POD_SUBNET, world


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_folded_chains_give_the_rulesets_the_calls_give(mode, monkeypatch):
    services = world()[3]
    module = iptables if mode == "iptables" else nftables
    folded = {n: build_ruleset(services, n, NODES[n][0], POD_SUBNET, mode) for n in NODES}
    # the same rulesets from the calls one by one: no folding, a fresh cache
    monkeypatch.setattr(module, "fold_owned", lambda calls, declare, chain_of: calls)
    monkeypatch.setattr(module, "_fragments", Fragments(module._fragment))
    plain = {n: build_ruleset(services, n, NODES[n][0], POD_SUBNET, mode) for n in NODES}
    assert plain == folded
    chains = [c for rs in plain.values() for t in rs.tables for c in t.chains]
    assert any(c.name.startswith(("KUBE-SEP-", "endpoint-")) for c in chains)


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_nodes_share_a_service_ports_chains(mode):
    services = world()[3]
    a, b = (build_ruleset(services, n, NODES[n][0], POD_SUBNET, mode) for n in ("kind-worker", "kind-worker2"))
    by_name = {c.name: c for t in b.tables for c in t.chains}
    shared = [c for t in a.tables for c in t.chains if by_name.get(c.name) is c]
    prefix = ("KUBE-SVC-", "KUBE-SEP-") if mode == "iptables" else ("service-", "endpoint-")
    assert {p for p in prefix if any(c.name.startswith(p) for c in shared)} == set(prefix)


def test_a_chain_written_to_by_other_calls_is_not_folded():
    rule = Rule((), Jump("X"))
    calls = (
        ("declare", ("A",), ()),
        ("append", ("A", rule), ()),
        ("declare", ("B",), ()),
        ("append", ("B", rule), ()),
        ("flush", ("B",), ()),  # something other than rules: B stays as recorded
    )
    out = fold_owned(calls, "declare", lambda call, rules: Chain(call[1][0], rules))
    assert out[0] == ("place", (Chain("A", (rule,)),), ())
    assert out[1:] == calls[2:]
    assert fold_owned(calls, "declare", lambda call, rules: None) == calls  # chain_of declines


def test_a_placed_chain_written_to_again_becomes_a_list_of_its_rules():
    chains = iptables._Chains("nat", ())
    rule, other = Rule((), Jump("X")), Rule((), Jump("Y"))
    chains.place(Chain("KUBE-SVC-A", (rule,)))
    chains.append("KUBE-SVC-A", other)
    chains.place(Chain("KUBE-SVC-A", (rule,)))  # declared again: its rules are appended
    assert [c for c in chains.table_of().chains if c.name == "KUBE-SVC-A"] == [Chain("KUBE-SVC-A", (rule, other, rule))]


def test_a_port_seen_again_is_found_by_identity_and_an_equal_one_by_value():
    computed = []
    fragments = Fragments(lambda sp, host, local: computed.append(sp) or len(computed))
    sp = service_ports(world()[3], "kind-worker")[0]
    local = LocalTraffic(POD_SUBNET)
    assert fragments(sp, "192.168.1.3", local) == fragments(sp, "192.168.1.4", local) == 1
    again = type(sp)(**{f: getattr(sp, f) for f in sp.__dataclass_fields__})
    assert again is not sp and fragments(again, "192.168.1.3", local) == 1
    assert fragments(sp, "192.168.1.3", LocalTraffic(None)) == 2 and len(computed) == 2


def test_nodes_of_a_sync_share_a_cluster_policy_ports_view():
    services = world()[3]
    a = {(p.service.name, p.port.name): p for p in service_ports(services, "kind-worker")}
    b = {(p.service.name, p.port.name): p for p in service_ports(services, "kind-worker2")}
    assert a[("web", "")] is b[("web", "")]  # Cluster policy: the node does not matter
    lb = [k for k in a if a[k].uses_local_endpoints]  # a Local policy: each node its own view
    assert lb and all(a[k] is not b[k] for k in lb)


def test_only_the_plan_being_compiled_has_its_views_kept():
    from testbed.kubeproxy import common
    from testbed.plan.services import update_endpoints

    _, _, pods, a = world()
    b = update_endpoints(a, [p for p in pods if p.name != "web-canary"])
    service_ports(a, "kind-worker")
    assert common._shared_of[0] is a and common._shared
    service_ports(b, "kind-worker")
    assert common._shared_of[0] is b
    b_endpoints = {id(b.endpoints(s.namespace, s.name, p.name, p.protocol)) for s in b.services for p in s.ports}
    assert common._shared and all(id(entry[2]) in b_endpoints for entry in common._shared.values())
