"""How KubeProxy (emu/controllers.py) hands each node its sync: the text rendered once for the
nodes that share a Service port's rules (rules/chain_texts.py), each node's text written ahead to
its restore process while the next is rendered (emu/rules.py started), committed only once
`ready` returned, iptables-restore started inside the node's namespace without `ip netns exec`
(Runner.run_in). No kernel: a RecordingRunner records what would run."""

from __future__ import annotations

import dataclasses
import threading
import time

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


def test_texts_are_written_ahead_and_committed_only_after_ready(cluster):
    plan, ledger = cluster
    runner = RecordingRunner()
    seen: list[tuple[int, dict[str, str]]] = []  # at each ready(): the loads so far, what was begun

    def ready() -> None:  # as the agent's wait: the texts are written ahead meanwhile
        loads = len(_restores(runner))
        for _ in range(200 if len(seen) < 2 else 0):  # the two syncs that load
            if len(proxy.sessions) == len(plan.nodes) and all(s.begun for s in proxy.sessions.values()):
                break
            time.sleep(0.01)
        seen.append((loads, {ns: s.begun for (_, ns), s in proxy.sessions.items()}))

    proxy = KubeProxy(runner, ledger, ready=ready)
    proxy.sync(plan)  # the first sync: its full texts are written ahead too
    assert seen[0][0] == 0 and len(seen[0][1]) == len(plan.nodes)
    for node in plan.nodes:
        text = render_sync(plan.kube_proxy_rulesets[node.name], None, True).text
        assert seen[0][1][netns_name(TAG, node.key)] == text[: text.index("\nCOMMIT\n") + 1]
    assert all(not s.begun for s in proxy.sessions.values()) and len(_restores(runner)) == len(plan.nodes)

    runner.calls.clear()
    pods = [p for p in plan.pods if p.name != "web-canary"]
    changed = dataclasses.replace(plan, services=update_endpoints(plan.services, pods))
    proxy.sync(changed)
    assert seen[1][0] == 0 and all(begun.startswith("# kube-proxy") for begun in seen[1][1].values())
    assert len(_restores(runner)) == len(plan.nodes)
    proxy.sync(changed)  # nothing changed: nothing loaded, and ready is still called once
    proxy.sync(dataclasses.replace(changed, kube_proxy_mode="none"))
    assert len(seen) == 4 and len(_restores(runner)) == len(plan.nodes)


def test_a_failed_ready_drops_the_texts_written_ahead_and_commits_nothing(cluster):
    plan, ledger = cluster
    runner = RecordingRunner()
    failing = [True]

    def ready() -> None:
        if failing[0]:
            raise RuntimeError("the agent could not serve the new pods")

    proxy = KubeProxy(runner, ledger, ready=ready)
    failing[0] = False
    proxy.sync(plan)
    runner.calls.clear()
    pods = [p for p in plan.pods if p.name != "web-canary"]
    changed = dataclasses.replace(plan, services=update_endpoints(plan.services, pods))
    failing[0] = True
    with pytest.raises(RuntimeError):
        proxy.sync(changed)
    assert runner.calls == [] and all(not s.begun for s in proxy.sessions.values())
    failing[0] = False
    proxy.sync(changed)  # the kernel still holds the first sync: the same partial texts as ever
    loads = _restores(runner)
    for node in plan.nodes:
        text = render_sync(changed.kube_proxy_rulesets[node.name], plan.kube_proxy_rulesets[node.name], False).text
        assert loads[netns_name(TAG, node.key)] == [text]


def test_a_session_found_gone_when_written_ahead_makes_that_nodes_sync_a_full_restore(cluster, monkeypatch):
    from testbed.emu.runner import RecordedSession
    from testbed.errors import KernelError

    plan, ledger = cluster
    runner = RecordingRunner()
    proxy = KubeProxy(runner, ledger)
    proxy.sync(plan)
    victim = netns_name(TAG, plan.nodes[0].key)
    ahead = RecordedSession.ahead

    def gone(self: RecordedSession, text: str) -> None:
        if self.netns == victim:
            raise KernelError(["iptables-restore"], 1, "exited with -9 since its last load")
        ahead(self, text)

    monkeypatch.setattr(RecordedSession, "ahead", gone)
    runner.calls.clear()
    pods = [p for p in plan.pods if p.name != "web-canary"]
    changed = dataclasses.replace(plan, services=update_endpoints(plan.services, pods))
    proxy.sync(changed)
    assert proxy.fallbacks == 1 and proxy.kinds[plan.nodes[0].name] == "full"
    assert {proxy.kinds[n.name] for n in plan.nodes[1:]} == {"partial"}
    full = render_sync(
        changed.kube_proxy_rulesets[plan.nodes[0].name], plan.kube_proxy_rulesets[plan.nodes[0].name], True
    )
    assert (tuple(netns_argv(victim, ["iptables-restore", "--noflush", "--wait"])), full.text) in runner.calls
    assert victim not in _restores(runner)  # not through the session


def test_a_failure_while_rendering_drops_the_texts_already_written_ahead(cluster, monkeypatch):
    plan, ledger = cluster
    runner = RecordingRunner()
    proxy = KubeProxy(runner, ledger)
    proxy.sync(plan)
    runner.calls.clear()
    pods = [p for p in plan.pods if p.name != "web-canary"]
    changed = dataclasses.replace(plan, services=update_endpoints(plan.services, pods))
    render = KubeProxy._sync_text
    last = plan.nodes[-1].name

    def failing(self, node, ruleset):
        if node.name == last:  # the others' texts were written ahead by then
            raise RuntimeError("a rendering bug")
        return render(self, node, ruleset)

    monkeypatch.setattr(KubeProxy, "_sync_text", failing)
    with pytest.raises(RuntimeError):
        proxy.sync(changed)
    assert runner.calls == [] and all(not s.begun for s in proxy.sessions.values())
    monkeypatch.setattr(KubeProxy, "_sync_text", render)
    proxy.sync(changed)  # nothing was committed: the same partial texts as ever
    loads = _restores(runner)
    for node in plan.nodes:
        text = render_sync(changed.kube_proxy_rulesets[node.name], plan.kube_proxy_rulesets[node.name], False).text
        assert loads[netns_name(TAG, node.key)] == [text]
