"""How KubeProxy (emu/controllers.py) hands each node its sync: the text rendered once for the
nodes that share a Service port's rules (rules/chain_texts.py), each node's load started while the
next is rendered (emu/rules.py in_parallel), iptables-restore started inside the node's namespace
without `ip netns exec` (Runner.run_in). No kernel: a RecordingRunner records what would run."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from testbed.emu import rules
from testbed.emu.controllers import KubeProxy
from testbed.emu.ledger import Ledger, netns_name
from testbed.emu.runner import RecordingRunner, netns_argv
from testbed.kubeproxy import build_ruleset, render_iptables_bootstrap
from testbed.kubeproxy.partial import render_sync
from testbed.plan.build import plan_cluster
from testbed.plan.services import update_endpoints
from testbed.rules import chain_texts
from testbed.rules.render_iptables import chain_rules

from ._services import NODES, POD_SUBNET, world

TAG = "abcd"


def _restores(runner: RecordingRunner) -> dict[str, list[str]]:
    """netns -> the texts iptables-restore received there, in order."""
    out: dict[str, list[str]] = {}
    for argv, text in runner.calls:
        if argv[2:] == ("iptables-restore", "--noflush", "--wait", "-v"):  # the node's session (emu/restorer.py)
            out.setdefault(argv[1].removeprefix("--net=/run/netns/"), []).append(text or "")
    return out


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    monkeypatch.setattr("testbed.emu.ledger.STATE_DIR", str(tmp_path))
    topology, manifests, _, _ = world()
    return plan_cluster(topology, manifests, 1), Ledger(tag=TAG, owner=1)


def test_each_node_gets_its_own_sync_inside_its_namespace(cluster):
    plan, ledger = cluster
    runner = RecordingRunner()
    proxy = KubeProxy(runner, ledger)
    proxy.sync(plan)
    assert not any(argv[:3] == ("ip", "netns", "exec") for argv, _ in runner.calls)
    loads = _restores(runner)
    rulesets = plan.kube_proxy_rulesets
    for node in plan.nodes:
        ns = netns_name(TAG, node.key)
        want = render_sync(rulesets[node.name], None, True).text
        assert loads[ns] == [want]
        assert runner.calls.count((tuple(netns_argv(ns, ["iptables-restore", "--noflush", "--wait", "-v"])), want)) == 1
        # the jumps from the built-in chains, once, by a process of its own (`-I` is never retried)
        once = (
            tuple(netns_argv(ns, ["iptables-restore", "--noflush", "--wait"])),
            render_iptables_bootstrap(rulesets[node.name]),
        )
        assert runner.calls.count(once) == 1

    # a change of endpoints: every node's partial text is what it would be rendered alone
    runner.calls.clear()
    pods = [p for p in plan.pods if p.name != "web-canary"]
    changed = dataclasses.replace(plan, services=update_endpoints(plan.services, pods))
    proxy.sync(changed)
    loads = _restores(runner)
    assert len(loads) == len(plan.nodes)
    for node in plan.nodes:
        text = render_sync(changed.kube_proxy_rulesets[node.name], rulesets[node.name], False).text
        assert loads[netns_name(TAG, node.key)] == [text] and "partial sync" in text
    assert proxy.kinds == {n.name: "partial" for n in plan.nodes}


def test_nodes_sharing_a_services_rules_render_its_chain_once():
    _, _, _, services = world()
    a, b = (build_ruleset(services, n, NODES[n][0], POD_SUBNET, "iptables") for n in ("kind-worker", "kind-worker2"))
    in_b = {c.name: c for c in b.tables[1].chains}
    # the chains of Cluster-policy Services: built once by the fragments, the same Rule objects
    shared = [
        (ca, in_b[ca.name])
        for ca in a.tables[1].chains
        if ca.name.startswith("KUBE-SVC-") and ca.name in in_b and ca.rules
        if len(ca.rules) == len(in_b[ca.name].rules) and all(x is y for x, y in zip(ca.rules, in_b[ca.name].rules))
    ]
    assert len(shared) >= 3
    ca, cb = shared[0]
    alone = chain_rules("nat", ca.name, ca.rules)
    with chain_texts.shared():
        first = chain_rules("nat", ca.name, ca.rules)
        second = chain_rules("nat", cb.name, cb.rules)
        assert second is first  # the same lines, rendered once
        other = chain_rules("nat", ca.name, tuple(r for r in ca.rules))  # equal rules, same objects
        assert other is first
    assert first == alone
    assert chain_rules("nat", ca.name, ca.rules) is not first  # nothing kept after the sync


def test_a_sequence_of_one_job_runs_here_a_generator_starts_each_job_as_it_comes():
    here = threading.get_ident()
    seen: list[int] = []
    rules.in_parallel([lambda: seen.append(threading.get_ident())])
    assert seen == [here]

    first_running = threading.Event()
    order: list[str] = []

    def jobs():
        yield first_running.set
        # asked for the next job only once the first was handed to a loader (it sets the event)
        assert first_running.wait(5)
        order.append("second made")
        yield lambda: order.append("second ran")

    rules.in_parallel(jobs())
    assert order == ["second made", "second ran"]


def test_a_failing_generator_still_waits_for_the_loads_it_started():
    finished = threading.Event()

    def jobs():
        yield lambda: (threading.Event().wait(0.2), finished.set())
        raise ValueError("render failed")

    with pytest.raises(ValueError, match="render failed"):
        rules.in_parallel(jobs())
    assert finished.is_set()


def test_the_collector_waits_for_the_end_of_an_apply_and_is_restored_after():
    import gc

    from testbed.emu.cluster import collector_paused

    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with collector_paused():
            assert not gc.isenabled()
            raise RuntimeError("a controller failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()


def test_the_nodes_of_a_sync_compare_each_pair_of_shared_chains_once():
    """render_diff's comparison of a node's last load with its new rules goes through
    chain_texts.equal: within one sync, a pair of objects is compared once for all the nodes."""
    compared = []

    class Counted:
        def __init__(self, value):
            self.value = value

        def __eq__(self, other):
            compared.append(1)
            return isinstance(other, Counted) and self.value == other.value

        __hash__ = None

    old, new, other = Counted(1), Counted(1), Counted(2)
    with chain_texts.shared():
        assert all(chain_texts.equal(old, new) for _ in range(10))
        assert not chain_texts.equal(old, other)
        assert chain_texts.equal(old, old)  # the same object: no comparison at all
    assert len(compared) == 2
    assert chain_texts.equal(old, new) and len(compared) == 3  # outside a sync: compared each time
